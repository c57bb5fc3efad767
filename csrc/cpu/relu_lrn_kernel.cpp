// Fused ReLU + local response normalization across channels, CPU kernels.
//
//   a_c = relu(x_c)  (x_c when apply_relu is false)
//   s_c = k + alpha/size * sum_{j in W(c)} a_j^2,   W(c) = [c - size/2, c + (size-1)/2]
//   y_c = a_c * p_c,                                 p_c = s_c^-beta
//
// with windows clipped to [0, C). The backward pass recomputes s from x:
//
//   dx_j = relu'(x_j) * (g_j p_j - (2 alpha beta / size) a_j sum_{i in W'(j)} t_i)
//   t_i = g_i a_i s_i^(-beta-1),   W'(j) = [j - (size-1)/2, j + size/2]
//
// W'(j) is the mirrored window: the channels i whose W(i) contains j.
//
// Window sums add their terms one by one in increasing channel order instead
// of sliding a running sum (add the entering term, subtract the leaving one):
// a running sum would carry a NaN or inf into every later channel, and the
// window is small. Every (batch, spatial position) is independent, so the work
// splits over batch x spatial without atomics and the results do not depend
// on the number of threads.
//
// Layouts (see channel_layout.h), both without copies:
//   channels-first: a tile of spatial positions is processed one channel row
//     at a time; ring buffers keep the rows of the last `size` channels
//     (activations and squares; in the backward pass also g*p and t), so every
//     input element is loaded once.
//   channels-last: the channels of a pixel are contiguous; the window sums run
//     over zero-padded per-pixel rows (adding the padding zeros is exact).
// Both layouts add the same terms in the same order and give the same values.
//
// Values are loaded and stored in the storage type; everything in between, a*a
// included, is in float for float/half/bfloat16 (double for double), so a half
// input around 300 does not overflow. relu_lrn_max_pool2d_kernel.cpp repeats
// these operations in the same order to agree bitwise: change both together.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "../channel_layout.h"
#include "huge_pages.h"

namespace alexnet_fast {

namespace {

// ---------------------------------------------------------------------------
// Vector arithmetic
//
// The row kernels are written once, over a vector type V: Scalar<T> (one lane;
// used for double and for the last positions of a row) or Floats<K> (K SSE2
// registers; SSE2 is part of every x86-64 CPU). GCC does not vectorise these
// loops by itself: std::sqrt may set errno (unless -fno-math-errno), and under
// its default -ftrapping-math `x <= 0 ? 0 : expr` becomes a branch. Both types
// do the same correctly rounded IEEE operations, so a value does not depend on
// the lane that computed it.
//
// The cost is dominated by the divider (three square roots or divisions per
// element for beta = 0.75), whose throughput per element is the same for SSE,
// AVX2 and AVX-512 on current x86 cores; an AVX2 build of these loops gained
// about 10% where no division is involved, not worth per-CPU builds.

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

// Registers per step of the row loops: 2 measured best (4 spills).
constexpr int kFloatBlock = 2;

// Calls body(V{}, t) for the positions t of [0, n): kFloatBlock registers at a
// time over the bulk of the row, then one register, then Scalar for the last
// positions.
template <typename T, typename Body>
C10_ALWAYS_INLINE void vectorized_loop(int64_t n, const Body& body) {
  int64_t t = 0;
  if constexpr (std::is_same_v<T, float>) {
    using Block = Floats<kFloatBlock>;
    for (; t + Block::kWidth <= n; t += Block::kWidth) body(Block{}, t);
    for (; t + Floats<1>::kWidth <= n; t += Floats<1>::kWidth) body(Floats<1>{}, t);
  }
  for (; t < n; ++t) body(Scalar<T>{}, t);
}
#else
template <typename T, typename Body>
C10_ALWAYS_INLINE void vectorized_loop(int64_t n, const Body& body) {
  for (int64_t t = 0; t < n; ++t) body(Scalar<T>{}, t);
}
#endif

// ---------------------------------------------------------------------------
// Parameters and powers

// s^-beta has exact forms for the common betas: sqrt and division are
// correctly rounded and vectorise, std::pow does neither.
enum class Power { kThreeQuarters, kHalf, kOne, kGeneral };

Power classify_beta(double beta) {
  if (beta == 0.75) return Power::kThreeQuarters;
  if (beta == 0.5) return Power::kHalf;
  if (beta == 1.0) return Power::kOne;
  return Power::kGeneral;
}

// p = s^-beta from s and inv = 1/s: s^-0.75 = sqrt(1/s) * sqrt(sqrt(1/s)),
// correctly rounded steps, within 3 ulp of the exact power. The forms keep pow's
// limits: s = 0 gives inf, s = inf gives 0, s < 0 gives NaN.
template <Power kPower, typename V, typename T>
C10_ALWAYS_INLINE V neg_pow(V s, V inv, T beta) {
  if constexpr (kPower == Power::kThreeQuarters) {
    const V r = sqrt(inv);
    return r * sqrt(r);
  } else if constexpr (kPower == Power::kHalf) {
    return sqrt(inv);
  } else if constexpr (kPower == Power::kOne) {
    return inv;
  } else {
    return pow(s, -beta);
  }
}

template <typename acc_t>
struct Params {
  int64_t size;
  int64_t before;  // W(c) = [c - before, c + after]
  int64_t after;
  acc_t alpha_n;  // alpha / size
  acc_t k;
  acc_t beta;
  acc_t grad_coef;  // 2 * alpha * beta / size

