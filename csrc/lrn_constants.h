// The constants of an LRN evaluation, as every C++ backend sets them up from
// the op's arguments (CPU rows, CUDA kernels, their wide-range fallback).
// Plain data: host and device code alike. The formulas are in docs/math.md.
#pragma once

#include <cstdint>

namespace alexnet_fast {

// W(c) = [c - before, c + after] clipped to [0, C). The window reaches at most
// C channels to either side before the clipping removes every further term,
// so before and after stop at C: nothing grows with a size beyond C, while
// alpha / size keeps the true size.
struct LrnConstants {
  int64_t channels;
  int64_t before;          // min(size / 2, C)
  int64_t after;           // min((size - 1) / 2, C)
  double alpha_over_size;  // alpha / size
  double beta;
  double k;
  double grad_coef;  // 2 alpha beta / size

  int64_t window() const { return before + after + 1; }
};

inline LrnConstants lrn_constants(int64_t size, int64_t C, double alpha, double beta, double k) {
  const double n = static_cast<double>(size);
  LrnConstants c;
  c.channels = C;
  c.before = size / 2 < C ? size / 2 : C;
  c.after = (size - 1) / 2 < C ? (size - 1) / 2 : C;
  c.alpha_over_size = alpha / n;
  c.beta = beta;
  c.k = k;
  c.grad_coef = 2.0 * alpha * beta / n;
  return c;
}

}  // namespace alexnet_fast
