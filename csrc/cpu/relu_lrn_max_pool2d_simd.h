// The fused forward's interior pooling (no include guard): included by
// relu_lrn_max_pool2d_kernel.cpp once per instruction set, inside namespace
// alexnet_fast::(anonymous)::<isa> and a `#pragma GCC target` region, with
// AF_POOL_LANES (floats per vector: 16 for avx512, 8 for avx2, and 8 for the
// base, as two SSE2 registers) defined.
//
// A buffer row holds one channel's LRN values phase-major (see the kernel's
// header), so column j of the window of output ow sits at jofs[j] + ow: the
// interior outputs [ow_a, ow_b) of a row are folded kLanes at a time with
// plain unit-stride loads. Each lane takes v when v > m or v is NaN, folding
// each window row on its own and then the rows in order, which gives the
// scalar fold's maxima and positions (fold_lanes), so every width agrees. The last block of a row overlaps the one
// before instead of a scalar tail: recomputing an output gives the same bits.
// Written with GCC's vector extensions; the compiler picks the instructions of
// the target (vcmpps into masks and masked moves on avx512, vblendvps on avx2,
// and/andnot/or on SSE2).

template <int kLanes>
struct PoolLanes {
  typedef float Values __attribute__((vector_size(4 * kLanes)));
  typedef int32_t Positions __attribute__((vector_size(4 * kLanes)));
  typedef uint8_t Bytes __attribute__((vector_size(kLanes)));
};

// take v (at position q) over m (at p) when v > m or v is NaN. Folding the
// window in any grouping that keeps its order gives the same result as the
// sequential fold: the first maximum, or the last NaN.
template <typename L>
AF_INLINE void fold_lanes(typename L::Values v, typename L::Positions q, typename L::Values& m,
                          typename L::Positions& p) {
  const typename L::Positions take = (v > m) | (v != v);
  m = take ? v : m;
  p = take ? q : p;
}

template <int kLanes, typename index_t, bool kArg>
AF_INLINE void pool_interior_block(const float* rowp, int64_t W, int64_t i_lo, int64_t i_hi, int64_t kW,
                                   const int64_t* jofs, int64_t ow, float* o, index_t* argmax) {
  using L = PoolLanes<kLanes>;
  // Each window row is folded on its own, then the rows in order: the rows'
  // folds are independent chains, which the core overlaps, where one fold
  // over all kH * kW values was a single chain of dependent compares and
  // selects (8 deep for 3 x 3).
  typename L::Values m = -std::numeric_limits<float>::infinity() + typename L::Values{};
  typename L::Positions p = static_cast<int32_t>(i_lo * kW) + typename L::Positions{};
  for (int64_t i = i_lo; i < i_hi; ++i) {
    const float* r = rowp + i * W + ow;
    typename L::Values row_m;
    std::memcpy(&row_m, r + jofs[0], sizeof(row_m));
    typename L::Positions row_p = static_cast<int32_t>(i * kW) + typename L::Positions{};
    for (int64_t j = 1; j < kW; ++j) {
      typename L::Values v;
      std::memcpy(&v, r + jofs[j], sizeof(v));
      fold_lanes<L>(v, static_cast<int32_t>(i * kW + j) + typename L::Positions{}, row_m, row_p);
    }
    fold_lanes<L>(row_m, row_p, m, p);
  }
  std::memcpy(o + ow, &m, sizeof(m));
  if constexpr (kArg) {
    if constexpr (std::is_same_v<index_t, uint8_t>) {
      const typename L::Bytes narrow = __builtin_convertvector(p, typename L::Bytes);  // positions < 256
      std::memcpy(argmax + ow, &narrow, sizeof(narrow));
    } else {
      std::memcpy(argmax + ow, &p, sizeof(p));
    }
  }
}

template <int kLanes, typename index_t, bool kArg>
AF_INLINE void pool_interior_blocks(const float* rowp, int64_t W, int64_t i_lo, int64_t i_hi, int64_t kW,
                                    const int64_t* jofs, int64_t ow_a, int64_t ow_b, float* o, index_t* argmax) {
  int64_t ow = ow_a;
  for (; ow + kLanes <= ow_b; ow += kLanes)
    pool_interior_block<kLanes, index_t, kArg>(rowp, W, i_lo, i_hi, kW, jofs, ow, o, argmax);
  if (ow < ow_b) pool_interior_block<kLanes, index_t, kArg>(rowp, W, i_lo, i_hi, kW, jofs, ow_b - kLanes, o, argmax);
}

// Pools the interior outputs [ow_a, ow_b) of one output row (positions
// i * kW + j < 2^31); false, with nothing written, when fewer than 4 of them
// (the caller's scalar fold takes those). Rows shorter than kLanes use
// narrower vectors: at avx512, pool2's 13 outputs take two 8-lane blocks
// (4-lane ones, four blocks, made the fused forward at norm2 slower at avx512
// than at avx2).
template <typename index_t, bool kArg>
__attribute__((noinline)) bool pool_interior_row(const float* rowp, int64_t W, int64_t i_lo, int64_t i_hi, int64_t kW,
                                                 const int64_t* jofs, int64_t ow_a, int64_t ow_b, float* o,
                                                 index_t* argmax) {
  if (ow_b - ow_a >= AF_POOL_LANES) {
    pool_interior_blocks<AF_POOL_LANES, index_t, kArg>(rowp, W, i_lo, i_hi, kW, jofs, ow_a, ow_b, o, argmax);
    return true;
  }
  if (AF_POOL_LANES > 8 && ow_b - ow_a >= 8) {
    pool_interior_blocks<8, index_t, kArg>(rowp, W, i_lo, i_hi, kW, jofs, ow_a, ow_b, o, argmax);
    return true;
  }
  if (ow_b - ow_a >= 4) {
    pool_interior_blocks<4, index_t, kArg>(rowp, W, i_lo, i_hi, kW, jofs, ow_a, ow_b, o, argmax);
    return true;
  }
  return false;
}

// A stride-2 row into phase-major order: dst[q] = src[2q] for the ceil(W/2)
// even columns, then dst[half + q] = src[2q + 1]. Written as the plain loop,
// which GCC vectorises at this target's width with permutes (the SSE2
// shuffles of an earlier version, with a scalar tail, took a tenth of the
// fused forward's time).
__attribute__((noinline)) inline void deinterleave_row(const float* __restrict src, float* __restrict dst, int64_t W) {
  const int64_t pairs = W / 2, half = (W + 1) / 2;
  float* __restrict odd = dst + half;
  for (int64_t q = 0; q < pairs; ++q) {
    dst[q] = src[2 * q];
    odd[q] = src[2 * q + 1];
  }
  if (W & 1) dst[pairs] = src[W - 1];
}