  Params(int64_t size_, double alpha, double beta_, double k_)
      : size(size_),
        before(size_ / 2),
        after((size_ - 1) / 2),
        alpha_n(static_cast<acc_t>(alpha / static_cast<double>(size_))),
        k(static_cast<acc_t>(k_)),
        beta(static_cast<acc_t>(beta_)),
        grad_coef(static_cast<acc_t>(2.0 * alpha * beta_ / static_cast<double>(size_))) {}
};

// ---------------------------------------------------------------------------
// Row kernels, shared by both layouts. A "row" is n values of one channel at
// consecutive spatial positions (channels-first) or the C channels of one
// pixel (channels-last); `rows[0..count)` are the rows of a window, in
// increasing channel order.

template <typename V, typename T>
C10_ALWAYS_INLINE V window_sum(const T* const* rows, int64_t count, int64_t t) {
  V sum = V::load(rows[0] + t);
  for (int64_t r = 1; r < count; ++r) sum = sum + V::load(rows[r] + t);
  return sum;
}

// a = relu(x) and sq = a * a in the compute type. `a` may alias x when x is
// already a row of the compute type (the half/bfloat16 conversion buffer).
template <bool kRelu, typename T>
inline void activation_row(const T* x, T* a, T* sq, int64_t n) {
  vectorized_loop<T>(n, [&](auto v, int64_t t) C10_ALWAYS_INLINE_ATTRIBUTE {
    using V = decltype(v);
    V av = V::load(x + t);
    if constexpr (kRelu) av = zero_unless_positive(av, av);
    av.store(a + t);
    (av * av).store(sq + t);
  });
}

// y = a * s^-beta,  s = k + alpha/size * (sum of the window's squares)
template <Power kPower, typename T>
inline void forward_row(const T* const* sq_rows, int64_t count, const T* a, T* y, int64_t n, const Params<T>& prm) {
  // Locals, not prm's fields: the stores through y might alias them.
  const T k = prm.k, alpha_n = prm.alpha_n, beta = prm.beta;
  vectorized_loop<T>(n, [&](auto v, int64_t t) C10_ALWAYS_INLINE_ATTRIBUTE {
    using V = decltype(v);
    const V s = V::broadcast(k) + V::broadcast(alpha_n) * window_sum<V>(sq_rows, count, t);
    const V inv = V::broadcast(T(1)) / s;
    (V::load(a + t) * neg_pow<kPower>(s, inv, beta)).store(y + t);
  });
}

// gp = g * s^-beta and t = a * g * s^(-beta-1) = a * gp * (1/s).
template <Power kPower, typename T>
inline void gradient_terms_row(const T* const* sq_rows, int64_t count, const T* a, const T* g, T* gp, T* t_out,
                               int64_t n, const Params<T>& prm) {
  const T k = prm.k, alpha_n = prm.alpha_n, beta = prm.beta;
  vectorized_loop<T>(n, [&](auto v, int64_t t) C10_ALWAYS_INLINE_ATTRIBUTE {
    using V = decltype(v);
    const V s = V::broadcast(k) + V::broadcast(alpha_n) * window_sum<V>(sq_rows, count, t);
    const V inv = V::broadcast(T(1)) / s;
    const V gpv = V::load(g + t) * neg_pow<kPower>(s, inv, beta);
    gpv.store(gp + t);
    (V::load(a + t) * gpv * inv).store(t_out + t);
  });
}

// dx = relu'(x) * (gp - coef * a * (sum of t over the mirrored window)). With
// apply_relu, relu'(x) = 0 exactly where a = relu(x) <= 0; the select also
// zeroes a NaN or inf value there, as threshold_backward does.
template <bool kRelu, typename T>
inline void input_grad_row(const T* const* t_rows, int64_t count, const T* a, const T* gp, T* dx, int64_t n,
                           T coef) {
  vectorized_loop<T>(n, [&](auto v, int64_t t) C10_ALWAYS_INLINE_ATTRIBUTE {
    using V = decltype(v);
    const V av = V::load(a + t);
    V value = V::load(gp + t) - V::broadcast(coef) * av * window_sum<V>(t_rows, count, t);
    if constexpr (kRelu) value = zero_unless_positive(av, value);
    value.store(dx + t);
  });
}

// Conversions between the storage type and the compute type, for half and
// bfloat16 rows (float and double rows are used in place).
template <typename scalar_t, typename acc_t>
inline void load_row(const scalar_t* src, acc_t* dst, int64_t n) {
  for (int64_t t = 0; t < n; ++t) dst[t] = static_cast<acc_t>(src[t]);
}

template <typename scalar_t, typename acc_t>
inline void store_row(const acc_t* src, scalar_t* dst, int64_t n) {
  for (int64_t t = 0; t < n; ++t) dst[t] = static_cast<scalar_t>(src[t]);
}

// A row of the storage type as a row of the compute type: the row itself when
// the types match, else its conversion into `buffer`.
template <typename scalar_t, typename acc_t>
inline const acc_t* compute_row(const scalar_t* src, acc_t* buffer, int64_t n) {
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    return src;
  } else {
    load_row(src, buffer, n);
    return buffer;
  }
}

// Where to write a result row: the output row itself when the types match,
// else `buffer`, to be converted by finish_row.
template <typename scalar_t, typename acc_t>
inline acc_t* result_row(scalar_t* dst, acc_t* buffer) {
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    return dst;
  } else {
    return buffer;
  }
}

