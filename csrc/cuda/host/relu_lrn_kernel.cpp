// alexnet_fast::relu_lrn_forward_cuda_host / _backward_cuda_host: the CUDA
// kernels of relu_lrn_kernels.cuh, compiled by the host compiler through
// cuda_shim.h and run on CPU tensors by the host launcher, behind the same
// glue as the GPU (relu_lrn_glue.h).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include "../../channel_layout.h"
#include "cuda_shim.h"  // after ATen, before the device code
#include "host_launch.h"
#include "../relu_lrn_glue.h"

namespace alexnet_fast {
namespace {

at::Tensor relu_lrn_forward_cuda_host(const at::Tensor& x, int64_t size, double alpha, double beta, double k,
                                      bool apply_relu) {
  TORCH_CHECK(x.is_cpu(), "relu_lrn_forward_cuda_host: x must be a CPU tensor, got device ", x.device());
  return relu_lrn_cuda::forward(cuda_host::HostLauncher{}, x, size, alpha, beta, k, apply_relu);
}

at::Tensor relu_lrn_backward_cuda_host(const at::Tensor& grad_out, const at::Tensor& x, int64_t size, double alpha,
                                       double beta, double k, bool apply_relu) {
  TORCH_CHECK(x.is_cpu() && grad_out.is_cpu(), "relu_lrn_backward_cuda_host: grad_out and x must be CPU tensors");
  return relu_lrn_cuda::backward(cuda_host::HostLauncher{}, grad_out, x, size, alpha, beta, k, apply_relu);
}

}  // namespace
}  // namespace alexnet_fast

TORCH_LIBRARY_IMPL(alexnet_fast, CPU, m) {
  m.impl("relu_lrn_forward_cuda_host", TORCH_FN(alexnet_fast::relu_lrn_forward_cuda_host));
  m.impl("relu_lrn_backward_cuda_host", TORCH_FN(alexnet_fast::relu_lrn_backward_cuda_host));
}
