"""Properties of the C++ CPU kernels beyond op semantics: every instruction-set
variant runs where asked and matches float64 references, the variants agree,
the fused op's LRN is bitwise the separate op's, and large outputs reuse cached
memory without changing results."""
import functools
import os
import subprocess
import sys
import tempfile

import pytest
import torch
import torch.nn.functional as F

import alexnet_fast
from alexnet_fast import _C
from _helpers import RTOL, assert_close_to


LRN = dict(alpha=5e-4, beta=0.75, k=2.0)

# ---------------------------------------------------------------------------
# The instruction-set variants (csrc/cpu/cpu_isa.h), one child process each:
# the variant is chosen once per process, at most the one that
# ALEXNET_FAST_CPU_ISA asks for. _C._cpu_variants_used() names the variant
# each kernel ran last.
#
# The variant each kernel runs at a cap (also in docs/performance.md, "CPU
# paths"):
#   relu_lrn forward and backward, and the fused op's LRN rows (forward and
#   backward): the capped variant for float rows (float32, float16,
#   bfloat16); float64 rows always base.
#   max_pool2d forward and backward: the capped variant on the vector paths
#   (NCHW 3x3 / stride 2, channels-last with any window); base, scalar code,
#   for other NCHW windows and for the NCHW backward from PyTorch's flat
#   indices.
#   The fused op's pooling ("relu_lrn_max_pool2d_forward_pooling"): the
#   capped variant for NCHW float32; base for other dtypes and channels-last.
ISAS = ("base", "avx2", "avx512")
U = 2.0**-24  # float32's unit roundoff
# |p / s^-beta - 1| for normal s, in units of U (docs/math.md, "CPU
# instruction sets"); p is the row functions' s^-0.75 or s^-0.5.
POWER_BOUND = {"base": 6.5, "avx2": 14.5, "avx512": 3.3}
# s = k + alpha/size * sum a^2 adds its rounding, at most (size + 2) U, which
# the power scales by beta <= 1; y = a * p rounds once more.
LRN_SIZE = 5
FORWARD_SLACK = LRN_SIZE + 3

_FLAGS_NEEDED = {"avx2": ("avx2", "fma"), "avx512": ("avx512f", "avx512bw", "avx512dq", "avx512vl")}

_CHILD_SCRIPT = r"""
import sys, torch, alexnet_fast
from alexnet_fast import _C


def ran(*kernels):
    used = _C._cpu_variants_used()
    return {kernel: used[kernel] for kernel in kernels}


def make(shape, dtype, layout):
    x = (torch.randn(shape) * 3).to(dtype)
    return x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x


def backward(fn, x, **params):
    leaf = x.clone().requires_grad_()
    out = fn(leaf, **params, backend="cpu")
    grad_out = torch.randn(out.shape).to(x.dtype)
    out.backward(grad_out)
    return out.detach(), grad_out, leaf.grad


torch.manual_seed(0)
cases = []
for name in ("float32", "bfloat16"):
    dtype = getattr(torch, name)
    for layout in ("contiguous", "channels_last"):
        # 9 * 23 = 207 positions per channel and 19 channels: rows with tails
        # for 4, 8 and 16 lanes in either layout.
        x = make((2, 19, 9, 23), dtype, layout)
        for beta in (0.75, 0.5, 1.0, 0.6):
            params = dict(size=LRN_SIZE, alpha=1e-2, beta=beta, k=1.0)
            out, grad_out, grad = backward(alexnet_fast.relu_lrn, x, **params)
            cases.append(dict(op="relu_lrn", dtype=name, layout=layout, params=params, x=x, grad_out=grad_out,
                              out=out, grad=grad, ran=ran("relu_lrn_forward", "relu_lrn_backward")))
        # The fused op, also on 9 x 45 planes: 22 pooled columns, a 16-lane
        # block and an overlapping one (8-lane blocks at avx2 and base), and
        # with padding the scalar windows at the row ends.
        wide = make((2, 7, 9, 45), dtype, layout)
        fused_planes = [(x, dict(kernel_size=3, stride=2)), (wide, dict(kernel_size=3, stride=2)),
                        (wide, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True))]
        for beta in (0.75, 0.5, 1.0, 0.6):
            for plane, pool in fused_planes:
                params = dict(size=LRN_SIZE, alpha=1e-2, beta=beta, k=1.0)
                out, grad_out, grad = backward(alexnet_fast.relu_lrn_max_pool2d, plane, **params, **pool)
                fused_ran = ran("relu_lrn_max_pool2d_forward", "relu_lrn_max_pool2d_forward_pooling",
                                "relu_lrn_max_pool2d_backward")
                # Where the fused op's maxima are (bitwise those of the chain).
                lrn = alexnet_fast.relu_lrn(plane, **params, backend="cpu")
                indices = alexnet_fast.max_pool2d(lrn, **pool, return_indices=True, backend="cpu")[1]
                cases.append(dict(op="relu_lrn_max_pool2d", dtype=name, layout=layout, params={**params, **pool},
                                  x=plane, grad_out=grad_out, out=out, indices=indices, grad=grad, ran=fused_ran))
        # 15 x 21 planes: odd rows and columns under 3x3 / stride 2 windows.
        x = make((2, 19, 15, 21), dtype, layout)
        for params in (dict(kernel_size=3, stride=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                       dict(kernel_size=2, stride=1)):
            out, indices = alexnet_fast.max_pool2d(x, **params, return_indices=True, backend="cpu")
            forward_ran = ran("max_pool2d_forward")
            _, grad_out, grad = backward(alexnet_fast.max_pool2d, x, **params)
            cases.append(dict(op="max_pool2d", dtype=name, layout=layout, params=params, x=x, grad_out=grad_out,
                              out=out, indices=indices, grad=grad, ran={**forward_ran, **ran("max_pool2d_backward")}))

# The power over the range of s: size 1, alpha 1, k 0 give s = a^2, exact
# for a with 12-bit significands, from below FLT_MIN (subnormal s) to FLT_MAX.
significand = torch.randint(2048, 4096, (2003,), dtype=torch.float64)
a = torch.ldexp(significand, torch.randint(-85, 53, (2003,))).float()
for beta in (0.75, 0.5):
    params = dict(size=1, alpha=1.0, beta=beta, k=0.0)
    out = alexnet_fast.relu_lrn(a.view(1, 1, -1), **params, backend="cpu").flatten()
    cases.append(dict(op="power", dtype="float32", layout="contiguous", params=params, x=a, out=out,
                      ran=ran("relu_lrn_forward")))

torch.save(dict(used=_C._cpu_variants_used(), cases=cases), sys.argv[1])
"""


