"""The torch.library operators of alexnet_fast and their public functions.

C++ operators (schemas in csrc/alexnet_fast.cpp, CPU and CUDA kernels in
csrc/cpu and csrc/cuda) get their fake kernels and autograd here. Triton
operators are defined here: a ``triton_op`` for CUDA tensors, so that
torch.compile sees into the kernels, and an opaque ``custom_op`` for CPU
tensors under Triton's interpreter, so that fake-tensor tracing never runs
the interpreter.
"""
