// alexnet_fast::max_pool2d_forward / _backward on CUDA tensors: the device
// guard and the current stream around max_pool2d_glue.h; the kernels and
// their launch plans are in max_pool2d_kernels.cuh.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "launch.cuh"
#include "max_pool2d_glue.h"

namespace alexnet_fast {
namespace {

std::tuple<at::Tensor, at::Tensor> max_pool2d_forward_cuda(const at::Tensor& x, at::IntArrayRef kernel_size,
                                                           at::IntArrayRef stride, at::IntArrayRef padding,
                                                           at::IntArrayRef dilation, bool ceil_mode,
                                                           bool need_argmax, bool flat_indices) {
  TORCH_CHECK(x.is_cuda(), "max_pool2d_forward: x must be a CUDA tensor, got device ", x.device());
  const c10::cuda::CUDAGuard guard(x.device());
  return max_pool2d_cuda::forward(CudaLauncher{c10::cuda::getCurrentCUDAStream().stream()}, x, kernel_size,
                                  stride, padding, dilation, ceil_mode, need_argmax, flat_indices);
}

at::Tensor max_pool2d_backward_cuda(const at::Tensor& grad_out, const at::Tensor& argmax, int64_t input_height,
                                    int64_t input_width, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                    at::IntArrayRef padding, at::IntArrayRef dilation) {
  TORCH_CHECK(grad_out.is_cuda(), "max_pool2d_backward: grad_out must be a CUDA tensor, got device ",
              grad_out.device());
  TORCH_CHECK(argmax.device() == grad_out.device(), "max_pool2d_backward: argmax is on ", argmax.device(),
              " but grad_out is on ", grad_out.device());
  const c10::cuda::CUDAGuard guard(grad_out.device());
  return max_pool2d_cuda::backward(CudaLauncher{c10::cuda::getCurrentCUDAStream().stream()}, grad_out, argmax,
                                   input_height, input_width, kernel_size, stride, padding, dilation);
}

}  // namespace
}  // namespace alexnet_fast

TORCH_LIBRARY_IMPL(alexnet_fast, CUDA, m) {
  m.impl("max_pool2d_forward", TORCH_FN(alexnet_fast::max_pool2d_forward_cuda));
  m.impl("max_pool2d_backward", TORCH_FN(alexnet_fast::max_pool2d_backward_cuda));
}
