// alexnet_fast::relu_lrn_max_pool2d_forward / _backward on CUDA tensors: the
// device guard and the current stream around relu_lrn_max_pool2d_glue.h; the
// kernels and their launch plan are in relu_lrn_max_pool2d_kernels.cuh.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "launch.cuh"
#include "relu_lrn_max_pool2d_glue.h"

namespace alexnet_fast {
namespace {

std::tuple<at::Tensor, at::Tensor> relu_lrn_max_pool2d_forward_cuda(const at::Tensor& x, int64_t size,
                                                                    double alpha, double beta, double k,
                                                                    at::IntArrayRef kernel_size,
                                                                    at::IntArrayRef stride,
                                                                    at::IntArrayRef padding, bool ceil_mode,
                                                                    bool need_argmax) {
  TORCH_CHECK(x.is_cuda(), "relu_lrn_max_pool2d_forward: x must be a CUDA tensor, got device ", x.device());
  const c10::cuda::CUDAGuard guard(x.device());
  return relu_lrn_max_pool2d_cuda::forward(CudaLauncher{c10::cuda::getCurrentCUDAStream().stream()}, x, size,
                                           alpha, beta, k, kernel_size, stride, padding, ceil_mode, need_argmax);
}

at::Tensor relu_lrn_max_pool2d_backward_cuda(const at::Tensor& grad_out, const at::Tensor& x,
                                             const at::Tensor& argmax, int64_t size, double alpha, double beta,
                                             double k, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                             at::IntArrayRef padding) {
  TORCH_CHECK(x.is_cuda(), "relu_lrn_max_pool2d_backward: x must be a CUDA tensor, got device ", x.device());
  TORCH_CHECK(grad_out.device() == x.device() && argmax.device() == x.device(),
              "relu_lrn_max_pool2d_backward: grad_out, x and argmax must be on one device, got ", grad_out.device(),
              ", ", x.device(), ", ", argmax.device());
  const c10::cuda::CUDAGuard guard(x.device());
  return relu_lrn_max_pool2d_cuda::backward(CudaLauncher{c10::cuda::getCurrentCUDAStream().stream()}, grad_out, x,
                                            argmax, size, alpha, beta, k, kernel_size, stride, padding);
}

}  // namespace
}  // namespace alexnet_fast

TORCH_LIBRARY_IMPL(alexnet_fast, CUDA, m) {
  m.impl("relu_lrn_max_pool2d_forward", TORCH_FN(alexnet_fast::relu_lrn_max_pool2d_forward_cuda));
  m.impl("relu_lrn_max_pool2d_backward", TORCH_FN(alexnet_fast::relu_lrn_max_pool2d_backward_cuda));
}
