// The CUDA kernels of the fused ReLU + LRN + max-pool operator (AlexNet's
// conv1 / conv2 blocks), their launch plan and their variant dispatch:
//
//   out = F.max_pool2d(F.local_response_norm(relu(x), size, alpha, beta, k),
//                      kernel_size, stride, padding, ceil_mode=ceil_mode)
//
// (dilation 1) on (N, C, H, W) input, without writing the LRN output. Device
// code and plain host code only (no ATen): relu_lrn_max_pool2d_glue.h runs it
// on CUDA tensors and on the CPU. The math is in docs/math.md.
//
// The LRN value b is lrn_math.cuh's, bitwise what relu_lrn_forward computes
// before its storage rounding. It is pooled rounded to the storage type, as
// max_pool2d(relu_lrn(x)) pools the stored values: out and argmax are the
// unfused chain's in every dtype. The max-pool rule is PyTorch's
// (max_pool2d_kernels.cuh).
//
// Backward (a gather: no atomics, no zero-fill, bitwise repeatable), one
// thread per input element (n, c, ih, iw): g_i of every channel i of the
// mirrored window W'(c) is gathered from the windows whose argmax selected
// (ih, iw), in increasing (oh, ow) order, and rounded to the storage type as
// max_pool2d_backward stores it; then the LRN backward with s recomputed
// from x. dx is the unfused chain's, bit for bit.
//
// Layouts: the format is x.suggest_memory_format(); NCHW and NHWC natively.
// Kernels: one thread per output / input element, consecutive threads on
// consecutive elements of the innermost dimension, grid-stride. Template fast
// path: size 5 (register window, unrolled) x 3x3 / stride 2 (compile-time
// window); runtime loops otherwise. Flat indices are split with magic-number
// division when everything fits 32 bits.
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

namespace alexnet_fast::relu_lrn_max_pool2d_cuda {

constexpr int kThreads = 256;  // the kernels' launch bound and block size
// Grid-stride kernels never launch more blocks than this.
constexpr int64_t kMaxBlocks = int64_t{1} << 20;

// off_t: the signed type of memory offsets and coordinates for the flat index
// type index_t (pool_common.cuh): int for uint32_t, else int64_t.
template <typename index_t>
using off_type = std::conditional_t<std::is_same_v<index_t, uint32_t>, int, int64_t>;

// Shapes, window and element strides of x (H x W plane) and of out / argmax /
// grad_out (OH x OW plane), all dense in the chosen memory format:
//   NCHW: sN = C*H*W, sC = H*W, sH = W, sW = 1
//   NHWC: sN = H*W*C, sC = 1,   sH = W*C, sW = C
template <typename off_t>
struct FusedShape {
  off_t C, H, W, OH, OW;
  off_t kH, kW, sH, sW, pH, pW;
  off_t xsN, xsC, xsH, xsW;
  off_t osN, osC, osH, osW;
};

// a_ch = relu(x[ch]) at one pixel (px points at channel 0 of it), or 0 when
// ch lies outside [0, C): a clipped window term, which adds an exact +0.
template <typename acc_t, typename scalar_t, typename off_t>
__device__ __forceinline__ acc_t load_act(const scalar_t* __restrict__ px, int ch, int C, off_t stride_c) {
  if (ch < 0 || ch >= C) return acc_t(0);
  return act(static_cast<acc_t>(load_ro(px + static_cast<off_t>(ch) * stride_c)), true);
}

// b_c at one pixel, px pointing at channel 0 of x at (n, ih, iw). SIZE > 0:
// compile-time window, A[w] = a_{c - LO + w} (out-of-range terms are exact
// zeros); SIZE == 0: runtime size, window clipped to [0, C). Both give the
// same bits (as relu_lrn_kernels.cuh's direct kernel). A value that is NaN or
// +-inf from finite inputs is recomputed in wide range.
template <int SIZE, typename acc_t, typename scalar_t, typename off_t>
__device__ __forceinline__ acc_t lrn_value(const scalar_t* __restrict__ px, int c, off_t stride_c,
                                           const LrnParams<acc_t>& p) {
  const int C = p.channels;
  auto a_of = [&](int j) { return act(static_cast<acc_t>(load_ro(px + static_cast<off_t>(j) * stride_c)), true); };
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
    sv = clipped_window_s(c, p, a_of);
    a_c = a_of(c);
  }
  const acc_t b = div_rn(a_c, pow_beta(sv, p));
  if (finite(b)) return b;
  return lrn_output_repaired(b, c, p, [&](int64_t m) { return static_cast<double>(a_of(static_cast<int>(m))); });
}

