"""relu_lrn_max_pool2d against the eager chain F.max_pool2d(F.local_response_norm(relu(x)))
in float64: values, argmax (as PyTorch's indices) and gradients."""
import pytest
import torch
import torch.nn.functional as F

import alexnet_fast
from alexnet_fast.nn import ReLULRNMaxPool2d
from alexnet_fast.ops import compiled_ops
from alexnet_fast.ops.max_pool2d import flat_indices_and_validity
from _helpers import (DTYPES, FAST_BACKENDS, FAST_BACKENDS_INTERPRETER_SLOW, assert_close_to,
                      assert_compiles_fullgraph, gradcheck_fast_mode, is_slow_interpreter)

ops = torch.ops.alexnet_fast
LRN = dict(alpha=1e-2, beta=0.75, k=2.0)

# (shape, size, kernel_size, stride, padding, ceil_mode)
CASES = [
    ((2, 96, 55, 55), 5, 3, 2, 0, False),  # AlexNet norm1 + pool1
    ((2, 256, 27, 27), 5, 3, 2, 0, False),  # AlexNet norm2 + pool2
    ((2, 7, 9, 10), 3, 3, 2, 1, True),
    ((1, 3, 8, 8), 5, 2, 1, 1, False),  # C < size
    ((2, 10, 7, 6), 4, (3, 2), (2, 1), (1, 0), True),  # even size, rectangular
    ((1, 6, 11, 11), 1, 3, 3, 0, True),
]


def chain64(x, size, kernel_size, stride, padding, ceil_mode, alpha, beta, k):
    """The eager PyTorch chain in float64: the independent reference."""
    normalised = F.local_response_norm(torch.relu(x.double()), size, alpha, beta, k)
    return F.max_pool2d(normalised, kernel_size, stride, padding, ceil_mode=ceil_mode, return_indices=True)


def fused_ops(device, backend):
    return compiled_ops("relu_lrn_max_pool2d", backend, device)


def routed64(x64, size, argmax, kernel_size, stride, padding, alpha, beta, k):
    """The float64 LRN routed through a given argmax: the reference gradient of a
    float16/bfloat16 run, whose maxima are those of the rounded LRN values (ties that
    the rounding makes go to the first element) and so may sit elsewhere than float64's."""
    n, c, h, w = x64.shape
    kernel, stride, padding = ([v] * 2 if isinstance(v, int) else list(v) for v in (kernel_size, stride, padding))
    flat, valid = flat_indices_and_validity(argmax.cpu(), h, w, kernel, stride, padding, [1, 1])
    normalised = F.local_response_norm(torch.relu(x64), size, alpha, beta, k).reshape(n, c, -1)
    return torch.where(valid, normalised.gather(2, flat.reshape(n, c, -1)).view_as(valid), 0)


def run_case(device, backend, dtype, x, size, kernel_size, stride, padding, ceil_mode):
    x = x.to(dtype).to(device)
    x_ = x.detach().clone().requires_grad_()
    out = alexnet_fast.relu_lrn_max_pool2d(x_, size, **LRN, kernel_size=kernel_size, stride=stride,
                                           padding=padding, ceil_mode=ceil_mode, backend=backend)
    x64 = x.detach().cpu().double().requires_grad_()
    expected, expected_idx = chain64(x64, size, kernel_size, stride, padding, ceil_mode, **LRN)
    assert out.shape == expected.shape and out.dtype == dtype
    assert_close_to(out.detach().cpu(), expected.detach(), dtype, equal_nan=True)
    grad = torch.randn(expected.shape, dtype=torch.float64).to(dtype)
    out.backward(grad.to(device))
    if dtype in (torch.float16, torch.bfloat16):
        pair = [list(v) if isinstance(v, tuple) else [v, v] for v in (kernel_size, stride, padding)]
        _, argmax = fused_ops(device, backend)[0](x, size, *LRN.values(), *pair, ceil_mode, True)
        expected = routed64(x64, size, argmax, kernel_size, stride, padding, **LRN)
    expected.backward(grad.double())
    assert_close_to(x_.grad.cpu(), x64.grad, dtype, atol_scale=1.0)
    return out, x_.grad, expected_idx


def fused_cases():
    for pair in FAST_BACKENDS:
        device, backend = pair.values
        for dtype in DTYPES:
            for shape, *args in CASES:
                marks = pair.marks
                if is_slow_interpreter(device, backend) and shape[1] >= 96:
                    # Triton's CPU interpreter: AlexNet shapes at batch 1, small spatial size,
                    # under --slow.
                    shape, marks = (1, shape[1], 13, 13), marks + [pytest.mark.slow]
                yield pytest.param(device, backend, dtype, shape, *args, marks=marks,
                                   id=f"{pair.id}-{str(dtype)[6:]}-{shape}-{args}")


