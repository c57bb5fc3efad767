// The arithmetic of the CPU LRN kernels, shared by relu_lrn_kernel.cpp and
// relu_lrn_max_pool2d_kernel.cpp so that the fused op's LRN values are
// bitwise those of relu_lrn_forward/backward:
//
//   a_c = relu(x_c)  (x_c without the ReLU)
//   s_c = k + alpha/size * sum_{j in W(c)} a_j^2,   W(c) = [c - size/2, c + (size-1)/2]
//   y_c = a_c * p_c,                                 p_c = s_c^-beta
//   dx_j = relu'(x_j) * (g_j p_j - (2 alpha beta / size) a_j sum_{i in W'(j)} t_i),
//   t_i = g_i a_i s_i^(-beta-1) = (a_i * (g_i p_i)) * (1/s_i),   W'(j) = [j - (size-1)/2, j + size/2]
//
// The kernels work on "rows": n values of one channel at consecutive
// positions, or the C channels of one pixel; a window sum adds whole rows
// term by term in increasing channel order (never a running sum, which would
// carry a NaN or inf into every later channel). Every function below
// processes one row; the callers own the layouts and the buffers.
//
// Instruction sets (cpu_isa.h). The row functions are compiled three times,
// from lrn_rows_simd.h (error bounds and their derivation: docs/math.md, "CPU
// instruction sets"; u = 2^-24):
//   base    SSE2 (every x86-64 CPU) and scalar code; IEEE division and square
//           roots, correctly rounded: s^-0.75 = sqrt(1/s) * sqrt(sqrt(1/s)),
//           within 4.25u of the exact power. Three divider operations per
//           element, whose throughput per element does not grow with the
//           vector width: they bound the kernel.
//   avx2    AVX2 and FMA: 8 float lanes, masked row tails, and s^-1/2 from
//           the 12-bit reciprocal square root estimate plus one Newton step
//           (within 4.9u) instead of the divider: s^-0.75 = q * (q * q^-1/2)
//           with q = s^-1/2, within 14.5u; 1/s = q * q for the backward pass.
//   avx512  16 float lanes and the 14-bit estimate: s^-1/2 within 1.6u
//           (subnormal s too); s^-0.75 from two estimates and one Newton
//           step on the power itself, within 3.3u.
// Float rows (float, half and bfloat16 tensors) take the widest variant the
// CPU has (and ALEXNET_FAST_CPU_ISA allows), double rows always the base ones.
// Within a process every element of every row goes through the same
// function, so the values do not depend on the layout, the tile or the lane;
// across CPUs float results may differ in the last bits.
#pragma once

#include <c10/macros/Macros.h>

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

#include "../lrn_wide_range.h"
#include "cpu_isa.h"

#if AF_MULTI_TARGET
#include <immintrin.h>
#define AF_LRN_MULTI_TARGET 1
#else
#define AF_LRN_MULTI_TARGET 0
#endif

namespace alexnet_fast::lrn {

// s^-beta has exact or fast forms for the common betas; std::pow is neither
// vectorised nor fast.
// beta = 0 makes LRN the identity (s^0 = 1 even for s = 0 or inf): its own
// case, so that neither pass forms s^-beta or 1/s at all.
enum class Power { kZero, kThreeQuarters, kHalf, kOne, kGeneral };

inline Power classify_beta(double beta) {
  if (beta == 0.0) return Power::kZero;
  if (beta == 0.75) return Power::kThreeQuarters;
  if (beta == 0.5) return Power::kHalf;
  if (beta == 1.0) return Power::kOne;
  return Power::kGeneral;
}

// The row functions' constants in the compute type; `wide` keeps the double
// ones for the wide-range repair (lrn_wide_range.h).
template <typename acc_t>
struct Params {
  int64_t before;  // W(c) = [c - before, c + after], both at most C (lrn_constants.h)
  int64_t after;
  int64_t window;  // before + after + 1: the rows of a zero-padded window
  acc_t alpha_n;   // alpha / size
  acc_t k;
  acc_t beta;
  acc_t grad_coef;  // 2 * alpha * beta / size
  LrnConstants wide;