template <typename scalar_t, typename acc_t>
inline void finish_row(const acc_t* buffer, scalar_t* dst, int64_t n) {
  if constexpr (!std::is_same_v<scalar_t, acc_t>) store_row(buffer, dst, n);
}

// ---------------------------------------------------------------------------
// Channels-first: tiles of `tile` spatial positions, walked channel by channel

// Spatial positions per channels-first tile: the ring buffers stay in L1.
constexpr int64_t kTile = 256;

// The rows of a tile are short strided pieces that the hardware prefetcher
// does not follow, and the arithmetic between two loads is long: without
// software prefetches every row would wait for memory with the arithmetic
// idle. Rows are requested this many channels before they are used; output
// rows too (for writing), else their stores stall on the read-for-ownership.
// Measured on (32, 96, 55, 55) float32, one core: forward 1.3x, backward 1.6x.
constexpr int64_t kPrefetchChannels = 2;

template <bool kForWrite = false, typename T>
inline void prefetch_row(const T* row, int64_t n) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t byte = 0; byte < n * static_cast<int64_t>(sizeof(T)); byte += 64) {
    __builtin_prefetch(p + byte, kForWrite ? 1 : 0);
  }
}

// Rows of the last `size` channels of a tile: channel c lives in slot
// c % size until channel c + size replaces it. The slots of all C channels
// are looked up, not computed: a division per access would cost more than the
// arithmetic of a short row, and rounding the slot count up to a power of two
// (a mask) makes the backward pass's four rings spill out of L1.
template <typename T>
struct Ring {
  std::vector<T> data;
  std::vector<T*> row_of_channel;
  Ring(int64_t size, int64_t tile, int64_t C) : data(size * tile), row_of_channel(C) {
    for (int64_t c = 0; c < C; ++c) row_of_channel[c] = data.data() + (c % size) * tile;
  }
  Ring(const Ring&) = delete;  // row_of_channel points into data
  Ring& operator=(const Ring&) = delete;
  T* operator[](int64_t c) const { return row_of_channel[c]; }
};

