// The CUDA kernels of the fused ReLU + Local Response Normalization (forward
// and backward), their launch plan and their variant dispatch. Device code and
// plain host code only (no ATen): relu_lrn_glue.h runs it on CUDA tensors
// (relu_lrn_kernel.cu) and on the CPU (host/relu_lrn_kernel.cpp). The math is
// in docs/math.md ("ReLU + LRN"); the arithmetic in lrn_math.cuh.
//
// Every kernel evaluates the same expression tree in the same order with
// explicitly rounded intrinsics, and out-of-range window terms contribute an
// exact +0, so the channels-first and direct kernels, and their size-5 and
// general variants, give bitwise equal results, repeatable (no atomics).
//
// Kernels:
//  * relu_lrn_{forward,backward}_cf_kernel<SIZE> (channels-first, stride_s =
//    1, S >= 32, SIZE = 5): one thread per (n, channel chunk, spatial
//    position), consecutive threads on consecutive positions (coalesced),
//    marching over its chunk's channels with the window in registers: each
//    x/g element is loaded once per thread, plus a halo of SIZE - 1 (forward)
//    or 2 (SIZE - 1) (backward) channels per chunk. kUnroll steps' loads are
//    issued together. Channels are split into chunks only when N * S threads
//    alone would not fill the GPU.
//  * relu_lrn_{forward,backward}_direct_kernel<SIZE, index_t>: one thread per
//    element in memory order (coalesced in both layouts), reading its window
//    directly (neighbouring channels are neighbouring threads in
//    channels-last, so the re-reads hit L1). SIZE = 5: unrolled register
//    window; SIZE = 0: runtime size (forward O(size), backward O(size^2)
//    loads, windows clipped to C). index_t = int32 when numel fits.
// Each stores a fast value; one that comes out NaN or +-inf from finite
// inputs is recomputed in wide range (lrn_math.cuh).
//
// Precision: load/store in the storage type, compute in at::opmath_type
// (float for float/half/bfloat16, double for double).
#pragma once

#include <c10/macros/Macros.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <ATen/OpMathType.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "lrn_math.cuh"
#include "plan_overrides.cuh"
#include "pool_common.cuh"

