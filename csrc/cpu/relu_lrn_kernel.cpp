// Fused ReLU + local response normalization across channels, CPU kernels.
//
//   a_c = relu(x_c)  (x_c when apply_relu is false)
//   s_c = k + alpha/size * sum_{j in W(c)} a_j^2,   W(c) = [c - size/2, c + (size-1)/2]
//   y_c = a_c * p_c,                                 p_c = s_c^-beta
//
// with windows clipped to [0, C). The backward pass recomputes s from x:
//
//   dx_j = relu'(x_j) * (g_j p_j - (2 alpha beta / size) a_j sum_{i in W'(j)} t_i)
//   t_i = g_i a_i s_i^(-beta-1),   W'(j) = [j - (size-1)/2, j + size/2]
//
// W'(j) is the mirrored window: the channels i whose W(i) contains j.
//
// Window sums add their terms one by one in increasing channel order instead
// of sliding a running sum (add the entering term, subtract the leaving one):
// a running sum would carry a NaN or inf into every later channel, and the
// window is small. Every (batch, spatial position) is independent, so the work
// splits over batch x spatial without atomics and the results do not depend
// on the number of threads.
//
// Layouts (see channel_layout.h), both without copies:
//   channels-first: a tile of spatial positions is processed one channel row
//     at a time; ring buffers keep the rows of the last `size` channels
//     (activations and squares; in the backward pass also g*p and t), so every
//     input element is loaded once.
//   channels-last: the channels of a pixel are contiguous; the window sums run
//     over zero-padded per-pixel rows (adding the padding zeros is exact).
// Both layouts add the same terms in the same order and give the same values.
//
// Values are loaded and stored in the storage type; everything in between, a*a
// included, is in float for float/half/bfloat16 (double for double), so a half
// input around 300 does not overflow. The row arithmetic (and its per-CPU
// variants) is in lrn_rows.h, shared with relu_lrn_max_pool2d_kernel.cpp so
// that the fused op agrees bitwise; this file owns layouts, tiles and threads.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "../channel_layout.h"
#include "lrn_rows.h"
#include "output_allocator.h"

namespace alexnet_fast {

namespace {

using lrn::activation_row;
using lrn::classify_beta;
using lrn::forward_row;
using lrn::gradient_terms_row;
using lrn::input_grad_row;
using lrn::PaddedRow;
using lrn::kPrefetchChannels;
using lrn::prefetch_row;
using lrn::Params;
using lrn::Power;
using lrn::Ring;

// ---------------------------------------------------------------------------
// Conversions between the storage type and the compute type, for half and
// bfloat16 rows (float and double rows are used in place).
template <typename scalar_t, typename acc_t>
inline void load_row(const scalar_t* src, acc_t* dst, int64_t n) {
  for (int64_t t = 0; t < n; ++t) dst[t] = static_cast<acc_t>(src[t]);
}

template <typename scalar_t, typename acc_t>
inline void store_row(const acc_t* src, scalar_t* dst, int64_t n) {
  for (int64_t t = 0; t < n; ++t) dst[t] = static_cast<scalar_t>(src[t]);
}

// A row of the storage type as a row of the compute type: the row itself when
// the types match, else its conversion into `buffer`.
template <typename scalar_t, typename acc_t>
inline const acc_t* compute_row(const scalar_t* src, acc_t* buffer, int64_t n) {
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    return src;
  } else {
    load_row(src, buffer, n);
    return buffer;
  }
}

// Where to write a result row: the output row itself when the types match,
// else `buffer`, to be converted by finish_row.
template <typename scalar_t, typename acc_t>
inline acc_t* result_row(scalar_t* dst, acc_t* buffer) {
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    return dst;
  } else {
    return buffer;
  }
}

template <typename scalar_t, typename acc_t>
inline void finish_row(const acc_t* buffer, scalar_t* dst, int64_t n) {
  if constexpr (!std::is_same_v<scalar_t, acc_t>) store_row(buffer, dst, n);
}

// ---------------------------------------------------------------------------
// Channels-first: tiles of `tile` spatial positions, walked channel by channel

