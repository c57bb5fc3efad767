"""The host execution of the CUDA kernels (backend "cuda_host", csrc/cuda/host):
every variant each launch plan can choose runs and is right, and the host
launcher refuses what a GPU refuses. The per-op suites (test_relu_lrn.py,
test_max_pool2d.py, ...) run every CUDA test case on cuda_host as well; this file
makes sure each plan variant is among them, with the test-only overrides that
reach the int64 and channel-chunk paths on small tensors."""
import re

import pytest
import torch
import torch.nn.functional as F

import alexnet_fast
from _helpers import assert_close_to

ops = torch.ops.alexnet_fast
pytestmark = pytest.mark.skipif(
    "cuda_host" not in alexnet_fast.available_backends("cpu"), reason="alexnet_fast._cuda_host is not built"
)


@pytest.fixture
def overrides():
    """Sets the plan overrides for one test and clears them (and the launch log) after."""
    ops.cuda_host_take_launches()

    def set_(force_index64=False, channel_chunks=0):
        ops.cuda_host_set_plan_overrides(force_index64, channel_chunks)

    yield set_
    ops.cuda_host_set_plan_overrides(False, 0)
    ops.cuda_host_take_launches()


def launches():
    """(kernel name with template arguments, grid x) of the launches since the last call."""
    found = []
    for line in ops.cuda_host_take_launches():
        name = re.match(r"void alexnet_fast::\w+::(\w+<[^(]*>)\(", line).group(1)
        grid = int(re.search(r"grid=\((\d+),", line).group(1))
        found.append((name, grid))
    return found


def lrn_reference(x, size, relu=True):
    a = torch.relu(x.double()) if relu else x.double()
    return F.local_response_norm(a, size, 1e-2, 0.75, 2.0)


# (id, shape, channels_last, size, overrides, forward kernel, backward kernel)
LRN_PLANS = [
    ("channels-first-unchunked", (1, 40, 8, 8), False, 5, dict(channel_chunks=1),
     "relu_lrn_forward_cf_kernel<float, 5>", "relu_lrn_backward_cf_kernel<float, 5>"),
    ("channels-first-chunked", (1, 40, 8, 8), False, 5, dict(channel_chunks=3),
     "relu_lrn_forward_cf_kernel<float, 5>", "relu_lrn_backward_cf_kernel<float, 5>"),
    ("direct-size5", (2, 9, 4, 5), False, 5, {},
     "relu_lrn_forward_direct_kernel<float, 5, int>", "relu_lrn_backward_direct_kernel<float, 5, int>"),
    ("direct-size5-channels-last", (2, 9, 8, 8), True, 5, {},
     "relu_lrn_forward_direct_kernel<float, 5, int>", "relu_lrn_backward_direct_kernel<float, 5, int>"),
    ("direct-general", (2, 9, 6, 6), False, 3, {},
     "relu_lrn_forward_direct_kernel<float, 0, int>", "relu_lrn_backward_direct_kernel<float, 0, int>"),
    ("direct-size5-int64", (2, 9, 4, 5), False, 5, dict(force_index64=True),
     "relu_lrn_forward_direct_kernel<float, 5, long>", "relu_lrn_backward_direct_kernel<float, 5, long>"),
    ("direct-general-int64", (2, 9, 6, 6), True, 4, dict(force_index64=True),
     "relu_lrn_forward_direct_kernel<float, 0, long>", "relu_lrn_backward_direct_kernel<float, 0, long>"),
]


