// CPU kernels of alexnet_fast::max_pool2d_forward / max_pool2d_backward: a
// drop-in for F.max_pool2d that is bit-exact (values, argmax, and float32 /
// float64 gradients), deterministic (no atomics, fixed summation order) and
// faster than PyTorch's eager and torch.compile kernels.
//
// Semantics (PyTorch's CPU kernel; docs/math.md, "Max-pool"):
//   out(oh, ow) = max over the window  ih = oh*sH - pH + i*dH, iw = ow*sW - pW + j*dW
//   (i < kH, j < kW); out-of-bounds positions are padding and never selected.
//   The max is the fold   maxval = -inf, maxpos = first in-bounds position,
//   for (i, j) row-major: if (val > maxval || isnan(val)) maxval = val, maxpos = i*kW + j
//   so ties go to the first position, a NaN window to its LAST NaN, and an
//   all -inf window to its first in-bounds element. argmax = i*kW + j.
//
// That fold is associative over consecutive segments: folding a later segment
// B into the state A of an earlier one with the same test (B.val > A.val ||
// isnan(B.val)) gives the fold of the concatenation (a NaN in B is B's last
// NaN, which is the overall last NaN; without NaN in B, B wins only with a
// strictly larger max; ties keep A's earlier position). Row segments of a
// window are consecutive in row-major order, so the 3x3/stride-2 fast path
// may first reduce each input row horizontally (3 columns at stride 2, shared
// by every output row using that input row) and then fold the 3 row results
// vertically: exactly PyTorch's result, at about half the comparisons. (The
// other order, columns first, is NOT equivalent: columns are not consecutive
// in row-major order.)
//
// Backward is a gather: every input element sums, in fp32 (float64 for
// double) from 0, the gradients of the windows whose argmax points at it,
// visiting those windows in increasing (oh, ow) order -- the order in which
// PyTorch's scatter (grad_input[argmax] += grad_output, zero-filled first)
// adds them, hence bit-identical float32/float64 gradients. Adding 0 for a
// non-matching window changes nothing (x + 0 == x for every x that is not
// -0, and the accumulator, starting from +0, is never -0), so the fast path
// adds `match ? g : 0` branch-free.
//
// Layouts: contiguous NCHW and channels-last NHWC are handled natively (the
// NHWC kernels vectorise across the contiguous channels), anything else is
// copied to the suggested memory format first. Parallelism: at::parallel_for
// over (n, c) planes for NCHW, over (n, row) rows for NHWC.
//
// Instruction sets: the build stays at the x86-64 baseline (no -march). The
// hot kernels (the "SIMD section", max_pool2d_simd.h, on the vector types of
// max_pool2d_vectors.h) are compiled three times, into the namespaces base
// (SSE2), avx2 and avx512, by including that header under
// `#pragma GCC target`, and one is picked at run time from the CPU's features
// (cpu_isa.h; override: env ALEXNET_FAST_CPU_ISA).
// All three produce identical bits. Non-x86 or non-GCC builds compile the
// section once, for their default target.


#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include "../pool_geometry.h"
#include "cpu_isa.h"
#include "output_allocator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

// Everything the hot kernels call must be inlined into them, lambdas
// included: GCC lowers the vector operations of a function for the target it
// is compiled for, so a helper left out of line (or lowered before inlining)
// would run 64-byte vectors as scalar code.
#if defined(__GNUC__)
#define AF_INLINE inline __attribute__((always_inline))
#define AF_LAMBDA_INLINE __attribute__((always_inline))
#else
#define AF_INLINE inline
#define AF_LAMBDA_INLINE
#endif

// GCC's generic vector extensions carry the explicit SIMD code of the float/
// double fast paths; other compilers run the same algorithms as scalar loops
// (the NCHW 3x3/s2 backward then takes the general path). -DAF_VECTOR_EXT=0
// forces that portable build (for testing it with GCC).
#if !defined(AF_VECTOR_EXT)
#if defined(__GNUC__) && !defined(__clang__)
#define AF_VECTOR_EXT 1
#else
#define AF_VECTOR_EXT 0
#endif
#endif
#if defined(__GNUC__)
#define AF_PREFETCH(p) __builtin_prefetch((p), 0, 2)
#else
#define AF_PREFETCH(p) ((void)(p))
#endif
// Multi-target build (cpu_isa.h): only with the vector extensions, which
// carry the per-target code.
#define AF_POOL_MULTI_TARGET (AF_MULTI_TARGET && AF_VECTOR_EXT)

