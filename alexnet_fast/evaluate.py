"""`alexnet-fast eval`: top-1 and top-5 error of one network or of an
ensemble, on the centre crop and on the paper's 10 crops.

    alexnet-fast eval --data DIR --checkpoint runs/a/best.pt
    alexnet-fast eval --data DIR --checkpoint runs/a/best.pt runs/b/best.pt alexnet.onnx

Each ``--checkpoint`` is a checkpoint of `alexnet-fast train` (run on any
backend, ``reference`` too) or an ONNX file written by `alexnet-fast export
--checkpoint` (run by ONNX Runtime). Images are pre-processed as in training
(alexnet_fast.train.data): rescaled, centre-cropped to 256x256, cropped to
each network's input, minus its training set's mean. A network's 10-crop
prediction is the mean of the softmax outputs of its 10 crops (four corners,
centre, and their mirrors); an ensemble's is the mean of its members'
softmax outputs, as Krizhevsky et al. (2012) averaged several CNNs. Top-k is
shown only when there are more than k classes.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from alexnet_fast._backends import BACKENDS
from alexnet_fast.checkpoints import DEFAULT_INPUT_SCALE, DEFAULT_RESIZE, CheckpointError, read_checkpoint
from alexnet_fast.standalone import run_subcommand
from alexnet_fast.train import data as D

TOP_K = (1, 5)
CENTRE, TEN_CROPS = "centre", "10 crops"
CENTRE_CROP_INDEX = 4  # in data.ten_crops: four corners, then the centre, then the mirrors


@dataclass
class Network:
    """One member of the evaluation: its labels, pre-processing and logits."""

    name: str
    classes: list[str]
    crop: int
    mean: torch.Tensor  # RGB, 0..255
    input_scale: float
    resize: int
    logits: Callable[[torch.Tensor], torch.Tensor]  # (B, 3, crop, crop) float32 -> (B, classes)
    notes: list[str] = field(default_factory=list)


def load_checkpoint_network(path: Path, backend: str, device: torch.device, input_scale: float | None) -> Network:
    checkpoint = read_checkpoint(path, input_scale=input_scale)
    model = checkpoint.build(backend).to(device)

    @torch.no_grad()
    def logits(images: torch.Tensor) -> torch.Tensor:
        return model(images.to(device)).float().cpu()

    return Network(str(path), checkpoint.classes, checkpoint.crop, torch.tensor(checkpoint.mean),
                   checkpoint.input_scale, checkpoint.resize, logits, checkpoint.notes)


def load_onnx_network(path: Path, input_scale: float | None) -> Network:
    """An ONNX file of `alexnet-fast export --checkpoint`, run by ONNX Runtime on CPU."""
    try:
        import onnxruntime
    except ImportError:
        raise CheckpointError(f"{path}: running an ONNX file needs onnxruntime (pip install onnxruntime)") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    missing = [key for key in ("classes", "mean", "crop") if key not in metadata]
    if missing:
        raise CheckpointError(f"{path}: no {', '.join(missing)} in its metadata: write it with "
                              "`alexnet-fast export --checkpoint PATH.pt`")
    input_name = session.get_inputs()[0].name

    def logits(images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {input_name: images.numpy()})[0])

    scale = float(metadata.get("input_scale", DEFAULT_INPUT_SCALE)) if input_scale is None else input_scale
    resize = int(metadata.get("resize", DEFAULT_RESIZE))
    return Network(str(path), json.loads(metadata["classes"]), int(metadata["crop"]),
                   torch.tensor(json.loads(metadata["mean"])), scale, resize, logits)


class Images(torch.utils.data.Dataset):
    """(uint8 3 x resize x resize image, label); None for an unreadable file."""

    def __init__(self, samples, resize: int):
        self.samples, self.resize = samples, resize

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            return D.load_256(path, self.resize), label
        except Exception as error:
            print(f"warning: skipping unreadable image {path}: {type(error).__name__}: {error}", file=sys.stderr)
            return None


@dataclass
class Tally:
    """Images whose label is among the k most probable classes, per view and k."""

    correct: dict = field(default_factory=dict)

    def add(self, view: str, probabilities: torch.Tensor, labels: torch.Tensor) -> None:
        for k in TOP_K:
            top = probabilities.topk(min(k, probabilities.shape[1]), dim=1).indices
            hits = int((top == labels[:, None]).any(dim=1).sum())
            self.correct[view, k] = self.correct.get((view, k), 0) + hits

    def errors(self, images: int) -> dict[str, float]:
        return {f"{view} top-{k}": 1.0 - hits / images for (view, k), hits in self.correct.items()}


def _views(image: torch.Tensor, crop: int, ten_crop: bool) -> torch.Tensor:
    """The 10 crops (V = 10) or the centre crop (V = 1) of one image: V x 3 x crop x crop."""
    return D.ten_crops(image, crop) if ten_crop else D.center_crop(image, crop).unsqueeze(0)


def score_batch(networks: list[Network], images: torch.Tensor, labels: torch.Tensor, ten_crop: bool,
                tallies: list[Tally]) -> None:
    """Adds one batch to each network's tally and, for several networks, to
    the ensemble's (the last tally)."""
    ensemble: dict[str, torch.Tensor] = {}
    for network, tally in zip(networks, tallies):
        views = torch.stack([_views(image, network.crop, ten_crop) for image in images])  # B x V x 3 x c x c
        inputs = D.normalize(views, network.mean, None, network.input_scale)
        probabilities = network.logits(inputs.flatten(0, 1)).float().softmax(-1).view(*views.shape[:2], -1)
        per_view = {CENTRE: probabilities[:, CENTRE_CROP_INDEX if ten_crop else 0]}
        if ten_crop:
            per_view[TEN_CROPS] = probabilities.mean(1)
        for view, p in per_view.items():
            tally.add(view, p, labels)
            ensemble[view] = ensemble.get(view, 0) + p / len(networks)
    if len(networks) > 1:
        for view, p in ensemble.items():
            tallies[-1].add(view, p, labels)


