// Helpers shared by the CUDA max-pool kernels (max_pool2d_kernel.cu) and the
// fused ReLU + LRN + max-pool kernels (relu_lrn_max_pool2d_kernel.cu):
// device loads and tests, magic-number division of flat indices, and the
// host-side pooling argument checks, output size and output allocation.
// Everything is inline / a template: each .cu includes this header in its own
// translation unit.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>

namespace alexnet_fast {

// ---------------------------------------------------------------------------
// Device helpers
// ---------------------------------------------------------------------------

// NaN test that needs no math header overloads (exact without fast-math
// "no NaN" assumptions, which nvcc's --use_fast_math does not make).
template <typename T>
__device__ __forceinline__ bool is_nan(T v) {
  return v != v;
}

// Read-only (non-coherent cache) loads. __ldg has no overload for c10::Half /
// c10::BFloat16: load their 16-bit pattern instead.
template <typename T>
__device__ __forceinline__ T load_ro(const T* p) {
  return __ldg(p);
}
template <>
__device__ __forceinline__ c10::Half load_ro<c10::Half>(const c10::Half* p) {
  return c10::Half(__ldg(reinterpret_cast<const unsigned short*>(p)),
                   c10::Half::from_bits());
}
template <>
__device__ __forceinline__ c10::BFloat16 load_ro<c10::BFloat16>(
    const c10::BFloat16* p) {
  return c10::BFloat16(__ldg(reinterpret_cast<const unsigned short*>(p)),
                       c10::BFloat16::from_bits());
}

// n / d and n % d for 0 <= n, d <= INT32_MAX with one multiply-high
// (PyTorch's IntDivider<unsigned int>, Granlund-Montgomery): with
// shift = ceil(log2 d) and m1 = floor(2^32 (2^shift - d) / d) + 1,
// n / d = (umulhi(n, m1) + n) >> shift; t + n < 2^32 because n < 2^31.
struct DivMod32 {
  uint32_t divisor = 1;
  uint32_t m1 = 1;
  uint32_t shift = 0;

  DivMod32() = default;
  explicit DivMod32(int64_t d) : divisor(static_cast<uint32_t>(d)) {
    TORCH_INTERNAL_ASSERT(d >= 1 && d <= std::numeric_limits<int32_t>::max());
    shift = 0;
    while (shift < 32 && (uint64_t{1} << shift) < divisor) ++shift;
    const uint64_t magic =
        ((uint64_t{1} << 32) * ((uint64_t{1} << shift) - divisor)) / divisor +
        1;
    TORCH_INTERNAL_ASSERT(magic > 0 && magic <= 0xffffffffull);
    m1 = static_cast<uint32_t>(magic);
  }
  __device__ __forceinline__ void divmod(uint32_t n, uint32_t& q,
                                         uint32_t& r) const {
    q = (__umulhi(n, m1) + n) >> shift;
    r = n - q * divisor;
  }
};

// Same interface for the > 2^31-element case: plain 64-bit division.
struct DivMod64 {
  int64_t divisor = 1;

