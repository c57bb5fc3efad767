// CUDA kernels of alexnet_fast::max_pool2d_forward / max_pool2d_backward:
// a bit-exact, deterministic drop-in for F.max_pool2d on (N, C, H, W) input.
//
// Semantics (PyTorch's CPU and CUDA kernels exactly):
//   out size per dim:  o = floor_or_ceil((in + 2p - d(k-1) - 1) / s) + 1, and
//     with ceil_mode, if (o-1)*s >= in + p then o -= 1 (a last window that
//     would start inside the right padding is dropped).
//   window of (oh, ow): ih = oh*sH - pH + i*dH (i in [0, kH)), likewise iw;
//     out-of-bounds positions are padding (never selected).
//   maxval = -inf, maxpos = first in-bounds position (i0, j0); visit rows i
//     then columns j in order; update when (val > maxval) || isnan(val).
//     Hence ties -> first in row-major order, NaN -> the last NaN, a window of
//     only -inf -> its first in-bounds element. Compared in float (double for
//     float64): exact, since half/bfloat16 -> float is exact.
//   argmax = i*kW + j (position inside the window), uint8 when kH*kW <= 256,
//     else int32; same shape and memory format as out.
//   backward is a gather: each input element sums grad_out over the windows
//     whose argmax points at it, visiting the windows in increasing (oh, ow)
//     order from 0 in float (double for float64) -- PyTorch's CPU summation
//     order -- and stores once. No atomics, no zero-fill: bitwise repeatable.
//   Degenerate windows: with dilation > 1 on a tiny plane a window can hold no
//     in-bounds element at all (e.g. H=1, k=2, d=2, p=1). Like PyTorch, the
//     forward then gives -inf and an argmax whose position (i0, j0) lies
//     outside the plane; the backward gather drops that gradient (PyTorch
//     writes it outside the plane). Python's validation may reject these.
//
// Layouts: contiguous NCHW and channels_last NHWC natively (the format is
// x.suggest_memory_format(), as in PyTorch's own max_pool2d; x is copied only
// when it is not dense in that format, e.g. a sliced view). out/argmax keep
// x's format; grad_in takes argmax's format (grad_out is matched to it).
//
// Kernels: one thread per output (forward) / input (backward) element,
// consecutive threads on consecutive elements of the innermost dim (w for
// NCHW, c for NHWC), so loads and stores coalesce. Flat indices are split with
// magic-number division (uint32) when every tensor has < 2^31 elements, and
// with plain int64 arithmetic otherwise.
//   * 3x3 / stride 2 / dilation 1 (AlexNet): compile-time window, unrolled;
//     windows fully inside the plane take a branch-free path (all of them when
//     padding is 0 and ceil_mode adds no window). For NHWC, when C is a
//     multiple of the 16-byte vector width, each thread handles 16 bytes of
//     channels (one 128-bit load per window tap).
//   * any other kernel/stride/dilation: runtime window loops.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <tuple>
#include <type_traits>

#include "pool_common.cuh"

