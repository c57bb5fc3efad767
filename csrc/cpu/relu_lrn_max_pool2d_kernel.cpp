// Fused ReLU + LRN + max-pool (AlexNet's conv1/conv2 blocks), CPU kernels.
//
//   a_c   = relu(x_c)
//   s_c   = k + alpha/size * sum_{j in W(c)} a_j^2,   W(c) = [c - size/2, c + (size-1)/2] clipped
//   y_c   = a_c * s_c^-beta                            (the LRN output, never written to memory)
//   out   = max_pool2d(y, kernel, stride, padding, ceil_mode), dilation 1
//
// The LRN values come from the row functions of lrn_rows.h, which
// relu_lrn_kernel.cpp uses too, so y agrees bitwise with relu_lrn_forward.
// The max-pool fold compares y rounded to the storage type (a no-op for
// float32/float64), as max_pool2d(relu_lrn(x)) compares the stored values:
// the same maximum and the same argmax in every dtype. Max rule as
// PyTorch / max_pool2d_kernel.cpp: maxval = -inf, maxpos = first in-bounds
// position, rows then columns, update when (val > maxval) || isnan(val);
// argmax = i*kW + j (uint8 when kH*kW <= 256, else int32).
//
// Forward, per work item (n, band of output rows): the ReLU+LRN values of the
// input rows the band's windows need are computed for all channels into a
// thread-local buffer (C x rows x W, in L2), then pooled from it. Only the
// (kH - sH) rows shared with the next band are computed twice. NCHW: the LRN
// runs channel by channel over the band's positions (vectorised along the
// positions, a ring of the last channels' squares as in relu_lrn_kernel.cpp);
// each buffer row stores its columns "phase-major" (all columns w with
// w % sW == 0, then w % sW == 1, ...): column j of the window of output ow is
// then at phase_off[(j - pW) mod sW] + ow + floor((j - pW) / sW), i.e. unit
// stride in ow, so interior windows are pooled with SIMD over ow and no
// shuffles. Windows touching the padding use a scalar fold. NHWC: per pixel
// the channels are contiguous; LRN per pixel over zero-padded channel rows
// (as relu_lrn's channels-last path) and pooling vectorised over channels.
//
// Backward, per work item (n, band of input rows): g_lrn of the band's rows
// for all channels is built by a scatter from the output windows that touch
// the band, visited in increasing (oh, ow) order, into a zeroed fp32 buffer:
// every element receives its terms in increasing (oh, ow) order starting
// from 0, the same sum as the gather of max_pool2d_kernel.cpp (and PyTorch's
// CPU max_pool2d backward). Then the relu_lrn backward along channels with s
// recomputed from x:
//   dx_j = relu'(x_j) (g_j p_j - (2 alpha beta / size) a_j sum_{i in W'(j)} t_i),
//   t_i = g_i a_i s_i^(-beta-1) = (a_i * (g_i p_i)) * (1/s_i)
// with the row functions of lrn_rows.h. g_lrn is rounded to the storage type
// first, as max_pool2d_backward stores it, so dx is bitwise
// relu_lrn_backward(max_pool2d_backward(grad_out, argmax)) in every dtype.
// No atomics, each dx element written once: bitwise repeatable for any number
// of threads.
//
// Arithmetic in float for float/half/bfloat16, double for double.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../pool_geometry.h"
#include "lrn_rows.h"
#include "output_allocator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// The row loops are written with small helpers and lambdas over a vector type;
// they must all be inlined, else every element pays calls.
#define AF_INLINE inline __attribute__((always_inline))
#define AF_LAMBDA __attribute__((always_inline))

