// The CUDA kernels of alexnet_fast::max_pool2d_forward / _backward, their
// launch plan and their variant dispatch: a bit-exact, deterministic drop-in
// for F.max_pool2d on (N, C, H, W) input. Device code and plain host code
// only (no ATen): max_pool2d_glue.h runs it on CUDA tensors
// (max_pool2d_kernel.cu) and on the CPU (host/max_pool2d_kernel.cpp). The
// rules are in docs/math.md ("Max-pool").
//
// Kernels: one thread per output (forward) / input (backward) element,
// consecutive threads on consecutive elements of the innermost dimension (w
// for NCHW, c for NHWC), so loads and stores coalesce; grid-stride loops.
//   * 3x3 / stride 2 / dilation 1 (AlexNet) with window-position argmax:
//     compile-time window, unrolled; windows wholly inside the plane take a
//     branch-free path. NHWC with C a multiple of the 16-byte vector width
//     handles 16 bytes of channels per thread.
//   * any other window, or int64 flat indices: runtime window loops.
// Flat indices are split with magic-number division (uint32) when every
// tensor has fewer than 2^31 elements, else with int64 arithmetic.
#pragma once

#include <c10/macros/Macros.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <ATen/OpMathType.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "pool_common.cuh"

namespace alexnet_fast::max_pool2d_cuda {

constexpr int kThreads = 256;                    // the kernels' launch bound and block size
constexpr int64_t kMaxBlocks = (int64_t{1} << 31) - 1;  // gridDim.x limit

// The pooled tensors' shape and window, host-built (max_pool2d_glue.h).
struct PoolShape {
  int64_t C, H, W, OH, OW;
  int64_t kH, kW, sH, sW, pH, pW, dH, dW;
};

// The 3x3 / stride 2 path's shape in int: used only when every tensor has
// fewer than 2^31 elements, so every offset fits.
struct SmallShape {
  int H, W, C, OH, OW, pH, pW;
};

// ---------------------------------------------------------------------------
// Device helpers

// A raw word of a given byte count, for vector loads / stores.
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

// What an argmax element holds for the window whose first tap is input
// (ih0, iw0): the window position p = i * kW + j (uint8, int32), or PyTorch's
// flat index of the winner in its plane (int64).
template <typename arg_t>
__device__ __forceinline__ arg_t encode_argmax(int64_t pos, int64_t ih0, int64_t iw0, int64_t kW, int64_t dH,
                                               int64_t dW, int64_t W) {
  if constexpr (std::is_same_v<arg_t, int64_t>) {
    return (ih0 + (pos / kW) * dH) * W + iw0 + (pos % kW) * dW;
  } else {
    return static_cast<arg_t>(pos);
  }
}

// Whether argmax value a routes the window's gradient to input (ih, iw), tap
// (i, j) of the window: the inverse of encode_argmax.
template <typename arg_t>
__device__ __forceinline__ bool routes_to(arg_t a, int64_t i, int64_t j, int64_t ih, int64_t iw, int64_t kW,
                                          int64_t W) {
  if constexpr (std::is_same_v<arg_t, int64_t>) {
    return a == ih * W + iw;
  } else {
    return static_cast<int64_t>(a) == i * kW + j;
  }
}

// ---------------------------------------------------------------------------
// Forward, 3x3 / stride 2 / dilation 1, window-position argmax. A work item is
// V consecutive channels (NHWC, V = 16 bytes / sizeof) or one output element:
// work item o covers the output elements [o*V, o*V + V) of the dense output,
// i.e. pooled position (oh, ow) and channels [c, c + V) with c = (o*V) % C.
template <typename scalar_t, typename arg_t, bool kWriteArg, bool kChannelsLast, int V>
__global__ void __launch_bounds__(kThreads)
    max_pool2d_fwd_3x3s2_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ out,
                                arg_t* __restrict__ argmax, const SmallShape g, const uint32_t total,
                                const PlaneDecoder<uint32_t> decode) {
  static_assert(kChannelsLast || V == 1, "NCHW is not vectorised");
  using acc_t = at::opmath_type<scalar_t>;
  // Element strides of one window row / column step.
  const int rs = kChannelsLast ? g.W * g.C : g.W;
  const int cs = kChannelsLast ? g.C : 1;
  const uint32_t step = gridDim.x * blockDim.x;
  for (uint32_t o = blockIdx.x * blockDim.x + threadIdx.x; o < total; o += step) {
    // NHWC decodes channel groups of V (decode.d0 = C / V).
    const PlaneIndex<uint32_t> at = decode_plane_index<kChannelsLast>(o, decode);
    const int c = static_cast<int>(at.c) * V;
    const int base = kChannelsLast ? static_cast<int>(at.n) * g.H * g.W * g.C + c
                                   : (static_cast<int>(at.n) * g.C + c) * g.H * g.W;
    const int ih0 = static_cast<int>(at.row) * 2 - g.pH;
    const int iw0 = static_cast<int>(at.col) * 2 - g.pW;

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
      // Border window (padding, or a ceil_mode window past the end).
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
// Forward, any window, either argmax encoding.
template <typename scalar_t, typename arg_t, bool kWriteArg, bool kChannelsLast, typename index_t>
__global__ void __launch_bounds__(kThreads)
    max_pool2d_fwd_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ out, arg_t* __restrict__ argmax,
                          const PoolShape g, const index_t total, const PlaneDecoder<index_t> decode) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t rs = kChannelsLast ? g.W * g.C : g.W;
  const int64_t cs = kChannelsLast ? g.C : 1;
  const index_t step = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t o = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += step) {
    const PlaneIndex<index_t> at = decode_plane_index<kChannelsLast>(o, decode);
    const int64_t n = static_cast<int64_t>(at.n), c = static_cast<int64_t>(at.c);
    const int64_t base = kChannelsLast ? n * g.H * g.W * g.C + c : (n * g.C + c) * g.H * g.W;
    const int64_t ih0 = static_cast<int64_t>(at.row) * g.sH - g.pH;
    const int64_t iw0 = static_cast<int64_t>(at.col) * g.sW - g.pW;
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
    if constexpr (kWriteArg) argmax[o] = encode_argmax<arg_t>(pos, ih0, iw0, g.kW, g.dH, g.dW, g.W);
  }
}

