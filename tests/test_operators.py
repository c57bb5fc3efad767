"""The torch.library contract of every operator on every backend that runs:
opcheck (schema, fake kernel, autograd registration, AOT dispatch) and
torch.compile(fullgraph=True) without graph breaks."""
import pytest
import torch

import alexnet_fast
from alexnet_fast.ops import compiled_ops
from _helpers import FAST_BACKENDS, assert_compiles_fullgraph

ops = torch.ops.alexnet_fast
LRN_PARAMS = (5, 1e-2, 0.75, 2.0)


def lrn_ops(device, backend):
    """(forward op, backward op) that `backend` runs on `device`."""
    return compiled_ops("relu_lrn", backend, device)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
@pytest.mark.parametrize("apply_relu", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_opcheck_relu_lrn(device, backend, apply_relu, channels_last):
    forward, backward = lrn_ops(device, backend)
    x = torch.randn(2, 7, 3, 4, device=device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    grad = torch.randn(2, 7, 3, 4, device=device)
    torch.library.opcheck(forward, (x.requires_grad_(), *LRN_PARAMS, apply_relu))
    torch.library.opcheck(backward, (grad, x.detach(), *LRN_PARAMS, apply_relu))


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_compile_fullgraph_relu_lrn(device, backend):
    def block(x):
        return alexnet_fast.relu_lrn(x, 5, 1e-2, 0.75, 2.0, backend=backend) * 2.0

    assert_compiles_fullgraph(block, torch.randn(2, 8, 5, 5, device=device, requires_grad=True))


def pool_ops(device, backend):
    return compiled_ops("max_pool2d", backend, device)


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("args", [([3, 3], [2, 2], [0, 0], [1, 1], False), ([2, 3], [1, 2], [1, 1], [2, 1], True)])
def test_opcheck_max_pool2d(device, backend, channels_last, args):
    forward, backward = pool_ops(device, backend)
    x = torch.randn(2, 5, 9, 10, device=device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    torch.library.opcheck(forward, (x.requires_grad_(), *args, True))
    torch.library.opcheck(forward, (x.detach(), *args, False))
    out, argmax = forward(x.detach(), *args, True)
    torch.library.opcheck(backward, (torch.randn_like(out), argmax, 9, 10, *args[:4]))


@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_compile_fullgraph_max_pool2d(device, backend):
    torch._dynamo.reset()

    def block(x):
        out, idx = alexnet_fast.max_pool2d(x, 3, 2, return_indices=True, backend=backend)
        return out * 2.0, idx

    compiled = torch.compile(block, fullgraph=True)
    x = torch.randn(2, 4, 11, 11, device=device, requires_grad=True)
    out, idx = compiled(x)
    ref_out, ref_idx = block(x)
    assert torch.equal(out, ref_out) and torch.equal(idx, ref_idx)
    (grad,) = torch.autograd.grad(out.sum(), x)
    (expected,) = torch.autograd.grad(ref_out.sum(), x)
    assert torch.equal(grad, expected)