namespace alexnet_fast {

namespace {

using lrn::classify_beta;
#if defined(__SSE2__)
using lrn::Floats;
#endif
using lrn::forward_row;
using lrn::gradient_terms_row;
using lrn::PaddedRow;
using lrn::kPrefetchChannels;
using lrn::prefetch_row;
using lrn::Params;
using lrn::Power;
using lrn::Ring;
using lrn::Scalar;

// The LRN rows of this file always apply the ReLU; activation_row works in
// place (a holds the loaded x).
template <typename T>
AF_INLINE void activation_row(T* a, T* sq, int64_t n) {
  lrn::activation_row</*kRelu=*/true>(a, a, sq, n);
}

template <typename T>
AF_INLINE void input_grad_row(const T* const* t_rows, int64_t count, const T* a, const T* gp, T* dx, int64_t n,
                              T coef) {
  lrn::input_grad_row</*kRelu=*/true>(t_rows, count, a, gp, dx, n, coef);
}

// One step of the max fold: take v when v > m or v is NaN (PyTorch's rule).
template <typename T>
AF_INLINE void fold(Scalar<T> v, Scalar<T>& m, Scalar<T>& p, T pos) {
  if ((v.v > m.v) || (v.v != v.v)) {
    m.v = v.v;
    p.v = pos;
  }
}

#if defined(__SSE2__)
template <int K>
AF_INLINE void fold(Floats<K> v, Floats<K>& m, Floats<K>& p, float pos) {
  const __m128 q = _mm_set1_ps(pos);
  for (int i = 0; i < K; ++i) {
    // (v > m) | isnan(v): cmpunord(v, v) is true exactly for NaN lanes.
    const __m128 take = _mm_or_ps(_mm_cmpgt_ps(v.v[i], m.v[i]), _mm_cmpunord_ps(v.v[i], v.v[i]));
    m.v[i] = _mm_or_ps(_mm_and_ps(take, v.v[i]), _mm_andnot_ps(take, m.v[i]));
    p.v[i] = _mm_or_ps(_mm_and_ps(take, q), _mm_andnot_ps(take, p.v[i]));
  }
}
#endif

// ---------------------------------------------------------------------------
// Geometry

int64_t div_floor(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// The batch's sizes (N, C, H, W), its pooled plane (OH, OW) and the pooling
// window (dilation 1).
struct BatchPoolGeometry {
  int64_t N, C, H, W, OH, OW, kH, kW, sH, sW, pH, pW;
  // Output rows [oh0, oh1) need input rows [in_lo, in_hi) (clipped).
  int64_t in_lo(int64_t oh0) const { return std::max<int64_t>(oh0 * sH - pH, 0); }
  int64_t in_hi(int64_t oh1) const { return std::min<int64_t>((oh1 - 1) * sH - pH + kH, H); }
  // Output rows whose windows touch input rows [lo, hi).
  int64_t out_lo(int64_t lo) const { return std::max<int64_t>(div_floor(lo + pH - kH, sH) + 1, 0); }
  int64_t out_hi(int64_t hi) const { return std::min<int64_t>(div_floor(hi - 1 + pH, sH) + 1, OH); }
};

// The in-bounds offsets [lo, hi) of a window starting at `start` over n.
AF_INLINE void window_range(int64_t start, int64_t k, int64_t n, int64_t& lo, int64_t& hi) {
  lo = start < 0 ? -start : 0;
  hi = std::min(k, n - start);
  if (hi < lo) hi = lo;
}

// argmax position p -> (row, column) offsets of the window, by table: a
// division by the runtime kW per output element would dominate the scatter.
// Positions outside the window (a corrupt argmax) map to row -1: skipped.
struct PosTable {
  std::vector<int32_t> di, dj;
  std::vector<int64_t> offset;  // di * W + dj: the position's offset in an NCHW plane
  explicit PosTable(const BatchPoolGeometry& g) {
    const int64_t n = std::max<int64_t>(g.kH * g.kW, 256);
    di.assign(n, -(1 << 30));
    dj.assign(n, 0);
    offset.assign(g.kH * g.kW, 0);
    for (int64_t p = 0; p < g.kH * g.kW; ++p) {
      di[p] = static_cast<int32_t>(p / g.kW), dj[p] = static_cast<int32_t>(p % g.kW);
      offset[p] = di[p] * g.W + dj[p];
    }
  }
  AF_INLINE bool lookup(int64_t p, int64_t& i, int64_t& j) const {
    if (static_cast<uint64_t>(p) >= di.size()) return false;
    i = di[p];
    j = dj[p];
    return true;
  }
};

template <typename scalar_t, typename acc_t>
AF_INLINE scalar_t to_storage(acc_t v) {
  return static_cast<scalar_t>(v);
}

// float16/bfloat16: the LRN values are pooled, and the pooled gradients fed to
// the LRN backward, rounded to the storage type, exactly as the unfused chain
// relu_lrn -> max_pool2d stores and reloads them: the maximum (and so the
// gradient's route) is the one of the rounded values, and ties that the
// rounding makes go to the first element, as in max_pool2d.
template <typename scalar_t, typename acc_t>
AF_INLINE void round_to_storage(acc_t* values, int64_t n) {
  if constexpr (!std::is_same_v<scalar_t, acc_t>) {
    for (int64_t q = 0; q < n; ++q) values[q] = static_cast<acc_t>(static_cast<scalar_t>(values[q]));
  }
}

// Band sizes: the forward buffer holds C x rows x W values; keep it near
// 64K elements (256 KB of floats: L2-resident) and split small batches into
// enough bands for both threads.
int64_t output_rows_per_band(const BatchPoolGeometry& g) {
  const int64_t per_row = std::max<int64_t>(1, g.C * g.W * g.sH);
  int64_t b = std::max<int64_t>(1, 65536 / per_row);
  const int64_t threads = at::get_num_threads();
  while (b > 1 && g.N * ((g.OH + b - 1) / b) < 4 * threads) b = (b + 1) / 2;
  return std::min(b, g.OH);
}

int64_t input_rows_per_band(const BatchPoolGeometry& g) {
  int64_t b = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, g.C * g.W));
  const int64_t threads = at::get_num_threads();
  while (b > 1 && g.N * ((g.H + b - 1) / b) < 4 * threads) b = (b + 1) / 2;
  return std::min(b, g.H);
}


// Stores a block of pooled maxima m and positions p (exact small integers in
// the compute type) as scalar_t / index_t. float + SSE: direct vector stores,
// positions converted and narrowed with packs (uint8) in registers.
template <typename acc_t, typename scalar_t, typename index_t, bool kArg, typename V>
AF_INLINE void store_block(const V& m, const V& p, scalar_t* o, index_t* argmax) {
#if defined(__SSE2__)
  if constexpr (std::is_same_v<scalar_t, float> && V::kWidth == 8) {
    m.store(o);
    if constexpr (kArg) {
      const __m128i i0 = _mm_cvttps_epi32(p.v[0]), i1 = _mm_cvttps_epi32(p.v[1]);
      if constexpr (std::is_same_v<index_t, uint8_t>) {
        const __m128i w = _mm_packs_epi32(i0, i1);  // values < 256: exact
        _mm_storel_epi64(reinterpret_cast<__m128i*>(argmax), _mm_packus_epi16(w, w));
      } else {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(argmax), i0);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(argmax + 4), i1);
      }
    }
    return;
  }
#endif
  alignas(64) acc_t mv[V::kWidth], pv[V::kWidth];
  m.store(mv);
  p.store(pv);
  for (int64_t l = 0; l < V::kWidth; ++l) {
    o[l] = static_cast<scalar_t>(mv[l]);
    if constexpr (kArg) argmax[l] = static_cast<index_t>(static_cast<int64_t>(pv[l]));
  }
}

// ---------------------------------------------------------------------------
// The float32 NCHW interior pooling (relu_lrn_max_pool2d_simd.h), once per
// instruction set.
#if AF_LRN_MULTI_TARGET
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")
namespace avx512 {
#define AF_POOL_LANES 16
#include "relu_lrn_max_pool2d_simd.h"
#undef AF_POOL_LANES
}  // namespace avx512
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#define AF_POOL_LANES 8
#include "relu_lrn_max_pool2d_simd.h"
#undef AF_POOL_LANES
}  // namespace avx2
#pragma GCC pop_options
#endif
namespace base {
#define AF_POOL_LANES 8
#include "relu_lrn_max_pool2d_simd.h"
#undef AF_POOL_LANES
}  // namespace base

// The variant of the forward's pooling: float32 NCHW rows on the interior
// rows of the CPU's instruction set (ALEXNET_FAST_CPU_ISA caps it), other
// dtypes and channels-last pooling on the SSE2 and scalar base code.
// The vector rows hold the window positions i * kW + j in int32 lanes.
constexpr int64_t kMaxVectorPoolPositions = int64_t(1) << 30;

