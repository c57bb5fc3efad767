// CPU kernels of alexnet_fast::max_pool2d_forward / max_pool2d_backward: a
// drop-in for F.max_pool2d that is bit-exact (values, argmax, and float32 /
// float64 gradients), deterministic (no atomics, fixed summation order) and
// faster than PyTorch's eager and torch.compile kernels.
//
// Semantics (PyTorch's CPU kernel, see the contract):
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
// hot kernels (the "SIMD section" at the end of this file) are compiled three
// times, into the namespaces base (SSE2), avx2 and avx512, by re-including
// this file under `#pragma GCC target`, and one is picked at run time from
// the CPU's features (cpu_isa.h; override: env ALEXNET_FAST_CPU_ISA).
// All three produce identical bits. Non-x86 or non-GCC builds compile the
// section once, for their default target.

#if !defined(AF_POOL_SIMD_SECTION)

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
// The SIMD section, once per instruction set (see the header comment). The
// file includes itself by name, so it must keep its name.
#define AF_POOL_SIMD_SECTION 1
#if AF_POOL_MULTI_TARGET
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")
namespace avx512 {
#define AF_SIMD_BYTES 64
#include "max_pool2d_kernel.cpp"
#undef AF_SIMD_BYTES
}  // namespace avx512
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2")
namespace avx2 {
#define AF_SIMD_BYTES 32
#include "max_pool2d_kernel.cpp"
#undef AF_SIMD_BYTES
}  // namespace avx2
#pragma GCC pop_options
#endif
namespace base {
#define AF_SIMD_BYTES 16
#include "max_pool2d_kernel.cpp"
#undef AF_SIMD_BYTES
}  // namespace base
#undef AF_POOL_SIMD_SECTION

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

#else  // AF_POOL_SIMD_SECTION
// ===========================================================================
// SIMD section: included once per instruction set by the part above, inside
// namespace alexnet_fast::(anonymous)::<isa> and a `#pragma GCC target`
// region, with AF_SIMD_BYTES (the widest vector of the target: 16, 32, 64)
// defined. Everything here is compiled for that target; it uses only what
// the common part declared.
constexpr int kSimdBytes = AF_SIMD_BYTES;