  explicit Params(const LrnConstants& c)
      : before(c.before),
        after(c.after),
        window(c.window()),
        alpha_n(static_cast<acc_t>(c.alpha_over_size)),
        k(static_cast<acc_t>(c.k)),
        beta(static_cast<acc_t>(c.beta)),
        grad_coef(static_cast<acc_t>(c.grad_coef)),
        wide(c) {}

  // Rows held at once by a ring of the last channels: a window's worth, and
  // never more than the C channels there are.
  int64_t ring_slots(int64_t C) const { return std::min(window, std::max<int64_t>(C, 1)); }
};

// A row of C values between `front` and `back` zeros, and the pointers
// rows[d] = padded + d: the window sum over rows[0..size) at channel c adds
// padded[c .. c + size), the row's values at channels [c - front, c + back]
// (channels-last windows; adding the padding zeros is exact).
template <typename T>
struct PaddedRow {
  std::vector<T> padded;
  std::vector<const T*> rows;
  int64_t front;
  PaddedRow(int64_t C, int64_t front_, int64_t back) : padded(front_ + C + back, T(0)), front(front_) {
    for (int64_t d = 0; d <= front_ + back; ++d) rows.push_back(padded.data() + d);
  }
  PaddedRow(const PaddedRow&) = delete;  // rows point into padded
  PaddedRow& operator=(const PaddedRow&) = delete;
  T* values() { return padded.data() + front; }
};

// Requests the n values of a row into the cache (for writing: kForWrite),
// one prefetch per 64-byte line. The channel rows of NCHW tensors are H*W
// apart, too far for the hardware prefetcher to follow, so both LRN kernels
// ask for the rows of a channel a few channels before they use it.
template <bool kForWrite = false, typename T>
inline void prefetch_row(const T* row, int64_t n) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t byte = 0; byte < n * static_cast<int64_t>(sizeof(T)); byte += 64) {
    __builtin_prefetch(p + byte, kForWrite ? 1 : 0);
  }
}

// The rows of a tile are short strided pieces that the hardware prefetcher
// does not follow, and the arithmetic between two loads is long: without
// software prefetches every row would wait for memory with the arithmetic
// idle. Rows are requested this many channels before they are used; output
// rows too (for writing), else their stores stall on the read-for-ownership.
// Measured on (32, 96, 55, 55) float32, one core: relu_lrn forward 1.3x,
// backward 1.6x.
constexpr int64_t kPrefetchChannels = 2;

// Positions per tile of the channels-first passes (relu_lrn's tiles of a
// plane, the fused op's tiles of whole rows). Each row function call costs a
// fixed few tens of cycles (the call, the variant's dispatch, the loop's
// set-up, the masked tail) besides its arithmetic, so short rows lose; rows
// so long that the rings of the window's channels leave L1 lose too.
// relu_lrn forward, (32, 96, 55, 55) float32, 2 threads, avx512 (AMD family
// 26, docs/performance.md, round 5): 2.2x a copy's time with 256-position
// tiles, 1.4x with 512, 1.7x with 1024.
constexpr int64_t kRingBytes = int64_t(24) << 10;

// The longest tile whose `rings` rings of `slots` rows of T fit kRingBytes,
// shortened so that the S positions split into tiles of equal length, and
// into at least `min_tiles` tiles while those keep 128 positions or more
// (work for every thread on a small batch).
template <typename T>
inline int64_t tile_positions(int64_t S, int64_t rings, int64_t slots, int64_t min_tiles) {
  const int64_t longest = std::max<int64_t>(16, kRingBytes / (std::max<int64_t>(1, rings * slots) * int64_t(sizeof(T))));
  int64_t tiles = (S + longest - 1) / longest;
  tiles = std::max(tiles, std::min(min_tiles, S / 128));
  tiles = std::max<int64_t>(tiles, 1);
  return (S + tiles - 1) / tiles;
}

