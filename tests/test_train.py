"""`alexnet-fast train`: the paper's pre-processing and augmentation, the
dataset checks, a tiny end-to-end run, exact resume, and a 2-process DDP run
on the CPU (gloo). The runs use ``--model tiny``
(a small CNN) so they take seconds; the 256/227 pipeline, PCA noise and 10-crop
evaluation are exercised on a few real images."""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from alexnet_fast.cli import build_parser, main, train as cli  # noqa: E402
from alexnet_fast.train import data as D, metrics  # noqa: E402
from alexnet_fast.train.demo import TinyNet, make_synthetic_dataset  # noqa: E402


# --- helpers -----------------------------------------------------------------------
def _stats(eigvals=(0.2, 0.02, 0.005)) -> D.Stats:
    q, _ = torch.linalg.qr(torch.tensor([[1.0, 0.2, 0.3], [0.1, 1.0, 0.4], [0.5, 0.3, 1.0]], dtype=torch.float64))
    return D.Stats(torch.tensor([120.0, 110.0, 100.0], dtype=torch.float64),
                   torch.tensor(eigvals, dtype=torch.float64), q, 1)


def _position_image(size: int = 256) -> torch.Tensor:
    """uint8 3 x size x size whose channels 0, 1 encode the row and column (mod 256)."""
    rows = torch.arange(size).view(size, 1).expand(size, size)
    cols = torch.arange(size).view(1, size).expand(size, size)
    return torch.stack([rows, cols, (rows + cols) % 7]).to(torch.uint8)


@pytest.fixture
def restore_torch_state():
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)


def _run(argv) -> int:
    return main(["train", *map(str, argv)])