@pytest.mark.parametrize("device,backend,dtype,shape,size,kernel_size,stride,padding,ceil_mode", list(fused_cases()))
def test_matches_eager_chain(device, backend, dtype, shape, size, kernel_size, stride, padding, ceil_mode):
    x = torch.randn(shape, dtype=torch.float64) * 3
    run_case(device, backend, dtype, x, size, kernel_size, stride, padding, ceil_mode)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_routes_exactly_as_the_unfused_chain(device, backend, dtype, channels_last):
    """relu_lrn_max_pool2d is max_pool2d(relu_lrn(x)) of the same backend bit for bit: values,
    argmax (so the gradient's route) and input gradients, in every dtype. Values spread
    over few float16/bfloat16 steps make many windows tie after rounding."""
    x = (torch.rand(2, 6, 11, 11, dtype=torch.float64) * 0.05 + 1.6).to(dtype).to(device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    grad = torch.randn(2, 6, 5, 5, dtype=torch.float64).to(dtype).to(device)
    results = []
    for fused in (True, False):
        x_ = x.detach().clone().requires_grad_()
        if fused:
            out = alexnet_fast.relu_lrn_max_pool2d(x_, 3, 1.0, 0.75, 1.0, backend=backend)
        else:
            out = alexnet_fast.max_pool2d(alexnet_fast.relu_lrn(x_, 3, 1.0, 0.75, 1.0, backend=backend), 3, 2,
                                          backend=backend)
        out.backward(grad)
        results.append((out.detach(), x_.grad))
    (out, dx), (chain_out, chain_dx) = results
    assert torch.equal(out, chain_out)
    assert torch.equal(dx, chain_dx), (dx != chain_dx).nonzero()[:5]


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_rounding_tie_goes_to_the_first_element(device, backend):
    """bfloat16 [1.6171875, 1.609375] (size 1, alpha 1, beta 0.75, k 1, pool (1, 2)): the LRN
    values differ in float32 but round to the same bfloat16; the chain, and so the fused op,
    send the gradient to the first one."""
    x = torch.tensor([1.6171875, 1.609375], dtype=torch.bfloat16).view(1, 1, 1, 2).to(device).requires_grad_()
    out = alexnet_fast.relu_lrn_max_pool2d(x, 1, 1.0, 0.75, 1.0, kernel_size=(1, 2), stride=(1, 2),
                                           backend=backend)
    out.backward(torch.ones_like(out))
    dx = x.grad.float().flatten().cpu()
    assert dx[0] != 0 and dx[1] == 0
    assert dx[0].item() == pytest.approx(-0.0325, abs=1e-3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_argmax_matches_pytorch_indices_with_relu_ties(device, backend, dtype):
    # Mostly negative input: many windows are all ReLU zeros (exact ties), where the
    # first in row-major order must win, as in PyTorch. 45 columns: 22 pooled ones,
    # so the float32 rows run full vector blocks and an overlapping last block.
    # (The tie is invisible in the gradient, which the ReLU zeroes: only argmax shows it.)
    x = torch.randn(2, 8, 13, 45, dtype=torch.float64) - 1.0
    assert (torch.relu(x).unfold(2, 3, 2).unfold(3, 3, 2).amax((-2, -1)) == 0).any()
    forward, _ = fused_ops(device, backend)
    out, argmax = forward(x.to(device, dtype), 5, *LRN.values(), [3, 3], [2, 2], [0, 0], False, True)
    if dtype == torch.float64:
        _, expected_idx = chain64(x, 5, 3, 2, 0, False, **LRN)
    else:
        # PyTorch's own pool over the backend's float32 LRN values: the fused op
        # pools exactly those values.
        lrn = alexnet_fast.relu_lrn(x.to(device, dtype), 5, *LRN.values(), backend=backend)
        _, expected_idx = F.max_pool2d(lrn.cpu(), 3, 2, return_indices=True)
    oh = torch.arange(6).view(-1, 1) * 2
    ow = torch.arange(22) * 2
    pos = argmax.cpu().long()
    idx = (oh + pos // 3) * 45 + ow + pos % 3
    assert torch.equal(idx, expected_idx)
    run_case(device, backend, dtype, x.to(dtype), 5, 3, 2, 0, False)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_nan_propagates_like_the_chain(device, backend):
    x = torch.randn(1, 6, 9, 9, dtype=torch.float64)
    x[0, 2, 4, 4] = float("nan")
    x[0, 5, 0, 0] = float("inf")
    out = alexnet_fast.relu_lrn_max_pool2d(x.float().to(device), 5, **LRN, backend=backend)
    expected, _ = chain64(x.float(), 5, 3, 2, 0, False, **LRN)
    assert expected.isnan().any()
    torch.testing.assert_close(out.cpu().double(), expected, rtol=2e-6, atol=1e-7, equal_nan=True)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_channels_last_and_non_contiguous(device, backend):
    x = torch.randn(2, 12, 11, 11, dtype=torch.float64).to(memory_format=torch.channels_last)
    out, grad, _ = run_case(device, backend, torch.float32, x, 5, 3, 2, 0, False)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert grad.is_contiguous(memory_format=torch.channels_last)
    sliced = torch.randn(2, 24, 11, 11, dtype=torch.float64)[:, ::2]
    run_case(device, backend, torch.float32, sliced, 5, 3, 2, 0, False)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_gradcheck_float64(device, backend, exhaustive):
    x = (torch.randperm(2 * 6 * 7 * 7).double().view(2, 6, 7, 7) / 40 - 1.5).to(device).requires_grad_()
    fn = lambda t: alexnet_fast.relu_lrn_max_pool2d(t, 3, 0.3, 0.75, 1.0, backend=backend)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,), fast_mode=gradcheck_fast_mode(device, backend, exhaustive))


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_empty_batch_and_no_grad(device, backend):
    x = torch.randn(0, 8, 9, 9, device=device, requires_grad=True)
    out = alexnet_fast.relu_lrn_max_pool2d(x, 5, backend=backend)
    assert out.shape == (0, 8, 4, 4)
    out.sum().backward()
    assert x.grad.shape == x.shape
    forward, _ = fused_ops(device, backend)
    _, argmax = forward(torch.randn(1, 4, 7, 7, device=device), 5, 1e-4, 0.75, 1.0, [3, 3], [2, 2], [0, 0], False, False)
    assert argmax.numel() == 0  # inference writes no argmax


@pytest.mark.parametrize("device,backend", FAST_BACKENDS_INTERPRETER_SLOW)
def test_opcheck(device, backend):
    forward, backward = fused_ops(device, backend)
    for channels_last in (False, True):
        x = torch.randn(2, 7, 9, 9, device=device)
        if channels_last:
            x = x.to(memory_format=torch.channels_last)
        args = (5, 1e-2, 0.75, 2.0, [3, 3], [2, 2], [1, 1], True)
        torch.library.opcheck(forward, (x.requires_grad_(), *args, True))
        out, argmax = forward(x.detach(), *args, True)
        torch.library.opcheck(backward, (torch.randn_like(out), x.detach(), argmax, *args[:7]))


@pytest.mark.parametrize("device,backend", FAST_BACKENDS_INTERPRETER_SLOW)
def test_compile_fullgraph(device, backend):
    block = ReLULRNMaxPool2d.from_paper(backend=backend)
    assert_compiles_fullgraph(block, torch.randn(2, 8, 11, 11, device=device, requires_grad=True))


def test_module_and_reference_backend():
    block = ReLULRNMaxPool2d.from_paper()
    assert (block.size, block.alpha, block.beta, block.k) == (5, 5e-4, 0.75, 2.0)
    x = torch.randn(2, 16, 13, 13, dtype=torch.float64)
    expected, _ = chain64(x, 5, 3, 2, 0, False, 5e-4, 0.75, 2.0)
    for backend in ("reference", "auto"):
        torch.testing.assert_close(alexnet_fast.relu_lrn_max_pool2d(x, 5, 5e-4, 0.75, 2.0, backend=backend), expected)


def test_bad_arguments():
    x = torch.randn(1, 4, 9, 9)
    with pytest.raises(ValueError, match=r"size must be an integer in \[1, 2\*\*63 - 1\]; got 0"):
        alexnet_fast.relu_lrn_max_pool2d(x, 0)
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\); got shape \(4, 9, 9\)"):
        alexnet_fast.relu_lrn_max_pool2d(x[0], 5)
    with pytest.raises(ValueError, match=r"kernel_size must be an int >= 1"):
        alexnet_fast.relu_lrn_max_pool2d(x, 5, kernel_size=0)
    with pytest.raises(ValueError, match=r"output size would be"):
        alexnet_fast.relu_lrn_max_pool2d(torch.randn(1, 4, 2, 2), 5)
    with pytest.raises(ValueError, match=r"backend must be one of"):
        alexnet_fast.relu_lrn_max_pool2d(x, 5, backend="nope")
