"""ONNX export of models on the alexnet_fast operators.

    alexnet_fast.export_onnx(model, "alexnet.onnx", torch.randn(1, 3, 227, 227))

The file holds standard ONNX operators only (the fast ops become Relu, LRN and
MaxPool; alexnet_fast.onnx_lowering says how), so ONNX Runtime and OpenVINO
run it without alexnet_fast. It goes through PyTorch's dynamo exporter,
``torch.onnx.export(..., dynamo=True, custom_translation_table=...)``, with
a translation for each alexnet_fast forward operator. Needs the ``onnx`` and
``onnxscript`` packages; :func:`compare_with_onnxruntime` needs
``onnxruntime``.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import numbers
import warnings
from pathlib import Path

import torch

from alexnet_fast._backends import BACKEND_TABLE

# torch.onnx's own operators (torchlib) are written in opset 18; the exporter
# converts the model to a later opset when asked.
DEFAULT_OPSET = 18
MIN_OPSET = 18
# Every backend's forward op has its own name (the op suffixes of the backend
# table, alexnet_fast/_backends.py): the translation covers them all.
_BACKEND_SUFFIXES = tuple(sorted({suffix for row in BACKEND_TABLE for suffix in row.op_suffix.values()}))


def _require(*packages: str) -> None:
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"ONNX export needs {', '.join(missing)}: pip install {' '.join(missing)}")


def translation_table() -> dict:
    """torch.onnx.export's ``custom_translation_table``: every alexnet_fast
    forward operator (each backend's) to its ONNX lowering."""
    _require("onnx", "onnxscript")
    from alexnet_fast import onnx_lowering

    table = {}
    for name, translation in onnx_lowering.TRANSLATIONS.items():
        for suffix in _BACKEND_SUFFIXES:
            packet = getattr(torch.ops.alexnet_fast, name + suffix, None)
            if packet is not None:
                table[packet.default] = translation
    return table


@contextlib.contextmanager
def _quiet_exporter():
    """Silences two messages of torch.onnx that concern nothing exported here:
    a warning per torchvision operator when torchvision is not installed, and
    torch's pytree warning about its own deprecated LeafSpec."""
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry.level
    registry.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        registry.setLevel(level)


def _check_args(model, example_input, opset) -> tuple[torch.Tensor, ...]:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    if not inputs or not all(isinstance(t, torch.Tensor) for t in inputs):
        raise TypeError(f"example_input must be a tensor or a tuple of tensors; got {type(example_input).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral) or opset < MIN_OPSET:
        raise ValueError(f"opset must be an int >= {MIN_OPSET} (the exporter's own opset); got {opset!r}")
    return inputs


def export_onnx(model: torch.nn.Module, path, example_input, *, opset: int = DEFAULT_OPSET,
                dynamic_batch: bool = True, metadata: dict[str, str] | None = None) -> Path:
    """Writes ``model`` to ``path`` as one self-contained ONNX file (weights
    inside); returns the path.

    model: traced in eval mode (its mode is restored after) without gradients.
    example_input: a tensor or a tuple of tensors, the model's arguments.
    opset: the ONNX opset (>= 18).
    dynamic_batch: the first dimension of every input and output is free
        ("batch"); the other dimensions are those of ``example_input``.
    metadata: strings stored in the file's ``metadata_props``.
    """
    inputs = _check_args(model, example_input, opset)
    _require("onnx", "onnxscript")
    path = Path(path)
    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim("batch", min=1)
        # A batch of 1 would be specialised to the constant 1: trace with 2.
        inputs = tuple(t.expand(2, *t.shape[1:]) if t.dim() and t.shape[0] == 1 else t for t in inputs)
        dynamic_shapes = tuple({0: batch} if t.dim() else None for t in inputs)
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), _quiet_exporter():
            program = torch.onnx.export(
                model, inputs, dynamo=True, custom_translation_table=translation_table(), opset_version=int(opset),
                dynamic_shapes=dynamic_shapes, external_data=False, verbose=False,
            )
    finally:
        model.train(training)
    for key, value in (metadata or {}).items():
        program.model.metadata_props[str(key)] = str(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path), external_data=False)
    return path


def onnx_node_types(path) -> list[str]:
    """The operator types of an ONNX file's main graph, in order."""
    _require("onnx")
    import onnx

    return [node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node]


def run_onnxruntime(path, *inputs: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of an ONNX file run by ONNX Runtime on CPU."""
    _require("onnxruntime")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {arg.name: t.detach().cpu().numpy() for arg, t in zip(session.get_inputs(), inputs, strict=True)}
    return [torch.from_numpy(out) for out in session.run(None, feeds)]


def compare_with_onnxruntime(path, model: torch.nn.Module, *inputs: torch.Tensor) -> float:
    """The largest difference between ONNX Runtime's outputs of ``path`` and
    ``model``'s (eval mode, no gradients), relative to the largest output."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(*inputs)
    finally:
        model.train(training)
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    worst = 0.0
    for got, want in zip(run_onnxruntime(path, *inputs), expected, strict=True):
        want = want.detach().cpu().double()
        scale = want.abs().max().item() or 1.0
        worst = max(worst, (got.double() - want).abs().max().item() / scale)
    return worst