template <bool kRelu, Power kPower, typename scalar_t, typename acc_t>
struct ForwardChannelsFirst {
  const Params<acc_t>& prm;
  int64_t C, S;
  Ring<acc_t> a, sq;
  std::vector<acc_t> buffer;
  std::vector<const acc_t*> window;

  ForwardChannelsFirst(const Params<acc_t>& prm_, int64_t C_, int64_t S_, int64_t tile)
      : prm(prm_), C(C_), S(S_), a(prm_.size, tile, C_), sq(prm_.size, tile, C_), buffer(tile), window(prm_.size) {}

  void load(const scalar_t* x, int64_t c, int64_t n) {
    activation_row<kRelu>(compute_row(x + c * S, a[c], n), a[c], sq[c], n);
  }

  // x and y point at (batch, channel 0, first position of the tile). Output
  // channel c needs the squares of channels up to c + after.
  void operator()(const scalar_t* x, scalar_t* y, int64_t n) {
    for (int64_t c = 0; c < std::min(prm.after, C); ++c) load(x, c, n);
    for (int64_t c = 0; c < C; ++c) {
      if (c + prm.after + kPrefetchChannels < C) prefetch_row(x + (c + prm.after + kPrefetchChannels) * S, n);
      if (c + kPrefetchChannels < C) prefetch_row</*kForWrite=*/true>(y + (c + kPrefetchChannels) * S, n);
      if (c + prm.after < C) load(x, c + prm.after, n);
      const int64_t lo = std::max<int64_t>(c - prm.before, 0);
      const int64_t hi = std::min(c + prm.after, C - 1);
      for (int64_t j = lo; j <= hi; ++j) window[j - lo] = sq[j];
      acc_t* out = result_row(y + c * S, buffer.data());
      forward_row<kPower>(window.data(), hi - lo + 1, a[c], out, n, prm);
      finish_row(out, y + c * S, n);
    }
  }
};

template <bool kRelu, Power kPower, typename scalar_t, typename acc_t>
struct BackwardChannelsFirst {
  const Params<acc_t>& prm;
  int64_t C, S;
  Ring<acc_t> a, sq, gp, t;
  std::vector<acc_t> buffer;
  std::vector<const acc_t*> window;

  BackwardChannelsFirst(const Params<acc_t>& prm_, int64_t C_, int64_t S_, int64_t tile)
      : prm(prm_),
        C(C_),
        S(S_),
        a(prm_.size, tile, C_),
        sq(prm_.size, tile, C_),
        gp(prm_.size, tile, C_),
        t(prm_.size, tile, C_),
        buffer(tile),
        window(prm_.size) {}

  void load(const scalar_t* x, int64_t c, int64_t n) {
    activation_row<kRelu>(compute_row(x + c * S, a[c], n), a[c], sq[c], n);
  }