// What both channels-first passes keep: rings of the activations a and the
// squares sq (load fills channel c), a conversion buffer and the window's rows.
template <bool kRelu, typename scalar_t, typename acc_t>
struct ChannelsFirstRows {
  const Params<acc_t>& prm;
  int64_t C, S;
  Ring<acc_t> a, sq;
  std::vector<acc_t> buffer;
  std::vector<const acc_t*> window;

  ChannelsFirstRows(const Params<acc_t>& prm_, int64_t C_, int64_t S_, int64_t tile)
      : prm(prm_),
        C(C_),
        S(S_),
        a(prm_.ring_slots(C_), tile, C_),
        sq(prm_.ring_slots(C_), tile, C_),
        buffer(tile),
        window(prm_.window) {}

  void load(const scalar_t* x, int64_t c, int64_t n) {
    activation_row<kRelu>(compute_row(x + c * S, a[c], n), a[c], sq[c], n);
  }
};

template <bool kRelu, Power kPower, typename scalar_t, typename acc_t>
struct ForwardChannelsFirst : ChannelsFirstRows<kRelu, scalar_t, acc_t> {
  static constexpr int64_t kRings = 2;  // a, sq
  using Rows = ChannelsFirstRows<kRelu, scalar_t, acc_t>;
  using Rows::Rows;
  using Rows::prm, Rows::C, Rows::S, Rows::a, Rows::sq, Rows::buffer, Rows::window, Rows::load;

  // x and y point at (batch, channel 0, first position of the tile). Output
  // channel c needs the squares of channels up to c + after.
  void operator()(const scalar_t* x, scalar_t* y, int64_t n) {
    for (int64_t c = 0; c < std::min(prm.after, C); ++c) load(x, c, n);
    for (int64_t c = 0; c < C; ++c) {
      if (c + prm.after + kPrefetchChannels < C) prefetch_row(x + (c + prm.after + kPrefetchChannels) * S, n);
      if (c + kPrefetchChannels < C) prefetch_row</*kForWrite=*/true>(y + (c + kPrefetchChannels) * S, n);
      if (c + prm.after < C) load(x, c + prm.after, n);
      const int64_t lo = std::max<int64_t>(c - prm.before, 0);
      const int64_t hi = std::min(c + prm.after, C - 1);
      for (int64_t j = lo; j <= hi; ++j) window[j - lo] = sq[j];
      acc_t* out = result_row(y + c * S, buffer.data());
      forward_row<kPower>(window.data(), hi - lo + 1, a[c], out, n, prm);
      // Element q of this row is channel c at position q of the tile.
      lrn::repair_row(out, n, [&](int64_t q, double& value) {
        return lrn_output_wide_range(
            c, prm.wide, [&](int64_t m) { return lrn::activation_value<kRelu>(x[m * S + q]); }, value);
      });
      finish_row(out, y + c * S, n);
    }
  }
};

template <bool kRelu, Power kPower, typename scalar_t, typename acc_t>
struct BackwardChannelsFirst : ChannelsFirstRows<kRelu, scalar_t, acc_t> {
  static constexpr int64_t kRings = 4;  // a, sq, gp, t
  using Rows = ChannelsFirstRows<kRelu, scalar_t, acc_t>;
  using Rows::prm, Rows::C, Rows::S, Rows::a, Rows::sq, Rows::buffer, Rows::window, Rows::load;
  Ring<acc_t> gp, t;

  BackwardChannelsFirst(const Params<acc_t>& prm_, int64_t C_, int64_t S_, int64_t tile)
      : Rows(prm_, C_, S_, tile), gp(prm_.ring_slots(C_), tile, C_), t(prm_.ring_slots(C_), tile, C_) {}