namespace alexnet_fast {
namespace {

// Compare and accumulate type: float for float/half/bfloat16, double for double.
template <typename T>
using acc_t = std::conditional_t<std::is_same<T, double>::value, double, float>;

// Positions in the vector kernels: lanes as wide as the compared values (one
// compare mask drives the blends of both).
template <typename acc>
using pos_t = std::conditional_t<std::is_same<acc, double>::value, int64_t, int32_t>;

// The fold's update test, branch-free (`|` not `||`) so that it if-converts
// into vector compare + blend.
template <typename V>
AF_INLINE bool takes(V val, V maxval) {
  return (val > maxval) | (val != val);
}

// The stored output of a window whose fold gave `m`, won by the element
// `winner` (a callable returning a pointer to it, only evaluated for NaN).
// float/double: m itself (the winner's exact bits). bfloat16: PyTorch's NCHW
// kernel stores c10::BFloat16(m), which is exact except that every NaN becomes
// 0x7FC0; we do the same. (Its vectorised channels-last path writes 0xFFFF
// for NaN instead, so channels-last bf16 NaN bits can differ from PyTorch;
// the value is NaN either way.) float16: PyTorch converts with the F16C
// instructions, whose half -> float -> half round trip keeps a NaN's sign and
// payload and sets its quiet bit (0x0200); c10's software conversion, which
// this file gets without -mf16c, canonicalises NaN to 0x7E00 instead. So a
// NaN result re-reads the winning element and sets its quiet bit.
template <typename scalar_t, typename F>
AF_INLINE scalar_t out_value(acc_t<scalar_t> m, F&& winner) {
  if constexpr (std::is_same<scalar_t, c10::Half>::value) {
    if (m != m)
      return c10::Half(static_cast<uint16_t>(winner()->x | 0x0200),
                       c10::Half::from_bits());
  }
  return static_cast<scalar_t>(m);
}

// floor(a / b) for b > 0 (C++ division truncates toward zero).
AF_INLINE int64_t div_floor(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// The pooling window and the sizes of one input plane (H, W) and its pooled
// output (OH, OW).
struct PoolPlaneGeometry {
  int64_t kH, kW, sH, sW, pH, pW, dH, dW;
  int64_t H, W, OH, OW;
};

PoolPlaneGeometry make_pool_plane_geometry(const PoolWindow& w, int64_t H, int64_t W, std::pair<int64_t, int64_t> pooled) {
  return PoolPlaneGeometry{w.kH, w.kW, w.sH, w.sW, w.pH, w.pW, w.dH, w.dW, H, W, pooled.first, pooled.second};
}

// The in-bounds range [lo, hi) of window offsets i for the window starting at
// `start` (= o*s - p) with dilation d over an axis of length n.
AF_INLINE void window_range(int64_t start, int64_t k, int64_t d, int64_t n,
                            int64_t& lo, int64_t& hi) {
  lo = start < 0 ? (-start + d - 1) / d : 0;
  hi = n - start > 0 ? std::min(k, (n - start + d - 1) / d) : 0;
  if (hi < lo) hi = lo;
}

// One window, any geometry, scalar: exactly PyTorch's loop. `in` is the
// plane, element (ih, iw) at in[(ih*W + iw) * cs] (cs = 1 for NCHW).
template <typename scalar_t>
AF_INLINE void window_generic(const scalar_t* in, int64_t cs, const PoolPlaneGeometry& g,
                              int64_t oh, int64_t ow, acc_t<scalar_t>& maxval,
                              int32_t& maxpos) {
  const int64_t ih0 = oh * g.sH - g.pH, iw0 = ow * g.sW - g.pW;
  int64_t i_lo, i_hi, j_lo, j_hi;
  window_range(ih0, g.kH, g.dH, g.H, i_lo, i_hi);
  window_range(iw0, g.kW, g.dW, g.W, j_lo, j_hi);
  acc_t<scalar_t> m = -std::numeric_limits<acc_t<scalar_t>>::infinity();
  int32_t p = static_cast<int32_t>(i_lo * g.kW + j_lo);
  for (int64_t i = i_lo; i < i_hi; ++i) {
    const scalar_t* row = in + (ih0 + i * g.dH) * g.W * cs;
    for (int64_t j = j_lo; j < j_hi; ++j) {
      const acc_t<scalar_t> v = row[(iw0 + j * g.dW) * cs];
      if ((v > m) || std::isnan(v)) {
        m = v;
        p = static_cast<int32_t>(i * g.kW + j);
      }
    }
  }
  maxval = m;
  maxpos = p;
}

// What an argmax element holds for the window whose first tap is input
// (ih0, iw0): the position p = i * kW + j inside the window (uint8, int32), or,
// for int64, PyTorch's flat index of the winning input element in its plane.
template <typename index_t>
AF_INLINE index_t encode_argmax(int64_t p, int64_t ih0, int64_t iw0, const PoolPlaneGeometry& g) {
  if constexpr (std::is_same<index_t, int64_t>::value) {
    return (ih0 + (p / g.kW) * g.dH) * g.W + iw0 + (p % g.kW) * g.dW;
  } else {
    return static_cast<index_t>(p);
  }
}

// The argmax value that routes a window's gradient to input (ih, iw), tap
// (i, j) of that window: the inverse of encode_argmax.
template <typename index_t>
AF_INLINE int64_t argmax_code(int64_t i, int64_t j, int64_t ih, int64_t iw, const PoolPlaneGeometry& g) {
  if constexpr (std::is_same<index_t, int64_t>::value) {
    return ih * g.W + iw;
  } else {
    return i * g.kW + j;
  }
}

// ---------------------------------------------------------------------------
// Forward, NCHW, general geometry: one plane, scalar, PyTorch's loop.
template <typename scalar_t, typename index_t, bool kArg>
void fwd_nchw_generic_plane(const scalar_t* in, scalar_t* out, index_t* argmax,
                            const PoolPlaneGeometry& g) {
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      acc_t<scalar_t> m;
      int32_t p;
      window_generic(in, 1, g, oh, ow, m, p);
      out[oh * g.OW + ow] = out_value<scalar_t>(m, [&] {
        return in + (oh * g.sH - g.pH + (p / g.kW) * g.dH) * g.W +
               ow * g.sW - g.pW + (p % g.kW) * g.dW;
      });
      if (kArg) argmax[oh * g.OW + ow] = encode_argmax<index_t>(p, oh * g.sH - g.pH, ow * g.sW - g.pW, g);
    }
  }
}

// ---------------------------------------------------------------------------
// Backward helpers: for every input row ih (resp. column iw) the windows that
// contain it, as (o, offset) pairs in increasing o. Window o covers
// o*s - p + t*d for t < k, so ih is in it when ih + p - o*s = t*d, 0 <= t < k:
//   o in [ceil((ih + p - (k-1)*d) / s), floor((ih + p) / s)] clipped to
//   [0, O), keeping the o where (ih + p - o*s) is a multiple of d.
struct Taps {
  std::vector<int64_t> start;  // size n + 1
  std::vector<int32_t> o, t;
};

Taps make_taps(int64_t n, int64_t O, int64_t k, int64_t s, int64_t p,
               int64_t d) {
  Taps taps;
  taps.start.reserve(n + 1);
  for (int64_t x = 0; x < n; ++x) {
    taps.start.push_back(static_cast<int64_t>(taps.o.size()));
    const int64_t o_lo = std::max<int64_t>(0, -div_floor(-(x + p - (k - 1) * d), s));
    const int64_t o_hi = std::min<int64_t>(O - 1, div_floor(x + p, s));
    for (int64_t o = o_lo; o <= o_hi; ++o) {
      const int64_t r = x + p - o * s;
      if (r < 0 || r % d != 0 || r / d >= k) continue;
      taps.o.push_back(static_cast<int32_t>(o));
      taps.t.push_back(static_cast<int32_t>(r / d));
    }
  }
  taps.start.push_back(static_cast<int64_t>(taps.o.size()));
  return taps;
}

// Backward, NCHW, general geometry: one plane, one element at a time.
template <typename scalar_t, typename index_t>
void bwd_nchw_generic_plane(const scalar_t* grad_out, const index_t* argmax,
                            scalar_t* grad_in, const PoolPlaneGeometry& g, const Taps& rt,
                            const Taps& ct) {
  using acc = acc_t<scalar_t>;
  for (int64_t ih = 0; ih < g.H; ++ih) {
    for (int64_t iw = 0; iw < g.W; ++iw) {
      acc s = 0;
      for (int64_t a = rt.start[ih]; a < rt.start[ih + 1]; ++a) {
        const int64_t row = rt.o[a] * g.OW;
        for (int64_t b = ct.start[iw]; b < ct.start[iw + 1]; ++b) {
          const int64_t idx = row + ct.o[b];
          if (static_cast<int64_t>(argmax[idx]) == argmax_code<index_t>(rt.t[a], ct.t[b], ih, iw, g))
            s += static_cast<acc>(grad_out[idx]);
        }
      }
      grad_in[ih * g.W + iw] = static_cast<scalar_t>(s);
    }
  }
}


// Output rows per band of the NCHW 3x3/stride-2 forward: its scratch holds
// 2 band + 1 folded input rows and band rows of positions (about 20 bytes per
// output column and row); 256 KB keeps it in L2 and bounds it for any plane.
inline int64_t k3s2_band_rows(const PoolPlaneGeometry& g) {
  constexpr int64_t kScratchBytes = 256 * 1024;
  return std::max<int64_t>(1, std::min<int64_t>(g.OH, kScratchBytes / (20 * std::max<int64_t>(1, g.OW))));
}

// The memory format of a 4-D tensor's dense layout, and the tensor made
// dense in it (a copy only when it is neither NCHW- nor NHWC-dense).
at::Tensor dense_4d(const at::Tensor& t, bool& channels_last) {
  // PyTorch's pooling picks the output format with suggest_memory_format.
  const auto fmt = t.suggest_memory_format();
  channels_last = fmt == at::MemoryFormat::ChannelsLast;
  return t.is_contiguous(fmt) ? t : t.contiguous(fmt);
}

// ---------------------------------------------------------------------------
// The SIMD section (max_pool2d_simd.h), once per instruction set (see the
// header comment).
#if AF_POOL_MULTI_TARGET
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")
namespace avx512 {
#define AF_SIMD_BYTES 64
#include "max_pool2d_simd.h"
#undef AF_SIMD_BYTES
}  // namespace avx512
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2")
namespace avx2 {
#define AF_SIMD_BYTES 32
#include "max_pool2d_simd.h"
#undef AF_SIMD_BYTES
}  // namespace avx2
#pragma GCC pop_options
#endif
namespace base {
#define AF_SIMD_BYTES 16
#include "max_pool2d_simd.h"
#undef AF_SIMD_BYTES
}  // namespace base

// The pass of the SIMD section that runs (the entry functions record it;
// their scalar paths record base).
inline CpuIsa simd_isa() {
#if AF_POOL_MULTI_TARGET
  return cpu_isa();
#else
  return CpuIsa::kBase;
#endif
}

// The function `fn` (a template-id) of the selected pass.
#if AF_POOL_MULTI_TARGET
#define AF_SIMD(...)                                      \
  (simd_isa() == CpuIsa::kAvx512 ? &avx512::__VA_ARGS__   \
   : simd_isa() == CpuIsa::kAvx2 ? &avx2::__VA_ARGS__     \
                                 : &base::__VA_ARGS__)
#else
#define AF_SIMD(...) (&base::__VA_ARGS__)
#endif

}  // namespace