namespace alexnet_fast {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = std::numeric_limits<int32_t>::max();  // gridDim.x limit

// ---------------------------------------------------------------------------
// Device helpers
// ---------------------------------------------------------------------------

// Accumulation / comparison type: float for float, half, bfloat16; double for
// double (matches at::opmath_type).
template <typename T>
struct AccType {
  using type = float;
};
template <>
struct AccType<double> {
  using type = double;
};
template <typename T>
using acc_type = typename AccType<T>::type;

// Raw word of a given byte count, for vector loads / stores.
template <int Bytes>
struct RawWord;
template <>
struct RawWord<2> {
  using type = unsigned short;
};
template <>
struct RawWord<4> {
  using type = unsigned int;
};
template <>
struct RawWord<8> {
  using type = uint2;
};
template <>
struct RawWord<16> {
  using type = uint4;
};

// V consecutive elements at p (p aligned to V * sizeof(T) when V > 1).
template <int V, typename T>
__device__ __forceinline__ void load_vec(const T* p, T (&v)[V]) {
  if constexpr (V == 1) {
    v[0] = load_ro(p);
  } else {
    using R = typename RawWord<V * sizeof(T)>::type;
    const R raw = __ldg(reinterpret_cast<const R*>(p));
    memcpy(v, &raw, sizeof(R));
  }
}
template <int V, typename T>
__device__ __forceinline__ void store_vec(T* p, const T (&v)[V]) {
  if constexpr (V == 1) {
    *p = v[0];
  } else {
    using R = typename RawWord<V * sizeof(T)>::type;
    R raw;
    memcpy(&raw, v, sizeof(R));
    *reinterpret_cast<R*>(p) = raw;
  }
}

// Shapes and window parameters (runtime path; all int64).
struct PoolGeom {
  int64_t H, W, C, OH, OW;
  int64_t kH, kW, sH, sW, pH, pW, dH, dW;
};

// Shapes of the 3x3 / stride 2 / dilation 1 path, used only when every tensor
// has < 2^31 elements, so every offset fits in int.
struct FastGeom {
  int H, W, C, OH, OW, pH, pW;
};

// First window index i with start + i*d >= 0: ceil(-start / d) when start < 0.
__device__ __forceinline__ int64_t first_inside(int64_t start, int64_t d) {
  if (start >= 0) return 0;
  return d == 1 ? -start : (-start + d - 1) / d;
}

// Lowest output index o >= 0 whose window [o*s - p, o*s - p + (k-1)*d] can
// contain input position x, given px = x + p >= 0:
// o >= (px - (k-1)*d) / s, i.e. ceil of it, clipped at 0.
__device__ __forceinline__ int64_t first_window(int64_t px, int64_t k,
                                                int64_t s, int64_t d) {
  const int64_t num = px - (k - 1) * d;
  return num <= 0 ? 0 : (num + s - 1) / s;
}

// ---------------------------------------------------------------------------
// Forward, 3x3 / stride 2 / dilation 1 (padding 0 or 1, any ceil_mode)
// ---------------------------------------------------------------------------
// One work item = V consecutive channels (NHWC, V = 16 bytes / sizeof) or one
// output element (NCHW, or NHWC with V = 1). Work item o covers the output
// elements [o*V, o*V + V) of the dense output.
template <typename scalar_t, typename arg_t, bool kWriteArg, bool kChannelsLast,
          int V>
__global__ void __launch_bounds__(kThreads)
    max_pool2d_fwd_3x3s2_kernel(const scalar_t* __restrict__ x,
                                scalar_t* __restrict__ out,
                                arg_t* __restrict__ argmax, const FastGeom g,
                                const uint32_t total, const DivMod32 div0,
                                const DivMod32 div1, const DivMod32 div2) {
  static_assert(kChannelsLast || V == 1, "NCHW is not vectorised");
  using acc_t = acc_type<scalar_t>;
  // Element strides of one window row / column step.
  const int rs = kChannelsLast ? g.W * g.C : g.W;
  const int cs = kChannelsLast ? g.C : 1;
  const uint32_t step = gridDim.x * blockDim.x;
  for (uint32_t o = blockIdx.x * blockDim.x + threadIdx.x; o < total;
       o += step) {
    uint32_t oh, ow;
    int base;  // offset of channel c at (ih, iw) = (0, 0) in x
    if constexpr (kChannelsLast) {
      // o = ((n*OH + oh)*OW + ow)*(C/V) + c/V
      uint32_t cv, q, q2, n;
      div0.divmod(o, q, cv);
      div1.divmod(q, q2, ow);
      div2.divmod(q2, n, oh);
      base = static_cast<int>(n) * g.H * g.W * g.C + static_cast<int>(cv) * V;
    } else {
      // o = (plane*OH + oh)*OW + ow, plane = n*C + c
      uint32_t q, plane;
      div0.divmod(o, q, ow);
      div1.divmod(q, plane, oh);
      base = static_cast<int>(plane) * g.H * g.W;
    }
    const int ih0 = static_cast<int>(oh) * 2 - g.pH;
    const int iw0 = static_cast<int>(ow) * 2 - g.pW;

    acc_t m[V];
    int pos[V];
    scalar_t v[V];
    if (ih0 >= 0 && iw0 >= 0 && ih0 + 2 < g.H && iw0 + 2 < g.W) {
      // Whole window inside: tap (0, 0) initialises, which equals starting
      // from (-inf, 0) and applying the update rule to it (if it is -inf the
      // max stays -inf at position 0 either way).
      const scalar_t* p = x + base + ih0 * rs + iw0 * cs;
      load_vec<V>(p, v);
#pragma unroll
      for (int l = 0; l < V; ++l) {
        m[l] = static_cast<acc_t>(v[l]);
        pos[l] = 0;
      }
#pragma unroll
      for (int t = 1; t < 9; ++t) {
        load_vec<V>(p + (t / 3) * rs + (t % 3) * cs, v);
#pragma unroll
        for (int l = 0; l < V; ++l) {
          const acc_t a = static_cast<acc_t>(v[l]);
          if (a > m[l] || is_nan(a)) {
            m[l] = a;
            pos[l] = t;
          }
        }
      }
    } else {
      // Border window (padding or a ceil_mode window past the end).
      const int i0 = ih0 < 0 ? -ih0 : 0;
      const int j0 = iw0 < 0 ? -iw0 : 0;
#pragma unroll
      for (int l = 0; l < V; ++l) {
        m[l] = static_cast<acc_t>(-INFINITY);
        pos[l] = i0 * 3 + j0;
      }
#pragma unroll
      for (int i = 0; i < 3; ++i) {
        const int ih = ih0 + i;
        if (ih < 0 || ih >= g.H) continue;
#pragma unroll
        for (int j = 0; j < 3; ++j) {
          const int iw = iw0 + j;
          if (iw < 0 || iw >= g.W) continue;
          load_vec<V>(x + base + ih * rs + iw * cs, v);
#pragma unroll
          for (int l = 0; l < V; ++l) {
            const acc_t a = static_cast<acc_t>(v[l]);
            if (a > m[l] || is_nan(a)) {
              m[l] = a;
              pos[l] = i * 3 + j;
            }
          }
        }
      }
    }
#pragma unroll
    for (int l = 0; l < V; ++l) v[l] = static_cast<scalar_t>(m[l]);
    store_vec<V>(out + static_cast<size_t>(o) * V, v);
    if constexpr (kWriteArg) {
      arg_t a[V];
#pragma unroll
      for (int l = 0; l < V; ++l) a[l] = static_cast<arg_t>(pos[l]);
      store_vec<V>(argmax + static_cast<size_t>(o) * V, a);
    }
  }
}

// ---------------------------------------------------------------------------
// Forward, any kernel / stride / padding / dilation
// ---------------------------------------------------------------------------
template <typename scalar_t, typename arg_t, bool kWriteArg, bool kChannelsLast,
          typename index_t>
__global__ void __launch_bounds__(kThreads)
    max_pool2d_fwd_kernel(const scalar_t* __restrict__ x,
                          scalar_t* __restrict__ out,
                          arg_t* __restrict__ argmax, const PoolGeom g,
                          const index_t total, const DivMod<index_t> div0,
                          const DivMod<index_t> div1,
                          const DivMod<index_t> div2) {
  using acc_t = acc_type<scalar_t>;
  const int64_t rs = kChannelsLast ? g.W * g.C : g.W;
  const int64_t cs = kChannelsLast ? g.C : 1;
  const index_t step = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t o = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       o < total; o += step) {
    index_t oh, ow;
    int64_t base;
    if constexpr (kChannelsLast) {
      index_t c, q, q2, n;
      div0.divmod(o, q, c);
      div1.divmod(q, q2, ow);
      div2.divmod(q2, n, oh);
      base = static_cast<int64_t>(n) * g.H * g.W * g.C + static_cast<int64_t>(c);
    } else {
      index_t q, plane;
      div0.divmod(o, q, ow);
      div1.divmod(q, plane, oh);
      base = static_cast<int64_t>(plane) * g.H * g.W;
    }
    const int64_t ih0 = static_cast<int64_t>(oh) * g.sH - g.pH;
    const int64_t iw0 = static_cast<int64_t>(ow) * g.sW - g.pW;
    const int64_t i0 = first_inside(ih0, g.dH);
    const int64_t j0 = first_inside(iw0, g.dW);

    acc_t m = static_cast<acc_t>(-INFINITY);
    int64_t pos = i0 * g.kW + j0;
    for (int64_t i = i0; i < g.kH; ++i) {
      const int64_t ih = ih0 + i * g.dH;
      if (ih >= g.H) break;
      const scalar_t* row = x + base + ih * rs;
      for (int64_t j = j0; j < g.kW; ++j) {
        const int64_t iw = iw0 + j * g.dW;
        if (iw >= g.W) break;
        const acc_t a = static_cast<acc_t>(load_ro(row + iw * cs));
        if (a > m || is_nan(a)) {
          m = a;
          pos = i * g.kW + j;
        }
      }
    }
    out[o] = static_cast<scalar_t>(m);
    if constexpr (kWriteArg) argmax[o] = static_cast<arg_t>(pos);
  }
}

