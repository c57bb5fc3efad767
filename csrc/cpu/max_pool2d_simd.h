// ===========================================================================
// The SIMD section of max_pool2d_kernel.cpp (no include guard): included
// once per instruction set by max_pool2d_kernel.cpp, inside
// namespace alexnet_fast::(anonymous)::<isa> and a `#pragma GCC target`
// region, with AF_SIMD_BYTES (the widest vector of the target: 16, 32, 64)
// defined. Everything here is compiled for that target; it uses only what
// max_pool2d_kernel.cpp declared before it.
constexpr int kSimdBytes = AF_SIMD_BYTES;

#include "max_pool2d_vectors.h"

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
