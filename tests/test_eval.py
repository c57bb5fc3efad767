"""`alexnet-fast eval` (alexnet_fast.evaluate) and checkpoint reading
(alexnet_fast.checkpoints).

The scoring is checked on images drawn here whose labels and whose crops'
contents are known, with stand-in networks whose predictions follow from
them, so every error rate has a value worked out by hand; then end to end:
a checkpoint written by `alexnet-fast train` scores as the trainer's own
validation did, on every backend and as an exported ONNX file.
"""
import importlib.util
import json
import subprocess
import sys

import pytest
import torch

from alexnet_fast import checkpoints, evaluate
from alexnet_fast.train import data as D

CLASSES = [f"class{i}" for i in range(6)]
BORDER = 10  # pixels of each image's frame
MEAN = torch.tensor([10.0, 20.0, 30.0])
SCALE = 0.5


def red(label: int) -> int:
    return 20 + 40 * label


def write_images(root, per_class=2):
    """256x256 PNGs: the red channel is red(i) inside and red(i + 1 mod 6) in
    a 10-pixel frame. Of the 10 crops (227 px), the top-left pixel lies in
    the frame for 6 (the corners other than the bottom-right, and 4
    mirrors' top-right), inside for the centre crop and 3 others."""
    from PIL import Image

    for label, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True)
        for n in range(per_class):
            pixels = torch.full((256, 256, 3), 100, dtype=torch.uint8)
            pixels[..., 2] = 60 + n  # images differ
            pixels[..., 0] = red((label + 1) % 6)
            pixels[BORDER:-BORDER, BORDER:-BORDER, 0] = red(label)
            Image.fromarray(pixels.numpy()).save(folder / f"{n}.png")
    return D.scan_split(root).samples


def network(name, read, shift=0):
    """A stand-in whose logits are -|r - red(j + shift)| / 4 for the red value
    r it reads from its (normalised) input: it predicts the class j whose red
    is nearest, with softmax e^-10 for a neighbour class (nearly one-hot, and
    no probability underflows to a tie at 0)."""
    centres = torch.tensor([red((j + shift) % 6) for j in range(6)], dtype=torch.float32)

    def logits(x):
        r = read(x[:, 0]) / SCALE + MEAN[0]
        return -(r[:, None] - centres).abs() / 4

    return evaluate.Network(name, CLASSES, 227, MEAN, SCALE, 256, logits)


def centre_pixel(red_plane):
    return red_plane[:, 113, 113]  # always inside the frame


def corner_pixel(red_plane):
    return red_plane[:, 0, 0]


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("images"))


def errors_by_name(result):
    return {row["name"]: {k: v for k, v in row.items() if k != "name"} for row in result["errors"]}


def test_known_errors(samples):
    oracle = network("oracle", centre_pixel)
    corners = network("corners", corner_pixel)
    # reads the centre, predicts (i - 1) mod 6; the true class is its most distant
    # guess only for class 5 (red 220, guess red(0) = 20): top-5 misses 2 of 12.
    shifted = network("shifted", centre_pixel, shift=1)
    result = evaluate.evaluate([oracle, corners, shifted], samples, batch_size=5)
    assert result["images"] == 12 and result["classes"] == 6
    errors = errors_by_name(result)
    assert errors["oracle"] == {"centre top-1": 0.0, "centre top-5": 0.0, "10 crops top-1": 0.0,
                                "10 crops top-5": 0.0}
    # centre crop inside the frame; 10 crops: 4 votes for the class, 6 for the frame's
    assert errors["corners"] == {"centre top-1": 0.0, "centre top-5": 0.0, "10 crops top-1": 1.0,
                                 "10 crops top-5": 0.0}
    assert errors["shifted"] == pytest.approx({"centre top-1": 1.0, "centre top-5": 2 / 12,
                                               "10 crops top-1": 1.0, "10 crops top-5": 2 / 12})
    # mean softmax: (e_i + (0.4 e_i + 0.6 e_frame) + e_(i-1)) / 3 -> class i wins
    assert errors["ensemble of 3"] == {"centre top-1": 0.0, "centre top-5": 0.0, "10 crops top-1": 0.0,
                                       "10 crops top-5": 0.0}


