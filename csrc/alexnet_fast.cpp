// The one registration point of the C++ operators: every schema of the
// `alexnet_fast` namespace is declared here (the argument lists in
// op_schemas.h), and the kernels register their implementations for the CPU
// and CUDA dispatch keys next to their code (csrc/cpu/*_kernel.cpp,
// csrc/cuda/*_kernel.cu). Fake (meta) kernels and autograd are registered
// from Python (alexnet_fast/ops/*.py).
#include <Python.h>
#include <torch/library.h>

#include "cpu/cpu_isa.h"
#include "cpu/output_allocator.h"
#include "op_schemas.h"

namespace {

// _cpu_variants_used(): a debugging and testing aid, not an op. A dict with,
// for each CPU kernel (cpu_isa.h's CpuKernel), the variant it ran last
// ("base", "avx2", "avx512"; None before its first call), and "compiled"
// (the variants this build has), "supported" (the best the CPU runs) and
// "selected" (that, capped by ALEXNET_FAST_CPU_ISA).
PyObject* cpu_variants_used(PyObject*, PyObject*) {
  using namespace alexnet_fast;
  PyObject* used = PyDict_New();
  if (used == nullptr) return nullptr;
  auto set = [&](const char* key, PyObject* value) {
    const bool ok = value != nullptr && PyDict_SetItemString(used, key, value) == 0;
    Py_XDECREF(value);
    return ok;
  };
  auto name = [](const char* variant) {
    if (variant != nullptr) return PyUnicode_FromString(variant);
    Py_RETURN_NONE;
  };
  bool ok = true;
  for (int kernel = 0; kernel < static_cast<int>(CpuKernel::kCount); ++kernel)
    ok = ok && set(kCpuKernelNames[kernel], name(last_cpu_variant(static_cast<CpuKernel>(kernel))));
#if AF_MULTI_TARGET
  ok = ok && set("compiled", Py_BuildValue("[sss]", "base", "avx2", "avx512"));
#else
  ok = ok && set("compiled", Py_BuildValue("[s]", "base"));
#endif
  ok = ok && set("supported", name(cpu_isa_name(supported_cpu_isa())));
  ok = ok && set("selected", name(cpu_isa_name(cpu_isa())));
  if (!ok) {
    Py_DECREF(used);
    return nullptr;
  }
  return used;
}

PyMethodDef module_methods[] = {
    {"_cpu_variants_used", cpu_variants_used, METH_NOARGS,
     "The instruction-set variant each CPU kernel ran last, and the compiled, supported and selected ones."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

extern "C" {
// Importing `alexnet_fast._C` loads this library, which runs the static
// registrations below; the module holds only the _cpu_variants_used aid.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, module_methods};
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