// ---------------------------------------------------------------------------
// Forward: one thread per pooled output element o (dense in the format).
// K3S2: kernel 3x3 / stride 2 as compile-time constants (padding runtime).
template <typename scalar_t, typename arg_t, bool kWriteArg, bool kChannelsLast, int SIZE, bool K3S2,
          typename index_t>
__global__ void __launch_bounds__(kThreads)
    relu_lrn_max_pool2d_fwd_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ out,
                                   arg_t* __restrict__ argmax, const FusedShape<off_type<index_t>> g,
                                   const LrnParams<at::opmath_type<scalar_t>> p, const index_t total,
                                   const PlaneDecoder<index_t> decode) {
  using acc_t = at::opmath_type<scalar_t>;
  using off_t = off_type<index_t>;
  const off_t kH = K3S2 ? 3 : g.kH;
  const off_t kW = K3S2 ? 3 : g.kW;
  const off_t sH = K3S2 ? 2 : g.sH;
  const off_t sW = K3S2 ? 2 : g.sW;
  const index_t step = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t o = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += step) {
    const PlaneIndex<index_t> at = decode_plane_index<kChannelsLast>(o, decode);
    const int ci = static_cast<int>(at.c);
    const off_t ih0 = static_cast<off_t>(at.row) * sH - g.pH;
    const off_t iw0 = static_cast<off_t>(at.col) * sW - g.pW;
    // First in-bounds tap (dilation 1): i0 = max(0, -ih0).
    const off_t i0 = ih0 < 0 ? -ih0 : 0;
    const off_t j0 = iw0 < 0 ? -iw0 : 0;
    const scalar_t* __restrict__ xn = x + static_cast<off_t>(at.n) * g.xsN;

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
        // The stored LRN value: rounded to the storage type (exact back).
        const acc_t v = static_cast<acc_t>(
            static_cast<scalar_t>(lrn_value<SIZE>(xn + ih * g.xsH + iw * g.xsW, ci, g.xsC, p)));
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
// Backward: one thread per input element e (dense in the format). Input row ih
// (ph = ih + pH) is tap i = ph - oh*sH of window oh for oh in
// [ceil((ph - (kH-1)) / sH), floor(ph / sH)] clipped to [0, OH); same for
// columns. Those (oh, ow) are visited in increasing row-major order.
template <typename off_t>
__device__ __forceinline__ off_t clip_hi(off_t v, off_t hi) {
  return v < hi ? v : hi;
}

template <typename scalar_t, typename arg_t, bool kChannelsLast, int SIZE, bool K3S2, typename index_t>
__global__ void __launch_bounds__(kThreads)
    relu_lrn_max_pool2d_bwd_kernel(const scalar_t* __restrict__ grad_out, const scalar_t* __restrict__ x,
                                   const arg_t* __restrict__ argmax, scalar_t* __restrict__ dx,
                                   const FusedShape<off_type<index_t>> g,
                                   const LrnParams<at::opmath_type<scalar_t>> p, const index_t total,
                                   const PlaneDecoder<index_t> decode) {
  using acc_t = at::opmath_type<scalar_t>;
  using off_t = off_type<index_t>;
  const off_t kH = K3S2 ? 3 : g.kH;
  const off_t kW = K3S2 ? 3 : g.kW;
  const off_t sH = K3S2 ? 2 : g.sH;
  const off_t sW = K3S2 ? 2 : g.sW;
  const index_t step = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t e = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    const PlaneIndex<index_t> at = decode_plane_index<kChannelsLast>(e, decode);
    const int j = static_cast<int>(at.c);  // this thread's channel
    const off_t ph = static_cast<off_t>(at.row) + g.pH;
    const off_t pw = static_cast<off_t>(at.col) + g.pW;
    const off_t oh_lo = first_window(ph, kH, sH, off_t(1));
    const off_t ow_lo = first_window(pw, kW, sW, off_t(1));
    const off_t oh_hi = clip_hi(ph / sH, g.OH - 1);  // ph >= 0: truncation = floor
    const off_t ow_hi = clip_hi(pw / sW, g.OW - 1);

    // x at (n, channel 0, ih, iw) and grad_out / argmax at (n, channel 0).
    const scalar_t* __restrict__ xp = x + (static_cast<off_t>(at.n) * g.xsN + static_cast<off_t>(at.row) * g.xsH +
                                           static_cast<off_t>(at.col) * g.xsW);
    const off_t obase = static_cast<off_t>(at.n) * g.osN;

    // The gradient of channel i's LRN output at (ih, iw): the windows whose
    // argmax selected this tap, summed in (oh, ow) order, rounded to the
    // storage type as max_pool2d_backward stores it.
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
      return static_cast<acc_t>(static_cast<scalar_t>(sum));
    };
    auto a_of = [&](int m) { return act(static_cast<acc_t>(load_ro(xp + static_cast<off_t>(m) * g.xsC)), true); };

    const LrnGradSums<acc_t> r = lrn_grad_sums<SIZE, /*kPreloadG=*/false>(j, p, a_of, gather);
    acc_t d = grad_x(r.a_j, r.d_j, r.sum_t, p);
    if (!finite(d)) {
      d = lrn_input_grad_repaired(
          d, j, p, [&](int64_t m) { return static_cast<double>(a_of(static_cast<int>(m))); },
          [&](int64_t i) { return static_cast<double>(gather(static_cast<int>(i))); });
    }
    dx[e] = static_cast<scalar_t>(d);
  }
}