// ---------------------------------------------------------------------------
// Backward, 3x3 / stride 2 / dilation 1, uint8 window positions. Input row ih
// (px = ih + pH) lies in the windows oh with
//   2 oh <= px <= 2 oh + 2  <=>  ceil((px - 2) / 2) <= oh <= floor(px / 2),
// at row offset i = px - 2 oh; at most 2 rows x 2 columns of windows, visited
// in increasing (oh, ow) order (PyTorch's summation order).
template <typename scalar_t, bool kChannelsLast>
__global__ void __launch_bounds__(kThreads)
    max_pool2d_bwd_3x3s2_kernel(const scalar_t* __restrict__ grad_out, const uint8_t* __restrict__ argmax,
                                scalar_t* __restrict__ grad_in, const SmallShape g, const uint32_t total,
                                const PlaneDecoder<uint32_t> decode) {
  using acc_t = at::opmath_type<scalar_t>;
  const int rs = kChannelsLast ? g.OW * g.C : g.OW;  // grad_out row stride
  const int cs = kChannelsLast ? g.C : 1;            // grad_out column stride
  const uint32_t step = gridDim.x * blockDim.x;
  for (uint32_t o = blockIdx.x * blockDim.x + threadIdx.x; o < total; o += step) {
    const PlaneIndex<uint32_t> at = decode_plane_index<kChannelsLast>(o, decode);
    const int n = static_cast<int>(at.n), c = static_cast<int>(at.c);
    const int base = kChannelsLast ? n * g.OH * g.OW * g.C + c : (n * g.C + c) * g.OH * g.OW;
    const int ph = static_cast<int>(at.row) + g.pH;
    const int pw = static_cast<int>(at.col) + g.pW;
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
        if (static_cast<int>(load_ro(argmax + off)) == i * 3 + j) sum += static_cast<acc_t>(load_ro(grad_out + off));
      }
    }
    grad_in[o] = static_cast<scalar_t>(sum);
  }
}

