"""Per-group LRN (the paper's per-tower normalisation) on the existing kernels.

With ``groups`` = g, channel c belongs to block c // (C/g), and its window
W(c) (docs/math.md) is clipped at that block's edges instead of the tensor's:

    s_c = k + alpha/size * sum_{j in W(c), j in c's block} a_j^2

The kernels already clip every window at channel 0 and channel C - 1, so the
blocks need no kernel of their own: the op runs on a tensor in which each
block is a tensor of C/g channels. For the dense layouts that tensor is a
view of x (no copy), and each output element is computed from the same values
in the same order as on the block alone, so the result is the op applied to
each channel slice separately, bitwise.

    channels-first (N, C, *S):  (N * g, C/g, *S)   the blocks join the batch
    channels-last  (N, C, *S):  (N, C/g, S * g)    the blocks join the positions
                                (memory [n][s][block][c'] is [n][s'][c'])

Pooling sees height and width, so the fused op cannot put the blocks among the
positions: with channels-last it copies x to (N * g, C/g, H, W) channels-last
and the output back (two copies, and their transposes in backward).
"""
from __future__ import annotations

import numbers
from typing import Callable

import torch
from torch import Tensor

from alexnet_fast.kernels.layout import channel_view, pool_is_channels_last

_INT64_MAX = 2**63 - 1  # groups never reaches a schema, but it multiplies the batch (N * groups)


def check_groups(groups) -> None:
    """``groups`` without a tensor, for the functions and the module constructors."""
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or not 1 <= groups <= _INT64_MAX:
        raise ValueError(f"groups must be an integer >= 1; got {groups!r}")


def check_groups_divide(x: Tensor, groups: int) -> None:
    check_groups(groups)
    if x.shape[1] % groups:
        raise ValueError(
            f"groups={groups} must divide the channel count: x has {x.shape[1]} channels "
            f"(shape {tuple(x.shape)}), and {x.shape[1]} % {groups} = {x.shape[1] % groups}"
        )


def lrn_in_groups(x: Tensor, groups: int, lrn: Callable[[Tensor], Tensor]) -> Tensor:
    """``lrn`` (an (N, C, *) -> (N, C, *) op whose windows are clipped at the channel
    edges) applied to each block of C / groups channels of x on its own."""
    if groups == 1:
        return lrn(x)
    view = channel_view(x)  # x, or its contiguous copy where no view will do
    t, n, c = view.tensor, view.batch, view.channels
    spatial = t.shape[2:]
    if view.stride_channel == 1 and c > 1:  # channels-last: [n][s][c]
        by_position = t.movedim(1, -1).reshape(n, view.spatial * groups, c // groups)
        out = lrn(by_position.transpose(1, 2))  # (N, C/g, S * g), channels-last
        return out.transpose(1, 2).reshape(n, *spatial, c).movedim(-1, 1)
    out = lrn(t.reshape(n * groups, c // groups, *spatial))  # channels-first: [n][block][c'][s]
    return out.reshape(n, c, *spatial)


def pool_in_groups(x: Tensor, groups: int, fused: Callable[[Tensor], Tensor]) -> Tensor:
    """``fused`` (an (N, C, H, W) -> (N, C, OH, OW) op: LRN, then a pool of each
    channel) applied to each block of C / groups channels of x on its own."""
    if groups == 1:
        return fused(x)
    n, c, h, w = x.shape
    if pool_is_channels_last(x):
        # [n][h][w][block][c'] -> [n][block][h][w][c']: one copy in, one out.
        blocks = x.movedim(1, -1).reshape(n, h, w, groups, c // groups).permute(0, 3, 1, 2, 4)
        out = fused(blocks.reshape(n * groups, h, w, c // groups).movedim(-1, 1))
        oh, ow = out.shape[2:]
        out = out.movedim(1, -1).reshape(n, groups, oh, ow, c // groups).permute(0, 2, 3, 1, 4)
        # contiguous(): with C/g = 1 the fused op's output is NCHW (PyTorch's rule for one
        # channel), and the reshape can then return a view in that order.
        return out.reshape(n, oh, ow, c).movedim(-1, 1).contiguous(memory_format=torch.channels_last)
    out = fused(x.contiguous().view(n * groups, c // groups, h, w))
    return out.view(n, c, *out.shape[2:])