// ---------------------------------------------------------------------------
// Explicit SIMD for the float/double fast paths, written with GCC's generic
// vector extensions (`Vec<T, kBytes>`, kBytes = 16, 32 or 64: xmm, ymm, zmm
// registers; the base pass uses 16, avx2 32, avx512 64 with 32/16 for rows
// too short for 64). GCC's auto-vectoriser handled these loops poorly (the
// stride-2 loads and the aliasing checks of short rows left most of the work
// to a branchy scalar loop). Other compilers take the scalar code, with the
// same results.
//
// The stride-2 deinterleave uses in-lane shuffles only (one vshufps/vshufpd
// each): with a = x[0 .. N), b = x[N .. 2N) the lanes hold the N outputs in a
// "scrambled" order S (identical for every operand, so the lane-wise fold is
// unaffected); one 64-bit permute (`unscramble`) restores the order before
// storing. For 4-lane groups of floats, group L holds outputs
// 2L, 2L+1, N/2+2L, N/2+2L+1; for 2-lane groups of doubles, L and N/2+L.
#if AF_VECTOR_EXT
template <typename T, int kBytes>
struct Vec {
  static constexpr bool kOn = false;
};
// 16 bytes (SSE2, the base pass): one 4-lane group, outputs in natural order.
template <>
struct Vec<float, 16> {
  static constexpr bool kOn = true;
  static constexpr int N = 4;
  typedef float V __attribute__((vector_size(16)));
  typedef int32_t I __attribute__((vector_size(16)));
  static AF_INLINE V evens(V a, V b) { return __builtin_shuffle(a, b, I{0, 2, 4, 6}); }
  static AF_INLINE V odds(V a, V b) { return __builtin_shuffle(a, b, I{1, 3, 5, 7}); }
  static AF_INLINE V evens2(V a, V b) { return __builtin_shuffle(a, b, I{0, 2, 5, 7}); }
  template <typename T>
  static AF_INLINE T unscramble(T v) {
    return v;
  }
  static AF_INLINE V zip_lo(V a, V b) { return __builtin_shuffle(a, b, I{0, 4, 1, 5}); }
  static AF_INLINE V zip_hi(V a, V b) { return __builtin_shuffle(a, b, I{2, 6, 3, 7}); }
};
template <>
struct Vec<double, 16> {
  static constexpr bool kOn = true;
  static constexpr int N = 2;
  typedef double V __attribute__((vector_size(16)));
  typedef int64_t I __attribute__((vector_size(16)));
  static AF_INLINE V evens(V a, V b) { return __builtin_shuffle(a, b, I{0, 2}); }
  static AF_INLINE V odds(V a, V b) { return __builtin_shuffle(a, b, I{1, 3}); }
  static AF_INLINE V evens2(V a, V b) { return __builtin_shuffle(a, b, I{0, 3}); }
  template <typename T>
  static AF_INLINE T unscramble(T v) {
    return v;
  }
  static AF_INLINE V zip_lo(V a, V b) { return __builtin_shuffle(a, b, I{0, 2}); }
  static AF_INLINE V zip_hi(V a, V b) { return __builtin_shuffle(a, b, I{1, 3}); }
};
#if AF_SIMD_BYTES >= 32
template <>
struct Vec<float, 32> {
  static constexpr bool kOn = true;
  static constexpr int N = 8;
  typedef float V __attribute__((vector_size(32)));
  typedef int32_t I __attribute__((vector_size(32)));
  // x[2k], x[2k+1] for the outputs k in order S, from a = x[0..], b = x[N..].
  static AF_INLINE V evens(V a, V b) {
    return __builtin_shuffle(a, b, I{0, 2, 8, 10, 4, 6, 12, 14});
  }
  static AF_INLINE V odds(V a, V b) {
    return __builtin_shuffle(a, b, I{1, 3, 9, 11, 5, 7, 13, 15});
  }
  // x[2k+2] in order S from a = x[2..], b = x[N+1..] (reads up to x[2N], the
  // last element the N windows need, never beyond).
  static AF_INLINE V evens2(V a, V b) {
    return __builtin_shuffle(a, b, I{0, 2, 9, 11, 4, 6, 13, 15});
  }
  template <typename T>
  static AF_INLINE T unscramble(T v) {
    return __builtin_shuffle(v, I{0, 1, 4, 5, 2, 3, 6, 7});
  }
  // Interleave: (a0 b0 a1 b1 ...) as two vectors.
  static AF_INLINE V zip_lo(V a, V b) {
    return __builtin_shuffle(a, b, I{0, 8, 1, 9, 2, 10, 3, 11});
  }
  static AF_INLINE V zip_hi(V a, V b) {
    return __builtin_shuffle(a, b, I{4, 12, 5, 13, 6, 14, 7, 15});
  }
};
template <>
struct Vec<double, 32> {
  static constexpr bool kOn = true;
  static constexpr int N = 4;
  typedef double V __attribute__((vector_size(32)));
  typedef int64_t I __attribute__((vector_size(32)));
  static AF_INLINE V evens(V a, V b) { return __builtin_shuffle(a, b, I{0, 4, 2, 6}); }
  static AF_INLINE V odds(V a, V b) { return __builtin_shuffle(a, b, I{1, 5, 3, 7}); }
  static AF_INLINE V evens2(V a, V b) { return __builtin_shuffle(a, b, I{0, 5, 2, 7}); }
  template <typename T>
  static AF_INLINE T unscramble(T v) {
    return __builtin_shuffle(v, I{0, 2, 1, 3});
  }
  static AF_INLINE V zip_lo(V a, V b) { return __builtin_shuffle(a, b, I{0, 4, 1, 5}); }
  static AF_INLINE V zip_hi(V a, V b) { return __builtin_shuffle(a, b, I{2, 6, 3, 7}); }
};
#endif
#if AF_SIMD_BYTES >= 64
template <>
struct Vec<float, 64> {
  static constexpr bool kOn = true;
  static constexpr int N = 16;
  typedef float V __attribute__((vector_size(64)));
  typedef int32_t I __attribute__((vector_size(64)));
  static AF_INLINE V evens(V a, V b) {
    return __builtin_shuffle(a, b, I{0, 2, 16, 18, 4, 6, 20, 22, 8, 10, 24, 26, 12, 14, 28, 30});
  }
  static AF_INLINE V odds(V a, V b) {
    return __builtin_shuffle(a, b, I{1, 3, 17, 19, 5, 7, 21, 23, 9, 11, 25, 27, 13, 15, 29, 31});
  }
  static AF_INLINE V evens2(V a, V b) {
    return __builtin_shuffle(a, b, I{0, 2, 17, 19, 4, 6, 21, 23, 8, 10, 25, 27, 12, 14, 29, 31});
  }
  template <typename T>
  static AF_INLINE T unscramble(T v) {
    return __builtin_shuffle(v, I{0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15});
  }
  static AF_INLINE V zip_lo(V a, V b) {
    return __builtin_shuffle(a, b, I{0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23});
  }
  static AF_INLINE V zip_hi(V a, V b) {
    return __builtin_shuffle(a, b, I{8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31});
  }
};
template <>
struct Vec<double, 64> {
  static constexpr bool kOn = true;
  static constexpr int N = 8;
  typedef double V __attribute__((vector_size(64)));
  typedef int64_t I __attribute__((vector_size(64)));
  static AF_INLINE V evens(V a, V b) {
    return __builtin_shuffle(a, b, I{0, 8, 2, 10, 4, 12, 6, 14});
  }
  static AF_INLINE V odds(V a, V b) {
    return __builtin_shuffle(a, b, I{1, 9, 3, 11, 5, 13, 7, 15});
  }
  static AF_INLINE V evens2(V a, V b) {
    return __builtin_shuffle(a, b, I{0, 9, 2, 11, 4, 13, 6, 15});
  }
  template <typename T>
  static AF_INLINE T unscramble(T v) {
    return __builtin_shuffle(v, I{0, 2, 4, 6, 1, 3, 5, 7});
  }
  static AF_INLINE V zip_lo(V a, V b) {
    return __builtin_shuffle(a, b, I{0, 8, 1, 9, 2, 10, 3, 11});
  }
  static AF_INLINE V zip_hi(V a, V b) {
    return __builtin_shuffle(a, b, I{4, 12, 5, 13, 6, 14, 7, 15});
  }
};
#endif
template <typename V>
AF_INLINE V vload(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V>
AF_INLINE void vstore(void* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}
#else
template <typename T, int kBytes>
struct Vec {
  static constexpr bool kOn = false;
};
#endif

// ---------------------------------------------------------------------------
// Forward, NCHW, kernel 3x3 / stride 2 / dilation 1 (padding 0 or 1).
//
// Pass 1 (horizontal): for every input row r used by some window,
//   hv[r][ow], hp[r][ow] = fold of row r over columns 2*ow - pW + {0, 1, 2}
// (hp = column offset j of the winner). Pass 2 (vertical): output row oh
// folds the in-bounds rows r = 2*oh - pH + {0, 1, 2} in order, argmax =
// 3*i + hp. Interior windows run branch-free SIMD blocks of N outputs (the
// last block of a row overlaps the previous one instead of a scalar tail:
// recomputing an output gives the same bits); windows touching the padding
// (first/last column or row) use the scalar fold over their in-bounds
// positions. The positions are kept as wide as the values (one mask blends
// both) in the plane buffer pt and narrowed to uint8 in one pass at the end.
// Scratch per thread: hv, hp: rows * OW, pt: OH * OW elements (L1/L2-sized
// for AlexNet planes). half/bfloat16 (and non-GCC builds) run the same
// algorithm with scalar loops.
template <typename scalar_t, typename index_t, bool kArg, int kBytes>
AF_INLINE void fwd_nchw_k3s2_plane_impl(const scalar_t* __restrict in,
                                        scalar_t* __restrict out,
                                        index_t* __restrict argmax,
                                        const PoolPlaneGeometry& g, int64_t oh_begin,
                                        int64_t oh_end,
                                        acc_t<scalar_t>* __restrict hv,
                                        pos_t<acc_t<scalar_t>>* __restrict hp,
                                        pos_t<acc_t<scalar_t>>* __restrict pt,
                                        bool prefetch_next) {
  using acc = acc_t<scalar_t>;
  using pos = pos_t<acc>;
  // Positions are needed for argmax, and for half to re-read a NaN winner.
  constexpr bool kPos = kArg || std::is_same<scalar_t, c10::Half>::value;
  const int64_t H = g.H, W = g.W, OW = g.OW;
  const int64_t pH = g.pH, pW = g.pW;
  // Interior columns: 2*ow - pW >= 0 and 2*ow - pW + 2 <= W - 1.
  const int64_t ow_a = std::min<int64_t>(pW, OW);
  const int64_t ow_b =
      std::max<int64_t>(ow_a, std::min<int64_t>(OW, div_floor(W - 3 + pW, 2) + 1));
  // The band's output rows read input rows [r_lo, r_hi); hv/hp row r - r_lo.
  const int64_t r_lo = std::max<int64_t>(0, 2 * oh_begin - pH);
  const int64_t r_hi = std::min<int64_t>(H, 2 * (oh_end - 1) - pH + 3);

  // Pass 1: horizontal fold of each used input row.
  for (int64_t r = r_lo; r < r_hi; ++r) {
    const scalar_t* __restrict x = in + r * W;
    acc* __restrict v_out = hv + (r - r_lo) * OW;
    pos* __restrict p_out = hp + (r - r_lo) * OW;
    if (prefetch_next) {
      // Pull the same row of the next plane towards L2 while this plane
      // computes (the kernel is compute-bound per plane; the prefetch hides
      // the DRAM latency of the next one).
      const char* nx = reinterpret_cast<const char*>(x + H * W);
      for (int64_t b = 0; b < W * (int64_t)sizeof(scalar_t); b += 64)
        AF_PREFETCH(nx + b);
    }
    int64_t ow = ow_a;
#if AF_VECTOR_EXT
    // Blocks of N interior outputs; returns false when the row is too short.
    auto hblocks = [&](auto vt) AF_LAMBDA_INLINE -> bool {
      using VT = decltype(vt);
      using V = typename VT::V;
      using I = typename VT::I;
      constexpr int N = VT::N;
      if (ow_b - ow_a < N) return false;
      for (int64_t o = ow_a;; o += N) {
        if (o > ow_b - N) o = ow_b - N;
        // Outputs o .. o+N-1 need x[c .. c + 2N] (c = 2*o - pW), all in
        // the row because output o+N-1 is interior.
        const scalar_t* xc = x + 2 * o - pW;
        const V a = vload<V>(xc), b = vload<V>(xc + N);
        const V e0 = VT::evens(a, b), e1 = VT::odds(a, b);
        const V e2 = VT::evens2(vload<V>(xc + 2), vload<V>(xc + N + 1));
        const I t1 = (e1 > e0) | (e1 != e1);
        const V m1 = t1 ? e1 : e0;
        const I t2 = (e2 > m1) | (e2 != e2);
        vstore(v_out + o, VT::unscramble(t2 ? e2 : m1));
        if constexpr (kArg) {
          const I p = t2 ? I{} + 2 : (t1 & 1);  // column of the winner
          vstore(p_out + o, VT::unscramble(p));
        }
        if (o + N >= ow_b) break;
      }
      return true;
    };
    if constexpr (Vec<scalar_t, kBytes>::kOn) {
      bool done = hblocks(Vec<scalar_t, kBytes>{});
      // Rows too short for kBytes vectors try narrower ones.
      if constexpr (kBytes > 32) {
        if (!done) done = hblocks(Vec<scalar_t, 32>{});
      }
      if constexpr (kBytes > 16) {
        if (!done) done = hblocks(Vec<scalar_t, 16>{});
      }
      if (done) ow = ow_b;
    }
#endif
    for (; ow < ow_b; ++ow) {
      const int64_t c = 2 * ow - pW;
      const acc v0 = x[c], v1 = x[c + 1], v2 = x[c + 2];
      acc m = v0;
      pos p = 0;
      bool t = takes(v1, m);
      m = t ? v1 : m;
      p = t ? 1 : p;
      t = takes(v2, m);
      m = t ? v2 : m;
      p = t ? 2 : p;
      v_out[ow] = m;
      if (kPos) p_out[ow] = p;
    }
    // Border columns (touching the padding): fold over the in-bounds ones.
    auto border = [&](int64_t o) {
      const int64_t c0 = 2 * o - pW;
      const int64_t j_lo = c0 < 0 ? -c0 : 0;
      const int64_t j_hi = std::min<int64_t>(3, W - c0);
      acc m = -std::numeric_limits<acc>::infinity();
      pos p = static_cast<pos>(j_lo);
      for (int64_t j = j_lo; j < j_hi; ++j) {
        const acc v = x[c0 + j];
        if (takes(v, m)) {
          m = v;
          p = static_cast<pos>(j);
        }
      }
      v_out[o] = m;
      if (kPos) p_out[o] = p;
    };
    for (int64_t o = 0; o < ow_a; ++o) border(o);
    for (int64_t o = ow_b; o < OW; ++o) border(o);
  }

  // Pass 2: vertical fold of the row results.
  for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
    const int64_t r0 = 2 * oh - pH;
    scalar_t* __restrict o = out + oh * OW;
    pos* __restrict a = pt + (oh - oh_begin) * OW;
    if (r0 >= 0 && r0 + 2 < H) {
      const acc* __restrict v0 = hv + (r0 - r_lo) * OW;
      const acc* __restrict v1 = v0 + OW;
      const acc* __restrict v2 = v1 + OW;
      const pos* __restrict p0 = hp + (r0 - r_lo) * OW;
      const pos* __restrict p1 = p0 + OW;
      const pos* __restrict p2 = p1 + OW;
      int64_t ow = 0;
#if AF_VECTOR_EXT
      auto vblocks = [&](auto vt) AF_LAMBDA_INLINE -> bool {
        using VT = decltype(vt);
        using V = typename VT::V;
        using I = typename VT::I;
        constexpr int N = VT::N;
        if (OW < N) return false;
        for (int64_t q = 0;; q += N) {
          if (q > OW - N) q = OW - N;
          const V m0 = vload<V>(v0 + q), e1 = vload<V>(v1 + q), e2 = vload<V>(v2 + q);
          const I t1 = (e1 > m0) | (e1 != e1);
          const V m1 = t1 ? e1 : m0;
          const I t2 = (e2 > m1) | (e2 != e2);
          vstore(o + q, t2 ? e2 : m1);
          if constexpr (kArg) {
            const I p = t2 ? vload<I>(p2 + q) + 6
                           : (t1 ? vload<I>(p1 + q) + 3 : vload<I>(p0 + q));
            vstore(a + q, p);
          }
          if (q + N >= OW) break;
        }
        return true;
      };
      if constexpr (Vec<scalar_t, kBytes>::kOn) {
        bool done = vblocks(Vec<scalar_t, kBytes>{});
        // Rows too short for kBytes vectors try narrower ones.
        if constexpr (kBytes > 32) {
          if (!done) done = vblocks(Vec<scalar_t, 32>{});
        }
        if constexpr (kBytes > 16) {
          if (!done) done = vblocks(Vec<scalar_t, 16>{});
        }
        if (done) ow = OW;
      }
#endif
      for (; ow < OW; ++ow) {
        acc m = v0[ow];
        bool t1 = takes(v1[ow], m);
        m = t1 ? v1[ow] : m;
        bool t2 = takes(v2[ow], m);
        m = t2 ? v2[ow] : m;
        pos p = 0;
        if (kPos)
          p = t2 ? p2[ow] + 6 : (t1 ? p1[ow] + 3 : p0[ow]);
        o[ow] = out_value<scalar_t>(m, [&] {
          return in + (r0 + p / 3) * W + 2 * ow - pW + p % 3;
        });
        if (kArg) a[ow] = p;
      }
    } else {
      // First/last output row: only the in-bounds rows, the first of them
      // initialises the state (PyTorch's maxpos = first in-bounds).
      const int64_t i_lo = r0 < 0 ? -r0 : 0;
      const int64_t i_hi = std::min<int64_t>(3, H - r0);
      for (int64_t ow = 0; ow < OW; ++ow) {
        acc m = hv[(r0 + i_lo - r_lo) * OW + ow];
        int64_t i_win = i_lo;
        for (int64_t i = i_lo + 1; i < i_hi; ++i) {
          const acc v = hv[(r0 + i - r_lo) * OW + ow];
          if (takes(v, m)) {
            m = v;
            i_win = i;
          }
        }
        pos p = 0;
        if (kPos)
          p = hp[(r0 + i_win - r_lo) * OW + ow] + 3 * static_cast<pos>(i_win);
        o[ow] = out_value<scalar_t>(m, [&] {
          return in + (r0 + p / 3) * W + 2 * ow - pW + p % 3;
        });
        if (kArg) a[ow] = p;
      }
    }
  }
  if constexpr (kArg) {
    if constexpr (std::is_same<index_t, int64_t>::value) {
      // PyTorch's flat indices: position p of the window of (oh, ow) is
      // input (2 oh - pH + p / 3, 2 ow - pW + p % 3).
      for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
        const pos* a = pt + (oh - oh_begin) * OW;
        for (int64_t ow = 0; ow < OW; ++ow)
          argmax[oh * OW + ow] = (2 * oh - pH + a[ow] / 3) * W + 2 * ow - pW + a[ow] % 3;
      }
    } else {
      // Narrow the positions (0..8) to uint8: a plain loop the compiler
      // vectorises with packs.
      const int64_t n = (oh_end - oh_begin) * OW;
      for (int64_t i = 0; i < n; ++i) argmax[oh_begin * OW + i] = static_cast<index_t>(pt[i]);
    }
  }
}