// Rows of the last `slots` channels of a tile (Params::ring_slots): channel c
// lives in slot c % slots until channel c + slots replaces it. The slots of all C channels
// are looked up, not computed: a division per access would cost more than the
// arithmetic of a short row, and rounding the slot count up to a power of two
// (a mask) makes the backward pass's four rings spill out of L1.
template <typename T>
struct Ring {
  std::vector<T> data;
  std::vector<T*> row_of_channel;
  Ring(int64_t slots, int64_t tile, int64_t C) : data(slots * tile), row_of_channel(C) {
    for (int64_t c = 0; c < C; ++c) row_of_channel[c] = data.data() + (c % slots) * tile;
  }
  Ring(const Ring&) = delete;  // row_of_channel points into data
  Ring& operator=(const Ring&) = delete;
  T* operator[](int64_t c) const { return row_of_channel[c]; }
};

// ---------------------------------------------------------------------------
// Base vector types: Scalar<T> (one lane; double, and the last positions of a
// row) and Floats<K> (K SSE2 registers). GCC does not vectorise the row loops
// by itself (std::sqrt may set errno; `x <= 0 ? 0 : y` becomes a branch under
// -ftrapping-math). Both types do the same correctly rounded operations, so a
// value does not depend on the lane that computed it. `load` and `broadcast`
// are called through a value (v.load(p)): the avx2 and avx512 types carry
// their tail mask there.

template <typename T>
struct Scalar {
  static constexpr int64_t kWidth = 1;
  T v;

  C10_ALWAYS_INLINE static Scalar load(const T* p) { return {*p}; }
  C10_ALWAYS_INLINE static Scalar broadcast(T x) { return {x}; }
  C10_ALWAYS_INLINE void store(T* p) const { *p = v; }

  friend C10_ALWAYS_INLINE Scalar operator+(Scalar a, Scalar b) { return {a.v + b.v}; }
  friend C10_ALWAYS_INLINE Scalar operator-(Scalar a, Scalar b) { return {a.v - b.v}; }
  friend C10_ALWAYS_INLINE Scalar operator*(Scalar a, Scalar b) { return {a.v * b.v}; }
  friend C10_ALWAYS_INLINE Scalar operator/(Scalar a, Scalar b) { return {a.v / b.v}; }
  friend C10_ALWAYS_INLINE Scalar sqrt(Scalar a) { return {std::sqrt(a.v)}; }
  friend C10_ALWAYS_INLINE Scalar pow(Scalar a, T e) { return {std::pow(a.v, e)}; }
  // `value` where m > 0 or m is NaN, else 0: relu(x) = zero_unless_positive(x, x)
  // keeps NaN, and relu'(x) = 0 exactly where x <= 0 (threshold_backward's rule).
  friend C10_ALWAYS_INLINE Scalar zero_unless_positive(Scalar m, Scalar value) {
    return {m.v <= T(0) ? T(0) : value.v};
  }
};

#if defined(__SSE2__)
// K registers per operation: independent vectors in flight hide the latency
// of the divider and amortise the loop and window-pointer overhead.
template <int K>
struct Floats {
  static constexpr int64_t kWidth = 4 * K;
  __m128 v[K];

  template <typename Op>
  C10_ALWAYS_INLINE static Floats map(Op op) {
    Floats r;
    for (int i = 0; i < K; ++i) r.v[i] = op(i);
    return r;
  }
  C10_ALWAYS_INLINE static Floats load(const float* p) {
    return map([&](int i) C10_ALWAYS_INLINE_ATTRIBUTE { return _mm_loadu_ps(p + 4 * i); });
  }
  C10_ALWAYS_INLINE static Floats broadcast(float x) {
    return map([&](int) C10_ALWAYS_INLINE_ATTRIBUTE { return _mm_set1_ps(x); });
  }
  C10_ALWAYS_INLINE void store(float* p) const {
    for (int i = 0; i < K; ++i) _mm_storeu_ps(p + 4 * i, v[i]);
  }