  // A pipeline over the channels: the squares of channel i + after complete
  // W(i), which gives s, g*p and t of channel i; t of channel i completes
  // W'(i - before), which gives dx of channel i - before. Each ring slot is
  // reused only after the last reader of its channel.
  void operator()(const scalar_t* x, const scalar_t* g, scalar_t* dx, int64_t n) {
    x_tile = x;
    g_tile = g;
    for (int64_t c = 0; c < std::min(prm.after, C); ++c) load(x, c, n);
    for (int64_t i = 0; i < C; ++i) {
      if (i + prm.after + kPrefetchChannels < C) prefetch_row(x + (i + prm.after + kPrefetchChannels) * S, n);
      if (i + kPrefetchChannels < C) prefetch_row(g + (i + kPrefetchChannels) * S, n);
      const int64_t next_dx = i - prm.before + kPrefetchChannels;
      if (next_dx >= 0 && next_dx < C) prefetch_row</*kForWrite=*/true>(dx + next_dx * S, n);
      if (i + prm.after < C) load(x, i + prm.after, n);
      const int64_t lo = std::max<int64_t>(i - prm.before, 0);
      const int64_t hi = std::min(i + prm.after, C - 1);
      for (int64_t c = lo; c <= hi; ++c) window[c - lo] = sq[c];
      // The conversion buffer is free here: input_grad below has not started.
      const acc_t* g_row = compute_row(g + i * S, buffer.data(), n);
      gradient_terms_row<kPower>(window.data(), hi - lo + 1, a[i], g_row, gp[i], t[i], n, prm);
      if (i >= prm.before) input_grad(i - prm.before, dx, n);
    }
    for (int64_t j = std::max<int64_t>(C - prm.before, 0); j < C; ++j) input_grad(j, dx, n);
  }

  void input_grad(int64_t j, scalar_t* dx, int64_t n) {
    const int64_t lo = std::max<int64_t>(j - prm.after, 0);
    const int64_t hi = std::min(j + prm.before, C - 1);
    for (int64_t i = lo; i <= hi; ++i) window[i - lo] = t[i];
    acc_t* out = result_row(dx + j * S, buffer.data());
    input_grad_row<kRelu>(window.data(), hi - lo + 1, a[j], gp[j], out, n, prm.grad_coef);
    // Element q of this row is channel j at position q of the tile.
    lrn::repair_row(out, n, [&](int64_t q, double& value) {
      return lrn_input_grad_wide_range(
          j, prm.wide, kRelu, [&](int64_t m) { return lrn::activation_value<kRelu>(x_tile[m * S + q]); },
          [&](int64_t i) { return static_cast<double>(g_tile[i * S + q]); }, value);
    });
    finish_row(out, dx + j * S, n);
  }

  const scalar_t* x_tile = nullptr;  // the tile's x and g at channel 0, for the repair
  const scalar_t* g_tile = nullptr;
};

// ---------------------------------------------------------------------------
// Channels-last: one pixel (C contiguous channels) at a time

template <bool kRelu, Power kPower, typename scalar_t, typename acc_t>
struct ForwardChannelsLast {
  const Params<acc_t>& prm;
  int64_t C;
  PaddedRow<acc_t> sq;  // window W(c)
  std::vector<acc_t> a, buffer;

  ForwardChannelsLast(const Params<acc_t>& prm_, int64_t C_)
      : prm(prm_), C(C_), sq(C_, prm_.before, prm_.after), a(C_), buffer(C_) {}

  // x and y point at the channels of one pixel.
  void operator()(const scalar_t* x, scalar_t* y) {
    activation_row<kRelu>(compute_row(x, a.data(), C), a.data(), sq.values(), C);
    acc_t* out = result_row(y, buffer.data());
    forward_row<kPower>(sq.rows.data(), prm.window, a.data(), out, C, prm);
    // Element c of this row is channel c of one pixel.
    lrn::repair_row(out, C, [&](int64_t c, double& value) {
      return lrn_output_wide_range(
          c, prm.wide, [&](int64_t m) { return lrn::activation_value<kRelu>(x[m]); }, value);
    });
    finish_row(out, y, C);
  }
};

template <bool kRelu, Power kPower, typename scalar_t, typename acc_t>
struct BackwardChannelsLast {
  const Params<acc_t>& prm;
  int64_t C;
  PaddedRow<acc_t> sq;  // window W(c)
  PaddedRow<acc_t> t;   // mirrored window W'(j)
  std::vector<acc_t> a, gp, buffer;

