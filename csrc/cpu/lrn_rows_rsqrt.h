// neg_pow from a reciprocal square root estimate, included by lrn_rows.h
// (no include guard) inside the namespaces of the instruction sets that have
// one (avx2, avx512), after their vector type V and its
//   rsqrt(V)              x^-1/2: the estimate and one Newton step
//   nan_to(V v, V other)  v, with `other` in the lanes where v is NaN
//   pow(V, float)         lane by lane std::pow
//   three_quarters_power(V s, V q)   s^-3/4, from s or from q = rsqrt(s)
// (the error bounds are in docs/math.md, "CPU instruction sets").

// p = s^-beta and inv = 1/s without the divider for beta = 0.75 and 0.5:
// q = s^-1/2, 1/s = q * q, and s^-0.75 in the instruction set's own form.
// The forward pass uses p alone: what only inv needs is dropped.
template <Power kPower, typename V>
C10_ALWAYS_INLINE void neg_pow(V s, float beta, V& p, V& inv) {
  if constexpr (kPower == Power::kZero) {
    p = s.broadcast(1.0f);
    inv = s.broadcast(1.0f) / s;
  } else if constexpr (kPower == Power::kThreeQuarters || kPower == Power::kHalf) {
    const V q = rsqrt(s);
    inv = q * q;
    if constexpr (kPower == Power::kHalf) {
      p = q;
    } else {
      p = three_quarters_power(s, q);
    }
  } else {
    inv = s.broadcast(1.0f) / s;
    if constexpr (kPower == Power::kOne) {
      p = inv;
    } else {
      p = pow(s, -beta);
    }
  }
}
