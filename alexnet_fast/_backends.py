"""Which implementation runs an op: argument checks and backend selection.

Backends:
  reference  plain PyTorch ops (any device; the definition of the semantics)
  cpu        C++ kernels of alexnet_fast._C (CPU tensors)
  cuda       C++/CUDA kernels of alexnet_fast._C (CUDA tensors; needs a CUDA build)
  triton     Triton kernels (CUDA tensors; CPU tensors under TRITON_INTERPRET=1)
  auto       cpu for CPU tensors, cuda (else triton) for CUDA tensors, else reference
"""
from __future__ import annotations

import importlib.util
import os

import torch

BACKENDS = ("auto", "reference", "cpu", "cuda", "triton")
FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

try:  # importing the library runs the TORCH_LIBRARY registrations
    from alexnet_fast import _C  # noqa: F401

    HAS_CPP = True
except ImportError:  # pragma: no cover - only without a build
    HAS_CPP = False


# Known at import, so that torch.compile traces plain constants.
_HAS_CUDA_KERNELS = HAS_CPP and torch._C._dispatch_has_kernel_for_dispatch_key(
    "alexnet_fast::relu_lrn_forward", "CUDA"
)
_HAS_TRITON = importlib.util.find_spec("triton") is not None


def has_cuda_kernels() -> bool:
    """True when alexnet_fast._C was built with its CUDA kernels."""
    return _HAS_CUDA_KERNELS


def release_cached_memory() -> int:
    """Frees the idle memory the CPU kernels keep for their large outputs and
    returns how many bytes were freed (0 without the C++ build).

    Outputs of 4 MiB or more of the ``cpu`` backend reuse the blocks of earlier
    outputs of the same size, which saves faulting in fresh pages on every call.
    Up to ``ALEXNET_FAST_CPU_CACHE_MB`` MiB (read once; default 1024, 0 keeps
    none) of freed blocks stay with the process until this is called."""
    if not HAS_CPP:
        return 0
    return int(torch.ops.alexnet_fast.release_cached_memory())


def has_triton() -> bool:
    return _HAS_TRITON


def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def available_backends(device: torch.device | str = "cpu") -> list[str]:
    """The backends that run on ``device`` here, best first after 'reference'."""
    device = torch.device(device)
    found = ["reference"]
    if device.type == "cpu":
        if HAS_CPP:
            found.append("cpu")
        if has_triton() and triton_interpreted():
            found.append("triton")
    elif device.type == "cuda" and torch.cuda.is_available():
        if has_cuda_kernels():
            found.append("cuda")
        if has_triton():
            found.append("triton")
    return found


def resolve_backend(backend: str, device: torch.device) -> str:
    """Turns ``backend`` into a concrete one for a tensor ``x`` on ``device``,
    or raises an error that names the argument, its value and what would work."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; got {backend!r}")
    kind = device.type
    if backend == "auto":
        if kind == "cpu":
            return "cpu" if HAS_CPP else "reference"
        if kind == "cuda":
            if has_cuda_kernels():
                return "cuda"
            return "triton" if has_triton() else "reference"
        return "reference"
    if backend == "cpu":
        if kind != "cpu":
            raise ValueError(f"backend='cpu' needs a CPU tensor; x is on {device}")
        if not HAS_CPP:
            raise RuntimeError("backend='cpu': alexnet_fast._C is not built; run `pip install --no-build-isolation -e .`")
    elif backend == "cuda":
        if kind != "cuda":
            raise ValueError(f"backend='cuda' needs a CUDA tensor; x is on {device}")
        if not has_cuda_kernels():
            raise RuntimeError(
                "backend='cuda': alexnet_fast was built without its CUDA kernels; rebuild on a "
                "machine with nvcc and a CUDA build of torch (FORCE_CUDA=1 pip install "
                "--no-build-isolation -e .), or use backend='triton'"
            )
    elif backend == "triton":
        if not has_triton():
            raise RuntimeError("backend='triton' needs the triton package (pip install 'triton>=3.6,<3.10')")
        if kind == "cpu" and not triton_interpreted():
            raise ValueError(
                "backend='triton' on a CPU tensor needs TRITON_INTERPRET=1 in the environment "
                "before triton is imported (Triton's interpreter); x is on cpu"
            )
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"backend='triton' needs a CUDA (or interpreted CPU) tensor; x is on {device}")
    return backend


def under_functorch_transform(x: torch.Tensor) -> bool:
    """True when x is a torch.func transform's tensor (grad, vjp, jacrev, vmap, ...).
    The torch.library autograd of the fast ops cannot be transformed, so the public
    functions then run the reference backend: the same math, in PyTorch ops that
    every transform understands."""
    if torch.compiler.is_compiling():  # traced tensors are never a transform's
        return False
    return torch._C._functorch.is_functorch_wrapped_tensor(x)


def check_floating(x: torch.Tensor, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be float32, float64, float16 or bfloat16; got {x.dtype}"
        )