  BackwardChannelsLast(const Params<acc_t>& prm_, int64_t C_)
      : prm(prm_),
        C(C_),
        sq(C_, prm_.before, prm_.after),
        t(C_, prm_.after, prm_.before),
        a(C_),
        gp(C_),
        buffer(C_) {}

  void operator()(const scalar_t* x, const scalar_t* g, scalar_t* dx) {
    activation_row<kRelu>(compute_row(x, a.data(), C), a.data(), sq.values(), C);
    const acc_t* gv = compute_row(g, buffer.data(), C);
    gradient_terms_row<kPower>(sq.rows.data(), prm.window, a.data(), gv, gp.data(), t.values(), C, prm);
    acc_t* out = result_row(dx, buffer.data());
    input_grad_row<kRelu>(t.rows.data(), prm.window, a.data(), gp.data(), out, C, prm.grad_coef);
    // Element c of this row is channel c of one pixel.
    lrn::repair_row(out, C, [&](int64_t c, double& value) {
      return lrn_input_grad_wide_range(
          c, prm.wide, kRelu, [&](int64_t m) { return lrn::activation_value<kRelu>(x[m]); },
          [&](int64_t i) { return static_cast<double>(g[i]); }, value);
    });
    finish_row(out, dx, C);
  }
};

// ---------------------------------------------------------------------------
// Drivers

// Elements per parallel_for chunk below which another thread does not pay.
constexpr int64_t kGrainElements = 32768;

int64_t grain_for(int64_t elements_per_item) {
  return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, elements_per_item));
}

// Channels-first work items: (batch, tile of `tile` positions; the last one
// of a plane may be shorter).
struct Tiling {
  int64_t tile, tiles_per_image;
  Tiling(int64_t S, int64_t tile_) : tile(tile_), tiles_per_image((S + tile_ - 1) / tile_) {}
  int64_t offset(int64_t item, int64_t stride_batch) const {
    return (item / tiles_per_image) * stride_batch + (item % tiles_per_image) * tile;
  }
  int64_t length(int64_t item, int64_t S) const { return std::min(tile, S - (item % tiles_per_image) * tile); }
};

// Calls f(std::bool_constant<apply_relu>, std::integral_constant<Power, ...>).
template <typename F>
void dispatch_variant(bool apply_relu, double beta, const F& f) {
  auto with_power = [&](auto relu) {
    switch (classify_beta(beta)) {
      case Power::kZero:
        return f(relu, std::integral_constant<Power, Power::kZero>{});
      case Power::kThreeQuarters:
        return f(relu, std::integral_constant<Power, Power::kThreeQuarters>{});
      case Power::kHalf:
        return f(relu, std::integral_constant<Power, Power::kHalf>{});
      case Power::kOne:
        return f(relu, std::integral_constant<Power, Power::kOne>{});
      default:
        return f(relu, std::integral_constant<Power, Power::kGeneral>{});
    }
  };
  if (apply_relu) {
    with_power(std::true_type{});
  } else {
    with_power(std::false_type{});
  }
}

// Runs one pass over every (batch, position): Last on each pixel of a
// channels-last tensor, First on each tile of a channels-first one. rows are
// the pass's tensors at element 0 (inputs, then the output); both kernels take
// them moved to the pixel or tile, First also the tile's length.
template <template <bool, Power, typename, typename> class Last,
          template <bool, Power, typename, typename> class First, typename scalar_t, typename... Row>