  // A pipeline over the channels: the squares of channel i + after complete
  // W(i), which gives s, g*p and t of channel i; t of channel i completes
  // W'(i - before), which gives dx of channel i - before. Each ring slot is
  // reused only after the last reader of its channel.
  void operator()(const scalar_t* x, const scalar_t* g, scalar_t* dx, int64_t n) {
    for (int64_t c = 0; c < std::min(prm.after, C); ++c) load(x, c, n);
    for (int64_t i = 0; i < C; ++i) {
      if (i + prm.after + kPrefetchChannels < C) prefetch_row(x + (i + prm.after + kPrefetchChannels) * S, n);
      if (i + kPrefetchChannels < C) prefetch_row(g + (i + kPrefetchChannels) * S, n);
      const int64_t next_dx = i - prm.before + kPrefetchChannels;
      if (next_dx >= 0 && next_dx < C) prefetch_row</*kForWrite=*/true>(dx + next_dx * S, n);
      if (i + prm.after < C) load(x, i + prm.after, n);
      const int64_t lo = std::max<int64_t>(i - prm.before, 0);
      const int64_t hi = std::min(i + prm.after, C - 1);
      for (int64_t c = lo; c <= hi; ++c) window[c - lo] = sq[c];
      // The conversion buffer is free here: input_grad below has not started.
      const acc_t* gi = compute_row(g + i * S, buffer.data(), n);
      gradient_terms_row<kPower>(window.data(), hi - lo + 1, a[i], gi, gp[i], t[i], n, prm);
      if (i >= prm.before) input_grad(i - prm.before, dx, n);
    }
    for (int64_t j = std::max<int64_t>(C - prm.before, 0); j < C; ++j) input_grad(j, dx, n);
  }

  void input_grad(int64_t j, scalar_t* dx, int64_t n) {
    const int64_t lo = std::max<int64_t>(j - prm.after, 0);
    const int64_t hi = std::min(j + prm.before, C - 1);
    for (int64_t i = lo; i <= hi; ++i) window[i - lo] = t[i];
    acc_t* out = result_row(dx + j * S, buffer.data());
    input_grad_row<kRelu>(window.data(), hi - lo + 1, a[j], gp[j], out, n, prm.grad_coef);
    finish_row(out, dx + j * S, n);
  }
};

// ---------------------------------------------------------------------------
// Channels-last: one pixel (C contiguous channels) at a time

// A row of C values between `front` and `back` zeros, and the pointers
// rows[d] = padded + d: the window sum over rows[0..size) at channel c adds
// padded[c .. c + size), the row's values at channels [c - front, c + back].
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

template <bool kRelu, Power kPower, typename scalar_t, typename acc_t>
struct ForwardChannelsLast {
  const Params<acc_t>& prm;
  int64_t C;
  PaddedRow<acc_t> sq;  // window W(c)
  std::vector<acc_t> a, buffer;

  ForwardChannelsLast(const Params<acc_t>& prm_, int64_t C_)
      : prm(prm_), C(C_), sq(C_, prm_.before, prm_.after), a(C_), buffer(C_) {}

  // x and y point at the channels of one pixel.
  void operator()(const scalar_t* x, scalar_t* y) {
    activation_row<kRelu>(compute_row(x, a.data(), C), a.data(), sq.values(), C);
    acc_t* out = result_row(y, buffer.data());
    forward_row<kPower>(sq.rows.data(), prm.size, a.data(), out, C, prm);
    finish_row(out, y, C);
  }
};

template <bool kRelu, Power kPower, typename scalar_t, typename acc_t>
struct BackwardChannelsLast {
  const Params<acc_t>& prm;
  int64_t C;
  PaddedRow<acc_t> sq;  // window W(c)
  PaddedRow<acc_t> t;   // mirrored window W'(j)
  std::vector<acc_t> a, gp, buffer;

  BackwardChannelsLast(const Params<acc_t>& prm_, int64_t C_)
      : prm(prm_),
        C(C_),
        sq(C_, prm_.before, prm_.after),
        t(C_, prm_.after, prm_.before),
        a(C_),
        gp(C_),
        buffer(C_) {}

