"""The (N, C, S) view of an (N, C, *) tensor, as csrc/channel_layout.h.

Kernels handle the two dense layouts without a copy:
  channels-first (contiguous):  stride_c = S, stride_s = 1
  channels-last (NHWC, NDHWC):  stride_c = 1, stride_s = C
Any other strides are copied to contiguous once.
"""
from typing import NamedTuple

import torch


class ChannelView(NamedTuple):
    tensor: torch.Tensor  # x itself, or a contiguous copy
    batch: int
    channels: int
    spatial: int
    stride_batch: int
    stride_channel: int
    stride_spatial: int


def _spatial_collapses(t: torch.Tensor, inner: int) -> bool:
    expected = inner
    for d in range(t.dim() - 1, 1, -1):
        if t.size(d) != 1 and t.stride(d) != expected:
            return False
        expected *= t.size(d)
    return True


def channel_view(x: torch.Tensor) -> ChannelView:
    n, c = x.shape[0], x.shape[1]
    s = 1
    for size in x.shape[2:]:
        s *= size
    if x.is_contiguous():
        return ChannelView(x, n, c, s, c * s, s, 1)
    batch_dense = n == 1 or x.stride(0) == c * s
    if (c == 1 or x.stride(1) == 1) and _spatial_collapses(x, c) and batch_dense:
        return ChannelView(x, n, c, s, c * s, 1, c)
    return channel_view(x.contiguous())


def same_layout_as(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` laid out exactly like ``like`` (a ChannelView tensor)."""
    if t.stride() == like.stride():
        return t
    out = torch.empty_like(like)
    out.copy_(t)
    return out


def pooling_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling_output_shape: floor (or ceil) of
    (size + 2 padding - dilation (kernel - 1) - 1) / stride, plus one; with
    ceil_mode a last window that would start in the right padding is dropped.
    Works on symbolic sizes without adding a guard (sym_ite)."""
    numerator = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        numerator = numerator + (stride - 1)
    out = numerator // stride + 1  # floor division, as PyTorch's div_rtn
    if ceil_mode:
        out = torch.sym_ite((out - 1) * stride >= size + padding, out - 1, out)
    return out


def suggest_memory_format(t: torch.Tensor) -> torch.memory_format:
    """Tensor.suggest_memory_format() of a 4-D tensor, which Python does not
    expose (c10's is_channels_last_strides_2d_s4): channels_last when the
    strides order C < W < H < N, size-1 dims resolved as PyTorch does."""
    sizes, strides = t.shape, t.stride()
    if strides[1] == 0:
        return torch.contiguous_format
    smallest = 0
    for d in (1, 3, 2, 0):
        if sizes[d] == 0 or strides[d] < smallest:
            return torch.contiguous_format
        # N111 with equal strides and N11W sliced on W: PyTorch falls back to NCHW.
        if d == 0 and smallest == strides[1]:
            return torch.contiguous_format
        smallest = strides[d]
        if sizes[d] > 1:
            smallest = smallest * sizes[d]
    return torch.channels_last


def pool_is_channels_last(x: torch.Tensor) -> bool:
    """Max-pool kernels keep NHWC inputs NHWC, deciding as PyTorch's own
    max_pool2d does; anything else is NCHW (copied to dense first)."""
    return x.dim() == 4 and suggest_memory_format(x) == torch.channels_last


def argmax_dtype(kernel_size, flat_indices: bool = False) -> torch.dtype:
    """Window positions kh * KW + kw fit uint8 up to 256 positions; PyTorch's flat
    indices ih * W + iw (return_indices) are int64."""
    if flat_indices:
        return torch.int64
    return torch.uint8 if kernel_size[0] * kernel_size[1] <= 256 else torch.int32


_INT32_MAX = 2**31 - 1


def check_pool_window(op, kernel_size, stride, padding, dilation, height=None, width=None, ceil_mode=False):
    """PyTorch's rules for pooling pairs, as csrc/pool_geometry.h's check_pool_window and
    pooled_size: kernel, stride, dilation in [1, 2^31), 0 <= padding <= kernel // 2
    (the dilated size does not count), and with the input (height, width) an output of
    at least 1 x 1. torch._check (RuntimeError), so that fake tensors, whose sizes may be
    symbolic, are checked too; the public functions raise the same messages as
    ValueError (ops/max_pool2d.py)."""
    for name, pair, low in (("kernel_size", kernel_size, 1), ("stride", stride, 1), ("dilation", dilation, 1),
                            ("padding", padding, 0)):
        torch._check(len(pair) == 2, lambda: f"{op}: {name} must have 2 elements, got {tuple(pair)}")
        for v in pair:
            torch._check(low <= v <= _INT32_MAX, lambda: f"{op}: {name} must be in [{low}, 2^31), got {tuple(pair)}")
    for d, name in enumerate("hw"):
        torch._check(
            padding[d] <= kernel_size[d] // 2,
            lambda: f"{op}: padding must be at most half the kernel size, kernel_size // 2 = {kernel_size[d] // 2} "
            f"along {name}; got padding={tuple(padding)}, kernel_size={tuple(kernel_size)}",
        )
    if height is not None:
        out_size = tuple(
            pooling_output_size(size, kernel_size[d], stride[d], padding[d], dilation[d], ceil_mode)
            for d, size in enumerate((height, width))
        )
        torch._check(
            out_size[0] >= 1 and out_size[1] >= 1,
            lambda: f"{op}: output size would be {out_size} for input size {(height, width)} with "
            f"kernel_size={tuple(kernel_size)}, stride={tuple(stride)}, padding={tuple(padding)}, "
            f"dilation={tuple(dilation)}, ceil_mode={ceil_mode}: it must be at least 1 x 1",
        )


def pool_memory_format(t: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if pool_is_channels_last(t) else torch.contiguous_format


def pool_outputs(x, kernel_size, stride, padding, dilation, ceil_mode, need_argmax, flat_indices=False,
                 op="max_pool2d_forward"):
    """(out, argmax) of a max-pool forward as every backend allocates them: x's memory
    format, argmax as argmax_dtype, or an empty uint8 tensor without need_argmax. The
    fake kernels and the Triton hosts both allocate through this, after the checks."""
    n, c, h, w = x.shape
    check_pool_window(op, kernel_size, stride, padding, dilation, h, w, ceil_mode)
    oh = pooling_output_size(h, kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow = pooling_output_size(w, kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
    fmt = pool_memory_format(x)
    out = x.new_empty((n, c, oh, ow)).contiguous(memory_format=fmt)
    if not need_argmax:
        return out, x.new_empty((0,), dtype=torch.uint8)
    argmax = x.new_empty((n, c, oh, ow), dtype=argmax_dtype(kernel_size, flat_indices))
    return out, argmax.contiguous(memory_format=fmt)
