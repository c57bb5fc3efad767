"""The image pipeline of `alexnet-fast train`, with Pillow and torch only.

* :func:`scan_split` reads an ImageFolder-style directory (one sub-folder of
  images per class) and reports what it skipped (empty classes, files that
  are not images) instead of failing.
* :func:`load_256` decodes an image and applies the paper's pre-processing:
  rescale so the short side is ``resize`` (256), centre-crop ``resize`` x
  ``resize``. Result: a uint8 tensor ``3 x 256 x 256``.
* :func:`compute_stats` computes, once, the training set's per-channel mean
  and RGB covariance (eigenvalues/eigenvectors for the PCA colour
  augmentation); :func:`load_or_compute_stats` caches them in a JSON file.
* :class:`ImageDataset` applies the augmentation: random ``crop x crop``
  crops (227 for the paper's network, 224 for torchvision's), horizontal
  flips, the paper's PCA colour noise, mean subtraction; or for evaluation the
  centre crop / the 10 crops (four corners and centre, plus mirrors).
  The random numbers of an image in an epoch come from a generator seeded with
  ``(seed, epoch, index)``: the same whatever the number of worker processes,
  and a resumed run draws exactly what the uninterrupted one drew.

Pixel scale: the network sees 0..255 intensities minus the per-channel mean
(as in the paper, whose initialisation is tuned for that scale). The PCA
statistics are those of intensities in [0, 1]; the colour noise
``[p1 p2 p3][a1 l1, a2 l2, a3 l3]^T`` is computed in those units and
multiplied by 255 when it is added.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

try:
    from PIL import Image
except ImportError:  # pragma: no cover - reported by require_pillow
    Image = None

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp")
PCA_STD = 0.1  # the paper's a_i ~ N(0, 0.1^2)
STATS_VERSION = 1


class DataError(Exception):
    """A problem with the dataset that stops the run (the message says what to do)."""


def require_pillow() -> None:
    if Image is None:
        raise DataError("reading images needs Pillow: pip install pillow")


# --- Layout -------------------------------------------------------------------
@dataclass
class Split:
    """One split (train or val): class names, (path, label) samples, warnings."""

    root: Path
    classes: list[str]
    samples: list[tuple[str, int]]
    problems: list[str] = field(default_factory=list)


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def scan_split(root: Path, classes: list[str] | None = None) -> Split:
    """Lists ``root/<class>/<image>``. With ``classes`` (the training split's),
    the labels follow that list and a folder not in it is skipped with a
    warning; otherwise the classes are the sorted sub-folder names."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    stray = sorted(p.name for p in root.iterdir() if p.is_file() and _is_image(p.name))
    problems: list[str] = []
    if not folders:
        hint = f" ({len(stray)} images lie directly in it: put them in one sub-folder per class)" if stray else ""
        raise DataError(f"{root}: no class sub-folders{hint}; expected {root}/<class>/<image>.jpg")
    if stray:
        problems.append(f"{root}: {len(stray)} images outside any class folder ignored")
    if classes is None:
        classes = folders
    index = {name: i for i, name in enumerate(classes)}
    samples: list[tuple[str, int]] = []
    for name in folders:
        if name not in index:
            problems.append(f"{root / name}: class not in the training set, skipped")
            continue
        files = sorted(os.listdir(root / name))
        images = [f for f in files if _is_image(f) and (root / name / f).is_file()]
        others = [f for f in files if not _is_image(f) and not f.startswith(".")]
        if others:
            problems.append(f"{root / name}: {len(others)} files that are not images ignored (e.g. {others[0]})")
        if not images:
            problems.append(f"{root / name}: empty class (no images)")
        samples.extend((str(root / name / f), index[name]) for f in images)
    if not samples:
        raise DataError(f"{root}: no images found (extensions: {' '.join(IMAGE_EXTENSIONS)})")
    return Split(root, list(classes), samples, problems)


def scan_dataset(data: Path) -> tuple[Split, Split | None, list[str]]:
    """``data/train`` and ``data/val``: (train, val or None, problems)."""
    data = Path(data)
    if not data.exists():
        raise DataError(f"--data {data}: no such directory")
    if not data.is_dir():
        raise DataError(f"--data {data}: not a directory")
    train_dir, val_dir = data / "train", data / "val"
    if not train_dir.is_dir():
        subdirs = sorted(p.name for p in data.iterdir() if p.is_dir())
        hint = (f"; found {', '.join(subdirs[:5])}{' ...' if len(subdirs) > 5 else ''}: if these are classes, "
                f"move them into {train_dir}" if subdirs else "")
        raise DataError(f"--data {data}: expected {train_dir}/<class>/<image> and {val_dir}/<class>/<image>{hint}")
    train = scan_split(train_dir)
    problems = list(train.problems)
    val = None
    if not val_dir.is_dir():
        problems.append(f"{val_dir}: missing: no validation (the learning rate follows the training error)")
    else:
        try:
            val = scan_split(val_dir, train.classes)
            problems.extend(val.problems)
        except DataError as error:
            problems.append(f"{error}: no validation (the learning rate follows the training error)")
    return train, val, problems


# --- Decoding and pre-processing --------------------------------------------------
def load_256(path: str, resize: int = 256) -> Tensor:
    """The paper's pre-processing: decode (RGB), rescale so the short side is
    ``resize``, centre-crop ``resize x resize``. Returns uint8 ``3 x resize x resize``.
    Raises OSError/ValueError for a missing or corrupt file."""
    require_pillow()
    with Image.open(path) as image:
        image = image.convert("RGB")
        width, height = image.size
        if width < 1 or height < 1:
            raise ValueError("empty image")
        scale = resize / min(width, height)
        new_w, new_h = max(resize, round(width * scale)), max(resize, round(height * scale))
        if (new_w, new_h) != (width, height):
            image = image.resize((new_w, new_h), Image.BILINEAR)
        left, top = (new_w - resize) // 2, (new_h - resize) // 2
        image = image.crop((left, top, left + resize, top + resize))
        data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return data.view(resize, resize, 3).permute(2, 0, 1).contiguous()


# --- Training-set statistics ---------------------------------------------------
@dataclass
class Stats:
    """Per-channel mean (0..255) and the RGB covariance's eigen-decomposition
    (intensities in [0, 1]): ``eigvals`` (3,), ``eigvecs`` (3, 3), columns p_i."""

    mean: Tensor
    eigvals: Tensor
    eigvecs: Tensor
    images: int

    def to_json(self) -> dict:
        return dict(mean=self.mean.tolist(), eigvals=self.eigvals.tolist(), eigvecs=self.eigvecs.tolist(),
                    images=self.images)

    @classmethod
    def from_json(cls, data: dict) -> "Stats":
        return cls(torch.tensor(data["mean"], dtype=torch.float64), torch.tensor(data["eigvals"], dtype=torch.float64),
                   torch.tensor(data["eigvecs"], dtype=torch.float64), int(data["images"]))


def compute_stats(samples, resize: int = 256, progress=None) -> tuple[Stats, list[str]]:
    """Mean and covariance of every pixel of the pre-processed training images,
    accumulated in float64. Returns (stats, paths that could not be read)."""
    total = torch.zeros(3, dtype=torch.float64)
    outer = torch.zeros(3, 3, dtype=torch.float64)
    count, images, bad = 0, 0, []
    for path, _ in samples:
        try:
            pixels = load_256(path, resize).reshape(3, -1).to(torch.float64) / 255.0
        except Exception:
            bad.append(path)
            continue
        total += pixels.sum(1)
        outer += pixels @ pixels.T
        count += pixels.shape[1]
        images += 1
        if progress is not None:
            progress()
    if images == 0:
        raise DataError("no training image could be read")
    mean = total / count
    cov = outer / count - torch.outer(mean, mean)
    eigvals, eigvecs = torch.linalg.eigh(cov)
    eigvals = eigvals.clamp_min(0).flip(0)  # largest first
    eigvecs = eigvecs.flip(1)
    return Stats(mean * 255.0, eigvals, eigvecs, images), bad


def _fingerprint(samples, resize: int) -> str:
    digest = hashlib.sha256(f"v{STATS_VERSION} resize={resize}\n".encode())
    for path, label in samples:
        try:
            stat = os.stat(path)
            digest.update(f"{path}\t{label}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\t{label}\tmissing\n".encode())
    return digest.hexdigest()


def load_or_compute_stats(samples, cache: Path, resize: int = 256, log=print, progress_factory=None):
    """Stats from ``cache`` if it was computed for exactly these files; else
    computes and writes them (atomically). Returns (stats, unreadable paths)."""
    cache = Path(cache)
    key = _fingerprint(samples, resize)
    if cache.is_file():
        try:
            data = json.loads(cache.read_text())
            if data.get("fingerprint") == key:
                return Stats.from_json(data["stats"]), list(data.get("unreadable", []))
        except (OSError, ValueError, KeyError):
            pass
    log(f"computing the training set's mean and RGB covariance ({len(samples)} images, cached in {cache})")
    progress = progress_factory(len(samples), "stats") if progress_factory else None
    try:
        stats, bad = compute_stats(samples, resize, progress.update if progress is not None else None)
    finally:
        if progress is not None:
            progress.close()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(dict(fingerprint=key, stats=stats.to_json(), unreadable=bad), indent=1))
        os.replace(tmp, cache)
    except OSError as error:
        log(f"warning: could not cache the statistics in {cache}: {error}")
    return stats, bad


