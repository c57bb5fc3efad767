"""Peak memory of max_pool2d against F.max_pool2d, on large planes (CPU).

Each case runs in a fresh process: the input is allocated and touched, the
process's peak resident set is reset (/proc/self/clear_refs), the pool runs, and
the growth of the peak over the resident set before the call is the pool's
peak memory: its outputs and whatever scratch it allocates.

    python benches/memory_max_pool2d.py [--json PATH] [--size 12000] [--dtype float32]

Cases: without and with indices, forward only (no gradient), for the cpu backend
and for PyTorch. --huge also runs the (1, 1, 46400, 46400) float16 case with
indices, which needs about 10 GB.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

CHILD = r"""
import json, sys, torch, alexnet_fast
import torch.nn.functional as F

size, dtype, provider, indices = int(sys.argv[1]), getattr(torch, sys.argv[2]), sys.argv[3], sys.argv[4] == "1"

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

torch.set_num_threads(2)
x = torch.empty(1, 1, size, size, dtype=dtype)
x.copy_(torch.rand(size, size, dtype=torch.float32).to(dtype))  # touched
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak resident set starts again from the current one
before = status("VmRSS")
with torch.no_grad():
    if provider == "F":
        out = F.max_pool2d(x, 3, 2, return_indices=indices)
    else:
        out = alexnet_fast.max_pool2d(x, 3, 2, return_indices=indices, backend=provider)
peak = status("VmHWM")
outputs = sum(t.numel() * t.element_size() for t in (out if indices else (out,)))
print(json.dumps(dict(peak_growth=peak - before, outputs=outputs, input=x.numel() * x.element_size())))
"""


def measure(size: int, dtype: str, provider: str, indices: bool) -> dict:
    result = subprocess.run([sys.executable, "-c", CHILD, str(size), dtype, provider, "1" if indices else "0"],
                            capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"{provider} {size} {dtype} indices={indices}: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.abspath(__file__)))
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=12000)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16", "float64"))
    parser.add_argument("--huge", action="store_true", help="also (1, 1, 46400, 46400) float16 with indices")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    rows = []
    cases = [(args.size, args.dtype, indices) for indices in (False, True)]
    if args.huge:
        cases.append((46400, "float16", True))
    for size, dtype, indices in cases:
        for provider in ("F", "cpu"):
            row = dict(size=size, dtype=dtype, indices=indices, provider=provider,
                       **measure(size, dtype, provider, indices))
            rows.append(row)
            print(f"(1, 1, {size}, {size}) {dtype} indices={indices!s:5} {provider:4}: peak growth "
                  f"{row['peak_growth'] / 2**20:8.1f} MiB (outputs {row['outputs'] / 2**20:8.1f} MiB)", flush=True)
    import torch  # the parent only records versions: each case runs in its own process

    import alexnet_fast
    from alexnet_fast.bench_run import cpu_name

    flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    report = dict(
        meta=dict(date=datetime.datetime.now().isoformat(timespec="seconds"), cpu=cpu_name(),
                  cpu_flags=[f for f in ("avx2", "fma", "avx512f", "avx512bw") if f in flags],
                  isa_cap=os.environ.get("ALEXNET_FAST_CPU_ISA", "none (the best the CPU has)"),
                  commit=git_commit(), alexnet_fast=alexnet_fast.__file__,
                  torch=torch.__version__, python=platform.python_version(), threads=2,
                  command=" ".join(["python", "benches/memory_max_pool2d.py", *(argv or sys.argv[1:])])),
        rows=rows,
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
