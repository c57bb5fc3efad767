"""The LRN input gradient evaluated without overflow or underflow of its
intermediate terms: the fallback of the Triton backward kernels for the lanes whose
fast evaluation came out NaN or +-inf, the same algorithm as csrc/lrn_wide_range.h
(the formulas are in docs/math.md, "LRN backward at the edges of the range").

In fp64 whatever the storage dtype. A lane's terms are written as sign * 2^L and
summed relative to the largest L so far, so no term overflows before the sum; the
caller walks the mirrored window W'(j) and hands each g_i to ``wide_range_add``:

    a_max, h_j, log_lambda, log_k, ok = wide_range_scale(...)
    state = wide_range_start(h_j)
    for e in tl.static_range(LO + HI + 1):          # i = j + e - HI
        state = wide_range_add(state, ..., e, g_i)
    dx = wide_range_result(state)

and the forward's fallback is ``lrn_output_wide_range``.
"""
import triton
import triton.language as tl


@triton.jit
def _activation(ptrs, mask, APPLY_RELU: tl.constexpr):
    # a = relu(x) (x without the ReLU) as fp64; 0 where masked
    x = tl.load(ptrs, mask=mask, other=0.0).to(tl.float64)
    if APPLY_RELU:
        return tl.where(x <= 0.0, 0.0, x)
    else:
        return x


@triton.jit
def _finite(v):
    # v - v is 0 for finite v, NaN for +-inf and NaN
    return (v - v) == 0.0


@triton.jit
def _log2_abs(v):
    # log2|v|, -inf for v = 0
    return tl.log2(tl.abs(v))


@triton.jit
def _sign(v):
    return tl.where(v > 0.0, 1.0, tl.where(v < 0.0, -1.0, 0.0)).to(tl.float64)


@triton.jit
def _scale_by_exp2(r, e):
    """r * 2^e for |e| up to ~2200 in three exact-range factors (e beyond that gives 0 or inf
    for any r the sums produce)."""
    e = tl.minimum(tl.maximum(e, -2200.0), 2200.0)
    third = e / 3.0
    return r * tl.exp2(third) * tl.exp2(third) * tl.exp2(e - 2.0 * third)


@triton.jit
def wide_range_scale(
    X_ptr, x_c0, c, mask, C, stride_channel, alpha_over_size, k,
    LO: tl.constexpr, HI: tl.constexpr, APPLY_RELU: tl.constexpr,
):
    """Per lane (x_c0: offset of channel 0 of its pixel, c: its channel): the largest |a_m|
    over the neighbourhood [c - HI - LO, c + LO + HI], h_c = a_c / a_max, log2 of
    lambda = alpha/size * a_max^2, log2 k, and whether every a_m there is finite."""
    a_max = tl.zeros(mask.shape, dtype=tl.float64)
    alpha_over_size = a_max + alpha_over_size  # the scalars as lane tensors
    k = a_max + k
    ok = mask
    for d in tl.static_range(2 * (LO + HI) + 1):
        m = c + (d - HI - LO)
        in_range = mask & (m >= 0) & (m < C)
        a = _activation(X_ptr + (x_c0 + m.to(tl.int64) * stride_channel), in_range, APPLY_RELU)
        ok = ok & _finite(a)
        a_max = tl.maximum(a_max, tl.abs(tl.where(in_range, a, 0.0)))
    a_c = _activation(X_ptr + (x_c0 + c.to(tl.int64) * stride_channel), mask, APPLY_RELU)
    safe_max = tl.where(a_max > 0.0, a_max, 1.0)
    h_c = a_c / safe_max
    log_lambda = tl.where(
        (a_max > 0.0) & (alpha_over_size != 0.0), _log2_abs(alpha_over_size) + 2.0 * tl.log2(safe_max), float("-inf")
    )
    log_k = tl.log2(k)  # -inf for k = 0, NaN for k < 0
    ok = ok & (k >= 0.0) & (alpha_over_size >= 0.0)
    return safe_max, h_c, log_lambda, log_k, ok


