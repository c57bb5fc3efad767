"""Checkpoints of `alexnet-fast train` and exact resumes: files written to a
temporary name and renamed (a crash never leaves half a file), every random
number generator's state, and the loading of a checkpoint into a run."""
from __future__ import annotations

import math
import os
import random
from pathlib import Path

import torch

from alexnet_fast.train.data import DataError


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


# --- Random number generators ------------------------------------------------------
def rng_state() -> dict:
    """The states of torch's, Python's, NumPy's and CUDA's generators."""
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


# --- Resume ---------------------------------------------------------------------------
def checkpoint_to_resume(resume: str | None, default: Path, log) -> Path | None:
    """The checkpoint --resume names: ``auto`` is ``default`` if it exists
    (else a fresh start); a named file must exist."""
    if not resume:
        return None
    path = Path(resume) if resume != "auto" else default
    if path.is_file():
        return path
    if resume != "auto":
        raise DataError(f"--resume {path}: no such checkpoint")
    log(f"--resume: no checkpoint at {path} yet, starting from scratch")
    return None


def load_checkpoint(path: Path, net, optimizer, scheduler, classes: list[str],
                    rank: int) -> tuple[int, list, float, float | None]:
    """Loads ``path`` into the model, optimiser and scheduler, restores this
    rank's generators; returns (epochs done, metrics history, best monitored
    error, the run's first step loss)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("classes") != classes:
        raise DataError(f"--resume {path}: the checkpoint's classes differ from the dataset's")
    net.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"][rank] if rank < len(state["rng"]) else state["rng"][0])
    return state["epoch"], state["history"], state.get("best", math.inf), state.get("first_loss")
