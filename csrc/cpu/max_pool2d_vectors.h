// The vector types of max_pool2d_simd.h (no include guard): included by it,
// once per instruction set, with AF_SIMD_BYTES defined.
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
