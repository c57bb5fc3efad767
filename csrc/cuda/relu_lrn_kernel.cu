// CUDA kernels of the fused ReLU + Local Response Normalization (forward and
// backward), registered for the CUDA dispatch key of the `alexnet_fast` ops.
//
// Math (PyTorch's F.local_response_norm(relu(x)) exactly, see the contract):
//   a_c = relu(x_c) if apply_relu else x_c          (relu(NaN) = NaN)
//   s_c = k + alpha/size * sum_{j in W(c)} a_j^2,    W(c) = [c - lo, c + hi]
//   b_c = a_c * s_c^-beta
// with lo = size/2, hi = (size-1)/2 and every window clipped to [0, C).
// Backward (recomputes s from x, never stores it):
//   dx_j = relu'(x_j) * (g_j s_j^-beta
//                        - (2 alpha beta / size) a_j sum_{i in W'(j)} t_i)
//   t_i  = g_i a_i s_i^(-beta-1) = g_i * (b_i / s_i)
//   W'(j) = [j - hi, j + lo]   (the i whose W(i) contains j: i-lo <= j <= i+hi)
// relu'(x) = 0 when x <= 0 (NaN passes the gradient); that is exactly a == 0
// when apply_relu, because relu maps x <= 0 to 0 and keeps x > 0 (nonzero).
//
// Window sums are always summed term by term (never a running add/subtract,
// which would smear a NaN/inf into every later channel). Every kernel below
// evaluates the same expression tree in the same order with explicitly
// rounded intrinsics (__fadd_rn, __fmaf_rn, ...; no compiler contraction, and
// immune to --use_fast_math for + - * / sqrt), and out-of-range window terms
// contribute an exact +0 (0*0 + acc == acc, acc + 0 == acc for acc != -0; the
// sums start at +0 and can never become -0). So the channels-first and
// channels-last paths, and the size==5 and general paths, give bitwise equal
// results for the same values, and results are bitwise repeatable (no atomics).
//
// Kernels:
//  * relu_lrn_{forward,backward}_cf_kernel<SIZE> (channels-first, stride_s = 1,
//    S >= 32, compile-time SIZE; instantiated for AlexNet's size 5): one thread
//    per (n, channel chunk, spatial position), consecutive threads on
//    consecutive spatial positions (coalesced), marching over the channels of
//    its chunk with the window in registers (each x/g element loaded once per
//    thread, plus a halo of SIZE-1 (forward) / 2*(SIZE-1) (backward) channels
//    per chunk). Loads are issued kUnroll steps at a time so that several are
//    in flight per thread. Channels are split into chunks only when N*S alone
//    gives too few threads to fill the GPU.
//  * relu_lrn_{forward,backward}_direct_kernel<SIZE, index_t>: one thread per
//    element in memory order (coalesced in both layouts), reading its window
//    directly (neighbouring channels are neighbouring threads in channels-last,
//    so the re-reads hit L1). SIZE > 0: unrolled register window (forward SIZE
//    loads, backward 2*SIZE-1 x + SIZE g loads); SIZE == 0: runtime size,
//    forward O(size), backward O(size^2) loads (fine for the small sizes LRN
//    uses; window lengths are clipped to C). index_t = int32 when numel fits.
//
// Precision: load/store in the storage type, compute in at::opmath_type
// (float for float/half/bfloat16, double for double).

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "channel_layout.h"
#include "lrn_math.cuh"

