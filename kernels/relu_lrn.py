"""Fused ReLU + Local Response Normalization (across channels), forward and backward.

Semantics (``F.local_response_norm(relu(x), size, alpha, beta, k)``):

    a_c = relu(x_c) if apply_relu else x_c
    s_c = k + alpha / size * sum_{j in W(c)} a_j^2,  W(c) = [c - size//2, c + (size-1)//2] & [0, C)
    b_c = a_c * s_c^-beta

    dx_j = relu'(x_j) * (g_j s_j^-beta
                         - (2 alpha beta / size) a_j sum_{i in W'(j)} g_i a_i s_i^(-beta-1))
    W'(j) = [j - (size-1)//2, j + size//2] & [0, C)   (the i whose window W(i) contains j)

The input is seen as (N, C, S) through ``channel_view`` (channels-first or channels-last,
never copied when dense); every pointer uses the same three strides, so one kernel serves
both layouts. A program owns one sample n and BLOCK_S spatial positions and walks the
channels in tiles of BLOCK_C; each window term is its own masked load (the window is small
and the loads hit cache), never a running add/subtract, so a NaN/inf only reaches the
channels whose window contains it. The backward recomputes the window sums (nothing is
saved but x) and uses no atomics: bitwise repeatable.

Loads and stores are in the storage dtype; statistics in fp32 (fp64 for float64 tensors).
Triton passes Python floats as fp32, so every float parameter travels as an fp32 (hi, lo)
pair whose sum is the double to ~2^-48 relative: float64 tensors get float64 parameters.
"""
import math
import struct

import torch
import triton
import triton.language as tl

from .launch import COMPILE_OPTIONS, direct
from .layout import channel_view, same_layout_as
from .lrn_wide_range import lrn_input_grad_wide_range, lrn_output_wide_range


# ----------------------------------------------------------------------------- helpers


@triton.jit
def _load_f(ptrs, mask, FP64: tl.constexpr):
    """Load in the storage dtype, return fp32 (fp64 for float64 storage); 0 where masked."""
    x = tl.load(ptrs, mask=mask, other=0.0)
    if FP64:
        return x.to(tl.float64)
    else:
        return x.to(tl.float32)


@triton.jit
def _act(x, APPLY_RELU: tl.constexpr):
    # a = relu(x) = (x <= 0 ? 0 : x): NaN stays NaN
    if APPLY_RELU:
        return tl.where(x <= 0, 0.0, x)
    else:
        return x


@triton.jit
def _param(hi, lo, FP64: tl.constexpr):
    """A float parameter from its fp32 (hi, lo) halves."""
    # tl.cast also turns the interpreter's Python floats into fp32 scalars, as on the GPU
    if FP64:
        return tl.cast(hi, tl.float64) + tl.cast(lo, tl.float64)
    else:
        return tl.cast(hi, tl.float32) + tl.cast(lo, tl.float32)


@triton.jit
def _lrn_parameters(k_hi, k_lo, scale_hi, scale_lo, beta_hi, beta_lo, FP64: tl.constexpr):
    """k, alpha / size and beta from their fp32 (hi, lo) halves."""
    return _param(k_hi, k_lo, FP64), _param(scale_hi, scale_lo, FP64), _param(beta_hi, beta_lo, FP64)


@triton.jit
def _pow_neg_beta(s, beta, POWER: tl.constexpr, FP64: tl.constexpr):
    if POWER == 0:
        # beta = 0: s^0 = 1 for every s (0, inf and NaN included), as pow
        return tl.full(s.shape, 1.0, tl.float64 if FP64 else tl.float32)
    elif POWER == 1:
        # s^-0.75 = 1 / (sqrt(s) * sqrt(sqrt(s)))   (correctly rounded square roots, no pow;
        # tl.sqrt is sqrt.rn for fp64, sqrt_rn takes fp32 only)
        if FP64:
            r = tl.sqrt(s)
            return 1.0 / (r * tl.sqrt(r))
        else:
            r = tl.sqrt_rn(s)
            return 1.0 / (r * tl.sqrt_rn(r))
    else:
        # s^-beta = 2^(-beta * log2(s))
        return tl.exp2(-beta * tl.log2(s))


