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
// One definition for every width, its shuffle masks computed at compile time:
// lane i = G*l + j is position j of the 128-bit lane l, which holds
// G = 16 / sizeof(T) elements (H = G / 2).
template <typename T, int kBytes,
          bool = (std::is_same<T, float>::value || std::is_same<T, double>::value) &&
                 kBytes <= AF_SIMD_BYTES>
struct Vec {
  static constexpr bool kOn = false;
};
template <typename T, int kBytes>
struct Vec<T, kBytes, true> {
  static constexpr bool kOn = true;
  static constexpr int N = kBytes / sizeof(T);
  typedef T V __attribute__((vector_size(kBytes)));
  typedef std::conditional_t<sizeof(T) == 4, int32_t, int64_t> Lane;
  typedef Lane I __attribute__((vector_size(kBytes)));
  static constexpr int G = 16 / sizeof(T), H = G / 2;

  // x[2k], x[2k+1] for the outputs k in order S, from a = x[0..], b = x[N..]:
  // lane (l, j) takes a[G*l + 2j] for j < H, else b[G*l + 2(j - H)].
  static AF_INLINE V evens(V a, V b) {
    constexpr I m = mask([](int i) { return even(i); });
    return __builtin_shuffle(a, b, m);
  }
  static AF_INLINE V odds(V a, V b) {
    constexpr I m = mask([](int i) { return even(i) + 1; });
    return __builtin_shuffle(a, b, m);
  }
  // x[2k+2] in order S from a = x[2..], b = x[N+1..] (reads up to x[2N], the
  // last element the N windows need, never beyond).
  static AF_INLINE V evens2(V a, V b) {
    constexpr I m = mask([](int i) { return even(i) + (i % G >= H); });
    return __builtin_shuffle(a, b, m);
  }
  // Output k < N/2 stands at lane (k / H, k % H), output N/2 + k at lane
  // (k / H, H + k % H): the inverse of S, one 64-bit permute (the identity
  // for 16 bytes).
  template <typename U>
  static AF_INLINE U unscramble(U v) {
    constexpr I m = mask([](int k) {
      const int r = k % (N / 2);
      return r / H * G + (k >= N / 2) * H + r % H;
    });
    return __builtin_shuffle(v, m);
  }
  // Interleave: (a0 b0 a1 b1 ...) as two vectors.
  static AF_INLINE V zip_lo(V a, V b) {
    constexpr I m = mask([](int i) { return i / 2 + (i % 2) * N; });
    return __builtin_shuffle(a, b, m);
  }
  static AF_INLINE V zip_hi(V a, V b) {
    constexpr I m = mask([](int i) { return N / 2 + i / 2 + (i % 2) * N; });
    return __builtin_shuffle(a, b, m);
  }

 private:
  // The shuffle index of lane i of evens (b's elements are N.. 2N-1).
  static constexpr int even(int i) {
    const int l = i / G, j = i % G;
    return j < H ? G * l + 2 * j : N + G * l + 2 * (j - H);
  }
  // The constant mask whose lane i is f(i).
  template <typename F, int... i>
  static constexpr I mask(F f, std::integer_sequence<int, i...>) {
    return I{f(i)...};
  }
  template <typename F>
  static constexpr I mask(F f) {
    return mask(f, std::make_integer_sequence<int, N>{});
  }
};
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
