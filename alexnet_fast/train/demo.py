"""The demo of `alexnet-fast train` (no --data) and of the tests: a small
real-image dataset drawn on disk (shapes and textures, one class per shape,
ImageFolder layout), and TinyNet, a small CNN that trains on it in seconds."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import torch
from torch import nn

from alexnet_fast.train.data import DataError, require_pillow

try:
    from PIL import Image, ImageDraw, ImageFilter
except ImportError:  # pragma: no cover - reported by require_pillow
    Image = None

# Ordered so that the first few are the most different from each other.
SYNTHETIC_CLASSES = ("stripes", "circle", "checker", "triangle", "square", "cross", "ring", "dots")


def _random_colour(rng: random.Random, dark: bool) -> tuple[int, int, int]:
    base = (rng.randint(0, 110) if dark else rng.randint(140, 255))
    return tuple(max(0, min(255, base + rng.randint(-40, 40))) for _ in range(3))


def draw_synthetic(kind: str, rng: random.Random, size: int = 256) -> "Image.Image":
    """One procedurally drawn image of a class: a shape or texture of random
    colour, position, size and rotation on a noisy background."""
    require_pillow()
    dark_bg = rng.random() < 0.5
    background = _random_colour(rng, dark_bg)
    foreground = _random_colour(rng, not dark_bg)
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    # Background clutter: a few faint blobs.
    for _ in range(rng.randint(2, 6)):
        x, y, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(5, size / 6)
        shade = tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in background)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=shade)
    r = rng.uniform(0.22, 0.38) * size
    cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
    angle = rng.uniform(0, 2 * math.pi)
    width = max(3, int(r * rng.uniform(0.15, 0.3)))
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=foreground)
    elif kind == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=foreground, width=width)
    elif kind == "square":
        corners = [(cx + r * math.cos(angle + k * math.pi / 2), cy + r * math.sin(angle + k * math.pi / 2))
                   for k in range(4)]
        draw.polygon(corners, fill=foreground)
    elif kind == "triangle":
        corners = [(cx + r * math.cos(angle + k * 2 * math.pi / 3), cy + r * math.sin(angle + k * 2 * math.pi / 3))
                   for k in range(3)]
        draw.polygon(corners, fill=foreground)
    elif kind == "cross":
        for k in range(2):
            a = angle + k * math.pi / 2
            dx, dy = r * math.cos(a), r * math.sin(a)
            draw.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=foreground, width=width)
    elif kind == "stripes":
        period = rng.uniform(16, 36)
        a = angle % math.pi
        dx, dy = math.cos(a), math.sin(a)
        for k in range(-int(size * 1.5 / period), int(size * 1.5 / period)):
            ox, oy = size / 2 + k * period * -dy, size / 2 + k * period * dx
            draw.line((ox - 2 * size * dx, oy - 2 * size * dy, ox + 2 * size * dx, oy + 2 * size * dy),
                      fill=foreground, width=max(3, int(period / 3)))
    elif kind == "checker":
        cell = rng.randint(20, 40)
        offset = rng.randint(0, cell)
        for i in range(-1, size // cell + 1):
            for j in range(-1, size // cell + 1):
                if (i + j) % 2 == 0:
                    x, y = i * cell + offset, j * cell + offset
                    draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=foreground)
    elif kind == "dots":
        for _ in range(rng.randint(12, 30)):
            x, y, d = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(5, 12)
            draw.ellipse((x - d, y - d, x + d, y + d), fill=foreground)
    else:
        raise ValueError(f"unknown synthetic class {kind!r}")
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    # Pixel noise.
    noise = torch.randint(-12, 13, (size, size, 3), generator=torch.Generator().manual_seed(rng.getrandbits(62)))
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(size, size, 3).to(torch.int16)
    data = (data + noise).clamp(0, 255).to(torch.uint8)
    return Image.frombytes("RGB", (size, size), data.numpy().tobytes())


def make_synthetic_dataset(root: Path, classes: int = 4, train_per_class: int = 50, val_per_class: int = 15,
                           size: int = 256, seed: int = 0, log=print) -> Path:
    """Writes ``root/train/<class>/*.jpg`` and ``root/val/<class>/*.jpg`` (some
    images are a bit larger than ``size`` and not square, so the rescale and
    centre crop do work). Reuses ``root`` if it already holds the same dataset."""
    require_pillow()
    if not 1 <= classes <= len(SYNTHETIC_CLASSES):
        raise DataError(f"--synthetic-classes must be between 1 and {len(SYNTHETIC_CLASSES)}")
    root = Path(root)
    spec = dict(version=2, classes=classes, train_per_class=train_per_class, val_per_class=val_per_class,
                size=size, seed=seed)
    marker = root / "synthetic.json"
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == spec:
                return root
        except (OSError, ValueError):
            pass
    log(f"drawing a synthetic dataset in {root}: {classes} classes, {train_per_class} training and "
        f"{val_per_class} validation images per class")
    rng = random.Random(seed)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for kind in SYNTHETIC_CLASSES[:classes]:
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = draw_synthetic(kind, rng, size)
                if rng.random() < 0.3:  # some non-square, larger images
                    image = image.resize((int(size * rng.uniform(1.0, 1.4)), int(size * rng.uniform(1.0, 1.2))))
                image.save(folder / f"{kind}_{i:04d}.jpg", quality=90)
    marker.write_text(json.dumps(spec))
    return root


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
