"""relu_lrn / local_response_norm against PyTorch's F.local_response_norm in float64."""
import math

import pytest
import torch
import torch.nn.functional as F

import alexnet_fast
from alexnet_fast.nn import ReLULRN
from _helpers import DTYPES, FAST_BACKENDS, assert_close_to, gradcheck_fast_mode, is_slow_interpreter

PARAMS = dict(alpha=1e-4, beta=0.75, k=1.0)
# (shape, size): AlexNet norm1 / norm2 at small N, odd sizes, an even size,
# fewer channels than the window, 3-D and 5-D inputs.
CASES = [
    ((2, 96, 55, 55), 5),
    ((2, 256, 27, 27), 5),
    ((3, 7, 5, 4), 3),
    ((2, 10, 6, 5), 4),
    ((2, 2, 4, 3), 5),
    ((2, 9, 11), 5),
    ((2, 6, 3, 3, 3), 2),
    ((1, 5, 7, 7), 1),
]


def reference64(x, size, alpha, beta, k, relu=True):
    """PyTorch's own ops in float64: the independent reference."""
    a = torch.relu(x.double()) if relu else x.double()
    return F.local_response_norm(a, size, alpha, beta, k)


def small_for_interpreter(shape, device, backend):
    # Triton's CPU interpreter takes ~0.5 ms per program instance: AlexNet
    # shapes run at batch 1 there (all channels and pixels kept).
    if is_slow_interpreter(device, backend):
        return (1,) + tuple(shape[1:])
    return shape


def make_input(shape, dtype, device, scale=3.0):
    # Large enough values that the normaliser differs from k noticeably.
    alpha_sized = torch.randn(shape, dtype=torch.float64) * scale
    return alpha_sized.to(dtype).to(device)


def forward_cases():
    """backend x dtype x case; in Triton's (slow) CPU interpreter the AlexNet
    shapes run in float32 only, the small shapes in every dtype."""
    for pair in FAST_BACKENDS:
        device, backend = pair.values
        for dtype in DTYPES:
            for shape, size in CASES:
                big = math.prod(shape) > 50_000
                if is_slow_interpreter(device, backend) and dtype != torch.float32 and big:
                    continue
                marks = pair.marks + ([pytest.mark.slow] if is_slow_interpreter(device, backend) and big else [])
                yield pytest.param(device, backend, dtype, shape, size, marks=marks,
                                   id=f"{pair.id}-{str(dtype)[6:]}-{shape}-{size}")


@pytest.mark.parametrize("device,backend,dtype,shape,size", list(forward_cases()))
def test_forward_matches_pytorch(device, backend, dtype, shape, size):
    shape = small_for_interpreter(shape, device, backend)
    x = make_input(shape, dtype, device)
    params = dict(alpha=1e-2, beta=0.75, k=2.0)
    out = alexnet_fast.relu_lrn(x, size, **params, backend=backend)
    assert out.dtype == dtype and out.shape == x.shape and out.device == x.device
    assert_close_to(out.cpu(), reference64(x.cpu(), size, **params), dtype)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape,size", [c for c in CASES if math.prod(c[0]) < 50_000], ids=str)
def test_backward_matches_autograd_of_pytorch(device, backend, dtype, shape, size):
    x = make_input(shape, dtype, device)
    grad = torch.randn(shape, dtype=torch.float64).to(dtype).to(device)
    params = dict(alpha=1e-2, beta=0.75, k=2.0)
    x_ = x.detach().requires_grad_()
    alexnet_fast.relu_lrn(x_, size, **params, backend=backend).backward(grad)
    x64 = x.detach().cpu().double().requires_grad_()
    reference64(x64, size, **params).backward(grad.cpu().double())
    assert x_.grad.dtype == dtype
    assert_close_to(x_.grad.cpu(), x64.grad, dtype, atol_scale=1.0)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