def _steps(path: Path) -> list[tuple[str, str, float]]:
    with open(path) as f:
        return [(r["epoch"], r["step"], float(r["loss"])) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    """A small synthetic ImageFolder dataset at 64 px (for the fast runs)."""
    root = tmp_path_factory.mktemp("shapes")
    make_synthetic_dataset(root, classes=3, train_per_class=8, val_per_class=3, size=64, seed=1, log=lambda m: None)
    return root


TINY = ["--model", "tiny", "--resize", "64", "--crop-size", "56", "--workers", "0", "--threads", "1",
        "--no-progress", "--batch-size", "8", "--input-scale", "1"]


# --- augmentation -------------------------------------------------------------------
def test_random_crop_positions_sizes_and_flips():
    image = _position_image()
    tops, lefts, flips = [], [], 0
    for index in range(400):
        crop, (top, left, flipped) = D.random_crop_flip(image, 227, D.sample_generator(0, 0, index))
        assert crop.shape == (3, 227, 227)
        expected = image[:, top:top + 227, left:left + 227]
        assert torch.equal(crop, expected.flip(-1) if flipped else expected)
        assert 0 <= top <= 29 and 0 <= left <= 29
        tops.append(top), lefts.append(left)
        flips += flipped
    # Every offset 0..29 is possible and the draws are spread out.
    assert min(tops) == 0 and max(tops) == 29 and min(lefts) == 0 and max(lefts) == 29
    assert abs(sum(tops) / len(tops) - 14.5) < 2.0
    assert 150 < flips < 250
    # Same (seed, epoch, index): same crop; another epoch: another crop.
    a = D.random_crop_flip(image, 227, D.sample_generator(3, 1, 5))[1]
    assert a == D.random_crop_flip(image, 227, D.sample_generator(3, 1, 5))[1]
    assert any(a != D.random_crop_flip(image, 227, D.sample_generator(3, e, 5))[1] for e in range(2, 6))
    # --no-flip
    for index in range(20):
        assert not D.random_crop_flip(image, 224, D.sample_generator(0, 0, index), flip=False)[1][2]


def test_pca_noise_statistics():
    stats = _stats()
    draws = [D.pca_noise(stats, D.sample_generator(0, 0, i)) for i in range(4000)]
    noise = torch.stack([d[0] for d in draws])
    alphas = torch.stack([d[1] for d in draws])
    # noise = [p1 p2 p3][a1 l1, a2 l2, a3 l3]^T exactly
    for (n, a) in draws[:10]:
        assert torch.allclose(n, sum(stats.eigvecs[:, i] * a[i] * stats.eigvals[i] for i in range(3)))
    # a_i ~ N(0, 0.1^2), independent
    assert alphas.mean(0).abs().max() < 0.01
    assert torch.allclose(alphas.std(0), torch.full((3,), 0.1, dtype=torch.float64), rtol=0.06)
    corr = torch.corrcoef(alphas.T)
    assert (corr - torch.eye(3, dtype=torch.float64)).abs().max() < 0.06
    # projected on p_i, the noise has std 0.1 * l_i
    projected = noise @ stats.eigvecs
    assert torch.allclose(projected.std(0), 0.1 * stats.eigvals, rtol=0.06)
    assert D.pca_noise(stats, D.sample_generator(0, 0, 0), std=0.0)[0].abs().max() == 0


def test_ten_crops_positions_and_mirrors():
    image = _position_image()
    crops = D.ten_crops(image, 227)
    assert crops.shape == (10, 3, 227, 227)
    expected = [(0, 0), (0, 29), (29, 0), (29, 29), (14, 14)]
    assert D.crop_positions(256, 227) == expected
    for i, (top, left) in enumerate(expected):
        assert int(crops[i, 0, 0, 0]) == top and int(crops[i, 1, 0, 0]) == left
        assert torch.equal(crops[i], image[:, top:top + 227, left:left + 227])
        assert torch.equal(crops[i + 5], crops[i].flip(-1))
    assert torch.equal(crops[4], D.center_crop(image, 227))
    assert D.crop_positions(256, 224) == [(0, 0), (0, 32), (32, 0), (32, 32), (16, 16)]


def test_mean_subtraction_and_noise_scale():
    image = _position_image()
    stats = _stats()
    out = D.normalize(image, stats.mean)
    assert out.dtype == torch.float32
    assert torch.equal(out, image.float() - stats.mean.float().view(3, 1, 1))
    noise = torch.tensor([0.01, -0.02, 0.03], dtype=torch.float64)
    shifted = D.normalize(image, stats.mean, noise)
    assert torch.allclose(shifted - out, (255 * noise).float().view(3, 1, 1), atol=1e-4)


def test_rescale_centre_crop_and_stats(tmp_path):
    # 512 x 300 (W x H): short side 300 -> 256, width 437, centre crop 256.
    left = Image.new("RGB", (256, 300), (255, 0, 0))
    full = Image.new("RGB", (512, 300), (0, 0, 255))
    full.paste(left, (0, 0))
    full.save(tmp_path / "wide.png")
    image = D.load_256(str(tmp_path / "wide.png"))
    assert image.shape == (3, 256, 256) and image.dtype == torch.uint8
    # The crop spans columns 90..346 of the 437-wide image: red left of ~218, blue right.
    assert tuple(image[:, 128, 5].tolist()) == (255, 0, 0) and tuple(image[:, 128, 250].tolist()) == (0, 0, 255)
    Image.new("L", (100, 256), 77).save(tmp_path / "grey_small.png")  # upscaled, grey -> RGB
    small = D.load_256(str(tmp_path / "grey_small.png"))
    assert small.shape == (3, 256, 256) and int(small.min()) == int(small.max()) == 77
    # Mean and covariance: against a direct computation.
    samples = [(str(tmp_path / "wide.png"), 0), (str(tmp_path / "grey_small.png"), 0)]
    stats, bad = D.compute_stats(samples)
    assert bad == []
    pixels = torch.cat([image.reshape(3, -1), small.reshape(3, -1)], 1).double() / 255
    assert torch.allclose(stats.mean, pixels.mean(1) * 255)
    cov = torch.cov(pixels, correction=0)
    rebuilt = stats.eigvecs @ torch.diag(stats.eigvals) @ stats.eigvecs.T
    assert torch.allclose(rebuilt, cov, atol=1e-10)
    assert stats.eigvals[0] >= stats.eigvals[1] >= stats.eigvals[2] >= 0
    # Cached: the second call reads the file.
    cache = tmp_path / "stats.json"
    first, _ = D.load_or_compute_stats(samples, cache, log=lambda m: None)
    assert cache.is_file()
    again, _ = D.load_or_compute_stats(samples, cache, log=lambda m: pytest.fail("recomputed"))
    assert torch.allclose(first.mean, again.mean) and torch.allclose(first.eigvecs, again.eigvecs)


def test_dataset_paper_pipeline_on_real_images(shapes, tmp_path):
    root = tmp_path / "data"
    make_synthetic_dataset(root, classes=2, train_per_class=2, val_per_class=1, seed=3, log=lambda m: None)
    train, val, problems = D.scan_dataset(root)
    assert problems == [] and train.classes == ["circle", "stripes"] and len(train.samples) == 4
    stats, _ = D.compute_stats(train.samples)
    ds = D.ImageDataset(train.samples, stats, "train", 227)
    ds.set_epoch(2)
    x, label = ds[1]
    assert x.shape == (3, 227, 227) and label == 0  # circle_0001
    # Exactly: crop/flip of the 256 image, plus noise, minus the mean.
    generator = D.sample_generator(0, 2, 1)
    crop, _ = D.random_crop_flip(D.load_256(train.samples[1][0]), 227, generator)
    noise, _ = D.pca_noise(stats, generator)
    assert torch.allclose(x, D.normalize(crop, stats.mean, noise))
    ten = D.ImageDataset(val.samples, stats, "ten", 227)[0][0]
    assert ten.shape == (10, 3, 227, 227)
    centre = D.ImageDataset(val.samples, stats, "center", 227)[0][0]
    assert torch.equal(ten[4], centre)


# --- dataset problems ------------------------------------------------------------------
def test_layout_problems_are_reported(tmp_path):
    with pytest.raises(D.DataError, match="no such directory"):
        D.scan_dataset(tmp_path / "missing")
    flat = tmp_path / "flat"
    (flat / "cats").mkdir(parents=True)
    with pytest.raises(D.DataError, match="move them into"):
        D.scan_dataset(flat)
    (tmp_path / "loose" / "train").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "loose" / "train" / "a.png")
    with pytest.raises(D.DataError, match="one sub-folder per class"):
        D.scan_dataset(tmp_path / "loose")
    root = tmp_path / "ok"
    for cls in ("a", "b", "empty"):
        (root / "train" / cls).mkdir(parents=True)
    for cls in ("a", "b"):
        Image.new("RGB", (8, 8)).save(root / "train" / cls / "x.png")
    (root / "train" / "a" / "notes.txt").write_text("hi")
    train, val, problems = D.scan_dataset(root)
    assert train.classes == ["a", "b", "empty"] and len(train.samples) == 2 and val is None
    text = "\n".join(problems)
    assert "empty class" in text and "not images" in text and "no validation" in text
    (root / "val" / "zebra").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "val" / "zebra" / "z.png")
    (root / "val" / "a").mkdir()
    Image.new("RGB", (8, 8)).save(root / "val" / "a" / "z.png")
    train, val, problems = D.scan_dataset(root)
    assert val.samples == [(str(root / "val" / "a" / "z.png"), 0)]
    assert any("not in the training set" in p for p in problems)