template <typename scalar_t>
CpuIsa pooling_isa(bool channels_last, const BatchPoolGeometry& g) {
  if (std::is_same_v<scalar_t, float> && !channels_last && g.kH * g.kW <= kMaxVectorPoolPositions) return cpu_isa();
  return CpuIsa::kBase;
}

// ---------------------------------------------------------------------------
// Forward, NCHW

// Input rows a band of `band` output rows reads (at most).
int64_t band_input_rows(const BatchPoolGeometry& g, int64_t band) {
  return std::min<int64_t>((band - 1) * g.sH + g.kH, g.H);
}

template <Power kPower, typename scalar_t, typename index_t, bool kArg>
struct ForwardNCHW {
  using acc_t = at::opmath_type<scalar_t>;
  const BatchPoolGeometry& g;
  const Params<acc_t>& prm;
  int64_t max_rows;        // input rows a band reads (at most)
  std::vector<acc_t> buf;  // C x max_rows x W, rows phase-major
  int64_t tile_rows;       // rows per LRN tile (lrn::tile_positions: the ring in L1)
  Ring<acc_t> sq;
  std::vector<const acc_t*> window;
  std::vector<int64_t> colmap;   // column iw -> position in a buffer row
  std::vector<int64_t> column_of_slot;  // its inverse
  std::vector<int64_t> jofs;     // window column j -> offset + ow in a buffer row
  int64_t ow_a, ow_b;  // interior outputs [ow_a, ow_b): all columns in bounds
  CpuIsa pooling;                // the interior rows' variant

  ForwardNCHW(const BatchPoolGeometry& g_, const Params<acc_t>& prm_, int64_t band)
      : g(g_),
        prm(prm_),
        max_rows(band_input_rows(g_, band)),
        buf(g_.C * max_rows * g_.W),
        tile_rows(std::max<int64_t>(
            1, lrn::tile_positions<acc_t>(max_rows * g_.W, /*rings=*/1, prm_.ring_slots(g_.C), /*min_tiles=*/1) /
                   g_.W)),
        sq(prm_.ring_slots(g_.C), tile_rows * g_.W, g_.C),
        window(prm_.window) {
    pooling = pooling_isa<scalar_t>(/*channels_last=*/false, g);
    // Phase ph (the columns w % sW == ph) starts at phase_off[ph]. Phases at or past W
    // hold no column and start at W, so only min(sW, W) + 1 offsets are stored: a
    // stride far beyond the row (2**31 - 1 is valid) costs no memory or time.
    const int64_t phases = std::min(g.sW, g.W);
    std::vector<int64_t> phase_off(phases + 1, 0);
    for (int64_t ph = 0; ph < phases; ++ph)
      phase_off[ph + 1] = phase_off[ph] + (g.W - ph + g.sW - 1) / g.sW;
    const auto phase_start = [&](int64_t ph) { return phase_off[std::min(ph, phases)]; };
    colmap.resize(g.W);
    column_of_slot.resize(g.W);
    for (int64_t iw = 0; iw < g.W; ++iw) {
      colmap[iw] = phase_start(iw % g.sW) + iw / g.sW;
      column_of_slot[colmap[iw]] = iw;
    }
    jofs.resize(g.kW);
    for (int64_t j = 0; j < g.kW; ++j) {
      const int64_t d = j - g.pW;
      const int64_t q = div_floor(d, g.sW);
      jofs[j] = phase_start(d - q * g.sW) + q;
    }
    ow_a = std::min<int64_t>((g.pW + g.sW - 1) / g.sW, g.OW);
    ow_b = g.W - g.kW + g.pW >= 0 ? std::min<int64_t>(div_floor(g.W - g.kW + g.pW, g.sW) + 1, g.OW) : 0;
    if (ow_b < ow_a) ow_b = ow_a;
  }

