"""torch.export and AOTInductor: each public op, each module and both AlexNet
variants export to an ExportedProgram that keeps the alexnet_fast operators
(one graph node each, no fall-back to plain PyTorch ops) and gives the eager
outputs; the paper model compiled with AOTInductor runs from its package
file in a fresh process.

Every exported result is checked against the eager call (bit for bit: the
same kernels run) and against PyTorch's own ops in float64.
"""
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

import alexnet_fast
from alexnet_fast._backends import BACKEND_BY_NAME
from alexnet_fast import nn as fast_nn
from alexnet_fast.models import alexnet
from _function_module import FunctionModule
from _helpers import assert_close_to

# The fast backends that run on CPU tensors here: the C++ kernels, and the
# Triton kernels in Triton's interpreter (TRITON_INTERPRET=1, set in conftest).
CPU_BACKENDS = ["cpu", pytest.param("triton", marks=pytest.mark.skipif(
    "triton" not in alexnet_fast.available_backends("cpu"), reason="needs triton and TRITON_INTERPRET=1"))]

LRN = dict(size=5, alpha=0.5, beta=0.75, k=2.0)


def export_and_run(module, x):
    """(exported outputs, eager outputs, names of the alexnet_fast ops in the
    graph), after checking that the shapes and dtypes the graph records for
    its outputs (from the fake kernels) are those of the eager outputs."""
    program = torch.export.export(module, (x,))
    fast_ops = [node.target.name() for node in program.graph.nodes
                if node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload)
                and node.target.namespace == "alexnet_fast"]
    eager = module(x)
    recorded = [node.meta["val"] for node in program.graph.output_node().args[0]]
    for meta, value in zip(recorded, as_tuple(eager), strict=True):
        assert (meta.shape, meta.dtype) == (value.shape, value.dtype)
    return program.module()(x), eager, fast_ops


def as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def assert_same(exported, eager):
    for got, want in zip(as_tuple(exported), as_tuple(eager), strict=True):
        assert torch.equal(got, want)


def reference_lrn(x, size, alpha, beta, k, relu=True):
    x = x.double()
    return F.local_response_norm(x.relu() if relu else x, size, alpha, beta, k)


# name, function of (x, backend), float64 reference of x, the op the graph must hold
OPS = [
    ("relu_lrn", lambda x, b: alexnet_fast.relu_lrn(x, **LRN, backend=b),
     lambda x: reference_lrn(x, **LRN), "relu_lrn_forward"),
    ("local_response_norm_even", lambda x, b: alexnet_fast.local_response_norm(x, 4, 0.5, 0.75, 2.0, backend=b),
     lambda x: reference_lrn(x, 4, 0.5, 0.75, 2.0, relu=False), "relu_lrn_forward"),
    ("max_pool2d", lambda x, b: alexnet_fast.max_pool2d(x, 3, 2, 1, ceil_mode=True, backend=b),
     lambda x: F.max_pool2d(x.double(), 3, 2, 1, ceil_mode=True), "max_pool2d_forward"),
    ("max_pool2d_indices", lambda x, b: alexnet_fast.max_pool2d(x, 3, 2, return_indices=True, backend=b),
     lambda x: F.max_pool2d(x.double(), 3, 2, return_indices=True), "max_pool2d_forward"),
    ("relu_lrn_max_pool2d", lambda x, b: alexnet_fast.relu_lrn_max_pool2d(x, **LRN, padding=1, ceil_mode=True,
                                                                         backend=b),
     lambda x: F.max_pool2d(reference_lrn(x, **LRN), 3, 2, 1, ceil_mode=True), "relu_lrn_max_pool2d_forward"),
]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name,function,reference,op", OPS, ids=[case[0] for case in OPS])
def test_export_op(name, function, reference, op, backend):
    x = torch.randn(2, 7, 9, 10) * 3
    exported, eager, fast_ops = export_and_run(FunctionModule(lambda t: function(t, backend)), x)
    suffix = BACKEND_BY_NAME[backend].op_suffix["cpu"]
    assert fast_ops == [f"alexnet_fast::{op}{suffix}"]
    assert_same(exported, eager)
    for got, want in zip(as_tuple(exported), as_tuple(reference(x)), strict=True):
        if want.dtype == torch.int64:  # max-pool indices
            assert torch.equal(got, want)
        else:
            assert_close_to(got, want, torch.float32)


