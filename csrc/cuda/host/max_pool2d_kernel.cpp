// alexnet_fast::max_pool2d_forward_cuda_host / _backward_cuda_host: the CUDA
// kernels of max_pool2d_kernels.cuh, compiled by the host compiler through
// cuda_shim.h and run on CPU tensors by the host launcher, behind the same
// glue as the GPU (max_pool2d_glue.h).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "cuda_shim.h"  // after ATen, before the device code
#include "host_launch.h"
#include "../max_pool2d_glue.h"

namespace alexnet_fast {
namespace {

std::tuple<at::Tensor, at::Tensor> max_pool2d_forward_cuda_host(const at::Tensor& x, at::IntArrayRef kernel_size,
                                                                at::IntArrayRef stride, at::IntArrayRef padding,
                                                                at::IntArrayRef dilation, bool ceil_mode,
                                                                bool need_argmax, bool flat_indices) {
  TORCH_CHECK(x.is_cpu(), "max_pool2d_forward_cuda_host: x must be a CPU tensor, got device ", x.device());
  return max_pool2d_cuda::forward(cuda_host::HostLauncher{}, x, kernel_size, stride, padding, dilation, ceil_mode,
                                  need_argmax, flat_indices);
}

at::Tensor max_pool2d_backward_cuda_host(const at::Tensor& grad_out, const at::Tensor& argmax,
                                         int64_t input_height, int64_t input_width, at::IntArrayRef kernel_size,
                                         at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  TORCH_CHECK(grad_out.is_cpu() && argmax.is_cpu(),
              "max_pool2d_backward_cuda_host: grad_out and argmax must be CPU tensors");
  return max_pool2d_cuda::backward(cuda_host::HostLauncher{}, grad_out, argmax, input_height, input_width,
                                   kernel_size, stride, padding, dilation);
}

}  // namespace
}  // namespace alexnet_fast

TORCH_LIBRARY_IMPL(alexnet_fast, CPU, m) {
  m.impl("max_pool2d_forward_cuda_host", TORCH_FN(alexnet_fast::max_pool2d_forward_cuda_host));
  m.impl("max_pool2d_backward_cuda_host", TORCH_FN(alexnet_fast::max_pool2d_backward_cuda_host));
}