@triton.jit
def _add_term(total, total_exp, inf_pos, inf_neg, sign, log_mag):
    """total * 2^total_exp += sign * 2^log_mag (no-op for sign 0 or log_mag = -inf)."""
    live = (sign != 0.0) & (log_mag > float("-inf"))
    is_inf = live & (log_mag == float("inf"))
    inf_pos = inf_pos | (is_inf & (sign > 0.0))
    inf_neg = inf_neg | (is_inf & (sign < 0.0))
    live = live & ~is_inf
    grows = live & (log_mag > total_exp)
    rescaled = tl.where(total == 0.0, sign, sign + _scale_by_exp2(total, total_exp - log_mag))
    added = total + _scale_by_exp2(sign, log_mag - total_exp)
    total = tl.where(grows, rescaled, tl.where(live, added, total))
    total_exp = tl.where(grows, log_mag, total_exp)
    return total, total_exp, inf_pos, inf_neg


@triton.jit
def wide_range_add(
    total, total_exp, inf_pos, inf_neg,
    X_ptr, x_c0, c, mask, C, stride_channel, safe_max, h_c, log_lambda, log_k, beta, g_i,
    e: tl.constexpr, LO: tl.constexpr, HI: tl.constexpr, APPLY_RELU: tl.constexpr,
):
    """The terms of channel i = c + e - HI of W'(c): g_c q_c (i == c) and
    -2 beta g_i q_i u_ic, q_i = s_i^-beta, u_ic = (alpha/size) a_i a_c / s_i, with
    s_i = k + lambda sigma_i and sigma_i = sum_{m in W(i)} (a_m / a_max)^2 in [0, size]."""
    i = c + (e - HI)
    valid = mask & (i >= 0) & (i < C)
    sigma = tl.zeros(mask.shape, dtype=tl.float64)
    beta = sigma + beta  # the scalar as a lane tensor
    for w in tl.static_range(LO + HI + 1):
        m = i + (w - LO)
        in_range = valid & (m >= 0) & (m < C)
        a = _activation(X_ptr + (x_c0 + m.to(tl.int64) * stride_channel), in_range, APPLY_RELU)
        h = a / safe_max
        sigma += tl.where(in_range, h * h, 0.0)
    # log2(k + 2^log_lambda sigma), the larger factor taken out: no exp2 overflows
    lam_first = log_lambda >= log_k
    log_s = tl.where(
        lam_first,
        log_lambda + tl.log2(sigma + tl.exp2(log_k - log_lambda)),
        log_k + tl.log2(1.0 + sigma * tl.exp2(log_lambda - log_k)),
    )
    log_s = tl.where((log_lambda == float("-inf")) & (log_k == float("-inf")), float("-inf"), log_s)
    log_q = -beta * log_s
    g_i = g_i.to(tl.float64)
    g_sign = tl.where(valid, _sign(g_i), 0.0)
    log_g = _log2_abs(g_i)
    if e == HI:
        total, total_exp, inf_pos, inf_neg = _add_term(total, total_exp, inf_pos, inf_neg, g_sign, log_g + log_q)
    a_i = _activation(X_ptr + (x_c0 + i.to(tl.int64) * stride_channel), valid, APPLY_RELU)
    hh = (a_i / safe_max) * h_c
    u_live = (hh != 0.0) & (log_lambda > float("-inf"))
    log_u = log_lambda + _log2_abs(hh) - log_s
    sign = tl.where(u_live, -g_sign * _sign(hh) * _sign(beta), 0.0)
    log_mag = log_g + log_q + log_u + tl.log2(2.0 * tl.abs(beta))
    return _add_term(total, total_exp, inf_pos, inf_neg, sign, log_mag)


@triton.jit
def wide_range_start(like):
    zero = tl.zeros(like.shape, dtype=tl.float64)
    no = zero != 0.0
    return zero, zero + float("-inf"), no, no


@triton.jit
def wide_range_result(total, total_exp, inf_pos, inf_neg):
    finite = tl.where(total_exp == float("-inf"), 0.0, _scale_by_exp2(total, total_exp))
    infinite = tl.where(inf_pos & inf_neg, float("nan"), tl.where(inf_pos, float("inf"), float("-inf")))
    return tl.where(inf_pos | inf_neg, infinite, finite)


