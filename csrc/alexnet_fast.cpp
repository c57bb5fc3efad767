// The one registration point of the C++ operators: every schema of the
// `alexnet_fast` namespace is declared here (the argument lists in
// op_schemas.h), and the kernels register their implementations for the CPU
// and CUDA dispatch keys next to their code (csrc/cpu/*_kernel.cpp,
// csrc/cuda/*_kernel.cu). Fake (meta) kernels and autograd are registered
// from Python (alexnet_fast/ops/*.py).
#include <Python.h>
#include <torch/library.h>

#include "cpu/output_allocator.h"
#include "op_schemas.h"

extern "C" {
// Importing `alexnet_fast._C` loads this library, which runs the static
// registrations below; the module itself is empty.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(alexnet_fast, m) {
  using namespace alexnet_fast::schemas;
  // b = a / (k + alpha/size * sum_{window} a^2)^beta with a = relu(x) when
  // apply_relu, else a = x. Backward recomputes the window sums from x.
  m.def(named("relu_lrn_forward", kReluLrnForward).c_str());
  m.def(named("relu_lrn_backward", kReluLrnBackward).c_str());
  // Returns (out, argmax): argmax holds the position of each window's maximum
  // inside the window (kh * kernel_w + kw), uint8 when the window has at most
  // 256 elements and int32 otherwise; with flat_indices, PyTorch's int64
  // index ih * W + iw of the maximum in its plane instead (return_indices).
  // It is empty when need_argmax is false.
  m.def(named("max_pool2d_forward", kMaxPool2dForward).c_str());
  // A gather: every input element sums the gradients of the windows whose
  // argmax (either encoding, told apart by its dtype) points at it.
  // input_height/input_width give the input plane.
  m.def(named("max_pool2d_backward", kMaxPool2dBackward).c_str());
  // AlexNet's ReLU -> LRN -> max-pool block in one pass: reads x once and
  // writes only the pooled output (and its argmax, as max_pool2d_forward;
  // dilation is 1). Backward routes grad_out through argmax and applies the
  // LRN backward, recomputing the window sums from x.
  m.def(named("relu_lrn_max_pool2d_forward", kReluLrnMaxPool2dForward).c_str());
  m.def(named("relu_lrn_max_pool2d_backward", kReluLrnMaxPool2dBackward).c_str());
  // Frees the idle blocks that the CPU kernels keep for their large outputs
  // (cpu/output_allocator.h); returns the bytes freed. No tensor arguments:
  // one kernel for every dispatch key.
  m.def("release_cached_memory() -> int", &alexnet_fast::release_cached_memory);
}
