"""What `alexnet-fast train` records: metrics.json / metrics.csv (one row per
epoch), steps.csv (one row per step), the log line of an epoch, and the curves."""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

from alexnet_fast.train.checkpoint import atomic_write_text

METRIC_FIELDS = ["epoch", "lr", "train_loss", "train_top1_err", "val_loss", "val_top1_err", "val_top5_err",
                 "val10_top1_err", "val10_top5_err", "epoch_seconds", "images"]


def write_metrics(history: list[dict], out: Path) -> None:
    atomic_write_text(json.dumps(history, indent=1), out / "metrics.json")
    tmp = out / f".metrics.csv.{os.getpid()}.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in METRIC_FIELDS})
    os.replace(tmp, out / "metrics.csv")


class StepsLog:
    """steps.csv: epoch, step, loss, lr of every step. A fresh run starts the
    file; a resumed one keeps the steps of the epochs it resumes after and
    drops those of an unfinished epoch (they are done again)."""

    HEADER = "epoch,step,loss,lr\n"

    def __init__(self, path: Path, epochs_done: int):
        kept = [self.HEADER]
        if epochs_done and path.is_file():
            with open(path) as f:
                kept += [line for line in list(f)[1:] if line.split(",", 1)[0].isdigit()
                         and int(line.split(",", 1)[0]) <= epochs_done]
        atomic_write_text("".join(kept), path)
        self.file = open(path, "a")

    def write(self, epoch: int, step: int, loss: float, lr: float) -> None:
        self.file.write(f"{epoch},{step},{loss!r},{lr!r}\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


# A loss this many times the run's first loss means the run diverges: a
# cross-entropy that starts at ~ln(classes) rises, not falls. Noise of small
# batches moves it by a factor of 2 or so; 5 is past that.
DIVERGENCE_FACTOR = 5.0


class DivergenceWatch:
    """Watches the step losses: ``check`` returns a message the first time a
    loss is not finite or above DIVERGENCE_FACTOR x the first loss of the run
    (``first``, kept across a resume), else None."""

    def __init__(self, first: float | None = None, factor: float = DIVERGENCE_FACTOR):
        self.first, self.factor = first, factor
        self.diverged = False

    def check(self, loss: float, epoch: int, step: int) -> str | None:
        finite = math.isfinite(loss)
        if self.first is None and finite:
            self.first = loss
        if finite and loss <= self.factor * self.first:
            return None
        first_time, self.diverged = not self.diverged, True
        where = f"at epoch {epoch + 1}, step {step}"
        if not finite:
            return f"the loss is {loss} {where}"
        if not first_time:
            return None
        return f"the loss rose to {loss:.4g} {where}, {loss / self.first:.1f}x the first step's {self.first:.4g}"


def divergence_hint(args) -> str:
    """What to try when the loss diverges, given the run's settings."""
    tips = [f"a lower --lr (now {args.lr:g}; try {args.lr / 10:g})",
            "a longer warm-up (--warmup-epochs)" if args.warmup_epochs else "a warm-up (--warmup-epochs 1)",
            f"a larger --batch-size (now {args.batch_size})",
            f"a smaller --clip-grad-norm (now {args.clip_grad_norm:g})" if args.clip_grad_norm
            else "gradient clipping (--clip-grad-norm 1)"]
    return "try " + ", ".join(tips)


def epoch_summary(row: dict, epochs: int, classes: int) -> str:
    """The log line of an epoch's metrics row; top-5 only with more than 5
    classes (with 5 or fewer every label is in the top 5), and the chance
    level of the top-1 error beside the validation error."""
    text = (f"epoch {row['epoch']}/{epochs}: lr {row['lr']:.3g}, train loss {row['train_loss']:.4f}, "
            f"train top-1 err {row['train_top1_err']:.3f}")
    if "val_top1_err" in row:
        text += f", val top-1 err {row['val_top1_err']:.3f} (chance {1 - 1 / classes:.3f})"
        if row.get("val_top5_err") is not None:
            text += f", top-5 err {row['val_top5_err']:.3f}"
    if "val10_top1_err" in row:
        text += f", 10-crop top-1 err {row['val10_top1_err']:.3f}"
        if row.get("val10_top5_err") is not None:
            text += f", top-5 err {row['val10_top5_err']:.3f}"
    return text + f" ({row['epoch_seconds']:.1f} s)"


def curves_figure(history: list[dict]):
    """Loss and error against the epoch (whole epochs on the x axis), as a
    matplotlib Figure; a curve without values (top-5 with 5 classes or fewer) is left out."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    figure = Figure(figsize=(10, 4), layout="tight")
    ax_loss, ax_err = figure.subplots(1, 2)
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    if any(h.get("val_loss") is not None for h in history):
        ax_loss.plot(epochs, [h.get("val_loss") for h in history], "o-", label="val (centre crop)")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_err.plot(epochs, [h["train_top1_err"] for h in history], "o-", label="train top-1")
    for key, label in (("val_top1_err", "val top-1"), ("val_top5_err", "val top-5"),
                       ("val10_top1_err", "val top-1, 10 crops"), ("val10_top5_err", "val top-5, 10 crops")):
        points = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
        if points:
            ax_err.plot(*zip(*points), "o-" if len(points) > 1 else "s", label=label)
    ax_err.set(xlabel="epoch", ylabel="error", title="error", ylim=(0, 1))
    for ax in (ax_loss, ax_err):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    return figure


def plot_curves(history: list[dict], path: Path) -> None:
    """The curves (curves_figure) as a PNG."""
    curves_figure(history).savefig(path, dpi=100)
