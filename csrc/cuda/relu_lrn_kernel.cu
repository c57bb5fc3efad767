// alexnet_fast::relu_lrn_forward / _backward on CUDA tensors: the device
// guard and the current stream around relu_lrn_glue.h; the kernels and their
// launch plan are in relu_lrn_kernels.cuh.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "launch.cuh"
#include "relu_lrn_glue.h"

namespace alexnet_fast {
namespace {

at::Tensor relu_lrn_forward_cuda(const at::Tensor& x, int64_t size, double alpha, double beta, double k,
                                 bool apply_relu) {
  TORCH_CHECK(x.is_cuda(), "relu_lrn_forward: x must be a CUDA tensor, got device ", x.device());
  const c10::cuda::CUDAGuard guard(x.device());
  return relu_lrn_cuda::forward(CudaLauncher{c10::cuda::getCurrentCUDAStream().stream()}, x, size, alpha, beta, k,
                                apply_relu);
}

at::Tensor relu_lrn_backward_cuda(const at::Tensor& grad_out, const at::Tensor& x, int64_t size, double alpha,
                                  double beta, double k, bool apply_relu) {
  TORCH_CHECK(x.is_cuda(), "relu_lrn_backward: x must be a CUDA tensor, got device ", x.device());
  TORCH_CHECK(grad_out.device() == x.device(), "relu_lrn_backward: grad_out is on ", grad_out.device(),
              " but x is on ", x.device());
  const c10::cuda::CUDAGuard guard(x.device());
  return relu_lrn_cuda::backward(CudaLauncher{c10::cuda::getCurrentCUDAStream().stream()}, grad_out, x, size, alpha,
                                 beta, k, apply_relu);
}

}  // namespace
}  // namespace alexnet_fast

TORCH_LIBRARY_IMPL(alexnet_fast, CUDA, m) {
  m.impl("relu_lrn_forward", TORCH_FN(alexnet_fast::relu_lrn_forward_cuda));
  m.impl("relu_lrn_backward", TORCH_FN(alexnet_fast::relu_lrn_backward_cuda));
}