@pytest.mark.parametrize("beta", [0.75, 0.5, 1.0, 0.3, 2.0])
def test_general_beta_and_k(device, backend, beta):
    x = make_input((2, 12, 5, 6), torch.float32, device)
    out = alexnet_fast.relu_lrn(x, 5, alpha=0.3, beta=beta, k=0.7, backend=backend)
    assert_close_to(out.cpu(), reference64(x.cpu(), 5, 0.3, beta, 0.7), torch.float32)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("relu", [True, False], ids=["relu_lrn", "lrn"])
def test_gradcheck_float64(device, backend, size, relu, exhaustive):
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64, device=device, requires_grad=True)
    fn = alexnet_fast.relu_lrn if relu else alexnet_fast.local_response_norm
    assert torch.autograd.gradcheck(lambda t: fn(t, size, 0.5, 0.75, 1.5, backend=backend), (x,),
                                    fast_mode=gradcheck_fast_mode(device, backend, exhaustive))


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_local_response_norm_without_relu_matches_pytorch(device, backend):
    x = make_input((2, 16, 7, 7), torch.float32, device)
    assert (x < 0).any()
    out = alexnet_fast.local_response_norm(x, 5, alpha=0.1, beta=0.75, k=1.0, backend=backend)
    assert_close_to(out.cpu(), reference64(x.cpu(), 5, 0.1, 0.75, 1.0, relu=False), torch.float32)
    x_ = x.clone().requires_grad_()
    grad = torch.randn_like(x)
    alexnet_fast.local_response_norm(x_, 5, 0.1, 0.75, 1.0, backend=backend).backward(grad)
    x64 = x.cpu().double().requires_grad_()
    reference64(x64, 5, 0.1, 0.75, 1.0, relu=False).backward(grad.cpu().double())
    assert_close_to(x_.grad.cpu(), x64.grad, torch.float32, atol_scale=1.0)


def layouts(device):
    base = torch.randn(2, 12, 6, 7, device=device)
    yield "channels_last", base.to(memory_format=torch.channels_last)
    yield "channel_slice", torch.randn(2, 24, 6, 7, device=device)[:, ::2]
    yield "permuted", torch.randn(2, 6, 7, 12, device=device).permute(0, 3, 1, 2)
    yield "spatial_slice", torch.randn(2, 12, 6, 14, device=device)[..., ::2]
    yield "channels_last_3d", torch.randn(2, 12, 3, 4, 5, device=device).to(memory_format=torch.channels_last_3d)
    yield "3d_channels_last", torch.randn(2, 9, 12, device=device).transpose(1, 2)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_layouts_forward_backward(device, backend):
    for name, x in layouts(device):
        out = alexnet_fast.relu_lrn(x, 5, 0.1, 0.75, 1.0, backend=backend)
        assert_close_to(out.cpu(), reference64(x.cpu(), 5, 0.1, 0.75, 1.0), torch.float32)
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            assert out.is_contiguous(memory_format=torch.channels_last), name
        if x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d):
            assert out.is_contiguous(memory_format=torch.channels_last_3d), name
        x_ = x.detach().clone().requires_grad_()  # clone keeps the strides
        grad = torch.randn(x.shape, device=device).transpose(-1, -2).contiguous().transpose(-1, -2)
        alexnet_fast.relu_lrn(x_, 5, 0.1, 0.75, 1.0, backend=backend).backward(grad)
        x64 = x.detach().cpu().double().requires_grad_()
        reference64(x64, 5, 0.1, 0.75, 1.0).backward(grad.cpu().double())
        assert_close_to(x_.grad.cpu(), x64.grad, torch.float32, atol_scale=1.0)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_nan_and_inf_follow_pytorch(device, backend):
    x = torch.randn(2, 11, 4, 5, dtype=torch.float64)
    x[0, 3, 1, 2] = float("nan")
    x[1, 7, 2, 2] = float("inf")
    x[1, 0, 0, 0] = float("-inf")
    x[0, 10, 3, 4] = float("nan")
    expected = reference64(x, 5, 0.1, 0.75, 1.0)
    assert expected.isnan().sum() > 2  # NaN spreads over its window, and inf/inf
    for dtype in (torch.float32, torch.float64):
        out = alexnet_fast.relu_lrn(x.to(dtype).to(device), 5, 0.1, 0.75, 1.0, backend=backend)
        torch.testing.assert_close(out.cpu().double(), expected, rtol=2e-6, atol=1e-7, equal_nan=True)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_float16_does_not_overflow(device, backend):
    # a*a overflows float16 near 256; eager PyTorch in float16 would give inf.
    x = (torch.rand(2, 8, 4, 4, dtype=torch.float64) * 400).half()
    out = alexnet_fast.relu_lrn(x.to(device), 5, 1e-4, 0.75, 2.0, backend=backend)
    assert out.isfinite().all()
    assert_close_to(out.cpu(), reference64(x, 5, 1e-4, 0.75, 2.0), torch.float16)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_empty_batch(device, backend):
    x = torch.randn(0, 96, 5, 5, device=device, requires_grad=True)
    out = alexnet_fast.relu_lrn(x, 5, backend=backend)
    assert out.shape == x.shape
    out.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_backward_is_bitwise_repeatable(device, backend):
    x = torch.randn(2, 32, 9, 9, device=device, requires_grad=True)
    grad = torch.randn_like(x)
    grads = []
    for _ in range(2):
        x.grad = None
        alexnet_fast.relu_lrn(x, 5, backend=backend).backward(grad)
        grads.append(x.grad.clone())
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_auto_and_reference_backends(device):
    x = make_input((2, 8, 5, 5), torch.float32, device)
    expected = reference64(x.cpu(), 5, **PARAMS)
    for backend in ("auto", "reference"):
        assert_close_to(alexnet_fast.relu_lrn(x, 5, backend=backend).cpu(), expected, torch.float32)
    assert "reference" in alexnet_fast.available_backends(device)
    if device == "cpu":
        assert alexnet_fast.available_backends("cpu")[:2] == ["reference", "cpu"]