# --- Augmentation ----------------------------------------------------------------
def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The generator of one image in one epoch: independent of workers and resumes."""
    mixed = hashlib.blake2b(f"{seed}:{epoch}:{index}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(mixed, "little") & ((1 << 63) - 1))


def random_crop_flip(image: Tensor, crop: int, generator: torch.Generator,
                     flip: bool = True) -> tuple[Tensor, tuple[int, int, bool]]:
    """A random ``crop x crop`` window (uniform over positions) of a ``3 x H x W``
    image, mirrored with probability 1/2. Returns (crop, (top, left, flipped))."""
    _, height, width = image.shape
    if height < crop or width < crop:
        raise ValueError(f"image {height}x{width} smaller than the crop {crop}")
    top = int(torch.randint(0, height - crop + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - crop + 1, (1,), generator=generator))
    flip = bool(torch.rand((), generator=generator) < 0.5) and flip
    out = image[:, top:top + crop, left:left + crop]
    if flip:
        out = out.flip(-1)
    return out, (top, left, flip)


def pca_noise(stats: Stats, generator: torch.Generator, std: float = PCA_STD) -> tuple[Tensor, Tensor]:
    """The paper's colour noise ``[p1 p2 p3][a1 l1, a2 l2, a3 l3]^T`` with
    a_i ~ N(0, std^2), in [0, 1] intensity units. Returns (rgb (3,), alphas (3,))."""
    alphas = torch.randn(3, generator=generator, dtype=torch.float64) * std
    return stats.eigvecs @ (alphas * stats.eigvals), alphas


def crop_positions(size: int, crop: int) -> list[tuple[int, int]]:
    """(top, left) of the paper's five crops: four corners, then the centre."""
    far, mid = size - crop, (size - crop) // 2
    return [(0, 0), (0, far), (far, 0), (far, far), (mid, mid)]


