"""groups= (per-tower LRN): each block of C / groups channels normalised on its own.

Three checks of different strength:
- every fast backend's grouped op equals the same op run on each channel slice and
  concatenated, bitwise, forward and backward, in every dtype and both layouts;
- the grouped ops equal a float64 formula written out here, window by window;
- errors name the argument and both numbers.
"""
import pytest
import torch
import torch.nn.functional as F

import alexnet_fast
from alexnet_fast import nn as fast_nn
from alexnet_fast.models import alexnet
from torch import nn

from _helpers import DTYPES, FAST_BACKENDS, assert_close_to, is_emulated

SIZE, ALPHA, BETA, K = 5, 0.05, 0.75, 2.0

LAYOUTS = {
    "nchw": lambda t: t,
    "channels_last": lambda t: t.contiguous(memory_format=torch.channels_last),
    # channels sliced out of a wider tensor: no dense view, copied by the op
    "strided": lambda t: torch.cat([t, t], 1)[:, ::2],
}


def lrn_ops(groups, backend):
    """(name, grouped op, ungrouped op) of each public function."""
    return [
        ("relu_lrn",
         lambda t: alexnet_fast.relu_lrn(t, SIZE, ALPHA, BETA, K, groups=groups, backend=backend),
         lambda t: alexnet_fast.relu_lrn(t, SIZE, ALPHA, BETA, K, backend=backend)),
        ("local_response_norm",
         lambda t: alexnet_fast.local_response_norm(t, SIZE, ALPHA, BETA, K, groups=groups, backend=backend),
         lambda t: alexnet_fast.local_response_norm(t, SIZE, ALPHA, BETA, K, backend=backend)),
        ("relu_lrn_max_pool2d",
         lambda t: alexnet_fast.relu_lrn_max_pool2d(t, SIZE, ALPHA, BETA, K, 3, 2, groups=groups, backend=backend),
         lambda t: alexnet_fast.relu_lrn_max_pool2d(t, SIZE, ALPHA, BETA, K, 3, 2, backend=backend)),
    ]


def per_slice(op, x, groups):
    return torch.cat([op(block) for block in x.tensor_split(groups, dim=1)], dim=1)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("device,backend", FAST_BACKENDS)
def test_grouped_equals_the_op_on_each_slice_bitwise(device, backend, dtype, layout):
    torch.manual_seed(0)
    emulated = is_emulated(device, backend)  # 10 to 1000 times slower: one small case
    shape = (1, 6, 5, 5) if emulated else (2, 12, 7, 9)
    x = LAYOUTS[layout](torch.randn(shape, dtype=dtype, device=device) * 3).requires_grad_()
    for groups in (2,) if emulated else (2, 3):
        for name, grouped, ungrouped in lrn_ops(groups, backend):
            out = grouped(x)
            expected = per_slice(ungrouped, x, groups)
            assert torch.equal(out, expected), (name, groups)
            # The output keeps the layout that the op gives without groups.
            assert out.stride() == ungrouped(x).stride(), (name, groups, out.stride())
            grad_out = torch.randn_like(out)
            (grad,) = torch.autograd.grad(out, x, grad_out)
            (grad_expected,) = torch.autograd.grad(expected, x, grad_out)
            assert torch.equal(grad, grad_expected), (name, groups)


