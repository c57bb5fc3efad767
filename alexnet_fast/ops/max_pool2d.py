"""Max-pool 2-D, a drop-in for F.max_pool2d (the same values, indices, tie and
NaN rules, and gradients) that saves a compact argmax instead of int64 indices.

Forward writes, per output, the position of its window's maximum inside the
window, ``i * kernel_w + j``: one byte (uint8) for windows of up to 256
elements, instead of PyTorch's 8-byte flat index. Backward is a gather: each
input element sums, in output order, the gradients of the windows whose
argmax points at it; no atomics, no zero-fill pass. With
``return_indices=True`` the kernels write PyTorch's int64 flat indices
directly instead (one pass, no compact argmax beside them), and the backward
reads those.
"""
from __future__ import annotations

import operator

import torch
from torch import Tensor

from alexnet_fast import reference
from alexnet_fast._backends import check_floating, resolve_backend, under_functorch_transform
from alexnet_fast.kernels.layout import check_pool_window, pool_memory_format, pool_outputs
from alexnet_fast.ops._registration import OpDescription, forward_op, register

# PyTorch reads the pooling arguments as C int: values must fit int32.
_INT32_MAX = 2**31 - 1


def _triton_forward(x, kernel_size, stride, padding, dilation, ceil_mode, need_argmax, flat_indices=False, *, launch):
    # Imported on first use: Triton reads TRITON_INTERPRET when kernels are defined.
    from alexnet_fast.kernels.max_pool2d import max_pool2d_forward

    return max_pool2d_forward(
        x, kernel_size, stride, padding, dilation, ceil_mode, need_argmax, flat_indices, launch=launch
    )


def _triton_backward(grad_out, argmax, input_height, input_width, kernel_size, stride, padding, dilation, *, launch):
    from alexnet_fast.kernels.max_pool2d import max_pool2d_backward

    return max_pool2d_backward(
        grad_out, argmax, input_height, input_width, kernel_size, stride, padding, dilation, launch=launch
    )


def _fake_forward(x, kernel_size, stride, padding, dilation, ceil_mode, need_argmax, flat_indices=False):
    return pool_outputs(x, kernel_size, stride, padding, dilation, ceil_mode, need_argmax, flat_indices)


def _fake_backward(grad_out, argmax, input_height, input_width, kernel_size, stride, padding, dilation):
    n, c = argmax.shape[:2]
    return grad_out.new_empty((n, c, input_height, input_width)).contiguous(memory_format=pool_memory_format(argmax))


def _setup_context(ctx, inputs, output):
    x, kernel_size, stride, padding, dilation, ceil_mode, need_argmax, *_ = inputs
    ctx.need_argmax = need_argmax
    ctx.save_for_backward(output[1])  # the argmax only: one byte per output (or the user's indices)
    ctx.params = (x.shape[-2], x.shape[-1], kernel_size, stride, padding, dilation)


def _backward(ctx, backward_op, grad_out, _grad_argmax):
    if not ctx.need_argmax:
        raise RuntimeError("max_pool2d_forward ran with need_argmax=False: there is no argmax to differentiate with")
    (argmax,) = ctx.saved_tensors
    return (backward_op(grad_out, argmax, *ctx.params),) + (None,) * 7


def flat_indices_and_validity(argmax, input_height, input_width, kernel_size, stride, padding, dilation):
    """PyTorch's flat index ih * W + iw of each window's maximum, and whether it is an
    in-bounds element of that window (a window lying wholly in the padding, possible with
    dilation, has none), from either argmax encoding."""
    oh, ow = argmax.shape[-2:]
    rows = (torch.arange(oh, device=argmax.device) * stride[0] - padding[0]).view(-1, 1)
    cols = torch.arange(ow, device=argmax.device) * stride[1] - padding[1]
    if argmax.dtype == torch.int64:
        ih = torch.div(argmax, input_width, rounding_mode="floor")
        iw = argmax - ih * input_width
        di, dj = ih - rows, iw - cols
        i, j = torch.div(di, dilation[0], rounding_mode="floor"), torch.div(dj, dilation[1], rounding_mode="floor")
        in_window = (di == i * dilation[0]) & (dj == j * dilation[1]) & (i >= 0) & (j >= 0)
        in_window &= (i < kernel_size[0]) & (j < kernel_size[1])
    else:
        pos = argmax.long()
        ih = rows + torch.div(pos, kernel_size[1], rounding_mode="floor") * dilation[0]
        iw = cols + torch.remainder(pos, kernel_size[1]) * dilation[1]
        in_window = torch.ones_like(pos, dtype=torch.bool)
    valid = in_window & (ih >= 0) & (ih < input_height) & (iw >= 0) & (iw < input_width)
    return torch.where(valid, ih * input_width + iw, 0), valid