def test_bad_data_dir_exits_cleanly(tmp_path, capsys, restore_torch_state):
    assert _run(["--data", tmp_path / "nope", "--output", tmp_path / "out", *TINY]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_corrupt_and_missing_images_are_skipped(shapes, tmp_path, capsys, restore_torch_state):
    root = tmp_path / "data"
    for split in ("train", "val"):
        for folder in (shapes / split).iterdir():
            (root / split / folder.name).mkdir(parents=True)
            for f in sorted(folder.iterdir())[:3]:
                (root / split / folder.name / f.name).write_bytes(f.read_bytes())
    (root / "train" / "circle" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "val" / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    (root / "train" / "ghost").mkdir()  # empty class
    status = _run(["--data", root, "--output", tmp_path / "out", "--epochs", "1", "--ten-crop", "every", *TINY])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "could not be read" in err and "broken.jpg" in err
    assert "broken.png" in err and "empty class" in err
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics[0]["images"] == 9 and metrics[0]["val_images"] == 9


# --- training runs -----------------------------------------------------------------------
def test_end_to_end_loss_falls_with_paper_pipeline(shapes, tmp_path, restore_torch_state):
    out = tmp_path / "run"
    status = _run(["--data", shapes, "--output", out, "--epochs", "20", "--lr", "0.02", "--dropout", "0",
                   "--ten-crop", "final", "--plot", "--lr-patience", "30", *TINY])
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["epoch"] for m in metrics] == list(range(1, 21))
    first = sum(m["train_loss"] for m in metrics[:3]) / 3
    last = sum(m["train_loss"] for m in metrics[-3:]) / 3
    assert last < 0.75 * first, [round(m["train_loss"], 3) for m in metrics]
    assert "val10_top1_err" in metrics[-1] and "val10_top1_err" not in metrics[0]
    with open(out / "metrics.csv") as f:
        assert len(list(csv.DictReader(f))) == 20
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["epoch"] == 20 and set(state) >= {"model", "optimizer", "scheduler", "rng", "classes"}
    assert (out / "best.pt").is_file() and not list(out.glob(".*.tmp"))

    # The paper's 256 -> 227 pipeline with PCA noise and 10-crop evaluation, on a few images.
    paper = tmp_path / "paper"
    status = _run(["--output", paper, "--synthetic-classes", "2", "--synthetic-train", "3", "--synthetic-val", "2",
                   "--model", "tiny", "--epochs", "1", "--batch-size", "3", "--workers", "1", "--threads", "1",
                   "--no-progress", "--ten-crop", "every"])
    assert status == 0
    state = torch.load(paper / "checkpoint.pt", weights_only=False)
    assert state["crop"] == 227 and state["args"]["resize"] == 256
    metrics = json.loads((paper / "metrics.json").read_text())
    assert metrics[0]["val_images"] == 4 and "val10_top5_err" in metrics[0]


def test_resume_matches_uninterrupted_run(shapes, tmp_path, restore_torch_state):
    common = ["--data", shapes, "--epochs", "4", "--lr", "0.05", "--dropout", "0.5", "--lr-patience", "0",
              "--deterministic", "--ten-crop", "never", "--seed", "7", *TINY]
    assert _run([*common, "--output", tmp_path / "full"]) == 0
    interrupted = [c if c != "4" else "2" for c in common]
    assert _run([*interrupted, "--output", tmp_path / "part"]) == 0
    assert _run([*common, "--output", tmp_path / "part", "--resume"]) == 0

    full, part = _steps(tmp_path / "full" / "steps.csv"), _steps(tmp_path / "part" / "steps.csv")
    assert len(full) == 4 * 3 and full == part  # every step's loss, bit for bit
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["scheduler"] == b["scheduler"]
    ma = json.loads((tmp_path / "full" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "part" / "metrics.json").read_text())
    strip = lambda rows: [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in rows]  # noqa: E731
    assert strip(ma) == strip(mb)


@pytest.mark.slow
def test_ddp_two_processes_gloo(shapes, tmp_path):
    """torchrun with 2 CPU processes (gloo): the ranks end with the same
    parameters, and those match a 1-process run with the same global batch."""
    args = ["--data", str(shapes), "--epochs", "1", "--max-steps", "2", "--dropout", "0", "--lr", "0.05",
            "--ten-crop", "never", "--device", "cpu", *map(str, TINY)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    ddp_dir.mkdir(), single_dir.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "alexnet_fast.train", *args, "--output", str(ddp_dir), "--dump-params", str(ddp_dir)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "parameters differ" not in result.stderr
    rank0 = torch.load(ddp_dir / "params-rank0.pt")
    rank1 = torch.load(ddp_dir / "params-rank1.pt")
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    metrics = json.loads((ddp_dir / "metrics.json").read_text())
    assert metrics[0]["images"] == 16  # 2 steps x global batch 8
    assert metrics[0]["val_images"] == 9  # every validation image once

    command = [sys.executable, "-m", "alexnet_fast.train", *args, "--output", str(single_dir),
               "--dump-params", str(single_dir)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    single = torch.load(single_dir / "params-rank0.pt")
    initial = TinyNet(3).state_dict()
    for key in single:
        assert torch.allclose(single[key], rank0[key], atol=1e-6, rtol=1e-5), key
    assert any(not torch.equal(single[k], initial[k]) for k in single)


def test_defaults_paper_with_data_and_demo_without():
    parser = build_parser()
    paper = cli.finish_args(parser.parse_args(["train", "--data", "somewhere"]))
    assert (paper.model, paper.lr, paper.batch_size, paper.momentum, paper.weight_decay, paper.epochs) == (
        "paper", 0.01, 128, 0.9, 5e-4, 90)
    assert (paper.lr_factor, paper.input_scale, paper.pca_std, paper.warmup_epochs, paper.clip_grad_norm) == (
        0.1, 1.0, 0.1, 0, None)
    demo = cli.finish_args(parser.parse_args(["train"]))
    assert demo.data is None and demo.model == "torchvision" and demo.input_scale == pytest.approx(1 / 60, rel=0.01)
    given = cli.finish_args(parser.parse_args(["train", "--model", "paper", "--lr", "0.005", "--epochs", "2"]))
    assert (given.model, given.lr, given.epochs, given.input_scale) == ("paper", 0.005, 2, 1.0)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--batch-size", "0"])


# --- hints and flags ---------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_a_backend_that_cannot_run_is_an_error_before_any_data_is_read(tmp_path, capsys, restore_torch_state):
    for backend, named in (("cuda", "--backend cuda cannot be used on cpu"), ("gpu", "--backend gpu")):
        assert _run(["--output", tmp_path / backend, "--backend", backend, "--model", "paper"]) == 2
        err = capsys.readouterr().err
        assert named in err and "use one of: auto, reference, cpu" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / backend).exists()  # no synthetic data drawn, no statistics computed


def test_divergence_watch_on_synthetic_losses():
    watch = metrics.DivergenceWatch()
    assert [watch.check(loss, 0, step) for step, loss in enumerate([2.2, 3.0, 8.0])] == [None, None, None]
    message = watch.check(13.0, 0, 3)  # 5.9x the first loss
    assert watch.diverged and message.startswith("the loss rose to 13 at epoch 1, step 3, 5.9x")
    assert watch.check(105.7, 0, 4) is None  # warned once
    assert watch.check(float("nan"), 0, 5) == "the loss is nan at epoch 1, step 5"  # a NaN always says so
    resumed = metrics.DivergenceWatch(first=2.2)
    assert resumed.check(10.0, 3, 0) is None and resumed.check(11.5, 3, 1) is not None


def test_divergence_warns_with_hints_and_can_end_the_run(shapes, tmp_path, capsys, restore_torch_state):
    common = ["--data", shapes, "--epochs", "2", "--lr", "5", "--ten-crop", "never", *TINY]
    assert _run([*common, "--output", tmp_path / "warned"]) == 0
    err = capsys.readouterr().err
    assert "the run is diverging" in err and "x the first step's" in err
    for tip in ("a lower --lr (now 5; try 0.5)", "--warmup-epochs 1", "a larger --batch-size (now 8)",
                "--clip-grad-norm 1"):
        assert tip in err
    assert "the loss diverged during the run" in err.strip().splitlines()[-1]
    history = json.loads((tmp_path / "warned" / "metrics.json").read_text())
    assert [row["diverged"] for row in history] == [True, True]

    assert _run([*common, "--output", tmp_path / "stopped", "--stop-on-divergence"]) == 2
    err = capsys.readouterr().err
    assert "stopped (--stop-on-divergence)" in err and "Traceback" not in err
    steps = _steps(tmp_path / "stopped" / "steps.csv")
    warned = _steps(tmp_path / "warned" / "steps.csv")
    first = warned[0][2]
    diverged_at = next(i for i, (_, _, loss) in enumerate(warned) if loss > metrics.DIVERGENCE_FACTOR * first)
    assert steps == warned[:diverged_at]  # ended at the step that diverged
    assert not (tmp_path / "stopped" / "checkpoint.pt").exists()


def test_top5_only_with_more_than_5_classes(capsys):
    from alexnet_fast.train import loop
    from alexnet_fast.train.distributed import Distributed

    for classes in (4, 7):
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, classes))
        batches = [(torch.randn(5, 3, 2, 2), torch.randint(0, classes, (5,))) for _ in range(3)]
        result = loop.evaluate(model, batches, torch.device("cpu"), False, torch.nn.CrossEntropyLoss(), False,
                               Distributed("cpu"))
        with torch.no_grad():
            scores = torch.cat([model(x) for x, _ in batches])
        labels = torch.cat([y for _, y in batches])
        ranks = (scores > scores.gather(1, labels[:, None])).sum(1)  # how many classes score above the label
        assert result["val_top1_err"] == pytest.approx(float((ranks >= 1).double().mean()))
        if classes <= 5:
            assert result["val_top5_err"] is None
        else:
            assert result["val_top5_err"] == pytest.approx(float((ranks >= 5).double().mean()))
        row = dict(result, epoch=1, lr=0.1, train_loss=1.0, train_top1_err=0.5, epoch_seconds=1.0)
        line = metrics.epoch_summary(row, 3, classes)
        assert ("top-5" in line) == (classes > 5) and f"(chance {1 - 1 / classes:.3f})" in line


