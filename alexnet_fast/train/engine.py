"""The run of `alexnet-fast train`: set-up (processes, data, model,
optimiser, resume), then per epoch: train, evaluate, log, checkpoint.

SGD with the paper's settings, ReduceLROnPlateau on the validation error, an
optional linear warm-up, top-1/top-5 error of the centre crop and the paper's
10 crops, atomic checkpoints with every RNG state (``--resume`` continues
exactly), and DistributedDataParallel under torchrun. Driven by the argparse
namespace of alexnet_fast.cli.train.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from pathlib import Path

import torch
from torch import nn

import alexnet_fast
from alexnet_fast._backends import resolve_backend
from alexnet_fast.progress import Progress
from alexnet_fast.train import checkpoint, data as D, loading, loop, metrics
from alexnet_fast.train.demo import TinyNet
from alexnet_fast.train.distributed import Distributed
from alexnet_fast.train.errors import SetupError, TrainingDiverged


def check_backend(backend: str, device: torch.device) -> None:
    """--backend must run on ``device``: else a one-line error, before any data is read."""
    usable = ["auto", *alexnet_fast.available_backends(device)]
    try:
        resolve_backend(backend, device)
    except (ValueError, RuntimeError) as error:
        raise SetupError(f"--backend {backend} cannot be used on {device} ({error}); use one of: "
                         f"{', '.join(usable)}") from None
    if backend not in usable:
        raise SetupError(f"--backend {backend} does not run on {device} here; use one of: {', '.join(usable)}")


def build_model(args, num_classes: int) -> nn.Module:
    if args.model == "tiny":
        return TinyNet(num_classes, args.dropout)
    from alexnet_fast.models import alexnet

    return alexnet(args.model, num_classes=num_classes, groups=args.groups, dropout=args.dropout,
                   backend=args.backend)


@dataclasses.dataclass
class Run:
    """What the epochs of a run share."""

    args: argparse.Namespace
    world: Distributed
    out: Path
    model: nn.Module  # DistributedDataParallel under torchrun
    net: nn.Module  # the model itself
    crop: int
    classes: list[str]
    stats: D.Stats
    train_loader: torch.utils.data.DataLoader
    val_loaders: dict
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    history: list = dataclasses.field(default_factory=list)
    best: float = math.inf
    epochs_done: int = 0
    steps_log: metrics.StepsLog | None = None
    watch: metrics.DivergenceWatch = dataclasses.field(default_factory=metrics.DivergenceWatch)
    divergence: str | None = None  # the first divergence seen, for the closing line


def train(args: argparse.Namespace) -> int:
    world = Distributed(args.device)
    try:
        return _train(args, world)
    finally:
        world.close()


def _set_up_process(args, world: Distributed, out: Path) -> None:
    if world.local_rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    world.barrier()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif world.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    checkpoint.seed_everything(args.seed + world.rank)


def set_up(args, world: Distributed) -> Run:
    """Everything before the first epoch, up to a resumed checkpoint."""
    check_backend(args.backend, world.device)
    out = Path(args.output)
    _set_up_process(args, world, out)
    D.require_pillow()
    train_split, val_split, stats = loading.prepare_data(args, world)

    model = build_model(args, len(train_split.classes))
    crop = args.crop_size or getattr(model, "input_size", None) or 227
    if crop > args.resize:
        raise D.DataError(f"--crop-size {crop} is larger than --resize {args.resize}")
    model.to(world.device)
    if world.enabled:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[world.device.index] if world.device.type == "cuda" else None)
    net = model.module if world.enabled else model

    if args.batch_size % world.world:
        world.log(f"warning: --batch-size {args.batch_size} is not a multiple of {world.world} processes: "
                  f"{args.batch_size // world.world} per process")
    per_rank = max(1, args.batch_size // world.world)
    train_loader, val_loaders = loading.make_loaders(args, world, train_split, val_split, stats, crop, per_rank)

    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=args.lr_factor, patience=args.lr_patience, threshold=args.lr_threshold,
        threshold_mode="abs", min_lr=args.min_lr)
    run = Run(args, world, out, model, net, crop, train_split.classes, stats, train_loader, val_loaders,
              nn.CrossEntropyLoss(), optimizer, scheduler)
    path = checkpoint.checkpoint_to_resume(args.resume, out / "checkpoint.pt", world.log)
    if path is not None:
        run.epochs_done, run.history, run.best, run.watch.first = checkpoint.load_checkpoint(
            path, net, optimizer, scheduler, run.classes, world.rank)
        world.log(f"resumed from {path}: {run.epochs_done} epochs done")
    return run


def _train(args, world: Distributed) -> int:
    run = set_up(args, world)
    start_epoch = run.epochs_done
    if start_epoch >= args.epochs:
        world.log(f"nothing to do: {start_epoch} epochs done, --epochs {args.epochs}")
    if world.main:
        run.steps_log = metrics.StepsLog(run.out / "steps.csv", start_epoch)
    try:
        for epoch in range(start_epoch, args.epochs):
            run_epoch(run, epoch)
    finally:
        if run.steps_log is not None:
            run.steps_log.close()
    finish(run)
    return 0


def _warmup_lr(args, epoch: int, steps_per_epoch: int):
    """The linear warm-up over the first --warmup-epochs (0: none, as in the
    paper): step ``done`` of the run gets lr * (done + 1) / warm-up steps."""
    warmup_steps = args.warmup_epochs * steps_per_epoch
    if not warmup_steps:
        return None

    def lr(step: int) -> float | None:
        done = epoch * steps_per_epoch + step
        return args.lr * min(1.0, (done + 1) / warmup_steps) if done <= warmup_steps else None

    return lr


def watch_divergence(run: Run, loss: float, epoch: int, step: int) -> None:
    """Warns the first time the loss diverges (metrics.DivergenceWatch), with
    what to try; ends the run at a loss that is not finite (the weights are
    lost), and with --stop-on-divergence at any divergence of any process."""
    message = run.watch.check(loss, epoch, step)
    hint = metrics.divergence_hint(run.args)
    if message is not None and not math.isfinite(loss):
        raise TrainingDiverged(f"{message}: the run diverged; {hint}")
    run.divergence = run.divergence or message
    if run.args.stop_on_divergence:
        if run.world.any(run.watch.diverged):
            raise TrainingDiverged(f"{run.divergence or 'the loss diverged in another process'}: stopped "
                                   f"(--stop-on-divergence); {hint}")
    elif message is not None:
        run.world.log(f"warning: {message}: the run is diverging; {hint} (--stop-on-divergence ends such a run)")


def run_epoch(run: Run, epoch: int) -> None:
    """Trains one epoch, evaluates, logs, and (main process) saves the
    metrics, the checkpoint, best.pt and the curves."""
    args, world = run.args, run.world
    started = time.perf_counter()
    run.train_loader.dataset.set_epoch(epoch)
    run.train_loader.sampler.set_epoch(epoch)
    lr = args.lr if epoch < args.warmup_epochs else run.optimizer.param_groups[0]["lr"]
    steps = len(run.train_loader)
    steps = min(steps, args.max_steps) if args.max_steps else steps

    def on_step(step: int, loss: float, step_lr: float) -> None:
        watch_divergence(run, loss, epoch, step)
        if run.steps_log is not None:
            run.steps_log.write(epoch + 1, step, loss, step_lr)

    with Progress(len(run.train_loader), f"epoch {epoch + 1}/{args.epochs}",
                  enabled=args.progress and world.main) as bar:
        sums = loop.train_one_epoch(run.model, run.train_loader, run.optimizer, run.criterion, world.device, epoch,
                                    max_steps=args.max_steps, warmup_lr=_warmup_lr(args, epoch, steps),
                                    clip_grad_norm=args.clip_grad_norm, on_step=on_step, progress=bar)
    loss_sum, correct, seen = world.sum(list(sums))
    row = dict(epoch=epoch + 1, lr=lr, train_loss=loss_sum / max(seen, 1), train_top1_err=1 - correct / max(seen, 1),
               images=int(seen), diverged=run.watch.diverged)
    if run.val_loaders:
        ten = args.ten_crop == "every" or (epoch + 1 == args.epochs and args.ten_crop == "final")
        # The unwrapped module: evaluation needs no gradient sync, and the
        # ranks may see different numbers of validation batches.
        row.update(loop.evaluate(run.net, run.val_loaders["ten" if ten else "center"], world.device, ten,
                                 run.criterion, args.progress and world.main, world))
    row["epoch_seconds"] = time.perf_counter() - started
    monitored = row.get("val_top1_err", row["train_top1_err"])
    run.scheduler.step(monitored)
    run.history.append(row)
    world.log(metrics.epoch_summary(row, args.epochs, len(run.classes)))
    save_epoch(run, epoch, monitored)
    world.barrier()


def save_epoch(run: Run, epoch: int, monitored: float) -> None:
    """Every process's RNG state into the checkpoint; the main process writes
    the metrics, checkpoint.pt (not with --keep-best-only), best.pt (when
    ``monitored`` improved) and the curves."""
    args = run.args
    rngs = run.world.gather(checkpoint.rng_state())
    if not run.world.main:
        return
    metrics.write_metrics(run.history, run.out)
    improved = monitored < run.best
    run.best = min(run.best, monitored)
    # best.pt carries what evaluating and exporting it need (alexnet_fast/checkpoints.py).
    model_only = dict(model=run.net.state_dict(), classes=run.classes, stats=run.stats.to_json(), epoch=epoch + 1,
                      crop=run.crop, variant=args.model, input_scale=args.input_scale, resize=args.resize,
                      groups=args.groups)
    if not args.keep_best_only:
        state = dict(model_only, optimizer=run.optimizer.state_dict(), scheduler=run.scheduler.state_dict(),
                     history=run.history, best=run.best, rng=rngs, args=vars(args), first_loss=run.watch.first)
        checkpoint.atomic_save(state, run.out / "checkpoint.pt")
    if improved and args.save_best:
        checkpoint.atomic_save(model_only, run.out / "best.pt")
    if args.plot:
        metrics.plot_curves(run.history, Path(args.plot))


def finish(run: Run) -> None:
    """After the last epoch: the --dump-params files, the check that the
    processes agree, the closing log line and --json-summary."""
    args, world = run.args, run.world
    if args.dump_params:
        torch.save({k: v.detach().cpu() for k, v in run.net.state_dict().items()},
                   Path(args.dump_params) / f"params-rank{world.rank}.pt")
    if not world.parameters_agree(run.net):
        world.log("warning: the processes' parameters differ")
    if run.history:
        files = [run.out / name for name in ("checkpoint.pt", "best.pt", "metrics.csv", "metrics.json", "steps.csv")]
        files += [Path(args.plot)] if args.plot else []
        listed = ", ".join(f"{path.name} ({_size(path)})" for path in files if path.is_file())
        world.log(f"done: {len(run.history)} epochs; outputs in {run.out}: {listed}")
        if run.divergence:
            world.log(f"warning: the loss diverged during the run ({run.divergence}); {metrics.divergence_hint(args)}")
        if world.main and args.json_summary:
            print(json.dumps(run.history[-1]))


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 2**20:.0f} MiB" if size >= 2**20 else f"{size / 2**10:.0f} KiB" if size >= 2**10 else f"{size} B"
