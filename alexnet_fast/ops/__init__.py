"""The torch.library operators of alexnet_fast and their public functions.

C++ operators (schemas in csrc/alexnet_fast.cpp, CPU and CUDA kernels in
csrc/cpu and csrc/cuda, the CUDA kernels' host execution in csrc/cuda/host)
get their fake kernels and autograd here; the Triton operators are defined
here (ops/_registration.py says how, for every backend of the table).
"""
from __future__ import annotations

import torch

from alexnet_fast.ops import max_pool2d, relu_lrn, relu_lrn_max_pool2d
from alexnet_fast.ops._registration import OpPair, backend_ops

# Every op by name: its operator pairs per backend (ops/_registration.py).
OP_PAIRS = {module.__name__.rsplit(".", 1)[1]: module._OPS for module in (relu_lrn, max_pool2d, relu_lrn_max_pool2d)}


def compiled_ops(name: str, backend: str, device: torch.device | str) -> OpPair:
    """The (forward, backward) operators that ``backend`` runs for op ``name`` on ``device``."""
    return backend_ops(OP_PAIRS[name], backend, torch.device(device))
