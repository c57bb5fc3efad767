// neg_pow from a reciprocal square root estimate, included by lrn_rows.h
// (no include guard) inside the namespaces of the instruction sets that have
// one (avx2, avx512), after their vector type V and its
//   rsqrt(V)              x^-1/2: the estimate and one Newton step
//   nan_to(V v, V other)  v, with `other` in the lanes where v is NaN
//   pow(V, float)         lane by lane std::pow
// (the error bounds are in docs/math.md, "CPU instruction sets").

// p = s^-beta and inv = 1/s without the divider for beta = 0.75 and 0.5:
// q = s^-1/2, s^-0.75 = q * (q * q^-1/2), 1/s = q * q. At s = 0 (q = inf)
// and s = inf (q = 0), q * (q * q^-1/2) is 0 * inf: there p = q, the limit.
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
      p = nan_to(q * (q * rsqrt(q)), q);
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