  friend C10_ALWAYS_INLINE Floats operator+(Floats a, Floats b) {
    return map([&](int i) C10_ALWAYS_INLINE_ATTRIBUTE { return _mm_add_ps(a.v[i], b.v[i]); });
  }
  friend C10_ALWAYS_INLINE Floats operator-(Floats a, Floats b) {
    return map([&](int i) C10_ALWAYS_INLINE_ATTRIBUTE { return _mm_sub_ps(a.v[i], b.v[i]); });
  }
  friend C10_ALWAYS_INLINE Floats operator*(Floats a, Floats b) {
    return map([&](int i) C10_ALWAYS_INLINE_ATTRIBUTE { return _mm_mul_ps(a.v[i], b.v[i]); });
  }
  friend C10_ALWAYS_INLINE Floats operator/(Floats a, Floats b) {
    return map([&](int i) C10_ALWAYS_INLINE_ATTRIBUTE { return _mm_div_ps(a.v[i], b.v[i]); });
  }
  friend C10_ALWAYS_INLINE Floats sqrt(Floats a) {
    return map([&](int i) C10_ALWAYS_INLINE_ATTRIBUTE { return _mm_sqrt_ps(a.v[i]); });
  }
  friend C10_ALWAYS_INLINE Floats pow(Floats a, float e) {
    alignas(16) float lanes[kWidth];
    a.store(lanes);
    for (float& lane : lanes) lane = std::pow(lane, e);
    return load(lanes);
  }
  friend C10_ALWAYS_INLINE Floats zero_unless_positive(Floats m, Floats value) {
    // cmple is an ordered compare: false for NaN, which keeps the value.
    return map([&](int i) C10_ALWAYS_INLINE_ATTRIBUTE {
      return _mm_andnot_ps(_mm_cmple_ps(m.v[i], _mm_setzero_ps()), value.v[i]);
    });
  }
};
#endif

// ---------------------------------------------------------------------------
// The row functions, once per instruction set.

namespace base {

// Registers per step of the row loops: 2 measured best (4 spills).
constexpr int kFloatBlock = 2;

// Calls body(V{}, t) for the positions t of [0, n): kFloatBlock registers at a
// time over the bulk of the row, then one register, then Scalar.
template <typename T, typename Body>
C10_ALWAYS_INLINE void vectorized_loop(int64_t n, const Body& body) {
  int64_t t = 0;
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float>) {
    using Block = Floats<kFloatBlock>;
    for (; t + Block::kWidth <= n; t += Block::kWidth) body(Block{}, t);
    for (; t + Floats<1>::kWidth <= n; t += Floats<1>::kWidth) body(Floats<1>{}, t);
  }
#endif
  for (; t < n; ++t) body(Scalar<T>{}, t);
}

// p = s^-beta and, for the backward pass, inv = 1/s, with IEEE operations:
// the forms keep pow's limits (s = 0 gives inf, s = inf gives 0, s < 0 NaN).
template <Power kPower, typename V, typename T>
C10_ALWAYS_INLINE void neg_pow(V s, T beta, V& p, V& inv) {
  inv = V::broadcast(T(1)) / s;
  if constexpr (kPower == Power::kZero) {
    p = V::broadcast(T(1));
  } else if constexpr (kPower == Power::kThreeQuarters) {
    const V r = sqrt(inv);
    p = r * sqrt(r);
  } else if constexpr (kPower == Power::kHalf) {
    p = sqrt(inv);
  } else if constexpr (kPower == Power::kOne) {
    p = inv;
  } else {
    p = pow(s, -beta);
  }
}

#define AF_LRN_ROW inline
#include "lrn_rows_simd.h"
#undef AF_LRN_ROW

}  // namespace base

#if AF_LRN_MULTI_TARGET
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,fma")
namespace avx512 {

// One zmm register of floats and the mask of the lanes in the row: loads
// read only those lanes (zeros elsewhere), stores write only those. The
// arithmetic runs on all 16 lanes; the masked-off ones are never stored.
struct Zmm {
  static constexpr int64_t kWidth = 16;
  __m512 v;
  __mmask16 m;

