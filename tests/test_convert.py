"""alexnet_fast.models.convert: a fast AlexNet to its plain-PyTorch twin and
back, with the same state_dict, and the twin running in a process that has
no alexnet_fast (as a torch.export program)."""
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from alexnet_fast import nn as fast_nn
from alexnet_fast.models import AlexNet, alexnet, convert

CONFIGS = [("paper", 1), ("paper", 2), ("torchvision", 1)]
FAST_MODULES = (fast_nn.ReLULRN, fast_nn.MaxPool2d, fast_nn.ReLULRNMaxPool2d)


def structure(model):
    return [(name, type(module)) for name, module in model.named_modules()]


def assert_same_state(converted, original):
    a, b = converted.state_dict(), original.state_dict()
    assert list(a) == list(b)
    for name in a:
        assert torch.equal(a[name], b[name]) and a[name].dtype == b[name].dtype, name
        assert a[name].data_ptr() != b[name].data_ptr(), f"{name} shares memory with the original"


@pytest.mark.parametrize("variant,groups", CONFIGS)
def test_fast_to_reference_and_back(variant, groups):
    fast = alexnet(variant, num_classes=10, groups=groups).double()
    twin = convert(fast, backend="reference")
    # The same network as alexnet(..., backend="reference") builds: every module plain PyTorch.
    assert structure(twin) == structure(alexnet(variant, num_classes=10, groups=groups, backend="reference"))
    assert all(type(m).__module__.startswith("torch.nn") for m in twin.modules() if m is not twin)
    assert isinstance(twin, AlexNet) and twin.backend == "reference"
    assert_same_state(twin, fast)
    back = convert(twin, backend="cpu")
    assert structure(back) == structure(alexnet(variant, num_classes=10, groups=groups, backend="cpu"))
    assert sum(isinstance(m, FAST_MODULES) for m in back.modules()) == 3  # two fused blocks + pool5, or 3 pools
    assert_same_state(back, twin)
    scale = 50.0 if variant == "paper" else 1.0
    x = torch.randn(2, 3, fast.input_size, fast.input_size, dtype=torch.float64) * scale
    for model in (fast, twin, back):
        model.eval()
    with torch.no_grad():
        expected = twin(x)
        torch.testing.assert_close(fast(x), expected, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(back(x), expected, rtol=1e-10, atol=1e-12)


def test_convert_keeps_mode_dropout_and_requires_grad():
    fast = alexnet("paper", num_classes=4, dropout=0.25).train()
    fast.features.conv1.requires_grad_(False)
    twin = convert(fast)
    assert twin.training
    assert [m.p for m in twin.modules() if isinstance(m, nn.Dropout)] == [0.25, 0.25]
    assert [p.requires_grad for p in twin.parameters()] == [p.requires_grad for p in fast.parameters()]
    assert not convert(fast.eval()).training
    # A twin is trainable on its own: its gradients are its own.
    twin(torch.randn(1, 3, 227, 227)).sum().backward()
    assert twin.features.conv2.weight.grad is not None and fast.features.conv2.weight.grad is None


def test_convert_bad_arguments():
    with pytest.raises(TypeError, match="model must be an alexnet_fast.models.AlexNet; got Linear"):
        convert(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="backend must be one of .*; got 'fast'"):
        convert(alexnet("torchvision", num_classes=2), backend="fast")


def test_twin_runs_without_alexnet_fast(tmp_path):
    """The reference twin, exported, loads and runs in a process where
    importing alexnet_fast fails; its state_dict loads with weights_only."""
    fast = alexnet("paper", num_classes=5, groups=2).eval()
    twin = convert(fast, backend="reference")
    x = torch.randn(2, 3, 227, 227) * 50
    with torch.no_grad():
        program = torch.export.export(twin, (x,))
        expected = fast(x)
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert not any("alexnet_fast" in target for target in targets)
    torch.export.save(program, tmp_path / "twin.pt2")
    torch.save(twin.state_dict(), tmp_path / "state.pt")
    torch.save({"x": x, "expected": expected, "keys": list(fast.state_dict())}, tmp_path / "io.pt")
    script = f"""
        import sys
        sys.modules["alexnet_fast"] = None  # any import of it raises ImportError
        import torch
        io = torch.load({str(tmp_path / "io.pt")!r})
        program = torch.export.load({str(tmp_path / "twin.pt2")!r})
        torch.testing.assert_close(program.module()(io["x"]), io["expected"], rtol=1e-5, atol=1e-6)
        state = torch.load({str(tmp_path / "state.pt")!r}, weights_only=True)
        assert list(state) == io["keys"]
        assert not any(name.startswith("alexnet_fast") for name in sys.modules if sys.modules[name] is not None)
        print("ok")
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
