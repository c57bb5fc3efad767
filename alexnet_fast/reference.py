"""The `reference` backend: plain PyTorch ops, the definition of each op's
semantics. Low precision is computed in float32 and rounded once, like the
fast kernels (PyTorch's CPU LRN has no float16/bfloat16 kernels at all)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def in_channel_groups(fn, x: torch.Tensor, groups: int) -> torch.Tensor:
    """fn applied to each block of C / groups channels of x on its own, concatenated:
    the definition of the ops' ``groups`` (each block normalised alone)."""
    if groups == 1:
        return fn(x)
    return torch.cat([fn(block) for block in x.tensor_split(groups, dim=1)], dim=1)


def relu_lrn(x: torch.Tensor, size: int, alpha: float, beta: float, k: float, apply_relu: bool,
             groups: int = 1) -> torch.Tensor:
    a = torch.relu(x) if apply_relu else x

    def lrn(t):
        return F.local_response_norm(t, size, alpha, beta, k)

    if x.dtype in _LOW_PRECISION:
        return in_channel_groups(lrn, a.float(), groups).to(x.dtype)
    out = in_channel_groups(lrn, a, groups)
    # F.local_response_norm returns its input itself for an empty tensor.
    return out.clone() if out is a else out


def max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    return F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode=ceil_mode, return_indices=return_indices)


def relu_lrn_max_pool2d(x, size, alpha, beta, k, kernel_size, stride, padding, ceil_mode, groups=1):
    normalised = relu_lrn(x, size, alpha, beta, k, apply_relu=True, groups=groups)
    return F.max_pool2d(normalised, kernel_size, stride, padding, ceil_mode=ceil_mode)