// ---------------------------------------------------------------------------
// Backward, 3x3 / stride 2 / dilation 1 (uint8 argmax)
// ---------------------------------------------------------------------------
// Input row ih (px = ih + pH) lies in the windows oh with
//   oh*2 <= px <= oh*2 + 2  <=>  ceil((px - 2) / 2) <= oh <= floor(px / 2),
// at row offset i = px - 2*oh; at most 2 rows x 2 columns of windows.
template <typename scalar_t, bool kChannelsLast>
__global__ void __launch_bounds__(kThreads)
    max_pool2d_bwd_3x3s2_kernel(const scalar_t* __restrict__ grad_out,
                                const uint8_t* __restrict__ argmax,
                                scalar_t* __restrict__ grad_in,
                                const FastGeom g, const uint32_t total,
                                const DivMod32 div0, const DivMod32 div1,
                                const DivMod32 div2) {
  using acc_t = acc_type<scalar_t>;
  const int rs = kChannelsLast ? g.OW * g.C : g.OW;  // grad_out row stride
  const int cs = kChannelsLast ? g.C : 1;            // grad_out column stride
  const uint32_t step = gridDim.x * blockDim.x;
  for (uint32_t o = blockIdx.x * blockDim.x + threadIdx.x; o < total;
       o += step) {
    uint32_t ih, iw;
    int base;  // offset of (n, c, 0, 0) in grad_out / argmax
    if constexpr (kChannelsLast) {
      uint32_t c, q, q2, n;
      div0.divmod(o, q, c);
      div1.divmod(q, q2, iw);
      div2.divmod(q2, n, ih);
      base = static_cast<int>(n) * g.OH * g.OW * g.C + static_cast<int>(c);
    } else {
      uint32_t q, plane;
      div0.divmod(o, q, iw);
      div1.divmod(q, plane, ih);
      base = static_cast<int>(plane) * g.OH * g.OW;
    }
    const int ph = static_cast<int>(ih) + g.pH;
    const int pw = static_cast<int>(iw) + g.pW;
    const int oh_lo = ph <= 2 ? 0 : (ph - 1) >> 1;  // ceil((ph - 2) / 2)
    const int ow_lo = pw <= 2 ? 0 : (pw - 1) >> 1;
    const int oh_hi = (ph >> 1) < g.OH ? (ph >> 1) : g.OH - 1;
    const int ow_hi = (pw >> 1) < g.OW ? (pw >> 1) : g.OW - 1;
    acc_t sum = 0;
    for (int oh = oh_lo; oh <= oh_hi; ++oh) {
      const int i = ph - 2 * oh;
      for (int ow = ow_lo; ow <= ow_hi; ++ow) {
        const int j = pw - 2 * ow;
        const int off = base + oh * rs + ow * cs;
        if (static_cast<int>(load_ro(argmax + off)) == i * 3 + j) {
          sum += static_cast<acc_t>(load_ro(grad_out + off));
        }
      }
    }
    grad_in[o] = static_cast<scalar_t>(sum);
  }
}

