"""One epoch of training and one evaluation pass."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from alexnet_fast.progress import Progress
from alexnet_fast.train.distributed import Distributed


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, k: int) -> int:
    """How many rows of ``scores`` have their label among their ``k`` largest."""
    k = min(k, scores.shape[1])
    return int((scores.topk(k, dim=1).indices == labels[:, None]).any(1).sum())


def train_one_epoch(model: nn.Module, loader, optimizer, criterion, device: torch.device, epoch: int, *,
                    max_steps: int = 0, warmup_lr: Callable[[int], float | None] | None = None,
                    clip_grad_norm: float | None = None,
                    on_step: Callable[[int, float, float], None] | None = None,
                    progress: Progress | None = None) -> tuple[float, int, int]:
    """SGD steps over ``loader`` (at most ``max_steps`` when set). Before step
    ``s`` the learning rate is ``warmup_lr(s)`` where that is not None; after
    it ``on_step(s, loss, lr)``, which may stop the epoch by raising (a loss
    that is not finite, for one). Returns this process's (sum of the losses x
    batch sizes, correct top-1 predictions, images seen)."""
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    for step, batch in enumerate(loader):
        if max_steps and step >= max_steps:
            break
        if batch is None:  # every image of the batch was unreadable
            if progress is not None:
                progress.update()
            continue
        lr = warmup_lr(step) if warmup_lr is not None else None
        if lr is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr
        images, labels = (t.to(device, non_blocking=True) for t in batch)
        logits = model(images)
        loss = criterion(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad_norm:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        optimizer.step()
        value = float(loss.detach())
        if on_step is not None:
            on_step(step, value, optimizer.param_groups[0]["lr"])
        loss_sum += value * labels.shape[0]
        correct += int((logits.detach().argmax(1) == labels).sum())
        seen += labels.shape[0]
        if progress is not None:
            progress.update(loss=f"{value:.3f}")
    return loss_sum, correct, seen


@torch.no_grad()
def evaluate(model, loader, device, ten_crop: bool, criterion, progress: bool, world: Distributed) -> dict:
    """Top-1/top-5 error of the centre crop (and of the 10-crop average of the
    softmax outputs when ``ten_crop``), summed over ranks. The top-5 errors
    are None with 5 classes or fewer, where every label is in the top 5."""
    model.eval()
    loss_sum, n, c1, c5, t1, t5, classes = 0.0, 0, 0, 0, 0, 0, 0
    with Progress(len(loader), "eval", enabled=progress) as bar:
        for batch in loader:
            bar.update()
            if batch is None:
                continue
            images, labels = (t.to(device, non_blocking=True) for t in batch)
            if ten_crop:
                b = images.shape[0]
                logits = model(images.flatten(0, 1)).view(b, 10, -1).float()
                centre = logits[:, 4]
                averaged = logits.softmax(-1).mean(1)
                t1 += topk_correct(averaged, labels, 1)
                t5 += topk_correct(averaged, labels, 5)
            else:
                centre = model(images).float()
            classes = centre.shape[1]
            loss_sum += float(criterion(centre, labels)) * labels.shape[0]
            c1 += topk_correct(centre, labels, 1)
            c5 += topk_correct(centre, labels, 5)
            n += labels.shape[0]
    loss_sum, n, c1, c5, t1, t5 = world.sum([loss_sum, n, c1, c5, t1, t5])
    if n == 0:
        return {}
    top5 = classes > 5  # the same on every rank: the model's output size
    result = dict(val_loss=loss_sum / n, val_top1_err=1 - c1 / n, val_top5_err=1 - c5 / n if top5 else None,
                  val_images=int(n))
    if ten_crop:
        result.update(val10_top1_err=1 - t1 / n, val10_top5_err=1 - t5 / n if top5 else None)
    return result