// ---------------------------------------------------------------------------
// Backward, any window, either argmax encoding. Input row ih (px = ih + pH)
// is tap i of window oh when px = oh sH + i dH, 0 <= i < kH: oh in
// [ceil((px - (kH-1) dH) / sH), floor(px / sH)] clipped to [0, OH), keeping
// the oh for which d = px - oh sH is a multiple of dH; then i = d / dH. Same
// for columns.
template <typename scalar_t, typename arg_t, bool kChannelsLast, typename index_t>
__global__ void __launch_bounds__(kThreads)
    max_pool2d_bwd_kernel(const scalar_t* __restrict__ grad_out, const arg_t* __restrict__ argmax,
                          scalar_t* __restrict__ grad_in, const PoolShape g, const index_t total,
                          const PlaneDecoder<index_t> decode) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t rs = kChannelsLast ? g.OW * g.C : g.OW;
  const int64_t cs = kChannelsLast ? g.C : 1;
  const index_t step = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t o = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += step) {
    const PlaneIndex<index_t> at = decode_plane_index<kChannelsLast>(o, decode);
    const int64_t n = static_cast<int64_t>(at.n), c = static_cast<int64_t>(at.c);
    const int64_t ih = static_cast<int64_t>(at.row), iw = static_cast<int64_t>(at.col);
    const int64_t base = kChannelsLast ? n * g.OH * g.OW * g.C + c : (n * g.C + c) * g.OH * g.OW;
    const int64_t ph = ih + g.pH;
    const int64_t pw = iw + g.pW;
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
        if (routes_to(load_ro(argmax + off), i, j, ih, iw, g.kW, g.W)) {
          sum += static_cast<acc_t>(load_ro(grad_out + off));
        }
      }
    }
    grad_in[o] = static_cast<scalar_t>(sum);
  }
}

// ---------------------------------------------------------------------------
// Launch plans (host): which kernel, how many threads, which index width.

enum class PoolVariant { k3x3s2, kGeneral };

struct PoolPlan {
  PoolVariant variant;
  bool index32;     // uint32 flat indices and magic-number division
  int vector;       // channels per thread (3x3/s2 NHWC forward), else 1
  int64_t work;     // work items: elements / vector
  dim3 grid, block;
};

