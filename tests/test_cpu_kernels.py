"""Properties of the C++ CPU kernels beyond op semantics: the per-CPU
instruction-set variants agree, the fused op's LRN is bitwise the separate
op's, and large outputs reuse cached memory without changing results."""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import alexnet_fast
from _helpers import assert_close_to


LRN = dict(alpha=5e-4, beta=0.75, k=2.0)

# Run in a child process (the instruction set is read once per process):
# relu_lrn forward and backward, and the fused op, on fixed data.
_VARIANT_SCRIPT = r"""
import json, sys, torch, alexnet_fast
torch.manual_seed(0)
out = {}
for beta in (0.75, 0.5, 1.0, 0.6):
    for cl in (False, True):
        x = torch.randn(2, 19, 9, 23) * 3
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        x.requires_grad_()
        y = alexnet_fast.relu_lrn(x, 5, 1e-2, beta, 1.0, backend="cpu")
        g = torch.randn_like(y)
        y.backward(g)
        fused = alexnet_fast.relu_lrn_max_pool2d(x.detach(), 5, 1e-2, beta, 1.0, backend="cpu")
        out[f"{beta}-{cl}"] = [y.detach().flatten().tolist(), x.grad.flatten().tolist(), fused.flatten().tolist()]
json.dump(out, sys.stdout)
"""