def evaluate(networks: list[Network], samples, *, ten_crop: bool = True, batch_size: int = 16, workers: int = 0,
             progress: bool = False) -> dict:
    """Top-k errors of each network (and of their ensemble, for several) on
    ``samples`` ((path, label) pairs): {"images", "classes", "errors":
    [{"name", column: error ...}, ...]}, the ensemble last."""
    loader = torch.utils.data.DataLoader(Images(samples, networks[0].resize), batch_size=batch_size,
                                         num_workers=workers, collate_fn=D.collate)
    names = [network.name for network in networks] + ([f"ensemble of {len(networks)}"] if len(networks) > 1 else [])
    tallies = [Tally() for _ in names]
    bar = _progress_bar(len(loader), progress)
    images = 0
    for batch in loader:
        if batch is not None:
            score_batch(networks, *batch, ten_crop, tallies)
            images += len(batch[1])
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    classes = len(networks[0].classes)
    columns = shown_columns(classes, ten_crop)
    errors = [dict(name=name, **{c: e for c, e in tally.errors(images).items() if c in columns}) if images
              else dict(name=name) for name, tally in zip(names, tallies)]
    return dict(images=images, classes=classes, errors=errors)


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="eval", unit="batch", leave=False, file=sys.stderr)


def shown_columns(classes: int, ten_crop: bool) -> list[str]:
    """Top-k columns for more than k classes."""
    views = [CENTRE, TEN_CROPS] if ten_crop else [CENTRE]
    return [f"{view} top-{k}" for view in views for k in TOP_K if classes > k]


def format_report(result: dict, ten_crop: bool) -> str:
    columns = shown_columns(result["classes"], ten_crop)
    width = max(len("network"), *(len(row["name"]) for row in result["errors"]))
    lines = [f"{result['images']} images, {result['classes']} classes; error (1 - accuracy)",
             "  ".join(["network".ljust(width), *(c.rjust(16) for c in columns)])]
    for row in result["errors"]:
        lines.append("  ".join([row["name"].ljust(width), *(f"{row[c]:16.4f}" for c in columns)]))
    if not columns:
        lines.append("(one class: no error to report)")
    return "\n".join(lines)