def test_curves_have_whole_epochs_and_no_empty_top5_curve():
    pytest.importorskip("matplotlib")
    history = [dict(epoch=e, train_loss=2.0 / e, val_loss=2.1 / e, train_top1_err=0.6 / e, val_top1_err=0.7 / e,
                    val_top5_err=None) for e in (1, 2, 3)]
    figure = metrics.curves_figure(history)
    for ax in figure.axes:
        ticks = [t for t in ax.xaxis.get_majorticklocs() if 1 <= t <= 3]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    labels = figure.axes[1].get_legend_handles_labels()[1]
    assert "val top-1" in labels and "val top-5" not in labels


def test_keep_best_only_writes_no_checkpoint_and_sizes_are_listed(shapes, tmp_path, capsys, restore_torch_state):
    common = ["--data", shapes, "--epochs", "1", "--lr", "0.02", "--ten-crop", "never", *TINY]
    assert _run([*common, "--output", tmp_path / "full"]) == 0
    done = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.search(r"checkpoint\.pt \(\d+ KiB\), best\.pt \(\d+ KiB\), metrics\.csv \(\d+ B\)", done), done
    assert _run([*common, "--output", tmp_path / "best", "--keep-best-only"]) == 0
    assert (tmp_path / "best" / "best.pt").is_file() and not (tmp_path / "best" / "checkpoint.pt").exists()
    assert "checkpoint.pt" not in capsys.readouterr().err.strip().splitlines()[-1]
    best = torch.load(tmp_path / "best" / "best.pt", weights_only=False)
    assert best["epoch"] == 1 and set(best) >= {"model", "classes", "stats"}
    for conflict in (["--no-save-best"], ["--resume"]):
        assert _run([*common, "--output", tmp_path / "x", "--keep-best-only", *conflict]) == 2
        err = capsys.readouterr().err
        assert "--keep-best-only" in err and conflict[0] in err and not (tmp_path / "x").exists()
