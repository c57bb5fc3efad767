// CUDA kernels of the fused ReLU + LRN + max-pool operator (AlexNet's conv1 /
// conv2 blocks): alexnet_fast::relu_lrn_max_pool2d_forward / _backward.
//
//   out = F.max_pool2d(F.local_response_norm(relu(x), size, alpha, beta, k),
//                      kernel_size, stride, padding, ceil_mode=ceil_mode)
//   (dilation 1), on (N, C, H, W) input, without writing the LRN output.
//
// LRN math (exactly as csrc/cuda/relu_lrn_kernel.cu: the same helpers from
// lrn_math.cuh, same expression trees, same explicitly rounded intrinsics, so
// the LRN value b is bitwise equal to what relu_lrn_forward would produce
// before its storage rounding):
//   a_c = relu(x_c) = (x_c <= 0 ? 0 : x_c)         (relu(NaN) = NaN)
//   s_c = k + alpha/size * sum_{j in W(c)} a_j^2,    W(c) = [c - lo, c + hi]
//   b_c = a_c / s_c^beta
// lo = size/2, hi = (size-1)/2, windows clipped to [0, C); the window sum is
// summed term by term in channel order (never a running add/subtract).
//
// Max-pool rule (PyTorch's, as csrc/cuda/max_pool2d_kernel.cu): window of
// output (oh, ow) is ih = oh*sH - pH + i, iw = ow*sW - pW + j (i < kH,
// j < kW); out-of-bounds taps are padding (never selected); maxval = -inf,
// maxpos = first in-bounds tap; taps in row-major order; update when
// (v > maxval) || isnan(v). argmax = i*kW + j (uint8 when kH*kW <= 256, else
// int32), written only when need_argmax.
//
// Rounding choice (the contract asks to document it): the max is taken over
// the fp32 LRN values (float64 for double), NOT over the values rounded to
// the storage type; the winning value is rounded to the storage type once.
// Rounding is monotonic, so `out` equals max over the rounded values (the
// unfused relu_lrn -> max_pool2d result) bit for bit; only for fp16/bf16 can
// the argmax differ, when two taps differ in fp32 but round to the same
// half/bfloat16 value (the fused op then points at the truly larger one).
// For float32/float64 out and argmax equal the unfused CUDA ops' exactly.
//
// Backward (a gather, no atomics, no zero-fill, bitwise repeatable): one
// thread per input element (n, c, ih, iw):
//   g_i = sum over the windows (oh, ow) containing (ih, iw) whose argmax
//         points at it of grad_out[n, i, oh, ow]   (increasing (oh, ow)
//         order, fp32 / float64, from +0: max_pool2d_backward's order), for
//         every channel i of the mirrored window W'(c) = [c - hi, c + lo];
//   dx_c = relu'(x_c) * (g_c s_c^-beta
//                        - (2 alpha beta / size) a_c sum_{i in W'(c)} t_i),
//   t_i  = g_i * (b_i / s_i),  s_i recomputed from x (channels
//          [c - (size-1), c + (size-1)]),  relu'(x) = 0 iff x <= 0 (a == 0).
// g_i is kept in fp32 (not rounded to the storage type as the unfused
// max_pool2d_backward -> relu_lrn_backward chain would do): for float32 /
// float64 dx is bitwise the unfused CUDA chain's, for fp16/bf16 it is at
// least as accurate.
//
// Layouts: the format is x.suggest_memory_format() (as PyTorch's max_pool2d
// and kernels/layout.py pool_is_channels_last); NCHW and NHWC natively, x
// copied only when not dense in that format. out/argmax and dx take that
// format; argmax and grad_out are brought to it in the backward (no copy when
// they already match, which is the case for an argmax from the forward).
//
// Kernels (one thread per output / input element, grid-stride):
//   consecutive threads on consecutive elements of the innermost dim (ow/iw
//   for NCHW, c for NHWC), so the stores coalesce and, in NHWC, the channel
//   window loads of neighbouring threads overlap in L1.
//   Template fast path: size 5 (register window, unrolled) x 3x3 / stride 2
//   (compile-time window); general runtime loops otherwise. Flat indices are
//   split with magic-number division when everything fits 32 bits.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>
#include <type_traits>