def test_ensemble_is_the_mean_of_softmax_outputs(samples):
    """Two votes against one: the majority wins the ensemble's top-1; the
    minority's class is still in its top-5."""
    oracle, shifted = network("oracle", centre_pixel), network("shifted", centre_pixel, shift=1)
    wrong = errors_by_name(evaluate.evaluate([shifted, oracle, shifted], samples, ten_crop=False))["ensemble of 3"]
    assert wrong == {"centre top-1": 1.0, "centre top-5": 0.0}
    right = errors_by_name(evaluate.evaluate([oracle, shifted, oracle], samples, ten_crop=False))["ensemble of 3"]
    assert right == {"centre top-1": 0.0, "centre top-5": 0.0}


@pytest.mark.parametrize("classes,columns", [
    (1, []), (5, ["centre top-1", "10 crops top-1"]),
    (6, ["centre top-1", "centre top-5", "10 crops top-1", "10 crops top-5"]),
])
def test_top_k_only_for_more_than_k_classes(classes, columns):
    assert evaluate.shown_columns(classes, ten_crop=True) == columns


def test_report_table(samples):
    text = evaluate.format_report(evaluate.evaluate([network("corners", corner_pixel)], samples), ten_crop=True)
    lines = text.splitlines()
    assert lines[0] == "12 images, 6 classes; error (1 - accuracy)"
    assert lines[1].split() == ["network", "centre", "top-1", "centre", "top-5", "10", "crops", "top-1", "10",
                                "crops", "top-5"]
    assert lines[2].split() == ["corners", "0.0000", "0.0000", "1.0000", "0.0000"]


# --- checkpoints ---------------------------------------------------------------------
def write_best(path, variant="paper", groups=2, classes=("a", "b"), **extra):
    from alexnet_fast.models import alexnet

    model = alexnet(variant, num_classes=len(classes), groups=groups)
    torch.save(dict(model=model.state_dict(), classes=list(classes), stats=dict(mean=[1.0, 2.0, 3.0]), epoch=3,
                    crop=model.input_size, variant=variant, **extra), path)
    return model


def test_read_checkpoint(tmp_path):
    model = write_best(tmp_path / "best.pt")
    checkpoint = checkpoints.read_checkpoint(tmp_path / "best.pt")
    assert (checkpoint.variant, checkpoint.groups, checkpoint.crop, checkpoint.resize) == ("paper", 2, 227, 256)
    assert checkpoint.input_scale == 1.0 and "does not record its input scale" in checkpoint.notes[0]
    built = checkpoint.build("reference")
    assert not built.training and built.backend == "reference"
    for name, tensor in model.state_dict().items():
        assert torch.equal(built.state_dict()[name], tensor)
    # best.pt has no training arguments: they come from checkpoint.pt beside it
    torch.save(dict(args=dict(input_scale=0.25, resize=300, groups=2), rng=[{"numpy": ("MT19937",)}]),
               tmp_path / "checkpoint.pt")
    checkpoint = checkpoints.read_checkpoint(tmp_path / "best.pt")
    assert (checkpoint.input_scale, checkpoint.resize) == (0.25, 300)
    assert checkpoints.read_checkpoint(tmp_path / "best.pt", input_scale=2.0).input_scale == 2.0
    # keys of its own win over the sibling's arguments
    write_best(tmp_path / "own.pt", "torchvision", 1, input_scale=0.0167, resize=250)
    checkpoint = checkpoints.read_checkpoint(tmp_path / "own.pt")
    assert (checkpoint.input_scale, checkpoint.resize, checkpoint.groups, checkpoint.notes) == (0.0167, 250, 1, [])


def test_checkpoint_errors(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match="nope.pt: no such checkpoint"):
        checkpoints.read_checkpoint(tmp_path / "nope.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(checkpoints.CheckpointError,
                       match=r"needs the keys model, variant and classes; found \['weights'\]"):
        checkpoints.read_checkpoint(tmp_path / "other.pt")
    write_best(tmp_path / "best.pt", classes=("a", "b", "c"))
    state = torch.load(tmp_path / "best.pt")
    state["classes"] = ["a", "b"]
    torch.save(state, tmp_path / "wrong.pt")
    with pytest.raises(checkpoints.CheckpointError, match="the weights do not fit"):
        checkpoints.read_checkpoint(tmp_path / "wrong.pt").build()