namespace alexnet_fast {
namespace {

constexpr int kThreads = 256;
// Channel-loop steps whose loads are issued together (loads in flight/thread).
constexpr int kUnroll = 4;
// Channels-first kernels: aim for at least this many threads (H100: 132 SMs x
// 2048 resident threads ~ 270k) before splitting the channel loop into chunks,
// and never make a chunk shorter than kMinChunk channels (halo overhead).
constexpr int64_t kTargetThreads = int64_t{1} << 18;
constexpr int64_t kMinChunk = 16;
// Grid-stride kernels never launch more blocks than this.
constexpr int64_t kMaxBlocks = int64_t{1} << 20;

// a_c, or 0 when channel c lies outside [0, C) (a clipped window term).
template <typename acc_t, typename scalar_t, typename index_t>
__device__ __forceinline__ acc_t load_act(const scalar_t* __restrict__ p, int c,
                                          int C, index_t stride_c, bool apply_relu) {
  if (c < 0 || c >= C) return acc_t(0);
  return act(static_cast<acc_t>(p[static_cast<index_t>(c) * stride_c]), apply_relu);
}

// dx_j from a_j, d_j = g_j s_j^-beta and sum_t = sum_{i in W'(j)} t_i.
// The relu mask is a select, not a product: PyTorch's threshold_backward
// gives 0 there even when the rest is inf/NaN.
template <typename acc_t>
__device__ __forceinline__ acc_t grad_x(acc_t a_j, acc_t d_j, acc_t sum_t,
                                        const LrnParams<acc_t>& p) {
  if (p.apply_relu && a_j == acc_t(0)) return acc_t(0);
  return fma_rn(mul_rn(p.neg_two_ab_over_size, a_j), sum_t, d_j);
}

// ============================================================================
// Channels-first (N, C, S), stride_s = 1: register window marching over C.
// Thread -> (n, chunk, s) with s fastest; channel c of the thread's column is
// at base + c * S with base = n * C * S + s.
// ============================================================================

// Forward. State at channel c: A[w] = a_{c - LO + w}, w in [0, SIZE), so
// A[LO] = a_c and A covers W(c) = [c - LO, c + HI] (SIZE - 1 - LO == HI).
template <typename scalar_t, int SIZE>
__global__ void __launch_bounds__(kThreads) relu_lrn_forward_cf_kernel(
    const scalar_t* __restrict__ x, scalar_t* __restrict__ out, int64_t total,
    int64_t S, int64_t chunks, int chunk_len,
    const LrnParams<at::opmath_type<scalar_t>> p) {
  using acc_t = at::opmath_type<scalar_t>;
  static_assert(SIZE >= 1, "window size must be positive");
  constexpr int LO = SIZE / 2;
  constexpr int HI = (SIZE - 1) / 2;
  const int C = p.channels;
  const int64_t CS = static_cast<int64_t>(C) * S;
  const scalar_t zero = static_cast<scalar_t>(0.0f);

  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       idx < total; idx += static_cast<int64_t>(blockDim.x) * gridDim.x) {
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
    for (int w = 0; w + 1 < SIZE; ++w)
      A[w] = load_act<acc_t>(xp, c0 - LO + w, C, S, p.apply_relu);

    for (int cb = c0; cb < c1; cb += kUnroll) {
      // Issue the kUnroll loads first (raw storage values, not yet
      // converted, so none of them waits for another).
      scalar_t R[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int ch = cb + u + HI;  // newest window term of channel cb + u
        R[u] = (cb + u < c1 && ch < C) ? xp[ch * S] : zero;
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int c = cb + u;
        if (c < c1) {
          A[SIZE - 1] = act(static_cast<acc_t>(R[u]), p.apply_relu);
          const acc_t sv = window_s<SIZE>(A, p);
          op[c * S] =
              static_cast<scalar_t>(div_rn(A[LO], pow_beta(sv, p.beta, p.beta_is_075)));
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
__global__ void __launch_bounds__(kThreads) relu_lrn_backward_cf_kernel(
    const scalar_t* __restrict__ g, const scalar_t* __restrict__ x,
    scalar_t* __restrict__ dx, int64_t total, int64_t S, int64_t chunks,
    int chunk_len, const LrnParams<at::opmath_type<scalar_t>> p) {
  using acc_t = at::opmath_type<scalar_t>;
  static_assert(SIZE >= 1, "window size must be positive");
  constexpr int LO = SIZE / 2;
  constexpr int HI = (SIZE - 1) / 2;
  const int C = p.channels;
  const int64_t CS = static_cast<int64_t>(C) * S;
  const scalar_t zero = static_cast<scalar_t>(0.0f);

  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       idx < total; idx += static_cast<int64_t>(blockDim.x) * gridDim.x) {
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
    for (int w = 0; w + 1 < SIZE; ++w)
      A[w] = load_act<acc_t>(xp, m_begin - LO + w, C, S, p.apply_relu);

    for (int mb = m_begin; mb < m_end; mb += kUnroll) {
      scalar_t RX[kUnroll];
      scalar_t RG[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int m = mb + u;
        const int chx = m + HI;  // newest window term of s_m
        RX[u] = (m < m_end && chx >= 0 && chx < C) ? xp[chx * S] : zero;
        RG[u] = (m < m_end && m >= 0 && m < C) ? gp[m * S] : zero;
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
            dp[j * S] = static_cast<scalar_t>(grad_x(A[0], D[0], sum_t, p));
          }
#pragma unroll
          for (int w = 0; w + 1 < SIZE; ++w) A[w] = A[w + 1];
        }
      }
    }
  }
}

// ============================================================================
// Direct kernels: one thread per element, flat memory offset e (both layouts
// are dense, so e runs over [0, numel) in memory order). The channel of e is
// (e / stride_c) % C in both layouts (channels-first: stride_c = S;
// channels-last: stride_c = 1; C == 1: always 0), channel j of the same
// (n, s) is at e + (j - c) * stride_c.
// ============================================================================

template <typename scalar_t, int SIZE, typename index_t>
__global__ void __launch_bounds__(kThreads) relu_lrn_forward_direct_kernel(
    const scalar_t* __restrict__ x, scalar_t* __restrict__ out, index_t numel,
    index_t stride_c, const LrnParams<at::opmath_type<scalar_t>> p) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t e64 = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e64 >= static_cast<int64_t>(numel)) return;
  const index_t e = static_cast<index_t>(e64);
  const int C = p.channels;
  const int c = static_cast<int>((e / stride_c) % C);
  const scalar_t* __restrict__ xp = x + (e - static_cast<index_t>(c) * stride_c);

