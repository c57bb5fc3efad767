"""`alexnet-fast train`: its arguments, the defaults that depend on them (the
paper's settings with --data, the demo's without), and the run
(alexnet_fast.train.engine.train).

Also on its own: ``python -m alexnet_fast.train [options]`` (and under torchrun).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from alexnet_fast.cli import argtypes

NAME = "train"

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_data_arguments(parser.add_argument_group("data"))
    _add_model_arguments(parser.add_argument_group("model"))
    _add_optimisation_arguments(parser.add_argument_group("optimisation (the paper's values by default)"))
    _add_run_arguments(parser.add_argument_group("run"))


def _add_data_arguments(data) -> None:
    data.add_argument("--data", metavar="DIR", help="ImageFolder-style dataset: DIR/train/<class>/*.jpg and "
                      "DIR/val/<class>/*.jpg (default: draw a small synthetic dataset)")
    data.add_argument("--output", "-o", metavar="DIR", default="runs/alexnet",
                      help="checkpoints, metrics and caches (default: runs/alexnet)")
    data.add_argument("--workers", type=argtypes.non_negative_int, default=2, metavar="N",
                      help="data-loading worker processes per training process (default 2; 0: in-process)")
    data.add_argument("--resize", type=argtypes.positive_int, default=256, metavar="PX",
                      help="short side after rescaling, then centre crop PXxPX (default 256)")
    data.add_argument("--crop-size", type=argtypes.positive_int, default=None, metavar="PX",
                      help="training/evaluation crop (default: the model's input, 227 paper, 224 torchvision)")
    data.add_argument("--pca-std", type=argtypes.non_negative_float, default=0.1, metavar="S",
                      help="std of the PCA colour-noise coefficients a_i (default 0.1; 0: off)")
    data.add_argument("--input-scale", type=argtypes.positive_float, default=None, metavar="S",
                      help="multiply the mean-subtracted 0..255 input by S (default 1 as in the paper; 0.0167 ~ 1/60 "
                      "for --model torchvision)")
    data.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    data.add_argument("--stats-cache", metavar="PATH.json",
                      help="cache of the training set's mean and RGB covariance (default OUTPUT/train-stats.json)")
    data.add_argument("--synthetic-dir", metavar="DIR", help="where the no --data dataset goes "
                      "(default OUTPUT/synthetic-data)")
    data.add_argument("--synthetic-classes", type=argtypes.positive_int, default=4, metavar="N",
                      help="classes of the synthetic dataset (1-8, default 4)")
    data.add_argument("--synthetic-train", type=argtypes.positive_int, default=50, metavar="N",
                      help="synthetic training images per class (default 50)")
    data.add_argument("--synthetic-val", type=argtypes.positive_int, default=15, metavar="N",
                      help="synthetic validation images per class (default 15)")
    data.add_argument("--limit-train", type=argtypes.positive_int, metavar="N", help=argparse.SUPPRESS)
    data.add_argument("--limit-val", type=argtypes.positive_int, metavar="N", help=argparse.SUPPRESS)


def _add_model_arguments(model) -> None:
    model.add_argument("--model", choices=("paper", "torchvision", "tiny"), default=None,
                       help="AlexNet variant (default paper; demo torchvision); tiny: a small CNN for smoke tests")
    model.add_argument("--groups", type=int, choices=(1, 2), default=1,
                       help="2: the paper's two-tower connectivity (paper variant)")
    model.add_argument("--dropout", type=float, default=0.5, help="dropout before fc6 and fc7 (default 0.5)")
    model.add_argument("--backend", default="auto",
                       help="fast operators' backend: auto, cpu, cuda, triton or reference (default auto)")


def _add_optimisation_arguments(opt) -> None:
    opt.add_argument("--epochs", type=argtypes.positive_int, default=None, help="epochs (default 90; demo 8)")
    opt.add_argument("--batch-size", type=argtypes.positive_int, default=None, metavar="N",
                     help="global batch size (default 128; demo 16)")
    opt.add_argument("--lr", type=argtypes.positive_float, default=None, help="learning rate (default 0.01; demo 0.03)")
    opt.add_argument("--momentum", type=argtypes.non_negative_float, default=0.9, help="SGD momentum (default 0.9)")
    opt.add_argument("--weight-decay", type=argtypes.non_negative_float, default=5e-4,
                     help="weight decay (default 5e-4)")
    opt.add_argument("--lr-factor", type=argtypes.positive_float, default=0.1,
                     help="learning-rate factor when validation error stops improving (default 0.1)")
    opt.add_argument("--lr-patience", type=argtypes.non_negative_int, default=None, metavar="EPOCHS",
                     help="epochs without improvement before the factor applies (default 3; demo 1)")
    opt.add_argument("--lr-threshold", type=argtypes.non_negative_float, default=1e-3,
                     help="smallest error decrease that counts as an improvement (default 0.001)")
    opt.add_argument("--min-lr", type=argtypes.non_negative_float, default=1e-5, help="floor of the learning rate")
    opt.add_argument("--warmup-epochs", type=argtypes.non_negative_int, default=None, metavar="N",
                     help="linear learning-rate warm-up from 0 over the first N epochs (default 0 as in the paper; "
                     "demo 1)")
    opt.add_argument("--clip-grad-norm", type=argtypes.positive_float, default=None, metavar="NORM",
                     help="clip the gradient's global L2 norm (default: off, as in the paper; demo 1)")
    opt.add_argument("--max-steps", type=argtypes.non_negative_int, default=0, metavar="N",
                     help="at most N steps per epoch (default 0: all)")


def _add_run_arguments(run) -> None:
    run.add_argument("--ten-crop", choices=("final", "every", "never"), default="final",
                     help="10-crop evaluation after the final epoch (default), every epoch, or never; "
                     "the centre crop is evaluated every epoch")
    run.add_argument("--resume", nargs="?", const="auto", metavar="PATH",
                     help="continue from PATH (default OUTPUT/checkpoint.pt; starts afresh if there is none)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument("--deterministic", action="store_true",
                     help="torch.use_deterministic_algorithms(True): bit-for-bit repeatable runs and resumes")
    run.add_argument("--device", help="cpu or cuda (default: cuda if available; under torchrun cuda:LOCAL_RANK)")
    run.add_argument("--threads", type=argtypes.positive_int, metavar="N", help="CPU threads of torch per process")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress bars (default: when stderr is a terminal)")
    run.add_argument("--plot", metavar="PATH.png", nargs="?", const="auto",
                     help="draw the loss and error curves (default OUTPUT/curves.png); needs matplotlib")
    run.add_argument("--save-best", action=argparse.BooleanOptionalAction, default=True,
                     help="also keep best.pt, the model with the lowest validation error (default yes)")
    run.add_argument("--keep-best-only", action="store_true",
                     help="write best.pt but no checkpoint.pt (the model and the optimiser's momentum: twice "
                     "best.pt's size, about 500 MB for AlexNet); the run cannot be resumed")
    run.add_argument("--stop-on-divergence", action="store_true",
                     help="end the run when the loss diverges (above 5x its first value; a NaN always ends it)")
    run.add_argument("--json-summary", action="store_true", help="print the last epoch's metrics as JSON")
    run.add_argument("--dump-params", metavar="DIR", help=argparse.SUPPRESS)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME, help="train AlexNet on an ImageFolder directory (or a synthetic demo dataset)",
        description="Trains AlexNet as in Krizhevsky et al. 2012: 256 rescale + centre crop, mean subtraction, "
        "random 227 crops + flips + PCA colour noise, SGD (momentum 0.9, weight decay 5e-4, lr 0.01 / 10 on "
        "plateaus), top-1/top-5 error on the centre crop and 10 crops.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
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
        args.plot = str(Path(args.output) / "curves.png")
    return args


def conflicting_flags(args: argparse.Namespace) -> str | None:
    """Flags that cannot go together, or need a package that is missing."""
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        return "--plot needs matplotlib (pip install matplotlib)"
    if args.keep_best_only and not args.save_best:
        return "--keep-best-only with --no-save-best would keep no model; drop one of them"
    if args.keep_best_only and args.resume:
        return ("--keep-best-only with --resume: it writes no checkpoint.pt, so the run could not be resumed "
                "again; drop one of them")
    return None


def run(args: argparse.Namespace) -> int:
    """Runs `train` with parsed arguments; returns the exit status."""
    from alexnet_fast.train import data, engine, errors

    finish_args(args)
    problem = conflicting_flags(args)
    if problem:
        print(f"alexnet-fast train: error: {problem}", file=sys.stderr)
        return 2
    try:
        return engine.train(args)
    except KeyboardInterrupt:
        print("alexnet-fast train: interrupted (the last finished epoch is in the checkpoint: --resume)",
              file=sys.stderr)
        return 130
    except (data.DataError, errors.SetupError, FloatingPointError) as error:
        print(f"alexnet-fast train: error: {error}", file=sys.stderr)
        return 2