  // x_n: image n; out_n/argmax_n: image n of the outputs.
  void operator()(const scalar_t* x_n, scalar_t* out_n, index_t* argmax_n, int64_t oh0, int64_t oh1) {
    const int64_t H = g.H, W = g.W, C = g.C;
    const int64_t lo = g.in_lo(oh0), hi = g.in_hi(oh1);
    const int64_t rows = hi - lo, L = rows * W;
    acc_t* b = buf.data();
    // 1. x -> buffer (columns permuted phase-major) and the LRN in place,
    // tile by tile of whole rows, channel by channel. Each tile loads a
    // channel's rows when the window first reaches it, kPrefetchChannels
    // channels after requesting them, as relu_lrn streams its tiles: the
    // loads overlap the arithmetic of the channels before. Loading the whole
    // band first (an earlier version) stalled on memory with nothing to
    // overlap, and made the fused forward slower than relu_lrn and max_pool2d
    // run separately.
    for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
      const int64_t r1 = std::min(r0 + tile_rows, rows);
      const int64_t t0 = r0 * W, n = (r1 - r0) * W;
      const auto load = [&](int64_t c) {
        const scalar_t* xs = x_n + c * H * W + (lo + r0) * W;  // the tile's rows, contiguous
        if (c + kPrefetchChannels < C) prefetch_row(xs + kPrefetchChannels * H * W, n);
        for (int64_t r = r0; r < r1; ++r, xs += W) load_row(xs, b + c * L + r * W);
        activation_row(b + c * L + t0, sq[c], n);
      };
      for (int64_t c = 0; c < std::min(prm.after, C); ++c) load(c);
      for (int64_t c = 0; c < C; ++c) {
        if (c + prm.after < C) load(c + prm.after);
        const int64_t wlo = std::max<int64_t>(c - prm.before, 0);
        const int64_t whi = std::min(c + prm.after, C - 1);
        for (int64_t j = wlo; j <= whi; ++j) window[j - wlo] = sq[j];
        acc_t* a = b + c * L + t0;
        forward_row<kPower>(window.data(), whi - wlo + 1, a, a, n, prm);
        // Buffer position t0 + q is input row lo + (t0 + q) / W at the column
        // whose phase-major slot is (t0 + q) % W.
        lrn::repair_row(a, n, [&](int64_t q, double& value) {
          const int64_t t = t0 + q;
          const scalar_t* px = x_n + (lo + t / W) * W + column_of_slot[t % W];
          return lrn_output_wide_range(
              c, prm.wide, [&](int64_t m) { return lrn::activation_value<true>(px[m * H * W]); }, value);
        });
        round_to_storage<scalar_t>(a, n);
      }
    }
    // 2. Pool.
    for (int64_t c = 0; c < C; ++c) {
      const acc_t* plane = b + c * L;
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        const int64_t ih0 = oh * g.sH - g.pH;
        int64_t i_lo, i_hi;
        window_range(ih0, g.kH, H, i_lo, i_hi);
        scalar_t* o = out_n + (c * g.OH + oh) * g.OW;
        index_t* argmax = kArg ? argmax_n + (c * g.OH + oh) * g.OW : nullptr;
        const acc_t* rowp = plane + (ih0 - lo) * W;  // row i at rowp + i * W
        for (int64_t ow = 0; ow < ow_a; ++ow) scalar_window(rowp, i_lo, i_hi, ow, o, argmax);
        pool_interior(rowp, i_lo, i_hi, o, argmax);
        for (int64_t ow = ow_b; ow < g.OW; ++ow) scalar_window(rowp, i_lo, i_hi, ow, o, argmax);
      }
    }
  }

  // One input row into phase-major order (float, stride 2: deinterleave_row).
  AF_INLINE void load_row(const scalar_t* src, acc_t* dst) {
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (g.sW == 2) {
        switch (pooling) {
#if AF_LRN_MULTI_TARGET
          case CpuIsa::kAvx512:
            return avx512::deinterleave_row(src, dst, g.W);
          case CpuIsa::kAvx2:
            return avx2::deinterleave_row(src, dst, g.W);
#endif
          default:
            return base::deinterleave_row(src, dst, g.W);
        }
      }
    }
    for (int64_t iw = 0; iw < g.W; ++iw) dst[colmap[iw]] = static_cast<acc_t>(src[iw]);
  }

  void scalar_window(const acc_t* rowp, int64_t i_lo, int64_t i_hi, int64_t ow, scalar_t* o, index_t* argmax) {
    const int64_t iw0 = ow * g.sW - g.pW;
    int64_t j_lo, j_hi;
    window_range(iw0, g.kW, g.W, j_lo, j_hi);
    acc_t m = -std::numeric_limits<acc_t>::infinity();
    int64_t p = i_lo * g.kW + j_lo;
    for (int64_t i = i_lo; i < i_hi; ++i)
      for (int64_t j = j_lo; j < j_hi; ++j) {
        const acc_t v = rowp[i * g.W + colmap[iw0 + j]];
        if ((v > m) || std::isnan(v)) {
          m = v;
          p = i * g.kW + j;
        }
      }
    o[ow] = to_storage<scalar_t>(m);
    if (kArg) argmax[ow] = static_cast<index_t>(p);
  }

  template <typename V>
  AF_INLINE void interior_block(const acc_t* rowp, int64_t i_lo, int64_t i_hi, int64_t ow, scalar_t* o, index_t* argmax) {
    V m = V::broadcast(-std::numeric_limits<acc_t>::infinity());
    V p = V::broadcast(static_cast<acc_t>(i_lo * g.kW));
    for (int64_t i = i_lo; i < i_hi; ++i) {
      const acc_t* r = rowp + i * g.W + ow;
      for (int64_t j = 0; j < g.kW; ++j) fold(V::load(r + jofs[j]), m, p, static_cast<acc_t>(i * g.kW + j));
    }
    store_block<acc_t, scalar_t, index_t, kArg>(m, p, o + ow, kArg ? argmax + ow : nullptr);
  }

  void pool_interior(const acc_t* rowp, int64_t i_lo, int64_t i_hi, scalar_t* o, index_t* argmax) {
    int64_t ow = ow_a;
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (g.kH * g.kW <= kMaxVectorPoolPositions && pool_interior_row_for_isa(rowp, i_lo, i_hi, o, argmax)) return;
    }
#if defined(__SSE2__)
    if constexpr (std::is_same_v<acc_t, float> && !std::is_same_v<scalar_t, float>) {
      // Positions are exact in float up to 2^24. The last block may overlap
      // the previous one (recomputing an output gives the same bits).
      if (ow_b - ow_a >= 8 && g.kH * g.kW < (1 << 24)) {
        for (; ow + 8 <= ow_b; ow += 8) interior_block<Floats<2>>(rowp, i_lo, i_hi, ow, o, argmax);
        if (ow < ow_b) interior_block<Floats<2>>(rowp, i_lo, i_hi, ow_b - 8, o, argmax);
        return;
      }
    }
#endif
    for (; ow < ow_b; ++ow) interior_block<Scalar<acc_t>>(rowp, i_lo, i_hi, ow, o, argmax);
  }

  AF_INLINE bool pool_interior_row_for_isa(const float* rowp, int64_t i_lo, int64_t i_hi, float* o, index_t* argmax) {
    switch (pooling) {
#if AF_LRN_MULTI_TARGET
      case CpuIsa::kAvx512:
        return avx512::pool_interior_row<index_t, kArg>(rowp, g.W, i_lo, i_hi, g.kW, jofs.data(), ow_a, ow_b, o, argmax);
      case CpuIsa::kAvx2:
        return avx2::pool_interior_row<index_t, kArg>(rowp, g.W, i_lo, i_hi, g.kW, jofs.data(), ow_a, ow_b, o, argmax);
#endif
      default:
        return base::pool_interior_row<index_t, kArg>(rowp, g.W, i_lo, i_hi, g.kW, jofs.data(), ow_a, ow_b, o, argmax);
    }
  }
};

// ---------------------------------------------------------------------------
// Forward, NHWC: buffer rows x W x C (pixel-major), pooling vectorised over C.

