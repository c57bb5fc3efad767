"""Fused ReLU + local response normalization (and plain LRN).

    a_c = relu(x_c)                  (x_c itself for local_response_norm)
    s_c = k + alpha/size * sum_{j in W(c)} a_j^2,   W(c) = [c - size//2, c + (size-1)//2]
    b_c = a_c * s_c^-beta

PyTorch's convention: the window is zero-padded at the channel edges and the
sum is always divided by ``size``. Forward saves only x; backward recomputes
the window sums:

    dx_j = relu'(x_j) (g_j s_j^-beta - 2 alpha beta / size * a_j sum_{i in W'(j)} g_i b_i / s_i)

with W'(j) = [j - (size-1)//2, j + size//2] the mirrored window.
"""
from __future__ import annotations

import numbers

import torch
from torch import Tensor

from alexnet_fast import reference
from alexnet_fast._backends import check_floating, resolve_backend, under_functorch_transform
from alexnet_fast.kernels.layout import channel_view
from alexnet_fast.ops._registration import OpDescription, forward_op, register
from alexnet_fast.ops.channel_groups import check_groups_divide, lrn_in_groups

_INT64_MAX = 2**63 - 1  # the op schemas' int


def _triton_forward(x, size, alpha, beta, k, apply_relu, *, launch):
    # Imported on first use: Triton reads TRITON_INTERPRET when kernels are defined.
    from alexnet_fast.kernels.relu_lrn import relu_lrn_forward

    return relu_lrn_forward(x, size, alpha, beta, k, apply_relu, launch=launch)


def _triton_backward(grad_out, x, size, alpha, beta, k, apply_relu, *, launch):
    from alexnet_fast.kernels.relu_lrn import relu_lrn_backward

    return relu_lrn_backward(grad_out, x, size, alpha, beta, k, apply_relu, launch=launch)


def _fake_forward(x, size, alpha, beta, k, apply_relu):
    # The kernels write in the layout of x's (N, C, S) view (kernels/layout.py).
    return torch.empty_like(channel_view(x).tensor)


def _fake_backward(grad_out, x, size, alpha, beta, k, apply_relu):
    return torch.empty_like(channel_view(x).tensor)


def _setup_context(ctx, inputs, output):
    x, *params = inputs
    ctx.save_for_backward(x)  # only x: backward recomputes the window sums
    ctx.params = params


def _backward(ctx, backward_op, grad):
    (x,) = ctx.saved_tensors
    return (backward_op(grad, x, *ctx.params),) + (None,) * len(ctx.params)


def _setup_double_backward(ctx, inputs, output):
    grad_out, x, *params = inputs
    ctx.save_for_backward(grad_out, x)
    ctx.params = params


def _double_backward(ctx, grad_grad_x):
    """The derivative of (grad_out, x) -> dx, the reference formula's vjp of a vjp."""
    grad_out, x = ctx.saved_tensors
    size, alpha, beta, k, apply_relu = ctx.params

    def input_grad(g, x_):
        _, vjp = torch.func.vjp(lambda t: reference.relu_lrn(t, size, alpha, beta, k, apply_relu), x_)
        return vjp(g)[0]

    _, vjp = torch.func.vjp(input_grad, grad_out, x)
    grad_grad_out, grad_x = vjp(grad_grad_x)
    return (grad_grad_out, grad_x) + (None,) * len(ctx.params)


_OPS = register(OpDescription(
    name="relu_lrn", fake_forward=_fake_forward, fake_backward=_fake_backward, setup_context=_setup_context,
    backward=_backward, setup_double_backward=_setup_double_backward, double_backward=_double_backward,
    triton_forward=_triton_forward, triton_backward=_triton_backward))


# --- public functions ---------------------------------------------------------
def check_lrn_arguments(size, alpha, beta, k) -> None:
    """The LRN arguments without a tensor: the functions check them, and so do the
    module constructors, with the same messages."""
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or not 1 <= size <= _INT64_MAX:
        raise ValueError(f"size must be an integer in [1, 2**63 - 1]; got {size!r}")
    for name, value in (("alpha", alpha), ("beta", beta), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number; got {value!r}")


def _check_args(x, size, alpha, beta, k, groups):
    check_floating(x)
    if x.dim() < 3:
        raise ValueError(f"x must have at least 3 dims (N, C, *); got shape {tuple(x.shape)}")
    check_lrn_arguments(size, alpha, beta, k)
    check_groups_divide(x, groups)


def _lrn(x, size, alpha, beta, k, groups, backend, apply_relu) -> Tensor:
    _check_args(x, size, alpha, beta, k, groups)
    size, alpha, beta, k, groups = int(size), float(alpha), float(beta), float(k), int(groups)
    backend = resolve_backend(backend, x.device)
    if backend == "reference" or under_functorch_transform(x):
        return reference.relu_lrn(x, size, alpha, beta, k, apply_relu, groups)
    forward = forward_op(_OPS, backend, x.device)
    return lrn_in_groups(x, groups, lambda t: forward(t, size, alpha, beta, k, apply_relu))


def relu_lrn(x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, *, groups: int = 1,
             backend: str = "auto") -> Tensor:
    """``F.local_response_norm(torch.relu(x), size, alpha, beta, k)`` in one pass.

    x: (N, C, *) with at least 3 dims, float32/float64/float16/bfloat16,
    any strides (channels-first and channels-last without a copy); the
    output keeps x's memory format. Low precision computes in float32.
    groups: each block of C / groups channels is normalised on its own (its
    windows stop at the block's edges), as the paper's two towers did; C must
    divide. The same as the op on each channel slice, concatenated.
    backend: 'auto', 'reference', 'cpu', 'cuda', 'triton' or 'cuda_host'.
    """
    return _lrn(x, size, alpha, beta, k, groups, backend, apply_relu=True)


def local_response_norm(x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, *,
                        groups: int = 1, backend: str = "auto") -> Tensor:
    """A drop-in for ``F.local_response_norm``: ``relu_lrn`` without the ReLU."""
    return _lrn(x, size, alpha, beta, k, groups, backend, apply_relu=False)
