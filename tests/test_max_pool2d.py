"""max_pool2d against F.max_pool2d: values, indices and float32/float64
gradients bit for bit; float16/bfloat16 gradients to one rounding."""
import random

import numpy as np

import pytest
import torch
import torch.nn.functional as F

import alexnet_fast
from alexnet_fast.nn import MaxPool2d
from alexnet_fast.ops import compiled_ops
from _helpers import DTYPES, FAST_BACKENDS, RTOL, gradcheck_fast_mode, is_slow_interpreter

ops = torch.ops.alexnet_fast

# (shape, kernel_size, stride, padding, dilation, ceil_mode)
ALEXNET = [
    ((2, 96, 55, 55), 3, 2, 0, 1, False),  # pool1: 55 -> 27
    ((2, 256, 27, 27), 3, 2, 0, 1, False),  # pool2: 27 -> 13
    ((2, 256, 13, 13), 3, 2, 0, 1, False),  # pool5: 13 -> 6
]


def every_window_overlaps(in_sizes, out_sizes, kernel, stride, padding, dilation):
    """False for configurations where some window lies wholly in the padding
    (possible with dilation): PyTorch returns -inf with an index outside the
    plane there, and its backward then writes outside the plane."""
    return all(
        any(0 <= o * s - p + i * d < n for i in range(k))
        for n, m, k, s, p, d in zip(in_sizes, out_sizes, kernel, stride, padding, dilation)
        for o in range(m)
    )