template <typename acc_t, typename scalar_t, typename index_t, bool kArg>
inline void fold_pixels_nhwc(const acc_t* const* px, const int64_t* pos, int64_t count, int64_t first_pos,
                             int64_t C, scalar_t* o, index_t* argmax) {
  // px[q] (q < count, row-major window order) are the in-bounds pixels.
  auto block = [&](auto v, int64_t c) AF_LAMBDA {
    using V = decltype(v);
    V m = V::broadcast(-std::numeric_limits<acc_t>::infinity());
    V p = V::broadcast(static_cast<acc_t>(first_pos));
    for (int64_t q = 0; q < count; ++q) fold(V::load(px[q] + c), m, p, static_cast<acc_t>(pos[q]));
    store_block<acc_t, scalar_t, index_t, kArg>(m, p, o + c, kArg ? argmax + c : nullptr);
  };
  int64_t c = 0;
#if defined(__SSE2__)
  if constexpr (std::is_same_v<acc_t, float>) {
    for (; c + 8 <= C; c += 8) block(Floats<2>{}, c);
    for (; c + 4 <= C; c += 4) block(Floats<1>{}, c);
  }
#endif
  for (; c < C; ++c) block(Scalar<acc_t>{}, c);
}

template <Power kPower, typename scalar_t, typename index_t, bool kArg>
struct ForwardNHWC {
  using acc_t = at::opmath_type<scalar_t>;
  const BatchPoolGeometry& g;
  const Params<acc_t>& prm;
  std::vector<acc_t> buf;
  PaddedRow<acc_t> sq;
  std::vector<const acc_t*> px;
  std::vector<int64_t> pos;

  ForwardNHWC(const BatchPoolGeometry& g_, const Params<acc_t>& prm_, int64_t band)
      : g(g_), prm(prm_), sq(g_.C, prm_.before, prm_.after), px(g_.kH * g_.kW), pos(g_.kH * g_.kW) {
    buf.resize(band_input_rows(g, band) * g.W * g.C);
  }

  void operator()(const scalar_t* x_n, scalar_t* out_n, index_t* argmax_n, int64_t oh0, int64_t oh1) {
    const int64_t W = g.W, C = g.C;
    const int64_t lo = g.in_lo(oh0), hi = g.in_hi(oh1);
    acc_t* b = buf.data();
    const int64_t P = (hi - lo) * W;
    const scalar_t* xs = x_n + lo * W * C;
    for (int64_t q = 0; q < P; ++q) {
      acc_t* a = b + q * C;
      for (int64_t c = 0; c < C; ++c) a[c] = static_cast<acc_t>(xs[q * C + c]);
      activation_row(a, sq.values(), C);
      forward_row<kPower>(sq.rows.data(), prm.window, a, a, C, prm);
      // Element c of this row is channel c of pixel q.
      lrn::repair_row(a, C, [&](int64_t c, double& value) {
        return lrn_output_wide_range(
            c, prm.wide, [&](int64_t m) { return lrn::activation_value<true>(xs[q * C + m]); }, value);
      });
      round_to_storage<scalar_t>(a, C);
    }
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const int64_t ih0 = oh * g.sH - g.pH;
      int64_t i_lo, i_hi;
      window_range(ih0, g.kH, g.H, i_lo, i_hi);
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t iw0 = ow * g.sW - g.pW;
        int64_t j_lo, j_hi;
        window_range(iw0, g.kW, W, j_lo, j_hi);
        int64_t count = 0;
        for (int64_t i = i_lo; i < i_hi; ++i)
          for (int64_t j = j_lo; j < j_hi; ++j) {
            px[count] = b + ((ih0 + i - lo) * W + iw0 + j) * C;
            pos[count++] = i * g.kW + j;
          }
        const int64_t off = ((oh * g.OW) + ow) * C;
        fold_pixels_nhwc<acc_t, scalar_t, index_t, kArg>(px.data(), pos.data(), count, i_lo * g.kW + j_lo, C,
                                                         out_n + off, kArg ? argmax_n + off : nullptr);
      }
    }
  }
};

// ---------------------------------------------------------------------------
// Backward

// Scatter of one output element's gradient into the band's g_lrn buffer.
// gbuf element of input (ih, iw): gbuf[(ih - lo) * W + iw] (times stride).

template <Power kPower, typename scalar_t, typename index_t>
struct BackwardNCHW {
  using acc_t = at::opmath_type<scalar_t>;
  const BatchPoolGeometry& g;
  const Params<acc_t>& prm;
  PosTable pt;
  std::vector<acc_t> gbuf;  // C x rows x W
  int64_t tile;
  Ring<acc_t> a, sq, gp, t;
  std::vector<acc_t> xbuf;
  std::vector<scalar_t> dxs;
  std::vector<const acc_t*> window;

  BackwardNCHW(const BatchPoolGeometry& g_, const Params<acc_t>& prm_, int64_t band)
      : g(g_),
        prm(prm_),
        pt(g_),
        gbuf(g_.C * band * g_.W),
        tile(lrn::tile_positions<acc_t>(band * g_.W, /*rings=*/4, prm_.ring_slots(g_.C), /*min_tiles=*/1)),
        a(prm_.ring_slots(g_.C), tile, g_.C),
        sq(prm_.ring_slots(g_.C), tile, g_.C),
        gp(prm_.ring_slots(g_.C), tile, g_.C),
        t(prm_.ring_slots(g_.C), tile, g_.C),
        xbuf(tile),
        window(prm_.window) {}