  C10_ALWAYS_INLINE Zmm load(const float* p) const { return {_mm512_maskz_loadu_ps(m, p), m}; }
  C10_ALWAYS_INLINE Zmm broadcast(float x) const { return {_mm512_set1_ps(x), m}; }
  C10_ALWAYS_INLINE void store(float* p) const { _mm512_mask_storeu_ps(p, m, v); }

  friend C10_ALWAYS_INLINE Zmm operator+(Zmm a, Zmm b) { return {_mm512_add_ps(a.v, b.v), a.m}; }
  friend C10_ALWAYS_INLINE Zmm operator-(Zmm a, Zmm b) { return {_mm512_sub_ps(a.v, b.v), a.m}; }
  friend C10_ALWAYS_INLINE Zmm operator*(Zmm a, Zmm b) { return {_mm512_mul_ps(a.v, b.v), a.m}; }
  friend C10_ALWAYS_INLINE Zmm operator/(Zmm a, Zmm b) { return {_mm512_div_ps(a.v, b.v), a.m}; }
  friend C10_ALWAYS_INLINE Zmm zero_unless_positive(Zmm x, Zmm value) {
    // LE_OQ is false for NaN, which keeps the value.
    const __mmask16 positive_or_nan = static_cast<__mmask16>(~_mm512_cmp_ps_mask(x.v, _mm512_setzero_ps(), _CMP_LE_OQ));
    return {_mm512_maskz_mov_ps(positive_or_nan, value.v), x.m};
  }
};

// body(Zmm, t) over [0, n): full registers, then one masked register.
template <typename T, typename Body>
C10_ALWAYS_INLINE void vectorized_loop(int64_t n, const Body& body) {
  static_assert(std::is_same_v<T, float>, "the avx512 rows are float rows");
  int64_t t = 0;
  for (; t + 16 <= n; t += 16) body(Zmm{_mm512_setzero_ps(), 0xFFFF}, t);
  if (t < n) body(Zmm{_mm512_setzero_ps(), static_cast<__mmask16>((1u << (n - t)) - 1)}, t);
}

// x^-1/2 within 1.6 * 2^-24 of the exact value, subnormal x included
// (docs/math.md): the 14-bit estimate q0 (relative error below 2^-14) and
// one Newton step written as a small correction of q0,
// q = q0 + q0 (1/2 - (x q0)(q0 / 2)), so that its rounding stays below an
// ulp: x q0 (about x^1/2) and q0 / 2 (exact) neither over- nor underflow.
// (An earlier ((x/2) q0) q0 rounded x/2 for a subnormal x: up to 50 %
// off at s = 2^-149.) At x = 0 and x = inf the estimate is exact (inf, 0)
// while the step gives NaN (0 * inf): there keep q0. A negative or NaN x
// gives NaN.
C10_ALWAYS_INLINE __m512 rsqrt(__m512 x) {
  const __m512 q0 = _mm512_rsqrt14_ps(x);
  const __m512 r =
      _mm512_fnmadd_ps(_mm512_mul_ps(x, q0), _mm512_mul_ps(q0, _mm512_set1_ps(0.5f)), _mm512_set1_ps(0.5f));
  const __m512 q = _mm512_fmadd_ps(q0, r, q0);
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(q, q, _CMP_UNORD_Q), q, q0);
}

C10_ALWAYS_INLINE Zmm rsqrt(Zmm x) { return {rsqrt(x.v), x.m}; }
C10_ALWAYS_INLINE Zmm nan_to(Zmm v, Zmm other) {
  return {_mm512_mask_blend_ps(_mm512_cmp_ps_mask(v.v, v.v, _CMP_UNORD_Q), v.v, other.v), v.m};
}
C10_ALWAYS_INLINE Zmm pow(Zmm a, float e) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, a.v);
  for (float& lane : lanes) lane = std::pow(lane, e);
  return {_mm512_load_ps(lanes), a.m};
}

