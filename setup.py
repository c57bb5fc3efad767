"""Builds alexnet_fast._C, the C++ (and, with a CUDA toolkit, CUDA) operators.

    pip install --no-build-isolation -e .

--no-build-isolation builds against the torch already installed: an isolated
build would download a torch (several GB of CUDA packages on a CPU machine).

Environment:
  FORCE_CUDA=1          build the CUDA kernels even without a visible GPU
                        (needs nvcc and a CUDA build of torch)
  FORCE_CUDA=0          never build them
  TORCH_CUDA_ARCH_LIST  GPU architectures, e.g. "8.0;9.0" (torch's default otherwise)
  MAX_JOBS              parallel compile jobs (torch's cpp_extension honours it)
  DEBUG=1               -O0 -g
  ALEXNET_FAST_CUDA_HOST=0  do not build alexnet_fast._cuda_host, the CUDA kernels'
                        source compiled for the CPU (backend "cuda_host"; built by
                        default: the tests run every CUDA kernel through it)
  ALEXNET_FAST_SANITIZE=1   build alexnet_fast._cuda_host with AddressSanitizer and
                        UBSan (CI's sanitizer job; load it with the runtimes preloaded)
  ALEXNET_FAST_BUILD=cuda_host  build that extension only (with build_ext --inplace:
                        .ci/sanitize_cuda_host.sh rebuilds it sanitized)
"""
import glob
import os

from setuptools import find_packages, setup

try:
    import torch
    from torch.utils.cpp_extension import (
        CUDA_HOME,
        BuildExtension,
        CppExtension,
        CUDAExtension,
    )
except ImportError as error:  # pragma: no cover - the message is the point
    raise SystemExit(
        "alexnet-fast builds against an installed PyTorch. Install it first, e.g. "
        "`pip install torch==2.13.0` (CPU), then "
        "`pip install --no-build-isolation -e .`"
    ) from error

ROOT = os.path.dirname(os.path.abspath(__file__))


def use_cuda() -> bool:
    force = os.environ.get("FORCE_CUDA")
    if force is not None:
        return force == "1"
    return torch.cuda.is_available() and CUDA_HOME is not None


def extension():
    debug = os.environ.get("DEBUG", "0") == "1"
    opt = ["-O0", "-g"] if debug else ["-O3"]
    cxx_flags = [*opt, "-fopenmp", "-fdiagnostics-color=always"]
    sources = sorted(
        glob.glob(os.path.join("csrc", "*.cpp")) + glob.glob(os.path.join("csrc", "cpu", "*.cpp"))
    )
    kwargs = dict(
        include_dirs=[os.path.join(ROOT, "csrc")],
        extra_link_args=["-fopenmp"],
    )
    if use_cuda():
        sources += sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu")))
        nvcc_flags = [*opt, "--expt-relaxed-constexpr", "-lineinfo"]
        return CUDAExtension(
            "alexnet_fast._C",
            sources,
            extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags},
            **kwargs,
        )
    return CppExtension(
        "alexnet_fast._C", sources, extra_compile_args={"cxx": cxx_flags}, **kwargs
    )


def cuda_host_extension():
    """alexnet_fast._cuda_host: csrc/cuda/*_kernels.cuh compiled by the host compiler
    (csrc/cuda/host/cuda_shim.h). -ffp-contract=off: no multiply-add is fused that the
    GPU would not fuse, so the host runs the device's rounding."""
    # -Wno-unknown-pragmas: the device code's `#pragma unroll` is nvcc's.
    flags = ["-O2", "-ffp-contract=off", "-fno-fast-math", "-Wno-unknown-pragmas", "-fdiagnostics-color=always"]
    link = []
    if os.environ.get("ALEXNET_FAST_SANITIZE", "0") == "1":
        sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
        flags, link = ["-O1", "-ffp-contract=off", "-Wno-unknown-pragmas", *sanitize], sanitize
    return CppExtension(
        "alexnet_fast._cuda_host",
        sorted(glob.glob(os.path.join("csrc", "cuda", "host", "*.cpp"))),
        include_dirs=[os.path.join(ROOT, "csrc")],
        extra_compile_args={"cxx": flags},
        extra_link_args=link,
    )


def extensions():
    if os.environ.get("ALEXNET_FAST_BUILD") == "cuda_host":
        return [cuda_host_extension()]
    found = [extension()]
    if os.environ.get("ALEXNET_FAST_CUDA_HOST", "1") != "0":
        found.append(cuda_host_extension())
    return found


setup(
    packages=find_packages(include=["alexnet_fast", "alexnet_fast.*"]) + ["alexnet_fast.kernels"],
    package_dir={"alexnet_fast.kernels": "kernels"},
    ext_modules=extensions(),
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