def _run_variant(isa):
    env = dict(os.environ, ALEXNET_FAST_CPU_ISA=isa)
    done = subprocess.run([sys.executable, "-c", _VARIANT_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_instruction_set_variants_agree_to_float_rounding():
    # "base" is the SSE2 build with IEEE division and square roots; the default
    # is the best the CPU has (avx512: reciprocal square root estimates plus a
    # Newton step). Both must match float64 PyTorch; they may differ in the
    # last bits from each other.
    base, best = _run_variant("base"), _run_variant("avx512")
    assert base.keys() == best.keys()
    for key in base:
        for a, b in zip(base[key], best[key]):
            torch.testing.assert_close(torch.tensor(b), torch.tensor(a), rtol=2e-6, atol=1e-7)


U = 2.0**-24  # float32's unit roundoff
# |p / s^-beta - 1| over normal s, in units of U, for the row functions' s^-0.75
# and s^-0.5 (docs/math.md, "CPU instruction sets").
POWER_BOUND = {"base": 6.5, "avx2": 14.5, "avx512": 7.5}
_FLAGS_NEEDED = {"base": (), "avx2": ("avx2", "fma"), "avx512": ("avx512f", "avx512bw", "avx512dq", "avx512vl")}

# size 1, alpha 1, k 0 give s = a^2, exact for a with 12-bit significands:
# from below FLT_MIN (subnormal s) to FLT_MAX.
_POWER_SCRIPT = r"""
import sys, torch, alexnet_fast
torch.manual_seed(0)
significand = torch.randint(2048, 4096, (2003,), dtype=torch.float64)
a = torch.ldexp(significand, torch.randint(-85, 53, (2003,))).float()
out = {beta: alexnet_fast.relu_lrn(a.view(1, 1, -1), 1, 1.0, beta, 0.0, backend="cpu").flatten() for beta in (0.75, 0.5)}
torch.save(dict(a=a, out=out), sys.argv[1])
"""


def _cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.parametrize("isa", ["base", "avx2", "avx512"])
def test_power_within_documented_bound(isa, tmp_path):
    lacking = [flag for flag in _FLAGS_NEEDED[isa] if flag not in _cpu_flags()]
    if lacking:
        pytest.skip(f"this CPU has no {', '.join(flag.upper() for flag in lacking)}")
    env = dict(os.environ, ALEXNET_FAST_CPU_ISA=isa)
    done = subprocess.run([sys.executable, "-c", _POWER_SCRIPT, str(tmp_path / "power.pt")], env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    result = torch.load(tmp_path / "power.pt")
    a = result["a"]
    s = a * a
    normal = s >= torch.finfo(torch.float32).tiny
    assert normal.any() and (~normal).any()
    for beta, out in result["out"].items():
        error = (out.double() / (a.double() * s.double() ** -beta) - 1).abs()
        worst = error[normal].max().item()
        assert worst <= (POWER_BOUND[isa] + 1) * U, f"beta={beta}: {worst / U:.2f} U"  # + 1: y = a * p rounds
        # Subnormal s is not exact; its values must still be finite and positive.
        assert torch.isfinite(out[~normal]).all() and (out[~normal] > 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_lrn_is_bitwise_the_separate_ops(dtype, channels_last):
    # Both ops call the same LRN row functions (csrc/cpu/lrn_rows.h), so the
    # pooled maxima, their positions and the input gradients are bitwise
    # those of max_pool2d(relu_lrn(x)).
    x = torch.randn(3, 21, 15, 17, dtype=dtype) * 2
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x1 = x.clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    fused = alexnet_fast.relu_lrn_max_pool2d(x1, 5, **LRN, kernel_size=3, stride=2, backend="cpu")
    chain = alexnet_fast.max_pool2d(alexnet_fast.relu_lrn(x2, 5, **LRN, backend="cpu"), 3, 2, backend="cpu")
    assert torch.equal(fused, chain)
    g = torch.randn_like(fused)
    fused.backward(g)
    chain.backward(g)
    assert torch.equal(x1.grad, x2.grad)


def test_large_outputs_reuse_freed_memory():
    # 2 x 96 x 55 x 55 floats = 2.3 MB is below the cache's 4 MiB floor;
    # 8 x 96 x 55 x 55 = 9.3 MB is above it.
    x = torch.randn(8, 96, 55, 55)
    expected = F.local_response_norm(torch.relu(x.double()), 5, **LRN)
    first = alexnet_fast.relu_lrn(x, 5, **LRN, backend="cpu")
    pointer = first.data_ptr()
    assert_close_to(first, expected, torch.float32)
    del first
    second = alexnet_fast.relu_lrn(x, 5, **LRN, backend="cpu")
    assert second.data_ptr() == pointer  # the freed block came back
    assert_close_to(second, expected, torch.float32)
    # An ordinary tensor: it can grow, and keeps its values when it does.
    kept = second.clone()
    second.resize_(second.numel() * 2)
    assert torch.equal(second[: kept.numel()], kept.flatten())
    del second
    # Moving an output to shared memory (for another process) keeps its values.
    third = alexnet_fast.relu_lrn(x, 5, **LRN, backend="cpu")
    values = third.clone()
    third.share_memory_()
    assert third.is_shared() and torch.equal(third, values)
    del third
    # The cached memory is handed back on request, and not kept twice.
    assert alexnet_fast.release_cached_memory() > 0
    assert alexnet_fast.release_cached_memory() == 0


def test_cache_limit_variable_is_checked():
    env = dict(os.environ, ALEXNET_FAST_CPU_CACHE_MB="lots")
    script = "import torch, alexnet_fast; alexnet_fast.relu_lrn(torch.randn(8, 96, 55, 55), 5)"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode != 0
    assert "ALEXNET_FAST_CPU_CACHE_MB" in done.stderr and "'lots'" in done.stderr


def test_cache_disabled_still_gives_correct_outputs():
    env = dict(os.environ, ALEXNET_FAST_CPU_CACHE_MB="0")
    script = (
        "import torch, alexnet_fast\n"
        "x = torch.randn(8, 96, 55, 55)\n"
        "a = alexnet_fast.relu_lrn(x, 5, backend='cpu').clone()\n"
        "b = alexnet_fast.relu_lrn(x, 5, backend='cpu')\n"
        "assert torch.equal(a, b)\n"
        "assert alexnet_fast.release_cached_memory() == 0\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
