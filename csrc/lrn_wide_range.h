// The LRN input gradient of one element, evaluated so that no intermediate
// overflows or underflows: the fallback of every backward kernel (CPU, CUDA)
// for the rare elements whose fast evaluation came out NaN or +-inf.
//
// Host and device code alike (C10_HOST_DEVICE): no ATen, no allocation.
// The formulas are in docs/math.md ("LRN backward at the edges of the range").
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>
#include <cstdint>

#include "lrn_constants.h"

namespace alexnet_fast {

namespace wide_range_detail {

C10_HOST_DEVICE inline int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }
C10_HOST_DEVICE inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

// v - v is 0 for a finite v and NaN for +-inf and NaN (no math-library
// overloads needed on host or device).
C10_HOST_DEVICE inline bool is_finite(double v) { return v - v == 0.0; }

// 2^e for any double e, without overflowing where the product r * 2^e would
// not: r * 2^frac(e) first, then the integer power, saturated to the range
// where ldexp already gives 0 or inf.
C10_HOST_DEVICE inline double scale_by_exp2(double r, double e) {
  if (r == 0.0) return r;
  if (e > 4096.0) return r * INFINITY;
  if (e < -4096.0) return r * 0.0;
  const double whole = ::floor(e);
  return ::ldexp(r * ::exp2(e - whole), static_cast<int>(whole));
}

}  // namespace wide_range_detail

// b_c = a_c s_c^-beta, with log2 s_c as in the gradient below: the forward's
// fallback where its fast value is NaN or +-inf (s_c = 0 from underflowing
// squares, or inf from overflowing ones) although the inputs are finite.
template <typename AOf>
C10_HOST_DEVICE bool lrn_output_wide_range(int64_t c, const LrnConstants& p, AOf a_of, double& y) {
  using namespace wide_range_detail;
  const int64_t C = p.channels;
  const int64_t w_lo = max_i64(c - p.before, 0), w_hi = min_i64(c + p.after, C - 1);
  if (!(p.k >= 0.0) || !(p.alpha_over_size >= 0.0) || !is_finite(p.alpha_over_size) || !is_finite(p.beta) ||
      !is_finite(p.k))
    return false;
  double a_max = 0.0;
  for (int64_t m = w_lo; m <= w_hi; ++m) {
    const double a = a_of(m);
    if (!is_finite(a)) return false;
    a_max = ::fmax(a_max, ::fabs(a));
  }
  const double a_c = a_of(c);
  if (a_c == 0.0 || p.beta == 0.0) {  // 0 * s^-beta, and s^0 = 1
    y = a_c;
    return true;
  }
  // s = k + 2^log_lambda sigma with sigma = sum (a_m / a_max)^2 in [1, size] (a_c != 0).
  double sigma = 0.0;
  for (int64_t m = w_lo; m <= w_hi; ++m) {
    const double h = a_of(m) / a_max;
    sigma += h * h;
  }
  const double log_lambda =
      p.alpha_over_size == 0.0 ? -INFINITY : ::log2(p.alpha_over_size) + 2.0 * ::log2(a_max);
  const double log_k = ::log2(p.k);
  double log_s = log_lambda >= log_k ? log_lambda + ::log2(sigma + ::exp2(log_k - log_lambda))
                                     : log_k + ::log2(1.0 + sigma * ::exp2(log_lambda - log_k));
  if (log_lambda == -INFINITY && log_k == -INFINITY) log_s = -INFINITY;
  // |b| = 2^(log2|a_c| - beta log2 s)
  y = (a_c > 0.0 ? 1.0 : -1.0) * scale_by_exp2(1.0, ::log2(::fabs(a_c)) - p.beta * log_s);
  return true;
}