#include "lrn_math.cuh"
#include "pool_common.cuh"

namespace alexnet_fast {
namespace {

constexpr int kThreads = 256;
// Grid-stride kernels never launch more blocks than this.
constexpr int64_t kMaxBlocks = int64_t{1} << 20;

// ---------------------------------------------------------------------------
// Device helpers (the shared ones are in lrn_math.cuh and pool_common.cuh)
// ---------------------------------------------------------------------------

// a_ch = relu(x[ch]) at one pixel (px points at channel 0 of it), or 0 when
// ch lies outside [0, C): a clipped window term, which adds an exact +0.
template <typename acc_t, typename scalar_t, typename off_t>
__device__ __forceinline__ acc_t load_act(const scalar_t* __restrict__ px, int ch, int C,
                                          off_t stride_c) {
  if (ch < 0 || ch >= C) return acc_t(0);
  return relu(static_cast<acc_t>(load_ro(px + static_cast<off_t>(ch) * stride_c)));
}

// off_t: signed type of memory offsets and coordinates for the flat index
// type index_t (DivMod<index_t>, pool_common.cuh): int for uint32_t, else
// int64_t.
template <typename index_t>
using off_type = std::conditional_t<std::is_same_v<index_t, uint32_t>, int, int64_t>;

// Shapes, window and element strides of x (H x W plane) and of out / argmax /
// grad_out (OH x OW plane), all dense in the chosen memory format:
//   NCHW: sN = C*H*W, sC = H*W, sH = W, sW = 1
//   NHWC: sN = H*W*C, sC = 1,   sH = W*C, sW = C
template <typename off_t>
struct Geom {
  off_t C, H, W, OH, OW;
  off_t kH, kW, sH, sW, pH, pW;
  off_t xsN, xsC, xsH, xsW;
  off_t osN, osC, osH, osW;
};

// b_c at one pixel: px points at channel 0 of x at (n, ih, iw).
// SIZE > 0: compile-time window, A[w] = a_{c - LO + w} (out-of-range terms
// are exact zeros); SIZE == 0: runtime size, window clipped to [0, C).
// Both give the same bits (as in relu_lrn_kernel.cu's direct kernel).
template <int SIZE, typename acc_t, typename scalar_t, typename off_t>
__device__ __forceinline__ acc_t lrn_value(const scalar_t* __restrict__ px, int c,
                                           off_t stride_c, const LrnParams<acc_t>& p) {
  const int C = p.channels;
  acc_t sv;
  acc_t a_c;
  if constexpr (SIZE > 0) {
    constexpr int LO = SIZE / 2;
    acc_t A[SIZE];
#pragma unroll
    for (int w = 0; w < SIZE; ++w) A[w] = load_act<acc_t>(px, c - LO + w, C, stride_c);
    sv = window_s<SIZE>(A, p);
    a_c = A[LO];
  } else {
    auto a_of = [&](int j) {
      return relu(static_cast<acc_t>(load_ro(px + static_cast<off_t>(j) * stride_c)));
    };
    sv = clipped_window_s(c, p, a_of);
    a_c = a_of(c);
  }
  return div_rn(a_c, pow_beta(sv, p.beta, p.beta_is_075));
}

// ---------------------------------------------------------------------------
// Forward: one thread per pooled output element o (dense in the format):
//   NCHW: o = ((n*C + c)*OH + oh)*OW + ow   (div0 = OW, div1 = OH, div2 = C)
//   NHWC: o = ((n*OH + oh)*OW + ow)*C + c   (div0 = C, div1 = OW, div2 = OH)
// K3S2: kernel 3x3 / stride 2 as compile-time constants (padding runtime).
// ---------------------------------------------------------------------------
template <typename scalar_t, typename arg_t, bool kWriteArg, bool kChannelsLast, int SIZE,
          bool K3S2, typename index_t>
__global__ void __launch_bounds__(kThreads)
    relu_lrn_max_pool2d_fwd_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ out,
                                   arg_t* __restrict__ argmax,
                                   const Geom<off_type<index_t>> g,
                                   const LrnParams<at::opmath_type<scalar_t>> p,
                                   const index_t total, const DivMod<index_t> div0,
                                   const DivMod<index_t> div1, const DivMod<index_t> div2) {
  using acc_t = at::opmath_type<scalar_t>;
  using off_t = off_type<index_t>;
  const off_t kH = K3S2 ? 3 : g.kH;
  const off_t kW = K3S2 ? 3 : g.kW;
  const off_t sH = K3S2 ? 2 : g.sH;
  const off_t sW = K3S2 ? 2 : g.sW;
  const index_t step = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t o = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total;
       o += step) {
    index_t n, c, oh, ow, q, q2;
    if constexpr (kChannelsLast) {
      div0.divmod(o, q, c);
      div1.divmod(q, q2, ow);
      div2.divmod(q2, n, oh);
    } else {
      div0.divmod(o, q, ow);
      div1.divmod(q, q2, oh);
      div2.divmod(q2, n, c);
    }
    const int ci = static_cast<int>(c);
    const off_t ih0 = static_cast<off_t>(oh) * sH - g.pH;
    const off_t iw0 = static_cast<off_t>(ow) * sW - g.pW;
    // First in-bounds tap (dilation 1): i0 = max(0, -ih0).
    const off_t i0 = ih0 < 0 ? -ih0 : 0;
    const off_t j0 = iw0 < 0 ? -iw0 : 0;
    const scalar_t* __restrict__ xn = x + static_cast<off_t>(n) * g.xsN;

    acc_t m = static_cast<acc_t>(-INFINITY);
    off_t pos = i0 * kW + j0;
    // Every tap of the window in row-major order; padding taps skipped. (For
    // K3S2 both loops unroll fully; the bounds tests are the only branches.)
#pragma unroll
    for (off_t i = 0; i < kH; ++i) {
      const off_t ih = ih0 + i;
      if (ih < 0 || ih >= g.H) continue;
#pragma unroll
      for (off_t j = 0; j < kW; ++j) {
        const off_t iw = iw0 + j;
        if (iw < 0 || iw >= g.W) continue;
        const acc_t v = lrn_value<SIZE>(xn + ih * g.xsH + iw * g.xsW, ci, g.xsC, p);
        if (v > m || is_nan(v)) {
          m = v;
          pos = i * kW + j;
        }
      }
    }
    out[o] = static_cast<scalar_t>(m);
    if constexpr (kWriteArg) argmax[o] = static_cast<arg_t>(pos);
  }
}

