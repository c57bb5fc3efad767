"""The training loop of `alexnet-fast train`: data loaders, SGD with the
paper's settings, ReduceLROnPlateau on the validation error, top-1/top-5
evaluation (centre crop and the paper's 10 crops), atomic checkpoints with
every RNG state (``--resume`` continues exactly), per-step and per-epoch logs,
and DistributedDataParallel under torchrun (gloo on CPU, nccl on GPUs).

Everything is driven by the argparse namespace of :mod:`alexnet_fast.train.cli`.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from alexnet_fast.train import data as D


# --- Distributed ---------------------------------------------------------------
class Dist:
    """rank, world size, device; a no-op when not launched by torchrun."""

    def __init__(self, device_arg: str | None):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        want = device_arg or ("cuda" if torch.cuda.is_available() else "cpu")
        if want.startswith("cuda") and not torch.cuda.is_available():
            raise D.DataError("--device cuda: no CUDA GPU available")
        if want == "cuda":
            want = f"cuda:{self.local_rank}" if self.world > 1 else "cuda"
        self.device = torch.device(want)
        self.enabled = self.world > 1
        if self.enabled and not dist.is_initialized():
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sum(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return t.tolist()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


# --- Models -----------------------------------------------------------------------
class TinyNet(nn.Module):
    """A small CNN for tests and smoke runs (any input size >= 16); GroupNorm, not
    BatchNorm, so that a DDP step equals a 1-process step on the global batch."""

    def __init__(self, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.GroupNorm(4, 16), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(16, 32, 3, padding=1), nn.GroupNorm(4, 32), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(32, 32, 3, padding=1), nn.GroupNorm(4, 32), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(32, num_classes))
        self.input_size = None

    def forward(self, x):
        # Inputs are 0..255 minus the mean: scale for PyTorch's default init.
        return self.classifier(self.features(x / 64.0))


def build_model(args, num_classes: int) -> nn.Module:
    if args.model == "tiny":
        return TinyNet(num_classes, args.dropout)
    from alexnet_fast.models import alexnet

    return alexnet(args.model, num_classes=num_classes, groups=args.groups, dropout=args.dropout,
                   backend=args.backend)


# --- Logging -----------------------------------------------------------------------
class Progress:
    """A tqdm bar when tqdm is installed and progress is on, else nothing."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr)
            except ImportError:
                pass

    def update(self, n: int = 1, **postfix) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(text: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
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
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- RNG state ----------------------------------------------------------------------
def rng_state() -> dict:
    state = dict(torch=torch.get_rng_state(), python=random.getstate())
    try:
        import numpy as np

        state["numpy"] = np.random.get_state()
    except ImportError:
        pass
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2 ** 32))
    except ImportError:
        pass


# --- Samplers ----------------------------------------------------------------------
class EpochShuffle(torch.utils.data.Sampler):
    """A permutation seeded with (seed, epoch), split across ranks without
    padding when ``shuffle`` (training: every rank gets the same number,
    dropping at most world-1 samples) or in order (evaluation: every sample once)."""

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True):
        self.size, self.seed, self.rank, self.world, self.shuffle = size, seed, rank, world, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.rank, self.size, self.world))
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 1000003 + self.epoch))
        usable = self.size - self.size % self.world
        return order[:usable][self.rank::self.world].tolist()

    def __iter__(self):
        return iter(self._indices())

    def __len__(self) -> int:
        return len(range(self.rank, self.size, self.world)) if not self.shuffle else self.size // self.world


# --- Metrics -------------------------------------------------------------------------
def topk_correct(scores: torch.Tensor, labels: torch.Tensor, k: int) -> int:
    k = min(k, scores.shape[1])
    return int((scores.topk(k, dim=1).indices == labels[:, None]).any(1).sum())