// dx_j = relu'(x_j) (g_j q_j - 2 beta sum_{i in W'(j)} g_i q_i u_ij) with
// q_i = s_i^-beta and u_ij = (alpha/size) a_i a_j / s_i, written in logarithms
// of scaled values. a_of(m) returns a_m (the activation, relu applied) and
// g_of(i) returns g_i, both as double, for m, i in [0, C). Returns false, and
// leaves dx untouched, when an input of the neighbourhood is NaN or +-inf (the
// fast path's value is then the one PyTorch gives) or k < 0 (s may be
// negative: no logarithm).
template <typename AOf, typename GOf>
C10_HOST_DEVICE bool lrn_input_grad_wide_range(int64_t j, const LrnConstants& p, bool apply_relu,
                                               AOf a_of, GOf g_of, double& dx) {
  using namespace wide_range_detail;
  const int64_t C = p.channels;
  const int64_t i_lo = max_i64(j - p.after, 0), i_hi = min_i64(j + p.before, C - 1);
  const int64_t m_lo = max_i64(i_lo - p.before, 0), m_hi = min_i64(i_hi + p.after, C - 1);
  if (!(p.k >= 0.0) || !is_finite(p.alpha_over_size) || !is_finite(p.beta) || !is_finite(p.k)) return false;
  double a_max = 0.0;
  for (int64_t m = m_lo; m <= m_hi; ++m) {
    const double a = a_of(m);
    if (!is_finite(a)) return false;
    a_max = ::fmax(a_max, ::fabs(a));
  }
  for (int64_t i = i_lo; i <= i_hi; ++i) {
    if (!is_finite(g_of(i))) return false;
  }
  const double a_j = a_of(j);
  if (apply_relu && a_j == 0.0) {  // relu'(x_j) = 0
    dx = 0.0;
    return true;
  }
  if (p.beta == 0.0) {  // s^0 = 1: the identity's gradient
    dx = g_of(j);
    return true;
  }
  // a_m = a_max * h_m with |h_m| <= 1, and alpha/size * sum a^2 = 2^log_lambda * sum h^2.
  const double log_lambda = (a_max == 0.0 || p.alpha_over_size == 0.0)
                                ? -INFINITY
                                : ::log2(::fabs(p.alpha_over_size)) + 2.0 * ::log2(a_max);
  const double log_k = ::log2(p.k);  // -inf for k = 0
  const double alpha_sign = p.alpha_over_size < 0.0 ? -1.0 : 1.0;
  const double h_j = a_max == 0.0 ? 0.0 : a_j / a_max;

  // The sum of the terms sign * 2^log_magnitude, kept as total * 2^total_exp
  // with total_exp the largest exponent so far (each rescale is exact up to one
  // rounding); terms of infinite magnitude (s_i = 0) are counted apart.
  double total = 0.0, total_exp = -INFINITY;
  bool inf_positive = false, inf_negative = false;
  auto add_term = [&](double sign, double log_magnitude) {
    if (log_magnitude == -INFINITY || sign == 0.0) return;
    if (log_magnitude == INFINITY) {
      (sign > 0.0 ? inf_positive : inf_negative) = true;
      return;
    }
    if (log_magnitude > total_exp) {
      total = total == 0.0 ? sign : sign + scale_by_exp2(total, total_exp - log_magnitude);
      total_exp = log_magnitude;
    } else {
      total += scale_by_exp2(sign, log_magnitude - total_exp);
    }
  };

  for (int64_t i = i_lo; i <= i_hi; ++i) {
    // sigma_i = sum_{m in W(i)} h_m^2 in [0, size]; s_i = k + 2^log_lambda sigma_i.
    const int64_t w_lo = max_i64(i - p.before, 0), w_hi = min_i64(i + p.after, C - 1);
    double sigma = 0.0;
    for (int64_t m = w_lo; m <= w_hi; ++m) {
      const double h = a_max == 0.0 ? 0.0 : a_of(m) / a_max;
      sigma += h * h;
    }
    const double lambda_sigma_sign = alpha_sign;  // alpha < 0 with k >= 0 may make s negative
    double log_s;
    if (alpha_sign > 0.0) {
      // log2(k + 2^L sigma) with the larger of the two factored out: no exp2 overflows.
      log_s = log_lambda >= log_k ? log_lambda + ::log2(sigma + ::exp2(log_k - log_lambda))
                                  : log_k + ::log2(1.0 + sigma * ::exp2(log_lambda - log_k));
      if (log_lambda == -INFINITY && log_k == -INFINITY) log_s = -INFINITY;
    } else {
      const double s = p.k + lambda_sigma_sign * scale_by_exp2(sigma, log_lambda);
      if (!(s >= 0.0)) return false;  // s^-beta of a negative s: NaN, as the fast path
      log_s = ::log2(s);
    }
    const double log_q = -p.beta * log_s;
    const double g_i = g_of(i);
    const double g_sign = g_i > 0.0 ? 1.0 : (g_i < 0.0 ? -1.0 : 0.0);
    const double log_g = ::log2(::fabs(g_i));
    if (i == j) add_term(g_sign, log_g + log_q);
    // u_ij = (alpha/size) a_i a_j / s_i = alpha_sign * 2^log_lambda h_i h_j / s_i.
    const double h_i = a_max == 0.0 ? 0.0 : a_of(i) / a_max;
    const double hh = h_i * h_j;
    if (hh != 0.0 && log_lambda != -INFINITY) {
      const double u_sign = (hh > 0.0 ? 1.0 : -1.0) * alpha_sign;
      const double log_u = log_lambda + ::log2(::fabs(hh)) - log_s;
      const double beta_sign = p.beta > 0.0 ? 1.0 : -1.0;
      add_term(-g_sign * u_sign * beta_sign, log_g + log_q + log_u + ::log2(2.0 * ::fabs(p.beta)));
    }
  }
  if (inf_positive || inf_negative) {
    dx = inf_positive && inf_negative ? NAN : (inf_positive ? INFINITY : -INFINITY);
  } else {
    dx = total_exp == -INFINITY ? 0.0 : scale_by_exp2(total, total_exp);
  }
  return true;
}

}  // namespace alexnet_fast
