"""Fused ReLU + LRN (across channels) + max-pool 2d, forward and backward (Triton).

Semantics (dilation 1):

    a_c = relu(x_c) = (x_c <= 0 ? 0 : x_c)                         (NaN stays NaN)
    s_c = k + alpha / size * sum_{j in W(c)} a_j^2,  W(c) = [c - size//2, c + (size-1)//2] & [0, C)
    b_c = a_c * s_c^-beta                                            (the LRN value)
    y[n, c, oh, ow] = max over i < KH, j < KW of b[n, c, oh*SH - PH + i, ow*SW - PW + j]

Forward: one lane per pooled output, the outputs taken flat in their memory order (as
kernels/max_pool2d.py). For each window element (static KH x KW loop, rows then columns)
the lane computes the LRN value b at (c, ih, iw) from LO + HI + 1 masked channel loads of x
(the direct window sum, never a running add/subtract, so NaN/inf only reach the channels
whose window holds them) and applies PyTorch's max rule

    maxval = -inf, maxpos = first in-bounds position of the window,
    if (b > maxval) | isnan(b): maxval, maxpos = b, i*KW + j

Padding is -inf, never selected. The LRN value is exactly the fp32 (fp64 for float64)
value kernels/relu_lrn.py computes (same summation order, same pow), rounded to the storage
dtype before the comparison, as max_pool2d compares the values relu_lrn stored: out and
argmax are those of max_pool2d(relu_lrn(x)) with the Triton kernels, in every dtype. x is
read once; only y (+ argmax) is written.

Backward: one lane per input element (n, c, ih, iw), flat in memory order. The gradient
reaching the LRN output of channel i at (ih, iw) is gathered as in max_pool2d's backward:

    g_i = sum over windows (oh, ow) containing (ih, iw), in increasing (oh, ow) order,
          of grad_out[n, i, oh, ow] where argmax[n, i, oh, ow] is (ih, iw)'s position

(fp32 from 0, fp64 for float64, then rounded to the storage dtype as max_pool2d_backward
stores it), then the relu_lrn backward with the window sums recomputed from x:

    dx_c = relu'(x_c) * (g_c s_c^-beta - (2 alpha beta / size) a_c sum_{i in W'(c)} g_i a_i s_i^(-beta-1))
    W'(c) = [c - (size-1)//2, c + size//2] & [0, C)      relu'(x) = (x <= 0 ? 0 : 1)

One pass, no atomics, no zero-fill: bitwise repeatable.

Layouts: NCHW and NHWC (channels_last) natively, decided as PyTorch's
suggest_memory_format; other strides are copied to dense in that format first. out,
argmax and dx keep that format; grad_out and argmax are matched to it.

Host code is shape/stride logic and allocations only (no .item(), nothing data
dependent), so it traces under fake tensors; ``launch`` is applied to each kernel
(torch.library.wrap_triton under torch.compile, the identity otherwise). Float
parameters travel as fp32 (hi, lo) pairs (relu_lrn's _split) so float64 tensors get
float64 parameters.
"""
import torch
import triton
import triton.language as tl

from .launch import direct, flat_launch
from .layout import check_pool_window, pool_outputs, suggest_memory_format
from .lrn_wide_range import lrn_output_wide_range, wide_range_add, wide_range_result, wide_range_scale, wide_range_start
from .max_pool2d import (
    _block_offsets,
    _decode_plane_index,
    _dense,
    _gathered_grad,
    _in_bounds,
    _max_update,
    _window_origin,
    backward_window_constants,
    check_backward_inputs,
    forward_window_constants,
)
from .relu_lrn import _act, _load_f, _lrn_parameters, _param, _pow_neg_beta, lrn_arguments

# Elements per program and warps: each forward lane does KH*KW*size loads of x (cache
# hits after the first), each backward lane size * (size + 2 * candidate windows).
# Offsets are int32 unless some flat index could reach 2**31 (launch.py); pool windows
# (forward) and candidate output sets (backward) are unrolled up to max_pool2d's limit,
# the channel-window loops always, as in relu_lrn.py.
_FORWARD_BLOCK = 256
_BACKWARD_BLOCK = 256
_NUM_WARPS = 4

# ----------------------------------------------------------------------------- helpers