// ---------------------------------------------------------------------------
// Backward, any kernel / stride / padding / dilation
// ---------------------------------------------------------------------------
// Input row ih (px = ih + pH) is tap i of window oh when px = oh*sH + i*dH,
// 0 <= i < kH: oh in [ceil((px - (kH-1)*dH) / sH), floor(px / sH)] clipped
// to [0, OH), keeping the oh for which d = px - oh*sH (in [0, (kH-1)*dH]) is
// a multiple of dH; then i = d / dH. Same for columns.
template <typename scalar_t, typename arg_t, bool kChannelsLast,
          typename index_t>
__global__ void __launch_bounds__(kThreads)
    max_pool2d_bwd_kernel(const scalar_t* __restrict__ grad_out,
                          const arg_t* __restrict__ argmax,
                          scalar_t* __restrict__ grad_in, const PoolGeom g,
                          const index_t total, const DivMod<index_t> div0,
                          const DivMod<index_t> div1,
                          const DivMod<index_t> div2) {
  using acc_t = acc_type<scalar_t>;
  const int64_t rs = kChannelsLast ? g.OW * g.C : g.OW;
  const int64_t cs = kChannelsLast ? g.C : 1;
  const index_t step = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t o = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       o < total; o += step) {
    index_t ih, iw;
    int64_t base;
    if constexpr (kChannelsLast) {
      index_t c, q, q2, n;
      div0.divmod(o, q, c);
      div1.divmod(q, q2, iw);
      div2.divmod(q2, n, ih);
      base =
          static_cast<int64_t>(n) * g.OH * g.OW * g.C + static_cast<int64_t>(c);
    } else {
      index_t q, plane;
      div0.divmod(o, q, iw);
      div1.divmod(q, plane, ih);
      base = static_cast<int64_t>(plane) * g.OH * g.OW;
    }
    const int64_t ph = static_cast<int64_t>(ih) + g.pH;
    const int64_t pw = static_cast<int64_t>(iw) + g.pW;
    const int64_t oh_lo = first_window(ph, g.kH, g.sH, g.dH);
    const int64_t ow_lo = first_window(pw, g.kW, g.sW, g.dW);
    int64_t oh_hi = ph / g.sH;  // ph >= 0: truncation is floor
    int64_t ow_hi = pw / g.sW;
    if (oh_hi > g.OH - 1) oh_hi = g.OH - 1;
    if (ow_hi > g.OW - 1) ow_hi = g.OW - 1;
    acc_t sum = 0;
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh) {
      int64_t i = ph - oh * g.sH;
      if (g.dH != 1) {
        if (i % g.dH != 0) continue;
        i /= g.dH;
      }
      for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) {
        int64_t j = pw - ow * g.sW;
        if (g.dW != 1) {
          if (j % g.dW != 0) continue;
          j /= g.dW;
        }
        const int64_t off = base + oh * rs + ow * cs;
        if (static_cast<int64_t>(load_ro(argmax + off)) == i * g.kW + j) {
          sum += static_cast<acc_t>(load_ro(grad_out + off));
        }
      }
    }
    grad_in[o] = static_cast<scalar_t>(sum);
  }
}