// s^-3/4 within 3.3 * 2^-24 of the exact value for every s > 0, subnormal
// included (docs/math.md): the estimate p0 = e1 (e1 e2) from e1 = rsqrt14(s)
// ~ s^-1/2 and e2 = rsqrt14(e1) ~ s^1/4 (relative error below 2.5 * 2^-14),
// then one Newton step for p^-4 = s^3, p = p0 + (p0/4)(1 - p0^4 s^3), with
// p0^4 s^3 as (u u)(u p0), u = p0 s ~ s^1/4: no intermediate leaves
// [2^-112, 2^75], so none over- or underflows. 12 operations where
// q (q q^-1/2) with two refined estimates takes 18, and the bound is half as
// wide. At s = 0 and s = inf, where e1 is exact (inf, 0) and the step gives
// NaN (0 * inf), keep e1; a negative or NaN s gives NaN. The refined q is not
// used (the backward pass's 1/s is).
C10_ALWAYS_INLINE Zmm three_quarters_power(Zmm s, Zmm /*q*/) {
  const __m512 e1 = _mm512_rsqrt14_ps(s.v);
  const __m512 e2 = _mm512_rsqrt14_ps(e1);
  const __m512 p0 = _mm512_mul_ps(e1, _mm512_mul_ps(e1, e2));
  const __m512 u = _mm512_mul_ps(p0, s.v);
  const __m512 r = _mm512_fnmadd_ps(_mm512_mul_ps(u, u), _mm512_mul_ps(u, p0), _mm512_set1_ps(1.0f));
  const __m512 p = _mm512_fmadd_ps(_mm512_mul_ps(p0, _mm512_set1_ps(0.25f)), r, p0);
  return {_mm512_mask_blend_ps(_mm512_cmp_ps_mask(p, p, _CMP_UNORD_Q), p, e1), s.m};
}

#include "lrn_rows_rsqrt.h"

#define AF_LRN_ROW __attribute__((noinline)) inline
#include "lrn_rows_simd.h"
#undef AF_LRN_ROW

}  // namespace avx512
#pragma GCC pop_options
#endif

#if AF_LRN_MULTI_TARGET
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {

// One ymm register of floats. The row's last, partial register is a
// Ymm<true>: its loads read only the lanes of `m` (zeros elsewhere, and no
// access to the memory of the others), its stores write only those. Full
// registers use plain loads and stores. The arithmetic runs on all 8 lanes.
template <bool kMasked>
struct Ymm {
  static constexpr int64_t kWidth = 8;
  __m256 v;
  __m256i m;  // all ones in the lanes of the row; read only when kMasked

  C10_ALWAYS_INLINE Ymm load(const float* p) const {
    if constexpr (kMasked) return {_mm256_maskload_ps(p, m), m};
    return {_mm256_loadu_ps(p), m};
  }
  C10_ALWAYS_INLINE Ymm broadcast(float x) const { return {_mm256_set1_ps(x), m}; }
  C10_ALWAYS_INLINE void store(float* p) const {
    if constexpr (kMasked) {
      _mm256_maskstore_ps(p, m, v);
    } else {
      _mm256_storeu_ps(p, v);
    }
  }

  friend C10_ALWAYS_INLINE Ymm operator+(Ymm a, Ymm b) { return {_mm256_add_ps(a.v, b.v), a.m}; }
  friend C10_ALWAYS_INLINE Ymm operator-(Ymm a, Ymm b) { return {_mm256_sub_ps(a.v, b.v), a.m}; }
  friend C10_ALWAYS_INLINE Ymm operator*(Ymm a, Ymm b) { return {_mm256_mul_ps(a.v, b.v), a.m}; }
  friend C10_ALWAYS_INLINE Ymm operator/(Ymm a, Ymm b) { return {_mm256_div_ps(a.v, b.v), a.m}; }
  friend C10_ALWAYS_INLINE Ymm zero_unless_positive(Ymm x, Ymm value) {
    // LE_OQ is false for NaN, which keeps the value.
    return {_mm256_andnot_ps(_mm256_cmp_ps(x.v, _mm256_setzero_ps(), _CMP_LE_OQ), value.v), x.m};
  }
  friend C10_ALWAYS_INLINE Ymm nan_to(Ymm v, Ymm other) {
    return {_mm256_blendv_ps(v.v, other.v, _mm256_cmp_ps(v.v, v.v, _CMP_UNORD_Q)), v.m};
  }
  friend C10_ALWAYS_INLINE Ymm pow(Ymm a, float e) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, a.v);
    for (float& lane : lanes) lane = std::pow(lane, e);
    return {_mm256_load_ps(lanes), a.m};
  }

  // x^-1/2 within 4.9 * 2^-24 of the exact value for normal x (docs/math.md):
  // the 12-bit estimate q0 (relative error at most 1.5 * 2^-12) and one
  // Newton step written as a small correction of q0,
  // q = q0 + q0 (1/2 - (x q0)(q0 / 2)): x q0 (about x^1/2) and q0 / 2 (exact)
  // neither over- nor underflow. At x = 0 and x = inf the estimate is exact
  // (inf, 0) while the step gives NaN (0 * inf): there keep q0. A negative or
  // NaN x gives NaN. The estimate reads a subnormal x as 0 (inf): such an s
  // (k below FLT_MIN) makes the row's value inf or NaN, which the wide-range
  // repair below the entry points recomputes.
  friend C10_ALWAYS_INLINE Ymm rsqrt(Ymm x) {
    const __m256 q0 = _mm256_rsqrt_ps(x.v);
    const __m256 r =
        _mm256_fnmadd_ps(_mm256_mul_ps(x.v, q0), _mm256_mul_ps(q0, _mm256_set1_ps(0.5f)), _mm256_set1_ps(0.5f));
    return nan_to(Ymm{_mm256_fmadd_ps(q0, r, q0), x.m}, Ymm{q0, x.m});
  }
};