@triton.jit
def _lrn_at(
    X_ptr, x_off, c, ok, C, stride_c, k, scale, beta,
    LO: tl.constexpr, HI: tl.constexpr, POWER: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr,
):
    """(a_c, s_c, s_c^-beta) at the elements x_off = offset of (n, c, h, w), lanes where ok.

    s_c = k + alpha/size * sum_{j in W(c)} a_j^2, summed from 0 in the order j = c - LO,
    ..., c + HI (relu_lrn.py's _window_sum_sq order: bitwise the same value)."""
    acc = tl.zeros([BLOCK], dtype=tl.float64 if FP64 else tl.float32)
    a = acc
    for d in tl.static_range(LO + HI + 1):
        # j = c + d - LO; j outside [0, C) contributes 0 (masked load)
        j = c + (d - LO)
        m = ok & (j >= 0) & (j < C)
        a_j = _act(_load_f(X_ptr + (x_off + (d - LO) * stride_c), m, FP64), True)
        acc += a_j * a_j
        if d == LO:
            a = a_j  # j == c: a_c itself
    s = k + scale * acc
    return a, s, _pow_neg_beta(s, beta, POWER, FP64)


@triton.jit
def _forward_step(
    Y_ptr, X_ptr, x_start, c, ih0, iw0, i, j, H, W, step_h, step_w, stride_c, C, mask,
    k, scale, beta, alpha64, beta64, k64, maxval, maxpos,
    KW: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr,
    LO: tl.constexpr, HI: tl.constexpr, POWER: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr,
):
    """Window element (i, j): the LRN value there, then PyTorch's max update."""
    ok = _in_bounds(mask, ih0 + i, iw0 + j, H, W, PH, PW)
    x_off = x_start + i * step_h + j * step_w
    a, s, p = _lrn_at(X_ptr, x_off, c, ok, C, stride_c, k, scale, beta, LO, HI, POWER, FP64, BLOCK)
    ab = a * p
    # NaN or +-inf from finite inputs: s over- or underflowed (lrn_wide_range.py)
    bad = ok & ((ab - ab) != 0.0)
    if tl.max(bad.to(tl.int32)) > 0:
        wide, wide_ok = lrn_output_wide_range(
            X_ptr, x_off - c.to(tl.int64) * stride_c, c, ok, C, stride_c, alpha64, beta64, k64, LO, HI, True
        )
        ab = tl.where(bad & wide_ok, wide.to(ab.dtype), ab)
    # b = a * s^-beta, rounded to the storage dtype as relu_lrn stores it (a no-op for
    # fp32/fp64): the max and its position are those of max_pool2d(relu_lrn(x)).
    b = ab.to(Y_ptr.dtype.element_ty).to(maxval.dtype)
    return _max_update(tl.where(ok, b, float("-inf")), i, j, maxval, maxpos, KW)


@triton.jit
def _pooled_grad(
    DY_ptr, A_ptr, y_base, m, ph, pw, OH, OW, step_h, step_w,
    KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr,
    ROWS: tl.constexpr, COLS: tl.constexpr,
    ROWS_BY_OFFSET: tl.constexpr, COLS_BY_OFFSET: tl.constexpr,
    UNROLL: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr,
):
    """Max-pool backward gather for one channel plane (y_base = offset of (n, i, 0, 0)):
    max_pool2d.py's, dilation 1, rounded to the storage dtype as max_pool2d_backward stores
    it (a no-op for fp32/fp64)."""
    acc = _gathered_grad(
        DY_ptr, A_ptr, y_base, m, ph, pw, 0, OH, OW, step_h, step_w, KH, KW, SH, SW, 1, 1,
        ROWS, COLS, ROWS_BY_OFFSET, COLS_BY_OFFSET, False, UNROLL, FP64, BLOCK,
    )
    return acc.to(DY_ptr.dtype.element_ty).to(acc.dtype)


# ----------------------------------------------------------------------------- kernels