// ---------------------------------------------------------------------------
// Backward: one thread per input element e (dense in the format):
//   NCHW: e = ((n*C + c)*H + ih)*W + iw   (div0 = W, div1 = H, div2 = C)
//   NHWC: e = ((n*H + ih)*W + iw)*C + c   (div0 = C, div1 = W, div2 = H)
// Input row ih (ph = ih + pH) is tap i = ph - oh*sH of window oh for
// oh in [ceil((ph - (kH-1)) / sH), floor(ph / sH)] clipped to [0, OH); same
// for columns. Those (oh, ow) are visited in increasing row-major order.
// ---------------------------------------------------------------------------

// Lowest window o >= 0 whose taps [o*s - p, o*s - p + k - 1] reach position
// px = x + p >= 0: ceil((px - (k-1)) / s), clipped at 0.
template <typename off_t>
__device__ __forceinline__ off_t first_window(off_t px, off_t k, off_t s) {
  const off_t num = px - (k - 1);
  return num <= 0 ? off_t(0) : (num + s - 1) / s;
}

template <typename off_t>
__device__ __forceinline__ off_t clip_hi(off_t v, off_t hi) {
  return v < hi ? v : hi;
}

template <typename scalar_t, typename arg_t, bool kChannelsLast, int SIZE, bool K3S2,
          typename index_t>
