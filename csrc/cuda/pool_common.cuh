// Device helpers of the CUDA max-pool kernels (max_pool2d_kernels.cuh) and
// the fused ReLU + LRN + max-pool kernels (relu_lrn_max_pool2d_kernels.cuh):
// loads and tests, magic-number division of flat indices and the one
// NCHW/NHWC flat-index decode; and the glue's layout dispatch (host). Device
// code otherwise (the host rules are csrc/pool_geometry.h): it compiles for
// the GPU and, through host/cuda_shim.h, for the CPU.
#pragma once

#include <c10/macros/Macros.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstdint>
#include <type_traits>

namespace alexnet_fast {

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
  return c10::Half(__ldg(reinterpret_cast<const unsigned short*>(p)), c10::Half::from_bits());
}
template <>
__device__ __forceinline__ c10::BFloat16 load_ro<c10::BFloat16>(const c10::BFloat16* p) {
  return c10::BFloat16(__ldg(reinterpret_cast<const unsigned short*>(p)), c10::BFloat16::from_bits());
}

// n / d and n % d for 0 <= n < 2^31, 1 <= d < 2^31 with one multiply-high
// (Granlund-Montgomery): with shift = ceil(log2 d) and
// m1 = floor(2^32 (2^shift - d) / d) + 1, n / d = (umulhi(n, m1) + n) >> shift;
// umulhi(n, m1) + n < 2^32 because n < 2^31. Built on the host by the plans.
struct DivMod32 {
  uint32_t divisor = 1;
  uint32_t m1 = 1;
  uint32_t shift = 0;

  DivMod32() = default;
  explicit DivMod32(int64_t d) : divisor(static_cast<uint32_t>(d)) {
    while (shift < 32 && (uint64_t{1} << shift) < divisor) ++shift;
    m1 = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - divisor)) / divisor + 1);
  }
  __device__ __forceinline__ void divmod(uint32_t n, uint32_t& q, uint32_t& r) const {
    q = (__umulhi(n, m1) + n) >> shift;
    r = n - q * divisor;
  }
};

// The same interface past 2^31 elements: plain 64-bit division.
struct DivMod64 {
  int64_t divisor = 1;

  DivMod64() = default;
  explicit DivMod64(int64_t d) : divisor(d) {}
  __device__ __forceinline__ void divmod(int64_t n, int64_t& q, int64_t& r) const {
    q = n / divisor;
    r = n - q * divisor;
  }
};

// A type as a value, for the dispatch lambdas (std::type_identity is C++20).
template <typename T>
struct TypeTag {
  using type = T;
};

// Calls f(std::bool_constant<channels_last>) (host).
template <typename F>
void with_layout(bool channels_last, const F& f) {
  if (channels_last) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

// index_t: the type of flat element indices, uint32_t when every tensor has
// fewer than 2^31 elements, else int64_t (the plans decide).
template <typename index_t>
using DivMod = std::conditional_t<std::is_same_v<index_t, uint32_t>, DivMod32, DivMod64>;

// The three divisors that split a flat index of a dense (N, C, P, Q) tensor
// (P x Q a plane, H x W or OH x OW) in its memory order into coordinates:
//   NCHW: e = ((n*C + c)*P + p)*Q + q   (d0 = Q, d1 = P, d2 = C)
//   NHWC: e = ((n*P + p)*Q + q)*C + c   (d0 = C, d1 = Q, d2 = P)
template <typename index_t>
struct PlaneDecoder {
  DivMod<index_t> d0, d1, d2;

  PlaneDecoder() = default;
  PlaneDecoder(int64_t C, int64_t P, int64_t Q, bool channels_last)
      : d0(channels_last ? C : Q), d1(channels_last ? Q : P), d2(channels_last ? P : C) {}
};

template <typename index_t>
struct PlaneIndex {
  index_t n, c, row, col;
};

// The one flat-index decode of every pool kernel (forward: the pooled plane;
// backward: the input plane).
template <bool kChannelsLast, typename index_t>
__device__ __forceinline__ PlaneIndex<index_t> decode_plane_index(index_t e, const PlaneDecoder<index_t>& d) {
  PlaneIndex<index_t> r;
  index_t q, q2;
  if constexpr (kChannelsLast) {
    d.d0.divmod(e, q, r.c);
    d.d1.divmod(q, q2, r.col);
    d.d2.divmod(q2, r.n, r.row);
  } else {
    d.d0.divmod(e, q, r.col);
    d.d1.divmod(q, q2, r.row);
    d.d2.divmod(q2, r.n, r.c);
  }
  return r;
}

// Lowest window o >= 0 whose taps o*s - pad + t*d, t < k, can reach position
// x, given px = x + pad >= 0: o >= (px - (k-1) d) / s, rounded up, at least 0.
template <typename off_t>
__device__ __forceinline__ off_t first_window(off_t px, off_t k, off_t s, off_t d) {
  const off_t num = px - (k - 1) * d;
  return num <= 0 ? off_t(0) : (num + s - 1) / s;
}

// First window tap i with start + i*d >= 0: ceil(-start / d) when start < 0.
template <typename off_t>
__device__ __forceinline__ off_t first_inside(off_t start, off_t d) {
  if (start >= 0) return 0;
  return d == 1 ? -start : (-start + d - 1) / d;
}

}  // namespace alexnet_fast