  void operator()(const scalar_t* grad_out_n, const index_t* argmax_n, const scalar_t* x_n, scalar_t* dx_n, int64_t lo,
                  int64_t hi) {
    const int64_t H = g.H, W = g.W, C = g.C, OW = g.OW;
    const int64_t L = (hi - lo) * W;
    acc_t* gb = gbuf.data();
    const int64_t oa = g.out_lo(lo), ob = g.out_hi(hi);
    // Windows of output rows that lie wholly in the band and the plane (no
    // padding) need no bounds checks: the common case, by far.
    const bool columns_inside = g.pW == 0 && (OW - 1) * g.sW + g.kW <= W;
    const uint64_t positions = static_cast<uint64_t>(g.kH * g.kW);
    const int64_t* offset = pt.offset.data();
    // g_lrn of channel c over the whole band, into a zeroed buffer row.
    auto scatter = [&](int64_t c) {
      acc_t* gc = gb + c * L;
      std::fill(gc, gc + L, acc_t(0));
      for (int64_t oh = oa; oh < ob; ++oh) {
        const int64_t base = (c * g.OH + oh) * OW;
        const int64_t ihb = oh * g.sH - g.pH - lo;  // band row of window row 0
        if (columns_inside && ihb >= 0 && ihb + g.kH <= hi - lo) {
          acc_t* dst = gc + ihb * W;
          const index_t* argmax = argmax_n + base;
          const scalar_t* grad_out = grad_out_n + base;
          for (int64_t ow = 0; ow < OW; ++ow) {
            const uint64_t p = static_cast<uint64_t>(static_cast<int64_t>(argmax[ow]));  // negative: huge, skipped
            if (p < positions) dst[ow * g.sW + offset[p]] += static_cast<acc_t>(grad_out[ow]);
          }
          continue;
        }
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t di, dj;
          if (!pt.lookup(static_cast<int64_t>(argmax_n[base + ow]), di, dj)) continue;
          const int64_t r = ihb + di;
          const int64_t iw = ow * g.sW - g.pW + dj;
          if (r >= 0 && r < hi - lo && iw >= 0 && iw < W) gc[r * W + iw] += static_cast<acc_t>(grad_out_n[base + ow]);
        }
      }
      round_to_storage<scalar_t>(gc, L);
    };
    // relu_lrn backward over the band's positions (contiguous per channel),
    // in tiles (lrn::tile_positions) whose four rings stay in L1. Whole-band
    // tiles (L2-resident rings) ran 1.2x slower.
    for (int64_t t0 = 0; t0 < L; t0 += tile) {
      const int64_t n = std::min(tile, L - t0);
      const scalar_t* xs = x_n + lo * W + t0;
      scalar_t* dxp = dx_n + lo * W + t0;
      x_tile = xs;
      g_tile = gb + t0;
      band_positions = L;
      for (int64_t c = 0; c < std::min(prm.after, C); ++c) load(xs, c, n);
      for (int64_t i = 0; i < C; ++i) {
        // The channel rows are H*W apart: request them a few channels early.
        const int64_t ahead = i + kPrefetchChannels;
        if (ahead + prm.after < C) prefetch_row(xs + (ahead + prm.after) * H * W, n);
        if (ahead < C) prefetch_row</*kForWrite=*/true>(dxp + std::max<int64_t>(ahead - prm.before, 0) * H * W, n);
        if (i + prm.after < C) load(xs, i + prm.after, n);
        const int64_t wlo = std::max<int64_t>(i - prm.before, 0);
        const int64_t whi = std::min(i + prm.after, C - 1);
        for (int64_t c = wlo; c <= whi; ++c) window[c - wlo] = sq[c];
        // Each channel's g_lrn is scattered when the first tile needs it,
        // between the first tile's loads of x rather than in a pass of its own.
        if (t0 == 0) scatter(i);
        gradient_terms_row<kPower>(window.data(), whi - wlo + 1, a[i], gb + i * L + t0, gp[i], t[i], n, prm);
        if (i >= prm.before) input_grad(i - prm.before, dxp, n, H * W);
      }
      for (int64_t j = std::max<int64_t>(C - prm.before, 0); j < C; ++j) input_grad(j, dxp, n, H * W);
    }
  }

  void load(const scalar_t* xs, int64_t c, int64_t n) {
    const scalar_t* src = xs + c * g.H * g.W;
    acc_t* d = a[c];
    if constexpr (std::is_same_v<scalar_t, acc_t>) {
      lrn::activation_row</*kRelu=*/true>(src, d, sq[c], n);
    } else {
      for (int64_t q = 0; q < n; ++q) d[q] = static_cast<acc_t>(src[q]);
      activation_row(d, sq[c], n);
    }
  }

  void input_grad(int64_t j, scalar_t* dxp, int64_t n, int64_t S) {
    const int64_t wlo = std::max<int64_t>(j - prm.after, 0);
    const int64_t whi = std::min(j + prm.before, g.C - 1);
    for (int64_t i = wlo; i <= whi; ++i) window[i - wlo] = t[i];
    acc_t* out = std::is_same_v<scalar_t, acc_t> ? reinterpret_cast<acc_t*>(dxp + j * S) : xbuf.data();
    input_grad_row(window.data(), whi - wlo + 1, a[j], gp[j], out, n, prm.grad_coef);
    // Element q of this row is channel j at position q of the tile.
    lrn::repair_row(out, n, [&](int64_t q, double& value) {
      return lrn_input_grad_wide_range(
          j, prm.wide, /*apply_relu=*/true, [&](int64_t m) { return lrn::activation_value<true>(x_tile[m * S + q]); },
          [&](int64_t i) { return static_cast<double>(g_tile[i * band_positions + q]); }, value);
    });
    if constexpr (!std::is_same_v<scalar_t, acc_t>) {
      for (int64_t q = 0; q < n; ++q) dxp[j * S + q] = static_cast<scalar_t>(xbuf[q]);
    }
  }

  const scalar_t* x_tile = nullptr;  // the tile's x and g_lrn at channel 0, for the repair
  const acc_t* g_tile = nullptr;
  int64_t band_positions = 0;        // g_lrn's channel stride
};

template <Power kPower, typename scalar_t, typename index_t>
struct BackwardNHWC {
  using acc_t = at::opmath_type<scalar_t>;
  const BatchPoolGeometry& g;
  const Params<acc_t>& prm;
  PosTable pt;
  std::vector<acc_t> gbuf;  // rows x W x C
  PaddedRow<acc_t> sq, t;
  std::vector<acc_t> a, gp, out;

  BackwardNHWC(const BatchPoolGeometry& g_, const Params<acc_t>& prm_, int64_t band)
      : g(g_),
        prm(prm_),
        pt(g_),
        gbuf(band * g_.W * g_.C),
        sq(g_.C, prm_.before, prm_.after),
        t(g_.C, prm_.after, prm_.before),
        a(g_.C),
        gp(g_.C),
        out(g_.C) {}