def ten_crops(image: Tensor, crop: int) -> Tensor:
    """``10 x 3 x crop x crop``: the four corner crops and the centre crop, then
    the same five mirrored. Index 4 is the plain centre crop."""
    _, height, width = image.shape
    if height != width:
        raise ValueError("ten_crops expects a square image")
    crops = [image[:, t:t + crop, l:l + crop] for t, l in crop_positions(height, crop)]
    crops += [c.flip(-1) for c in crops]
    return torch.stack(crops)


def center_crop(image: Tensor, crop: int) -> Tensor:
    _, height, width = image.shape
    top, left = (height - crop) // 2, (width - crop) // 2
    return image[:, top:top + crop, left:left + crop]


def normalize(image: Tensor, mean: Tensor, noise: Tensor | None = None, scale: float = 1.0) -> Tensor:
    """uint8 (..., 3, H, W) -> float32 0..255 minus the channel mean, plus 255 x noise
    (times ``scale``, 1 in the paper)."""
    shift = mean.to(torch.float64).clone()
    if noise is not None:
        shift = shift - 255.0 * noise
    out = image.to(torch.float32) - shift.to(torch.float32).view(3, 1, 1)
    return out if scale == 1.0 else out * scale


class ImageDataset(torch.utils.data.Dataset):
    """Samples -> (tensor, label). ``mode``: 'train' (random crop + flip + PCA
    noise), 'center' (``3 x crop x crop``) or 'ten' (``10 x 3 x crop x crop``).
    A file that cannot be read gives None (dropped by :func:`collate`, reported
    once on stderr)."""

    def __init__(self, samples, stats: Stats, mode: str = "train", crop: int = 227, resize: int = 256,
                 seed: int = 0, pca_std: float = PCA_STD, flip: bool = True, cache_images: bool = False,
                 scale: float = 1.0):
        if mode not in ("train", "center", "ten"):
            raise ValueError(mode)
        if crop > resize:
            raise ValueError(f"crop {crop} larger than the rescaled image {resize}")
        self.samples = list(samples)
        self.stats, self.mode, self.crop, self.resize = stats, mode, crop, resize
        self.seed, self.pca_std, self.flip, self.scale = seed, pca_std, flip, scale
        self.epoch = 0
        self._cache: dict[int, Tensor] | None = {} if cache_images else None
        self._reported: set[str] = set()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def image(self, index: int) -> Tensor:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        image = load_256(self.samples[index][0], self.resize)
        if self._cache is not None:
            self._cache[index] = image
        return image

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            image = self.image(index)
        except Exception as error:
            if path not in self._reported:
                self._reported.add(path)
                print(f"warning: skipping unreadable image {path}: {type(error).__name__}: {error}",
                      file=sys.stderr, flush=True)
            return None
        mean = self.stats.mean
        if self.mode == "train":
            generator = sample_generator(self.seed, self.epoch, index)
            crop, _ = random_crop_flip(image, self.crop, generator, self.flip)
            noise = pca_noise(self.stats, generator, self.pca_std)[0] if self.pca_std > 0 else None
            return normalize(crop, mean, noise, self.scale), label
        if self.mode == "center":
            return normalize(center_crop(image, self.crop), mean, None, self.scale), label
        return normalize(ten_crops(image, self.crop), mean, None, self.scale), label


def collate(batch):
    """default_collate without the unreadable samples (None); None if none is left."""
    batch = [item for item in batch if item is not None]
    if not batch:
        return None
    return torch.utils.data.default_collate(batch)