// ---------------------------------------------------------------------------
// Forward, NHWC (channels last), any geometry: one output row (n, oh). Every
// window folds vectors of channels: the state (maxval, maxpos) of a block of
// kB channels lives in registers while the window's positions are visited in
// row-major order. The channel loops have a compile-time trip count so they
// vectorise fully; a channel tail (C % kB) runs the same code with a runtime
// count.
template <int kB, typename scalar_t, typename index_t, bool kArg>
AF_INLINE void fwd_nhwc_block(const scalar_t* __restrict in_n,
                              scalar_t* __restrict o,
                              index_t* __restrict a, const PoolPlaneGeometry& g,
                              int64_t C, int64_t c0, int64_t n_rt, int64_t ih0,
                              int64_t iw0, int64_t i_lo, int64_t i_hi,
                              int64_t j_lo, int64_t j_hi) {
  using acc = acc_t<scalar_t>;
  const int64_t n = kB > 0 ? kB : n_rt;
  constexpr int kCap = kB > 0 ? kB : 64;
  acc m[kCap];
  int32_t p[kCap];
  {
    const scalar_t* __restrict src =
        in_n + ((ih0 + i_lo * g.dH) * g.W + iw0 + j_lo * g.dW) * C + c0;
    const int32_t code = static_cast<int32_t>(i_lo * g.kW + j_lo);
    for (int64_t c = 0; c < n; ++c) {
      m[c] = src[c];
      p[c] = code;
    }
  }
  for (int64_t i = i_lo; i < i_hi; ++i) {
    for (int64_t j = (i == i_lo ? j_lo + 1 : j_lo); j < j_hi; ++j) {
      const scalar_t* __restrict src =
          in_n + ((ih0 + i * g.dH) * g.W + iw0 + j * g.dW) * C + c0;
      const int32_t code = static_cast<int32_t>(i * g.kW + j);
      for (int64_t c = 0; c < n; ++c) {
        const acc v = src[c];
        const bool t = takes(v, m[c]);
        m[c] = t ? v : m[c];
        p[c] = t ? code : p[c];
      }
    }
  }
  for (int64_t c = 0; c < n; ++c)
    o[c0 + c] = out_value<scalar_t>(m[c], [&] {
      return in_n + ((ih0 + (p[c] / g.kW) * g.dH) * g.W + iw0 +
                     (p[c] % g.kW) * g.dW) * C + c0 + c;
    });
  if (kArg)
    for (int64_t c = 0; c < n; ++c) a[c0 + c] = encode_argmax<index_t>(p[c], ih0, iw0, g);
}

