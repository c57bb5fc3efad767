"""Shared test parameters: which (device, backend) pairs run, tolerances."""
import pytest
import torch

from alexnet_fast._backends import BACKEND_TABLE, usable


def _fast_backends():
    """(device, backend): every fast backend of the backend table on every device type
    it supports. CUDA pairs carry the `cuda` mark (skipped without a GPU); a CPU pair
    whose backend is not built here is skipped, naming the reason."""
    pairs = []
    for device in ("cpu", "cuda"):
        for backend in BACKEND_TABLE:
            if device not in backend.op_suffix:
                continue
            marks = [pytest.mark.cuda] if device == "cuda" else []
            reason = usable(backend, device) if device == "cpu" else None
            if reason is not None:
                marks.append(pytest.mark.skip(reason=f"backend={backend.name!r}{reason}"))
            pairs.append(pytest.param(device, backend.name, id=f"{device}-{backend.name}", marks=marks))
    return pairs


FAST_BACKENDS = _fast_backends()

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]

# Relative tolerance against a float64 reference computed from the same
# (rounded) input: the result is rounded once to the storage type, plus
# float32 arithmetic for the low-precision types.
RTOL = {torch.float64: 1e-12, torch.float32: 2e-6, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def is_slow_interpreter(device, backend):
    return device == "cpu" and backend == "triton"


# The same pairs, with Triton's CPU interpreter in the exhaustive grid only: for the few
# tests whose every case there takes 5 to 20 s (whole models, opcheck, torch.compile).
FAST_BACKENDS_INTERPRETER_SLOW = [
    pytest.param(*p.values, id=p.id,
                 marks=[*p.marks, pytest.mark.slow] if is_slow_interpreter(*p.values) else p.marks)
    for p in FAST_BACKENDS
]


def is_emulated(device, backend) -> bool:
    """A backend run on a device it only emulates (Triton's interpreter, the CUDA source
    run thread by thread on the CPU): 10 to 1000 times slower than the cpu backend."""
    return any(row.name == backend and device in row.emulated_on for row in BACKEND_TABLE)


def gradcheck_fast_mode(device, backend, exhaustive) -> bool:
    """gradcheck's fast mode (random projections v^T J u instead of the whole Jacobian:
    a few evaluations instead of two per input element) for Triton's interpreter always
    (the whole Jacobian took 13 minutes there) and for the other emulated backends in the
    default set; the whole Jacobian everywhere else and under --slow."""
    return is_slow_interpreter(device, backend) or (is_emulated(device, backend) and not exhaustive)


def assert_compiles_fullgraph(fn, x):
    """torch.compile(fn, fullgraph=True) (no graph break) gives fn's eager values and
    input gradients."""
    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True)
    out = compiled(x)
    torch.testing.assert_close(out, fn(x))
    (grad,) = torch.autograd.grad(out.sum(), x)
    (expected,) = torch.autograd.grad(fn(x).sum(), x)
    torch.testing.assert_close(grad, expected)


def assert_close_to(actual, expected, dtype, atol_scale=None, equal_nan=False):
    """actual (any dtype) against a float64 expected: relative to each value,
    with an absolute floor proportional to the largest value (cancellation)."""
    rtol = RTOL[dtype]
    floor = expected.abs().nan_to_num(0, 0, 0).max().item() if expected.numel() else 0.0
    atol = rtol * floor * (atol_scale if atol_scale is not None else 1e-2) + 1e-30
    torch.testing.assert_close(actual.double(), expected, rtol=rtol, atol=atol, equal_nan=equal_nan)