# --- bad input ---------------------------------------------------------------
def test_bad_arguments_raise_clear_errors(monkeypatch):
    x = torch.randn(2, 8, 4, 4)
    with pytest.raises(ValueError, match=r"backend must be one of .*got 'fast'"):
        alexnet_fast.relu_lrn(x, 5, backend="fast")
    with pytest.raises(ValueError, match=r"size must be an integer in \[1, 2\*\*63 - 1\]; got 0"):
        alexnet_fast.relu_lrn(x, 0)
    with pytest.raises(ValueError, match=r"size must be an integer in \[1, 2\*\*63 - 1\]; got 2.5"):
        alexnet_fast.relu_lrn(x, 2.5)
    with pytest.raises(ValueError, match=r"at least 3 dims .*got shape \(4, 5\)"):
        alexnet_fast.relu_lrn(torch.randn(4, 5), 5)
    with pytest.raises(TypeError, match=r"x must be float32, float64, float16 or bfloat16; got torch.int64"):
        alexnet_fast.relu_lrn(torch.ones(2, 3, 4, dtype=torch.int64), 5)
    with pytest.raises(TypeError, match=r"beta must be a real number; got 'x'"):
        alexnet_fast.relu_lrn(x, 5, beta="x")
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor; got list"):
        alexnet_fast.relu_lrn([1.0], 5)
    with pytest.raises(ValueError, match=r"backend='cuda' needs a CUDA tensor; x is on cpu"):
        alexnet_fast.relu_lrn(x, 5, backend="cuda")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match=r"backend='triton' on a CPU tensor needs TRITON_INTERPRET=1"):
        alexnet_fast.relu_lrn(x, 5, backend="triton")


@pytest.mark.cuda
def test_cpu_backend_rejects_cuda_tensor():
    with pytest.raises(ValueError, match=r"backend='cpu' needs a CPU tensor; x is on cuda"):
        alexnet_fast.relu_lrn(torch.randn(2, 8, 4, 4, device="cuda"), 5, backend="cpu")


def test_cuda_backend_without_cuda_build_says_so(monkeypatch):
    from alexnet_fast import _backends

    monkeypatch.setattr(_backends, "has_cuda_kernels", lambda: False)
    with pytest.raises(RuntimeError, match=r"built without its CUDA kernels"):
        _backends.resolve_backend("cuda", torch.device("cuda"))