// ---------------------------------------------------------------------------
// Launch plan (host).

// The pooled shape and window in plain numbers (relu_lrn_max_pool2d_glue.h).
struct FusedPoolShape {
  int64_t N, C, H, W, OH, OW, kH, kW, sH, sW, pH, pW;
};

enum class FusedVariant { kSize5Window3x3s2, kSize5, kGeneral };

struct FusedPlan {
  FusedVariant variant;
  bool index32;
  int64_t total;
  dim3 grid, block;
};

inline unsigned int grid_for(int64_t work) {
  return static_cast<unsigned int>(std::min<int64_t>((work + kThreads - 1) / kThreads, kMaxBlocks));
}

// 32-bit indexing when every tensor has fewer than 2^31 elements and every
// coordinate expression (oh*sH, ih + pH, ...) stays below 2^31, unless the
// test-only override forces int64.
inline FusedPlan plan_relu_lrn_max_pool2d(const FusedPoolShape& s, int64_t size, int64_t total,
                                          const PlanOverrides& overrides) {
  constexpr int64_t kIntMax = (int64_t{1} << 31) - 1;
  const int64_t x_numel = s.N * s.C * s.H * s.W, o_numel = s.N * s.C * s.OH * s.OW;
  FusedPlan plan{};
  plan.index32 = !overrides.force_index64 && x_numel <= kIntMax && o_numel <= kIntMax &&
                 s.H + 2 * s.pH + s.kH + s.sH <= kIntMax && s.W + 2 * s.pW + s.kW + s.sW <= kIntMax;
  const bool window_3x3s2 = s.kH == 3 && s.kW == 3 && s.sH == 2 && s.sW == 2;
  plan.variant = size == 5 ? (window_3x3s2 ? FusedVariant::kSize5Window3x3s2 : FusedVariant::kSize5)
                           : FusedVariant::kGeneral;
  plan.total = total;
  plan.grid = dim3(grid_for(total));
  plan.block = dim3(kThreads);
  return plan;
}