@torch.no_grad()
def evaluate(model, loader, device, ten_crop: bool, criterion, progress: bool, world: Dist) -> dict:
    """Top-1/top-5 error of the centre crop (and of the 10-crop average of the
    softmax outputs when ``ten_crop``), summed over ranks."""
    model.eval()
    loss_sum, n, c1, c5, t1, t5 = 0.0, 0, 0, 0, 0, 0
    bar = Progress(len(loader), "eval", progress)
    for batch in loader:
        bar.update()
        if batch is None:
            continue
        images, labels = batch
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        if ten_crop:
            b = images.shape[0]
            logits = model(images.flatten(0, 1)).view(b, 10, -1).float()
            centre = logits[:, 4]
            averaged = logits.softmax(-1).mean(1)
            t1 += topk_correct(averaged, labels, 1)
            t5 += topk_correct(averaged, labels, 5)
        else:
            centre = model(images).float()
        loss_sum += float(criterion(centre, labels)) * labels.shape[0]
        c1 += topk_correct(centre, labels, 1)
        c5 += topk_correct(centre, labels, 5)
        n += labels.shape[0]
    bar.close()
    loss_sum, n, c1, c5, t1, t5 = world.sum([loss_sum, n, c1, c5, t1, t5])
    if n == 0:
        return {}
    result = dict(val_loss=loss_sum / n, val_top1_err=1 - c1 / n, val_top5_err=1 - c5 / n, val_images=int(n))
    if ten_crop:
        result.update(val10_top1_err=1 - t1 / n, val10_top5_err=1 - t5 / n)
    return result


# --- The run ---------------------------------------------------------------------------
def _log(world: Dist):
    def log(message: str) -> None:
        if world.main:
            print(f"[train] {message}", file=sys.stderr, flush=True)

    return log


def _loader(dataset, sampler, batch_size: int, workers: int, device, seed: int):
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=D.collate,
        pin_memory=device.type == "cuda", drop_last=False, persistent_workers=False,
        worker_init_fn=None, generator=torch.Generator().manual_seed(seed),
    )


def prepare_data(args, world: Dist, log):
    """Synthetic dataset if needed, layout scan, statistics (rank 0 computes,
    everybody reads the cache). Returns (train split, val split or None, stats)."""
    out = Path(args.output)
    if args.data is None:
        root = Path(args.synthetic_dir) if args.synthetic_dir else out / "synthetic-data"
        if world.local_rank == 0:  # one per machine
            D.make_synthetic_dataset(root, classes=args.synthetic_classes, train_per_class=args.synthetic_train,
                                     val_per_class=args.synthetic_val, size=args.resize, seed=args.seed, log=log)
        world.barrier()
        args.data = str(root)
    train, val, problems = D.scan_dataset(Path(args.data))
    for problem in problems:
        log(f"warning: {problem}")
    if args.limit_train:
        train.samples = train.samples[: args.limit_train]
    if val is not None and args.limit_val:
        val.samples = val.samples[: args.limit_val]
    cache = Path(args.stats_cache) if args.stats_cache else out / "train-stats.json"
    if world.local_rank == 0:
        stats, bad = D.load_or_compute_stats(
            train.samples, cache, args.resize, log=log,
            progress_factory=(lambda total, desc: Progress(total, desc, args.progress)))
    world.barrier()
    if world.local_rank != 0:
        stats, bad = D.load_or_compute_stats(train.samples, cache, args.resize, log=lambda m: None)
    if bad:
        log(f"warning: {len(bad)} training images could not be read and are left out (e.g. {bad[0]})")
        bad_set = set(bad)
        train.samples = [s for s in train.samples if s[0] not in bad_set]
    counts = [0] * len(train.classes)
    for _, label in train.samples:
        counts[label] += 1
    empty = [name for name, c in zip(train.classes, counts) if c == 0]
    if empty:
        log(f"warning: no readable training image in class(es) {', '.join(empty)}: kept as outputs, never learnt")
    log(f"data: {args.data}: {len(train.classes)} classes, {len(train.samples)} training images, "
        f"{len(val.samples) if val else 0} validation images; mean RGB "
        f"{', '.join(f'{m:.1f}' for m in stats.mean.tolist())}; PCA eigenvalues "
        f"{', '.join(f'{e:.4g}' for e in stats.eigvals.tolist())}")
    return train, val, stats


def train(args: argparse.Namespace) -> int:
    world = Dist(args.device)
    log = _log(world)
    try:
        return _train(args, world, log)
    finally:
        world.close()


