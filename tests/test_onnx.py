"""ONNX export (alexnet_fast.export_onnx): each op, each odd and even LRN size,
ceil_mode, padding, dilation, max-pool indices, and both AlexNet variants
become standard ONNX (Relu, LRN, MaxPool ...: no custom domain) that ONNX
Runtime and OpenVINO run unchanged, matching PyTorch's own ops in float64 to
1e-5 relative (fp32). OpenVINO is optional: its tests skip without it.
"""
import importlib.util

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install onnx onnxscript onnxruntime)")
pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (pip install onnxscript)")
pytest.importorskip("onnxruntime", reason="the exported files run in onnxruntime (pip install onnxruntime)")

import alexnet_fast  # noqa: E402
from alexnet_fast import nn as fast_nn  # noqa: E402
from alexnet_fast import onnx_export  # noqa: E402
from alexnet_fast.models import alexnet  # noqa: E402
from _function_module import FunctionModule  # noqa: E402

RUNTIMES = ["onnxruntime", pytest.param("openvino", marks=pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None, reason="OpenVINO is optional (pip install openvino)"))]
CPU_BACKENDS = ["cpu", pytest.param("triton", marks=pytest.mark.skipif(
    "triton" not in alexnet_fast.available_backends("cpu"), reason="needs triton and TRITON_INTERPRET=1"))]
RTOL = 1e-5  # fp32 in the runtime against PyTorch in float64


def run(runtime: str, path, x: torch.Tensor) -> list[torch.Tensor]:
    if runtime == "onnxruntime":
        return onnx_export.run_onnxruntime(path, x)
    import openvino

    # OpenVINO's CPU plugin computes in bfloat16 by default on CPUs with
    # bfloat16 instructions (AMX, AVX512-BF16): ask for float32.
    compiled = openvino.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    results = compiled([x.numpy()])
    return [torch.from_numpy(results[compiled.output(i)].copy()) for i in range(len(compiled.outputs))]


def assert_matches(got, want, name="", floor_share=1e-2):
    """fp32 against float64: RTOL relative to each value, with a floor of
    RTOL x floor_share x the largest value (cancellation in long sums)."""
    assert got.shape == want.shape, f"{name}: shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    if want.dtype == torch.int64:
        assert torch.equal(got, want), name
        return
    floor = want.abs().max().item()
    torch.testing.assert_close(got.double(), want.double(), rtol=RTOL, atol=RTOL * floor * floor_share + 1e-30,
                               msg=lambda m: f"{name}: {m}")


def reference_lrn(x, size, alpha, beta, k, relu=True):
    x = x.double()
    return F.local_response_norm(x.relu() if relu else x, size, alpha, beta, k)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """exported(key, module, example) -> the ONNX file of ``module``, written
    once per key: the runtimes' runs of a case share one export."""
    folder = tmp_path_factory.mktemp("onnx")
    paths = {}

    def export(key: str, module: torch.nn.Module, example: torch.Tensor):
        if key not in paths:
            paths[key] = onnx_export.export_onnx(module, folder / f"{len(paths)}.onnx", example)
        return paths[key]

    return export


# --- LRN ---------------------------------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("relu", [True, False], ids=["relu_lrn", "local_response_norm"])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 9])
def test_lrn(exported, size, relu, runtime):
    """Odd sizes become one LRN node; even ones, where ONNX's window is not
    PyTorch's, the explicit average of squares (and never an LRN node)."""
    function = alexnet_fast.relu_lrn if relu else alexnet_fast.local_response_norm
    module = FunctionModule(lambda t: function(t, size, 0.5, 0.75, 2.0))
    path = exported(f"lrn-{size}-{relu}", module, torch.randn(2, 7, 5, 6))
    types = onnx_export.onnx_node_types(path)
    if size % 2:
        assert types == (["Relu"] if relu else []) + ["LRN"]
    else:
        assert "LRN" not in types and "AveragePool" in types
    x = torch.randn(3, 7, 5, 6) * 3  # another batch size than the export's
    (got,) = run(runtime, path, x)
    assert_matches(got, reference_lrn(x, size, 0.5, 0.75, 2.0, relu), f"size {size}")


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("shape", [(2, 5, 11), (2, 4, 3, 2, 5), (1, 3, 4, 4)], ids=["3d", "5d", "size>channels"])
@pytest.mark.parametrize("size", [4, 7])
def test_lrn_other_ranks(exported, size, shape, runtime):
    x = torch.randn(shape) * 3
    module = FunctionModule(lambda t: alexnet_fast.relu_lrn(t, size, 1e-2, 0.75, 1.0))
    path = exported(f"lrn-{size}-{shape}", module, x)
    (got,) = run(runtime, path, x)
    assert_matches(got, reference_lrn(x, size, 1e-2, 0.75, 1.0), f"{shape}")


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("size", [3, 4])
def test_lrn_groups(exported, size, runtime):
    """groups reaches the file as reshapes around the LRN (ops/channel_groups.py): each
    block of channels is normalised on its own, in the fused op too."""
    x = torch.randn(2, 8, 5, 5) * 3
    expected = torch.cat([reference_lrn(half, size, 0.5, 0.75, 2.0) for half in x.chunk(2, 1)], 1)
    module = FunctionModule(lambda t: alexnet_fast.relu_lrn(t, size, 0.5, 0.75, 2.0, groups=2))
    (got,) = run(runtime, exported(f"lrn-groups-{size}", module, x), x)
    assert_matches(got, expected, "relu_lrn")
    module = FunctionModule(lambda t: alexnet_fast.relu_lrn_max_pool2d(t, size, 0.5, 0.75, 2.0, groups=2))
    (got,) = run(runtime, exported(f"fused-groups-{size}", module, x), x)
    assert_matches(got, F.max_pool2d(expected, 3, 2), "relu_lrn_max_pool2d")