namespace alexnet_fast::relu_lrn_cuda {

constexpr int kThreads = 256;  // the kernels' launch bound and block size
// Channel-loop steps whose loads are issued together (loads in flight/thread).
constexpr int kUnroll = 4;
// Channels-first kernels: aim for at least this many threads (H100: 132 SMs x
// 2048 resident threads ~ 270k) before splitting the channel loop into chunks,
// and never make a chunk shorter than kMinChunk channels (halo overhead).
constexpr int64_t kTargetThreads = int64_t{1} << 18;
constexpr int64_t kMinChunk = 16;
// Grid-stride kernels never launch more blocks than this.
constexpr int64_t kMaxBlocks = int64_t{1} << 20;

// The (N, C, S) view (csrc/channel_layout.h) in plain numbers.
struct ChannelShape {
  int64_t batch, channels, spatial;
  int64_t stride_channel;  // S for channels-first, 1 for channels-last
  bool channels_first_dense() const { return stride_channel == spatial || channels == 1; }
};

// a_c, or 0 when channel c lies outside [0, C) (a clipped window term).
template <typename acc_t, typename scalar_t, typename index_t>
__device__ __forceinline__ acc_t load_act(const scalar_t* __restrict__ p, int c, int C, index_t stride_c,
                                          bool apply_relu) {
  if (c < 0 || c >= C) return acc_t(0);
  return act(static_cast<acc_t>(p[static_cast<index_t>(c) * stride_c]), apply_relu);
}

// ---------------------------------------------------------------------------
// Channels-first (N, C, S), stride_s = 1: register window marching over C.
// Thread -> (n, chunk, s) with s fastest; channel c of the thread's column is
// at base + c * S with base = n * C * S + s.

// Forward. State at channel c: A[w] = a_{c - LO + w}, w in [0, SIZE), so
// A[LO] = a_c and A covers W(c) = [c - LO, c + HI] (SIZE - 1 - LO == HI).
template <typename scalar_t, int SIZE>
__global__ void __launch_bounds__(kThreads)
    relu_lrn_forward_cf_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ out, int64_t total,
                               int64_t S, int64_t chunks, int chunk_len,
                               const LrnParams<at::opmath_type<scalar_t>> p) {
  using acc_t = at::opmath_type<scalar_t>;
  static_assert(SIZE >= 1, "window size must be positive");
  constexpr int LO = SIZE / 2;
  constexpr int HI = (SIZE - 1) / 2;
  const int C = p.channels;
  const int64_t CS = static_cast<int64_t>(C) * S;
  const scalar_t zero = static_cast<scalar_t>(0.0f);

  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t s = idx % S;
    const int64_t rest = idx / S;
    const int c0 = static_cast<int>(rest % chunks) * chunk_len;  // c0 < C
    const int64_t n = rest / chunks;
    const int c1 = min(c0 + chunk_len, C);
    const int64_t base = n * CS + s;
    const scalar_t* __restrict__ xp = x + base;
    scalar_t* __restrict__ op = out + base;

    // Prefill A[0 .. SIZE-2] for c = c0; A[SIZE-1] is loaded at each step.
    acc_t A[SIZE];
#pragma unroll
    for (int w = 0; w + 1 < SIZE; ++w) A[w] = load_act<acc_t>(xp, c0 - LO + w, C, S, p.apply_relu);

    for (int cb = c0; cb < c1; cb += kUnroll) {
      // Issue the kUnroll loads first (raw storage values, not yet
      // converted, so none of them waits for another).
      scalar_t R[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int ch = cb + u + HI;  // newest window term of channel cb + u
        R[u] = (cb + u < c1 && ch < C) ? xp[static_cast<int64_t>(ch) * S] : zero;
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int c = cb + u;
        if (c < c1) {
          A[SIZE - 1] = act(static_cast<acc_t>(R[u]), p.apply_relu);
          acc_t b = div_rn(A[LO], pow_beta(window_s<SIZE>(A, p), p));
          if (!finite(b)) {
            b = lrn_output_repaired(b, c, p, [&](int64_t m) {
              return static_cast<double>(act(static_cast<acc_t>(xp[m * S]), p.apply_relu));
            });
          }
          op[static_cast<int64_t>(c) * S] = static_cast<scalar_t>(b);
#pragma unroll
          for (int w = 0; w + 1 < SIZE; ++w) A[w] = A[w + 1];
        }
      }
    }
  }
}