# --- command line ---------------------------------------------------------------------
NAME = "eval"  # the subcommand


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Adds the `eval` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser(
        NAME, help="top-1/top-5 error of checkpoints or ONNX files, alone and as an ensemble",
        description="Scores networks trained by `alexnet-fast train` (checkpoints, or ONNX files written by "
        "`alexnet-fast export --checkpoint`) on a folder of labelled images: top-1 and top-5 error on the "
        "centre crop and the 10 crops, for each and for the average of their softmax outputs.")
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="DIR/val/<class>/<image> (or DIR/<class>/<image> when DIR has no val/)")
    parser.add_argument("--checkpoint", required=True, nargs="+", metavar="PATH",
                        help="checkpoint .pt files and/or exported .onnx files; several: also their ensemble")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="fast operators' backend for checkpoints (default auto; reference: plain PyTorch)")
    parser.add_argument("--device", default=None, help="cpu or cuda for checkpoints (default: cuda if available)")
    parser.add_argument("--ten-crop", action=argparse.BooleanOptionalAction, default=True,
                        help="also score the 10-crop average (default: yes)")
    parser.add_argument("--batch-size", type=int, default=16, metavar="N", help="images per batch (default 16)")
    parser.add_argument("--workers", type=int, default=2, metavar="N", help="image-loading processes (default 2)")
    parser.add_argument("--input-scale", type=float, default=None, metavar="S",
                        help="override every network's input scale (see `alexnet-fast train --input-scale`)")
    parser.add_argument("--json", metavar="PATH.json", help="also write the errors as JSON")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar (default: when stderr is a terminal)")
    return parser


def _networks(args) -> list[Network]:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    networks = []
    for text in args.checkpoint:
        path = Path(text)
        if path.suffix.lower() == ".onnx":
            networks.append(load_onnx_network(path, args.input_scale))
        else:
            networks.append(load_checkpoint_network(path, args.backend, device, args.input_scale))
    first = networks[0]
    for network in networks[1:]:
        if network.classes != first.classes:
            raise CheckpointError(f"{network.name} and {first.name} do not have the same classes: an ensemble "
                                  "averages the outputs of networks trained on the same labels")
        if network.resize != first.resize:
            raise CheckpointError(f"{network.name} rescales images to {network.resize}, {first.name} to "
                                  f"{first.resize}")
    return networks


def _samples(data: Path, classes: list[str]):
    root = data / "val" if (data / "val").is_dir() else data
    split = D.scan_split(root, classes)
    for problem in split.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return root, split.samples


def run(args: argparse.Namespace) -> int:
    """Runs `eval` with parsed arguments; returns the exit status."""
    try:
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1; got {args.batch_size}")
        if args.workers < 0:
            raise ValueError(f"--workers must be >= 0; got {args.workers}")
        networks = _networks(args)
        root, samples = _samples(Path(args.data), networks[0].classes)
    except (CheckpointError, D.DataError, ValueError) as error:
        print(f"alexnet-fast eval: error: {error}", file=sys.stderr)
        return 2
    for network in networks:
        for note in network.notes:
            print(f"note: {network.name}: {note}", file=sys.stderr)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    print(f"scoring {len(networks)} network(s) on {len(samples)} images in {root}", file=sys.stderr)
    result = evaluate(networks, samples, ten_crop=args.ten_crop, batch_size=args.batch_size, workers=args.workers,
                      progress=progress)
    print(format_report(result, args.ten_crop))
    if args.json:
        Path(args.json).write_text(json.dumps(dict(result, data=str(root)), indent=1) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0 if result["images"] else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m alexnet_fast.evaluate [options]``."""
    return run_subcommand(NAME, add_parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