  void operator()(const scalar_t* grad_out_n, const index_t* argmax_n, const scalar_t* x_n, scalar_t* dx_n, int64_t lo,
                  int64_t hi) {
    const int64_t W = g.W, C = g.C, OW = g.OW;
    const int64_t P = (hi - lo) * W;
    acc_t* gb = gbuf.data();
    std::fill(gb, gb + P * C, acc_t(0));
    const int64_t oa = g.out_lo(lo), ob = g.out_hi(hi);
    for (int64_t oh = oa; oh < ob; ++oh) {
      const int64_t ihb = oh * g.sH - g.pH - lo;
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t base = (oh * OW + ow) * C;
        const int64_t iwb = ow * g.sW - g.pW;
        for (int64_t c = 0; c < C; ++c) {
          int64_t di, dj;
          if (!pt.lookup(static_cast<int64_t>(argmax_n[base + c]), di, dj)) continue;
          const int64_t r = ihb + di;
          const int64_t iw = iwb + dj;
          if (r >= 0 && r < hi - lo && iw >= 0 && iw < W)
            gb[(r * W + iw) * C + c] += static_cast<acc_t>(grad_out_n[base + c]);
        }
      }
    }
    round_to_storage<scalar_t>(gb, P * C);
    const scalar_t* xs = x_n + lo * W * C;
    scalar_t* dxp = dx_n + lo * W * C;
    for (int64_t q = 0; q < P; ++q) {
      for (int64_t c = 0; c < C; ++c) a[c] = static_cast<acc_t>(xs[q * C + c]);
      activation_row(a.data(), sq.values(), C);
      gradient_terms_row<kPower>(sq.rows.data(), prm.window, a.data(), gb + q * C, gp.data(), t.values(), C, prm);
      acc_t* dst = std::is_same_v<scalar_t, acc_t> ? reinterpret_cast<acc_t*>(dxp + q * C) : out.data();
      input_grad_row(t.rows.data(), prm.window, a.data(), gp.data(), dst, C, prm.grad_coef);
      // Element c of this row is channel c of one pixel.
      lrn::repair_row(dst, C, [&](int64_t c, double& value) {
        return lrn_input_grad_wide_range(
            c, prm.wide, /*apply_relu=*/true, [&](int64_t m) { return lrn::activation_value<true>(xs[q * C + m]); },
            [&](int64_t i) { return static_cast<double>(gb[q * C + i]); }, value);
      });
      if constexpr (!std::is_same_v<scalar_t, acc_t>) {
        for (int64_t c = 0; c < C; ++c) dxp[q * C + c] = static_cast<scalar_t>(out[c]);
      }
    }
  }
};

// ---------------------------------------------------------------------------
// Drivers

template <typename F>
void dispatch_power(double beta, const F& f) {
  switch (classify_beta(beta)) {
    case Power::kZero:
      return f(std::integral_constant<Power, Power::kZero>{});
    case Power::kThreeQuarters:
      return f(std::integral_constant<Power, Power::kThreeQuarters>{});
    case Power::kHalf:
      return f(std::integral_constant<Power, Power::kHalf>{});
    case Power::kOne:
      return f(std::integral_constant<Power, Power::kOne>{});
    default:
      return f(std::integral_constant<Power, Power::kGeneral>{});
  }
}

BatchPoolGeometry make_batch_pool_geometry(const at::Tensor& x, const PoolWindow& w, std::pair<int64_t, int64_t> pooled) {
  BatchPoolGeometry g;
  g.N = x.size(0), g.C = x.size(1), g.H = x.size(2), g.W = x.size(3);
  g.kH = w.kH, g.kW = w.kW, g.sH = w.sH, g.sW = w.sW, g.pH = w.pH, g.pW = w.pW;
  g.OH = pooled.first, g.OW = pooled.second;
  return g;
}

// PyTorch's pooling picks the memory format with suggest_memory_format.
at::Tensor dense_4d(const at::Tensor& t, bool& channels_last) {
  const auto fmt = t.suggest_memory_format();
  channels_last = fmt == at::MemoryFormat::ChannelsLast;
  return t.is_contiguous(fmt) ? t : t.contiguous(fmt);
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> relu_lrn_max_pool2d_forward_cpu(const at::Tensor& x_in, int64_t size,
                                                                    double alpha, double beta, double k,
                                                                    at::IntArrayRef kernel_size,
                                                                    at::IntArrayRef stride,
                                                                    at::IntArrayRef padding, bool ceil_mode,
                                                                    bool need_argmax) {
  const char* op = "relu_lrn_max_pool2d_forward";
  TORCH_CHECK(x_in.dim() == 4, op, ": x must be 4-D (N, C, H, W), got x.dim()=", x_in.dim());
  TORCH_CHECK(at::isFloatingType(x_in.scalar_type()), op,
              ": x must be float32, float64, float16 or bfloat16, got x.dtype=", x_in.scalar_type());
  TORCH_CHECK(size >= 1, op, ": size must be >= 1, got size=", size);
  const PoolWindow w = check_pool_window(op, kernel_size, stride, padding);
  const BatchPoolGeometry g = make_batch_pool_geometry(x_in, w, pooled_size(op, x_in.size(2), x_in.size(3), w, ceil_mode));
  const bool wide = w.position_dtype() == at::kInt;
  bool channels_last = false;
  const at::Tensor x = dense_4d(x_in, channels_last);
  const auto fmt = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  at::Tensor out = empty_output({g.N, g.C, g.OH, g.OW}, x.options(), fmt);
  at::Tensor argmax = need_argmax ? empty_output({g.N, g.C, g.OH, g.OW}, x.options().dtype(wide ? at::kInt : at::kByte), fmt)
                              : at::empty({0}, x.options().dtype(at::kByte));
  if (out.numel() == 0) return {out, argmax};

  const int64_t band = output_rows_per_band(g);
  const int64_t bands = (g.OH + band - 1) / band;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "relu_lrn_max_pool2d_forward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    record_cpu_variant(CpuKernel::kReluLrnMaxPool2dForward, lrn::row_isa<acc_t>());
    record_cpu_variant(CpuKernel::kReluLrnMaxPool2dForwardPooling, pooling_isa<scalar_t>(channels_last, g));
    const Params<acc_t> prm(lrn_constants(size, g.C, alpha, beta, k));
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* op_ = out.mutable_data_ptr<scalar_t>();
    const int64_t in_img = g.C * g.H * g.W, out_img = g.C * g.OH * g.OW;
    auto run = [&](auto* argmax_data, auto arg, auto power) {
      using index_t = std::remove_pointer_t<decltype(argmax_data)>;
      constexpr bool kArg = decltype(arg)::value;
      constexpr Power kPower = decltype(power)::value;
      at::parallel_for(0, g.N * bands, 1, [&](int64_t b, int64_t e) {
        auto body = [&](auto& kernel) {
          for (int64_t item = b; item < e; ++item) {
            const int64_t n = item / bands, oh0 = (item % bands) * band, oh1 = std::min(oh0 + band, g.OH);
            kernel(xp + n * in_img, op_ + n * out_img, kArg ? argmax_data + n * out_img : nullptr, oh0, oh1);
          }
        };
        if (channels_last) {
          ForwardNHWC<kPower, scalar_t, index_t, kArg> kernel(g, prm, band);
          body(kernel);
        } else {
          ForwardNCHW<kPower, scalar_t, index_t, kArg> kernel(g, prm, band);
          body(kernel);
        }
      });
    };
    dispatch_power(beta, [&](auto power) {
      if (!need_argmax)
        run(static_cast<uint8_t*>(nullptr), std::false_type{}, power);
      else if (wide)
        run(argmax.mutable_data_ptr<int32_t>(), std::true_type{}, power);
      else
        run(argmax.mutable_data_ptr<uint8_t>(), std::true_type{}, power);
    });
  });
  return {out, argmax};
}