# --- max-pool ----------------------------------------------------------------------
POOLS = [  # kernel_size, stride, padding, dilation, ceil_mode, input (H, W)
    pytest.param(3, 2, 0, 1, False, (13, 13), id="alexnet"),
    pytest.param(3, 2, 1, 1, True, (10, 9), id="pad-ceil"),  # ceil_mode adds a column and a row
    pytest.param(3, 3, 1, 1, True, (5, 5), id="ceil-drops-last"),  # a window starting in the padding is dropped
    pytest.param(2, 4, 0, 1, True, (5, 9), id="stride>kernel-ceil"),  # the extra row and column reach past the kernel
    pytest.param((3, 2), (2, 1), (1, 0), (2, 1), False, (11, 7), id="rect-dilated"),
    pytest.param(17, 1, 0, 1, False, (19, 18), id="289-positions"),  # int32 window positions
]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode,size", POOLS)
def test_max_pool2d(exported, kernel, stride, padding, dilation, ceil_mode, size, runtime):
    args = (kernel, stride, padding, dilation, ceil_mode)
    x = torch.randn(2, 3, *size)
    path = exported(f"pool-{args}-{size}", FunctionModule(lambda t: alexnet_fast.max_pool2d(t, *args)), x)
    assert "MaxPool" in onnx_export.onnx_node_types(path)
    (got,) = run(runtime, path, x)
    assert_matches(got, F.max_pool2d(x.double(), *args))


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode,size", POOLS)
def test_max_pool2d_indices(exported, kernel, stride, padding, dilation, ceil_mode, size, runtime):
    """return_indices: the values and PyTorch's int64 indices (for max_unpool2d)."""
    args = (kernel, stride, padding, dilation, ceil_mode)
    x = torch.randn(2, 3, *size)
    path = exported(f"pool-indices-{args}-{size}", fast_nn.MaxPool2d(*args, return_indices=True), x)
    values, indices = run(runtime, path, x)
    want_values, want_indices = F.max_pool2d(x.double(), *args, return_indices=True)
    assert_matches(values, want_values, "values")
    assert_matches(indices, want_indices, "indices")


def test_max_pool2d_unbatched(tmp_path):
    x = torch.randn(4, 9, 9)
    module = FunctionModule(lambda t: alexnet_fast.max_pool2d(t, 3, 2, 1, ceil_mode=True))
    path = onnx_export.export_onnx(module, tmp_path / "pool.onnx", x, dynamic_batch=False)
    (got,) = run("onnxruntime", path, x)
    assert_matches(got, F.max_pool2d(x.double(), 3, 2, 1, ceil_mode=True))


# --- fused --------------------------------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("size,padding,ceil_mode,hw", [(5, 0, False, (13, 13)), (5, 1, True, (10, 9)),
                                                      (4, 0, True, (8, 8)), (2, 1, False, (7, 6))])
