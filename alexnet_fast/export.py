"""`alexnet-fast export`: a trained (or a freshly initialised) AlexNet to an
ONNX file that ONNX Runtime and OpenVINO run without alexnet_fast.

    alexnet-fast export --onnx alexnet.onnx --checkpoint runs/paper/best.pt
    python -m alexnet_fast.export --onnx alexnet.onnx --variant torchvision

With ``--checkpoint`` the file also records what `alexnet-fast eval` needs
to score it: the class names, the training-set mean, the input scale and the
rescale size (ONNX metadata_props). After writing, the file is run in ONNX
Runtime (when installed) on a random batch and compared with PyTorch.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import torch

from alexnet_fast import __version__
from alexnet_fast.checkpoints import CheckpointError, read_checkpoint
from alexnet_fast.models import VARIANTS, alexnet
from alexnet_fast.onnx_export import DEFAULT_OPSET, MIN_OPSET, compare_with_onnxruntime, export_onnx
from alexnet_fast.standalone import run_subcommand

# The largest difference from PyTorch, relative to the largest logit, that the check accepts (fp32).
CHECK_TOLERANCE = 1e-5
NAME = "export"  # the subcommand


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Adds the `export` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser(
        NAME, help="write a (trained) AlexNet as an ONNX file",
        description="Writes AlexNet as a self-contained ONNX file of standard operators (the fast ops become "
        "Relu, LRN and MaxPool) for ONNX Runtime and OpenVINO, and checks it in ONNX Runtime.")
    parser.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the file to write")
    parser.add_argument("--checkpoint", metavar="PATH.pt",
                        help="checkpoint.pt or best.pt of `alexnet-fast train` (default: fresh weights)")
    parser.add_argument("--variant", choices=VARIANTS, default=None,
                        help="without --checkpoint: the network (default paper); with one: must match it")
    parser.add_argument("--groups", type=int, choices=(1, 2), default=1,
                        help="without --checkpoint: 2 gives the paper's two towers")
    parser.add_argument("--num-classes", type=int, default=1000, metavar="N",
                        help="without --checkpoint: outputs of the last layer (default 1000)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (>= {MIN_OPSET}, "
                        f"default {DEFAULT_OPSET})")
    parser.add_argument("--input-scale", type=float, default=None, metavar="S",
                        help="recorded input scale, overriding the checkpoint's (see `alexnet-fast train`)")
    parser.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                        help="run the file in ONNX Runtime and compare with PyTorch (default: yes, if installed)")
    return parser


def _model_and_metadata(args: argparse.Namespace):
    if args.checkpoint is None:
        variant = args.variant or "paper"
        model = alexnet(variant, num_classes=args.num_classes, groups=args.groups)  # ValueError names the argument
        return model.eval(), dict(variant=variant, source="fresh weights"), []
    checkpoint = read_checkpoint(args.checkpoint, input_scale=args.input_scale)
    if args.variant is not None and args.variant != checkpoint.variant:
        raise CheckpointError(f"--variant {args.variant}, but {args.checkpoint} holds the {checkpoint.variant!r} "
                              "network")
    metadata = dict(checkpoint.metadata(), source=str(checkpoint.path))
    return checkpoint.build(backend="auto"), metadata, checkpoint.notes


def run(args: argparse.Namespace) -> int:
    """Runs `export` with parsed arguments; returns the exit status."""
    out = Path(args.onnx)
    if out.suffix.lower() != ".onnx":
        print(f"alexnet-fast export: error: --onnx {args.onnx!r} must end with .onnx", file=sys.stderr)
        return 2
    try:
        model, metadata, notes = _model_and_metadata(args)
    except (CheckpointError, ValueError) as error:
        print(f"alexnet-fast export: error: {error}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"alexnet-fast export: note: {note}", file=sys.stderr)
    size = model.input_size
    metadata.update(producer=f"alexnet-fast {__version__}")
    started = time.perf_counter()
    print(f"exporting the {model.variant} AlexNet ({model.num_classes} classes, {size}x{size} inputs) to {out} ...",
          file=sys.stderr)
    try:
        export_onnx(model, out, torch.zeros(1, 3, size, size), opset=args.opset, metadata=metadata)
    except (ImportError, ValueError) as error:
        print(f"alexnet-fast export: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    if not args.check:
        return 0
    if importlib.util.find_spec("onnxruntime") is None:
        print("not checked: onnxruntime is not installed (pip install onnxruntime)", file=sys.stderr)
        return 0
    # A batch of 2 (the file takes any batch), at the scale of the paper's inputs (0..255 minus the mean).
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0)) * 50
    difference = compare_with_onnxruntime(out, model, x)
    verdict = "matches" if difference <= CHECK_TOLERANCE else "DIFFERS FROM"
    print(f"ONNX Runtime {verdict} PyTorch: largest difference {difference:.2g} of the largest logit", file=sys.stderr)
    return 0 if difference <= CHECK_TOLERANCE else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m alexnet_fast.export [options]``."""
    return run_subcommand(NAME, add_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
