// The one registration point of the C++ operators: every schema of the
// `alexnet_fast` namespace is declared here, and the kernels register their
// implementations for the CPU and CUDA dispatch keys next to their code
// (csrc/cpu/*_kernel.cpp, csrc/cuda/*_kernel.cu). Fake (meta) kernels and
// autograd are registered from Python (alexnet_fast/ops/*.py).
#include <Python.h>
#include <torch/library.h>

#include "cpu/output_allocator.h"

extern "C" {
// Importing `alexnet_fast._C` loads this library, which runs the static
// registrations below; the module itself is empty.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(alexnet_fast, m) {
  // b = a / (k + alpha/size * sum_{window} a^2)^beta with a = relu(x) when
  // apply_relu, else a = x. Backward recomputes the window sums from x.
  m.def(
      "relu_lrn_forward(Tensor x, int size, float alpha, float beta, float k, "
      "bool apply_relu) -> Tensor");
  m.def(
      "relu_lrn_backward(Tensor grad_out, Tensor x, int size, float alpha, "
      "float beta, float k, bool apply_relu) -> Tensor");
  // Returns (out, argmax): argmax holds the position of each window's maximum
  // inside the window (kh * kernel_w + kw), uint8 when the window has at most
  // 256 elements and int32 otherwise; with flat_indices, PyTorch's int64
  // index ih * W + iw of the maximum in its plane instead (return_indices).
  // It is empty when need_argmax is false.
  m.def(
      "max_pool2d_forward(Tensor x, int[2] kernel_size, int[2] stride, "
      "int[2] padding, int[2] dilation, bool ceil_mode, bool need_argmax, "
      "bool flat_indices=False) -> (Tensor, Tensor)");
  // A gather: every input element sums the gradients of the windows whose
  // argmax (either encoding, told apart by its dtype) points at it.
  // input_height/input_width give the input plane.
  m.def(
      "max_pool2d_backward(Tensor grad_out, Tensor argmax, int input_height, "
      "int input_width, int[2] kernel_size, int[2] stride, int[2] padding, "
      "int[2] dilation) -> Tensor");
  // AlexNet's ReLU -> LRN -> max-pool block in one pass: reads x once and
  // writes only the pooled output (and its argmax, as max_pool2d_forward;
  // dilation is 1). Backward routes grad_out through argmax and applies the
  // LRN backward, recomputing the window sums from x.
  m.def(
      "relu_lrn_max_pool2d_forward(Tensor x, int size, float alpha, "
      "float beta, float k, int[2] kernel_size, int[2] stride, int[2] padding, "
      "bool ceil_mode, bool need_argmax) -> (Tensor, Tensor)");
  m.def(
      "relu_lrn_max_pool2d_backward(Tensor grad_out, Tensor x, Tensor argmax, "
      "int size, float alpha, float beta, float k, int[2] kernel_size, "
      "int[2] stride, int[2] padding) -> Tensor");
  // Frees the idle blocks that the CPU kernels keep for their large outputs
  // (cpu/output_allocator.h); returns the bytes freed. No tensor arguments:
  // one kernel for every dispatch key.
  m.def("release_cached_memory() -> int", &alexnet_fast::release_cached_memory);
}