template <typename scalar_t, typename index_t, bool kArg>
AF_INLINE void fwd_nhwc_row_impl(const scalar_t* in_n, scalar_t* out_row,
                                 index_t* argmax_row, const PoolPlaneGeometry& g, int64_t C,
                                 int64_t oh) {
  // Channel block: 32 floats (4 AVX2 vectors of state + 4 of positions).
  constexpr int kB = std::is_same<scalar_t, double>::value ? 16 : 32;
  const int64_t ih0 = oh * g.sH - g.pH;
  int64_t i_lo, i_hi;
  window_range(ih0, g.kH, g.dH, g.H, i_lo, i_hi);
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    const int64_t iw0 = ow * g.sW - g.pW;
    int64_t j_lo, j_hi;
    window_range(iw0, g.kW, g.dW, g.W, j_lo, j_hi);
    scalar_t* o = out_row + ow * C;
    index_t* a = kArg ? argmax_row + ow * C : nullptr;
    if (i_lo >= i_hi || j_lo >= j_hi) {
      // A window without any in-bounds element (possible with dilation,
      // e.g. H=2, k=2, d=3, pad=1): PyTorch outputs -inf and the position of
      // its first "in-bounds" candidate, which lies outside the image; same
      // here (window_range returns lo == hi past the image).
      for (int64_t c = 0; c < C; ++c) {
        o[c] = static_cast<scalar_t>(-std::numeric_limits<acc_t<scalar_t>>::infinity());
        if (kArg) a[c] = encode_argmax<index_t>(i_lo * g.kW + j_lo, ih0, iw0, g);
      }
      continue;
    }
    int64_t c0 = 0;
    for (; c0 + kB <= C; c0 += kB)
      fwd_nhwc_block<kB, scalar_t, index_t, kArg>(in_n, o, a, g, C, c0, kB, ih0,
                                                  iw0, i_lo, i_hi, j_lo, j_hi);
    if (c0 < C)
      fwd_nhwc_block<0, scalar_t, index_t, kArg>(in_n, o, a, g, C, c0, C - c0,
                                                 ih0, iw0, i_lo, i_hi, j_lo,
                                                 j_hi);
  }
}