def grouped_lrn_float64(x, size, alpha, beta, k, groups):
    """b_c = a_c (k + alpha/size sum_{j in W(c), j in c's block} a_j^2)^-beta with
    W(c) = [c - size//2, c + (size-1)//2], written out channel by channel."""
    a = torch.relu(x.double())
    blocks = a.shape[1] // groups
    out = torch.empty_like(a)
    for c in range(a.shape[1]):
        first, last = (c // blocks) * blocks, (c // blocks + 1) * blocks - 1
        lo, hi = max(c - size // 2, first), min(c + (size - 1) // 2, last)
        s = k + alpha / size * (a[:, lo:hi + 1] ** 2).sum(1)
        out[:, c] = a[:, c] * s ** -beta
    return out


@pytest.mark.parametrize("size", [4, 5])
@pytest.mark.parametrize("device,backend", [("cpu", "reference"), *FAST_BACKENDS])
def test_grouped_matches_the_formula(device, backend, size):
    torch.manual_seed(1)
    x = torch.randn(2, 8, 3, 4, device=device) * 4
    for groups in (1, 2, 4, 8):
        expected = grouped_lrn_float64(x.cpu(), size, ALPHA, BETA, K, groups)
        out = alexnet_fast.relu_lrn(x, size, ALPHA, BETA, K, groups=groups, backend=backend)
        assert_close_to(out.cpu(), expected, torch.float32)
        pooled = alexnet_fast.relu_lrn_max_pool2d(x, size, ALPHA, BETA, K, 2, 1, groups=groups, backend=backend)
        assert_close_to(pooled.cpu(), F.max_pool2d(expected, 2, 1), torch.float32)


@pytest.mark.parametrize("device,backend", [("cpu", "reference"), ("cpu", "cpu")])
def test_gradcheck_float64(device, backend):
    torch.manual_seed(2)
    x = torch.randn(1, 6, 3, 4, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: alexnet_fast.relu_lrn(t, 3, 0.3, BETA, K, groups=2, backend=backend), (x,))
    torch.autograd.gradcheck(
        lambda t: alexnet_fast.relu_lrn_max_pool2d(t, 3, 0.3, BETA, K, 3, 2, groups=3, backend=backend), (x,)
    )


def test_towers_do_not_see_each_other():
    """A change in one tower's maps leaves the other tower's normalisation alone,
    and does change it without groups."""
    torch.manual_seed(3)
    x = torch.rand(1, 96, 6, 6) + 0.5
    bumped = x.clone()
    bumped[:, 47] += 10.0  # the last map of the first tower
    for groups, other_tower_changes in ((2, False), (1, True)):
        a = alexnet_fast.relu_lrn(x, SIZE, ALPHA, BETA, K, groups=groups)
        b = alexnet_fast.relu_lrn(bumped, SIZE, ALPHA, BETA, K, groups=groups)
        assert (not torch.equal(a[:, 48:50], b[:, 48:50])) == other_tower_changes, groups
        assert not torch.equal(a[:, 45:47], b[:, 45:47])


def test_modules_and_the_reference_layer():
    torch.manual_seed(4)
    x = torch.randn(2, 8, 7, 7, dtype=torch.float64)
    expected = grouped_lrn_float64(x, SIZE, ALPHA, BETA, K, 2)
    assert_close_to(fast_nn.ReLULRN(SIZE, ALPHA, BETA, K, groups=2)(x), expected, torch.float64)
    fused = fast_nn.ReLULRNMaxPool2d(SIZE, ALPHA, BETA, K, 3, 2, groups=2)
    assert_close_to(fused(x), F.max_pool2d(expected, 3, 2), torch.float64)
    assert "groups=2" in repr(fused)


def test_paper_model_normalises_per_tower():
    """The LRN layers on their own; test_models.py compares the whole fast and
    reference models."""
    with torch.device("meta"):
        fast = alexnet("paper", num_classes=10, groups=2)
        one_tower = alexnet("paper", num_classes=10)
    assert [m.groups for m in fast.modules() if isinstance(m, fast_nn.ReLULRNMaxPool2d)] == [2, 2]
    assert [m.groups for m in one_tower.modules() if isinstance(m, fast_nn.ReLULRNMaxPool2d)] == [1, 1]
    reference = alexnet("paper", num_classes=10, groups=2, backend="reference").double()
    for name, channels in (("lrn1", 96), ("lrn2", 256)):
        layer = getattr(reference.features, name)
        assert isinstance(layer, nn.Sequential)
        x = torch.rand(2, channels, 4, 4, dtype=torch.float64) * 30  # >= 0: the formula applies a ReLU
        assert_close_to(layer(x), grouped_lrn_float64(x, 5, 5e-4, 0.75, 2.0, 2), torch.float64)


@pytest.mark.parametrize("groups,message", [
    (5, "groups=5 must divide the channel count: x has 12 channels"),
    (0, "groups must be an integer >= 1; got 0"),
    (-2, "groups must be an integer >= 1; got -2"),
    (2.0, "groups must be an integer >= 1; got 2.0"),
    (True, "groups must be an integer >= 1; got True"),
])
def test_bad_groups_are_refused(groups, message):
    x = torch.randn(1, 12, 5, 5)
    for call in (
        lambda: alexnet_fast.relu_lrn(x, 5, groups=groups),
        lambda: alexnet_fast.local_response_norm(x, 5, groups=groups, backend="reference"),
        lambda: alexnet_fast.relu_lrn_max_pool2d(x, 5, groups=groups),
    ):
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            call()
    if not isinstance(groups, int) or groups < 1 or isinstance(groups, bool):
        with pytest.raises(ValueError, match="groups must be an integer"):
            fast_nn.ReLULRN(5, groups=groups)
        with pytest.raises(ValueError, match="groups must be an integer"):
            fast_nn.ReLULRNMaxPool2d(5, groups=groups)
