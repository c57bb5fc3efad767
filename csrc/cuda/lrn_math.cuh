// The LRN arithmetic of the CUDA kernels of relu_lrn (relu_lrn_kernels.cuh)
// and of the fused relu_lrn_max_pool2d (relu_lrn_max_pool2d_kernels.cuh): the
// kernel parameters, the explicitly rounded arithmetic, s^beta, the window
// sums, the backward terms and the wide-range fallback. The formulas are in
// docs/math.md.
//
// Both ops evaluate the same expression trees with these helpers, so the
// fused op's LRN value is bitwise the one relu_lrn_forward computes (before
// its storage rounding). Device code and plain host code only: it compiles
// for the GPU and, through host/cuda_shim.h, for the CPU.
#pragma once

#include <c10/macros/Macros.h>

#include <cstdint>

#include "../lrn_constants.h"
#include "../lrn_wide_range.h"

namespace alexnet_fast {

// s^-beta has exact forms for beta = 0 (1) and 0.75 (square roots).
enum class LrnPower : int { kZero, kThreeQuarters, kGeneral };

template <typename acc_t>
struct LrnParams {
  acc_t k;
  acc_t alpha_over_size;       // alpha / size
  acc_t beta;
  acc_t neg_two_ab_over_size;  // -2 alpha beta / size
  int channels;                // C
  int lo;                      // min(size / 2, C): window reaches lo below c
  int hi;                      // min((size - 1) / 2, C): and hi above c
  LrnPower power;
  bool apply_relu;
  LrnConstants wide;  // the same in double, for the wide-range fallback
};

// The kernel parameters from the host set-up (lrn_constants.h). Channel
// indices (and c + window reach, <= 3C) are int in the kernels: the glue
// checks C <= INT_MAX / 4.
template <typename acc_t>
LrnParams<acc_t> make_lrn_params(const LrnConstants& c, bool apply_relu) {
  LrnParams<acc_t> p;
  p.k = static_cast<acc_t>(c.k);
  p.alpha_over_size = static_cast<acc_t>(c.alpha_over_size);
  p.beta = static_cast<acc_t>(c.beta);
  p.neg_two_ab_over_size = static_cast<acc_t>(-c.grad_coef);
  p.channels = static_cast<int>(c.channels);
  p.lo = static_cast<int>(c.before);
  p.hi = static_cast<int>(c.after);
  p.power = c.beta == 0.0 ? LrnPower::kZero : (c.beta == 0.75 ? LrnPower::kThreeQuarters : LrnPower::kGeneral);
  p.apply_relu = apply_relu;
  p.wide = c;
  return p;
}

// ---- explicitly rounded arithmetic (no contraction, fast-math proof) ----
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float fma_rn(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ __forceinline__ double fma_rn(double a, double b, double c) { return __fma_rn(a, b, c); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }
__device__ __forceinline__ float pow_any(float a, float b) { return powf(a, b); }
__device__ __forceinline__ double pow_any(double a, double b) { return pow(a, b); }

// s^beta. beta = 0: 1 for every s (0, inf and NaN included, as pow). beta =
// 0.75: sqrt(s) * sqrt(sqrt(s)), two correctly rounded square roots and a
// product (<= ~1.5 ulp); special values agree with pow: s = +inf -> inf,
// s = +-0 -> +0, s < 0 or NaN -> NaN.
template <typename acc_t>
__device__ __forceinline__ acc_t pow_beta(acc_t s, const LrnParams<acc_t>& p) {
  if (p.power == LrnPower::kZero) return acc_t(1);
  if (p.power == LrnPower::kThreeQuarters) {
    const acc_t r = sqrt_rn(s);
    return mul_rn(r, sqrt_rn(r));
  }
  return pow_any(s, p.beta);
}

// relu when apply_relu, else the identity (NaN kept either way; fmax(NaN, 0)
// would return 0).
template <typename acc_t>
__device__ __forceinline__ acc_t act(acc_t v, bool apply_relu) {
  return (apply_relu && v <= acc_t(0)) ? acc_t(0) : v;
}

// v - v is 0 for a finite v, NaN for +-inf and NaN.
template <typename acc_t>
__device__ __forceinline__ bool finite(acc_t v) {
  return v - v == acc_t(0);
}

// s = k + alpha/size * sq, from the window's sum of squares sq.
template <typename acc_t>
__device__ __forceinline__ acc_t lrn_s(acc_t sq, const LrnParams<acc_t>& p) {
  return fma_rn(p.alpha_over_size, sq, p.k);
}

// s over a compile-time window A[0 .. SIZE-1] (clipped terms stored as exact
// zeros), terms summed in channel order.
template <int SIZE, typename acc_t>
__device__ __forceinline__ acc_t window_s(const acc_t* A, const LrnParams<acc_t>& p) {
  acc_t sq = acc_t(0);
#pragma unroll
  for (int w = 0; w < SIZE; ++w) sq = fma_rn(A[w], A[w], sq);
  return lrn_s(sq, p);
}

// s_c over the runtime window W(c) = [c - lo, c + hi] clipped to [0, C),
// terms summed in channel order; a_of(j) gives a_j. The same bits as
// window_s (a clipped term there adds an exact +0).
template <typename acc_t, typename AOf>
__device__ __forceinline__ acc_t clipped_window_s(int c, const LrnParams<acc_t>& p, AOf a_of) {
  const int j0 = max(c - p.lo, 0);
  const int j1 = min(c + p.hi, p.channels - 1);
  acc_t sq = acc_t(0);
  for (int j = j0; j <= j1; ++j) {
    const acc_t a = a_of(j);
    sq = fma_rn(a, a, sq);
  }
  return lrn_s(sq, p);
}

// Backward term of channel i (i in W'(j)) from s_i, a_i and g_i:
// inv_p = s_i^-beta and t_i = g_i * (b_i / s_i) with b_i = a_i * inv_p.
// Returns t_i and sets inv_p (the caller forms d_i = g_i * inv_p).
template <typename acc_t>
__device__ __forceinline__ acc_t grad_term(acc_t sv, acc_t a_i, acc_t g_i, const LrnParams<acc_t>& p,
                                           acc_t& inv_p) {
  inv_p = div_rn(acc_t(1), pow_beta(sv, p));
  const acc_t b = mul_rn(a_i, inv_p);
  return mul_rn(g_i, div_rn(b, sv));
}

// dx_j from a_j, d_j = g_j s_j^-beta and sum_t = sum_{i in W'(j)} t_i. The
// relu mask is a select, not a product: PyTorch's threshold_backward gives 0
// there even when the rest is inf/NaN. A zero coefficient (beta = 0 or
// alpha = 0) drops the window term exactly: its t_i may be 0 * inf there.
template <typename acc_t>
__device__ __forceinline__ acc_t grad_x(acc_t a_j, acc_t d_j, acc_t sum_t, const LrnParams<acc_t>& p) {
  if (p.apply_relu && a_j == acc_t(0)) return acc_t(0);
  if (p.neg_two_ab_over_size == acc_t(0)) return d_j;
  return fma_rn(mul_rn(p.neg_two_ab_over_size, a_j), sum_t, d_j);
}

// The sums of the backward of channel j at one pixel: sum_t = sum_{i in
// W'(j)} t_i (channel order, from +0), d_j = g_j s_j^-beta, and a_j. a_of(m)
// gives a_m and g_of(i) gives g_i, for m, i in [0, C).
//   SIZE > 0: compile-time window, unrolled, the 2*SIZE-1 a's in registers
//   (out-of-range terms are exact zeros); SIZE == 0: runtime size, windows
//   clipped to [0, C). Both give the same bits.
//   kPreloadG: load every g_i of W'(j) first (more loads in flight), else form
//   each g_i where it is used (fewer live registers; for a costly g_of).
template <typename acc_t>
struct LrnGradSums {
  acc_t sum_t;
  acc_t d_j;
  acc_t a_j;
};

template <int SIZE, bool kPreloadG, typename acc_t, typename AOf, typename GOf>
__device__ __forceinline__ LrnGradSums<acc_t> lrn_grad_sums(int j, const LrnParams<acc_t>& p, AOf a_of,
                                                            GOf g_of) {
  const int C = p.channels;
  LrnGradSums<acc_t> r;
  r.sum_t = acc_t(0);
  r.d_j = acc_t(0);
  if constexpr (SIZE > 0) {
    constexpr int LO = SIZE / 2;
    constexpr int HI = (SIZE - 1) / 2;
    constexpr int NA = 2 * SIZE - 1;
    // A[u] = a_{j - (SIZE-1) + u}: every a that some s_i, i in W'(j), needs.
    // For i = j - HI + v (v in [0, SIZE)), W(i) = [i - LO, i + HI] maps to
    // A[v .. v + SIZE - 1] and a_i to A[v + LO] (LO + HI == SIZE - 1).
    acc_t A[NA];
#pragma unroll
    for (int u = 0; u < NA; ++u) {
      const int m = j - (SIZE - 1) + u;
      A[u] = (m < 0 || m >= C) ? acc_t(0) : a_of(m);
    }
    [[maybe_unused]] acc_t G[kPreloadG ? SIZE : 1];  // G[v] = g_{j - HI + v}, 0 outside [0, C)
    if constexpr (kPreloadG) {
#pragma unroll
      for (int v = 0; v < SIZE; ++v) {
        const int i = j - HI + v;
        G[v] = (i >= 0 && i < C) ? g_of(i) : acc_t(0);
      }
    }
#pragma unroll
    for (int v = 0; v < SIZE; ++v) {
      const int i = j - HI + v;
      const bool valid = i >= 0 && i < C;
      acc_t g_i;
      if constexpr (kPreloadG) {
        g_i = G[v];
      } else {
        g_i = valid ? g_of(i) : acc_t(0);
      }
      acc_t inv_p;
      const acc_t t = grad_term(window_s<SIZE>(A + v, p), A[v + LO], g_i, p, inv_p);
      r.sum_t = add_rn(r.sum_t, valid ? t : acc_t(0));
      if (v == HI) r.d_j = mul_rn(g_i, inv_p);
    }
    r.a_j = A[SIZE - 1];
  } else {
    const int i0 = max(j - p.hi, 0);
    const int i1 = min(j + p.lo, C - 1);
    for (int i = i0; i <= i1; ++i) {
      const acc_t g_i = g_of(i);
      acc_t inv_p;
      r.sum_t = add_rn(r.sum_t, grad_term(clipped_window_s(i, p, a_of), a_of(i), g_i, p, inv_p));
      if (i == j) r.d_j = mul_rn(g_i, inv_p);
    }
    r.a_j = a_of(j);
  }
  return r;
}

// ---- the edges of the range ----
// A fast value that is NaN or +-inf although its inputs are finite comes from
// an intermediate that over- or underflowed (alpha * sum a^2 beyond the
// type's range, k = 0 with tiny activations). The kernels then recompute the
// element in wide range (lrn_wide_range.h); these wrappers stay out of line,
// so the fast path keeps its registers. a_of / g_of return doubles here.
template <typename acc_t, typename AOf>
__device__ __noinline__ acc_t lrn_output_repaired(acc_t fast, int c, const LrnParams<acc_t>& p, AOf a_of) {
  double value;
  return lrn_output_wide_range(c, p.wide, a_of, value) ? static_cast<acc_t>(value) : fast;
}

template <typename acc_t, typename AOf, typename GOf>
__device__ __noinline__ acc_t lrn_input_grad_repaired(acc_t fast, int j, const LrnParams<acc_t>& p, AOf a_of,
                                                      GOf g_of) {
  double value;
  return lrn_input_grad_wide_range(j, p.wide, p.apply_relu, a_of, g_of, value) ? static_cast<acc_t>(value) : fast;
}

}  // namespace alexnet_fast
