// The LRN row functions, included once per instruction set by lrn_rows.h
// (no include guard), inside namespace alexnet_fast::lrn::<isa> after that
// namespace's vectorized_loop and neg_pow, with AF_LRN_ROW defined. The
// formulas are in lrn_rows.h's header comment.
//
// vectorized_loop calls body(v, t) with a vector value v for positions
// [t, t + width); values are made through v (v.load, v.broadcast).

// The rows of a window sum. A row function calls
//   with_window(rows, count, [&](auto window) { ... window.sum(v, t) ... })
// and the body is compiled once for each count from 1 to kUnrolledWindow,
// with the row pointers copied into registers before the row loop and the sum
// unrolled, and once for any other count, which reads the count and the
// pointers in the loop. On the avx512 forward row with a window of 5 rows,
// the loop over the rows took 28 of the 54 instructions per 16 floats;
// unrolled, the whole step takes 27. Both forms add the same terms in the
// same order (the values do not depend on the form).
constexpr int kUnrolledWindow = 5;  // AlexNet's size: counts 3, 4 and 5

template <int kCount, typename T>
struct WindowRows {
  const T* row[kCount];
  template <typename V>
  C10_ALWAYS_INLINE V sum(V v, int64_t t) const {
    V total = v.load(row[0] + t);
#pragma GCC unroll 8
    for (int r = 1; r < kCount; ++r) total = total + v.load(row[r] + t);
    return total;
  }
};

template <typename T>
struct WindowRows<0, T> {
  const T* const* rows;
  int64_t count;
  template <typename V>
  C10_ALWAYS_INLINE V sum(V v, int64_t t) const {
    V total = v.load(rows[0] + t);
    for (int64_t r = 1; r < count; ++r) total = total + v.load(rows[r] + t);
    return total;
  }
};

template <int kCount = kUnrolledWindow, typename T, typename Body>
C10_ALWAYS_INLINE void with_window(const T* const* rows, int64_t count, const Body& body) {
  if constexpr (kCount == 0) {
    body(WindowRows<0, T>{rows, count});
  } else if (count == kCount) {
    WindowRows<kCount, T> window;
    for (int r = 0; r < kCount; ++r) window.row[r] = rows[r];
    body(window);
  } else {
    with_window<kCount - 1>(rows, count, body);
  }
}

template <bool kRelu, typename T>
AF_LRN_ROW void activation_row(const T* x, T* a, T* sq, int64_t n) {
  vectorized_loop<T>(n, [&](auto v, int64_t t) C10_ALWAYS_INLINE_ATTRIBUTE {
    auto av = v.load(x + t);
    if constexpr (kRelu) av = zero_unless_positive(av, av);
    av.store(a + t);
    (av * av).store(sq + t);
  });
}

template <Power kPower, typename T>
AF_LRN_ROW void forward_row(const T* const* sq_rows, int64_t count, const T* a, T* y, int64_t n, T k, T alpha_n,
                            T beta) {
  with_window(sq_rows, count, [&](const auto& window) C10_ALWAYS_INLINE_ATTRIBUTE {
    vectorized_loop<T>(n, [&](auto v, int64_t t) C10_ALWAYS_INLINE_ATTRIBUTE {
      using V = decltype(v);
      const V s = v.broadcast(k) + v.broadcast(alpha_n) * window.sum(v, t);
      V p, inv;
      neg_pow<kPower>(s, beta, p, inv);
      (v.load(a + t) * p).store(y + t);
    });
  });
}

template <Power kPower, typename T>
AF_LRN_ROW void gradient_terms_row(const T* const* sq_rows, int64_t count, const T* a, const T* g, T* gp, T* t_out,
                                   int64_t n, T k, T alpha_n, T beta) {
  with_window(sq_rows, count, [&](const auto& window) C10_ALWAYS_INLINE_ATTRIBUTE {
    vectorized_loop<T>(n, [&](auto v, int64_t t) C10_ALWAYS_INLINE_ATTRIBUTE {
      using V = decltype(v);
      const V s = v.broadcast(k) + v.broadcast(alpha_n) * window.sum(v, t);
      V p, inv;
      neg_pow<kPower>(s, beta, p, inv);
      const V gpv = v.load(g + t) * p;
      gpv.store(gp + t);
      (v.load(a + t) * gpv * inv).store(t_out + t);
    });
  });
}

// With the ReLU, relu'(x) = 0 exactly where a = relu(x) <= 0; the select also
// zeroes a NaN or inf value there, as threshold_backward does.
// coef = 0 (beta = 0 or alpha = 0) drops the window term exactly: its factor
// is zero, and its t values may be 0 * inf there.
template <bool kRelu, typename T>
AF_LRN_ROW void input_grad_row(const T* const* t_rows, int64_t count, const T* a, const T* gp, T* dx, int64_t n,
                               T coef) {
  if (coef == T(0)) {
    vectorized_loop<T>(n, [&](auto v, int64_t t) C10_ALWAYS_INLINE_ATTRIBUTE {
      auto value = v.load(gp + t);
      if constexpr (kRelu) value = zero_unless_positive(v.load(a + t), value);
      value.store(dx + t);
    });
    return;
  }
  with_window(t_rows, count, [&](const auto& window) C10_ALWAYS_INLINE_ATTRIBUTE {
    vectorized_loop<T>(n, [&](auto v, int64_t t) C10_ALWAYS_INLINE_ATTRIBUTE {
      const auto av = v.load(a + t);
      auto value = v.load(gp + t) - v.broadcast(coef) * av * window.sum(v, t);
      if constexpr (kRelu) value = zero_unless_positive(av, value);
      value.store(dx + t);
    });
  });
}

// Whether the row holds a NaN or an infinity. v is non-finite exactly when
// its exponent field is all ones: adding one to the exponent field of |v|'s
// bits then carries into the sign bit, and only then. An AND, an ADD and an
// OR per element on integers, which GCC vectorises at this variant's width;
// the float compare !(|v| <= max) it would leave scalar (it may trap).
template <typename T>
AF_LRN_ROW bool has_nonfinite_row(const T* row, int64_t n) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  using Bits = std::conditional_t<std::is_same_v<T, float>, uint32_t, uint64_t>;
  constexpr Bits kSign = Bits(1) << (8 * sizeof(T) - 1);
  constexpr Bits kExponentOne = Bits(1) << (std::numeric_limits<T>::digits - 1);
  Bits carries = 0;
  for (int64_t t = 0; t < n; ++t) {
    Bits bits;
    std::memcpy(&bits, row + t, sizeof(bits));
    carries |= (bits & ~kSign) + kExponentOne;
  }
  return (carries & kSign) != 0;
}