void run_pass(CpuKernel which, const ChannelView& v, int64_t size, double alpha, double beta, double k,
              bool apply_relu, Row*... rows) {
  using acc_t = at::opmath_type<scalar_t>;
  record_cpu_variant(which, lrn::row_isa<acc_t>());
  const Params<acc_t> prm(lrn_constants(size, v.channels, alpha, beta, k));
  const int64_t C = v.channels, S = v.spatial;

  dispatch_variant(apply_relu, beta, [&](auto relu, auto power) {
    constexpr bool kRelu = decltype(relu)::value;
    constexpr Power kPower = decltype(power)::value;
    if (v.channels_last()) {
      at::parallel_for(0, v.batch * S, grain_for(C), [&](int64_t begin, int64_t end) {
        Last<kRelu, kPower, scalar_t, acc_t> kernel(prm, C);
        for (int64_t i = begin; i < end; ++i) kernel((rows + i * C)...);
      });
    } else {
      using Kernel = First<kRelu, kPower, scalar_t, acc_t>;
      const int64_t min_tiles = (4 * at::get_num_threads() + v.batch - 1) / v.batch;
      const Tiling tiling(S, lrn::tile_positions<acc_t>(S, Kernel::kRings, prm.ring_slots(C), min_tiles));
      const int64_t items = v.batch * tiling.tiles_per_image;
      at::parallel_for(0, items, grain_for(C * tiling.tile), [&](int64_t begin, int64_t end) {
        Kernel kernel(prm, C, S, tiling.tile);
        for (int64_t i = begin; i < end; ++i) {
          const int64_t offset = tiling.offset(i, v.stride_batch);
          kernel((rows + offset)..., tiling.length(i, S));
        }
      });
    }
  });
}

void check_common(const char* op, const at::Tensor& x, int64_t size) {
  TORCH_CHECK(size >= 1, op, ": size must be >= 1, got ", size);
  TORCH_CHECK(x.dim() >= 3, op, ": x must have at least 3 dims (N, C, *), got shape ", x.sizes());
  const auto dtype = x.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf || dtype == at::kBFloat16, op,
              ": x must be float32, float64, float16 or bfloat16, got ", dtype);
}

}  // namespace

at::Tensor relu_lrn_forward_cpu(const at::Tensor& x, int64_t size, double alpha, double beta, double k,
                                bool apply_relu) {
  check_common("relu_lrn_forward", x, size);
  if (x.numel() == 0) return at::empty_like(x);
  ChannelView view;
  const at::Tensor input = as_channel_view(x, view);
  at::Tensor output = empty_output_like(input);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "relu_lrn_forward_cpu", [&] {
    run_pass<ForwardChannelsLast, ForwardChannelsFirst, scalar_t>(
        CpuKernel::kReluLrnForward, view, size, alpha, beta, k, apply_relu, input.const_data_ptr<scalar_t>(),
        output.mutable_data_ptr<scalar_t>());
  });
  return output;
}

at::Tensor relu_lrn_backward_cpu(const at::Tensor& grad_out, const at::Tensor& x, int64_t size, double alpha,
                                 double beta, double k, bool apply_relu) {
  check_common("relu_lrn_backward", x, size);
  TORCH_CHECK(grad_out.sizes() == x.sizes(), "relu_lrn_backward: grad_out shape ", grad_out.sizes(),
              " must equal x shape ", x.sizes());
  TORCH_CHECK(grad_out.scalar_type() == x.scalar_type(), "relu_lrn_backward: grad_out dtype ",
              grad_out.scalar_type(), " must equal x dtype ", x.scalar_type());
  if (x.numel() == 0) return at::empty_like(x);
  ChannelView view;
  const at::Tensor input = as_channel_view(x, view);
  const at::Tensor grad = same_layout_as(grad_out, input);
  at::Tensor grad_input = empty_output_like(input);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "relu_lrn_backward_cpu", [&] {
    run_pass<BackwardChannelsLast, BackwardChannelsFirst, scalar_t>(
        CpuKernel::kReluLrnBackward, view, size, alpha, beta, k, apply_relu, input.const_data_ptr<scalar_t>(),
        grad.const_data_ptr<scalar_t>(), grad_input.mutable_data_ptr<scalar_t>());
  });
  return grad_input;
}

TORCH_LIBRARY_IMPL(alexnet_fast, CPU, m) {
  m.impl("relu_lrn_forward", TORCH_FN(relu_lrn_forward_cpu));
  m.impl("relu_lrn_backward", TORCH_FN(relu_lrn_backward_cpu));
}

}  // namespace alexnet_fast
