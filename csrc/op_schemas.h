// The argument lists of the alexnet_fast operators, shared by the one place
// that defines the ops (alexnet_fast.cpp) and the host execution of the CUDA
// kernels, whose ops (<name>_cuda_host, alexnet_fast._cuda_host) take exactly
// the same arguments. The meaning of each argument is documented there.
#pragma once

#include <string>

namespace alexnet_fast::schemas {

constexpr const char* kReluLrnForward =
    "(Tensor x, int size, float alpha, float beta, float k, bool apply_relu) -> Tensor";
constexpr const char* kReluLrnBackward =
    "(Tensor grad_out, Tensor x, int size, float alpha, float beta, float k, bool apply_relu) -> Tensor";
constexpr const char* kMaxPool2dForward =
    "(Tensor x, int[2] kernel_size, int[2] stride, int[2] padding, int[2] dilation, bool ceil_mode, "
    "bool need_argmax, bool flat_indices=False) -> (Tensor, Tensor)";
constexpr const char* kMaxPool2dBackward =
    "(Tensor grad_out, Tensor argmax, int input_height, int input_width, int[2] kernel_size, int[2] stride, "
    "int[2] padding, int[2] dilation) -> Tensor";
constexpr const char* kReluLrnMaxPool2dForward =
    "(Tensor x, int size, float alpha, float beta, float k, int[2] kernel_size, int[2] stride, int[2] padding, "
    "bool ceil_mode, bool need_argmax) -> (Tensor, Tensor)";
constexpr const char* kReluLrnMaxPool2dBackward =
    "(Tensor grad_out, Tensor x, Tensor argmax, int size, float alpha, float beta, float k, int[2] kernel_size, "
    "int[2] stride, int[2] padding) -> Tensor";

inline std::string named(const char* name, const char* arguments) { return std::string(name) + arguments; }

}  // namespace alexnet_fast::schemas