def _train(args, world: Dist, log) -> int:
    out = Path(args.output)
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
    seed_everything(args.seed + world.rank)
    D.require_pillow()
    train_split, val_split, stats = prepare_data(args, world, log)
    num_classes = len(train_split.classes)

    model = build_model(args, num_classes)
    crop = args.crop_size or getattr(model, "input_size", None) or 227
    if crop > args.resize:
        raise D.DataError(f"--crop-size {crop} is larger than --resize {args.resize}")
    model.to(world.device)
    if world.enabled:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[world.device.index] if world.device.type == "cuda" else None)
    net = model.module if world.enabled else model

    if args.batch_size % world.world:
        log(f"warning: --batch-size {args.batch_size} is not a multiple of {world.world} processes: "
            f"{args.batch_size // world.world} per process")
    per_rank = max(1, args.batch_size // world.world)

    train_set = D.ImageDataset(train_split.samples, stats, "train", crop, args.resize, args.seed, args.pca_std,
                               flip=not args.no_flip, scale=args.input_scale)
    train_sampler = EpochShuffle(len(train_set), args.seed, world.rank, world.world, shuffle=True)
    train_loader = _loader(train_set, train_sampler, per_rank, args.workers, world.device, args.seed)
    if len(train_sampler) == 0:
        raise D.DataError("fewer training images than processes")
    val_loaders = {}
    if val_split is not None and val_split.samples:
        for mode in ("center", "ten"):
            dataset = D.ImageDataset(val_split.samples, stats, mode, crop, args.resize, args.seed,
                                     scale=args.input_scale)
            sampler = EpochShuffle(len(dataset), args.seed, world.rank, world.world, shuffle=False)
            size = max(1, per_rank // 10) if mode == "ten" else per_rank
            val_loaders[mode] = _loader(dataset, sampler, size, args.workers, world.device, args.seed)

    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=args.lr_factor, patience=args.lr_patience, threshold=args.lr_threshold,
        threshold_mode="abs", min_lr=args.min_lr)

    start_epoch, history, best = 0, [], math.inf
    checkpoint_path = out / "checkpoint.pt"
    if args.resume:
        path = Path(args.resume) if args.resume != "auto" else checkpoint_path
        if not path.is_file():
            if args.resume == "auto":
                log(f"--resume: no checkpoint at {path} yet, starting from scratch")
                path = None
            else:
                raise D.DataError(f"--resume {path}: no such checkpoint")
        if path is not None:
            state = torch.load(path, map_location="cpu", weights_only=False)
            if state.get("classes") != train_split.classes:
                raise D.DataError(f"--resume {path}: the checkpoint's classes differ from the dataset's")
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start_epoch, history, best = state["epoch"], state["history"], state.get("best", math.inf)
            rng = state["rng"][world.rank] if world.rank < len(state["rng"]) else state["rng"][0]
            set_rng_state(rng)
            log(f"resumed from {path}: {start_epoch} epochs done")

    if start_epoch >= args.epochs:
        log(f"nothing to do: {start_epoch} epochs done, --epochs {args.epochs}")
    ten_crop_every = args.ten_crop == "every"
    # Linear learning-rate warm-up over the first --warmup-epochs (0: none, as in the paper).
    steps_per_epoch = min(len(train_loader), args.max_steps) if args.max_steps else len(train_loader)
    warmup_steps = args.warmup_epochs * steps_per_epoch
    steps_log = None
    if world.main:
        # A fresh run starts the file; a resumed one drops the steps of an
        # unfinished epoch (they are done again).
        kept = ["epoch,step,loss,lr\n"]
        if start_epoch and (out / "steps.csv").is_file():
            with open(out / "steps.csv") as f:
                kept += [line for line in list(f)[1:] if line.split(",", 1)[0].isdigit()
                         and int(line.split(",", 1)[0]) <= start_epoch]
        atomic_write_text("".join(kept), out / "steps.csv")
        steps_log = open(out / "steps.csv", "a")
    try:
        for epoch in range(start_epoch, args.epochs):
            started = time.perf_counter()
            train_set.set_epoch(epoch)
            train_sampler.set_epoch(epoch)
            model.train()
            lr = args.lr if epoch < args.warmup_epochs else optimizer.param_groups[0]["lr"]
            loss_sum, correct, seen = 0.0, 0, 0
            bar = Progress(len(train_loader), f"epoch {epoch + 1}/{args.epochs}", args.progress and world.main)
            for step, batch in enumerate(train_loader):
                if args.max_steps and step >= args.max_steps:
                    break
                if batch is None:
                    bar.update()
                    continue
                images, labels = batch
                if warmup_steps:
                    done = epoch * steps_per_epoch + step
                    if done <= warmup_steps:
                        for group in optimizer.param_groups:
                            group["lr"] = args.lr * min(1.0, (done + 1) / warmup_steps)
                images = images.to(world.device, non_blocking=True)
                labels = labels.to(world.device, non_blocking=True)
                logits = model(images)
                loss = criterion(logits, labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if args.clip_grad_norm:
                    nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad_norm)
                optimizer.step()
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise FloatingPointError(f"the loss is {value} at epoch {epoch + 1}, step {step}: "
                                             "lower --lr")
                loss_sum += value * labels.shape[0]
                correct += int((logits.detach().argmax(1) == labels).sum())
                seen += labels.shape[0]
                if steps_log is not None:
                    steps_log.write(f"{epoch + 1},{step},{value!r},{optimizer.param_groups[0]['lr']!r}\n")
                    steps_log.flush()
                bar.update(loss=f"{value:.3f}")
            bar.close()
            loss_sum, correct, seen = world.sum([loss_sum, correct, seen])
            row = dict(epoch=epoch + 1, lr=lr, train_loss=loss_sum / max(seen, 1),
                       train_top1_err=1 - correct / max(seen, 1), images=int(seen))
            last = epoch + 1 == args.epochs
            if val_loaders:
                ten = ten_crop_every or (last and args.ten_crop == "final")
                loader = val_loaders["ten" if ten else "center"]
                # The unwrapped module: evaluation needs no gradient sync, and the
                # ranks may see different numbers of validation batches.
                row.update(evaluate(net, loader, world.device, ten, criterion, args.progress and world.main,
                                    world))
            row["epoch_seconds"] = time.perf_counter() - started
            monitored = row.get("val_top1_err", row["train_top1_err"])
            scheduler.step(monitored)
            history.append(row)
            text = (f"epoch {epoch + 1}/{args.epochs}: lr {lr:.3g}, train loss {row['train_loss']:.4f}, "
                    f"train top-1 err {row['train_top1_err']:.3f}")
            if "val_top1_err" in row:
                text += f", val top-1 err {row['val_top1_err']:.3f}, top-5 err {row['val_top5_err']:.3f}"
            if "val10_top1_err" in row:
                text += f", 10-crop top-1 err {row['val10_top1_err']:.3f}, top-5 err {row['val10_top5_err']:.3f}"
            log(text + f" ({row['epoch_seconds']:.1f} s)")

            rngs = [rng_state()]
            if world.enabled:
                gathered = [None] * world.world
                dist.all_gather_object(gathered, rngs[0])
                rngs = gathered
            if world.main:
                if steps_log is not None:
                    steps_log.flush()
                write_metrics(history, out)
                improved = monitored < best
                best = min(best, monitored)
                state = dict(model=net.state_dict(), optimizer=optimizer.state_dict(),
                             scheduler=scheduler.state_dict(), epoch=epoch + 1, history=history, best=best,
                             rng=rngs, classes=train_split.classes, stats=stats.to_json(), args=vars(args),
                             crop=crop, variant=args.model)
                atomic_save(state, checkpoint_path)
                if improved and args.save_best:
                    atomic_save(dict(model=net.state_dict(), classes=train_split.classes, stats=stats.to_json(),
                                     epoch=epoch + 1, crop=crop, variant=args.model), out / "best.pt")
                if args.plot:
                    plot_curves(history, Path(args.plot))
            world.barrier()
    finally:
        if steps_log is not None:
            steps_log.close()

    if args.dump_params:
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()},
                   Path(args.dump_params) / f"params-rank{world.rank}.pt")
    if world.enabled:
        # The ranks must hold the same parameters (DDP keeps them in step).
        flat = torch.cat([p.detach().reshape(-1).double() for p in net.parameters()])
        check = torch.stack([flat.sum(), (flat * flat).sum(), flat.abs().max()])
        gathered = [torch.zeros_like(check) for _ in range(world.world)]
        dist.all_gather(gathered, check)
        if not all(torch.equal(g, gathered[0]) for g in gathered):
            log("warning: the processes' parameters differ")
    if history:
        final = history[-1]
        log(f"done: {len(history)} epochs; outputs in {out} (checkpoint.pt, metrics.csv, metrics.json, steps.csv"
            f"{', ' + str(args.plot) if args.plot else ''})")
        if world.main and args.json_summary:
            print(json.dumps(final))
    return 0
