"""Every backend accepts exactly the pooling arguments F.max_pool2d accepts, and
refuses what it refuses: the public functions (max_pool2d, and the pooling part of
relu_lrn_max_pool2d) and, below them, the compiled operators of each backend with
their own checks (csrc/pool_geometry.h, kernels/layout.py)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import alexnet_fast
from alexnet_fast.ops import compiled_ops
from _helpers import FAST_BACKENDS

# (id, input shape, keyword arguments of F.max_pool2d)
CASES = [
    ("plain", (1, 2, 9, 9), dict(kernel_size=3, stride=2)),
    ("default-stride", (1, 2, 9, 9), dict(kernel_size=3)),
    ("empty-stride", (1, 2, 9, 9), dict(kernel_size=3, stride=[])),
    ("one-element-tuple", (1, 2, 9, 9), dict(kernel_size=(3,), stride=2)),
    ("rectangular", (1, 2, 9, 9), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), dilation=(2, 1))),
    ("numpy-int", (1, 2, 9, 9), dict(kernel_size=np.int64(3))),
    ("zero-d-tensor", (1, 2, 9, 9), dict(kernel_size=torch.tensor(3))),
    ("ceil-drops-last", (1, 1, 5, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    ("padding-half-kernel", (1, 2, 9, 9), dict(kernel_size=4, stride=1, padding=2)),
    ("padding-dilation-ok", (1, 2, 9, 9), dict(kernel_size=3, stride=1, padding=1, dilation=2)),
    ("padding-over-half", (1, 2, 9, 9), dict(kernel_size=3, stride=1, padding=2)),
    ("padding-over-half-dilated", (1, 2, 9, 9), dict(kernel_size=3, stride=1, padding=2, dilation=2)),
    ("negative-padding", (1, 2, 9, 9), dict(kernel_size=2, stride=1, padding=-1)),
    ("zero-kernel", (1, 2, 9, 9), dict(kernel_size=0)),
    ("zero-stride", (1, 2, 9, 9), dict(kernel_size=2, stride=0)),
    ("negative-stride", (1, 2, 9, 9), dict(kernel_size=2, stride=-1)),
    ("zero-dilation", (1, 2, 9, 9), dict(kernel_size=2, dilation=0)),
    ("stride-int32-max", (1, 2, 9, 9), dict(kernel_size=3, stride=2**31 - 1)),
    ("stride-2**31", (1, 2, 9, 9), dict(kernel_size=3, stride=2**31)),
    ("stride-2**62", (1, 2, 9, 9), dict(kernel_size=3, stride=2**62)),
    ("kernel-2**31", (1, 2, 9, 9), dict(kernel_size=2**31, stride=1)),
    ("dilation-2**31", (1, 2, 9, 9), dict(kernel_size=2, stride=1, dilation=2**31)),
    ("three-element-kernel", (1, 2, 9, 9), dict(kernel_size=(3, 3, 3), stride=2)),
    ("float-kernel", (1, 2, 9, 9), dict(kernel_size=2.0)),
    ("bool-kernel", (1, 2, 9, 9), dict(kernel_size=True)),
    ("ceil-mode-string", (1, 2, 9, 9), dict(kernel_size=3, stride=2, ceil_mode="yes")),
    ("ceil-mode-int", (1, 2, 9, 9), dict(kernel_size=3, stride=2, ceil_mode=1)),
    ("output-too-small", (1, 2, 9, 9), dict(kernel_size=10)),
    ("kernel-too-wide", (1, 1, 9, 9), dict(kernel_size=(1, 2**31 - 1), padding=(0, 0))),
    ("empty-batch", (0, 2, 9, 9), dict(kernel_size=3)),
    ("three-d-input", (2, 9, 9), dict(kernel_size=3, stride=2)),
    ("zero-channels", (1, 0, 9, 9), dict(kernel_size=3)),
    ("two-d-input", (9, 9), dict(kernel_size=3)),
    ("five-d-input", (1, 1, 2, 9, 9), dict(kernel_size=3)),
]


def pytorch(shape, kwargs):
    """F.max_pool2d's answer: the output, or None when it refuses."""
    try:
        return F.max_pool2d(torch.arange(float(np.prod(shape))).reshape(shape).sin(), **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return None


BACKENDS = [pytest.param("cpu", "reference", id="cpu-reference"), *FAST_BACKENDS]


@pytest.mark.parametrize("device,backend", BACKENDS)
def test_max_pool2d_accepts_and_refuses_as_pytorch(device, backend):
    for name, shape, kwargs in CASES:
        expected = pytorch(shape, kwargs)
        x = torch.arange(float(np.prod(shape))).reshape(shape).sin().to(device)
        if expected is None:
            with pytest.raises((ValueError, TypeError, RuntimeError)):
                alexnet_fast.max_pool2d(x, **kwargs, backend=backend)
            continue
        try:
            out = alexnet_fast.max_pool2d(x, **kwargs, backend=backend)
        except Exception as error:  # noqa: BLE001 - the case's name is the message
            raise AssertionError(f"{name}: refused what F.max_pool2d accepts: {error}") from error
        assert torch.equal(out.cpu(), expected), name


@pytest.mark.parametrize("device,backend", BACKENDS)
def test_fused_op_pools_with_the_same_rules(device, backend):
    """relu_lrn_max_pool2d takes kernel_size, stride, padding and ceil_mode (dilation 1)."""
    for name, shape, kwargs in CASES:
        if "dilation" in kwargs or len(shape) != 4:
            continue
        expected = pytorch(shape, kwargs)
        x = torch.randn(shape).to(device)
        # F's stride defaults to the kernel size; the fused op's to 2 (AlexNet's).
        fused_kwargs = {"stride": None, **kwargs}
        call = lambda: alexnet_fast.relu_lrn_max_pool2d(x, 3, backend=backend, **fused_kwargs)  # noqa: E731
        if expected is None:
            with pytest.raises((ValueError, TypeError, RuntimeError)):
                call()
        else:
            assert call().shape == expected.shape, name


# Pairs as the public functions pass them, that F.max_pool2d refuses: the compiled
# operators refuse them by themselves too.
REFUSED_PAIRS = [
    ("padding-over-half", [3, 3], [1, 1], [2, 2], [1, 1]),
    ("padding-over-half-dilated", [3, 3], [1, 1], [2, 2], [2, 2]),
    ("negative-padding", [2, 2], [1, 1], [-1, -1], [1, 1]),
    ("zero-stride", [2, 2], [0, 0], [0, 0], [1, 1]),
    ("stride-2**31", [3, 3], [2**31, 2**31], [0, 0], [1, 1]),
    ("zero-dilation", [2, 2], [1, 1], [0, 0], [0, 0]),
    ("output-too-small", [10, 10], [10, 10], [0, 0], [1, 1]),
]


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
@pytest.mark.parametrize("case", REFUSED_PAIRS, ids=[c[0] for c in REFUSED_PAIRS])
def test_compiled_operators_refuse_by_themselves(device, backend, case):
    _, kernel, stride, padding, dilation = case
    x = torch.randn(1, 2, 9, 9, device=device)
    forward = compiled_ops("max_pool2d", backend, device).forward
    with pytest.raises(RuntimeError, match=r"kernel_size|stride|padding|dilation|output size"):
        forward(x, kernel, stride, padding, dilation, False, True)
    if dilation == [1, 1]:
        fused = compiled_ops("relu_lrn_max_pool2d", backend, device).forward
        with pytest.raises(RuntimeError, match=r"kernel_size|stride|padding|output size"):
            fused(x, 5, 1e-4, 0.75, 1.0, kernel, stride, padding, False, True)
