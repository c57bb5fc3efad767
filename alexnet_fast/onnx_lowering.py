"""The alexnet_fast operators written in standard ONNX (onnxscript), for the
dynamo exporter's custom translation table (see alexnet_fast.onnx_export).

    relu_lrn_forward             [Relu ->] LRN
    max_pool2d_forward           MaxPool
    relu_lrn_max_pool2d_forward  Relu -> LRN -> MaxPool

Three conventions differ between PyTorch and ONNX or its runtimes:

* LRN window. PyTorch sums channels ``[c - n//2, c + (n-1)//2]``, ONNX's LRN
  ``[c - floor((n-1)/2), c + ceil((n-1)/2)]``: the same for odd ``n``, one
  channel apart for even ``n`` (and ONNX Runtime refuses an even LRN size).
  An even ``n`` is therefore written out as PyTorch defines the layer: the mean
  of the squares over the window is a (n, 1) average pool over the channel
  axis with zero padding n//2 before and (n-1)//2 after (counted), and
  ``b = a / (k + alpha * mean)^beta``.
* ceil_mode. PyTorch drops a last window that would start in the right
  padding; ONNX Runtime does too, OpenVINO and ONNX's shape inference do not.
  No ceil_mode is written: the output size is computed here, and the extra
  rows and columns that ceil_mode adds at the end are an explicit -inf Pad
  (a window always holds at least one input element, so -inf never wins).
* Max-pool indices. ONNX's MaxPool gives flat indices ``((n C + c) H + h) W + w``;
  the operator's argmax is the position in the window, ``i * kernel_w + j``.

Values from a runtime's MaxPool with NaN inputs follow that runtime (they
skip NaN; PyTorch propagates it).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from onnxscript import ir
from onnxscript import opset18 as op

from alexnet_fast.kernels.layout import argmax_dtype, pooling_output_size

_ONNX_DTYPES = {torch.uint8: ir.DataType.UINT8, torch.int32: ir.DataType.INT32}


def _static(value, what: str) -> int:
    if not isinstance(value, int):
        raise NotImplementedError(f"ONNX export of alexnet_fast needs a static {what}; got {value!r}")
    return value


def _ints(values) -> object:
    return op.Constant(value_ints=[int(v) for v in values])


# --- LRN ------------------------------------------------------------------------
def lrn(a, shape: Sequence, size: int, alpha: float, beta: float, k: float):
    """PyTorch's ``F.local_response_norm(a, size, alpha, beta, k)`` of an
    (N, C, *) value of ``shape`` (N may be symbolic). The ops' ``groups`` reaches
    the exported graph as the reshapes around the operator (ops/channel_groups.py)."""
    channels, *spatial = (_static(d, "channel count and spatial size") for d in shape[1:])
    # LRN in ONNX Runtime takes 4-D inputs only: (N, C, *) -> (N, C, S, 1).
    reshaped = len(spatial) != 2
    blocks = op.Reshape(a, _ints([-1, channels, math.prod(spatial), 1])) if reshaped else a
    if size % 2 == 1:  # the two windows agree
        out = op.LRN(blocks, size=size, alpha=alpha, beta=beta, bias=k)
    else:
        out = _lrn_even(blocks, channels, size, alpha, beta, k)
    return op.Reshape(out, op.Shape(a)) if reshaped else out


def _lrn_even(a, channels: int, size: int, alpha: float, beta: float, k: float):
    """b = a / (k + alpha * mean_{j in [c - n//2, c + (n-1)//2]} a_j^2)^beta,
    the mean over a zero-padded window of n channels (PyTorch's definition)."""
    squares = op.Reshape(op.Mul(a, a), _ints([0, 1, channels, -1]))  # (N, 1, C, S)
    mean = op.AveragePool(squares, kernel_shape=[size, 1], strides=[1, 1],
                          pads=[size // 2, 0, (size - 1) // 2, 0], count_include_pad=1)
    mean = op.Reshape(mean, op.Shape(a))
    return op.Div(a, op.Pow(op.Add(op.Mul(mean, alpha), k), beta))


# --- max-pool --------------------------------------------------------------------
def _ceil_extra(size: int, out: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Elements past ``size + padding`` that the last of ``out`` windows reaches
    (more than none only with ceil_mode)."""
    reach = (out - 1) * stride + dilation * (kernel - 1) + 1
    return max(0, reach - (size + 2 * padding))


def max_pool(x, like, kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int],
             dilation: Sequence[int], ceil_mode: bool, need_argmax: bool, flat_indices: bool = False):
    """(out, argmax) of the max_pool2d operator for an (N, C, H, W) value
    ``x`` of the shape and type of the operator's input ``like``; argmax holds window
    positions, or with flat_indices PyTorch's int64 plane indices."""
    height, width = (_static(d, "height and width") for d in like.shape[2:])
    dims = list(zip((height, width), kernel_size, stride, padding, dilation))
    out_size = [int(pooling_output_size(*dim, bool(ceil_mode))) for dim in dims]
    extra = [_ceil_extra(n, out, *rest) for (n, *rest), out in zip(dims, out_size)]
    padded = x
    if any(extra):
        minus_inf = ir.tensor(np.array(-np.inf, dtype=like.dtype.numpy()))
        padded = op.Pad(x, _ints([0, 0, 0, 0, 0, 0, *extra]), op.Constant(value=minus_inf))
    out, indices = op.MaxPool(padded, kernel_shape=list(kernel_size), strides=list(stride),
                              pads=[*padding, *padding], dilations=list(dilation))
    if not need_argmax:
        return out, op.Constant(value=ir.tensor(np.zeros((0,), np.uint8)))
    plane = (height + extra[0], width + extra[1])
    if flat_indices:
        return out, _plane_indices(indices, plane, width)
    return out, _window_positions(indices, plane, out_size, kernel_size, stride, padding, dilation)


def _plane_indices(flat_indices, plane: Sequence[int], width: int):
    """ONNX's flat indices (over the tensor, the ceil-mode padding included) ->
    PyTorch's ih * W + iw in the unpadded plane."""
    padded_height, padded_width = plane
    within = op.Mod(flat_indices, _ints([padded_height * padded_width]))
    row, col = op.Div(within, _ints([padded_width])), op.Mod(within, _ints([padded_width]))
    return op.Add(op.Mul(row, _ints([width])), col)


def _window_positions(flat_indices, plane: Sequence[int], out_size: Sequence[int], kernel_size, stride, padding,
                      dilation):
    """ONNX's flat indices -> the position of each maximum in its window:
    with (h, w) = divmod(index mod (H W), W), the window at (oh, ow) starts at
    (oh s_h - p_h, ow s_w - p_w), and i = (h - start_h) / d_h, j likewise."""
    height, width = plane
    within = op.Mod(flat_indices, _ints([height * width]))
    row, col = op.Div(within, _ints([width])), op.Mod(within, _ints([width]))
    out_h, out_w = out_size
    top = np.arange(out_h, dtype=np.int64).reshape(-1, 1) * stride[0] - padding[0]
    left = np.arange(out_w, dtype=np.int64) * stride[1] - padding[1]
    i = op.Div(op.Sub(row, op.Constant(value=ir.tensor(top))), _ints([dilation[0]]))
    j = op.Div(op.Sub(col, op.Constant(value=ir.tensor(left))), _ints([dilation[1]]))
    position = op.Add(op.Mul(i, _ints([kernel_size[1]])), j)
    return op.Cast(position, to=_ONNX_DTYPES[argmax_dtype(kernel_size)])


# --- translation functions: the operators' schemas (csrc/alexnet_fast.cpp) -------------
def relu_lrn_forward(x, size: int, alpha: float, beta: float, k: float, apply_relu: bool):
    return lrn(op.Relu(x) if apply_relu else x, x.shape, size, alpha, beta, k)


def max_pool2d_forward(x, kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                       dilation: Sequence[int], ceil_mode: bool, need_argmax: bool, flat_indices: bool = False):
    return max_pool(x, x, kernel_size, stride, padding, dilation, ceil_mode, need_argmax, flat_indices)


def relu_lrn_max_pool2d_forward(x, size: int, alpha: float, beta: float, k: float, kernel_size: Sequence[int],
                                stride: Sequence[int], padding: Sequence[int], ceil_mode: bool, need_argmax: bool):
    normalised = lrn(op.Relu(x), x.shape, size, alpha, beta, k)
    return max_pool(normalised, x, kernel_size, stride, padding, [1, 1], ceil_mode, need_argmax)


TRANSLATIONS = {
    "relu_lrn_forward": relu_lrn_forward,
    "max_pool2d_forward": max_pool2d_forward,
    "relu_lrn_max_pool2d_forward": relu_lrn_max_pool2d_forward,
}