@pytest.mark.parametrize("case", LRN_PLANS, ids=[c[0] for c in LRN_PLANS])
def test_relu_lrn_plan_variants(case, overrides):
    _, shape, channels_last, size, settings, forward_kernel, backward_kernel = case
    overrides(**settings)
    x = torch.randn(shape, dtype=torch.float64).float() * 3
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    x_ = x.clone().requires_grad_()
    out = alexnet_fast.relu_lrn(x_, size, 1e-2, 0.75, 2.0, backend="cuda_host")
    grad = torch.randn(shape)
    out.backward(grad)
    (forward_name, forward_grid), (backward_name, _) = launches()
    assert (forward_name, backward_name) == (forward_kernel, backward_kernel)
    if "chunked" in case[0]:  # one thread per (position, chunk)
        chunks = settings["channel_chunks"]
        assert forward_grid == -(-(shape[0] * shape[2] * shape[3] * chunks) // 256)
    assert_close_to(out.detach(), lrn_reference(x, size), torch.float32)
    x64 = x.double().requires_grad_()
    lrn_reference(x64, size).backward(grad.double())
    assert_close_to(x_.grad, x64.grad, torch.float32, atol_scale=1.0)


# (id, shape, channels_last, kernel, stride, padding, dilation, return_indices, overrides,
#  kernels: ("3x3s2", channels per NHWC load) or ("general", argmax type, index type))
POOL_PLANS = [
    ("3x3s2-nchw", (2, 5, 13, 13), False, 3, 2, 0, 1, False, {}, ("3x3s2", 1)),
    ("3x3s2-nhwc-vector", (2, 8, 13, 13), True, 3, 2, 1, 1, False, {}, ("3x3s2", 4)),
    ("3x3s2-nhwc-scalar", (2, 3, 13, 13), True, 3, 2, 0, 1, False, {}, ("3x3s2", 1)),
    ("general", (2, 5, 11, 12), False, (2, 3), (1, 2), (1, 1), (2, 1), False, {},
     ("general", "unsigned char", "unsigned int")),
    ("general-int32-positions", (1, 2, 20, 20), True, 17, 1, 0, 1, False, {}, ("general", "int", "unsigned int")),
    ("flat-indices", (2, 5, 13, 13), False, 3, 2, 1, 1, True, {}, ("general", "long", "unsigned int")),
    ("3x3s2-int64", (2, 5, 13, 13), False, 3, 2, 0, 1, False, dict(force_index64=True),
     ("general", "unsigned char", "long")),
    ("flat-indices-int64-nhwc", (2, 6, 9, 10), True, 3, 2, 1, 1, True, dict(force_index64=True),
     ("general", "long", "long")),
]


def pool_kernel_names(channels_last, kernels):
    """The forward and backward kernels of a POOL_PLANS row, as launches() names them
    (the forward always writes the argmax: the backward reads it)."""
    layout = str(channels_last).lower()
    if kernels[0] == "3x3s2":
        _, lanes = kernels
        return (f"max_pool2d_fwd_3x3s2_kernel<float, unsigned char, true, {layout}, {lanes}>",
                f"max_pool2d_bwd_3x3s2_kernel<float, {layout}>")
    _, arg, index = kernels
    return (f"max_pool2d_fwd_kernel<float, {arg}, true, {layout}, {index}>",
            f"max_pool2d_bwd_kernel<float, {arg}, {layout}, {index}>")


@pytest.mark.parametrize("case", POOL_PLANS, ids=[c[0] for c in POOL_PLANS])
def test_max_pool2d_plan_variants(case, overrides):
    _, shape, channels_last, kernel, stride, padding, dilation, indices, settings, kernels = case
    forward_kernel, backward_kernel = pool_kernel_names(channels_last, kernels)
    overrides(**settings)
    x = torch.randn(shape)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    x_ = x.clone().requires_grad_()
    result = alexnet_fast.max_pool2d(x_, kernel, stride, padding, dilation, False, indices, backend="cuda_host")
    out = result[0] if indices else result
    grad = torch.randn(out.shape)
    out.backward(grad)
    names = [name for name, _ in launches()]
    assert names == [forward_kernel, backward_kernel]
    x_ref = x.clone().requires_grad_()
    ref_out, ref_idx = F.max_pool2d(x_ref, kernel, stride, padding, dilation, return_indices=True)
    ref_out.backward(grad)
    assert torch.equal(out.detach(), ref_out)
    if indices:
        assert torch.equal(result[1], ref_idx)
    assert torch.equal(x_.grad, x_ref.grad)


# (id, shape, channels_last, size, kernel, stride, padding, overrides, forward kernel, backward kernel)
FUSED_PLANS = [
    ("size5-3x3s2", (2, 8, 13, 13), False, 5, 3, 2, 0, {},
     "relu_lrn_max_pool2d_fwd_kernel<float, unsigned char, true, false, 5, true, unsigned int>",
     "relu_lrn_max_pool2d_bwd_kernel<float, unsigned char, false, 5, true, unsigned int>"),
    ("size5-other-window", (2, 8, 10, 9), True, 5, (2, 3), (1, 2), (1, 1), {},
     "relu_lrn_max_pool2d_fwd_kernel<float, unsigned char, true, true, 5, false, unsigned int>",
     "relu_lrn_max_pool2d_bwd_kernel<float, unsigned char, true, 5, false, unsigned int>"),
    ("general-size", (2, 7, 9, 9), False, 3, 3, 2, 1, {},
     "relu_lrn_max_pool2d_fwd_kernel<float, unsigned char, true, false, 0, false, unsigned int>",
     "relu_lrn_max_pool2d_bwd_kernel<float, unsigned char, false, 0, false, unsigned int>"),
    ("size5-3x3s2-int64", (2, 8, 13, 13), True, 5, 3, 2, 0, dict(force_index64=True),
     "relu_lrn_max_pool2d_fwd_kernel<float, unsigned char, true, true, 5, true, long>",
     "relu_lrn_max_pool2d_bwd_kernel<float, unsigned char, true, 5, true, long>"),
]


@pytest.mark.parametrize("case", FUSED_PLANS, ids=[c[0] for c in FUSED_PLANS])
def test_relu_lrn_max_pool2d_plan_variants(case, overrides):
    _, shape, channels_last, size, kernel, stride, padding, settings, forward_kernel, backward_kernel = case
    overrides(**settings)
    x = torch.randn(shape) * 3
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    lrn = (size, 1e-2, 0.75, 2.0)
    x_ = x.clone().requires_grad_()
    out = alexnet_fast.relu_lrn_max_pool2d(x_, *lrn, kernel, stride, padding, backend="cuda_host")
    grad = torch.randn(out.shape)
    out.backward(grad)
    names = [name for name, _ in launches()]
    assert names == [forward_kernel, backward_kernel]
    x64 = x.double().requires_grad_()
    expected = F.max_pool2d(F.local_response_norm(torch.relu(x64), *lrn), kernel, stride, padding)
    expected.backward(grad.double())
    assert_close_to(out.detach(), expected.detach(), torch.float32)
    assert_close_to(x_.grad, x64.grad, torch.float32, atol_scale=1.0)


# --- the launcher ---------------------------------------------------------------------
def test_launcher_runs_every_thread_of_a_3d_grid():
    out = ops.cuda_host_probe_launch([3, 2, 2], [4, 2, 2], 3 * 2 * 2 * 4 * 2 * 2)
    assert torch.equal(out, torch.arange(out.numel()))


def test_outputs_are_poisoned_before_a_launch():
    """Elements no thread writes keep the 0xFF pattern (-1 in int64; NaN in floats)."""
    out = ops.cuda_host_probe_launch([2, 1, 1], [8, 1, 1], 20)
    assert torch.equal(out[:16], torch.arange(16)) and (out[16:] == -1).all()


@pytest.mark.parametrize(
    "grid,block,message",
    [
        ([1, 1, 1], [1025, 1, 1], r"exceeds the CUDA limits \(1024 threads"),
        ([1, 1, 1], [32, 32, 2], r"exceeds the CUDA limits \(1024 threads"),
        ([1, 1, 1], [1, 1, 65], r"exceeds the CUDA limits"),
        ([1, 1, 1], [257, 1, 1], r"exceeds the kernel's __launch_bounds__\(256\)"),
        ([1, 65536, 1], [1, 1, 1], r"grid \(1, 65536, 1\) exceeds the CUDA limits"),
        ([1, 1, 65536], [1, 1, 1], r"exceeds the CUDA limits"),
        ([2**31, 1, 1], [1, 1, 1], r"exceeds the CUDA limits \(x < 2\^31"),
        ([0, 1, 1], [1, 1, 1], r"empty grid"),
        ([1, 1, 1], [0, 1, 1], r"empty grid .* or block"),
    ],
)
def test_launcher_refuses_what_a_gpu_refuses(grid, block, message):
    with pytest.raises(RuntimeError, match=message):
        ops.cuda_host_probe_launch(grid, block, 4)


def test_limits_themselves_are_accepted():
    assert ops.cuda_host_probe_launch([1, 65535, 1], [1, 1, 1], 2).tolist() == [0, 1]
    assert ops.cuda_host_probe_launch([1, 1, 1], [256, 1, 1], 256).tolist() == list(range(256))


def test_agrees_bitwise_with_cpu_where_the_math_is_exact():
    """Max-pool values, indices and gradients are exact in both backends: equal bits.
    (LRN values are not: CUDA forms a / (sqrt(s) sqrt(sqrt(s))), the CPU a * s^-beta from
    1/s or an rsqrt estimate; docs/math.md.)"""
    x = torch.randn(2, 16, 27, 27).to(memory_format=torch.channels_last)
    results = []
    for backend in ("cpu", "cuda_host"):
        x_ = x.clone().requires_grad_()
        out, idx = alexnet_fast.max_pool2d(x_, 3, 2, 1, return_indices=True, backend=backend)
        out.backward(torch.ones_like(out))
        results.append((out.detach(), idx, x_.grad))
    for ours, theirs in zip(*results):
        assert torch.equal(ours, theirs)