at::Tensor relu_lrn_max_pool2d_backward_cpu(const at::Tensor& grad_out_in, const at::Tensor& x_in,
                                            const at::Tensor& argmax_in, int64_t size, double alpha, double beta,
                                            double k, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                            at::IntArrayRef padding) {
  const char* op = "relu_lrn_max_pool2d_backward";
  TORCH_CHECK(x_in.dim() == 4, op, ": x must be 4-D (N, C, H, W), got x.dim()=", x_in.dim());
  TORCH_CHECK(at::isFloatingType(x_in.scalar_type()), op,
              ": x must be float32, float64, float16 or bfloat16, got x.dtype=", x_in.scalar_type());
  TORCH_CHECK(argmax_in.dim() == 4, op, ": argmax must be 4-D (N, C, OH, OW), got argmax.dim()=", argmax_in.dim());
  TORCH_CHECK(grad_out_in.sizes() == argmax_in.sizes(), op,
              ": grad_out and argmax must have the same shape, got grad_out ", grad_out_in.sizes(),
              " and argmax ", argmax_in.sizes());
  TORCH_CHECK(grad_out_in.scalar_type() == x_in.scalar_type(), op, ": grad_out dtype ",
              grad_out_in.scalar_type(), " must equal x dtype ", x_in.scalar_type());
  TORCH_CHECK(argmax_in.size(0) == x_in.size(0) && argmax_in.size(1) == x_in.size(1), op,
              ": argmax (N, C) must match x, got argmax ", argmax_in.sizes(), " and x ", x_in.sizes());
  TORCH_CHECK(size >= 1, op, ": size must be >= 1, got size=", size);
  const PoolWindow w = check_pool_window(op, kernel_size, stride, padding);
  check_pooled_size(op, x_in.size(2), x_in.size(3), argmax_in.size(2), argmax_in.size(3), w);
  const BatchPoolGeometry g = make_batch_pool_geometry(x_in, w, {argmax_in.size(2), argmax_in.size(3)});
  const bool wide = w.position_dtype() == at::kInt;
  TORCH_CHECK(argmax_in.scalar_type() == w.position_dtype(), op, ": argmax must be ", w.position_dtype(),
              " for kernel_size=", kernel_size, ", got argmax.dtype=", argmax_in.scalar_type());
  // dx in x's memory format; argmax and grad_out matched to it.
  bool channels_last = false;
  const at::Tensor x = dense_4d(x_in, channels_last);
  const auto fmt = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const at::Tensor argmax = argmax_in.is_contiguous(fmt) ? argmax_in : argmax_in.contiguous(fmt);
  const at::Tensor grad_out = grad_out_in.is_contiguous(fmt) ? grad_out_in : grad_out_in.contiguous(fmt);
  at::Tensor dx = empty_output({g.N, g.C, g.H, g.W}, x.options(), fmt);
  if (dx.numel() == 0) return dx;

  const int64_t band = input_rows_per_band(g);
  const int64_t bands = (g.H + band - 1) / band;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "relu_lrn_max_pool2d_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    record_cpu_variant(CpuKernel::kReluLrnMaxPool2dBackward, lrn::row_isa<acc_t>());
    const Params<acc_t> prm(lrn_constants(size, g.C, alpha, beta, k));
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* grad_out_data = grad_out.const_data_ptr<scalar_t>();
    scalar_t* dxp = dx.mutable_data_ptr<scalar_t>();
    const int64_t in_img = g.C * g.H * g.W, out_img = g.C * g.OH * g.OW;
    auto run = [&](const auto* argmax_data, auto power) {
      using index_t = std::remove_const_t<std::remove_pointer_t<decltype(argmax_data)>>;
      constexpr Power kPower = decltype(power)::value;
      at::parallel_for(0, g.N * bands, 1, [&](int64_t b, int64_t e) {
        auto body = [&](auto& kernel) {
          for (int64_t item = b; item < e; ++item) {
            const int64_t n = item / bands, lo = (item % bands) * band, hi = std::min(lo + band, g.H);
            kernel(grad_out_data + n * out_img, argmax_data + n * out_img, xp + n * in_img, dxp + n * in_img, lo, hi);
          }
        };
        if (channels_last) {
          BackwardNHWC<kPower, scalar_t, index_t> kernel(g, prm, band);
          body(kernel);
        } else {
          BackwardNCHW<kPower, scalar_t, index_t> kernel(g, prm, band);
          body(kernel);
        }
      });
    };
    dispatch_power(beta, [&](auto power) {
      if (wide)
        run(argmax.const_data_ptr<int32_t>(), power);
      else
        run(argmax.const_data_ptr<uint8_t>(), power);
    });
  });
  return dx;
}

TORCH_LIBRARY_IMPL(alexnet_fast, CPU, m) {
  m.impl("relu_lrn_max_pool2d_forward", TORCH_FN(relu_lrn_max_pool2d_forward_cpu));
  m.impl("relu_lrn_max_pool2d_backward", TORCH_FN(relu_lrn_max_pool2d_backward_cpu));
}

}  // namespace alexnet_fast