// Backward, NCHW, kernel 3x3 / stride 2 / dilation 1, one plane (GCC
// vector-extension builds; other compilers take the general path).
//
// Input row ih lies in output rows oh with row offset i = ih + pH - 2*oh in
// {0, 1, 2}: u = ih + pH even -> (u/2 - 1, i = 2), (u/2, i = 0); u odd ->
// ((u-1)/2, i = 1). The same holds for columns: with u = iw + pW and q = u/2,
// an even u gets windows (q-1, j=2) then (q, j=0); an odd u gets (q, j=1).
// So for one input row, with ej[ow] = (argmax[oh][ow] == 3*i + j) ? g[oh][ow] : 0,
//   ev[q] = sum over the row windows oh (in order) of  e2[q-1] + e0[q]   (u = 2q)
//   od[q] = sum over the row windows oh (in order) of  e1[q]             (u = 2q+1)
// which adds the window gradients in exactly the (oh, ow) row-major order of
// PyTorch's scatter. To make every vector load in bounds and the q-1 shift a
// plain unaligned load, the plane's grad_out / argmax are first copied into
// padded rows: gp[oh][1 + ow] = grad_out (converted to the accumulation
// type), ap[oh][1 + ow] = argmax widened to the lane width, with gp = 0 and
// ap = -1 (matches no position) in the pad columns 0 and OW+1 .. OWp-1.
// Each block of N q's accumulates ev, od in registers over the (at most 2)
// row windows and is stored interleaved (ev, od, ev, od, ...) as 2N
// consecutive input columns. Scratch per thread: OH * OWp of gp and ap,
// 2 * Qv row buffer.
#if AF_VECTOR_EXT
template <typename scalar_t, int kBytes>
AF_INLINE void bwd_nchw_k3s2_plane_impl(const scalar_t* __restrict grad_out,
                                        const uint8_t* __restrict argmax,
                                        scalar_t* __restrict grad_in,
                                        const PoolPlaneGeometry& g,
                                        acc_t<scalar_t>* __restrict gp,
                                        pos_t<acc_t<scalar_t>>* __restrict ap,
                                        acc_t<scalar_t>* __restrict rowbuf,
                                        bool prefetch_next) {
  using acc = acc_t<scalar_t>;
  using pos = pos_t<acc>;
  using VT = Vec<acc, kBytes>;
  using V = typename VT::V;
  using I = typename VT::I;
  constexpr int N = VT::N;
  const int64_t H = g.H, W = g.W, OH = g.OH, OW = g.OW, pH = g.pH, pW = g.pW;
  // q runs over [0, Qv): Qv >= OW + 1 covers every input column (see
  // bwd_k3s2_sizes); blocks read gp/ap columns [q, q + N] <= Qv < OWp.
  const int64_t Qv = (OW + 1 + N - 1) / N * N;
  const int64_t OWp = Qv + N;
  for (int64_t oh = 0; oh < OH; ++oh) {
    acc* __restrict gr = gp + oh * OWp;
    pos* __restrict ar = ap + oh * OWp;
    gr[0] = 0;
    ar[0] = -1;
    for (int64_t ow = 0; ow < OW; ++ow) {
      gr[1 + ow] = static_cast<acc>(grad_out[oh * OW + ow]);
      ar[1 + ow] = static_cast<pos>(argmax[oh * OW + ow]);
    }
    for (int64_t c = OW + 1; c < OWp; ++c) {
      gr[c] = 0;
      ar[c] = -1;
    }
  }
  constexpr bool kDirect = std::is_same<scalar_t, acc>::value;
  for (int64_t ih = 0; ih < H; ++ih) {
    const int64_t u = ih + pH;
    int64_t ohs[2], is[2], nwin = 0;
    if (u % 2 == 0) {
      if (u / 2 - 1 >= 0 && u / 2 - 1 < OH) ohs[nwin] = u / 2 - 1, is[nwin++] = 2;
      if (u / 2 < OH) ohs[nwin] = u / 2, is[nwin++] = 0;
    } else if ((u - 1) / 2 < OH) {
      ohs[nwin] = (u - 1) / 2, is[nwin++] = 1;
    }
    if (prefetch_next && ih < OH) {
      // The next plane's grad_out / argmax rows, one per input row.
      const char* ng = reinterpret_cast<const char*>(grad_out + (OH + ih) * OW);
      for (int64_t b = 0; b < OW * (int64_t)sizeof(scalar_t); b += 64)
        AF_PREFETCH(ng + b);
      AF_PREFETCH(argmax + (OH + ih) * OW);
    }
    scalar_t* __restrict row = grad_in + ih * W;
    if (nwin == 0) {  // a row no window reaches
      for (int64_t iw = 0; iw < W; ++iw) row[iw] = scalar_t(0);
      continue;
    }
    // ev, od of q .. q+N-1 (input columns 2q - pW .. 2q - pW + 2N - 1),
    // returned interleaved.
    auto block = [&](int64_t q, V& lo, V& hi) AF_LAMBDA_INLINE {
      V ev = V{}, od = V{};
      for (int64_t w = 0; w < nwin; ++w) {
        const acc* gr = gp + ohs[w] * OWp + q;
        const pos* ar = ap + ohs[w] * OWp + q;
        const pos c0 = static_cast<pos>(3 * is[w]);
        const V gm = vload<V>(gr), g0 = vload<V>(gr + 1);  // g[q-1], g[q]
        const I am1 = vload<I>(ar), a0 = vload<I>(ar + 1);
        ev += (V)((I)gm & (am1 == c0 + 2));
        ev += (V)((I)g0 & (a0 == c0));
        od += (V)((I)g0 & (a0 == c0 + 1));
      }
      lo = VT::zip_lo(ev, od);
      hi = VT::zip_hi(ev, od);
    };
    if (kDirect && pW + 2 * N <= W) {
      // Blocks stored straight into the row: from q = pW (column pW) while
      // they fit, then one block ending at column W or W - 1 (it may overlap
      // the previous one: same values, same bits). The leftover columns
      // (column 0 when pW = 1, column W - 1) are summed one by one, in the
      // same order.
      V lo, hi;
      int64_t q = pW;
      for (; 2 * q - pW + 2 * N <= W; q += N) {
        block(q, lo, hi);
        vstore(row + 2 * q - pW, lo);
        vstore(row + 2 * q - pW + N, hi);
      }
      int64_t done_to = 2 * q - pW;  // columns [pW, done_to) are written
      if (done_to < W) {
        const int64_t qt = (W + pW - 2 * N) / 2;
        block(qt, lo, hi);
        vstore(row + 2 * qt - pW, lo);
        vstore(row + 2 * qt - pW + N, hi);
        done_to = 2 * qt - pW + 2 * N;
      }
      auto column = [&](int64_t iw) AF_LAMBDA_INLINE {
        const int64_t uc = iw + pW, qc = uc >> 1;
        acc sum = 0;
        for (int64_t w = 0; w < nwin; ++w) {
          const acc* gr = gp + ohs[w] * OWp + qc;
          const pos* ar = ap + ohs[w] * OWp + qc;
          const pos c0 = static_cast<pos>(3 * is[w]);
          if ((uc & 1) == 0) {
            sum += ar[0] == c0 + 2 ? gr[0] : acc(0);
            sum += ar[1] == c0 ? gr[1] : acc(0);
          } else {
            sum += ar[1] == c0 + 1 ? gr[1] : acc(0);
          }
        }
        row[iw] = static_cast<scalar_t>(sum);
      };
      if (pW == 1) column(0);
      for (int64_t iw = done_to; iw < W; ++iw) column(iw);
    } else {
      // Narrow rows (or half/bfloat16 storage): every block goes through
      // the row buffer, then converted/copied to the row.
      for (int64_t q = 0; q < Qv; q += N) {
        V lo, hi;
        block(q, lo, hi);
        vstore(rowbuf + 2 * q, lo);
        vstore(rowbuf + 2 * q + N, hi);
      }
      for (int64_t iw = 0; iw < W; ++iw)
        row[iw] = static_cast<scalar_t>(rowbuf[iw + pW]);
    }
  }
}
#endif

