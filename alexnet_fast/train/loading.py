"""The data of a run: the dataset on disk (the demo's drawn first if there is
no --data), its statistics, and the loaders, split across the processes."""
from __future__ import annotations

from pathlib import Path

import torch

from alexnet_fast.progress import Progress
from alexnet_fast.train import data as D
from alexnet_fast.train.demo import make_synthetic_dataset
from alexnet_fast.train.distributed import Distributed


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


def make_loader(dataset, sampler, batch_size: int, workers: int, device, seed: int):
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=D.collate,
        pin_memory=device.type == "cuda", drop_last=False, persistent_workers=False,
        worker_init_fn=None, generator=torch.Generator().manual_seed(seed),
    )


def prepare_data(args, world: Distributed):
    """Synthetic dataset if needed, layout scan, statistics (rank 0 computes,
    everybody reads the cache). Returns (train split, val split or None, stats)."""
    out, log = Path(args.output), world.log
    if args.data is None:
        root = Path(args.synthetic_dir) if args.synthetic_dir else out / "synthetic-data"
        if world.local_rank == 0:  # one per machine
            make_synthetic_dataset(root, classes=args.synthetic_classes, train_per_class=args.synthetic_train,
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
            progress_factory=lambda total, desc: Progress(total, desc, enabled=args.progress))
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


def make_loaders(args, world: Distributed, train_split, val_split, stats, crop: int, per_rank: int):
    """The training loader (shuffled per epoch) and the validation loaders by
    mode ('center', 'ten': 10 crops, a tenth of the batch); (loader, {mode: loader})."""
    train_set = D.ImageDataset(train_split.samples, stats, "train", crop, args.resize, args.seed, args.pca_std,
                               flip=not args.no_flip, scale=args.input_scale)
    train_sampler = EpochShuffle(len(train_set), args.seed, world.rank, world.world, shuffle=True)
    if len(train_sampler) == 0:
        raise D.DataError("fewer training images than processes")
    train_loader = make_loader(train_set, train_sampler, per_rank, args.workers, world.device, args.seed)
    val_loaders = {}
    if val_split is not None and val_split.samples:
        for mode in ("center", "ten"):
            dataset = D.ImageDataset(val_split.samples, stats, mode, crop, args.resize, args.seed,
                                     scale=args.input_scale)
            sampler = EpochShuffle(len(dataset), args.seed, world.rank, world.world, shuffle=False)
            size = max(1, per_rank // 10) if mode == "ten" else per_rank
            val_loaders[mode] = make_loader(dataset, sampler, size, args.workers, world.device, args.seed)
    return train_loader, val_loaders
