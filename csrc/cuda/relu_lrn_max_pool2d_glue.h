// The ATen side of the CUDA fused ReLU + LRN + max-pool kernels, written once
// for both ways of running them (Launcher: CudaLauncher on CUDA tensors,
// relu_lrn_max_pool2d_kernel.cu; cuda_host::HostLauncher on CPU tensors,
// host/relu_lrn_max_pool2d_kernel.cpp): argument checks (csrc/pool_geometry.h),
// memory formats, outputs, dtype dispatch, and the launch plan of
// relu_lrn_max_pool2d_kernels.cuh.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <climits>
#include <cstdint>
#include <tuple>

#include "../lrn_constants.h"
#include "../pool_geometry.h"
#include "relu_lrn_max_pool2d_kernels.cuh"

namespace alexnet_fast::relu_lrn_max_pool2d_cuda {

inline void check_input(const char* op, const at::Tensor& x, int64_t size) {
  TORCH_CHECK(x.dim() == 4, op, ": x must be 4-D (N, C, H, W), got shape ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": x must be float32, float64, float16 or bfloat16, got ",
              x.scalar_type());
  TORCH_CHECK(size >= 1, op, ": size must be >= 1, got ", size);
  // Channel indices (and c + window reach, <= 3C) are int in the kernels.
  TORCH_CHECK(x.size(1) <= INT_MAX / 4, op, ": too many channels (", x.size(1), "), at most ", INT_MAX / 4);
}

inline FusedPoolShape fused_pool_shape(const at::Tensor& x, const PoolWindow& w, int64_t OH, int64_t OW) {
  return FusedPoolShape{x.size(0), x.size(1), x.size(2), x.size(3), OH, OW, w.kH, w.kW, w.sH, w.sW, w.pH, w.pW};
}

template <typename Launcher>
std::tuple<at::Tensor, at::Tensor> forward(const Launcher& launcher, const at::Tensor& x_in, int64_t size,
                                           double alpha, double beta, double k, at::IntArrayRef kernel_size,
                                           at::IntArrayRef stride, at::IntArrayRef padding, bool ceil_mode,
                                           bool need_argmax) {
  constexpr const char* op = "relu_lrn_max_pool2d_forward";
  check_input(op, x_in, size);
  const PoolWindow w = check_pool_window(op, kernel_size, stride, padding);
  const std::pair<int64_t, int64_t> pooled = pooled_size(op, x_in.size(2), x_in.size(3), w, ceil_mode);
  const int64_t N = x_in.size(0), C = x_in.size(1), OH = pooled.first, OW = pooled.second;

  const at::MemoryFormat format = x_in.suggest_memory_format();
  const bool channels_last = format == at::MemoryFormat::ChannelsLast;
  const at::Tensor x = x_in.contiguous(format);
  at::Tensor out = at::empty({N, C, OH, OW}, x.options().memory_format(format));
  at::Tensor argmax = need_argmax
                          ? at::empty({N, C, OH, OW}, x.options().dtype(w.position_dtype()).memory_format(format))
                          : at::empty({0}, x.options().dtype(at::kByte));
  if (out.numel() == 0) return {out, argmax};
  launcher.prepare_output(out);
  launcher.prepare_output(argmax);

  const FusedPoolShape s = fused_pool_shape(x, w, OH, OW);
  const FusedPlan plan = plan_relu_lrn_max_pool2d(s, size, out.numel(), launcher.overrides());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto p = make_lrn_params<acc_t>(lrn_constants(size, C, alpha, beta, k), /*apply_relu=*/true);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* op_ = out.mutable_data_ptr<scalar_t>();
    with_layout(channels_last, [&](auto layout) {
      constexpr bool kChannelsLast = decltype(layout)::value;
      if (!need_argmax) {
        launch_relu_lrn_max_pool2d_forward<scalar_t, uint8_t, false, kChannelsLast>(launcher, plan, s, xp, op_,
                                                                                     nullptr, p);
      } else if (w.position_dtype() == at::kInt) {
        launch_relu_lrn_max_pool2d_forward<scalar_t, int32_t, true, kChannelsLast>(
            launcher, plan, s, xp, op_, argmax.mutable_data_ptr<int32_t>(), p);
      } else {
        launch_relu_lrn_max_pool2d_forward<scalar_t, uint8_t, true, kChannelsLast>(
            launcher, plan, s, xp, op_, argmax.mutable_data_ptr<uint8_t>(), p);
      }
    });
  });
  return {out, argmax};
}