# --- the command, end to end -------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run of `alexnet-fast train` (torchvision variant, one step, 4 classes)."""
    out = tmp_path_factory.mktemp("run")
    command = [sys.executable, "-m", "alexnet_fast", "train", "-o", str(out), "--epochs", "1", "--max-steps", "1",
               "--synthetic-train", "2", "--synthetic-val", "3", "--batch-size", "4", "--workers", "0",
               "--ten-crop", "final", "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def run_eval(argv, capsys):
    code = evaluate.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="needs onnxruntime")
def test_trained_checkpoint_scores_as_in_training(trained, tmp_path, capsys):
    """eval of best.pt equals the trainer's own validation of those weights
    (its history), on the fast backend, the reference backend, and as an
    ONNX file in ONNX Runtime; and all three as an ensemble."""
    from alexnet_fast import export

    history = torch.load(trained / "checkpoint.pt", weights_only=False)["history"][-1]
    onnx_file = tmp_path / "best.onnx"
    assert export.main(["--onnx", str(onnx_file), "--checkpoint", str(trained / "best.pt")]) == 0
    data = str(trained / "synthetic-data")
    for backend in ("auto", "reference"):
        code, out, err = run_eval(["--data", data, "--checkpoint", str(trained / "best.pt"), "--backend", backend,
                                   "--workers", "0", "--json", str(tmp_path / f"{backend}.json")], capsys)
        assert code == 0, err
        (row,) = json.loads((tmp_path / f"{backend}.json").read_text())["errors"]
        assert row["centre top-1"] == pytest.approx(history["val_top1_err"])
        assert row["10 crops top-1"] == pytest.approx(history["val10_top1_err"])
        assert "centre top-5" not in row and "top-5" not in out  # 4 classes
    code, out, err = run_eval(["--data", data, "--checkpoint", str(trained / "best.pt"), str(onnx_file),
                               str(trained / "checkpoint.pt"), "--workers", "0", "--json",
                               str(tmp_path / "ensemble.json")], capsys)
    assert code == 0, err
    rows = json.loads((tmp_path / "ensemble.json").read_text())["errors"]
    assert [r["name"] for r in rows] == [str(trained / "best.pt"), str(onnx_file), str(trained / "checkpoint.pt"),
                                         "ensemble of 3"]
    for row in rows:  # the same weights three times
        assert row["centre top-1"] == pytest.approx(history["val_top1_err"])
        assert row["10 crops top-1"] == pytest.approx(history["val10_top1_err"])
    assert "12 images, 4 classes" in out


def test_command_errors(tmp_path, capsys):
    write_best(tmp_path / "a.pt", "torchvision", 1, classes=("x", "y"))
    write_best(tmp_path / "b.pt", "torchvision", 1, classes=("x", "z"))
    cases = [
        (["--data", str(tmp_path / "none"), "--checkpoint", str(tmp_path / "a.pt")], "none: not a directory"),
        (["--data", str(tmp_path), "--checkpoint", str(tmp_path / "a.pt"), str(tmp_path / "b.pt")],
         "do not have the same classes"),
        (["--data", str(tmp_path), "--checkpoint", str(tmp_path / "c.pt")], "c.pt: no such checkpoint"),
        (["--data", str(tmp_path), "--checkpoint", str(tmp_path / "a.pt"), "--batch-size", "0"],
         "--batch-size must be >= 1; got 0"),
    ]
    if all(importlib.util.find_spec(name) for name in ("onnx", "onnxscript", "onnxruntime")):
        from alexnet_fast import export_onnx
        from alexnet_fast.nn import ReLULRN

        export_onnx(ReLULRN(5), tmp_path / "bare.onnx", torch.randn(1, 6, 4, 4))
        cases.append((["--data", str(tmp_path), "--checkpoint", str(tmp_path / "bare.onnx")],
                      "bare.onnx: no classes, mean, crop in its metadata"))
    for argv, message in cases:
        code, _, err = run_eval(argv, capsys)
        assert code == 2 and message in err, err