def test_relu_lrn_max_pool2d(exported, size, padding, ceil_mode, hw, runtime):
    x = torch.randn(2, 6, *hw) * 10
    module = fast_nn.ReLULRNMaxPool2d(size, 1e-2, 0.75, 2.0, 3, 2, padding, ceil_mode)
    path = exported(f"fused-{size}-{padding}-{ceil_mode}-{hw}", module, x)
    types = onnx_export.onnx_node_types(path)
    if size % 2 and not ceil_mode:
        assert types == ["Relu", "LRN", "MaxPool"]
    (got,) = run(runtime, path, x)
    expected = F.max_pool2d(reference_lrn(x, size, 1e-2, 0.75, 2.0), 3, 2, padding, ceil_mode=ceil_mode)
    assert_matches(got, expected)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_every_backend_exports_the_same_graph(tmp_path, backend):
    """Each backend's operators (C++, Triton's interpreter) lower alike."""
    x = torch.randn(2, 6, 10, 9) * 10
    modules = [fast_nn.ReLULRN(4, 1e-2, 0.75, 2.0, backend=backend), fast_nn.MaxPool2d(3, 2, 1, ceil_mode=True,
               backend=backend), fast_nn.ReLULRNMaxPool2d(5, 1e-2, 0.75, 2.0, 3, 2, 1, True, backend=backend)]
    references = [reference_lrn(x, 4, 1e-2, 0.75, 2.0), F.max_pool2d(x.double(), 3, 2, 1, ceil_mode=True),
                  F.max_pool2d(reference_lrn(x, 5, 1e-2, 0.75, 2.0), 3, 2, 1, ceil_mode=True)]
    node_types = [["Mul", "Reshape", "AveragePool", "Shape", "Reshape", "Mul", "Add", "Pow", "Div"],
                  ["Pad", "MaxPool"], ["Relu", "LRN", "Pad", "MaxPool"]]
    for i, (module, expected, types) in enumerate(zip(modules, references, node_types)):
        path = onnx_export.export_onnx(module, tmp_path / f"{i}.onnx", x)
        assert onnx_export.onnx_node_types(path)[-len(types):] == types
        (got,) = run("onnxruntime", path, x)
        assert_matches(got, expected, type(module).__name__)


# --- models ---------------------------------------------------------------------------
def paper_nodes(groups):
    """The paper model's ONNX nodes: with groups=2 each ReLU-LRN-pool block sits between
    the two Reshapes that put the towers in the batch (a per-tower LRN)."""
    block = ["Relu", "LRN", "MaxPool"] if groups == 1 else ["Reshape", "Relu", "LRN", "MaxPool", "Reshape"]
    return (["Conv", *block] * 2 + ["Conv", "Relu"] * 3 + ["MaxPool", "Reshape"] + ["Gemm", "Relu"] * 2
            + ["Gemm"])


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("variant,groups", [("paper", 1), pytest.param("paper", 2, marks=pytest.mark.slow),
                                            ("torchvision", 1)],
                         ids=["paper", "paper-groups2", "torchvision"])
def test_model(exported, variant, groups, runtime):
    """The fast model's file, for any batch size, against the reference model
    (plain PyTorch) with the same weights in float64, to 1e-5 of the largest logit."""
    torch.manual_seed(groups)
    fast = alexnet(variant, num_classes=10, groups=groups)
    reference = alexnet(variant, num_classes=10, groups=groups, backend="reference").double().eval()
    reference.load_state_dict(fast.state_dict())
    scale = 50.0 if variant == "paper" else 1.0
    size = fast.input_size
    path = exported(f"{variant}-{groups}", fast, torch.randn(1, 3, size, size) * scale)
    assert fast.training  # the export ran in eval mode and gave the mode back
    types = onnx_export.onnx_node_types(path)
    if variant == "paper":
        assert types == paper_nodes(groups)
    import onnx

    model = onnx.load(str(path))
    assert {entry.domain for entry in model.opset_import} == {""}  # standard operators only
    assert not model.functions
    for batch in (1, 3):
        x = torch.randn(batch, 3, size, size) * scale
        (got,) = run(runtime, path, x)
        with torch.no_grad():
            assert_matches(got, reference(x.double()), f"batch {batch}", floor_share=1.0)