def _cpu_flags():
    """The CPU's feature flags as Linux reports them (it leaves out what the OS
    does not enable), or None elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def _missing(isa):
    """Why `isa` cannot run here, or None."""
    if isa == "base":
        return None
    if isa not in _C._cpu_variants_used()["compiled"]:
        return f"this build has no {isa} variant (it needs GCC on x86-64 Linux)"
    flags = _cpu_flags()
    if flags is None:  # no independent check: trust the extension's
        if ISAS.index(_C._cpu_variants_used()["supported"]) < ISAS.index(isa):
            return f"this CPU has no {isa}"
        return None
    lacking = [flag for flag in _FLAGS_NEEDED[isa] if flag not in flags]
    return f"this CPU has no {', '.join(flag.upper() for flag in lacking)}" if lacking else None


def _require(isa):
    reason = _missing(isa)
    if reason is not None:
        pytest.skip(reason)


@functools.cache
def _run_variant(isa):
    env = dict(os.environ, ALEXNET_FAST_CPU_ISA=isa)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "result.pt")
        script = f"LRN_SIZE = {LRN_SIZE}\n" + _CHILD_SCRIPT
        done = subprocess.run([sys.executable, "-c", script, path], env=env, capture_output=True, text=True,
                              timeout=240)
        assert done.returncode == 0, done.stderr
        result = torch.load(path)
    for case in result["cases"]:
        case["dtype"] = getattr(torch, case["dtype"])
    return result


def _case_id(case):
    return f"{case['op']} {case['dtype']} {case['layout']} {case['params']}"


def _expected_variant(isa, case, kernel):
    if kernel == "relu_lrn_max_pool2d_forward_pooling":
        vector_path = case["dtype"] == torch.float32 and case["layout"] == "contiguous"
        return isa if vector_path else "base"
    if kernel.startswith("max_pool2d"):
        p = case["params"]
        vector_path = case["layout"] == "channels_last" or (p["kernel_size"], p["stride"]) == (3, 2)
        return isa if vector_path else "base"
    return "base" if case["dtype"] == torch.float64 else isa


@pytest.mark.parametrize("isa", ISAS)
def test_requested_variant_runs(isa):
    # Fails, not skips, where the CPU has the instruction set but another
    # variant ran.
    _require(isa)
    result = _run_variant(isa)
    assert result["used"]["selected"] == isa, result["used"]
    for case in result["cases"]:
        for kernel, variant in case["ran"].items():
            expected = _expected_variant(isa, case, kernel)
            assert variant == expected, f"{_case_id(case)}: {kernel} ran {variant}, expected {expected}"


class _GradientRoundedTo(torch.autograd.Function):
    """The identity, whose backward rounds the gradient to `dtype`: the chain
    max_pool2d(relu_lrn(x)) hands relu_lrn's backward a gradient in x's dtype,
    and the fused op rounds it there too (to be bitwise that chain)."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = dtype
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.dtype).double(), None


