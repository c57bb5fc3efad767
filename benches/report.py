"""Markdown tables from a pytest-benchmark JSON of this suite:

    python benches/report.py benches/results/<file>.json

For each op case and mode: median per provider, speed-up against eager and
torch.compile measured in the same run, effective GB/s (the floor's bytes,
see alexnet_fast.benchmarks.bytes_moved, over the median) and its fraction
of the measured copy bandwidth on the same tensor.
"""
import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    with open(path) as f:
        data = json.load(f)
    info = data["machine_info"]
    print(f"Device: {info.get('device')}, torch {info.get('torch')}, triton {info.get('triton')}, "
          f"{info.get('threads')} threads, batch {info.get('batch')}; run {data['datetime']}\n")
    rows = defaultdict(dict)  # (op, case, mode, dtype) -> provider -> (median, bytes)
    copy_gbs = {}
    for bench in data["benchmarks"]:
        extra, median = bench["extra_info"], bench["stats"]["median"]
        shape = tuple(extra.get("shape", ()))
        if extra["provider"] == "copy":
            copy_gbs[(shape, extra["dtype"])] = extra["bytes"] / median / 1e9
        else:
            key = (extra["op"], extra.get("case", ""), shape, extra["mode"], extra["dtype"])
            rows[key][extra["provider"]] = (median, extra.get("bytes"), bench["stats"]["iqr"])
    for (op, case, shape, mode, dtype), providers in sorted(rows.items()):
        print(f"**{op} {case} {shape} {mode} ({dtype.replace('torch.', '')})**\n")
        print("| provider | median ms | IQR ms | vs eager | vs compile | GB/s | % of copy |")
        print("|---|---|---|---|---|---|---|")
        # the model's baselines are the reference model, eager and compiled
        eager = providers.get("eager", providers.get("reference", (None,)))[0]
        compiled = providers.get("compile", providers.get("reference+compile", (None,)))[0]
        copy = copy_gbs.get((shape, dtype))
        for name, (median, nbytes, iqr) in providers.items():
            gbs = nbytes / median / 1e9 if nbytes else None
            cells = [
                name, f"{median * 1e3:.2f}", f"{iqr * 1e3:.2f}",
                f"{eager / median:.1f}x" if eager else "",
                f"{compiled / median:.1f}x" if compiled else "",
                f"{gbs:.1f}" if gbs else "",
                f"{100 * gbs / copy:.0f}%" if gbs and copy else "",
            ]
            print("| " + " | ".join(cells) + " |")
        print()
    for (shape, dtype), gbs in sorted(copy_gbs.items()):
        print(f"copy {shape} ({dtype.replace('torch.', '')}): {gbs:.1f} GB/s (read + write)")


if __name__ == "__main__":
    main(sys.argv[1])