__global__ void __launch_bounds__(kThreads)
    relu_lrn_max_pool2d_bwd_kernel(const scalar_t* __restrict__ grad_out,
                                   const scalar_t* __restrict__ x,
                                   const arg_t* __restrict__ argmax,
                                   scalar_t* __restrict__ dx,
                                   const Geom<off_type<index_t>> g,
                                   const LrnParams<at::opmath_type<scalar_t>> p,
                                   const index_t total, const DivMod<index_t> div0,
                                   const DivMod<index_t> div1, const DivMod<index_t> div2) {
  using acc_t = at::opmath_type<scalar_t>;
  using off_t = off_type<index_t>;
  const off_t kH = K3S2 ? 3 : g.kH;
  const off_t kW = K3S2 ? 3 : g.kW;
  const off_t sH = K3S2 ? 2 : g.sH;
  const off_t sW = K3S2 ? 2 : g.sW;
  const index_t step = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += step) {
    index_t n, c, ih, iw, q, q2;
    if constexpr (kChannelsLast) {
      div0.divmod(e, q, c);
      div1.divmod(q, q2, iw);
      div2.divmod(q2, n, ih);
    } else {
      div0.divmod(e, q, iw);
      div1.divmod(q, q2, ih);
      div2.divmod(q2, n, c);
    }
    const int j = static_cast<int>(c);  // this thread's channel
    const off_t ph = static_cast<off_t>(ih) + g.pH;
    const off_t pw = static_cast<off_t>(iw) + g.pW;
    const off_t oh_lo = first_window(ph, kH, sH);
    const off_t ow_lo = first_window(pw, kW, sW);
    const off_t oh_hi = clip_hi(ph / sH, g.OH - 1);  // ph >= 0: truncation = floor
    const off_t ow_hi = clip_hi(pw / sW, g.OW - 1);

    // x at (n, channel 0, ih, iw) and grad_out / argmax at (n, channel 0).
    const scalar_t* __restrict__ xp =
        x + (static_cast<off_t>(n) * g.xsN + static_cast<off_t>(ih) * g.xsH +
             static_cast<off_t>(iw) * g.xsW);
    const off_t obase = static_cast<off_t>(n) * g.osN;

    // grad of the LRN output of channel i at (ih, iw): the gradients of the
    // windows whose argmax selected this tap, summed in (oh, ow) order.
    auto gather = [&](int i) -> acc_t {
      acc_t sum = acc_t(0);
      const off_t cbase = obase + static_cast<off_t>(i) * g.osC;
      for (off_t oh = oh_lo; oh <= oh_hi; ++oh) {
        const off_t ti = (ph - oh * sH) * kW;  // tap row offset i * kW
        for (off_t ow = ow_lo; ow <= ow_hi; ++ow) {
          const off_t off = cbase + oh * g.osH + ow * g.osW;
          if (static_cast<off_t>(load_ro(argmax + off)) == ti + (pw - ow * sW)) {
            sum = add_rn(sum, static_cast<acc_t>(load_ro(grad_out + off)));
          }
        }
      }
      return sum;
    };

    const LrnGradSums<acc_t> r = lrn_grad_sums<SIZE, /*kPreloadG=*/false>(
        j, p,
        [&](int m) {
          return relu(static_cast<acc_t>(load_ro(xp + static_cast<off_t>(m) * g.xsC)));
        },
        gather);
    // relu' is a select, not a product (threshold_backward gives 0 there even
    // when the rest is inf/NaN); relu'(x) = 0 iff x <= 0 iff a_j == 0.
    const acc_t d = r.a_j == acc_t(0)
                        ? acc_t(0)
                        : fma_rn(mul_rn(p.neg_two_ab_over_size, r.a_j), r.sum_t, r.d_j);
    dx[e] = static_cast<scalar_t>(d);
  }
}

// ---------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

unsigned int grid_for(int64_t work) {
  return static_cast<unsigned int>(std::min<int64_t>(ceil_div(work, kThreads), kMaxBlocks));
}

void check_lrn_args(const char* op, int64_t size, int64_t C) {
  TORCH_CHECK(size >= 1, op, ": size must be >= 1, got ", size);
  check_channels(op, C);
}

