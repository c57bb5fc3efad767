"""The processes of a run: one, or several under torchrun
(DistributedDataParallel: gloo on CPU, nccl on GPUs)."""
from __future__ import annotations

import datetime
import os
import sys

import torch
import torch.distributed as dist

from alexnet_fast.train.errors import SetupError


class Distributed:
    """This process's rank, the world size and the device; with one process
    (not launched by torchrun) every collective is a no-op."""

    def __init__(self, device: str | None):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = pick_device(device, self.local_rank if self.world > 1 else None)
        self.enabled = self.world > 1
        if self.enabled and not dist.is_initialized():
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def log(self, message: str) -> None:
        """A line on stderr, from the main process only."""
        if self.main:
            print(f"[train] {message}", file=sys.stderr, flush=True)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sum(self, values: list[float]) -> list[float]:
        """``values`` summed over the processes."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true in any process (every process must call it)."""
        return self.sum([float(flag)])[0] > 0 if self.enabled else flag

    def gather(self, obj) -> list:
        """Every process's ``obj``, in rank order."""
        if not self.enabled:
            return [obj]
        gathered = [None] * self.world
        dist.all_gather_object(gathered, obj)
        return gathered

    def parameters_agree(self, module: torch.nn.Module) -> bool:
        """Whether every process holds the same parameters (DDP keeps them in
        step): compares their sum, sum of squares and largest magnitude."""
        if not self.enabled:
            return True
        flat = torch.cat([p.detach().reshape(-1).double() for p in module.parameters()])
        check = torch.stack([flat.sum(), (flat * flat).sum(), flat.abs().max()])
        gathered = [torch.zeros_like(check) for _ in range(self.world)]
        dist.all_gather(gathered, check)
        return all(torch.equal(g, gathered[0]) for g in gathered)

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def pick_device(requested: str | None, local_rank: int | None) -> torch.device:
    """``requested`` (default: cuda if available); plain ``cuda`` becomes
    cuda:LOCAL_RANK under torchrun. A CUDA device without a GPU is an error."""
    want = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise SetupError("--device cuda: no CUDA GPU available")
    if want == "cuda" and local_rank is not None:
        want = f"cuda:{local_rank}"
    try:
        return torch.device(want)
    except RuntimeError:
        raise SetupError(f"--device {want!r} is not a device; use cpu or cuda") from None