// Scratch sizes of bwd_nchw_k3s2_plane_impl: Qv = roundup(OW + 1, N) q's,
// padded rows of OWp = Qv + N. Input column iw has q = (iw + pW) / 2 <= OW:
// OW >= (W + 2 pW - 3) / 2 + 1 (floor mode; ceil mode only adds) gives
// 2 OW >= W + 2 pW - 2, so q <= (W - 1 + pW) / 2 <= OW + 1/2.
template <typename acc, int kBytes>
AF_INLINE void bwd_k3s2_sizes(const PoolPlaneGeometry& g, int64_t& Qv, int64_t& OWp) {
  constexpr int N = static_cast<int>(kBytes / sizeof(acc));
  Qv = (g.OW + 1 + N - 1) / N * N;
  OWp = Qv + N;
}

// Backward, NHWC, any geometry: one input row (n, ih); for each input pixel
// the windows containing it are visited in (oh, ow) order, a block of kB
// channels accumulating in registers.
template <int kB, typename scalar_t, typename index_t>
AF_INLINE void bwd_nhwc_block(const scalar_t* __restrict grad_out_n,
                              const index_t* __restrict argmax_n,
                              scalar_t* __restrict o, const PoolPlaneGeometry& g,
                              int64_t C, int64_t c0, int64_t n_rt,
                              const Taps& rt, const Taps& ct, int64_t ih,
                              int64_t iw) {
  using acc = acc_t<scalar_t>;
  const int64_t n = kB > 0 ? kB : n_rt;
  constexpr int kCap = kB > 0 ? kB : 64;
  acc s[kCap];
  for (int64_t c = 0; c < n; ++c) s[c] = 0;
  for (int64_t a = rt.start[ih]; a < rt.start[ih + 1]; ++a) {
    const int64_t row = rt.o[a] * g.OW;
    for (int64_t b = ct.start[iw]; b < ct.start[iw + 1]; ++b) {
      const int64_t off = (row + ct.o[b]) * C + c0;
      const scalar_t* __restrict gp = grad_out_n + off;
      const index_t* __restrict ap = argmax_n + off;
      const index_t code = static_cast<index_t>(argmax_code<index_t>(rt.t[a], ct.t[b], ih, iw, g));
      for (int64_t c = 0; c < n; ++c)
        s[c] += ap[c] == code ? static_cast<acc>(gp[c]) : acc(0);
    }
  }
  for (int64_t c = 0; c < n; ++c) o[c0 + c] = static_cast<scalar_t>(s[c]);
}