template <typename off_t>
Geom<off_t> make_geom(int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                      const PoolArgs& a, bool channels_last) {
  Geom<off_t> g;
  g.C = static_cast<off_t>(C);
  g.H = static_cast<off_t>(H);
  g.W = static_cast<off_t>(W);
  g.OH = static_cast<off_t>(OH);
  g.OW = static_cast<off_t>(OW);
  g.kH = static_cast<off_t>(a.kH);
  g.kW = static_cast<off_t>(a.kW);
  g.sH = static_cast<off_t>(a.sH);
  g.sW = static_cast<off_t>(a.sW);
  g.pH = static_cast<off_t>(a.pH);
  g.pW = static_cast<off_t>(a.pW);
  if (channels_last) {
    g.xsN = static_cast<off_t>(H * W * C);
    g.xsC = 1;
    g.xsH = static_cast<off_t>(W * C);
    g.xsW = static_cast<off_t>(C);
    g.osN = static_cast<off_t>(OH * OW * C);
    g.osC = 1;
    g.osH = static_cast<off_t>(OW * C);
    g.osW = static_cast<off_t>(C);
  } else {
    g.xsN = static_cast<off_t>(C * H * W);
    g.xsC = static_cast<off_t>(H * W);
    g.xsH = static_cast<off_t>(W);
    g.xsW = 1;
    g.osN = static_cast<off_t>(C * OH * OW);
    g.osC = static_cast<off_t>(OH * OW);
    g.osH = static_cast<off_t>(OW);
    g.osW = 1;
  }
  return g;
}

// 32-bit indexing when every tensor has < 2^31 elements and every coordinate
// expression (oh*sH, ih + pH, ...) stays below 2^31.
bool fits_32bit(int64_t x_numel, int64_t o_numel, int64_t H, int64_t W, const PoolArgs& a) {
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  return x_numel <= kIntMax && o_numel <= kIntMax && H + 2 * a.pH + a.kH + a.sH <= kIntMax &&
         W + 2 * a.pW + a.kW + a.sW <= kIntMax;
}

// The three divisors that split a flat index of a dense (N, C, P, Q) tensor
// (P x Q = H x W or OH x OW) in the given format into its coordinates.
template <typename index_t>
void make_divisors(int64_t C, int64_t P, int64_t Q, bool channels_last, DivMod<index_t>& d0,
                   DivMod<index_t>& d1, DivMod<index_t>& d2) {
  if (channels_last) {
    d0 = DivMod<index_t>(C);
    d1 = DivMod<index_t>(Q);
    d2 = DivMod<index_t>(P);
  } else {
    d0 = DivMod<index_t>(Q);
    d1 = DivMod<index_t>(P);
    d2 = DivMod<index_t>(C);
  }
}

