"""Max-pool 2-D, a drop-in for F.max_pool2d (the same values, indices, tie and
NaN rules, and gradients) that saves a compact argmax instead of int64 indices.

Forward writes, per output, the position of its window's maximum inside the
window, ``i * kernel_w + j``: one byte (uint8) for windows of up to 256
elements, instead of PyTorch's 8-byte flat index. Backward is a gather: each
input element sums, in output order, the gradients of the windows whose
argmax points at it; no atomics, no zero-fill pass. int64 indices are built
from the argmax only for ``return_indices=True``.
"""
from __future__ import annotations

import numbers

import torch
from torch import Tensor

from alexnet_fast import reference
from alexnet_fast._backends import check_floating, resolve_backend
from alexnet_fast.kernels.layout import argmax_dtype, pool_is_channels_last, pooling_output_size
from alexnet_fast.ops._registration import forward_op, register


def _triton_forward(x, kernel_size, stride, padding, dilation, ceil_mode, need_argmax, *, launch):
    # Imported on first use: Triton reads TRITON_INTERPRET when kernels are defined.
    from alexnet_fast.kernels.max_pool2d import max_pool2d_forward

    return max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode, need_argmax, launch=launch)


def _triton_backward(grad_out, argmax, input_height, input_width, kernel_size, stride, padding, dilation, *, launch):
    from alexnet_fast.kernels.max_pool2d import max_pool2d_backward

    return max_pool2d_backward(
        grad_out, argmax, input_height, input_width, kernel_size, stride, padding, dilation, launch=launch
    )


def memory_format(t: Tensor) -> torch.memory_format:
    return torch.channels_last if pool_is_channels_last(t) else torch.contiguous_format


def fake_pool_outputs(x, kernel_size, stride, padding, dilation, ceil_mode, need_argmax):
    """(out, argmax) as the kernels allocate them: x's memory format, argmax
    uint8 (int32 past 256 window positions), or empty without need_argmax."""
    n, c, h, w = x.shape
    oh = pooling_output_size(h, kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow = pooling_output_size(w, kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
    fmt = memory_format(x)
    out = x.new_empty((n, c, oh, ow)).contiguous(memory_format=fmt)
    if not need_argmax:
        return out, x.new_empty((0,), dtype=torch.uint8)
    return out, x.new_empty((n, c, oh, ow), dtype=argmax_dtype(kernel_size)).contiguous(memory_format=fmt)


def _fake_backward(grad_out, argmax, input_height, input_width, kernel_size, stride, padding, dilation):
    n, c = argmax.shape[:2]
    return grad_out.new_empty((n, c, input_height, input_width)).contiguous(memory_format=memory_format(argmax))


def _setup_context(ctx, inputs, output):
    x, kernel_size, stride, padding, dilation, ceil_mode, need_argmax = inputs
    ctx.need_argmax = need_argmax
    ctx.save_for_backward(output[1])  # the argmax only: one byte per output
    ctx.params = (x.shape[-2], x.shape[-1], kernel_size, stride, padding, dilation)


def _backward(ctx, backward_op, grad_out, _grad_argmax):
    if not ctx.need_argmax:
        raise RuntimeError("max_pool2d_forward ran with need_argmax=False: there is no argmax to differentiate with")
    (argmax,) = ctx.saved_tensors
    return (backward_op(grad_out, argmax, *ctx.params),) + (None,) * 6


_OPS = register(
    "max_pool2d",
    triton_forward=_triton_forward,
    triton_backward=_triton_backward,
    fake_forward=fake_pool_outputs,
    fake_backward=_fake_backward,
    setup_context=_setup_context,
    backward=_backward,
)


# --- public function ----------------------------------------------------------
def _pair(name: str, value, minimum: int) -> list[int]:
    values = [value] if isinstance(value, numbers.Integral) else value
    if (
        isinstance(values, (list, tuple))
        and len(values) in (1, 2)
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values)
        and all(v >= minimum for v in values)
    ):
        return [int(values[0]), int(values[-1])]
    raise ValueError(f"{name} must be an int >= {minimum} or a pair of them; got {value!r}")


def check_pool_args(x, kernel_size, stride, padding, dilation, ceil_mode) -> tuple[list[int], ...]:
    """Validates max-pool arguments as PyTorch does, with errors that name the
    argument and its value; returns (kernel, stride, padding, dilation) pairs."""
    check_floating(x)
    if x.dim() not in (3, 4):
        raise ValueError(f"x must be 3-D (C, H, W) or 4-D (N, C, H, W); got shape {tuple(x.shape)}")
    if any(s == 0 for s in x.shape[-3:]):
        raise ValueError(f"x must have non-zero C, H and W; got shape {tuple(x.shape)}")
    kernel = _pair("kernel_size", kernel_size, 1)
    no_stride = stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)
    stride = kernel if no_stride else _pair("stride", stride, 1)
    padding = _pair("padding", padding, 0)
    dilation = _pair("dilation", dilation, 1)
    for dim, name in enumerate("hw"):
        if padding[dim] > kernel[dim] // 2:  # PyTorch's rule (the dilated size does not count)
            raise ValueError(
                f"padding must be at most half the kernel size, kernel_size // 2 = {kernel[dim] // 2} along "
                f"{name}; got padding={tuple(padding)}, kernel_size={tuple(kernel)}"
            )
    height, width = x.shape[-2:]
    out_size = tuple(
        pooling_output_size(size, kernel[d], stride[d], padding[d], dilation[d], bool(ceil_mode))
        for d, size in enumerate((height, width))
    )
    if min(out_size) < 1:
        raise ValueError(
            f"max_pool2d output size would be {out_size} for input size {(height, width)} with "
            f"kernel_size={tuple(kernel)}, stride={tuple(stride)}, padding={tuple(padding)}, "
            f"dilation={tuple(dilation)}, ceil_mode={bool(ceil_mode)}: it must be at least 1 x 1"
        )
    return kernel, stride, padding, dilation