template <typename scalar_t, typename index_t>
AF_INLINE void bwd_nhwc_row_impl(const scalar_t* grad_out_n, const index_t* argmax_n,
                                 scalar_t* grad_in_row, const PoolPlaneGeometry& g, int64_t C,
                                 const Taps& rt, const Taps& ct, int64_t ih) {
  constexpr int kB = std::is_same<scalar_t, double>::value ? 16 : 32;
  for (int64_t iw = 0; iw < g.W; ++iw) {
    scalar_t* o = grad_in_row + iw * C;
    int64_t c0 = 0;
    for (; c0 + kB <= C; c0 += kB)
      bwd_nhwc_block<kB>(grad_out_n, argmax_n, o, g, C, c0, kB, rt, ct, ih, iw);
    if (c0 < C)
      bwd_nhwc_block<0>(grad_out_n, argmax_n, o, g, C, c0, C - c0, rt, ct, ih, iw);
  }
}

// ---------------------------------------------------------------------------
// Entry points of the SIMD section (one instantiation per pass): loops over
// a range of planes / rows with per-thread scratch, called once per
// at::parallel_for chunk. kSimdBytes is the pass's vector width.

// Forward, NCHW, 3x3 / stride 2 / dilation 1: planes [b, e). argmax == nullptr:
// no argmax.
// Scratch per thread is a band of output rows (k3s2_band_rows), not a
// plane: a few hundred KB whatever the plane size.
template <typename scalar_t, typename index_t>
void fwd_k3s2_planes(const scalar_t* x, scalar_t* out, index_t* argmax,
                     const PoolPlaneGeometry& g, int64_t b, int64_t e) {
  using acc = acc_t<scalar_t>;
  const int64_t band = k3s2_band_rows(g);
  const int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  std::vector<acc> hv((2 * band + 1) * g.OW);
  std::vector<pos_t<acc>> hp((2 * band + 1) * g.OW), pt(band * g.OW);
  // Prefetching the next plane pays when a band is the whole plane.
  const bool whole_planes = band >= g.OH;
  for (int64_t pl = b; pl < e; ++pl) {
    for (int64_t oh = 0; oh < g.OH; oh += band) {
      const int64_t oh_end = std::min(g.OH, oh + band);
      const bool prefetch = whole_planes && pl + 1 < e;
      if (argmax)
        fwd_nchw_k3s2_plane_impl<scalar_t, index_t, true, kSimdBytes>(
            x + pl * in_plane, out + pl * out_plane, argmax + pl * out_plane, g,
            oh, oh_end, hv.data(), hp.data(), pt.data(), prefetch);
      else
        fwd_nchw_k3s2_plane_impl<scalar_t, index_t, false, kSimdBytes>(
            x + pl * in_plane, out + pl * out_plane, nullptr, g, oh, oh_end,
            hv.data(), hp.data(), pt.data(), prefetch);
    }
  }
}

