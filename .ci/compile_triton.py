"""Compiles every Triton kernel of kernels/ for a GPU (sm_80 and sm_90) on a machine without one.

The test suite runs the Triton kernels in the interpreter, which accepts code that the
compiler rejects (and the reverse). This runs each host wrapper on CPU tensors with a
`launch` that records the kernel's arguments instead of launching it, then builds a cubin
with triton.compile (ptxas ships with Triton), so that a kernel that does not compile for
the GPU fails CI. Cases: NCHW and channels_last, float32 and bfloat16 (float64 for LRN);
in float32 also beta 0 and general, window size 3, and int64 indices.

Every launch must set enable_fp_fusion itself, so that the kernels' rounding does not
follow Triton's default (which changes in Triton 3.10, and which Triton 3.9 warns about
when unset): this checks that every launch passes it, that no compile raises such a
warning, and that the first launch of each kernel gives the same PTX with the default on
and off.

    python .ci/compile_triton.py
"""
import os
import sys
import time
import warnings

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
            # The variants (beta 0 and general, window 3, int64 indices) in float32 only:
            # they change the kernels' code paths, not their dtype handling.
            variants = dtype == torch.float32
            for size, beta in ((5, 0.75), (3, 0.0), (5, 1.3)) if variants else ((5, 0.75),):
                relu_lrn.relu_lrn_forward(x, size, 1e-4, beta, 2.0, True, launch=Recorder)
                relu_lrn.relu_lrn_backward(x, x, size, 1e-4, beta, 2.0, True, launch=Recorder)
            if dtype == torch.float64:
                continue
            for flat in (False, True) if variants else (False,):
                y, am = max_pool2d.max_pool2d_forward(x, [3, 3], [2, 2], [1, 1], [1, 1], False, True, flat,
                                                      launch=Recorder)
                max_pool2d.max_pool2d_backward(y, am.to(torch.int64 if flat else torch.uint8), 13, 13, [3, 3],
                                               [2, 2], [1, 1], [1, 1], launch=Recorder)
            y, am = relu_lrn_max_pool2d.relu_lrn_max_pool2d_forward(
                x, 5, 1e-4, 0.75, 2.0, [3, 3], [2, 2], [0, 0], False, True, launch=Recorder)
            relu_lrn_max_pool2d.relu_lrn_max_pool2d_backward(
                y, x, am, 5, 1e-4, 0.75, 2.0, [3, 3], [2, 2], [0, 0], launch=Recorder)
    return Recorder.calls


# Keyword arguments of a launch that are compile options, not kernel parameters.
OPTIONS = ("num_warps", "enable_fp_fusion")


def compile_for(kernel, args, kwargs, target, default_fp_fusion):
    """The compiled kernel with Triton's FP-fusion default set one way or the other;
    fails on any warning about that default."""
    os.environ["TRITON_DEFAULT_FP_FUSION"] = "1" if default_fp_fusion else "0"
    # The second build, with the default flipped, is compiled afresh, not read from the cache.
    os.environ["TRITON_ALWAYS_COMPILE"] = "0" if default_fp_fusion else "1"
    options = {name: kwargs[name] for name in OPTIONS if name in kwargs}
    params = {name: value for name, value in kwargs.items() if name not in OPTIONS}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = triton.compile(source_for(kernel, args, params), target=target, options=options)
    fusion_warnings = [w for w in caught if "FP_FUSION" in str(w.message)]
    assert not fusion_warnings, f"{kernel.__name__}: {fusion_warnings[0].message}"
    return compiled


def ptx_code(ptx: str) -> list[str]:
    """The PTX's code: without the debug information, which names the source file's path
    (Triton's cache key does not, so a kernel cached from another checkout differs there)."""
    code = ptx.split("\t.section\t.debug", 1)[0]
    return [line for line in code.splitlines() if not line.lstrip().startswith((".file", ".loc", "//"))]


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
    for kernel, _, kwargs in calls:
        assert "enable_fp_fusion" in kwargs, f"{kernel.__name__}: the launch leaves enable_fp_fusion to the default"
    for capability in (80, 90):
        target = GPUTarget("cuda", capability, 32)
        checked = set()
        for kernel, args, kwargs in calls:
            compiled = compile_for(kernel, args, kwargs, target, default_fp_fusion=True)
            assert compiled.asm["cubin"], kernel.__name__
            if capability == 90 and kernel.__name__ not in checked:  # the default must not change an instruction
                checked.add(kernel.__name__)
                other = compile_for(kernel, args, kwargs, target, default_fp_fusion=False)
                assert ptx_code(other.asm["ptx"]) == ptx_code(compiled.asm["ptx"]), (
                    f"{kernel.__name__}: PTX follows the FP-fusion default")
    names = sorted({kernel.__name__ for kernel, _, _ in calls})
    print(f"compile_triton: {len(calls)} launches x sm_80, sm_90 ok ({time.perf_counter() - start:.0f} s): "
          + ", ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
