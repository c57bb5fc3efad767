"""Checkpoints written by `alexnet-fast train`, read for export and evaluation.

Both files the trainer writes, ``OUTPUT/checkpoint.pt`` and ``OUTPUT/best.pt``,
are dicts read with plain ``torch.load``. The keys used here:

    model      the network's state_dict (never wrapped in DistributedDataParallel)
    variant    "paper" or "torchvision" ("tiny" is the trainer's smoke-test CNN)
    classes    class names, in label order (the training folders, sorted)
    stats      the training set's statistics; ``stats["mean"]`` is the RGB mean (0..255)
    crop       the network's input size
    args       checkpoint.pt only: the training arguments; ``input_scale``,
               ``resize`` and ``groups`` are read from it

    input_scale, resize, groups
               best.pt's own keys for the same (written by the trainer)

A best.pt without those keys (written before they were added) reads them from
a ``checkpoint.pt`` beside it (the trainer writes both to the same folder),
else the input scale and rescale size are the defaults below (the assumption
is reported) and ``groups`` follows from conv2's weight.
"""
from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch

from alexnet_fast.models import INPUT_SIZE, VARIANTS, AlexNet, alexnet

DEFAULT_INPUT_SCALE = 1.0  # the paper's: mean-subtracted 0..255 pixels
DEFAULT_RESIZE = 256


class CheckpointError(Exception):
    """A checkpoint that cannot be used (the message names the file and the problem)."""


@dataclass
class Checkpoint:
    """What a network and its pre-processing need from a training checkpoint."""

    path: Path
    variant: str
    groups: int
    classes: list[str]
    state_dict: dict
    crop: int
    mean: list[float]
    input_scale: float
    resize: int
    notes: list[str] = field(default_factory=list)  # the assumptions made

    def build(self, backend: str = "auto") -> AlexNet:
        """The network with the checkpoint's weights, in eval mode."""
        model = alexnet(self.variant, num_classes=len(self.classes), groups=self.groups, backend=backend)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as error:
            raise CheckpointError(f"{self.path}: the weights do not fit alexnet({self.variant!r}, "
                                  f"num_classes={len(self.classes)}, groups={self.groups}): {error}") from None
        return model.eval()

    def metadata(self) -> dict[str, str]:
        """The pre-processing and labels, as strings (ONNX metadata_props)."""
        return dict(variant=self.variant, groups=str(self.groups), classes=json.dumps(self.classes),
                    mean=json.dumps(self.mean), input_scale=repr(self.input_scale), resize=str(self.resize),
                    crop=str(self.crop))


def _load(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # checkpoint.pt also holds every process's RNG state (NumPy's among
        # them), which only a full unpickling reads.
        return torch.load(path, map_location="cpu", weights_only=False)


def _training_args(path: Path, state: dict, notes: list[str]) -> dict:
    if isinstance(state.get("args"), dict):
        return state["args"]
    if "input_scale" in state:
        return {}
    sibling = path.with_name("checkpoint.pt")
    if sibling != path and sibling.is_file():
        try:
            args = torch.load(sibling, map_location="cpu", weights_only=False, mmap=True).get("args")
        except Exception as error:  # a damaged sibling only loses the defaults it would give
            notes.append(f"could not read {sibling} for the training arguments ({type(error).__name__})")
            return {}
        if isinstance(args, dict):
            notes.append(f"input scale and rescale size from {sibling}")
            return args
    return {}


def read_checkpoint(path, input_scale: float | None = None, resize: int | None = None) -> Checkpoint:
    """Reads a checkpoint of `alexnet-fast train`; ``input_scale`` and
    ``resize`` override what the checkpoint says (or does not say)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        state = _load(path)
    except Exception as error:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or not {"model", "variant", "classes"} <= set(state):
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: not a checkpoint of `alexnet-fast train` (needs the keys model, variant "
                              f"and classes; found {keys})")
    variant = state["variant"]
    if variant not in VARIANTS:
        raise CheckpointError(f"{path}: variant {variant!r} is not an AlexNet ({' or '.join(VARIANTS)}); "
                              "the trainer's 'tiny' CNN is for smoke tests only")
    notes: list[str] = []
    args = _training_args(path, state, notes)
    weights = state["model"]
    groups = args.get("groups", state.get("groups"))
    if groups is None:  # conv2 sees 96 / groups input channels (the paper's two towers: 48)
        groups = 96 // weights["features.conv2.weight"].shape[1] if variant == "paper" else 1
    if input_scale is None:
        input_scale = args.get("input_scale", state.get("input_scale"))
        if input_scale is None:
            input_scale = DEFAULT_INPUT_SCALE
            notes.append(f"the checkpoint does not record its input scale: {input_scale} assumed (--input-scale)")
    if resize is None:
        resize = int(args.get("resize", state.get("resize", DEFAULT_RESIZE)))
    stats = state.get("stats") or {}
    if "mean" not in stats:
        raise CheckpointError(f"{path}: no training-set mean (stats) to subtract from the images")
    crop = int(state.get("crop") or INPUT_SIZE[variant])
    return Checkpoint(path, variant, int(groups), list(state["classes"]), weights, crop, [float(m) for m in stats["mean"]],
                      float(input_scale), int(resize), notes)