def random_configs(count, seed=1234):
    """Valid random configurations: rectangular kernels, strides, padding up
    to half the kernel, dilation and both ceil modes."""
    rng = random.Random(seed)
    configs = []
    while len(configs) < count:
        kernel = (rng.randint(1, 5), rng.randint(1, 5))
        stride = (rng.randint(1, 3), rng.randint(1, 3))
        dilation = (rng.randint(1, 3), rng.randint(1, 2))
        padding = tuple(rng.randint(0, k // 2) for k in kernel)
        shape = (rng.randint(1, 2), rng.randint(1, 5), rng.randint(1, 15), rng.randint(1, 15))
        ceil_mode = rng.random() < 0.5
        sizes = [
            alexnet_fast.kernels.layout.pooling_output_size(s, k, st, p, d, ceil_mode)
            for s, k, st, p, d in zip(shape[2:], kernel, stride, padding, dilation)
        ]
        if min(sizes) >= 1 and every_window_overlaps(shape[2:], sizes, kernel, stride, padding, dilation):
            configs.append((shape, kernel, stride, padding, dilation, ceil_mode))
    return configs


CASES = ALEXNET + random_configs(24) + [
    ((1, 3, 8, 8), 2, 2, 0, 1, True),
    ((1, 2, 6, 7), 3, 2, 1, 1, True),  # last window would start in the padding: dropped
    ((1, 2, 5, 5), 3, 3, 1, 1, True),
    ((2, 3, 9, 10), (3, 2), (2, 1), (1, 0), (2, 1), False),
    ((1, 1, 20, 20), 17, 1, 0, 1, False),  # 289 window positions: int32 argmax
]


def for_interpreter(shape, device, backend):
    # Triton's CPU interpreter takes ~0.5 ms per program instance.
    if is_slow_interpreter(device, backend):
        return (1, min(shape[1], 8)) + tuple(shape[2:])
    return shape


def check_against_pytorch(x, args, backend, grad_seed=0):
    """Values, indices and gradient of ours against F.max_pool2d on the same input."""
    kernel, stride, padding, dilation, ceil_mode = args
    x_ours = x.detach().clone().requires_grad_()
    x_ref = x.detach().cpu().clone().requires_grad_()
    out, idx = alexnet_fast.max_pool2d(x_ours, kernel, stride, padding, dilation, ceil_mode, True, backend=backend)
    ref_out, ref_idx = F.max_pool2d(x_ref, kernel, stride, padding, dilation, ceil_mode=ceil_mode, return_indices=True)
    assert out.shape == ref_out.shape and out.dtype == x.dtype
    torch.testing.assert_close(out.cpu(), ref_out, rtol=0, atol=0, equal_nan=True)
    assert torch.equal(idx.cpu(), ref_idx), (idx.cpu() != ref_idx).nonzero()[:5]
    gen = torch.Generator().manual_seed(grad_seed)
    grad = torch.randn(ref_out.shape, generator=gen, dtype=torch.float64)
    out.backward(grad.to(x.dtype).to(x.device))
    if x.dtype in (torch.float32, torch.float64):
        ref_out.backward(grad.to(x.dtype))
        assert torch.equal(x_ours.grad.cpu(), x_ref.grad), (x_ours.grad.cpu() - x_ref.grad).abs().max()
    else:
        # float64 sums of the same (rounded) gradients, routed by PyTorch's indices.
        g = grad.to(x.dtype).double().flatten(-2)
        expected = torch.zeros(*x.shape[:-2], x.shape[-2] * x.shape[-1], dtype=torch.float64)
        expected.scatter_add_(-1, ref_idx.flatten(-2), g).unflatten(-1, x.shape[-2:])
        torch.testing.assert_close(
            x_ours.grad.cpu().double(), expected.view(x.shape), rtol=RTOL[x.dtype], atol=RTOL[x.dtype] * 1e-3
        )
    return out, x_ours.grad


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_pytorch_exactly(device, backend, dtype, case):
    shape, *args = case
    shape = for_interpreter(shape, device, backend)
    x = torch.randn(shape).to(dtype).to(device)
    check_against_pytorch(x, args, backend)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_ties_go_to_first_in_row_major_order(device, backend, dtype):
    # ReLU output is full of equal zeros; rounding makes ties among positives too.
    x = torch.relu(torch.randn(2, 4, 15, 15)).mul(2).round()
    x[0, 0] = 1.0  # a constant plane
    for args in [(3, 2, 0, 1, False), (3, 2, 1, 1, True), ((2, 3), 1, (1, 1), (2, 1), False)]:
        check_against_pytorch(x.to(dtype).to(device), args, backend)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_nan_and_infinities(device, backend, dtype):
    x = torch.randn(1, 3, 9, 9)
    x[0, 0, 1, 1] = float("nan")
    x[0, 0, 1, 2] = float("nan")  # two NaN in one window: PyTorch reports the last
    x[0, 0, 5, 5] = float("inf")
    x[0, 1, :4, :4] = float("-inf")  # whole windows of -inf
    x[0, 2, 3, 3] = float("-inf")
    x[0, 2, 6, 6] = float("nan")
    x[0, 2, 6, 7] = float("inf")
    for args in [(3, 2, 0, 1, False), (3, 2, 1, 1, True), (2, 1, 1, 2, False)]:
        out, _ = check_against_pytorch(x.to(dtype).to(device), args, backend)
        assert out.isnan().any() and out.isinf().any()


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_channels_last_stays_channels_last(device, backend):
    x = torch.randn(2, 16, 13, 11, device=device).to(memory_format=torch.channels_last)
    for args in [(3, 2, 0, 1, False), (2, 2, 1, 1, True), (3, 1, 1, 2, False)]:
        out, grad = check_against_pytorch(x, args, backend)
        assert out.is_contiguous(memory_format=torch.channels_last)
        assert grad.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_non_contiguous_and_3d_inputs(device, backend):
    x = torch.randn(2, 13, 11, 6, device=device).permute(0, 3, 1, 2)[:, ::2]
    assert not x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last)
    check_against_pytorch(x, (3, 2, 1, 1, True), backend)
    check_against_pytorch(torch.randn(4, 9, 9, device=device), (3, 2, 0, 1, False), backend)
    out = alexnet_fast.max_pool2d(torch.randn(4, 9, 9, device=device), 3, 2, backend=backend)
    assert out.shape == (4, 4, 4)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_gradcheck_float64(device, backend, exhaustive):
    # Distinct values (no near-ties inside gradcheck's step).
    x = torch.randperm(2 * 3 * 9 * 8).double().view(2, 3, 9, 8).div(7).to(device).requires_grad_()
    for args in [(3, 2, 0, 1, False), (2, 1, 1, 2, True)]:
        assert torch.autograd.gradcheck(lambda t: alexnet_fast.max_pool2d(t, *args, backend=backend), (x,),
                                        fast_mode=gradcheck_fast_mode(device, backend, exhaustive))


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_empty_batch(device, backend):
    x = torch.randn(0, 8, 9, 9, device=device, requires_grad=True)
    out = alexnet_fast.max_pool2d(x, 3, 2, backend=backend)
    assert out.shape == (0, 8, 4, 4)
    out.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_compact_argmax_and_repeatable_backward(device, backend):
    x = torch.randn(2, 4, 13, 13, device=device)
    forward = compiled_ops("max_pool2d", backend, device).forward
    out, argmax = forward(x, [3, 3], [2, 2], [0, 0], [1, 1], False, True)
    assert argmax.dtype == torch.uint8 and argmax.shape == out.shape  # 1 byte per output, not 8
    assert int(argmax.max()) < 9
    _, no_argmax = forward(x, [3, 3], [2, 2], [0, 0], [1, 1], False, False)
    assert no_argmax.numel() == 0
    _, wide = forward(torch.randn(1, 1, 20, 20, device=device), [17, 17], [1, 1], [0, 0], [1, 1], False, True)
    assert wide.dtype == torch.int32
    x.requires_grad_()
    grad = torch.randn(2, 4, 11, 11, device=device)  # stride 1: each input is in up to 9 windows
    first, again = (
        torch.autograd.grad(alexnet_fast.max_pool2d(x, 3, 1, backend=backend), x, grad)[0] for _ in range(2)
    )
    assert torch.equal(first, again)


def pool_by_hand(x, k, s, p):
    """Max-pool written out window by window (ceil_mode, dilation 1): the maximum of the
    in-bounds elements, the first one on ties, PyTorch's flat index of it."""
    n, c, h, w = x.shape
    size = lambda length: -(-(length + 2 * p - k) // s) + 1  # noqa: E731 - ceil
    oh, ow = size(h), size(w)
    oh, ow = oh - ((oh - 1) * s >= h + p), ow - ((ow - 1) * s >= w + p)
    out, idx = torch.empty(n, c, oh, ow, dtype=x.dtype), torch.empty(n, c, oh, ow, dtype=torch.int64)
    for b, ch, i, j in np.ndindex(n, c, oh, ow):
        taps = [(r, q) for r in range(i * s - p, i * s - p + k) for q in range(j * s - p, j * s - p + k)
                if 0 <= r < h and 0 <= q < w]
        best = max(taps, key=lambda t: (x[b, ch, t[0], t[1]].item(), -taps.index(t)))
        out[b, ch, i, j], idx[b, ch, i, j] = x[b, ch, best[0], best[1]], best[0] * w + best[1]
    return out, idx


def test_reference_and_auto_backends():
    x = torch.randn(2, 3, 11, 11, dtype=torch.float64)
    expected_out, expected_idx = pool_by_hand(x, 3, 2, 1)
    for backend in ("reference", "auto"):
        out, idx = alexnet_fast.max_pool2d(x, 3, 2, 1, 1, True, True, backend=backend)
        assert torch.equal(out, expected_out) and torch.equal(idx, expected_idx), backend


def test_module_matches_nn_max_pool2d():
    x = torch.randn(2, 5, 14, 13)
    for kwargs in [dict(kernel_size=3, stride=2), dict(kernel_size=(2, 3), padding=1, ceil_mode=True, dilation=(1, 2))]:
        assert torch.equal(MaxPool2d(**kwargs)(x), torch.nn.MaxPool2d(**kwargs)(x))
    out, idx = MaxPool2d(3, 2, return_indices=True)(x)
    assert torch.equal(F.max_unpool2d(out, idx, 3, 2, output_size=x.shape[-2:]).amax((-2, -1)), x.amax((-2, -1)))


def test_bad_arguments_raise_clear_errors():
    x = torch.randn(1, 2, 5, 5)
    pool = alexnet_fast.max_pool2d
    for name, kwargs in [("kernel_size", dict(kernel_size=0)), ("stride", dict(kernel_size=2, stride=0)),
                         ("dilation", dict(kernel_size=2, dilation=0)), ("padding", dict(kernel_size=2, padding=-1)),
                         ("kernel_size", dict(kernel_size=(2, 2, 2))), ("kernel_size", dict(kernel_size=2.5))]:
        with pytest.raises(ValueError, match=rf"^{name} must be an int >= \d or a pair of them; got"):
            pool(x, **kwargs)
    with pytest.raises(ValueError, match=r"padding must be at most half the kernel size, kernel_size // 2 = 1 along h; got padding=\(2, 2\)"):
        pool(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"output size would be \(-1, -1\) for input size \(5, 5\)"):
        pool(x, 3, stride=1, dilation=3)
    with pytest.raises(ValueError, match=r"3-D \(C, H, W\) or 4-D .*got shape \(5, 5\)"):
        pool(torch.randn(5, 5), 2)
    with pytest.raises(ValueError, match=r"non-zero C, H and W; got shape \(1, 0, 5, 5\)"):
        pool(torch.randn(1, 0, 5, 5), 2)
    with pytest.raises(TypeError, match=r"got torch.int32"):
        pool(torch.ones(1, 2, 5, 5, dtype=torch.int32), 2)
    with pytest.raises(ValueError, match=r"backend must be one of .*got 'gpu'"):
        pool(x, 2, backend="gpu")
    with pytest.raises(ValueError, match=r"backend='cuda' needs a CUDA tensor; x is on cpu"):
        pool(x, 2, backend="cuda")