template <typename scalar_t, typename arg_t, bool kWriteArg, bool kChannelsLast, typename index_t>
void launch_forward(const scalar_t* x, scalar_t* out, arg_t* arg_ptr, const PoolArgs& a,
                    int64_t size, const LrnParams<at::opmath_type<scalar_t>>& p, int64_t C,
                    int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t total,
                    cudaStream_t stream) {
  using off_t = off_type<index_t>;
  const Geom<off_t> g = make_geom<off_t>(C, H, W, OH, OW, a, kChannelsLast);
  DivMod<index_t> d0, d1, d2;
  make_divisors<index_t>(C, OH, OW, kChannelsLast, d0, d1, d2);
  const unsigned int blocks = grid_for(total);
  const index_t tot = static_cast<index_t>(total);
  if (size == 5 && a.is_3x3s2()) {
    relu_lrn_max_pool2d_fwd_kernel<scalar_t, arg_t, kWriteArg, kChannelsLast, 5, true, index_t>
        <<<blocks, kThreads, 0, stream>>>(x, out, arg_ptr, g, p, tot, d0, d1, d2);
  } else if (size == 5) {
    relu_lrn_max_pool2d_fwd_kernel<scalar_t, arg_t, kWriteArg, kChannelsLast, 5, false, index_t>
        <<<blocks, kThreads, 0, stream>>>(x, out, arg_ptr, g, p, tot, d0, d1, d2);
  } else {
    relu_lrn_max_pool2d_fwd_kernel<scalar_t, arg_t, kWriteArg, kChannelsLast, 0, false, index_t>
        <<<blocks, kThreads, 0, stream>>>(x, out, arg_ptr, g, p, tot, d0, d1, d2);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, typename arg_t, bool kWriteArg>
void dispatch_forward(const scalar_t* x, scalar_t* out, arg_t* arg_ptr, const PoolArgs& a,
                      int64_t size, const LrnParams<at::opmath_type<scalar_t>>& p, int64_t C,
                      int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t x_numel,
                      int64_t total, bool channels_last, cudaStream_t stream) {
  const bool use32 = fits_32bit(x_numel, total, H, W, a);
  if (channels_last) {
    if (use32) {
      launch_forward<scalar_t, arg_t, kWriteArg, true, uint32_t>(x, out, arg_ptr, a, size, p, C,
                                                                 H, W, OH, OW, total, stream);
    } else {
      launch_forward<scalar_t, arg_t, kWriteArg, true, int64_t>(x, out, arg_ptr, a, size, p, C,
                                                                H, W, OH, OW, total, stream);
    }
  } else {
    if (use32) {
      launch_forward<scalar_t, arg_t, kWriteArg, false, uint32_t>(x, out, arg_ptr, a, size, p,
                                                                  C, H, W, OH, OW, total, stream);
    } else {
      launch_forward<scalar_t, arg_t, kWriteArg, false, int64_t>(x, out, arg_ptr, a, size, p, C,
                                                                 H, W, OH, OW, total, stream);
    }
  }
}

template <typename scalar_t, typename arg_t, bool kChannelsLast, typename index_t>
void launch_backward(const scalar_t* grad_out, const scalar_t* x, const arg_t* argmax,
                     scalar_t* dx, const PoolArgs& a, int64_t size,
                     const LrnParams<at::opmath_type<scalar_t>>& p, int64_t C, int64_t H,
                     int64_t W, int64_t OH, int64_t OW, int64_t total, cudaStream_t stream) {
  using off_t = off_type<index_t>;
  const Geom<off_t> g = make_geom<off_t>(C, H, W, OH, OW, a, kChannelsLast);
  DivMod<index_t> d0, d1, d2;
  make_divisors<index_t>(C, H, W, kChannelsLast, d0, d1, d2);
  const unsigned int blocks = grid_for(total);
  const index_t tot = static_cast<index_t>(total);
  if (size == 5 && a.is_3x3s2()) {
    relu_lrn_max_pool2d_bwd_kernel<scalar_t, arg_t, kChannelsLast, 5, true, index_t>
        <<<blocks, kThreads, 0, stream>>>(grad_out, x, argmax, dx, g, p, tot, d0, d1, d2);
  } else if (size == 5) {
    relu_lrn_max_pool2d_bwd_kernel<scalar_t, arg_t, kChannelsLast, 5, false, index_t>
        <<<blocks, kThreads, 0, stream>>>(grad_out, x, argmax, dx, g, p, tot, d0, d1, d2);
  } else {
    relu_lrn_max_pool2d_bwd_kernel<scalar_t, arg_t, kChannelsLast, 0, false, index_t>
        <<<blocks, kThreads, 0, stream>>>(grad_out, x, argmax, dx, g, p, tot, d0, d1, d2);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, typename arg_t>
void dispatch_backward(const scalar_t* grad_out, const scalar_t* x, const arg_t* argmax,
                       scalar_t* dx, const PoolArgs& a, int64_t size,
                       const LrnParams<at::opmath_type<scalar_t>>& p, int64_t C, int64_t H,
                       int64_t W, int64_t OH, int64_t OW, int64_t x_numel, int64_t o_numel,
                       bool channels_last, cudaStream_t stream) {
  const bool use32 = fits_32bit(x_numel, o_numel, H, W, a);
  if (channels_last) {
    if (use32) {
      launch_backward<scalar_t, arg_t, true, uint32_t>(grad_out, x, argmax, dx, a, size, p, C, H,
                                                       W, OH, OW, x_numel, stream);
    } else {
      launch_backward<scalar_t, arg_t, true, int64_t>(grad_out, x, argmax, dx, a, size, p, C, H,
                                                      W, OH, OW, x_numel, stream);
    }
  } else {
    if (use32) {
      launch_backward<scalar_t, arg_t, false, uint32_t>(grad_out, x, argmax, dx, a, size, p, C,
                                                        H, W, OH, OW, x_numel, stream);
    } else {
      launch_backward<scalar_t, arg_t, false, int64_t>(grad_out, x, argmax, dx, a, size, p, C, H,
                                                       W, OH, OW, x_numel, stream);
    }
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> relu_lrn_max_pool2d_forward_cuda(
    const at::Tensor& x_in, int64_t size, double alpha, double beta, double k,
    at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
    bool ceil_mode, bool need_argmax) {
  constexpr const char* op = "relu_lrn_max_pool2d_forward";
  TORCH_CHECK(x_in.is_cuda(), op, ": x must be a CUDA tensor, got device ", x_in.device());
  TORCH_CHECK(x_in.dim() == 4, op, ": x must be 4-D (N, C, H, W), got shape ", x_in.sizes());
  check_dtype(op, "x", x_in);
  const PoolArgs a = check_pool_args(op, kernel_size, stride, padding);
  const int64_t C = x_in.size(1);
  const int64_t H = x_in.size(2), W = x_in.size(3);
  check_lrn_args(op, size, C);
  const int64_t OH = pooling_output_size(H, a.kH, a.pH, a.sH, 1, ceil_mode);
  const int64_t OW = pooling_output_size(W, a.kW, a.pW, a.sW, 1, ceil_mode);
  TORCH_CHECK(OH >= 1 && OW >= 1, op, ": output size (", OH, ", ", OW,
              ") is too small for input (H, W) = (", H, ", ", W, ") with kernel_size=",
              kernel_size, ", stride=", stride, ", padding=", padding,
              ", ceil_mode=", ceil_mode);

  c10::cuda::CUDAGuard guard(x_in.device());
  PoolForwardTensors t = pool_forward_tensors(x_in, OH, OW, a, need_argmax);
  if (t.out.numel() == 0) return std::make_tuple(t.out, t.argmax);

  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, t.x.scalar_type(), "relu_lrn_max_pool2d_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const auto p = make_params<acc_t>(C, size, alpha, beta, k, /*apply_relu=*/true);
        const scalar_t* xp = t.x.const_data_ptr<scalar_t>();
        scalar_t* op_ = t.out.mutable_data_ptr<scalar_t>();
        const int64_t x_numel = t.x.numel(), o_numel = t.out.numel();
        if (!need_argmax) {
          dispatch_forward<scalar_t, uint8_t, false>(xp, op_, nullptr, a, size, p, C, H, W, OH,
                                                     OW, x_numel, o_numel, t.channels_last,
                                                     stream);
        } else if (a.int32_argmax()) {
          dispatch_forward<scalar_t, int32_t, true>(xp, op_, t.argmax.mutable_data_ptr<int32_t>(),
                                                    a, size, p, C, H, W, OH, OW, x_numel,
                                                    o_numel, t.channels_last, stream);
        } else {
          dispatch_forward<scalar_t, uint8_t, true>(xp, op_, t.argmax.mutable_data_ptr<uint8_t>(),
                                                    a, size, p, C, H, W, OH, OW, x_numel,
                                                    o_numel, t.channels_last, stream);
        }
      });
  return std::make_tuple(t.out, t.argmax);
}

at::Tensor relu_lrn_max_pool2d_backward_cuda(const at::Tensor& grad_out_in,
                                             const at::Tensor& x_in,
                                             const at::Tensor& argmax_in, int64_t size,
                                             double alpha, double beta, double k,
                                             at::IntArrayRef kernel_size,
                                             at::IntArrayRef stride, at::IntArrayRef padding) {
  constexpr const char* op = "relu_lrn_max_pool2d_backward";
  TORCH_CHECK(x_in.is_cuda(), op, ": x must be a CUDA tensor, got device ", x_in.device());
  TORCH_CHECK(grad_out_in.device() == x_in.device(), op, ": grad_out is on ",
              grad_out_in.device(), " but x is on ", x_in.device());
  TORCH_CHECK(argmax_in.device() == x_in.device(), op, ": argmax is on ", argmax_in.device(),
              " but x is on ", x_in.device());
  TORCH_CHECK(x_in.dim() == 4, op, ": x must be 4-D (N, C, H, W), got shape ", x_in.sizes());
  check_dtype(op, "x", x_in);
  TORCH_CHECK(grad_out_in.scalar_type() == x_in.scalar_type(), op, ": grad_out dtype ",
              grad_out_in.scalar_type(), " must equal x dtype ", x_in.scalar_type());
  TORCH_CHECK(grad_out_in.dim() == 4, op,
              ": grad_out must be 4-D (N, C, OH, OW), got shape ", grad_out_in.sizes());
  TORCH_CHECK(argmax_in.sizes() == grad_out_in.sizes(), op,
              ": argmax must have grad_out's shape ", grad_out_in.sizes(), ", got ",
              argmax_in.sizes());
  const PoolArgs a = check_pool_args(op, kernel_size, stride, padding);
  check_argmax_dtype(op, argmax_in, a, kernel_size);
  const bool int32_arg = a.int32_argmax();
  const int64_t N = x_in.size(0), C = x_in.size(1);
  const int64_t H = x_in.size(2), W = x_in.size(3);
  check_lrn_args(op, size, C);
  TORCH_CHECK(grad_out_in.size(0) == N && grad_out_in.size(1) == C, op,
              ": grad_out shape ", grad_out_in.sizes(), " does not match x shape ",
              x_in.sizes(), " in (N, C)");
  const int64_t OH = grad_out_in.size(2), OW = grad_out_in.size(3);
  // ceil_mode is not passed: the output size must be the floor or the ceil one.
  TORCH_CHECK(OH >= 1 && OW >= 1 && pooling_output_size_ok(OH, H, a.kH, a.pH, a.sH, 1) &&
                  pooling_output_size_ok(OW, W, a.kW, a.pW, a.sW, 1),
              op, ": grad_out spatial size (", OH, ", ", OW, ") does not match x (H, W) = (", H,
              ", ", W, ") with kernel_size=", kernel_size, ", stride=", stride,
              ", padding=", padding);

  c10::cuda::CUDAGuard guard(x_in.device());
  // dx takes x's format (the one the forward used for out / argmax); argmax
  // and grad_out are brought to it (no copy when they already match).
  const at::MemoryFormat mf = x_in.suggest_memory_format();
  const bool channels_last = mf == at::MemoryFormat::ChannelsLast;
  const at::Tensor x = x_in.contiguous(mf);
  const at::Tensor argmax = argmax_in.contiguous(mf);
  const at::Tensor grad_out = grad_out_in.contiguous(mf);
  at::Tensor dx = at::empty({N, C, H, W}, x.options().memory_format(mf));
  if (dx.numel() == 0) return dx;

  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "relu_lrn_max_pool2d_backward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const auto p = make_params<acc_t>(C, size, alpha, beta, k, /*apply_relu=*/true);
        const scalar_t* gp = grad_out.const_data_ptr<scalar_t>();
        const scalar_t* xp = x.const_data_ptr<scalar_t>();
        scalar_t* dp = dx.mutable_data_ptr<scalar_t>();
        if (int32_arg) {
          dispatch_backward<scalar_t, int32_t>(gp, xp, argmax.const_data_ptr<int32_t>(), dp, a,
                                               size, p, C, H, W, OH, OW, x.numel(),
                                               grad_out.numel(), channels_last, stream);
        } else {
          dispatch_backward<scalar_t, uint8_t>(gp, xp, argmax.const_data_ptr<uint8_t>(), dp, a,
                                               size, p, C, H, W, OH, OW, x.numel(),
                                               grad_out.numel(), channels_last, stream);
        }
      });
  return dx;
}

}  // namespace alexnet_fast

TORCH_LIBRARY_IMPL(alexnet_fast, CUDA, m) {
  m.impl("relu_lrn_max_pool2d_forward",
         TORCH_FN(alexnet_fast::relu_lrn_max_pool2d_forward_cuda));
  m.impl("relu_lrn_max_pool2d_backward",
         TORCH_FN(alexnet_fast::relu_lrn_max_pool2d_backward_cuda));
}