def test_model_with_return_indices(tmp_path):
    """A model that keeps a max-pool's indices and unpools with them."""

    class Unpool(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.pool = fast_nn.MaxPool2d(3, 2, 1, ceil_mode=True, return_indices=True)

        def forward(self, x):
            values, indices = self.pool(self.conv(x))
            return F.max_unpool2d(values, indices, 3, 2, 1, output_size=(14, 14)), indices

    model = Unpool()
    x = torch.randn(2, 3, 16, 16)
    path = onnx_export.export_onnx(model, tmp_path / "unpool.onnx", x)
    unpooled, indices = run("onnxruntime", path, x)
    with torch.no_grad():
        reference = F.max_pool2d(model.conv(x).double(), 3, 2, 1, ceil_mode=True, return_indices=True)[1]
        expected = model(x)[0]
    assert_matches(indices, reference, "indices")
    assert_matches(unpooled, expected.double(), "unpooled")


def test_opsets_and_metadata(tmp_path):
    import onnx

    x = torch.randn(1, 6, 9, 9)
    module = fast_nn.ReLULRNMaxPool2d(5, 1e-2, 0.75, 2.0)
    for opset in (18, 21):
        path = onnx_export.export_onnx(module, tmp_path / f"op{opset}.onnx", x, opset=opset,
                                       metadata={"classes": '["a", "b"]'})
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
        assert [entry.version for entry in model.opset_import if entry.domain == ""] == [opset]
        assert {p.key: p.value for p in model.metadata_props} == {"classes": '["a", "b"]'}
        assert onnx_export.compare_with_onnxruntime(path, module, torch.randn(2, 6, 9, 9)) < RTOL


def test_bad_arguments(tmp_path):
    module = fast_nn.ReLULRN(5)
    x = torch.randn(1, 6, 4, 4)
    with pytest.raises(ValueError, match=r"opset must be an int >= 18 .*; got 13"):
        onnx_export.export_onnx(module, tmp_path / "m.onnx", x, opset=13)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module; got function"):
        onnx_export.export_onnx(lambda t: t, tmp_path / "m.onnx", x)
    with pytest.raises(TypeError, match="example_input must be a tensor or a tuple of tensors; got list"):
        onnx_export.export_onnx(module, tmp_path / "m.onnx", [x])


def test_public_name():
    assert alexnet_fast.export_onnx is onnx_export.export_onnx


# --- the `export` command ------------------------------------------------------------
def write_checkpoint(path, variant="paper", classes=("cat", "dog", "emu"), groups=1, **extra):
    """A checkpoint with the keys `alexnet-fast train` writes to best.pt."""
    model = alexnet(variant, num_classes=len(classes), groups=groups)
    crop = model.input_size
    stats = dict(mean=[120.0, 110.0, 100.0], eigvals=[0.1, 0.01, 0.001], eigvecs=torch.eye(3).tolist(), images=9)
    torch.save(dict(model=model.state_dict(), classes=list(classes), stats=stats, epoch=1, crop=crop,
                    variant=variant, **extra), path)
    return model


def test_export_command_from_checkpoint(tmp_path, capsys):
    """The file of a (two-tower) checkpoint: its weights, labels and pre-processing."""
    import json

    from alexnet_fast import export

    variant, groups = "paper", 2
    model = write_checkpoint(tmp_path / "best.pt", variant, groups=groups,
                             args=dict(input_scale=0.5, resize=240, groups=groups))
    out = tmp_path / "model.onnx"
    assert export.main(["--onnx", str(out), "--checkpoint", str(tmp_path / "best.pt")]) == 0
    assert "ONNX Runtime matches PyTorch" in capsys.readouterr().err
    import onnx

    metadata = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(metadata["classes"]) == ["cat", "dog", "emu"]
    assert json.loads(metadata["mean"]) == [120.0, 110.0, 100.0]
    assert (metadata["input_scale"], metadata["resize"], metadata["crop"]) == ("0.5", "240", str(model.input_size))
    x = torch.randn(2, 3, model.input_size, model.input_size) * 50
    reference = alexnet(variant, num_classes=3, groups=groups, backend="reference").double().eval()
    reference.load_state_dict(model.state_dict())
    (got,) = run("onnxruntime", out, x)
    with torch.no_grad():
        assert_matches(got, reference(x.double()), floor_share=1.0)


def test_export_command_errors(tmp_path, capsys):
    from alexnet_fast import export

    write_checkpoint(tmp_path / "best.pt", "torchvision")
    cases = [
        (["--onnx", str(tmp_path / "m.onnx"), "--checkpoint", str(tmp_path / "none.pt")],
         "none.pt: no such checkpoint"),
        (["--onnx", str(tmp_path / "m.pt")], "must end with .onnx"),
        (["--onnx", str(tmp_path / "m.onnx"), "--checkpoint", str(tmp_path / "best.pt"), "--variant", "paper"],
         "--variant paper, but"),
        (["--onnx", str(tmp_path / "m.onnx"), "--opset", "13"], "opset must be an int >= 18"),
        (["--onnx", str(tmp_path / "m.onnx"), "--variant", "torchvision", "--groups", "2"],
         "groups must be 1 for variant='torchvision'; got 2"),
        (["--onnx", str(tmp_path / "m.onnx"), "--num-classes", "0"], "num_classes must be an int >= 1; got 0"),
    ]
    for argv, message in cases:
        assert export.main(argv) == 2
        assert message in capsys.readouterr().err
    torch.save(dict(model={}, classes=["a"], variant="tiny", stats=dict(mean=[0, 0, 0])), tmp_path / "tiny.pt")
    assert export.main(["--onnx", str(tmp_path / "m.onnx"), "--checkpoint", str(tmp_path / "tiny.pt")]) == 2
    assert "variant 'tiny' is not an AlexNet" in capsys.readouterr().err