  void operator()(const scalar_t* x, const scalar_t* g, scalar_t* dx) {
    activation_row<kRelu>(compute_row(x, a.data(), C), a.data(), sq.values(), C);
    const acc_t* gv = compute_row(g, buffer.data(), C);
    gradient_terms_row<kPower>(sq.rows.data(), prm.size, a.data(), gv, gp.data(), t.values(), C, prm);
    acc_t* out = result_row(dx, buffer.data());
    input_grad_row<kRelu>(t.rows.data(), prm.size, a.data(), gp.data(), out, C, prm.grad_coef);
    finish_row(out, dx, C);
  }
};

// ---------------------------------------------------------------------------
// Drivers

// Elements per parallel_for chunk below which another thread does not pay.
constexpr int64_t kGrainElements = 32768;

int64_t grain_for(int64_t elements_per_item) {
  return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, elements_per_item));
}

// Channels-first work items: (batch, tile of at most kTile positions).
struct Tiling {
  int64_t tile, tiles_per_image;
  explicit Tiling(int64_t S) : tile(std::min(S, kTile)), tiles_per_image((S + kTile - 1) / kTile) {}
  int64_t offset(int64_t item, int64_t stride_batch) const {
    return (item / tiles_per_image) * stride_batch + (item % tiles_per_image) * tile;
  }
  int64_t length(int64_t item, int64_t S) const { return std::min(tile, S - (item % tiles_per_image) * tile); }
};

// Calls f(std::bool_constant<apply_relu>, std::integral_constant<Power, ...>).
template <typename F>
void dispatch_variant(bool apply_relu, double beta, const F& f) {
  auto with_power = [&](auto relu) {
    switch (classify_beta(beta)) {
      case Power::kThreeQuarters:
        return f(relu, std::integral_constant<Power, Power::kThreeQuarters>{});
      case Power::kHalf:
        return f(relu, std::integral_constant<Power, Power::kHalf>{});
      case Power::kOne:
        return f(relu, std::integral_constant<Power, Power::kOne>{});
      default:
        return f(relu, std::integral_constant<Power, Power::kGeneral>{});
    }
  };
  if (apply_relu) {
    with_power(std::true_type{});
  } else {
    with_power(std::false_type{});
  }
}

template <typename scalar_t>
void forward_impl(const at::Tensor& x, at::Tensor& y, const ChannelView& v, int64_t size, double alpha,
                  double beta, double k, bool apply_relu) {
  using acc_t = at::opmath_type<scalar_t>;
  const Params<acc_t> prm(size, alpha, beta, k);
  const scalar_t* x_data = x.const_data_ptr<scalar_t>();
  scalar_t* y_data = y.mutable_data_ptr<scalar_t>();
  const int64_t C = v.channels, S = v.spatial;

  dispatch_variant(apply_relu, beta, [&](auto relu, auto power) {
    constexpr bool kRelu = decltype(relu)::value;
    constexpr Power kPower = decltype(power)::value;
    if (v.channels_last()) {
      at::parallel_for(0, v.batch * S, grain_for(C), [&](int64_t begin, int64_t end) {
        ForwardChannelsLast<kRelu, kPower, scalar_t, acc_t> kernel(prm, C);
        for (int64_t i = begin; i < end; ++i) kernel(x_data + i * C, y_data + i * C);
      });
    } else {
      const Tiling tiling(S);
      const int64_t items = v.batch * tiling.tiles_per_image;
      at::parallel_for(0, items, grain_for(C * tiling.tile), [&](int64_t begin, int64_t end) {
        ForwardChannelsFirst<kRelu, kPower, scalar_t, acc_t> kernel(prm, C, S, tiling.tile);
        for (int64_t i = begin; i < end; ++i) {
          const int64_t offset = tiling.offset(i, v.stride_batch);
          kernel(x_data + offset, y_data + offset, tiling.length(i, S));
        }
      });
    }
  });
}