// ---------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------

bool fits_32bit(const at::Tensor& t) {
  return t.numel() <= std::numeric_limits<int32_t>::max();
}

unsigned int grid_for(int64_t work) {
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

FastGeom fast_geom(int64_t H, int64_t W, int64_t C, int64_t OH, int64_t OW,
                   const PoolArgs& a) {
  return FastGeom{static_cast<int>(H),  static_cast<int>(W),
                  static_cast<int>(C),  static_cast<int>(OH),
                  static_cast<int>(OW), static_cast<int>(a.pH),
                  static_cast<int>(a.pW)};
}

template <typename scalar_t, typename arg_t, bool kWriteArg, bool kChannelsLast,
          int V>
void launch_fwd_fast(const at::Tensor& x, at::Tensor& out, arg_t* arg_ptr,
                     const FastGeom& g, cudaStream_t stream) {
  const int64_t work = out.numel() / V;
  DivMod32 d0, d1, d2;
  if constexpr (kChannelsLast) {
    d0 = DivMod32(g.C / V);
    d1 = DivMod32(g.OW);
    d2 = DivMod32(g.OH);
  } else {
    d0 = DivMod32(g.OW);
    d1 = DivMod32(g.OH);
  }
  max_pool2d_fwd_3x3s2_kernel<scalar_t, arg_t, kWriteArg, kChannelsLast, V>
      <<<grid_for(work), kThreads, 0, stream>>>(
          x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), arg_ptr, g,
          static_cast<uint32_t>(work), d0, d1, d2);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, typename arg_t, bool kWriteArg, bool kChannelsLast,
          typename index_t>
void launch_fwd_general(const at::Tensor& x, at::Tensor& out, arg_t* arg_ptr,
                        const PoolGeom& g, cudaStream_t stream) {
  const int64_t work = out.numel();
  DivMod<index_t> d0, d1, d2;
  if constexpr (kChannelsLast) {
    d0 = DivMod<index_t>(g.C);
    d1 = DivMod<index_t>(g.OW);
    d2 = DivMod<index_t>(g.OH);
  } else {
    d0 = DivMod<index_t>(g.OW);
    d1 = DivMod<index_t>(g.OH);
  }
  max_pool2d_fwd_kernel<scalar_t, arg_t, kWriteArg, kChannelsLast, index_t>
      <<<grid_for(work), kThreads, 0, stream>>>(
          x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), arg_ptr, g,
          static_cast<index_t>(work), d0, d1, d2);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, typename arg_t, bool kWriteArg>
void launch_forward(const at::Tensor& x, at::Tensor& out, arg_t* arg_ptr,
                    const PoolArgs& a, int64_t C, int64_t H,
                    int64_t W, int64_t OH, int64_t OW, bool channels_last,
                    cudaStream_t stream) {
  const bool use32 = fits_32bit(x) && fits_32bit(out);
  // The 3x3 path only ever sees uint8 argmax (9 <= 256).
  if constexpr (!std::is_same_v<arg_t, int32_t>) {
    if (use32 && a.is_3x3s2()) {
      const FastGeom g = fast_geom(H, W, C, OH, OW, a);
      if (!channels_last) {
        launch_fwd_fast<scalar_t, arg_t, kWriteArg, false, 1>(x, out, arg_ptr,
                                                              g, stream);
        return;
      }
      // 16-byte channel vectors: C a multiple of V and x 16-byte aligned
      // (out / argmax are fresh allocations, hence aligned).
      constexpr int V = 16 / static_cast<int>(sizeof(scalar_t));
      const bool aligned =
          reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 == 0;
      if (C % V == 0 && aligned) {
        launch_fwd_fast<scalar_t, arg_t, kWriteArg, true, V>(x, out, arg_ptr,
                                                             g, stream);
      } else {
        launch_fwd_fast<scalar_t, arg_t, kWriteArg, true, 1>(x, out, arg_ptr,
                                                             g, stream);
      }
      return;
    }
  }
  const PoolGeom g{H,    W,    C,    OH,   OW,   a.kH, a.kW,
                   a.sH, a.sW, a.pH, a.pW, a.dH, a.dW};
  if (channels_last) {
    if (use32) {
      launch_fwd_general<scalar_t, arg_t, kWriteArg, true, uint32_t>(
          x, out, arg_ptr, g, stream);
    } else {
      launch_fwd_general<scalar_t, arg_t, kWriteArg, true, int64_t>(
          x, out, arg_ptr, g, stream);
    }
  } else {
    if (use32) {
      launch_fwd_general<scalar_t, arg_t, kWriteArg, false, uint32_t>(
          x, out, arg_ptr, g, stream);
    } else {
      launch_fwd_general<scalar_t, arg_t, kWriteArg, false, int64_t>(
          x, out, arg_ptr, g, stream);
    }
  }
}

template <typename scalar_t, bool kChannelsLast>
void launch_bwd_fast(const at::Tensor& grad_out, const at::Tensor& argmax,
                     at::Tensor& grad_in, const FastGeom& g,
                     cudaStream_t stream) {
  const int64_t work = grad_in.numel();
  DivMod32 d0, d1, d2;
  if constexpr (kChannelsLast) {
    d0 = DivMod32(g.C);
    d1 = DivMod32(g.W);
    d2 = DivMod32(g.H);
  } else {
    d0 = DivMod32(g.W);
    d1 = DivMod32(g.H);
  }
  max_pool2d_bwd_3x3s2_kernel<scalar_t, kChannelsLast>
      <<<grid_for(work), kThreads, 0, stream>>>(
          grad_out.data_ptr<scalar_t>(), argmax.data_ptr<uint8_t>(),
          grad_in.data_ptr<scalar_t>(), g, static_cast<uint32_t>(work), d0, d1,
          d2);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, typename arg_t, bool kChannelsLast,
          typename index_t>
void launch_bwd_general(const at::Tensor& grad_out, const at::Tensor& argmax,
                        at::Tensor& grad_in, const PoolGeom& g,
                        cudaStream_t stream) {
  const int64_t work = grad_in.numel();
  DivMod<index_t> d0, d1, d2;
  if constexpr (kChannelsLast) {
    d0 = DivMod<index_t>(g.C);
    d1 = DivMod<index_t>(g.W);
    d2 = DivMod<index_t>(g.H);
  } else {
    d0 = DivMod<index_t>(g.W);
    d1 = DivMod<index_t>(g.H);
  }
  max_pool2d_bwd_kernel<scalar_t, arg_t, kChannelsLast, index_t>
      <<<grid_for(work), kThreads, 0, stream>>>(
          grad_out.data_ptr<scalar_t>(), argmax.data_ptr<arg_t>(),
          grad_in.data_ptr<scalar_t>(), g, static_cast<index_t>(work), d0, d1,
          d2);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, typename arg_t>
void launch_backward(const at::Tensor& grad_out, const at::Tensor& argmax,
                     at::Tensor& grad_in, const PoolArgs& a, int64_t C,
                     int64_t H, int64_t W, int64_t OH, int64_t OW,
                     bool channels_last, cudaStream_t stream) {
  const bool use32 = fits_32bit(grad_in) && fits_32bit(grad_out);
  if constexpr (std::is_same_v<arg_t, uint8_t>) {
    if (use32 && a.is_3x3s2()) {
      const FastGeom g = fast_geom(H, W, C, OH, OW, a);
      if (channels_last) {
        launch_bwd_fast<scalar_t, true>(grad_out, argmax, grad_in, g, stream);
      } else {
        launch_bwd_fast<scalar_t, false>(grad_out, argmax, grad_in, g, stream);
      }
      return;
    }
  }
  const PoolGeom g{H,    W,    C,    OH,   OW,   a.kH, a.kW,
                   a.sH, a.sW, a.pH, a.pW, a.dH, a.dW};
  if (channels_last) {
    if (use32) {
      launch_bwd_general<scalar_t, arg_t, true, uint32_t>(grad_out, argmax,
                                                          grad_in, g, stream);
    } else {
      launch_bwd_general<scalar_t, arg_t, true, int64_t>(grad_out, argmax,
                                                         grad_in, g, stream);
    }
  } else {
    if (use32) {
      launch_bwd_general<scalar_t, arg_t, false, uint32_t>(grad_out, argmax,
                                                           grad_in, g, stream);
    } else {
      launch_bwd_general<scalar_t, arg_t, false, int64_t>(grad_out, argmax,
                                                          grad_in, g, stream);
    }
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> max_pool2d_forward_cuda(
    const at::Tensor& x_in, at::IntArrayRef kernel_size,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    bool ceil_mode, bool need_argmax) {
  constexpr const char* op = "max_pool2d_forward";
  TORCH_CHECK(x_in.is_cuda(), op, ": x must be a CUDA tensor, got device ",
              x_in.device());
  TORCH_CHECK(x_in.dim() == 4, op, ": x must be 4-D (N, C, H, W), got shape ",
              x_in.sizes());
  const PoolArgs a =
      check_pool_args(op, kernel_size, stride, padding, dilation);
  const int64_t C = x_in.size(1);
  const int64_t H = x_in.size(2), W = x_in.size(3);
  const int64_t OH = pooling_output_size(H, a.kH, a.pH, a.sH, a.dH, ceil_mode);
  const int64_t OW = pooling_output_size(W, a.kW, a.pW, a.sW, a.dW, ceil_mode);
  TORCH_CHECK(OH >= 1 && OW >= 1, op, ": output size (", OH, ", ", OW,
              ") is too small for input (H, W) = (", H, ", ", W,
              ") with kernel_size=", kernel_size, ", stride=", stride,
              ", padding=", padding, ", dilation=", dilation,
              ", ceil_mode=", ceil_mode);

  c10::cuda::CUDAGuard guard(x_in.device());
  PoolForwardTensors t = pool_forward_tensors(x_in, OH, OW, a, need_argmax);
  if (t.out.numel() == 0) return std::make_tuple(t.out, t.argmax);

  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, t.x.scalar_type(), "max_pool2d_forward_cuda",
      [&] {
        if (!need_argmax) {
          launch_forward<scalar_t, uint8_t, false>(t.x, t.out, nullptr, a, C, H,
                                                   W, OH, OW, t.channels_last,
                                                   stream);
        } else if (a.int32_argmax()) {
          launch_forward<scalar_t, int32_t, true>(
              t.x, t.out, t.argmax.data_ptr<int32_t>(), a, C, H, W, OH, OW,
              t.channels_last, stream);
        } else {
          launch_forward<scalar_t, uint8_t, true>(
              t.x, t.out, t.argmax.data_ptr<uint8_t>(), a, C, H, W, OH, OW,
              t.channels_last, stream);
        }
      });
  return std::make_tuple(t.out, t.argmax);
}

at::Tensor max_pool2d_backward_cuda(const at::Tensor& grad_out_in,
                                    const at::Tensor& argmax_in,
                                    int64_t input_height, int64_t input_width,
                                    at::IntArrayRef kernel_size,
                                    at::IntArrayRef stride,
                                    at::IntArrayRef padding,
                                    at::IntArrayRef dilation) {
  constexpr const char* op = "max_pool2d_backward";
  TORCH_CHECK(grad_out_in.is_cuda(), op,
              ": grad_out must be a CUDA tensor, got device ",
              grad_out_in.device());
  TORCH_CHECK(argmax_in.device() == grad_out_in.device(), op,
              ": argmax must be on grad_out's device ", grad_out_in.device(),
              ", got ", argmax_in.device());
  TORCH_CHECK(grad_out_in.dim() == 4, op,
              ": grad_out must be 4-D (N, C, OH, OW), got shape ",
              grad_out_in.sizes());
  TORCH_CHECK(argmax_in.sizes() == grad_out_in.sizes(), op,
              ": argmax must have grad_out's shape ", grad_out_in.sizes(),
              ", got ", argmax_in.sizes());
  const PoolArgs a =
      check_pool_args(op, kernel_size, stride, padding, dilation);
  check_argmax_dtype(op, argmax_in, a, kernel_size);
  const bool int32_arg = a.int32_argmax();
  const int64_t H = input_height, W = input_width;
  TORCH_CHECK(H >= 1 && W >= 1, op,
              ": input_height and input_width must be >= 1, got (", H, ", ",
              W, ")");
  const int64_t N = grad_out_in.size(0), C = grad_out_in.size(1);
  const int64_t OH = grad_out_in.size(2), OW = grad_out_in.size(3);
  // ceil_mode is not passed: the output size must be the floor or the ceil one.
  TORCH_CHECK(OH >= 1 && OW >= 1 &&
                  pooling_output_size_ok(OH, H, a.kH, a.pH, a.sH, a.dH) &&
                  pooling_output_size_ok(OW, W, a.kW, a.pW, a.sW, a.dW),
              op, ": grad_out spatial size (", OH, ", ", OW,
              ") does not match input (H, W) = (", H, ", ", W,
              ") with kernel_size=", kernel_size, ", stride=", stride,
              ", padding=", padding, ", dilation=", dilation);

  c10::cuda::CUDAGuard guard(grad_out_in.device());
  // argmax's format decides; grad_out is brought to it (no copy if it matches).
  const at::MemoryFormat mf = argmax_in.suggest_memory_format();
  const at::Tensor argmax = argmax_in.contiguous(mf);
  const at::Tensor grad_out = grad_out_in.contiguous(mf);
  const bool channels_last = mf == at::MemoryFormat::ChannelsLast;
  at::Tensor grad_in =
      at::empty({N, C, H, W}, grad_out.options().memory_format(mf));
  if (grad_in.numel() == 0) return grad_in;

  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad_out.scalar_type(),
      "max_pool2d_backward_cuda", [&] {
        if (int32_arg) {
          launch_backward<scalar_t, int32_t>(grad_out, argmax, grad_in, a, C, H,
                                             W, OH, OW, channels_last, stream);
        } else {
          launch_backward<scalar_t, uint8_t>(grad_out, argmax, grad_in, a, C, H,
                                             W, OH, OW, channels_last, stream);
        }
      });
  return grad_in;
}

}  // namespace alexnet_fast

TORCH_LIBRARY_IMPL(alexnet_fast, CUDA, m) {
  m.impl("max_pool2d_forward",
         TORCH_FN(alexnet_fast::max_pool2d_forward_cuda));
  m.impl("max_pool2d_backward",
         TORCH_FN(alexnet_fast::max_pool2d_backward_cuda));
}
