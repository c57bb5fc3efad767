"""The peers of `alexnet-fast bench --peers` (alexnet_fast.peers): each
installed framework's forward (and gradient, where it has autograd) against
PyTorch's F.local_response_norm / F.max_pool2d in float64, on tiny shapes in
float32. A peer that is not installed is skipped, naming its package."""
import pytest
import torch
import torch.nn.functional as F

from alexnet_fast import peers

SHAPE = (2, 7, 9, 11)  # odd sizes: windows clipped at the channel and spatial edges
# Large alpha and inputs, so that the LRN's denominator depends on its window
# (with AlexNet's alpha 1e-4 a wrong window or scale changes the output by ~1e-4).
LRN_CASES = [dict(size=5, alpha=0.5, beta=0.75, k=2.0), dict(size=3, alpha=1.0, beta=0.6, k=1.0)]
POOL_CASES = [dict(kernel_size=3, stride=2), dict(kernel_size=2, stride=2)]


def _peer_params(names=peers.PEERS):
    return [pytest.param(name, marks=pytest.mark.skipif(
        name not in peers.installed(), reason=f"{name} is not installed (pip install {peers.INSTALL[name]})"))
        for name in names]


def _reference(op: str, x: torch.Tensor, lrn: dict, pool: dict) -> torch.Tensor:
    if op in ("relu_lrn", "relu_lrn_max_pool2d"):
        x = F.local_response_norm(torch.relu(x), **lrn)
    if op in ("max_pool2d", "relu_lrn_max_pool2d"):
        x = F.max_pool2d(x, **pool)
    return x


def _cases():
    for op in peers.OPS:
        for i, lrn in enumerate(LRN_CASES if op != "max_pool2d" else LRN_CASES[:1]):
            for j, pool in enumerate(POOL_CASES if op != "relu_lrn" else POOL_CASES[:1]):
                yield pytest.param(op, lrn, pool, id=f"{op}-lrn{i}-pool{j}")


@pytest.mark.parametrize("op, lrn, pool", list(_cases()))
@pytest.mark.parametrize("peer", _peer_params())
def test_peer_matches_pytorch(peer, op, lrn, pool):
    x = 3 * torch.randn(SHAPE)  # no ties in the pools' windows, apart from ReLU's zeros
    x64 = x.double().requires_grad_()
    expected = _reference(op, x64, lrn, pool)
    grad = torch.randn(expected.shape)
    expected_dx, = torch.autograd.grad(expected, x64, grad.double())

    peer_op = peers.build(peer, op, **lrn, **pool)
    y = peer_op.to_torch(peer_op.forward(peer_op.to_native(x)))
    assert y.dtype == torch.float32 and y.shape == expected.shape
    torch.testing.assert_close(y.double(), expected.detach(), rtol=1e-5, atol=1e-6)
    if peer_op.forward_backward is None:
        assert peer in ("onnxruntime", "openvino")  # inference engines: no autograd
        return
    dx = peer_op.to_torch(peer_op.forward_backward(peer_op.to_native(x), peer_op.to_native(grad)))
    assert dx.shape == x.shape
    torch.testing.assert_close(dx.double(), expected_dx, rtol=1e-5, atol=1e-5 * float(expected_dx.abs().max()))


@pytest.mark.parametrize("peer", _peer_params(["jax"]))
def test_jax_even_size_has_pytorchs_window(peer):
    x = 3 * torch.randn(SHAPE)
    lrn = dict(size=4, alpha=1.0, beta=0.75, k=1.0)  # window [c - 2, c + 1]
    peer_op = peers.build(peer, "relu_lrn", **lrn)
    y = peer_op.to_torch(peer_op.forward(peer_op.to_native(x)))
    torch.testing.assert_close(y.double(), _reference("relu_lrn", x.double(), lrn, {}), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("peer", _peer_params(["onnxruntime", "openvino", "tensorflow"]))
def test_even_size_is_refused_where_the_window_differs(peer):
    with pytest.raises(ValueError, match=f"size=4: {peer}'s LRN window equals PyTorch's only for an odd size"):
        peers.build(peer, "relu_lrn", size=4)
    peers.build(peer, "max_pool2d", size=4)  # no LRN: the size does not matter


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="peer must be one of"):
        peers.build("caffe", "relu_lrn")
    with pytest.raises(ValueError, match="op must be one of"):
        peers.build("jax", "conv2d")
    with pytest.raises(ValueError, match="size, kernel_size and stride must be >= 1; got 0"):
        peers.build("jax", "relu_lrn", size=0)


@pytest.mark.parametrize("peer", _peer_params())
def test_workloads_and_threads(peer):
    threads = torch.get_num_threads()
    peer_op = peers.build(peer, "relu_lrn")
    x, grad = torch.randn(SHAPE), torch.randn(SHAPE)
    assert callable(peers.workload(peer_op, "forward", x, grad))
    assert peers.workload(peer_op, "backward", x, grad) is None  # backward alone: not timed for peers
    has_autograd = peers.workload(peer_op, "forward_backward", x, grad) is not None
    assert has_autograd == (peer in ("tensorflow", "jax"))
    if peer in ("onnxruntime", "openvino"):
        assert peer_op.threads.startswith(f"{threads} ")


def test_missing_peers_name_their_packages():
    for peer, packages in peers.missing().items():
        assert peer not in peers.installed() and packages == peers.INSTALL[peer]
        with pytest.raises(ImportError, match=f"pip install {packages}"):
            peers.build(peer, "relu_lrn")