template <typename scalar_t>
void backward_impl(const at::Tensor& g, const at::Tensor& x, at::Tensor& dx, const ChannelView& v, int64_t size,
                   double alpha, double beta, double k, bool apply_relu) {
  using acc_t = at::opmath_type<scalar_t>;
  const Params<acc_t> prm(size, alpha, beta, k);
  const scalar_t* x_data = x.const_data_ptr<scalar_t>();
  const scalar_t* g_data = g.const_data_ptr<scalar_t>();
  scalar_t* dx_data = dx.mutable_data_ptr<scalar_t>();
  const int64_t C = v.channels, S = v.spatial;

  dispatch_variant(apply_relu, beta, [&](auto relu, auto power) {
    constexpr bool kRelu = decltype(relu)::value;
    constexpr Power kPower = decltype(power)::value;
    if (v.channels_last()) {
      at::parallel_for(0, v.batch * S, grain_for(C), [&](int64_t begin, int64_t end) {
        BackwardChannelsLast<kRelu, kPower, scalar_t, acc_t> kernel(prm, C);
        for (int64_t i = begin; i < end; ++i) kernel(x_data + i * C, g_data + i * C, dx_data + i * C);
      });
    } else {
      const Tiling tiling(S);
      const int64_t items = v.batch * tiling.tiles_per_image;
      at::parallel_for(0, items, grain_for(C * tiling.tile), [&](int64_t begin, int64_t end) {
        BackwardChannelsFirst<kRelu, kPower, scalar_t, acc_t> kernel(prm, C, S, tiling.tile);
        for (int64_t i = begin; i < end; ++i) {
          const int64_t offset = tiling.offset(i, v.stride_batch);
          kernel(x_data + offset, g_data + offset, dx_data + offset, tiling.length(i, S));
        }
      });
    }
  });
}

void check_common(const char* op, const at::Tensor& x, int64_t size) {
  TORCH_CHECK(size >= 1, op, ": size must be >= 1, got ", size);
  TORCH_CHECK(x.dim() >= 3, op, ": x must have at least 3 dims (N, C, *), got shape ", x.sizes());
  const auto dtype = x.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf || dtype == at::kBFloat16, op,
              ": x must be float32, float64, float16 or bfloat16, got ", dtype);
}

}  // namespace

at::Tensor relu_lrn_forward_cpu(const at::Tensor& x, int64_t size, double alpha, double beta, double k,
                                bool apply_relu) {
  check_common("relu_lrn_forward", x, size);
  if (x.numel() == 0) return at::empty_like(x);
  ChannelView view;
  const at::Tensor input = as_channel_view(x, view);
  at::Tensor output = at::empty_like(input);
  advise_huge_pages(output);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "relu_lrn_forward_cpu", [&] {
    forward_impl<scalar_t>(input, output, view, size, alpha, beta, k, apply_relu);
  });
  return output;
}

at::Tensor relu_lrn_backward_cpu(const at::Tensor& grad_out, const at::Tensor& x, int64_t size, double alpha,
                                 double beta, double k, bool apply_relu) {
  check_common("relu_lrn_backward", x, size);
  TORCH_CHECK(grad_out.sizes() == x.sizes(), "relu_lrn_backward: grad_out shape ", grad_out.sizes(),
              " must equal x shape ", x.sizes());
  TORCH_CHECK(grad_out.scalar_type() == x.scalar_type(), "relu_lrn_backward: grad_out dtype ",
              grad_out.scalar_type(), " must equal x dtype ", x.scalar_type());
  if (x.numel() == 0) return at::empty_like(x);
  ChannelView view;
  const at::Tensor input = as_channel_view(x, view);
  const at::Tensor grad = same_layout_as(grad_out, input);
  at::Tensor grad_input = at::empty_like(input);
  advise_huge_pages(grad_input);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "relu_lrn_backward_cpu", [&] {
    backward_impl<scalar_t>(grad, input, grad_input, view, size, alpha, beta, k, apply_relu);
  });
  return grad_input;
}

TORCH_LIBRARY_IMPL(alexnet_fast, CPU, m) {
  m.impl("relu_lrn_forward", TORCH_FN(relu_lrn_forward_cpu));
  m.impl("relu_lrn_backward", TORCH_FN(relu_lrn_backward_cpu));
}

}  // namespace alexnet_fast
