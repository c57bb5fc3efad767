"""The op descriptions and the backend table, walked: every described op runs on
every compiled backend usable here, through its registered operators and through its public
function, and agrees with the reference backend; every operator in the library is
one of theirs. A new op or backend is covered here without editing this file,
except for the op's example call below (the first test fails until it has one)."""
import pytest
import torch

import alexnet_fast
from alexnet_fast._backends import BACKEND_TABLE, usable
from alexnet_fast.ops import OP_PAIRS, compiled_ops

# op name -> (public function, its arguments after x): small, odd shapes.
EXAMPLES = {
    "relu_lrn": (alexnet_fast.relu_lrn, (5, 0.1, 0.75, 2.0)),
    "max_pool2d": (alexnet_fast.max_pool2d, (3, 2)),
    "relu_lrn_max_pool2d": (alexnet_fast.relu_lrn_max_pool2d, (5, 0.1, 0.75, 2.0, 3, 2)),
}


def test_every_described_op_has_an_example():
    assert set(EXAMPLES) == set(OP_PAIRS)


def test_every_library_operator_belongs_to_a_description_and_a_backend():
    suffixes = {suffix for row in BACKEND_TABLE for suffix in row.op_suffix.values()}
    expected = {f"{op}_{direction}{suffix}" for op in OP_PAIRS for direction in ("forward", "backward")
                for suffix in suffixes}
    defined = {name for name in dir(torch.ops.alexnet_fast) if name.endswith(tuple(
        f"_{direction}{suffix}" for direction in ("forward", "backward") for suffix in suffixes))}
    assert defined <= expected, defined - expected
    # Every pair of a compiled backend is defined (the cuda pairs share the cpu operators).
    assert {f"{op}_forward{suffix}" for op in OP_PAIRS for suffix in suffixes} <= defined


def _walk():
    """(backend, device) for every compiled backend and each device type it serves (the
    reference backend is the yardstick; its own tests compare it with formulas)."""
    for row in BACKEND_TABLE:
        for device in row.device_types:
            marks = [pytest.mark.cuda] if device == "cuda" else []
            yield pytest.param(row.name, device, id=f"{device}-{row.name}", marks=marks)


@pytest.mark.parametrize("op", sorted(EXAMPLES))
@pytest.mark.parametrize("backend,device", list(_walk()))
def test_every_op_runs_on_every_usable_backend(op, backend, device):
    row = next(r for r in BACKEND_TABLE if r.name == backend)
    reason = usable(row, device) if device == "cpu" or torch.cuda.is_available() else ": no CUDA GPU"
    if reason is not None:
        pytest.skip(f"backend={backend!r}{reason}")
    function, args = EXAMPLES[op]
    torch.manual_seed(0)
    x = (torch.randn(2, 6, 9, 7, dtype=torch.float64, device=device) * 3).requires_grad_()
    out = function(x, *args, backend=backend)
    expected = function(x, *args, backend="reference")
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    grad_out = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, x, grad_out)
    (grad_expected,) = torch.autograd.grad(expected, x, grad_out)
    torch.testing.assert_close(grad, grad_expected, rtol=1e-12, atol=1e-12)
    forward, backward = compiled_ops(op, backend, device)  # the pair the function dispatched to
    assert (f"{op}_forward" in str(forward), f"{op}_backward" in str(backward)) == (True, True), (forward, backward)

