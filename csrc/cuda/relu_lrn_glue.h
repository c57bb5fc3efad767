// The ATen side of the CUDA ReLU + LRN kernels, written once for both ways of
// running them (Launcher: CudaLauncher on CUDA tensors, relu_lrn_kernel.cu;
// cuda_host::HostLauncher on CPU tensors, host/relu_lrn_kernel.cpp): argument
// checks, the (N, C, S) view (csrc/channel_layout.h), outputs, dtype dispatch,
// and the launch plan of relu_lrn_kernels.cuh.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>

#include <climits>
#include <cstdint>
#include <type_traits>

#include "../channel_layout.h"
#include "../lrn_constants.h"
#include "relu_lrn_kernels.cuh"

namespace alexnet_fast::relu_lrn_cuda {

inline void check_input(const char* op, const at::Tensor& x, int64_t size) {
  TORCH_CHECK(size >= 1, op, ": size must be >= 1, got ", size);
  TORCH_CHECK(x.dim() >= 3, op, ": x must have at least 3 dims (N, C, *), got shape ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": x must be float32, float64, float16 or bfloat16, got ",
              x.scalar_type());
}

// Channel indices (and c + window reach, <= 3C) are int in the kernels, and a
// direct launch has one thread per element.
inline ChannelShape checked_shape(const char* op, const ChannelView& v) {
  TORCH_CHECK(v.channels <= INT_MAX / 4, op, ": too many channels (", v.channels, "), at most ", INT_MAX / 4);
  const int64_t numel = v.batch * v.channels * v.spatial;
  TORCH_CHECK(ceil_div(numel, kThreads) <= INT_MAX, op, ": tensor too large (", numel, " elements)");
  return ChannelShape{v.batch, v.channels, v.spatial, v.stride_channel};
}

// The op names (errors, dtype dispatch).
inline constexpr char kForwardOp[] = "relu_lrn_forward";
inline constexpr char kBackwardOp[] = "relu_lrn_backward";

// forward's and backward's common part, given xv (x as a channel view): the
// result allocated like xv (same strides) and, when it is not empty, the shape
// check, the plan and, in xv's dtype, launch(plan, shape, result's data, p)
// with p the kernels' LRN parameters.
template <const char* kOp, typename Launcher, typename Launch>
at::Tensor launch_planned(const Launcher& launcher, const at::Tensor& xv, const ChannelView& view, int64_t size,
                          double alpha, double beta, double k, bool apply_relu, const Launch& launch) {
  at::Tensor result = at::empty_like(xv);
  if (result.numel() == 0) return result;
  const ChannelShape shape = checked_shape(kOp, view);
  launcher.prepare_output(result);
  const LrnPlan plan = plan_relu_lrn(shape, size, launcher.overrides());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, xv.scalar_type(), kOp, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto p = make_lrn_params<acc_t>(lrn_constants(size, view.channels, alpha, beta, k), apply_relu);
    launch(plan, shape, result.mutable_data_ptr<scalar_t>(), p);
  });
  return result;
}

template <typename Launcher>
at::Tensor forward(const Launcher& launcher, const at::Tensor& x, int64_t size, double alpha, double beta,
                   double k, bool apply_relu) {
  check_input(kForwardOp, x, size);
  ChannelView view;
  const at::Tensor xv = as_channel_view(x, view);  // x, or a contiguous copy
  return launch_planned<kForwardOp>(launcher, xv, view, size, alpha, beta, k, apply_relu,
                                    [&](const LrnPlan& plan, const ChannelShape& shape, auto* out, const auto& p) {
                                      using scalar_t = std::remove_pointer_t<decltype(out)>;
                                      launch_relu_lrn_forward(launcher, plan, shape, xv.const_data_ptr<scalar_t>(),
                                                              out, p);
                                    });
}

template <typename Launcher>
at::Tensor backward(const Launcher& launcher, const at::Tensor& grad_out, const at::Tensor& x, int64_t size,
                    double alpha, double beta, double k, bool apply_relu) {
  constexpr const char* op = kBackwardOp;
  check_input(op, x, size);
  TORCH_CHECK(grad_out.sizes() == x.sizes(), op, ": grad_out shape ", grad_out.sizes(), " must equal x shape ",
              x.sizes());
  TORCH_CHECK(grad_out.scalar_type() == x.scalar_type(), op, ": grad_out dtype ", grad_out.scalar_type(),
              " must equal x dtype ", x.scalar_type());
  ChannelView view;
  const at::Tensor xv = as_channel_view(x, view);
  const at::Tensor gv = same_layout_as(grad_out, xv);  // any incoming layout -> xv's
  return launch_planned<kBackwardOp>(launcher, xv, view, size, alpha, beta, k, apply_relu,
                                     [&](const LrnPlan& plan, const ChannelShape& shape, auto* grad_in,
                                         const auto& p) {
                                       using scalar_t = std::remove_pointer_t<decltype(grad_in)>;
                                       launch_relu_lrn_backward(launcher, plan, shape, gv.const_data_ptr<scalar_t>(),
                                                                xv.const_data_ptr<scalar_t>(), grad_in, p);
                                     });
}

}  // namespace alexnet_fast::relu_lrn_cuda