def test_cpp_kernels_check_their_arguments():
    x = torch.randn(2, 8, 4, 4)
    with pytest.raises(RuntimeError, match=r"size"):
        torch.ops.alexnet_fast.relu_lrn_forward(x, 0, 1e-4, 0.75, 1.0, True)
    with pytest.raises(RuntimeError, match=r"grad_out"):
        torch.ops.alexnet_fast.relu_lrn_backward(torch.randn(2, 8, 4), x, 5, 1e-4, 0.75, 1.0, True)


# --- module --------------------------------------------------------------------
def test_module_attributes_and_conventions():
    layer = ReLULRN(5, 2e-4, 0.75, 2.0)
    assert (layer.size, layer.alpha, layer.beta, layer.k) == (5, 2e-4, 0.75, 2.0)
    paper = ReLULRN.from_paper()
    assert (paper.size, paper.alpha, paper.beta, paper.k) == (5, 5e-4, 0.75, 2.0)
    x = make_input((2, 12, 5, 5), torch.float64, "cpu")
    # The paper's formula written out: b = a / (2 + 1e-4 * sum_{5 channels} a^2)^0.75.
    a = torch.relu(x)
    sq = F.pad(a * a, (0, 0, 0, 0, 2, 2))
    summed = sum(sq[:, i : i + 12] for i in range(5))
    torch.testing.assert_close(paper(x), a / (2 + 1e-4 * summed) ** 0.75)
    # TensorFlow: sqr_sum over [c - r, c + r], output = a / (bias + alpha * sqr_sum)^beta.
    tf = ReLULRN.from_tensorflow(depth_radius=2, bias=1.5, alpha=0.01, beta=0.6)
    assert (tf.size, tf.k, tf.beta) == (5, 1.5, 0.6)
    torch.testing.assert_close(tf(x), a / (1.5 + 0.01 * summed) ** 0.6)
    assert "alpha=" in repr(layer)


def test_module_matches_nn_local_response_norm():
    x = make_input((2, 16, 6, 6), torch.float32, "cpu")
    ours = ReLULRN(5, 1e-3, 0.75, 2.0)(x)
    theirs = torch.nn.LocalResponseNorm(5, 1e-3, 0.75, 2.0)(torch.relu(x))
    torch.testing.assert_close(ours, theirs, rtol=2e-6, atol=1e-7)


def test_module_constructors_check_their_arguments():
    """Bad arguments fail when the module is built, with the functions' messages."""
    from alexnet_fast.nn import MaxPool2d, ReLULRNMaxPool2d

    cases = [
        (lambda: ReLULRN(-1), ValueError, r"size must be an integer in \[1, 2\*\*63 - 1\]; got -1"),
        (lambda: ReLULRN(5, alpha="big"), TypeError, r"alpha must be a real number; got 'big'"),
        (lambda: ReLULRN(5, backend="gpu"), ValueError, r"backend must be one of .*got 'gpu'"),
        (lambda: MaxPool2d(0), ValueError, r"kernel_size must be an int >= 1 or a pair of them; got 0"),
        (lambda: MaxPool2d(3, padding=2), ValueError, r"padding must be at most half the kernel size"),
        (lambda: MaxPool2d(3, ceil_mode="yes"), TypeError, r"ceil_mode must be a bool; got 'yes'"),
        (lambda: ReLULRNMaxPool2d(0), ValueError, r"size must be an integer"),
        (lambda: ReLULRNMaxPool2d(5, stride=0), ValueError, r"stride must be an int >= 1"),
        (lambda: ReLULRNMaxPool2d(5, backend=None), ValueError, r"backend must be one of .*got None"),
    ]
    for build, error, message in cases:
        with pytest.raises(error, match=message):
            build()


def test_available_backends_names_a_bad_device():
    with pytest.raises(ValueError, match=r"device must be a device such as 'cpu' or 'cuda'; got 'gpu'"):
        alexnet_fast.available_backends("gpu")
