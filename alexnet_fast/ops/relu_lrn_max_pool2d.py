"""AlexNet's ReLU -> LRN -> overlapping max-pool block as one operator.

    y = max_pool2d(local_response_norm(relu(x), size, alpha, beta, k), kernel_size, stride, padding, ceil_mode)

Forward reads x once and writes only the pooled output (a quarter of x's
size for 3x3/2) and its one-byte argmax: the full-size LRN output is never
written or kept. Backward routes grad_out through the argmax to the LRN
outputs it selected and applies the LRN backward (ops/relu_lrn.py),
recomputing the window sums from x, in one pass.
"""
from __future__ import annotations

import torch
from torch import Tensor

from alexnet_fast import reference
from alexnet_fast._backends import resolve_backend, under_functorch_transform
from alexnet_fast.ops._registration import OpDescription, forward_op, register
from alexnet_fast.kernels.layout import pool_memory_format, pool_outputs
from alexnet_fast.ops.max_pool2d import check_pool_args, flat_indices_and_validity
from alexnet_fast.ops.channel_groups import pool_in_groups
from alexnet_fast.ops.relu_lrn import _check_args as check_lrn_args


def _triton_forward(x, size, alpha, beta, k, kernel_size, stride, padding, ceil_mode, need_argmax, *, launch):
    # Imported on first use: Triton reads TRITON_INTERPRET when kernels are defined.
    from alexnet_fast.kernels.relu_lrn_max_pool2d import relu_lrn_max_pool2d_forward

    return relu_lrn_max_pool2d_forward(
        x, size, alpha, beta, k, kernel_size, stride, padding, ceil_mode, need_argmax, launch=launch
    )


def _triton_backward(grad_out, x, argmax, size, alpha, beta, k, kernel_size, stride, padding, *, launch):
    from alexnet_fast.kernels.relu_lrn_max_pool2d import relu_lrn_max_pool2d_backward

    return relu_lrn_max_pool2d_backward(
        grad_out, x, argmax, size, alpha, beta, k, kernel_size, stride, padding, launch=launch
    )


def _fake_forward(x, size, alpha, beta, k, kernel_size, stride, padding, ceil_mode, need_argmax):
    return pool_outputs(x, kernel_size, stride, padding, [1, 1], ceil_mode, need_argmax,
                        op="relu_lrn_max_pool2d_forward")


def _fake_backward(grad_out, x, argmax, size, alpha, beta, k, kernel_size, stride, padding):
    return torch.empty_like(x, memory_format=pool_memory_format(x))


def _setup_context(ctx, inputs, output):
    x, size, alpha, beta, k, kernel_size, stride, padding, ceil_mode, need_argmax = inputs
    ctx.need_argmax = need_argmax
    ctx.save_for_backward(x, output[1])  # x and the one-byte argmax
    ctx.params = (size, alpha, beta, k, kernel_size, stride, padding)


def _backward(ctx, backward_op, grad_out, _grad_argmax):
    if not ctx.need_argmax:
        raise RuntimeError(
            "relu_lrn_max_pool2d_forward ran with need_argmax=False: there is no argmax to differentiate with"
        )
    x, argmax = ctx.saved_tensors
    return (backward_op(grad_out, x, argmax, *ctx.params),) + (None,) * 9


def _setup_double_backward(ctx, inputs, output):
    grad_out, x, argmax, *params = inputs
    ctx.save_for_backward(grad_out, x, argmax)
    ctx.params = params


def _double_backward(ctx, grad_grad_x):
    """The derivative of (grad_out, x) -> dx with the pooling route fixed by argmax:
    the reference formula's vjp of a vjp (the max-pool is then a gather)."""
    grad_out, x, argmax = ctx.saved_tensors
    size, alpha, beta, k, kernel_size, stride, padding = ctx.params
    n, c, height, width = x.shape
    flat, valid = flat_indices_and_validity(argmax, height, width, kernel_size, stride, padding, [1, 1])
    flat = flat.reshape(n, c, -1)

    def routed(x_):
        normalised = reference.relu_lrn(x_, size, alpha, beta, k, True).reshape(n, c, -1)
        return torch.where(valid, normalised.gather(2, flat).view_as(valid), 0)

    def input_grad(g, x_):
        _, vjp = torch.func.vjp(routed, x_)
        return vjp(g)[0]

    _, vjp = torch.func.vjp(input_grad, grad_out, x)
    grad_grad_out, grad_x = vjp(grad_grad_x)
    return (grad_grad_out, grad_x) + (None,) * 8


_OPS = register(OpDescription(
    name="relu_lrn_max_pool2d", fake_forward=_fake_forward, fake_backward=_fake_backward, setup_context=_setup_context,
    backward=_backward, setup_double_backward=_setup_double_backward, double_backward=_double_backward,
    triton_forward=_triton_forward, triton_backward=_triton_backward))


def relu_lrn_max_pool2d(x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, kernel_size=3,
                        stride=2, padding=0, ceil_mode: bool = False, *, groups: int = 1,
                        backend: str = "auto") -> Tensor:
    """``F.max_pool2d(F.local_response_norm(torch.relu(x), size, alpha, beta, k),
    kernel_size, stride, padding, ceil_mode=ceil_mode)`` in one pass.

    x: (N, C, H, W), float32/float64/float16/bfloat16, NCHW or channels_last
    (the output keeps channels_last). Dilation is 1, as in AlexNet.
    groups: the LRN of each block of C / groups channels on its own, as in
    :func:`relu_lrn` (channels_last then costs a copy of x and of the output).
    """
    kernel, stride, padding, _ = check_pool_args(x, kernel_size, stride, padding, 1, ceil_mode)
    if x.dim() != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W); got shape {tuple(x.shape)}")
    check_lrn_args(x, size, alpha, beta, k, groups)
    size, alpha, beta, k, groups = int(size), float(alpha), float(beta), float(k), int(groups)
    ceil_mode = bool(ceil_mode)
    backend = resolve_backend(backend, x.device)
    if backend == "reference" or under_functorch_transform(x):
        return reference.relu_lrn_max_pool2d(x, size, alpha, beta, k, kernel, stride, padding, ceil_mode, groups)
    need_argmax = torch.is_grad_enabled() and x.requires_grad
    forward = forward_op(_OPS, backend, x.device)
    return pool_in_groups(
        x, groups, lambda t: forward(t, size, alpha, beta, k, kernel, stride, padding, ceil_mode, need_argmax)[0]
    )