@triton.jit
def _relu_lrn_max_pool2d_forward_kernel(
    Y_ptr,  # out (N, C, OH, OW), dense in CHANNELS_LAST ? NHWC : NCHW order
    A_ptr,  # argmax, same shape/layout as Y (uint8 or int32); unused unless STORE_ARGMAX
    X_ptr,  # input (N, C, H, W), dense in the same order as Y
    n_outputs,  # N*C*OH*OW
    C,
    H,
    W,
    OH,
    OW,
    k_hi,
    k_lo,
    scale_hi,  # alpha / size
    scale_lo,
    beta_hi,
    beta_lo,
    LO: tl.constexpr,
    HI: tl.constexpr,
    POWER: tl.constexpr,
    KH: tl.constexpr,
    KW: tl.constexpr,
    SH: tl.constexpr,
    SW: tl.constexpr,
    PH: tl.constexpr,
    PW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    STORE_ARGMAX: tl.constexpr,
    FP64: tl.constexpr,
    UNROLL: tl.constexpr,
    INDEX_64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offs, mask = _block_offsets(n_outputs, BLOCK, INDEX_64)

    # x(n, c, ih, iw) at base + ih*step_h + iw*step_w, channel c + d at + d*stride_c.
    c, oh, ow, base, step_h, step_w = _decode_plane_index(offs, C, OH, OW, H, W, CHANNELS_LAST)
    if CHANNELS_LAST:
        stride_c = 1
    else:
        stride_c = H * W

    k, scale, beta = _lrn_parameters(k_hi, k_lo, scale_hi, scale_lo, beta_hi, beta_lo, FP64)

    # the parameters in fp64, for the wide-range fallback
    alpha64 = _param(scale_hi, scale_lo, True)
    beta64 = _param(beta_hi, beta_lo, True)
    k64 = _param(k_hi, k_lo, True)

    ih0, iw0, maxpos = _window_origin(oh, ow, KW, SH, SW, PH, PW, 1, 1)
    maxval = tl.full([BLOCK], float("-inf"), tl.float64 if FP64 else tl.float32)

    x_start = base + ih0 * step_h + iw0 * step_w  # offset of window element (0, 0)
    if UNROLL:
        for i in tl.static_range(KH):
            for j in tl.static_range(KW):
                maxval, maxpos = _forward_step(
                    Y_ptr, X_ptr, x_start, c, ih0, iw0, i, j, H, W, step_h, step_w, stride_c, C, mask,
                    k, scale, beta, alpha64, beta64, k64, maxval, maxpos, KW, PH, PW, LO, HI, POWER, FP64, BLOCK,
                )
    else:
        for i in range(KH):
            for j in range(KW):
                maxval, maxpos = _forward_step(
                    Y_ptr, X_ptr, x_start, c, ih0, iw0, i, j, H, W, step_h, step_w, stride_c, C, mask,
                    k, scale, beta, alpha64, beta64, k64, maxval, maxpos, KW, PH, PW, LO, HI, POWER, FP64, BLOCK,
                )

    # Y and A are dense in the decode's memory order: offset = offs
    tl.store(Y_ptr + offs, maxval.to(Y_ptr.dtype.element_ty), mask=mask)
    if STORE_ARGMAX:
        tl.store(A_ptr + offs, maxpos.to(A_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _relu_lrn_max_pool2d_backward_kernel(
    DX_ptr,  # grad_in (N, C, H, W), dense in CHANNELS_LAST ? NHWC : NCHW order
    DY_ptr,  # grad_out (N, C, OH, OW), same order
    A_ptr,  # argmax (N, C, OH, OW), same order, uint8 or int32
    X_ptr,  # input (N, C, H, W), same order as DX
    n_inputs,  # N*C*H*W
    C,
    H,
    W,
    OH,
    OW,
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
    POWER: tl.constexpr,
    KH: tl.constexpr,
    KW: tl.constexpr,
    SH: tl.constexpr,
    SW: tl.constexpr,
    PH: tl.constexpr,
    PW: tl.constexpr,
    ROWS: tl.constexpr,  # candidate output rows per input row
    COLS: tl.constexpr,  # candidate output columns per input column
    ROWS_BY_OFFSET: tl.constexpr,
    COLS_BY_OFFSET: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    FP64: tl.constexpr,
    UNROLL: tl.constexpr,
    INDEX_64: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offs, mask = _block_offsets(n_inputs, BLOCK, INDEX_64)

    # x and dx of (n, c, ih, iw) at offs, channel c + d at offs + d*stride_c; output (oh, ow)
    # of channel c + d at y_base + d*y_stride_c + oh*step_h + ow*step_w.
    c, ih, iw, y_base, step_h, step_w = _decode_plane_index(offs, C, H, W, OH, OW, CHANNELS_LAST)
    if CHANNELS_LAST:
        y_stride_c = 1
        stride_c = 1
    else:
        y_stride_c = OH * OW
        stride_c = H * W

    k, scale, beta = _lrn_parameters(k_hi, k_lo, scale_hi, scale_lo, beta_hi, beta_lo, FP64)
    coef = _param(coef_hi, coef_lo, FP64)

    ph = ih + PH
    pw = iw + PW

    # channel c itself: x_c, a_c, s_c, s_c^-beta, g_c
    x = _load_f(X_ptr + offs, mask, FP64)
    a, s, p = _lrn_at(X_ptr, offs, c, mask, C, stride_c, k, scale, beta, LO, HI, POWER, FP64, BLOCK)
    g = _pooled_grad(
        DY_ptr, A_ptr, y_base, mask, ph, pw, OH, OW, step_h, step_w,
        KH, KW, SH, SW, ROWS, COLS, ROWS_BY_OFFSET, COLS_BY_OFFSET, UNROLL, FP64, BLOCK,
    )

    if POWER == 0:
        # beta = 0: LRN is the identity, dx_c = relu'(x_c) g_c exactly
        dx = g
    else:
        # acc_c = sum_{i in W'(c)} g_i a_i s_i^(-beta-1),  W'(c) = [c - HI, c + LO]
        # (relu_lrn.py's backward order and masking: bitwise the same for fp32/fp64)
        acc = tl.zeros([BLOCK], dtype=tl.float64 if FP64 else tl.float32)
        for e in tl.static_range(LO + HI + 1):
            if e == HI:
                # i == c: reuse s_c
                acc += g * a * (p / s)
            else:
                i = c + (e - HI)
                mask_i = mask & (i >= 0) & (i < C)
                a_i, s_i, p_i = _lrn_at(
                    X_ptr, offs + (e - HI) * stride_c, i, mask_i, C, stride_c,
                    k, scale, beta, LO, HI, POWER, FP64, BLOCK,
                )
                g_i = _pooled_grad(
                    DY_ptr, A_ptr, y_base + (e - HI) * y_stride_c, mask_i, ph, pw,
                    OH, OW, step_h, step_w,
                    KH, KW, SH, SW, ROWS, COLS, ROWS_BY_OFFSET, COLS_BY_OFFSET, UNROLL, FP64, BLOCK,
                )
                # s_i^(-beta-1) = s_i^-beta / s_i; i outside [0, C) contributes 0
                t_i = g_i * a_i * (p_i / s_i)
                acc += tl.where(mask_i, t_i, 0.0)

        # dx_c = relu'(x_c) * (g_c s_c^-beta - (2 alpha beta / size) a_c acc_c)
        dx = g * p - coef * a * acc
        # Where an intermediate over- or underflowed, dx is NaN or +-inf
        # (lrn_wide_range.py): recompute those lanes in wide range.
        bad = mask & ((dx - dx) != 0.0)
        if tl.max(bad.to(tl.int32)) > 0:
            x_c0 = offs - c.to(tl.int64) * stride_c
            alpha64 = _param(scale_hi, scale_lo, True)
            beta64 = _param(beta_hi, beta_lo, True)
            safe_max, h_c, log_lambda, log_k, ok = wide_range_scale(
                X_ptr, x_c0, c, mask, C, stride_c, alpha64, _param(k_hi, k_lo, True), LO, HI, True
            )
            total, total_exp, inf_pos, inf_neg = wide_range_start(h_c)
            for e in tl.static_range(LO + HI + 1):
                i = c + (e - HI)
                mask_i = mask & (i >= 0) & (i < C)
                g_i = _pooled_grad(
                    DY_ptr, A_ptr, y_base + (e - HI) * y_stride_c, mask_i, ph, pw,
                    OH, OW, step_h, step_w,
                    KH, KW, SH, SW, ROWS, COLS, ROWS_BY_OFFSET, COLS_BY_OFFSET, UNROLL, FP64, BLOCK,
                )
                ok = ok & ((g_i - g_i) == 0.0)
                total, total_exp, inf_pos, inf_neg = wide_range_add(
                    total, total_exp, inf_pos, inf_neg, X_ptr, x_c0, c, mask, C, stride_c,
                    safe_max, h_c, log_lambda, log_k, beta64, g_i, e, LO, HI, True,
                )
            wide = wide_range_result(total, total_exp, inf_pos, inf_neg)
            dx = tl.where(bad & ok, wide.to(dx.dtype), dx)
    # relu'(x) = 0 if x <= 0 else 1 (threshold_backward: NaN passes the gradient)
    dx = tl.where(x <= 0, 0.0, dx)
    tl.store(DX_ptr + offs, dx.to(DX_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------- host


def _ints(pair):
    return int(pair[0]), int(pair[1])


def relu_lrn_max_pool2d_forward(
    x: torch.Tensor,
    size: int,
    alpha: float,
    beta: float,
    k: float,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    ceil_mode: bool,
    need_argmax: bool,
    launch=direct,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, argmax) of max_pool2d(local_response_norm(relu(x))) over a 4-D (N, C, H, W) x,
    dilation 1. argmax = i*kW + j in the window (argmax_dtype), or an empty uint8 tensor when
    not needed; both in x's suggested memory format. Arguments are validated by the caller."""
    torch._check(x.dim() == 4, lambda: f"relu_lrn_max_pool2d_forward: x must be 4-D (N, C, H, W), got {x.dim()}-D")
    torch._check(int(size) >= 1, lambda: f"relu_lrn_max_pool2d_forward: size must be >= 1, got {size}")
    window = forward_window_constants(kernel_size, stride, padding)
    n, c, h, w = x.shape

    memory_format = suggest_memory_format(x)
    x, channels_last = _dense(x, memory_format)
    out, argmax = pool_outputs(x, _ints(kernel_size), _ints(stride), _ints(padding), (1, 1), ceil_mode, need_argmax,
                               op="relu_lrn_max_pool2d_forward")
    oh, ow = out.shape[-2:]
    lrn_args, lrn_constants = lrn_arguments(size, alpha, beta, k, c, x.dtype)

    n_outputs = out.numel()
    if n_outputs == 0 or x.numel() == 0:
        return out, argmax

    grid, meta = flat_launch(n_outputs, x.numel(), _FORWARD_BLOCK, _NUM_WARPS)
    launch(_relu_lrn_max_pool2d_forward_kernel)[grid](
        out, argmax, x, n_outputs, c, h, w, oh, ow, *lrn_args,
        **lrn_constants,
        **window,
        CHANNELS_LAST=channels_last,
        STORE_ARGMAX=bool(need_argmax),
        **meta,
    )
    return out, argmax


def _check_backward_inputs(grad_out, x, argmax, size, kernel_size, stride, padding):
    """The backward's cheap invariants (the caller validated the arguments)."""
    op = "relu_lrn_max_pool2d_backward"
    torch._check(x.dim() == 4, lambda: f"{op}: x must be 4-D (N, C, H, W), got {x.dim()}-D")
    check_backward_inputs(op, grad_out, argmax, (torch.uint8, torch.int32), x)
    torch._check(int(size) >= 1, lambda: f"{op}: size must be >= 1, got {size}")
    check_pool_window(op, kernel_size, stride, padding, (1, 1))


def relu_lrn_max_pool2d_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    argmax: torch.Tensor,
    size: int,
    alpha: float,
    beta: float,
    k: float,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    launch=direct,
) -> torch.Tensor:
    """Gradient of relu_lrn_max_pool2d_forward with respect to x (argmax from the forward
    with need_argmax=True), dense in x's suggested memory format; grad_out and argmax are
    copied to that format if they differ."""
    _check_backward_inputs(grad_out, x, argmax, size, kernel_size, stride, padding)
    window = backward_window_constants(kernel_size, stride, padding)
    n, c, h, w = x.shape
    oh, ow = argmax.shape[2], argmax.shape[3]
    lrn_args, lrn_constants = lrn_arguments(size, alpha, beta, k, c, x.dtype, backward=True)

    memory_format = suggest_memory_format(x)
    x, channels_last = _dense(x, memory_format)
    argmax = argmax.contiguous(memory_format=memory_format)
    grad_out = grad_out.contiguous(memory_format=memory_format)
    grad_in = torch.empty((n, c, h, w), dtype=x.dtype, device=x.device, memory_format=memory_format)

    n_inputs = grad_in.numel()
    if n_inputs == 0:
        return grad_in

    grid, meta = flat_launch(n_inputs, argmax.numel(), _BACKWARD_BLOCK, _NUM_WARPS)
    launch(_relu_lrn_max_pool2d_backward_kernel)[grid](
        grad_in, grad_out, argmax, x, n_inputs, c, h, w, oh, ow, *lrn_args,
        **lrn_constants,
        **window,
        CHANNELS_LAST=channels_last,
        **meta,
    )
    return grad_in
