// alexnet_fast::relu_lrn_max_pool2d_forward_cuda_host / _backward_cuda_host:
// the CUDA kernels of relu_lrn_max_pool2d_kernels.cuh, compiled by the host
// compiler through cuda_shim.h and run on CPU tensors by the host launcher,
// behind the same glue as the GPU (relu_lrn_max_pool2d_glue.h).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../../pool_geometry.h"
#include "cuda_shim.h"  // after ATen, before the device code
#include "host_launch.h"
#include "../relu_lrn_max_pool2d_glue.h"

namespace alexnet_fast {
namespace {

std::tuple<at::Tensor, at::Tensor> relu_lrn_max_pool2d_forward_cuda_host(
    const at::Tensor& x, int64_t size, double alpha, double beta, double k, at::IntArrayRef kernel_size,
    at::IntArrayRef stride, at::IntArrayRef padding, bool ceil_mode, bool need_argmax) {
  TORCH_CHECK(x.is_cpu(), "relu_lrn_max_pool2d_forward_cuda_host: x must be a CPU tensor, got device ", x.device());
  return relu_lrn_max_pool2d_cuda::forward(cuda_host::HostLauncher{}, x, size, alpha, beta, k, kernel_size, stride,
                                           padding, ceil_mode, need_argmax);
}

at::Tensor relu_lrn_max_pool2d_backward_cuda_host(const at::Tensor& grad_out, const at::Tensor& x,
                                                  const at::Tensor& argmax, int64_t size, double alpha,
                                                  double beta, double k, at::IntArrayRef kernel_size,
                                                  at::IntArrayRef stride, at::IntArrayRef padding) {
  TORCH_CHECK(grad_out.is_cpu() && x.is_cpu() && argmax.is_cpu(),
              "relu_lrn_max_pool2d_backward_cuda_host: grad_out, x and argmax must be CPU tensors");
  return relu_lrn_max_pool2d_cuda::backward(cuda_host::HostLauncher{}, grad_out, x, argmax, size, alpha, beta, k,
                                            kernel_size, stride, padding);
}

}  // namespace
}  // namespace alexnet_fast

TORCH_LIBRARY_IMPL(alexnet_fast, CPU, m) {
  m.impl("relu_lrn_max_pool2d_forward_cuda_host", TORCH_FN(alexnet_fast::relu_lrn_max_pool2d_forward_cuda_host));
  m.impl("relu_lrn_max_pool2d_backward_cuda_host", TORCH_FN(alexnet_fast::relu_lrn_max_pool2d_backward_cuda_host));
}