MODULES = [
    ("ReLULRN", lambda b: fast_nn.ReLULRN(**LRN, backend=b), lambda x: reference_lrn(x, **LRN)),
    ("ReLULRN.from_paper", lambda b: fast_nn.ReLULRN.from_paper(backend=b),
     lambda x: reference_lrn(x, 5, 5e-4, 0.75, 2.0)),
    ("MaxPool2d", lambda b: fast_nn.MaxPool2d(3, 2, backend=b), lambda x: F.max_pool2d(x.double(), 3, 2)),
    ("MaxPool2d-indices", lambda b: fast_nn.MaxPool2d((3, 2), (2, 1), (1, 1), return_indices=True, backend=b),
     lambda x: F.max_pool2d(x.double(), (3, 2), (2, 1), (1, 1), return_indices=True)),
    ("ReLULRNMaxPool2d", lambda b: fast_nn.ReLULRNMaxPool2d.from_paper(backend=b),
     lambda x: F.max_pool2d(reference_lrn(x, 5, 5e-4, 0.75, 2.0), 3, 2)),
]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name,make,reference", MODULES, ids=[case[0] for case in MODULES])
def test_export_module(name, make, reference, backend):
    x = torch.randn(2, 6, 11, 11) * 30
    exported, eager, fast_ops = export_and_run(make(backend), x)
    assert len(fast_ops) == 1
    assert_same(exported, eager)
    for got, want in zip(as_tuple(exported), as_tuple(reference(x)), strict=True):
        if want.dtype == torch.int64:
            assert torch.equal(got, want)
        else:
            assert_close_to(got, want, torch.float32)


# variant, groups, the alexnet_fast ops of the fast model in forward order
MODELS = [
    pytest.param("paper", 1, ["relu_lrn_max_pool2d_forward"] * 2 + ["max_pool2d_forward"], id="paper"),
    pytest.param("paper", 2, ["relu_lrn_max_pool2d_forward"] * 2 + ["max_pool2d_forward"], id="paper-groups2"),
    pytest.param("torchvision", 1, ["max_pool2d_forward"] * 3, id="torchvision"),
]


@pytest.mark.parametrize("variant,groups,ops", MODELS)
def test_export_model(variant, groups, ops):
    """The exported fast model equals the eager one bit for bit, and the
    reference model (plain PyTorch) with the same weights to fp32 rounding."""
    fast = alexnet(variant, num_classes=10, groups=groups).eval()
    reference = alexnet(variant, num_classes=10, groups=groups, backend="reference").eval()
    reference.load_state_dict(fast.state_dict())
    scale = 50.0 if variant == "paper" else 1.0  # the paper's raw-pixel inputs
    x = torch.randn(2, 3, fast.input_size, fast.input_size) * scale
    with torch.no_grad():
        exported, eager, fast_ops = export_and_run(fast, x)
        expected = reference.double()(x.double())
    assert fast_ops == [f"alexnet_fast::{op}" for op in ops]
    assert_same(exported, eager)
    assert_close_to(exported, expected, torch.float32, atol_scale=1.0)


def test_export_model_dynamic_batch():
    """One exported program for any batch size."""
    model = alexnet("paper", num_classes=10).eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    with torch.no_grad():
        program = torch.export.export(model, (torch.randn(2, 3, 227, 227) * 50,), dynamic_shapes=({0: batch},))
        for n in (1, 3):
            x = torch.randn(n, 3, 227, 227) * 50
            assert torch.equal(program.module()(x), model(x))


def run_fresh(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_aoti_package_runs_in_a_fresh_process(tmp_path):
    """AOTInductor compiles the fast paper model (the alexnet_fast ops stay
    calls into the extension); a new process that imports alexnet_fast loads
    the package and gives the eager logits. ~1 min on 2 cores (C++ compile)."""
    torch.manual_seed(3)
    model = alexnet("paper", num_classes=10).eval()
    x = torch.randn(1, 3, 227, 227) * 50
    with torch.no_grad():
        expected = model(x)
        program = torch.export.export(model, (x,))
    package = torch._inductor.aoti_compile_and_package(program, package_path=str(tmp_path / "paper.pt2"))
    torch.save({"x": x, "expected": expected}, tmp_path / "io.pt")
    result = run_fresh(f"""
        import torch, alexnet_fast
        io = torch.load({str(tmp_path / "io.pt")!r})
        runner = torch._inductor.aoti_load_package({package!r})
        with torch.no_grad():
            logits = runner(io["x"])
        torch.testing.assert_close(logits, io["expected"], rtol=1e-4, atol=1e-5)
        print("max difference", (logits - io["expected"]).abs().max().item())
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    # Without the extension the package names an operator nobody registered.
    result = run_fresh(f"""
        import torch
        torch._inductor.aoti_load_package({package!r})
    """)
    assert result.returncode != 0 and "alexnet_fast::relu_lrn_max_pool2d_forward" in result.stderr


def test_onnx_packages_are_optional():
    """alexnet_fast imports without onnx/onnxscript; export_onnx then says what to install."""
    result = run_fresh("""
        import sys
        sys.modules["onnx"] = sys.modules["onnxscript"] = None  # as if not installed
        import torch, alexnet_fast
        try:
            alexnet_fast.export_onnx(alexnet_fast.nn.ReLULRN(5), "x.onnx", torch.randn(1, 6, 4, 4))
        except ImportError as error:
            print(error)
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ONNX export needs onnx, onnxscript: pip install onnx onnxscript" in result.stdout