// s^-3/4 = q (q q^-1/2) from q = s^-1/2, within 14.5 * 2^-24 (docs/math.md):
// the 12-bit estimate is too coarse for avx512's one-step form. At s = 0 and
// s = inf (q = inf, 0) the product is 0 * inf: there keep q, the limit.
template <bool kMasked>
C10_ALWAYS_INLINE Ymm<kMasked> three_quarters_power(Ymm<kMasked> /*s*/, Ymm<kMasked> q) {
  return nan_to(q * (q * rsqrt(q)), q);
}

// body(Ymm, t) over [0, n): full registers, then one masked register.
template <typename T, typename Body>
C10_ALWAYS_INLINE void vectorized_loop(int64_t n, const Body& body) {
  static_assert(std::is_same_v<T, float>, "the avx2 rows are float rows");
  int64_t t = 0;
  for (; t + 8 <= n; t += 8) body(Ymm<false>{_mm256_setzero_ps(), _mm256_setzero_si256()}, t);
  if (t < n) {
    // Lane i is in the row where i < n - t.
    const __m256i in_row =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - t)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    body(Ymm<true>{_mm256_setzero_ps(), in_row}, t);
  }
}

#include "lrn_rows_rsqrt.h"

#define AF_LRN_ROW __attribute__((noinline)) inline
#include "lrn_rows_simd.h"
#undef AF_LRN_ROW

}  // namespace avx2
#pragma GCC pop_options
#endif

// ---------------------------------------------------------------------------
// The entry points: float rows on the widest variant the CPU has (and the
// cap allows), everything else on the base functions.

// The variant the row functions for T run (the entry functions record it).
template <typename T>
C10_ALWAYS_INLINE CpuIsa row_isa() {
#if AF_LRN_MULTI_TARGET
  if constexpr (std::is_same_v<T, float>) return cpu_isa();
#endif
  return CpuIsa::kBase;
}

