"""Shared test parameters: which (device, backend) pairs run, tolerances."""
import pytest
import torch

# (device, backend): every fast backend on every device it supports. CUDA
# pairs carry the `cuda` mark and are skipped without a GPU.
FAST_BACKENDS = [
    pytest.param("cpu", "cpu", id="cpu-cpu"),
    pytest.param("cpu", "triton", id="cpu-triton"),
    pytest.param("cuda", "cuda", id="cuda-cuda", marks=pytest.mark.cuda),
    pytest.param("cuda", "triton", id="cuda-triton", marks=pytest.mark.cuda),
]

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]

# Relative tolerance against a float64 reference computed from the same
# (rounded) input: the result is rounded once to the storage type, plus
# float32 arithmetic for the low-precision types.
RTOL = {torch.float64: 1e-12, torch.float32: 2e-6, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def is_slow_interpreter(device, backend):
    return device == "cpu" and backend == "triton"


def assert_close_to(actual, expected, dtype, atol_scale=None, equal_nan=False):
    """actual (any dtype) against a float64 expected: relative to each value,
    with an absolute floor proportional to the largest value (cancellation)."""
    rtol = RTOL[dtype]
    floor = expected.abs().nan_to_num(0, 0, 0).max().item() if expected.numel() else 0.0
    atol = rtol * floor * (atol_scale if atol_scale is not None else 1e-2) + 1e-30
    torch.testing.assert_close(actual.double(), expected, rtol=rtol, atol=atol, equal_nan=equal_nan)