// Backward. The thread marches m over [c0 - HI, c1 + LO) computing, at step m,
// s_m, t_m = g_m * (b_m / s_m) (0 for m outside [0, C)) and d_m = g_m s_m^-beta,
// and emits dx_j for j = m - LO once j >= c0, when t_{j-HI .. j+LO} = t_{m-SIZE+1
// .. m} are all known. State at step m (after the ring updates):
//   A[w] = a_{m - LO + w}   (A[LO] = a_m, A[0] = a_j)
//   T[w] = t_{m - SIZE + 1 + w}   (the SIZE terms of W'(j), oldest first)
//   D[w] = d_{m - LO + w}   (D[0] = d_j)
// The first emission happens SIZE - 1 steps after m = c0 - HI, so every ring
// entry it reads was computed in this chunk.
template <typename scalar_t, int SIZE>
__global__ void __launch_bounds__(kThreads)
    relu_lrn_backward_cf_kernel(const scalar_t* __restrict__ g, const scalar_t* __restrict__ x,
                                scalar_t* __restrict__ dx, int64_t total, int64_t S, int64_t chunks, int chunk_len,
                                const LrnParams<at::opmath_type<scalar_t>> p) {
  using acc_t = at::opmath_type<scalar_t>;
  static_assert(SIZE >= 1, "window size must be positive");
  constexpr int LO = SIZE / 2;
  constexpr int HI = (SIZE - 1) / 2;
  const int C = p.channels;
  const int64_t CS = static_cast<int64_t>(C) * S;
  const scalar_t zero = static_cast<scalar_t>(0.0f);

  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t s = idx % S;
    const int64_t rest = idx / S;
    const int c0 = static_cast<int>(rest % chunks) * chunk_len;  // c0 < C
    const int64_t n = rest / chunks;
    const int c1 = min(c0 + chunk_len, C);
    const int64_t base = n * CS + s;
    const scalar_t* __restrict__ xp = x + base;
    const scalar_t* __restrict__ gp = g + base;
    scalar_t* __restrict__ dp = dx + base;

    const int m_begin = c0 - HI;
    const int m_end = c1 + LO;  // exclusive: the last step emits j = c1 - 1

    acc_t A[SIZE];
    acc_t T[SIZE];
    acc_t D[LO + 1];
#pragma unroll
    for (int w = 0; w < SIZE; ++w) T[w] = acc_t(0);
#pragma unroll
    for (int w = 0; w <= LO; ++w) D[w] = acc_t(0);
#pragma unroll
    for (int w = 0; w + 1 < SIZE; ++w) A[w] = load_act<acc_t>(xp, m_begin - LO + w, C, S, p.apply_relu);

    for (int mb = m_begin; mb < m_end; mb += kUnroll) {
      scalar_t RX[kUnroll];
      scalar_t RG[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int m = mb + u;
        const int chx = m + HI;  // newest window term of s_m
        RX[u] = (m < m_end && chx >= 0 && chx < C) ? xp[static_cast<int64_t>(chx) * S] : zero;
        RG[u] = (m < m_end && m >= 0 && m < C) ? gp[static_cast<int64_t>(m) * S] : zero;
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int m = mb + u;
        if (m < m_end) {
          A[SIZE - 1] = act(static_cast<acc_t>(RX[u]), p.apply_relu);
          const acc_t gm = static_cast<acc_t>(RG[u]);
          const bool valid = m >= 0 && m < C;
          acc_t inv_p;
          const acc_t t_m = grad_term(window_s<SIZE>(A, p), A[LO], gm, p, inv_p);
          const acc_t t = valid ? t_m : acc_t(0);
#pragma unroll
          for (int w = 0; w + 1 < SIZE; ++w) T[w] = T[w + 1];
          T[SIZE - 1] = t;
#pragma unroll
          for (int w = 0; w < LO; ++w) D[w] = D[w + 1];
          D[LO] = mul_rn(gm, inv_p);
          const int j = m - LO;
          if (j >= c0) {  // and j < c1 since m < c1 + LO
            acc_t sum_t = acc_t(0);
#pragma unroll
            for (int w = 0; w < SIZE; ++w) sum_t = add_rn(sum_t, T[w]);
            acc_t d = grad_x(A[0], D[0], sum_t, p);
            if (!finite(d)) {
              d = lrn_input_grad_repaired(
                  d, j, p,
                  [&](int64_t c) { return static_cast<double>(act(static_cast<acc_t>(xp[c * S]), p.apply_relu)); },
                  [&](int64_t i) { return static_cast<double>(static_cast<acc_t>(gp[i * S])); });
            }
            dp[static_cast<int64_t>(j) * S] = static_cast<scalar_t>(d);
          }
#pragma unroll
          for (int w = 0; w + 1 < SIZE; ++w) A[w] = A[w + 1];
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Direct kernels: one thread per element, flat memory offset e (both layouts
// are dense, so e runs over [0, numel) in memory order). The channel of e is
// (e / stride_c) % C in both layouts (channels-first: stride_c = S;
// channels-last: stride_c = 1; C == 1: always 0), channel j of the same
// (n, s) is at e + (j - c) * stride_c.

template <typename scalar_t, int SIZE, typename index_t>
__global__ void __launch_bounds__(kThreads)
    relu_lrn_forward_direct_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ out, index_t numel,
                                   index_t stride_c, const LrnParams<at::opmath_type<scalar_t>> p) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t e64 = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e64 >= static_cast<int64_t>(numel)) return;
  const index_t e = static_cast<index_t>(e64);
  const int C = p.channels;
  const int c = static_cast<int>((e / stride_c) % C);
  const scalar_t* __restrict__ xp = x + (e - static_cast<index_t>(c) * stride_c);
  auto a_of = [&](int j) { return act(static_cast<acc_t>(xp[static_cast<index_t>(j) * stride_c]), p.apply_relu); };

  acc_t sv;
  acc_t a_c;
  if constexpr (SIZE > 0) {
    constexpr int LO = SIZE / 2;
    acc_t A[SIZE];  // A[w] = a_{c - LO + w}: the window W(c)
#pragma unroll
    for (int w = 0; w < SIZE; ++w) A[w] = load_act<acc_t>(xp, c - LO + w, C, stride_c, p.apply_relu);
    sv = window_s<SIZE>(A, p);
    a_c = A[LO];
  } else {
    sv = clipped_window_s(c, p, a_of);
    a_c = a_of(c);
  }
  acc_t b = div_rn(a_c, pow_beta(sv, p));
  if (!finite(b)) {
    b = lrn_output_repaired(b, c, p, [&](int64_t m) { return static_cast<double>(a_of(static_cast<int>(m))); });
  }
  out[e] = static_cast<scalar_t>(b);
}

template <typename scalar_t, int SIZE, typename index_t>
__global__ void __launch_bounds__(kThreads)
    relu_lrn_backward_direct_kernel(const scalar_t* __restrict__ g, const scalar_t* __restrict__ x,
                                    scalar_t* __restrict__ dx, index_t numel, index_t stride_c,
                                    const LrnParams<at::opmath_type<scalar_t>> p) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t e64 = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e64 >= static_cast<int64_t>(numel)) return;
  const index_t e = static_cast<index_t>(e64);
  const int C = p.channels;
  const int j = static_cast<int>((e / stride_c) % C);  // this thread's channel
  const index_t pix = e - static_cast<index_t>(j) * stride_c;
  const scalar_t* __restrict__ xp = x + pix;
  const scalar_t* __restrict__ gp = g + pix;
  auto a_of = [&](int m) { return act(static_cast<acc_t>(xp[static_cast<index_t>(m) * stride_c]), p.apply_relu); };
  auto g_of = [&](int i) { return static_cast<acc_t>(gp[static_cast<index_t>(i) * stride_c]); };

  const LrnGradSums<acc_t> r = lrn_grad_sums<SIZE, /*kPreloadG=*/true>(j, p, a_of, g_of);
  acc_t d = grad_x(r.a_j, r.d_j, r.sum_t, p);
  if (!finite(d)) {
    d = lrn_input_grad_repaired(
        d, j, p, [&](int64_t m) { return static_cast<double>(a_of(static_cast<int>(m))); },
        [&](int64_t i) { return static_cast<double>(g_of(static_cast<int>(i))); });
  }
  dx[e] = static_cast<scalar_t>(d);
}