def _lrn_reference(case):
    """float64 F.local_response_norm(relu(x)) (then F.max_pool2d for the fused
    op), and its input gradient for the case's grad_out."""
    p = case["params"]
    x = case["x"].double().requires_grad_()
    out = F.local_response_norm(torch.relu(x), p["size"], p["alpha"], p["beta"], p["k"])
    if case["op"] == "relu_lrn_max_pool2d":
        # The float64 values at the op's own maxima: which of two values a
        # rounding apart wins (ties are common in bfloat16) is the op's
        # rounding, not its math.
        n, c = out.shape[:2]
        indices = case["indices"].reshape(n, c, -1)
        out = _GradientRoundedTo.apply(out, case["dtype"])
        out = out.reshape(n, c, -1).gather(2, indices).view(case["indices"].shape)
    out.backward(case["grad_out"].double())
    return out.detach(), x.grad


def _max_pool_reference(case):
    x = case["x"].double().requires_grad_()
    out, indices = F.max_pool2d(x, **case["params"], return_indices=True)
    out.backward(case["grad_out"].double())
    return out.detach(), indices, x.grad


def _forward_rtol(isa, dtype):
    return (POWER_BOUND[isa] + FORWARD_SLACK) * U if dtype == torch.float32 else RTOL[dtype]


@pytest.mark.parametrize("isa", ISAS)
def test_variant_matches_float64_references(isa):
    _require(isa)
    for case in _run_variant(isa)["cases"]:
        dtype, name = case["dtype"], _case_id(case)
        if case["op"] == "max_pool2d":
            out, indices, grad = _max_pool_reference(case)
            assert torch.equal(case["out"], out.to(dtype)), name  # a maximum is exact
            assert torch.equal(case["indices"], indices), name
            assert_close_to(case["grad"], grad, dtype)
        elif case["op"] in ("relu_lrn", "relu_lrn_max_pool2d"):
            out, grad = _lrn_reference(case)
            torch.testing.assert_close(case["out"].double(), out, rtol=_forward_rtol(isa, dtype), atol=1e-30,
                                       msg=lambda m: f"{name}: {m}")
            assert_close_to(case["grad"], grad, dtype)


@pytest.mark.parametrize("isa", ISAS)
def test_power_within_documented_bound(isa):
    # y = a * s^-beta with s = a^2 exact: the error of the power alone, plus
    # y's rounding, over s in [FLT_MIN, FLT_MAX). Subnormal s (k = 0 and tiny
    # activations only) is not rounded exactly; there the value must be finite.
    _require(isa)
    for case in _run_variant(isa)["cases"]:
        if case["op"] != "power":
            continue
        a = case["x"].double()
        s = case["x"] * case["x"]
        normal = s >= torch.finfo(torch.float32).tiny
        assert normal.any() and (~normal).any()
        expected = a * s.double() ** -case["params"]["beta"]
        error = (case["out"].double() / expected - 1).abs()
        worst = error[normal].max().item()
        assert worst <= (POWER_BOUND[isa] + 1) * U, f"{_case_id(case)}: {worst / U:.2f} U"
        assert torch.isfinite(case["out"][~normal]).all() and (case["out"][~normal] > 0).all(), _case_id(case)
        if isa == "avx512":
            # Its s^-1/2 and s^-3/4 have no subnormal intermediate: the bound
            # holds against the (rounded) subnormal s as well (docs/math.md).
            worst = error[~normal].max().item()
            assert worst <= (POWER_BOUND[isa] + 1) * U, f"{_case_id(case)}, subnormal s: {worst / U:.2f} U"


@pytest.mark.parametrize("first, second", [("base", "avx2"), ("base", "avx512"), ("avx2", "avx512")])
def test_variants_agree(first, second):
    # Max-pool is exact in every variant: bitwise. LRN: within the sum of the
    # two variants' documented bounds (and the float32 outputs and gradients
    # within 2e-6 / 1e-7), and not bitwise equal: the variants round
    # differently, so equal powers everywhere would mean one variant's rows
    # never ran (whatever the record says).
    _require(first)
    _require(second)
    powers_differ = False
    cases = zip(_run_variant(first)["cases"], _run_variant(second)["cases"])
    for a, b in cases:
        name, dtype = _case_id(a), a["dtype"]
        assert name == _case_id(b)
        if a["op"] == "max_pool2d":
            for key in ("out", "indices", "grad"):
                assert torch.equal(a[key], b[key]), f"{name}: {key}"
            continue
        rtol = _forward_rtol(first, dtype) + _forward_rtol(second, dtype)
        # A subnormal s is rounded itself (avx512 uses that rounded s; base and
        # avx2 recompute it in double): compare over normal s only.
        kept = a["x"] * a["x"] >= torch.finfo(torch.float32).tiny if a["op"] == "power" else ...
        torch.testing.assert_close(b["out"][kept].double(), a["out"][kept].double(), rtol=rtol, atol=1e-30,
                                   msg=lambda m: f"{name}: {m}")
        if a["op"] == "power":
            powers_differ |= not torch.equal(a["out"][kept], b["out"][kept])
        if a["op"] == "power" or dtype != torch.float32:
            continue
        torch.testing.assert_close(b["out"], a["out"], rtol=2e-6, atol=1e-7)
        torch.testing.assert_close(b["grad"], a["grad"], rtol=2e-6, atol=1e-7)
    assert powers_differ, f"{first} and {second} gave the same powers bit for bit"


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