@triton.jit
def _window_sum_sq(
    X_ptr, row, c, mask_s, C, stride_channel,
    LO: tl.constexpr, HI: tl.constexpr, APPLY_RELU: tl.constexpr, FP64: tl.constexpr,
    BLOCK_S: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """sum_{j in W(c)} a_j^2 for a [BLOCK_S, BLOCK_C] tile of channels c (any c: clipped)."""
    acc = tl.zeros([BLOCK_S, BLOCK_C], dtype=tl.float64 if FP64 else tl.float32)
    for d in tl.static_range(LO + HI + 1):
        # j = c + d - LO, for d in [0, LO + HI]: W(c); j outside [0, C) contributes 0
        j = c + (d - LO)
        mask = mask_s & (j >= 0) & (j < C)
        a = _act(_load_f(X_ptr + row + j.to(tl.int64) * stride_channel, mask, FP64), APPLY_RELU)
        acc += a * a
    return acc


@triton.jit
def _sample_rows(num_s_blocks, S, stride_batch, stride_spatial, BLOCK_S: tl.constexpr):
    """This program's sample n and BLOCK_S spatial positions (program n * num_s_blocks + b
    takes positions b * BLOCK_S, ...): the int64 offsets of their channel 0, [BLOCK_S, 1],
    and the mask of the positions below S."""
    pid = tl.program_id(0).to(tl.int64)
    n = pid // num_s_blocks
    offs_s = (pid % num_s_blocks) * BLOCK_S + tl.arange(0, BLOCK_S)
    mask_s = (offs_s < S)[:, None]
    return n * stride_batch + offs_s[:, None] * stride_spatial, mask_s


# ----------------------------------------------------------------------------- kernels


@triton.jit
def _relu_lrn_forward_kernel(
    Y_ptr,
    X_ptr,
    C,
    S,
    num_s_blocks,
    stride_batch,
    stride_channel,
    stride_spatial,
    k_hi,
    k_lo,
    scale_hi,  # alpha / size
    scale_lo,
    beta_hi,
    beta_lo,
    LO: tl.constexpr,
    HI: tl.constexpr,
    APPLY_RELU: tl.constexpr,
    POWER: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK_S: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    row, mask_s = _sample_rows(num_s_blocks, S, stride_batch, stride_spatial, BLOCK_S)
    k, scale, beta = _lrn_parameters(k_hi, k_lo, scale_hi, scale_lo, beta_hi, beta_lo, FP64)

    for c0 in range(0, C, BLOCK_C):
        c = c0 + tl.arange(0, BLOCK_C)[None, :]
        mask = mask_s & (c < C)
        offs = row + c.to(tl.int64) * stride_channel

        # s_c = k + alpha/size * sum_{j in W(c)} a_j^2
        s = k + scale * _window_sum_sq(
            X_ptr, row, c, mask_s, C, stride_channel, LO, HI, APPLY_RELU, FP64, BLOCK_S, BLOCK_C
        )
        a = _act(_load_f(X_ptr + offs, mask, FP64), APPLY_RELU)
        # b_c = a_c * s_c^-beta
        y = a * _pow_neg_beta(s, beta, POWER, FP64)
        # NaN or +-inf from finite inputs: s over- or underflowed (lrn_wide_range.py)
        bad = mask & ((y - y) != 0.0)
        if tl.max(bad.to(tl.int32)) > 0:
            wide, ok = lrn_output_wide_range(
                X_ptr, row, c, mask, C, stride_channel,
                _param(scale_hi, scale_lo, True), _param(beta_hi, beta_lo, True), _param(k_hi, k_lo, True),
                LO, HI, APPLY_RELU,
            )
            y = tl.where(bad & ok, wide.to(y.dtype), y)
        tl.store(Y_ptr + offs, y.to(Y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _relu_lrn_backward_kernel(
    DX_ptr,
    DY_ptr,
    X_ptr,
    C,
    S,
    num_s_blocks,
    stride_batch,
    stride_channel,
    stride_spatial,
    k_hi,
    k_lo,
    scale_hi,  # alpha / size
    scale_lo,
    beta_hi,
    beta_lo,
    coef_hi,  # 2 * alpha * beta / size
    coef_lo,
    LO: tl.constexpr,
    HI: tl.constexpr,
    APPLY_RELU: tl.constexpr,
    POWER: tl.constexpr,
    FP64: tl.constexpr,
    BLOCK_S: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    row, mask_s = _sample_rows(num_s_blocks, S, stride_batch, stride_spatial, BLOCK_S)
    k, scale, beta = _lrn_parameters(k_hi, k_lo, scale_hi, scale_lo, beta_hi, beta_lo, FP64)
    coef = _param(coef_hi, coef_lo, FP64)

    for c0 in range(0, C, BLOCK_C):
        c = c0 + tl.arange(0, BLOCK_C)[None, :]
        mask = mask_s & (c < C)
        offs = row + c.to(tl.int64) * stride_channel

        x = _load_f(X_ptr + offs, mask, FP64)
        a = _act(x, APPLY_RELU)
        g = _load_f(DY_ptr + offs, mask, FP64)
        # s_j = k + alpha/size * sum_{m in W(j)} a_m^2
        s = k + scale * _window_sum_sq(
            X_ptr, row, c, mask_s, C, stride_channel, LO, HI, APPLY_RELU, FP64, BLOCK_S, BLOCK_C
        )
        if POWER == 0:
            # beta = 0: LRN is the identity, dx_j = relu'(x_j) g_j exactly
            dx = g
        else:
            p = _pow_neg_beta(s, beta, POWER, FP64)

            # acc_j = sum_{i in W'(j)} g_i a_i s_i^(-beta-1),  W'(j) = [j - HI, j + LO]
            acc = tl.zeros([BLOCK_S, BLOCK_C], dtype=tl.float64 if FP64 else tl.float32)
            for e in tl.static_range(LO + HI + 1):
                if e == HI:
                    # i == j: reuse s_j
                    acc += g * a * (p / s)
                else:
                    i = c + (e - HI)
                    mask_i = mask_s & (i >= 0) & (i < C)
                    offs_i = row + i.to(tl.int64) * stride_channel
                    a_i = _act(_load_f(X_ptr + offs_i, mask_i, FP64), APPLY_RELU)
                    g_i = _load_f(DY_ptr + offs_i, mask_i, FP64)
                    s_i = k + scale * _window_sum_sq(
                        X_ptr, row, i, mask_s, C, stride_channel,
                        LO, HI, APPLY_RELU, FP64, BLOCK_S, BLOCK_C,
                    )
                    # s_i^(-beta-1) = s_i^-beta / s_i; i outside [0, C) contributes 0
                    t = g_i * a_i * (_pow_neg_beta(s_i, beta, POWER, FP64) / s_i)
                    acc += tl.where(mask_i, t, 0.0)

            # dx_j = relu'(x_j) * (g_j s_j^-beta - (2 alpha beta / size) a_j acc_j)
            dx = g * p - coef * a * acc
            # Where an intermediate over- or underflowed, dx is NaN or +-inf
            # (lrn_wide_range.py): recompute those lanes in wide range.
            bad = mask & ((dx - dx) != 0.0)
            if tl.max(bad.to(tl.int32)) > 0:
                wide, ok = lrn_input_grad_wide_range(
                    X_ptr, DY_ptr, row, c, mask, C, stride_channel,
                    _param(scale_hi, scale_lo, True), _param(beta_hi, beta_lo, True), _param(k_hi, k_lo, True),
                    LO, HI, APPLY_RELU,
                )
                dx = tl.where(bad & ok, wide.to(dx.dtype), dx)
        if APPLY_RELU:
            # relu'(x) = 0 if x <= 0 else 1 (threshold_backward: NaN passes the gradient)
            dx = tl.where(x <= 0, 0.0, dx)
        tl.store(DX_ptr + offs, dx.to(DX_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------- host


def _split(v: float):
    """``v`` as fp32 (hi, lo) with hi + lo == v to ~2^-48 relative."""
    v = float(v)
    try:
        hi = struct.unpack("f", struct.pack("f", v))[0]
    except OverflowError:  # |v| beyond fp32: the kernel sees +-inf
        return math.copysign(math.inf, v), 0.0
    if not math.isfinite(hi):
        return hi, 0.0
    return hi, v - hi


def _pow2_at_least(n, cap):
    """min(next power of 2 >= n, cap), by comparisons only (works on SymInts too)."""
    b = 1
    while b < cap and b < n:
        b *= 2
    return b


def _tiles(view):
    """(BLOCK_S, BLOCK_C): a tile of up to 256 (channels-first) or 512 (channels-last)
    elements, contiguous along the dimension that is contiguous in memory."""
    if view.stride_channel == 1 and view.channels > 1:
        # channels-last: channels are contiguous; up to 32 channels x 16 positions
        block_c = _pow2_at_least(view.channels, 32)
        block_s = _pow2_at_least(view.spatial, 512 // block_c)
    else:
        # channels-first: positions are contiguous; 256 positions, more channels if S is small
        block_s = _pow2_at_least(view.spatial, 256)
        block_c = _pow2_at_least(view.channels, 256 // block_s)
    return block_s, block_c


def power_case(beta: float) -> int:
    """The POWER constexpr: 0 for beta = 0 (the identity), 1 for 0.75 (square roots, no
    pow), 2 for any other beta (exp2/log2)."""
    beta = float(beta)
    return 0 if beta == 0.0 else (1 if beta == 0.75 else 2)


def window_reach(size: int, channels: int) -> tuple[int, int]:
    """(LO, HI): W(c) = [c - LO, c + HI]. Terms more than C channels away are clipped
    anyway, so both stop at C: a size beyond C costs nothing (alpha / size keeps it)."""
    return min(int(size) // 2, int(channels)), min((int(size) - 1) // 2, int(channels))


def lrn_arguments(size, alpha, beta, k, channels, dtype, backward=False):
    """(args, constexprs) of an LRN kernel's parameters: k, alpha / size, beta and, for a
    backward, 2 alpha beta / size, as fp32 (hi, lo) pairs in that order; LO, HI, POWER
    and FP64 (the statistics in fp64 for float64 tensors)."""
    values = (k, alpha / size, beta) + ((2.0 * alpha * beta / size,) if backward else ())
    args = tuple(half for value in values for half in _split(value))
    lo, hi = window_reach(size, channels)
    return args, dict(LO=lo, HI=hi, POWER=power_case(beta), FP64=dtype == torch.float64)


def _common(view, size, alpha, beta, k, backward):
    block_s, block_c = _tiles(view)
    num_s_blocks = triton.cdiv(view.spatial, block_s)
    grid = (view.batch * num_s_blocks,)
    lrn_args, lrn_constants = lrn_arguments(size, alpha, beta, k, view.channels, view.tensor.dtype, backward)
    args = (
        view.channels,
        view.spatial,
        num_s_blocks,
        view.stride_batch,
        view.stride_channel,
        view.stride_spatial,
        *lrn_args,
    )
    meta = dict(lrn_constants, BLOCK_S=block_s, BLOCK_C=block_c, **COMPILE_OPTIONS)
    return grid, args, meta


def relu_lrn_forward(
    x, size: int, alpha: float, beta: float, k: float, apply_relu: bool, launch=direct
) -> torch.Tensor:
    """``F.local_response_norm(relu(x) if apply_relu else x, size, alpha, beta, k)`` for an
    (N, C, *) tensor; the result has the strides of ``channel_view(x).tensor``."""
    view = channel_view(x)
    y = torch.empty_like(view.tensor)
    if y.numel() == 0:
        return y
    grid, args, meta = _common(view, size, alpha, beta, k, backward=False)
    launch(_relu_lrn_forward_kernel)[grid](
        y, view.tensor, *args, APPLY_RELU=bool(apply_relu), **meta
    )
    return y


def relu_lrn_backward(
    grad_out, x, size: int, alpha: float, beta: float, k: float, apply_relu: bool, launch=direct
) -> torch.Tensor:
    """Gradient of ``relu_lrn_forward`` with respect to x; laid out like
    ``channel_view(x).tensor`` (grad_out is copied to that layout if it differs)."""
    view = channel_view(x)
    dx = torch.empty_like(view.tensor)
    if dx.numel() == 0:
        return dx
    grad_out = same_layout_as(grad_out, view.tensor)
    grid, args, meta = _common(view, size, alpha, beta, k, backward=True)
    launch(_relu_lrn_backward_kernel)[grid](
        dx, grad_out, view.tensor, *args,
        APPLY_RELU=bool(apply_relu), **meta
    )
    return dx