// ---------------------------------------------------------------------------
// Launch plan (host).

enum class LrnVariant { kChannelsFirst5, kDirect5, kDirectGeneral };

struct LrnPlan {
  LrnVariant variant;
  bool index32;      // direct kernels: int32 indices
  int64_t total;     // threads' items: N * chunks * S (channels-first) or numel
  int64_t chunks;    // channels-first: channel chunks per column, of
  int chunk_len;     //   chunk_len channels each
  dim3 grid, block;
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The channels-first register kernels pay off when a warp's 32 threads cover
// 32 consecutive spatial positions; with tiny S the direct kernel (whose warps
// span several channels of the same pixels) coalesces better.
inline LrnPlan plan_relu_lrn(const ChannelShape& v, int64_t size, const PlanOverrides& overrides) {
  LrnPlan plan{};
  const int64_t numel = v.batch * v.channels * v.spatial;
  plan.block = dim3(kThreads);
  plan.chunks = 1;
  plan.chunk_len = static_cast<int>(v.channels);
  if (size == 5 && v.stride_channel == v.spatial && v.spatial >= 32) {
    plan.variant = LrnVariant::kChannelsFirst5;
    const int64_t C = v.channels;
    const int64_t columns = v.batch * v.spatial;
    const int64_t max_chunks = std::max<int64_t>(1, C / kMinChunk);
    int64_t want = std::clamp<int64_t>(ceil_div(kTargetThreads, columns), 1, max_chunks);
    if (overrides.channel_chunks > 0) want = std::min<int64_t>(overrides.channel_chunks, C);
    plan.chunk_len = static_cast<int>(ceil_div(C, want));
    plan.chunks = ceil_div(C, plan.chunk_len);  // every chunk starts below C
    plan.total = columns * plan.chunks;
    plan.grid = dim3(static_cast<unsigned>(std::min<int64_t>(ceil_div(plan.total, kThreads), kMaxBlocks)));
    plan.index32 = false;
    return plan;
  }
  plan.variant = size == 5 ? LrnVariant::kDirect5 : LrnVariant::kDirectGeneral;
  plan.index32 = numel <= INT32_MAX && !overrides.force_index64;
  plan.total = numel;
  plan.grid = dim3(static_cast<unsigned>(ceil_div(numel, kThreads)));
  return plan;
}

// ---------------------------------------------------------------------------
// Variant dispatch through the launcher (CudaLauncher, host::HostLauncher).

// Calls f(std::integral_constant<int, SIZE>{}, TypeTag<index_t>{}) for a direct
// plan: SIZE 5 or 0 (runtime size), index_t int32 or int64.
template <typename F>
void with_direct_variant(const LrnPlan& plan, const F& f) {
  using Five = std::integral_constant<int, 5>;
  using Any = std::integral_constant<int, 0>;
  const bool five = plan.variant == LrnVariant::kDirect5;
  if (five && plan.index32) {
    f(Five{}, TypeTag<int32_t>{});
  } else if (five) {
    f(Five{}, TypeTag<int64_t>{});
  } else if (plan.index32) {
    f(Any{}, TypeTag<int32_t>{});
  } else {
    f(Any{}, TypeTag<int64_t>{});
  }
}

template <typename scalar_t, typename Launcher>
void launch_relu_lrn_forward(const Launcher& launcher, const LrnPlan& plan, const ChannelShape& v,
                             const scalar_t* x, scalar_t* out, const LrnParams<at::opmath_type<scalar_t>>& p) {
  if (plan.variant == LrnVariant::kChannelsFirst5) {
    launcher.template launch<kThreads>(relu_lrn_forward_cf_kernel<scalar_t, 5>, plan.grid, plan.block, x, out,
                                       plan.total, v.spatial, plan.chunks, plan.chunk_len, p);
    return;
  }
  auto run = [&](auto size, auto index) {
    constexpr int SIZE = decltype(size)::value;
    using index_t = typename decltype(index)::type;
    launcher.template launch<kThreads>(relu_lrn_forward_direct_kernel<scalar_t, SIZE, index_t>, plan.grid,
                                       plan.block, x, out, static_cast<index_t>(plan.total),
                                       static_cast<index_t>(v.stride_channel), p);
  };
  with_direct_variant(plan, run);
}

template <typename scalar_t, typename Launcher>
void launch_relu_lrn_backward(const Launcher& launcher, const LrnPlan& plan, const ChannelShape& v,
                              const scalar_t* g, const scalar_t* x, scalar_t* dx,
                              const LrnParams<at::opmath_type<scalar_t>>& p) {
  if (plan.variant == LrnVariant::kChannelsFirst5) {
    launcher.template launch<kThreads>(relu_lrn_backward_cf_kernel<scalar_t, 5>, plan.grid, plan.block, g, x, dx,
                                       plan.total, v.spatial, plan.chunks, plan.chunk_len, p);
    return;
  }
  auto run = [&](auto size, auto index) {
    constexpr int SIZE = decltype(size)::value;
    using index_t = typename decltype(index)::type;
    launcher.template launch<kThreads>(relu_lrn_backward_direct_kernel<scalar_t, SIZE, index_t>, plan.grid,
                                       plan.block, g, x, dx, static_cast<index_t>(plan.total),
                                       static_cast<index_t>(v.stride_channel), p);
  };
  with_direct_variant(plan, run);
}

}  // namespace alexnet_fast::relu_lrn_cuda