// Forward, NHWC, any geometry: output rows r = n * OH + oh in [b, e).
template <typename scalar_t, typename index_t>
void fwd_nhwc_rows(const scalar_t* x, scalar_t* out, index_t* argmax,
                   const PoolPlaneGeometry& g, int64_t C, int64_t b, int64_t e) {
  for (int64_t r = b; r < e; ++r) {
    const int64_t n = r / g.OH, oh = r % g.OH;
    const scalar_t* x_n = x + n * g.H * g.W * C;
    if (argmax)
      fwd_nhwc_row_impl<scalar_t, index_t, true>(x_n, out + r * g.OW * C,
                                                 argmax + r * g.OW * C, g, C, oh);
    else
      fwd_nhwc_row_impl<scalar_t, index_t, false>(x_n, out + r * g.OW * C,
                                                  nullptr, g, C, oh);
  }
}

#if AF_VECTOR_EXT
// Backward, NCHW, 3x3 / stride 2 / dilation 1: planes [b, e).
template <typename scalar_t>
void bwd_k3s2_planes(const scalar_t* grad_out, const uint8_t* argmax, scalar_t* grad_in,
                     const PoolPlaneGeometry& g, int64_t b, int64_t e) {
  using acc = acc_t<scalar_t>;
  // At most 32-byte vectors: the backward is bound by loads/stores and the
  // row edges, 64-byte blocks measured no faster (and AlexNet's 27- and
  // 13-wide rows are narrower than two of them).
  constexpr int kB = kSimdBytes < 32 ? kSimdBytes : 32;
  int64_t Qv, OWp;
  bwd_k3s2_sizes<acc, kB>(g, Qv, OWp);
  std::vector<acc> gp(g.OH * OWp), rowbuf(2 * Qv);
  std::vector<pos_t<acc>> ap(g.OH * OWp);
  const int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  for (int64_t pl = b; pl < e; ++pl)
    bwd_nchw_k3s2_plane_impl<scalar_t, kB>(
        grad_out + pl * out_plane, argmax + pl * out_plane, grad_in + pl * in_plane, g,
        gp.data(), ap.data(), rowbuf.data(), pl + 1 < e);
}
#endif

// Backward, NHWC, any geometry: input rows r = n * H + ih in [b, e).
template <typename scalar_t, typename index_t>
void bwd_nhwc_rows(const scalar_t* grad_out, const index_t* argmax, scalar_t* grad_in,
                   const PoolPlaneGeometry& g, int64_t C, const Taps& rt, const Taps& ct,
                   int64_t b, int64_t e) {
  const int64_t out_img = g.OH * g.OW * C;
  for (int64_t r = b; r < e; ++r) {
    const int64_t n = r / g.H, ih = r % g.H;
    bwd_nhwc_row_impl<scalar_t, index_t>(grad_out + n * out_img, argmax + n * out_img,
                                         grad_in + r * g.W * C, g, C, rt, ct, ih);
  }
}

#endif  // AF_POOL_SIMD_SECTION