template <typename off_t>
FusedShape<off_t> fused_shape(const FusedPoolShape& s, bool channels_last) {
  const auto o = [](int64_t v) { return static_cast<off_t>(v); };
  FusedShape<off_t> g{o(s.C), o(s.H), o(s.W), o(s.OH), o(s.OW), o(s.kH), o(s.kW), o(s.sH), o(s.sW), o(s.pH), o(s.pW)};
  if (channels_last) {
    g.xsN = o(s.H * s.W * s.C), g.xsC = 1, g.xsH = o(s.W * s.C), g.xsW = o(s.C);
    g.osN = o(s.OH * s.OW * s.C), g.osC = 1, g.osH = o(s.OW * s.C), g.osW = o(s.C);
  } else {
    g.xsN = o(s.C * s.H * s.W), g.xsC = o(s.H * s.W), g.xsH = o(s.W), g.xsW = 1;
    g.osN = o(s.C * s.OH * s.OW), g.osC = o(s.OH * s.OW), g.osH = o(s.OW), g.osW = 1;
  }
  return g;
}

// Calls f(std::integral_constant<int, SIZE>{}, std::bool_constant<K3S2>{},
// TypeTag<index_t>{}) for the plan's variant.
template <typename F>
void with_fused_variant(const FusedPlan& plan, const F& f) {
  auto with_index = [&](auto size, auto k3s2) {
    if (plan.index32) {
      f(size, k3s2, TypeTag<uint32_t>{});
    } else {
      f(size, k3s2, TypeTag<int64_t>{});
    }
  };
  switch (plan.variant) {
    case FusedVariant::kSize5Window3x3s2:
      return with_index(std::integral_constant<int, 5>{}, std::true_type{});
    case FusedVariant::kSize5:
      return with_index(std::integral_constant<int, 5>{}, std::false_type{});
    default:
      return with_index(std::integral_constant<int, 0>{}, std::false_type{});
  }
}

// ---------------------------------------------------------------------------
// Variant dispatch through the launcher (CudaLauncher, host::HostLauncher).

template <typename scalar_t, typename arg_t, bool kWriteArg, bool kChannelsLast, typename Launcher>
void launch_relu_lrn_max_pool2d_forward(const Launcher& launcher, const FusedPlan& plan, const FusedPoolShape& s,
                                        const scalar_t* x, scalar_t* out, arg_t* argmax,
                                        const LrnParams<at::opmath_type<scalar_t>>& p) {
  with_fused_variant(plan, [&](auto size, auto k3s2, auto index) {
    constexpr int SIZE = decltype(size)::value;
    constexpr bool K3S2 = decltype(k3s2)::value;
    using index_t = typename decltype(index)::type;
    const PlaneDecoder<index_t> decode(s.C, s.OH, s.OW, kChannelsLast);
    launcher.template launch<kThreads>(
        relu_lrn_max_pool2d_fwd_kernel<scalar_t, arg_t, kWriteArg, kChannelsLast, SIZE, K3S2, index_t>, plan.grid,
        plan.block, x, out, argmax, fused_shape<off_type<index_t>>(s, kChannelsLast), p,
        static_cast<index_t>(plan.total), decode);
  });
}

template <typename scalar_t, typename arg_t, bool kChannelsLast, typename Launcher>
void launch_relu_lrn_max_pool2d_backward(const Launcher& launcher, const FusedPlan& plan, const FusedPoolShape& s,
                                         const scalar_t* grad_out, const scalar_t* x, const arg_t* argmax,
                                         scalar_t* dx, const LrnParams<at::opmath_type<scalar_t>>& p) {
  with_fused_variant(plan, [&](auto size, auto k3s2, auto index) {
    constexpr int SIZE = decltype(size)::value;
    constexpr bool K3S2 = decltype(k3s2)::value;
    using index_t = typename decltype(index)::type;
    const PlaneDecoder<index_t> decode(s.C, s.H, s.W, kChannelsLast);
    launcher.template launch<kThreads>(
        relu_lrn_max_pool2d_bwd_kernel<scalar_t, arg_t, kChannelsLast, SIZE, K3S2, index_t>, plan.grid, plan.block,
        grad_out, x, argmax, dx, fused_shape<off_type<index_t>>(s, kChannelsLast), p,
        static_cast<index_t>(plan.total), decode);
  });
}

}  // namespace alexnet_fast::relu_lrn_max_pool2d_cuda