  acc_t sv;
  acc_t a_c;
  if constexpr (SIZE > 0) {
    constexpr int LO = SIZE / 2;
    acc_t A[SIZE];  // A[w] = a_{c - LO + w}: the window W(c)
#pragma unroll
    for (int w = 0; w < SIZE; ++w)
      A[w] = load_act<acc_t>(xp, c - LO + w, C, stride_c, p.apply_relu);
    sv = window_s<SIZE>(A, p);
    a_c = A[LO];
  } else {
    sv = clipped_window_s(c, p, [&](int j) {
      return act(static_cast<acc_t>(xp[j * stride_c]), p.apply_relu);
    });
    a_c = act(static_cast<acc_t>(x[e]), p.apply_relu);
  }
  out[e] = static_cast<scalar_t>(div_rn(a_c, pow_beta(sv, p.beta, p.beta_is_075)));
}

template <typename scalar_t, int SIZE, typename index_t>
__global__ void __launch_bounds__(kThreads) relu_lrn_backward_direct_kernel(
    const scalar_t* __restrict__ g, const scalar_t* __restrict__ x,
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

  const LrnGradSums<acc_t> r = lrn_grad_sums<SIZE, /*kPreloadG=*/true>(
      j, p,
      [&](int m) {
        return act(static_cast<acc_t>(xp[static_cast<index_t>(m) * stride_c]), p.apply_relu);
      },
      [&](int i) { return static_cast<acc_t>(gp[i * stride_c]); });
  dx[e] = static_cast<scalar_t>(grad_x(r.a_j, r.d_j, r.sum_t, p));
}

// ============================================================================
// Host side
// ============================================================================

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void check_x(const char* op, const at::Tensor& x, int64_t size) {
  TORCH_CHECK(x.is_cuda(), op, ": x must be a CUDA tensor, got device ", x.device());
  TORCH_CHECK(size >= 1, op, ": size must be >= 1, got ", size);
  TORCH_CHECK(x.dim() >= 3, op, ": x must have at least 3 dims (N, C, *), got ",
              x.dim(), " dims with shape ", x.sizes());
  check_dtype(op, "x", x);
}

// The channels-first register kernels pay off when a warp's 32 threads cover
// 32 consecutive spatial positions; with tiny S the direct kernel (whose warps
// span several channels of the same pixels) coalesces better.
bool use_channels_first_kernel(const ChannelView& v, int64_t size) {
  return size == 5 && v.stride_spatial == 1 && v.spatial >= 32;
}

struct CfLaunch {
  int64_t total;  // N * chunks * S threads
  int64_t chunks;
  int chunk_len;
  int64_t blocks;
};

CfLaunch plan_channels_first(const ChannelView& v) {
  const int64_t C = v.channels;
  const int64_t columns = v.batch * v.spatial;
  const int64_t max_chunks = std::max<int64_t>(1, C / kMinChunk);
  const int64_t want = std::clamp<int64_t>(ceil_div(kTargetThreads, columns), 1, max_chunks);
  CfLaunch l;
  l.chunk_len = static_cast<int>(ceil_div(C, want));
  l.chunks = ceil_div(C, l.chunk_len);  // every chunk starts below C
  l.total = columns * l.chunks;
  l.blocks = std::min<int64_t>(ceil_div(l.total, kThreads), kMaxBlocks);
  return l;
}

void check_view(const char* op, const ChannelView& v) {
  check_channels(op, v.channels);
  const int64_t numel = v.batch * v.channels * v.spatial;
  TORCH_CHECK(ceil_div(numel, kThreads) <= INT_MAX, op, ": tensor too large (",
              numel, " elements)");
}

template <typename scalar_t>
void launch_forward(const scalar_t* x, scalar_t* out, const ChannelView& v,
                    int64_t size, const LrnParams<at::opmath_type<scalar_t>>& p,
                    cudaStream_t stream) {
  if (use_channels_first_kernel(v, size)) {
    const CfLaunch l = plan_channels_first(v);
    relu_lrn_forward_cf_kernel<scalar_t, 5>
        <<<static_cast<unsigned>(l.blocks), kThreads, 0, stream>>>(
            x, out, l.total, v.spatial, l.chunks, l.chunk_len, p);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
  const int64_t numel = v.batch * v.channels * v.spatial;
  const unsigned blocks = static_cast<unsigned>(ceil_div(numel, kThreads));
  const bool idx32 = numel <= INT32_MAX;
  if (size == 5) {
    if (idx32) {
      relu_lrn_forward_direct_kernel<scalar_t, 5, int32_t><<<blocks, kThreads, 0, stream>>>(
          x, out, static_cast<int32_t>(numel), static_cast<int32_t>(v.stride_channel), p);
    } else {
      relu_lrn_forward_direct_kernel<scalar_t, 5, int64_t><<<blocks, kThreads, 0, stream>>>(
          x, out, numel, v.stride_channel, p);
    }
  } else {
    if (idx32) {
      relu_lrn_forward_direct_kernel<scalar_t, 0, int32_t><<<blocks, kThreads, 0, stream>>>(
          x, out, static_cast<int32_t>(numel), static_cast<int32_t>(v.stride_channel), p);
    } else {
      relu_lrn_forward_direct_kernel<scalar_t, 0, int64_t><<<blocks, kThreads, 0, stream>>>(
          x, out, numel, v.stride_channel, p);
    }
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t>
void launch_backward(const scalar_t* g, const scalar_t* x, scalar_t* dx,
                     const ChannelView& v, int64_t size,
                     const LrnParams<at::opmath_type<scalar_t>>& p,
                     cudaStream_t stream) {
  if (use_channels_first_kernel(v, size)) {
    const CfLaunch l = plan_channels_first(v);
    relu_lrn_backward_cf_kernel<scalar_t, 5>
        <<<static_cast<unsigned>(l.blocks), kThreads, 0, stream>>>(
            g, x, dx, l.total, v.spatial, l.chunks, l.chunk_len, p);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
  const int64_t numel = v.batch * v.channels * v.spatial;
  const unsigned blocks = static_cast<unsigned>(ceil_div(numel, kThreads));
  const bool idx32 = numel <= INT32_MAX;
  if (size == 5) {
    if (idx32) {
      relu_lrn_backward_direct_kernel<scalar_t, 5, int32_t><<<blocks, kThreads, 0, stream>>>(
          g, x, dx, static_cast<int32_t>(numel), static_cast<int32_t>(v.stride_channel), p);
    } else {
      relu_lrn_backward_direct_kernel<scalar_t, 5, int64_t><<<blocks, kThreads, 0, stream>>>(
          g, x, dx, numel, v.stride_channel, p);
    }
  } else {
    if (idx32) {
      relu_lrn_backward_direct_kernel<scalar_t, 0, int32_t><<<blocks, kThreads, 0, stream>>>(
          g, x, dx, static_cast<int32_t>(numel), static_cast<int32_t>(v.stride_channel), p);
    } else {
      relu_lrn_backward_direct_kernel<scalar_t, 0, int64_t><<<blocks, kThreads, 0, stream>>>(
          g, x, dx, numel, v.stride_channel, p);
    }
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

at::Tensor relu_lrn_forward_cuda(const at::Tensor& x, int64_t size, double alpha,
                                 double beta, double k, bool apply_relu) {
  constexpr const char* op = "relu_lrn_forward";
  check_x(op, x, size);
  c10::cuda::CUDAGuard device_guard(x.device());

  ChannelView view;
  const at::Tensor xv = as_channel_view(x, view);  // x, or a contiguous copy
  at::Tensor out = at::empty_like(xv);              // same strides as xv
  if (out.numel() == 0) return out;
  check_view(op, view);

  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16, xv.scalar_type(),
      "relu_lrn_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const auto p = make_params<acc_t>(view.channels, size, alpha, beta, k, apply_relu);
        launch_forward<scalar_t>(xv.const_data_ptr<scalar_t>(),
                                 out.mutable_data_ptr<scalar_t>(), view, size, p,
                                 stream);
      });
  return out;
}

at::Tensor relu_lrn_backward_cuda(const at::Tensor& grad_out, const at::Tensor& x,
                                  int64_t size, double alpha, double beta, double k,
                                  bool apply_relu) {
  constexpr const char* op = "relu_lrn_backward";
  check_x(op, x, size);
  TORCH_CHECK(grad_out.is_cuda(), op, ": grad_out must be a CUDA tensor, got device ",
              grad_out.device());
  TORCH_CHECK(grad_out.device() == x.device(), op, ": grad_out is on ",
              grad_out.device(), " but x is on ", x.device());
  TORCH_CHECK(grad_out.sizes() == x.sizes(), op, ": grad_out shape ", grad_out.sizes(),
              " must equal x shape ", x.sizes());
  TORCH_CHECK(grad_out.scalar_type() == x.scalar_type(), op, ": grad_out dtype ",
              grad_out.scalar_type(), " must equal x dtype ", x.scalar_type());
  c10::cuda::CUDAGuard device_guard(x.device());

  ChannelView view;
  const at::Tensor xv = as_channel_view(x, view);
  // Any incoming layout (expanded, sliced, other memory format) -> xv's.
  const at::Tensor gv = same_layout_as(grad_out, xv);
  at::Tensor grad_in = at::empty_like(xv);
  if (grad_in.numel() == 0) return grad_in;
  check_view(op, view);

  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16, xv.scalar_type(),
      "relu_lrn_backward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const auto p = make_params<acc_t>(view.channels, size, alpha, beta, k, apply_relu);
        launch_backward<scalar_t>(gv.const_data_ptr<scalar_t>(),
                                  xv.const_data_ptr<scalar_t>(),
                                  grad_in.mutable_data_ptr<scalar_t>(), view, size, p,
                                  stream);
      });
  return grad_in;
}

}  // namespace alexnet_fast

TORCH_LIBRARY_IMPL(alexnet_fast, CUDA, m) {
  m.impl("relu_lrn_forward", TORCH_FN(alexnet_fast::relu_lrn_forward_cuda));
  m.impl("relu_lrn_backward", TORCH_FN(alexnet_fast::relu_lrn_backward_cuda));
}