inline unsigned int grid_for(int64_t work) {
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

// 32-bit indexing when every tensor has fewer than 2^31 elements (unless the
// test-only force_index64 asks for the int64 path).
inline bool fits_index32(int64_t a_numel, int64_t b_numel, bool force_index64) {
  constexpr int64_t kIntMax = (int64_t{1} << 31) - 1;
  return !force_index64 && a_numel <= kIntMax && b_numel <= kIntMax;
}

// x_aligned16: the input's data is 16-byte aligned (outputs are fresh
// allocations, hence aligned). flat_indices: int64 argmax (general kernel).
inline PoolPlan plan_max_pool2d_forward(const PoolShape& g, int64_t x_numel, int64_t out_numel, bool channels_last,
                                        bool flat_indices, int element_bytes, bool x_aligned16,
                                        bool force_index64) {
  PoolPlan p{};
  p.index32 = fits_index32(x_numel, out_numel, force_index64);
  const bool window_3x3s2 = g.kH == 3 && g.kW == 3 && g.sH == 2 && g.sW == 2 && g.dH == 1 && g.dW == 1;
  p.variant = p.index32 && window_3x3s2 && !flat_indices && g.kH * g.kW <= 256 ? PoolVariant::k3x3s2
                                                                               : PoolVariant::kGeneral;
  p.vector = 1;
  if (p.variant == PoolVariant::k3x3s2 && channels_last) {
    const int v = 16 / element_bytes;
    if (g.C % v == 0 && x_aligned16) p.vector = v;
  }
  p.work = out_numel / p.vector;
  p.grid = dim3(grid_for(p.work));
  p.block = dim3(kThreads);
  return p;
}

inline PoolPlan plan_max_pool2d_backward(const PoolShape& g, int64_t grad_in_numel, int64_t grad_out_numel,
                                         bool position_argmax_uint8, bool force_index64) {
  PoolPlan p{};
  p.index32 = fits_index32(grad_in_numel, grad_out_numel, force_index64);
  const bool window_3x3s2 = g.kH == 3 && g.kW == 3 && g.sH == 2 && g.sW == 2 && g.dH == 1 && g.dW == 1;
  p.variant = p.index32 && window_3x3s2 && position_argmax_uint8 ? PoolVariant::k3x3s2 : PoolVariant::kGeneral;
  p.vector = 1;
  p.work = grad_in_numel;
  p.grid = dim3(grid_for(p.work));
  p.block = dim3(kThreads);
  return p;
}

inline SmallShape small_shape(const PoolShape& g) {
  return SmallShape{static_cast<int>(g.H),  static_cast<int>(g.W),  static_cast<int>(g.C), static_cast<int>(g.OH),
                    static_cast<int>(g.OW), static_cast<int>(g.pH), static_cast<int>(g.pW)};
}

// ---------------------------------------------------------------------------
// Variant dispatch: the plan's kernel through the launcher
// (CudaLauncher, host::HostLauncher).

template <typename scalar_t, typename arg_t, bool kWriteArg, bool kChannelsLast, typename Launcher>
void launch_max_pool2d_forward(const Launcher& launcher, const PoolPlan& p, const PoolShape& g, const scalar_t* x,
                               scalar_t* out, arg_t* argmax) {
  // The 3x3/s2 plan only ever has uint8 window positions (9 <= 256).
  if constexpr (std::is_same_v<arg_t, uint8_t>) {
    if (p.variant == PoolVariant::k3x3s2) {
      const SmallShape s = small_shape(g);
      auto run = [&](auto vector) {
        constexpr int V = decltype(vector)::value;
        if constexpr (kChannelsLast || V == 1) {
          const PlaneDecoder<uint32_t> decode(g.C / V, g.OH, g.OW, kChannelsLast);
          launcher.template launch<kThreads>(max_pool2d_fwd_3x3s2_kernel<scalar_t, arg_t, kWriteArg, kChannelsLast, V>,
                                             p.grid, p.block, x, out, argmax, s, static_cast<uint32_t>(p.work),
                                             decode);
        }
      };
      if (p.vector == 1) {
        run(std::integral_constant<int, 1>{});
      } else {
        run(std::integral_constant<int, 16 / static_cast<int>(sizeof(scalar_t))>{});
      }
      return;
    }
  }
  auto run = [&](auto index) {
    using index_t = typename decltype(index)::type;
    const PlaneDecoder<index_t> decode(g.C, g.OH, g.OW, kChannelsLast);
    launcher.template launch<kThreads>(max_pool2d_fwd_kernel<scalar_t, arg_t, kWriteArg, kChannelsLast, index_t>,
                                       p.grid, p.block, x, out, argmax, g, static_cast<index_t>(p.work), decode);
  };
  if (p.index32) {
    run(TypeTag<uint32_t>{});
  } else {
    run(TypeTag<int64_t>{});
  }
}

template <typename scalar_t, typename arg_t, bool kChannelsLast, typename Launcher>
void launch_max_pool2d_backward(const Launcher& launcher, const PoolPlan& p, const PoolShape& g,
                                const scalar_t* grad_out, const arg_t* argmax, scalar_t* grad_in) {
  if constexpr (std::is_same_v<arg_t, uint8_t>) {
    if (p.variant == PoolVariant::k3x3s2) {
      const PlaneDecoder<uint32_t> decode(g.C, g.H, g.W, kChannelsLast);
      launcher.template launch<kThreads>(max_pool2d_bwd_3x3s2_kernel<scalar_t, kChannelsLast>, p.grid, p.block,
                                         grad_out, argmax, grad_in, small_shape(g), static_cast<uint32_t>(p.work),
                                         decode);
      return;
    }
  }
  auto run = [&](auto index) {
    using index_t = typename decltype(index)::type;
    const PlaneDecoder<index_t> decode(g.C, g.H, g.W, kChannelsLast);
    launcher.template launch<kThreads>(max_pool2d_bwd_kernel<scalar_t, arg_t, kChannelsLast, index_t>, p.grid,
                                       p.block, grad_out, argmax, grad_in, g, static_cast<index_t>(p.work), decode);
  };
  if (p.index32) {
    run(TypeTag<uint32_t>{});
  } else {
    run(TypeTag<int64_t>{});
  }
}

}  // namespace alexnet_fast::max_pool2d_cuda