def _indices(argmax, input_width, kernel_size, stride, padding, dilation):
    """PyTorch's int64 flat indices ``ih * W + iw`` from window positions:
    ih = oh * stride_h - pad_h + (pos // kernel_w) * dilation_h, likewise iw."""
    oh, ow = argmax.shape[-2:]
    pos = argmax.long()
    rows = torch.arange(oh, device=argmax.device) * stride[0] - padding[0]
    cols = torch.arange(ow, device=argmax.device) * stride[1] - padding[1]
    ih = rows.view(-1, 1) + torch.div(pos, kernel_size[1], rounding_mode="floor") * dilation[0]
    iw = cols + torch.remainder(pos, kernel_size[1]) * dilation[1]
    return (ih * input_width + iw).contiguous(memory_format=memory_format(argmax))


def max_pool2d(
    x: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    backend: str = "auto",
):
    """``F.max_pool2d`` with every argument and the same result, bit for bit.

    x: (C, H, W) or (N, C, H, W), float32/float64/float16/bfloat16; NCHW and
    channels_last without a copy (the output keeps channels_last).
    backend: 'auto', 'reference', 'cpu', 'cuda' or 'triton'.
    """
    kernel, stride, padding, dilation = check_pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
    backend = resolve_backend(backend, x.device)
    if backend == "reference":
        return reference.max_pool2d(x, kernel, stride, padding, dilation, bool(ceil_mode), bool(return_indices))

    batched = x if x.dim() == 4 else x.unsqueeze(0)
    need_argmax = bool(return_indices) or (torch.is_grad_enabled() and x.requires_grad)
    forward = forward_op(_OPS, backend, x.device)
    out, argmax = forward(batched, kernel, stride, padding, dilation, bool(ceil_mode), need_argmax)
    if not return_indices:
        return out if x.dim() == 4 else out.squeeze(0)
    indices = _indices(argmax, x.shape[-1], kernel, stride, padding, dilation)
    if x.dim() == 3:
        return out.squeeze(0), indices.squeeze(0)
    return out, indices
