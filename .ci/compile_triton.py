"""Compiles every Triton kernel of kernels/ for a GPU (sm_80 and sm_90) on a machine without one.

The test suite runs the Triton kernels in the interpreter, which accepts code that the
compiler rejects (and the reverse). This runs each host wrapper on CPU tensors with a
`launch` that records the kernel's arguments instead of launching it, then builds a cubin
with triton.compile (ptxas ships with Triton), so that a kernel that does not compile for
the GPU fails CI. Cases: NCHW and channels_last, float32 and bfloat16 (float64 for LRN).

    python .ci/compile_triton.py
"""
import os
import sys
import time

os.environ.pop("TRITON_INTERPRET", None)  # compile for real
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from kernels import max_pool2d, relu_lrn, relu_lrn_max_pool2d  # noqa: E402

POINTER_TYPES = {
    torch.float32: "*fp32", torch.float64: "*fp64", torch.float16: "*fp16", torch.bfloat16: "*bf16",
    torch.uint8: "*u8", torch.int32: "*i32", torch.int64: "*i64",
}


class Recorder:
    """Stands in for `kernel[grid]`: records (kernel, args, kwargs)."""

    calls = []

    def __init__(self, kernel):
        self.kernel = kernel

    def __getitem__(self, grid):
        return lambda *args, **kwargs: Recorder.calls.append((self.kernel, args, kwargs))


def record_launches():
    for channels_last in (False, True):
        for dtype in (torch.float32, torch.bfloat16, torch.float64):
            x = torch.randn(2, 8, 13, 13).to(dtype)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            relu_lrn.relu_lrn_forward(x, 5, 1e-4, 0.75, 2.0, True, launch=Recorder)
            relu_lrn.relu_lrn_backward(x, x, 5, 1e-4, 0.75, 2.0, True, launch=Recorder)
            if dtype == torch.float64:
                continue
            y, am = max_pool2d.max_pool2d_forward(x, [3, 3], [2, 2], [0, 0], [1, 1], False, True, launch=Recorder)
            max_pool2d.max_pool2d_backward(y, am, 13, 13, [3, 3], [2, 2], [1, 1], [1, 1], launch=Recorder)
            y, am = relu_lrn_max_pool2d.relu_lrn_max_pool2d_forward(
                x, 5, 1e-4, 0.75, 2.0, [3, 3], [2, 2], [0, 0], False, True, launch=Recorder)
            relu_lrn_max_pool2d.relu_lrn_max_pool2d_backward(
                y, x, am, 5, 1e-4, 0.75, 2.0, [3, 3], [2, 2], [0, 0], launch=Recorder)
    return Recorder.calls


def source_for(kernel, args, kwargs):
    values = dict(zip(kernel.arg_names, args))
    values.update(kwargs)
    signature, constants = {}, {}
    for param in kernel.params:
        value = values[param.name]
        if param.is_constexpr:
            signature[param.name] = "constexpr"
            constants[param.name] = value
        elif isinstance(value, torch.Tensor):
            signature[param.name] = POINTER_TYPES[value.dtype]
        elif isinstance(value, bool):
            signature[param.name] = "i1"
        elif isinstance(value, int):
            signature[param.name] = "i32" if -(2**31) <= value < 2**31 else "i64"
        elif isinstance(value, float):
            signature[param.name] = "fp32"
        else:
            raise TypeError(f"{kernel.__name__}: argument {param.name} of type {type(value).__name__}")
    return ASTSource(kernel, signature, constants)


def main() -> int:
    calls = record_launches()
    start = time.perf_counter()
    for capability in (80, 90):
        target = GPUTarget("cuda", capability, 32)
        for kernel, args, kwargs in calls:
            compiled = triton.compile(source_for(kernel, args, kwargs), target=target)
            assert compiled.asm["cubin"], kernel.__name__
    names = sorted({kernel.__name__ for kernel, _, _ in calls})
    print(f"compile_triton: {len(calls)} launches x sm_80, sm_90 ok ({time.perf_counter() - start:.0f} s): "
          + ", ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
