"""argparse ``type=`` converters shared by the subcommands: each returns the
value or raises ArgumentTypeError with the value it got (argparse adds the
argument's name)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import torch


def _number(text: str, kind: type, accept: Callable[[float], bool], rule: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not accept(value):  # also false for NaN
        raise argparse.ArgumentTypeError(f"must be {rule}; got {text}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v > 0, "a positive integer")


def non_negative_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 0, ">= 0")


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: v > 0, "> 0")


def non_negative_float(text: str) -> float:
    return _number(text, float, lambda v: v >= 0, ">= 0")


def device(text: str) -> torch.device:
    """cpu or cuda[:N], and only a CUDA device that is there."""
    try:
        parsed = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use cpu or cuda") from None
    if parsed.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"{text!r} is not supported; use cpu or cuda")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise argparse.ArgumentTypeError(f"{text!r}: CUDA is not available here ({why}); use --device cpu")
        if (parsed.index or 0) >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r}: there are {torch.cuda.device_count()} CUDA devices")
    return parsed


def output_file(suffix: str) -> Callable[[str], Path]:
    """A path ending with ``suffix`` in a directory that exists."""

    def check(text: str) -> Path:
        path = Path(text)
        if path.suffix.lower() != suffix:
            raise argparse.ArgumentTypeError(f"{text!r} must end with {suffix}")
        if not path.parent.is_dir():
            raise argparse.ArgumentTypeError(f"directory {str(path.parent)!r} does not exist")
        return path

    return check


def comma_list(choices: tuple[str, ...], what: str) -> Callable[[str], tuple[str, ...]]:
    """``a,b``: a non-empty tuple of names from ``choices``."""

    def check(text: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in text.split(",") if name.strip())
        unknown = [name for name in names if name not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(map(repr, unknown)) or '(none given)'}; choose from {','.join(choices)}")
        return names

    return check