@triton.jit
def lrn_input_grad_wide_range(
    X_ptr, G_ptr, x_c0, c, mask, C, stride_channel, alpha_over_size, beta, k,
    LO: tl.constexpr, HI: tl.constexpr, APPLY_RELU: tl.constexpr,
):
    """dx_c in wide range for relu_lrn's backward, g read from G_ptr (laid out as X):
    (dx as fp64, ok); ok is false where an input of the neighbourhood is NaN or +-inf,
    or k < 0 or alpha < 0 (the caller keeps its fast value there)."""
    safe_max, h_c, log_lambda, log_k, ok = wide_range_scale(
        X_ptr, x_c0, c, mask, C, stride_channel, alpha_over_size, k, LO, HI, APPLY_RELU
    )
    total, total_exp, inf_pos, inf_neg = wide_range_start(h_c)
    for e in tl.static_range(LO + HI + 1):
        i = c + (e - HI)
        valid = mask & (i >= 0) & (i < C)
        g_i = tl.load(G_ptr + (x_c0 + i.to(tl.int64) * stride_channel), mask=valid, other=0.0).to(tl.float64)
        ok = ok & _finite(g_i)
        total, total_exp, inf_pos, inf_neg = wide_range_add(
            total, total_exp, inf_pos, inf_neg, X_ptr, x_c0, c, mask, C, stride_channel,
            safe_max, h_c, log_lambda, log_k, beta, g_i, e, LO, HI, APPLY_RELU,
        )
    return wide_range_result(total, total_exp, inf_pos, inf_neg), ok


@triton.jit
def lrn_output_wide_range(
    X_ptr, x_c0, c, mask, C, stride_channel, alpha_over_size, beta, k,
    LO: tl.constexpr, HI: tl.constexpr, APPLY_RELU: tl.constexpr,
):
    """b_c = a_c s_c^-beta in wide range, |b_c| = 2^(log2|a_c| - beta log2 s_c): (b as fp64,
    ok), ok false where an input of the window is NaN or +-inf, or k < 0 or alpha < 0."""
    a_max = tl.zeros(mask.shape, dtype=tl.float64)
    alpha_over_size = a_max + alpha_over_size  # the scalars as lane tensors
    k = a_max + k
    beta = a_max + beta
    ok = mask & (k >= 0.0) & (alpha_over_size >= 0.0)
    for d in tl.static_range(LO + HI + 1):
        m = c + (d - LO)
        in_range = mask & (m >= 0) & (m < C)
        a = _activation(X_ptr + (x_c0 + m.to(tl.int64) * stride_channel), in_range, APPLY_RELU)
        ok = ok & _finite(a)
        a_max = tl.maximum(a_max, tl.abs(a))
    safe_max = tl.where(a_max > 0.0, a_max, 1.0)
    sigma = tl.zeros(mask.shape, dtype=tl.float64)
    for d in tl.static_range(LO + HI + 1):
        m = c + (d - LO)
        in_range = mask & (m >= 0) & (m < C)
        h = _activation(X_ptr + (x_c0 + m.to(tl.int64) * stride_channel), in_range, APPLY_RELU) / safe_max
        sigma += h * h
    a_c = _activation(X_ptr + (x_c0 + c.to(tl.int64) * stride_channel), mask, APPLY_RELU)
    log_lambda = tl.where(
        (a_max > 0.0) & (alpha_over_size != 0.0), _log2_abs(alpha_over_size) + 2.0 * tl.log2(safe_max), float("-inf")
    )
    log_k = tl.log2(k)
    log_s = tl.where(
        log_lambda >= log_k,
        log_lambda + tl.log2(sigma + tl.exp2(log_k - log_lambda)),
        log_k + tl.log2(1.0 + sigma * tl.exp2(log_lambda - log_k)),
    )
    log_s = tl.where((log_lambda == float("-inf")) & (log_k == float("-inf")), float("-inf"), log_s)
    b = _sign(a_c) * _scale_by_exp2(tl.zeros(mask.shape, dtype=tl.float64) + 1.0, _log2_abs(a_c) - beta * log_s)
    b = tl.where((a_c == 0.0) | (beta == 0.0), a_c, b)
    return b, ok