def _double_backward(ctx, grad_grad_in):
    """max_pool2d_backward is linear in grad_out: its own derivative routes
    grad_grad_in back through the argmax, ggo[o] = grad_grad_in[argmax[o]], and it
    is zero with respect to the argmax (as PyTorch's max_pool2d double backward)."""
    (argmax,), (height, width, kernel_size, stride, padding, dilation) = ctx.saved_tensors, ctx.params
    flat, valid = flat_indices_and_validity(argmax, height, width, kernel_size, stride, padding, dilation)
    n, c, oh, ow = argmax.shape
    gathered = grad_grad_in.reshape(n, c, height * width).gather(2, flat.reshape(n, c, oh * ow)).view(n, c, oh, ow)
    grad_grad_out = torch.where(valid, gathered, torch.zeros((), dtype=gathered.dtype, device=gathered.device))
    return (grad_grad_out.contiguous(memory_format=pool_memory_format(argmax)),) + (None,) * 7


def _setup_double_backward(ctx, inputs, output):
    grad_out, argmax, *params = inputs
    ctx.save_for_backward(argmax)
    ctx.params = tuple(params)


_OPS = register(OpDescription(
    name="max_pool2d", fake_forward=_fake_forward, fake_backward=_fake_backward, setup_context=_setup_context,
    backward=_backward, setup_double_backward=_setup_double_backward, double_backward=_double_backward,
    triton_forward=_triton_forward, triton_backward=_triton_backward))


# --- public function ----------------------------------------------------------
def _pair(name: str, value, minimum: int, default=None) -> list[int]:
    """An int or a sequence of one or two ints (anything with __index__ but bool, as
    PyTorch's int[2] arguments), each in [minimum, 2**31 - 1]: PyTorch reads them as C
    ints and refuses larger ones."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if default is not None and not values:
        return default
    message = f"{name} must be an int >= {minimum} or a pair of them; got {value!r}"
    try:
        if len(values) not in (1, 2) or any(isinstance(v, bool) for v in values):
            raise TypeError
        ints = [operator.index(v) for v in values]
    except TypeError:
        raise ValueError(message) from None
    if not all(v >= minimum for v in ints):
        raise ValueError(message)
    if not all(v <= _INT32_MAX for v in ints):
        raise ValueError(f"{message}, beyond 2**31 - 1 (PyTorch's limit)")
    return [ints[0], ints[-1]]


def check_pool_window_arguments(kernel_size, stride, padding, dilation, ceil_mode, size=None):
    """The pooling arguments without a tensor (the module constructors check them too),
    and with the input's (H, W) ``size`` its output size: the (kernel, stride, padding,
    dilation) pairs, with PyTorch's rules and errors naming the argument and its value."""
    if not isinstance(ceil_mode, bool):
        raise TypeError(f"ceil_mode must be a bool; got {ceil_mode!r}")
    kernel = _pair("kernel_size", kernel_size, 1)
    stride = kernel if stride is None else _pair("stride", stride, 1, default=kernel)
    padding = _pair("padding", padding, 0)
    dilation = _pair("dilation", dilation, 1)
    try:  # the rule itself: one home, shared with the Triton hosts and the fake kernels
        check_pool_window("max_pool2d", kernel, stride, padding, dilation, *(size or (None, None)), ceil_mode)
    except RuntimeError as error:
        raise ValueError(str(error)) from None
    return kernel, stride, padding, dilation


def check_pool_args(x, kernel_size, stride, padding, dilation, ceil_mode) -> tuple[list[int], ...]:
    """Validates max-pool arguments with PyTorch's rules (F.max_pool2d accepts and
    refuses the same), with errors that name the argument and its value; returns the
    (kernel, stride, padding, dilation) pairs."""
    check_floating(x)
    if x.dim() not in (3, 4):
        raise ValueError(f"x must be 3-D (C, H, W) or 4-D (N, C, H, W); got shape {tuple(x.shape)}")
    if any(s == 0 for s in x.shape[-3:]):
        raise ValueError(f"x must have non-zero C, H and W; got shape {tuple(x.shape)}")
    return check_pool_window_arguments(kernel_size, stride, padding, dilation, ceil_mode, tuple(x.shape[-2:]))


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False, *, backend: str = "auto"):
    """``F.max_pool2d`` with every argument and the same result, bit for bit.

    x: (C, H, W) or (N, C, H, W), float32/float64/float16/bfloat16; NCHW and
    channels_last without a copy (the output keeps channels_last).
    backend: 'auto', 'reference', 'cpu', 'cuda' or 'triton'.
    """
    kernel, stride, padding, dilation = check_pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
    backend = resolve_backend(backend, x.device)
    return_indices = bool(return_indices)
    if backend == "reference" or under_functorch_transform(x):
        return reference.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, return_indices)

    batched = x if x.dim() == 4 else x.unsqueeze(0)
    need_argmax = return_indices or (torch.is_grad_enabled() and x.requires_grad)
    forward = forward_op(_OPS, backend, x.device)
    out, argmax = forward(batched, kernel, stride, padding, dilation, ceil_mode, need_argmax, return_indices)
    if x.dim() == 3:
        out, argmax = out.squeeze(0), argmax.squeeze(0) if return_indices else argmax
    return (out, argmax) if return_indices else out