template <typename Launcher>
at::Tensor backward(const Launcher& launcher, const at::Tensor& grad_out_in, const at::Tensor& x_in,
                    const at::Tensor& argmax_in, int64_t size, double alpha, double beta, double k,
                    at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding) {
  constexpr const char* op = "relu_lrn_max_pool2d_backward";
  check_input(op, x_in, size);
  TORCH_CHECK(grad_out_in.scalar_type() == x_in.scalar_type(), op, ": grad_out dtype ", grad_out_in.scalar_type(),
              " must equal x dtype ", x_in.scalar_type());
  TORCH_CHECK(grad_out_in.dim() == 4 && argmax_in.sizes() == grad_out_in.sizes(), op,
              ": grad_out and argmax must be 4-D (N, C, OH, OW) of the same shape, got ", grad_out_in.sizes(),
              " and ", argmax_in.sizes());
  TORCH_CHECK(grad_out_in.size(0) == x_in.size(0) && grad_out_in.size(1) == x_in.size(1), op, ": grad_out shape ",
              grad_out_in.sizes(), " does not match x shape ", x_in.sizes(), " in (N, C)");
  const PoolWindow w = check_pool_window(op, kernel_size, stride, padding);
  const int64_t OH = grad_out_in.size(2), OW = grad_out_in.size(3);
  check_pooled_size(op, x_in.size(2), x_in.size(3), OH, OW, w);
  TORCH_CHECK(argmax_in.scalar_type() == w.position_dtype(), op, ": argmax must be ", w.position_dtype(),
              " for kernel_size=", kernel_size, ", got ", argmax_in.scalar_type());

  // dx takes x's format (the one the forward used for out / argmax); argmax
  // and grad_out are brought to it (no copy when they already match).
  const at::MemoryFormat format = x_in.suggest_memory_format();
  const bool channels_last = format == at::MemoryFormat::ChannelsLast;
  const at::Tensor x = x_in.contiguous(format);
  const at::Tensor argmax = argmax_in.contiguous(format);
  const at::Tensor grad_out = grad_out_in.contiguous(format);
  at::Tensor dx = at::empty(x.sizes(), x.options().memory_format(format));
  if (dx.numel() == 0) return dx;
  launcher.prepare_output(dx);

  const FusedPoolShape s = fused_pool_shape(x, w, OH, OW);
  const FusedPlan plan = plan_relu_lrn_max_pool2d(s, size, x.numel(), launcher.overrides());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto p = make_lrn_params<acc_t>(lrn_constants(size, s.C, alpha, beta, k), /*apply_relu=*/true);
    const scalar_t* gp = grad_out.const_data_ptr<scalar_t>();
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* dp = dx.mutable_data_ptr<scalar_t>();
    with_layout(channels_last, [&](auto layout) {
      constexpr bool kChannelsLast = decltype(layout)::value;
      if (w.position_dtype() == at::kInt) {
        launch_relu_lrn_max_pool2d_backward<scalar_t, int32_t, kChannelsLast>(
            launcher, plan, s, gp, xp, argmax.const_data_ptr<int32_t>(), dp, p);
      } else {
        launch_relu_lrn_max_pool2d_backward<scalar_t, uint8_t, kChannelsLast>(
            launcher, plan, s, gp, xp, argmax.const_data_ptr<uint8_t>(), dp, p);
      }
    });
  });
  return dx;
}

}  // namespace alexnet_fast::relu_lrn_max_pool2d_cuda
