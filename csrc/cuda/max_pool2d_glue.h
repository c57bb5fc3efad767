// The ATen side of the CUDA max-pool kernels, written once for both ways of
// running them (Launcher: CudaLauncher on CUDA tensors, max_pool2d_kernel.cu;
// cuda_host::HostLauncher on CPU tensors, host/max_pool2d_kernel.cpp): the
// argument checks (csrc/pool_geometry.h), memory formats, outputs, dtype
// dispatch, and the launch plan of max_pool2d_kernels.cuh.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <cstdint>
#include <tuple>

#include "../pool_geometry.h"
#include "max_pool2d_kernels.cuh"

namespace alexnet_fast::max_pool2d_cuda {

inline PoolShape pool_shape(const PoolWindow& w, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  return PoolShape{C, H, W, OH, OW, w.kH, w.kW, w.sH, w.sW, w.pH, w.pW, w.dH, w.dW};
}

// Calls f(TypeTag<arg_t>{}) for an argmax dtype: int64 (flat indices), int32
// or uint8 (window positions).
template <typename F>
void with_argmax_type(at::ScalarType dtype, const F& f) {
  if (dtype == at::kLong) {
    f(TypeTag<int64_t>{});
  } else if (dtype == at::kInt) {
    f(TypeTag<int32_t>{});
  } else {
    f(TypeTag<uint8_t>{});
  }
}

template <typename Launcher>
std::tuple<at::Tensor, at::Tensor> forward(const Launcher& launcher, const at::Tensor& x_in,
                                           at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                           at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                                           bool need_argmax, bool flat_indices) {
  constexpr const char* op = "max_pool2d_forward";
  TORCH_CHECK(x_in.dim() == 4, op, ": x must be 4-D (N, C, H, W), got shape ", x_in.sizes());
  TORCH_CHECK(at::isFloatingType(x_in.scalar_type()), op,
              ": x must be float32, float64, float16 or bfloat16, got ", x_in.scalar_type());
  const PoolWindow w = check_pool_window(op, kernel_size, stride, padding, dilation);
  const int64_t N = x_in.size(0), C = x_in.size(1), H = x_in.size(2), W = x_in.size(3);
  const std::pair<int64_t, int64_t> pooled = pooled_size(op, H, W, w, ceil_mode);
  const int64_t OH = pooled.first, OW = pooled.second;

  // PyTorch's format for max_pool2d; x is copied only when not dense in it.
  const at::MemoryFormat format = x_in.suggest_memory_format();
  const bool channels_last = format == at::MemoryFormat::ChannelsLast;
  const at::Tensor x = x_in.contiguous(format);
  at::Tensor out = at::empty({N, C, OH, OW}, x.options().memory_format(format));
  const at::ScalarType argmax_type = flat_indices ? at::kLong : w.position_dtype();
  at::Tensor argmax = need_argmax ? at::empty({N, C, OH, OW}, x.options().dtype(argmax_type).memory_format(format))
                                  : at::empty({0}, x.options().dtype(at::kByte));
  if (out.numel() == 0) return {out, argmax};
  launcher.prepare_output(out);
  launcher.prepare_output(argmax);

  const PoolShape g = pool_shape(w, C, H, W, OH, OW);
  const bool aligned16 = reinterpret_cast<uintptr_t>(x.const_data_ptr()) % 16 == 0;
  const PoolPlan plan = plan_max_pool2d_forward(g, x.numel(), out.numel(), channels_last, flat_indices,
                                                static_cast<int>(x.element_size()), aligned16,
                                                launcher.overrides().force_index64);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* op_ = out.mutable_data_ptr<scalar_t>();
    with_layout(channels_last, [&](auto layout) {
      constexpr bool kChannelsLast = decltype(layout)::value;
      if (!need_argmax) {
        launch_max_pool2d_forward<scalar_t, uint8_t, false, kChannelsLast>(launcher, plan, g, xp, op_, nullptr);
        return;
      }
      with_argmax_type(argmax_type, [&](auto arg) {
        using arg_t = typename decltype(arg)::type;
        launch_max_pool2d_forward<scalar_t, arg_t, true, kChannelsLast>(launcher, plan, g, xp, op_,
                                                                        argmax.mutable_data_ptr<arg_t>());
      });
    });
  });
  return {out, argmax};
}

template <typename Launcher>
at::Tensor backward(const Launcher& launcher, const at::Tensor& grad_out_in, const at::Tensor& argmax_in,
                    int64_t input_height, int64_t input_width, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                    at::IntArrayRef padding, at::IntArrayRef dilation) {
  constexpr const char* op = "max_pool2d_backward";
  TORCH_CHECK(argmax_in.dim() == 4, op, ": argmax must be 4-D (N, C, OH, OW), got shape ", argmax_in.sizes());
  TORCH_CHECK(grad_out_in.sizes() == argmax_in.sizes(), op, ": grad_out and argmax must have the same shape, got ",
              grad_out_in.sizes(), " and ", argmax_in.sizes());
  TORCH_CHECK(at::isFloatingType(grad_out_in.scalar_type()), op,
              ": grad_out must be float32, float64, float16 or bfloat16, got ", grad_out_in.scalar_type());
  const PoolWindow w = check_pool_window(op, kernel_size, stride, padding, dilation);
  const int64_t N = argmax_in.size(0), C = argmax_in.size(1), OH = argmax_in.size(2), OW = argmax_in.size(3);
  check_pooled_size(op, input_height, input_width, OH, OW, w);
  check_argmax_dtype(op, argmax_in, w);  // int64, or w's position dtype

  // argmax's format decides; grad_out is brought to it (no copy if it matches).
  const at::MemoryFormat format = argmax_in.suggest_memory_format();
  const bool channels_last = format == at::MemoryFormat::ChannelsLast;
  const at::Tensor argmax = argmax_in.contiguous(format);
  const at::Tensor grad_out = grad_out_in.contiguous(format);
  at::Tensor grad_in = at::empty({N, C, input_height, input_width}, grad_out.options().memory_format(format));
  if (grad_in.numel() == 0) return grad_in;
  launcher.prepare_output(grad_in);

  const PoolShape g = pool_shape(w, C, input_height, input_width, OH, OW);
  const bool uint8_positions = argmax.scalar_type() == at::kByte;
  const PoolPlan plan = plan_max_pool2d_backward(g, grad_in.numel(), grad_out.numel(), uint8_positions,
                                                 launcher.overrides().force_index64);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_out.scalar_type(), op, [&] {
    const scalar_t* gp = grad_out.const_data_ptr<scalar_t>();
    scalar_t* dp = grad_in.mutable_data_ptr<scalar_t>();
    with_layout(channels_last, [&](auto layout) {
      constexpr bool kChannelsLast = decltype(layout)::value;
      with_argmax_type(argmax.scalar_type(), [&](auto arg) {
        using arg_t = typename decltype(arg)::type;
        launch_max_pool2d_backward<scalar_t, arg_t, kChannelsLast>(launcher, plan, g, gp,
                                                                   argmax.const_data_ptr<arg_t>(), dp);
      });
    });
  });
  return grad_in;
}

}  // namespace alexnet_fast::max_pool2d_cuda
