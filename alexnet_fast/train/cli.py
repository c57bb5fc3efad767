"""`alexnet-fast train`: arguments and entry point.

Hook into the `alexnet-fast` parser with::

    from alexnet_fast.train.cli import add_train_parser, run_train
    add_train_parser(commands)          # commands = parser.add_subparsers(...)
    ... if args.command == "train": return run_train(args)

or run it alone: ``python -m alexnet_fast.train [options]``.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys

EPILOG = """\
With no --data: draws a small dataset of shapes and textures (4 classes,
50 training + 15 validation images each, 256x256 JPEGs) under
OUTPUT/synthetic-data and trains on it with the demo settings, each
overridable: --model torchvision (inputs x 0.0167) --lr 0.03
--batch-size 16 --epochs 8 --warmup-epochs 1 --clip-grad-norm 1
--lr-patience 1. The paper's pipeline (256 rescale, 224 crops, flips, PCA
colour noise, 10-crop evaluation) is the same.

Multi-GPU / multi-machine: torchrun --nproc_per_node N -m alexnet_fast train ...
(DistributedDataParallel; --batch-size is the global batch).
"""

# Demo settings of the no --data run, applied to the flags the user did not give.
# Measured on a shared 2-core CPU: the paper's network (its initialisation, 4
# classes, batch 16) does not get past chance in the ~100 steps a few minutes
# allow at any learning rate tried (0.0003-0.02, with and without clipping);
# torchvision's variant on inputs scaled to ~unit variance does.
DEMO = dict(model="torchvision", lr=0.03, batch_size=16, epochs=8, lr_patience=1,
            warmup_epochs=1, clip_grad_norm=1.0)
PAPER = dict(model="paper", lr=0.01, batch_size=128, epochs=90, lr_patience=3, warmup_epochs=0)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", metavar="DIR", help="ImageFolder-style dataset: DIR/train/<class>/*.jpg and "
                      "DIR/val/<class>/*.jpg (default: draw a small synthetic dataset)")
    data.add_argument("--output", "-o", metavar="DIR", default="runs/alexnet",
                      help="checkpoints, metrics and caches (default: runs/alexnet)")
    data.add_argument("--workers", type=_non_negative_int, default=2, metavar="N",
                      help="data-loading worker processes per training process (default 2; 0: in-process)")
    data.add_argument("--resize", type=_positive_int, default=256, metavar="PX",
                      help="short side after rescaling, then centre crop PXxPX (default 256)")
    data.add_argument("--crop-size", type=_positive_int, default=None, metavar="PX",
                      help="training/evaluation crop (default: the model's input, 227 paper, 224 torchvision)")
    data.add_argument("--pca-std", type=_non_negative_float, default=0.1, metavar="S",
                      help="std of the PCA colour-noise coefficients a_i (default 0.1; 0: off)")
    data.add_argument("--input-scale", type=_positive_float, default=None, metavar="S",
                      help="multiply the mean-subtracted 0..255 input by S (default 1 as in the paper; 0.0167 ~ 1/60 "
                      "for --model torchvision)")
    data.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    data.add_argument("--stats-cache", metavar="PATH.json",
                      help="cache of the training set's mean and RGB covariance (default OUTPUT/train-stats.json)")
    data.add_argument("--synthetic-dir", metavar="DIR", help="where the no --data dataset goes "
                      "(default OUTPUT/synthetic-data)")
    data.add_argument("--synthetic-classes", type=_positive_int, default=4, metavar="N",
                      help="classes of the synthetic dataset (1-8, default 4)")
    data.add_argument("--synthetic-train", type=_positive_int, default=50, metavar="N",
                      help="synthetic training images per class (default 50)")
    data.add_argument("--synthetic-val", type=_positive_int, default=15, metavar="N",
                      help="synthetic validation images per class (default 15)")
    data.add_argument("--limit-train", type=_positive_int, metavar="N", help=argparse.SUPPRESS)
    data.add_argument("--limit-val", type=_positive_int, metavar="N", help=argparse.SUPPRESS)

    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=("paper", "torchvision", "tiny"), default=None,
                       help="AlexNet variant (default paper; demo torchvision); tiny: a small CNN for smoke tests")
    model.add_argument("--groups", type=int, choices=(1, 2), default=1,
                       help="2: the paper's two-tower connectivity (paper variant)")
    model.add_argument("--dropout", type=float, default=0.5, help="dropout before fc6 and fc7 (default 0.5)")
    model.add_argument("--backend", default="auto",
                       help="fast operators' backend: auto, cpu, cuda, triton or reference (default auto)")

    opt = parser.add_argument_group("optimisation (the paper's values by default)")
    opt.add_argument("--epochs", type=_positive_int, default=None, help="epochs (default 90; demo 8)")
    opt.add_argument("--batch-size", type=_positive_int, default=None, metavar="N",
                     help="global batch size (default 128; demo 16)")
    opt.add_argument("--lr", type=_positive_float, default=None, help="learning rate (default 0.01; demo 0.03)")
    opt.add_argument("--momentum", type=_non_negative_float, default=0.9, help="SGD momentum (default 0.9)")
    opt.add_argument("--weight-decay", type=_non_negative_float, default=5e-4, help="weight decay (default 5e-4)")
    opt.add_argument("--lr-factor", type=_positive_float, default=0.1,
                     help="learning-rate factor when validation error stops improving (default 0.1)")
    opt.add_argument("--lr-patience", type=_non_negative_int, default=None, metavar="EPOCHS",
                     help="epochs without improvement before the factor applies (default 3; demo 1)")
    opt.add_argument("--lr-threshold", type=_non_negative_float, default=1e-3,
                     help="smallest error decrease that counts as an improvement (default 0.001)")
    opt.add_argument("--min-lr", type=_non_negative_float, default=1e-5, help="floor of the learning rate")
    opt.add_argument("--warmup-epochs", type=_non_negative_int, default=None, metavar="N",
                     help="linear learning-rate warm-up from 0 over the first N epochs (default 0 as in the paper; "
                     "demo 1)")
    opt.add_argument("--clip-grad-norm", type=_positive_float, default=None, metavar="NORM",
                     help="clip the gradient's global L2 norm (default: off, as in the paper; demo 1)")
    opt.add_argument("--max-steps", type=_non_negative_int, default=0, metavar="N",
                     help="at most N steps per epoch (default 0: all)")

    run = parser.add_argument_group("run")
    run.add_argument("--ten-crop", choices=("final", "every", "never"), default="final",
                     help="10-crop evaluation after the final epoch (default), every epoch, or never; "
                     "the centre crop is evaluated every epoch")
    run.add_argument("--resume", nargs="?", const="auto", metavar="PATH",
                     help="continue from PATH (default OUTPUT/checkpoint.pt; starts afresh if there is none)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument("--deterministic", action="store_true",
                     help="torch.use_deterministic_algorithms(True): bit-for-bit repeatable runs and resumes")
    run.add_argument("--device", help="cpu or cuda (default: cuda if available; under torchrun cuda:LOCAL_RANK)")
    run.add_argument("--threads", type=_positive_int, metavar="N", help="CPU threads of torch per process")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress bars (default: when stderr is a terminal)")
    run.add_argument("--plot", metavar="PATH.png", nargs="?", const="auto",
                     help="draw the loss and error curves (default OUTPUT/curves.png); needs matplotlib")
    run.add_argument("--save-best", action=argparse.BooleanOptionalAction, default=True,
                     help="also keep best.pt, the model with the lowest validation error (default yes)")
    run.add_argument("--json-summary", action="store_true", help="print the last epoch's metrics as JSON")
    run.add_argument("--dump-params", metavar="DIR", help=argparse.SUPPRESS)


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Adds the `train` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "train", help="train AlexNet on an ImageFolder directory (or a synthetic demo dataset)",
        description="Trains AlexNet as in Krizhevsky et al. 2012: 256 rescale + centre crop, mean subtraction, "
        "random 227 crops + flips + PCA colour noise, SGD (momentum 0.9, weight decay 5e-4, lr 0.01 / 10 on "
        "plateaus), top-1/top-5 error on the centre crop and 10 crops.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alexnet-fast")
    add_train_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def finish_args(args: argparse.Namespace) -> argparse.Namespace:
    """Defaults that depend on other flags (paper vs. demo settings, paths)."""
    defaults = DEMO if args.data is None else PAPER
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.input_scale is None:
        # The paper's initialisation expects 0..255 inputs; PyTorch's default
        # (torchvision variant) about unit variance: 1/60 ~ 1 / pixel std.
        args.input_scale = 0.0167 if args.model == "torchvision" else 1.0
    if args.progress is None:
        args.progress = sys.stderr.isatty()
    if args.plot == "auto":
        args.plot = str(__import__("pathlib").Path(args.output) / "curves.png")
    return args


def run_train(args: argparse.Namespace) -> int:
    """Runs `train` with parsed arguments; returns the exit status."""
    from alexnet_fast.train import data, engine

    finish_args(args)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        print("alexnet-fast train: error: --plot needs matplotlib (pip install matplotlib)", file=sys.stderr)
        return 2
    try:
        return engine.train(args)
    except KeyboardInterrupt:
        print("alexnet-fast train: interrupted (the last finished epoch is in the checkpoint: --resume)",
              file=sys.stderr)
        return 130
    except (data.DataError, FloatingPointError) as error:
        print(f"alexnet-fast train: error: {error}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] != ["train"]:
        argv = ["train", *argv]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    return run_train(args)
