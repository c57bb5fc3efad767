"""The backends, in one table: which implementation runs an op, on which devices,
whether it is available here, and which compiled operator serves it.

  reference  plain PyTorch ops (any device; the definition of the semantics)
  cpu        C++ kernels of alexnet_fast._C (CPU tensors)
  cuda       C++/CUDA kernels of alexnet_fast._C (CUDA tensors; needs a CUDA build)
  cuda_host  the same CUDA kernels' source compiled for the CPU and run thread by
             thread (alexnet_fast._cuda_host; CPU tensors; for testing the CUDA code)
  triton     Triton kernels (CUDA tensors; CPU tensors under TRITON_INTERPRET=1)
  auto       the first available of AUTO_ORDER for the tensor's device, else reference

Adding a backend is one row of BACKEND_TABLE plus its kernels (README, "Adding a
backend"): every public function, module, model, the tests' backend parameters and
available_backends() are derived from the table.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
from typing import Callable

import torch

FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

try:  # importing the library runs the TORCH_LIBRARY registrations
    from alexnet_fast import _C  # noqa: F401
except ImportError as error:  # pragma: no cover - the message is the point
    raise ImportError(
        "alexnet_fast._C is not built: run `pip install --no-build-isolation -e .` in the repository"
    ) from error

try:  # the host execution of the CUDA kernels (built by default; ALEXNET_FAST_CUDA_HOST=0 skips it)
    from alexnet_fast import _cuda_host  # noqa: F401

    _HAS_CUDA_HOST = True
except ImportError:
    _HAS_CUDA_HOST = False

# Known at import, so that torch.compile traces plain constants.
_HAS_CUDA_KERNELS = torch._C._dispatch_has_kernel_for_dispatch_key("alexnet_fast::relu_lrn_forward", "CUDA")
_HAS_TRITON = importlib.util.find_spec("triton") is not None


def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@dataclasses.dataclass(frozen=True)
class Backend:
    """One row of the backend table.

    op_suffix: device type -> the suffix of the torch.ops.alexnet_fast operators that
    run this backend there (``relu_lrn_forward`` + suffix); absent for reference.
    built: whether its code is here at all; unusable: device type -> the reason it
    cannot run on that device here, or None when it can.
    """

    name: str
    op_suffix: dict[str, str]
    built: Callable[[], bool]
    unusable: Callable[[str], str | None]
    # Device types where the backend emulates another machine's code (Triton's
    # interpreter, the CUDA kernels on the CPU): for tests, never timed.
    emulated_on: tuple[str, ...] = ()

    @property
    def device_types(self) -> tuple[str, ...]:
        return tuple(self.op_suffix)


# Why a built backend cannot run on a device type here (None: it can), as the
# end of "backend='NAME' ...": the error names the argument and what would work.
def _always(device_type: str) -> str | None:
    return None


def _cuda_unusable(device_type: str) -> str | None:
    if not has_cuda_kernels():
        return (
            ": alexnet_fast was built without its CUDA kernels; rebuild on a machine with nvcc and a CUDA "
            "build of torch (FORCE_CUDA=1 pip install --no-build-isolation -e .), or use backend='triton'"
        )
    return None if torch.cuda.is_available() else ": no CUDA GPU is available"


def _cuda_host_unusable(device_type: str) -> str | None:
    if not _HAS_CUDA_HOST:
        return (": alexnet_fast._cuda_host is not built (rebuild without ALEXNET_FAST_CUDA_HOST=0: "
                "pip install --no-build-isolation -e .)")
    return None


def _triton_unusable(device_type: str) -> str | None:
    if not has_triton():
        return " needs the triton package (pip install 'triton>=3.6,<3.10')"
    if device_type == "cpu" and not triton_interpreted():
        return (" on a CPU tensor needs TRITON_INTERPRET=1 in the environment before triton is imported "
                "(Triton's interpreter); x is on cpu")
    if device_type == "cuda" and not torch.cuda.is_available():
        return ": no CUDA GPU is available"
    return None


BACKEND_TABLE: tuple[Backend, ...] = (
    Backend("reference", {}, lambda: True, _always),
    Backend("cpu", {"cpu": ""}, lambda: True, _always),
    Backend("cuda", {"cuda": ""}, lambda: _HAS_CUDA_KERNELS, _cuda_unusable),
    Backend("cuda_host", {"cpu": "_cuda_host"}, lambda: _HAS_CUDA_HOST, _cuda_host_unusable, emulated_on=("cpu",)),
    Backend("triton", {"cuda": "_triton", "cpu": "_triton_interpreted"}, lambda: _HAS_TRITON, _triton_unusable,
            emulated_on=("cpu",)),
)
BACKEND_BY_NAME = {backend.name: backend for backend in BACKEND_TABLE}
BACKENDS = ("auto", *BACKEND_BY_NAME)
# What "auto" picks per device type, first usable first (reference otherwise).
AUTO_ORDER = {"cpu": ("cpu",), "cuda": ("cuda", "triton")}


def has_cuda_kernels() -> bool:
    """True when alexnet_fast._C was built with its CUDA kernels."""
    return _HAS_CUDA_KERNELS


def has_triton() -> bool:
    return _HAS_TRITON


def release_cached_memory() -> int:
    """Frees the idle memory the CPU kernels keep for their large outputs and
    returns how many bytes were freed.

    Outputs of 4 MiB or more of the ``cpu`` backend reuse the blocks of earlier
    outputs of the same size, which saves faulting in fresh pages on every call.
    Up to ``ALEXNET_FAST_CPU_CACHE_MB`` MiB (read once; default 1024, 0 keeps
    none) of freed blocks stay with the process until this is called."""
    return int(torch.ops.alexnet_fast.release_cached_memory())


def _device(device: torch.device | str, name: str = "device") -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"{name} must be a device such as 'cpu' or 'cuda'; got {device!r}") from error


def usable(backend: Backend, device_type: str) -> str | None:
    """None when ``backend`` runs on ``device_type`` here, else why not (the end of a
    message that starts with "backend='NAME'")."""
    if backend.name == "reference":
        return None
    if device_type not in backend.op_suffix:
        kinds = " or ".join(kind.upper() if kind in ("cpu", "cuda") else kind for kind in backend.device_types)
        return f" needs a {kinds} tensor; x is on {device_type}"
    return backend.unusable(device_type)


def available_backends(device: torch.device | str = "cpu") -> list[str]:
    """The backends that run on ``device`` here: 'reference', then the rest in table order."""
    device_type = _device(device).type
    return [backend.name for backend in BACKEND_TABLE if usable(backend, device_type) is None]


def resolve_backend(backend: str, device: torch.device) -> str:
    """Turns ``backend`` into a concrete one for a tensor ``x`` on ``device``,
    or raises an error that names the argument, its value and what would work:
    ValueError for a tensor on the wrong device, RuntimeError for a backend this
    installation cannot run."""
    check_backend_name(backend)
    if backend == "auto":
        for name in AUTO_ORDER.get(device.type, ()):
            if usable(BACKEND_BY_NAME[name], device.type) is None:
                return name
        return "reference"
    row = BACKEND_BY_NAME[backend]
    reason = usable(row, device.type)
    if reason is None:
        return backend
    wrong_device = device.type not in row.op_suffix or (backend == "triton" and not triton_interpreted()
                                                         and device.type == "cpu")
    raise (ValueError if wrong_device else RuntimeError)(f"backend={backend!r}{reason}")


def check_backend_name(backend) -> str:
    """For constructors: the name is checked now, the device when a tensor arrives."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; got {backend!r}")
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
        raise TypeError(f"{name} must be float32, float64, float16 or bfloat16; got {x.dtype}")