// ===========================================================================
std::tuple<at::Tensor, at::Tensor> max_pool2d_forward_cpu(
    const at::Tensor& x_in, at::IntArrayRef kernel_size,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    bool ceil_mode, bool need_argmax, bool flat_indices) {
  TORCH_CHECK(x_in.dim() == 4, "max_pool2d_forward: x must be 4-D (N, C, H, W), got x.dim()=", x_in.dim());
  TORCH_CHECK(x_in.size(2) >= 1 && x_in.size(3) >= 1,
              "max_pool2d_forward: x must have H, W >= 1, got x.shape=", x_in.sizes());
  const char* op = "max_pool2d_forward";
  const PoolWindow w = check_pool_window(op, kernel_size, stride, padding, dilation);
  const PoolPlaneGeometry g = make_pool_plane_geometry(w, x_in.size(2), x_in.size(3), pooled_size(op, x_in.size(2), x_in.size(3), w, ceil_mode));
  const int64_t N = x_in.size(0), C = x_in.size(1);
  const bool wide = w.position_dtype() == at::kInt;  // argmax int32 instead of uint8
  const auto idx_dtype = flat_indices ? at::kLong : w.position_dtype();

  bool channels_last = false;
  const at::Tensor x = dense_4d(x_in, channels_last);
  const auto fmt = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  at::Tensor out = empty_output({N, C, g.OH, g.OW}, x.options(), fmt);
  at::Tensor argmax = need_argmax
      ? empty_output({N, C, g.OH, g.OW}, x.options().dtype(idx_dtype), fmt)
      : at::empty({0}, x.options().dtype(at::kByte));
  if (out.numel() == 0) return {out, argmax};

  const bool fast = g.kH == 3 && g.kW == 3 && g.sH == 2 && g.sW == 2 &&
                    g.dH == 1 && g.dW == 1;  // padding <= 1 by the checks
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "max_pool2d_forward_cpu", [&] {
        const scalar_t* xp = x.const_data_ptr<scalar_t>();
        scalar_t* op = out.mutable_data_ptr<scalar_t>();
        const int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
        if (!channels_last && fast) {
          // NCHW 3x3/s2: one task per (n, c) plane.
          record_cpu_variant(CpuKernel::kMaxPool2dForward, simd_isa());
          auto k3s2 = [&](auto* ap) {
            using index_t = std::remove_pointer_t<decltype(ap)>;
            auto* kernel = AF_SIMD(fwd_k3s2_planes<scalar_t, index_t>);
            const int64_t grain = std::max<int64_t>(1, 16384 / in_plane);
            at::parallel_for(0, N * C, grain, [&](int64_t b, int64_t e) {
              kernel(xp, op, ap, g, b, e);
            });
          };
          if (flat_indices && need_argmax)
            k3s2(argmax.mutable_data_ptr<int64_t>());
          else
            k3s2(need_argmax ? argmax.mutable_data_ptr<uint8_t>() : (uint8_t*)nullptr);
          return;
        }
        auto run = [&](auto* ap) {
          using index_t = std::remove_pointer_t<decltype(ap)>;
          if (!channels_last) {
            // NCHW, general geometry: one task per (n, c) plane.
            record_cpu_variant(CpuKernel::kMaxPool2dForward, CpuIsa::kBase);
            const int64_t grain = std::max<int64_t>(1, 16384 / in_plane);
            at::parallel_for(0, N * C, grain, [&](int64_t b, int64_t e) {
              for (int64_t pl = b; pl < e; ++pl) {
                if (ap)
                  fwd_nchw_generic_plane<scalar_t, index_t, true>(
                      xp + pl * in_plane, op + pl * out_plane, ap + pl * out_plane, g);
                else
                  fwd_nchw_generic_plane<scalar_t, index_t, false>(
                      xp + pl * in_plane, op + pl * out_plane, nullptr, g);
              }
            });
          } else {
            // NHWC: one task per output row (n, oh).
            record_cpu_variant(CpuKernel::kMaxPool2dForward, simd_isa());
            auto* kernel = AF_SIMD(fwd_nhwc_rows<scalar_t, index_t>);
            const int64_t grain = std::max<int64_t>(
                1, 16384 / std::max<int64_t>(1, g.OW * C * g.kH * g.kW));
            at::parallel_for(0, N * g.OH, grain, [&](int64_t b, int64_t e) {
              kernel(xp, op, ap, g, C, b, e);
            });
          }
        };
        if (flat_indices && need_argmax)
          run(argmax.mutable_data_ptr<int64_t>());
        else if (wide)
          run(need_argmax ? argmax.mutable_data_ptr<int32_t>() : (int32_t*)nullptr);
        else
          run(need_argmax ? argmax.mutable_data_ptr<uint8_t>() : (uint8_t*)nullptr);
      });
  return {out, argmax};
}