  DivMod64() = default;
  explicit DivMod64(int64_t d) : divisor(d) {}
  __device__ __forceinline__ void divmod(int64_t n, int64_t& q,
                                         int64_t& r) const {
    q = n / divisor;
    r = n - q * divisor;
  }
};

// index_t: type of the flat element index (uint32_t when every tensor has
// < 2^31 elements, else int64_t).
template <typename index_t>
using DivMod =
    std::conditional_t<std::is_same_v<index_t, uint32_t>, DivMod32, DivMod64>;

// ---------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------

struct PoolArgs {
  int64_t kH, kW, sH, sW, pH, pW;
  int64_t dH = 1, dW = 1;
  bool is_3x3s2() const {
    return kH == 3 && kW == 3 && sH == 2 && sW == 2 && dH == 1 && dW == 1;
  }
  // argmax dtype: uint8 when every window position i*kW + j fits, else int32.
  bool int32_argmax() const { return kH * kW > 256; }
};

// The pooling arguments' checks. Without `dilation` (an op that has none)
// dilation is 1 and the padding rule reads pad <= k / 2.
inline PoolArgs check_pool_args(const char* op, at::IntArrayRef kernel_size,
                                at::IntArrayRef stride, at::IntArrayRef padding,
                                std::optional<at::IntArrayRef> dilation = std::nullopt) {
  TORCH_CHECK(kernel_size.size() == 2, op,
              ": kernel_size must have 2 elements, got ", kernel_size);
  TORCH_CHECK(stride.size() == 2, op, ": stride must have 2 elements, got ",
              stride);
  TORCH_CHECK(padding.size() == 2, op, ": padding must have 2 elements, got ",
              padding);
  if (dilation) {
    TORCH_CHECK(dilation->size() == 2, op,
                ": dilation must have 2 elements, got ", *dilation);
  }
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  PoolArgs a{kernel_size[0], kernel_size[1], stride[0], stride[1],
             padding[0],     padding[1]};
  if (dilation) {
    a.dH = (*dilation)[0];
    a.dW = (*dilation)[1];
  }
  TORCH_CHECK(a.kH >= 1 && a.kW >= 1 && a.kH <= kIntMax && a.kW <= kIntMax, op,
              ": kernel_size must be in [1, 2^31), got ", kernel_size);
  TORCH_CHECK(a.sH >= 1 && a.sW >= 1 && a.sH <= kIntMax && a.sW <= kIntMax, op,
              ": stride must be in [1, 2^31), got ", stride);
  if (dilation) {
    TORCH_CHECK(a.dH >= 1 && a.dW >= 1 && a.dH <= kIntMax && a.dW <= kIntMax, op,
                ": dilation must be in [1, 2^31), got ", *dilation);
  }
  TORCH_CHECK(a.pH >= 0 && a.pW >= 0, op,
              ": padding must be non-negative, got ", padding);
  if (dilation) {
    // PyTorch's rule: pad <= ((k - 1) * d + 1) / 2 (half the effective kernel).
    TORCH_CHECK(a.pH <= ((a.kH - 1) * a.dH + 1) / 2 &&
                    a.pW <= ((a.kW - 1) * a.dW + 1) / 2,
                op,
                ": padding must be at most half of the effective kernel size, "
                "got padding=",
                padding, ", kernel_size=", kernel_size, ", dilation=", *dilation);
  } else {
    // PyTorch's rule with dilation 1: pad <= k / 2.
    TORCH_CHECK(a.pH <= a.kH / 2 && a.pW <= a.kW / 2, op,
                ": padding must be at most half of kernel_size, got padding=", padding,
                ", kernel_size=", kernel_size);
  }
  TORCH_CHECK(a.kH <= kIntMax / a.kW, op,
              ": kernel_size[0] * kernel_size[1] must fit in int32, got ",
              kernel_size);
  return a;
}

// PyTorch's pooling_output_shape: div_rtn (floor) of
// (in + 2p - d(k-1) - 1 [+ s-1 with ceil_mode]) / s, plus 1; with ceil_mode a
// last window starting at or past in + p (entirely in the right padding) is
// dropped.
inline int64_t pooling_output_size(int64_t in, int64_t k, int64_t pad, int64_t s,
                                   int64_t d, bool ceil_mode) {
  const int64_t num = in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t q = num / s;
  if (num % s != 0 && num < 0) --q;  // round toward -inf
  int64_t out = q + 1;
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

// The backward gets no ceil_mode: a pooled size `out` of input size `in` is
// valid when it is the floor or the ceil one.
inline bool pooling_output_size_ok(int64_t out, int64_t in, int64_t k, int64_t pad,
                                   int64_t s, int64_t d) {
  return out == pooling_output_size(in, k, pad, s, d, false) ||
         out == pooling_output_size(in, k, pad, s, d, true);
}

// The forward's tensors. The format is PyTorch's choice for max_pool2d,
// x.suggest_memory_format(); x is copied only when it is not dense in it, and
// out / argmax take it.
struct PoolForwardTensors {
  at::Tensor x;       // x_in, or its copy dense in the format
  at::Tensor out;     // (N, C, OH, OW)
  at::Tensor argmax;  // out's shape, int32 if a.int32_argmax() else uint8;
                      // an empty uint8 tensor when !need_argmax
  bool channels_last;
};

inline PoolForwardTensors pool_forward_tensors(const at::Tensor& x_in, int64_t OH, int64_t OW,
                                               const PoolArgs& a, bool need_argmax) {
  const at::MemoryFormat mf = x_in.suggest_memory_format();
  const int64_t N = x_in.size(0), C = x_in.size(1);
  PoolForwardTensors t;
  t.x = x_in.contiguous(mf);
  t.channels_last = mf == at::MemoryFormat::ChannelsLast;
  t.out = at::empty({N, C, OH, OW}, t.x.options().memory_format(mf));
  t.argmax =
      need_argmax
          ? at::empty({N, C, OH, OW},
                      t.x.options()
                          .dtype(a.int32_argmax() ? at::kInt : at::kByte)
                          .memory_format(mf))
          : at::empty({0}, t.x.options().dtype(at::kByte));
  return t;
}

// The backward's argmax must have the dtype the forward gives it.
inline void check_argmax_dtype(const char* op, const at::Tensor& argmax, const PoolArgs& a,
                               at::IntArrayRef kernel_size) {
  const at::ScalarType arg_type = a.int32_argmax() ? at::kInt : at::kByte;
  TORCH_CHECK(argmax.scalar_type() == arg_type, op, ": argmax must be ",
              arg_type, " for kernel_size=", kernel_size, ", got ",
              argmax.scalar_type());
}

}  // namespace alexnet_fast