#if AF_LRN_MULTI_TARGET
#define AF_LRN_DISPATCH(fn, ...)                                      \
  do {                                                                \
    if constexpr (std::is_same_v<T, float>) {                         \
      switch (row_isa<T>()) {                                         \
        case CpuIsa::kAvx512:                                         \
          return avx512::fn(__VA_ARGS__);                             \
        case CpuIsa::kAvx2:                                           \
          return avx2::fn(__VA_ARGS__);                               \
        case CpuIsa::kBase:                                           \
          break;                                                      \
      }                                                               \
    }                                                                 \
    return base::fn(__VA_ARGS__);                                     \
  } while (0)
#else
#define AF_LRN_DISPATCH(fn, ...) return base::fn(__VA_ARGS__)
#endif

// a = relu(x) (x without the ReLU) and sq = a * a; `a` may alias x.
template <bool kRelu, typename T>
inline void activation_row(const T* x, T* a, T* sq, int64_t n) {
  AF_LRN_DISPATCH(activation_row<kRelu>, x, a, sq, n);
}

// y = a * s^-beta, s = k + alpha/size * (sum of the window's squares); y may
// alias a.
template <Power kPower, typename T>
inline void forward_row(const T* const* sq_rows, int64_t count, const T* a, T* y, int64_t n, const Params<T>& prm) {
  AF_LRN_DISPATCH(forward_row<kPower>, sq_rows, count, a, y, n, prm.k, prm.alpha_n, prm.beta);
}

// gp = g * s^-beta and t = (a * gp) * (1/s).
template <Power kPower, typename T>
inline void gradient_terms_row(const T* const* sq_rows, int64_t count, const T* a, const T* g, T* gp, T* t_out,
                               int64_t n, const Params<T>& prm) {
  AF_LRN_DISPATCH(gradient_terms_row<kPower>, sq_rows, count, a, g, gp, t_out, n, prm.k, prm.alpha_n, prm.beta);
}

// dx = relu'(x) * (gp - coef * a * (sum of t over the mirrored window)).
template <bool kRelu, typename T>
inline void input_grad_row(const T* const* t_rows, int64_t count, const T* a, const T* gp, T* dx, int64_t n,
                           T coef) {
  AF_LRN_DISPATCH(input_grad_row<kRelu>, t_rows, count, a, gp, dx, n, coef);
}

// Whether the row holds a NaN or an infinity (the scan of the wide-range
// repair below), at the row functions' width: the scalar scan of an earlier
// version took a third of relu_lrn's forward time, its SSE2 form a tenth.
template <typename T>
inline bool has_nonfinite(const T* row, int64_t n) {
  AF_LRN_DISPATCH(has_nonfinite_row, row, n);
}

#undef AF_LRN_DISPATCH

// ---------------------------------------------------------------------------
// The edges of the range. Where an intermediate of the row formulas over- or
// underflows although the true value is finite (alpha * sum a^2 beyond the
// type's range, k = 0 with tiny activations), the fast value can come out NaN
// or +-inf. So output and gradient rows are checked for non-finite values
// (has_nonfinite above, the row still in L1) and those elements recomputed by
// lrn_output_wide_range / lrn_input_grad_wide_range (lrn_wide_range.h), which
// return the finite value, or the infinity of the right sign where the true
// value overflows. Elements whose inputs hold a NaN or inf keep the fast value
// (PyTorch's).

// recompute(t, value) evaluates element t of the row (an output row y or an
// input-gradient row dx) in wide range; false keeps the fast value.
template <typename T, typename Recompute>
inline void repair_row(T* row, int64_t n, const Recompute& recompute) {
  if (!has_nonfinite(row, n)) return;
  for (int64_t t = 0; t < n; ++t) {
    if (std::abs(row[t]) <= std::numeric_limits<T>::max()) continue;
    double value;
    if (recompute(t, value)) row[t] = static_cast<T>(value);
  }
}

// a_m as the wide-range evaluation reads it: relu(x_m), or x_m, in double.
template <bool kRelu, typename scalar_t>
inline double activation_value(scalar_t x) {
  const double v = static_cast<double>(x);
  return (kRelu && v <= 0.0) ? 0.0 : v;
}

}  // namespace alexnet_fast::lrn