at::Tensor max_pool2d_backward_cpu(const at::Tensor& grad_out_in,
                                   const at::Tensor& argmax_in,
                                   int64_t input_height, int64_t input_width,
                                   at::IntArrayRef kernel_size,
                                   at::IntArrayRef stride,
                                   at::IntArrayRef padding,
                                   at::IntArrayRef dilation) {
  TORCH_CHECK(argmax_in.dim() == 4, "max_pool2d_backward: argmax must be 4-D (N, C, OH, OW), got argmax.dim()=", argmax_in.dim());
  TORCH_CHECK(grad_out_in.sizes() == argmax_in.sizes(),
              "max_pool2d_backward: grad_out and argmax must have the same shape, got grad_out ",
              grad_out_in.sizes(), " and argmax ", argmax_in.sizes());
  TORCH_CHECK(input_height >= 1 && input_width >= 1,
              "max_pool2d_backward: input size must be >= 1, got input_height=",
              input_height, ", input_width=", input_width);
  const char* op = "max_pool2d_backward";
  const PoolWindow w = check_pool_window(op, kernel_size, stride, padding, dilation);
  // The kernels size their scratch from (OH, OW) and walk (H, W): they must
  // agree (the forward's output size, floor or ceil mode).
  check_pooled_size(op, input_height, input_width, argmax_in.size(2), argmax_in.size(3), w);
  const PoolPlaneGeometry g = make_pool_plane_geometry(w, input_height, input_width, {argmax_in.size(2), argmax_in.size(3)});
  const bool wide = w.position_dtype() == at::kInt;
  const bool flat = check_argmax_dtype(op, argmax_in, w);  // PyTorch's flat indices
  const int64_t N = argmax_in.size(0), C = argmax_in.size(1);

  bool channels_last = false;
  const at::Tensor argmax = dense_4d(argmax_in, channels_last);
  const auto fmt = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  // grad_out laid out like argmax (the kernels index both with one offset).
  const at::Tensor grad_out = grad_out_in.is_contiguous(fmt) ? grad_out_in : grad_out_in.contiguous(fmt);
  if (N * C == 0) return at::empty({N, C, g.H, g.W}, grad_out.options().memory_format(fmt));
  if (argmax.numel() == 0) return at::zeros({N, C, g.H, g.W}, grad_out.options().memory_format(fmt));
  at::Tensor grad_in = empty_output({N, C, g.H, g.W}, grad_out.options(), fmt);

  const bool fast = g.kH == 3 && g.kW == 3 && g.sH == 2 && g.sW == 2 &&
                    g.dH == 1 && g.dW == 1;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad_out.scalar_type(), "max_pool2d_backward_cpu", [&] {
        const scalar_t* grad_out_data = grad_out.const_data_ptr<scalar_t>();
        scalar_t* grad_in_data = grad_in.mutable_data_ptr<scalar_t>();
        const int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
#if AF_VECTOR_EXT
        if (!channels_last && fast && !flat) {
          // NCHW 3x3/s2: one task per (n, c) plane.
          record_cpu_variant(CpuKernel::kMaxPool2dBackward, simd_isa());
          auto* kernel = AF_SIMD(bwd_k3s2_planes<scalar_t>);
          const uint8_t* ap = argmax.const_data_ptr<uint8_t>();
          const int64_t grain = std::max<int64_t>(1, 16384 / in_plane);
          at::parallel_for(0, N * C, grain, [&](int64_t b, int64_t e) {
            kernel(grad_out_data, ap, grad_in_data, g, b, e);
          });
          return;
        }
#endif
        const Taps rt = make_taps(g.H, g.OH, g.kH, g.sH, g.pH, g.dH);
        const Taps ct = make_taps(g.W, g.OW, g.kW, g.sW, g.pW, g.dW);
        auto run = [&](const auto* ap) {
          using index_t = std::remove_const_t<std::remove_pointer_t<decltype(ap)>>;
          if (!channels_last) {
            // NCHW, general geometry: one task per (n, c) plane.
            record_cpu_variant(CpuKernel::kMaxPool2dBackward, CpuIsa::kBase);
            const int64_t grain = std::max<int64_t>(1, 16384 / in_plane);
            at::parallel_for(0, N * C, grain, [&](int64_t b, int64_t e) {
              for (int64_t pl = b; pl < e; ++pl)
                bwd_nchw_generic_plane<scalar_t, index_t>(
                    grad_out_data + pl * out_plane, ap + pl * out_plane,
                    grad_in_data + pl * in_plane, g, rt, ct);
            });
          } else {
            // NHWC: one task per input row (n, ih).
            record_cpu_variant(CpuKernel::kMaxPool2dBackward, simd_isa());
            auto* kernel = AF_SIMD(bwd_nhwc_rows<scalar_t, index_t>);
            const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, g.W * C));
            at::parallel_for(0, N * g.H, grain, [&](int64_t b, int64_t e) {
              kernel(grad_out_data, ap, grad_in_data, g, C, rt, ct, b, e);
            });
          }
        };
        if (flat)
          run(argmax.const_data_ptr<int64_t>());
        else if (wide)
          run(argmax.const_data_ptr<int32_t>());
        else
          run(argmax.const_data_ptr<uint8_t>());
      });
  return grad_in;
}

TORCH_LIBRARY_IMPL(alexnet_fast, CPU, m) {
  m.impl("max_pool2d_forward", &max_pool2d_forward_cpu);
  m.impl("max_pool2d_backward", &max_pool2d_backward_cpu);
}

}  // namespace alexnet_fast
