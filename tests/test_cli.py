"""`alexnet-fast bench`: an end-to-end --quick run on the CPU, its JSON, PNG
and tables, and the rejection of bad arguments."""
import datetime
import json
import os
import subprocess
import sys

import pytest
import torch

import alexnet_fast
from alexnet_fast._backends import BACKEND_BY_NAME
from alexnet_fast import bench_report, bench_run, benchmarks, cli, machine_load, peers

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_quick_run_writes_json_png_and_tables(tmp_path, capsys):
    json_path, png_path = tmp_path / "bench.json", tmp_path / "speedups.png"
    # One thread: on a shared 2-core machine two threads wait on each other.
    argv = ["bench", "--quick", "--device", "cpu", "--threads", "1", "--json", str(json_path), "--plot", str(png_path)]
    status = cli.main(argv)
    out, err = capsys.readouterr()
    report = json.loads(json_path.read_text())
    assert status == 0, f"failed measurements: {report['meta']['notes']}\n{err[-2000:]}"

    meta = report["meta"]
    assert meta["device"] == "cpu" and meta["torch"] == torch.__version__
    assert meta["command"] == "alexnet-fast " + " ".join(argv)
    assert meta["args"]["quick"] is True and meta["threads"] == 1
    datetime.datetime.fromisoformat(meta["date"])
    assert meta["settings"]["compile"] is False  # --quick skips torch.compile ...
    assert any("torch.compile: skipped" in note for note in meta["notes"])  # ... and says so

    # The fast backends that run natively on the CPU (not the emulations: Triton's
    # interpreter, cuda_host).
    fast = [b for b in alexnet_fast.available_backends("cpu")
            if b != "reference" and "cpu" not in BACKEND_BY_NAME[b].emulated_on]
    assert fast, "no fast CPU backend: alexnet_fast._C is not built"
    rows = report["ops"]
    assert {row["provider"] for row in rows} == {"eager", *fast}  # no Triton interpreter
    assert {row["op"] for row in rows} == {op for op in benchmarks.OPS if benchmarks.op_available(op)}
    assert {row["mode"] for row in rows} == set(benchmarks.MODES)
    for row in rows:
        assert row["error"] is None
        assert 0 < row["q25_ms"] <= row["median_ms"] <= row["q75_ms"]
        assert len(row["times_ms"]) == row["repeats"] == 3
        assert row["gbps"] > 0 and row["pct_of_copy"] > 0 and row["copy_gbps"] > 0
        assert row["speedup_vs_eager"] > 0 and row["speedup_vs_compile"] is None
        if row["provider"] == "eager":
            assert row["speedup_vs_eager"] == 1.0
    assert {c["case"] for c in report["copy"]} == {row["case"] for row in rows}
    _check_trust_fields(report, out)

    if benchmarks.models_available():
        assert {(r["provider"], r["mode"]) for r in report["model"]} == {
            (p, m) for p in ("fast", "reference") for m in benchmarks.MODEL_MODES
        }
        for row in report["model"]:
            assert row["mean_ms"] > 0 and row["images_per_s"] > 0 and row["batch"] == 2
            assert row["peak_memory_bytes"] is None or row["peak_memory_bytes"] >= 0
        assert "AlexNet (paper variant" in out and "eval() mode" in out
    else:
        assert any(note.startswith("model: skipped") for note in meta["notes"])

    assert "Operators:" in out and "relu_lrn" in out
    assert png_path.read_bytes()[:8] == PNG_SIGNATURE and png_path.stat().st_size > 1000

    bench_report.print_report(report, markdown=True)
    markdown = capsys.readouterr().out
    assert "| op | case | mode | provider | median ms |" in markdown
    assert markdown.count("\n| relu_lrn |") == 2 * len(benchmarks.MODES) * (1 + len(fast))


def _check_trust_fields(report: dict, out: str) -> None:
    """The fields that say whether a --quick run's numbers can be trusted."""
    meta, rows, timed = report["meta"], report["ops"], report["ops"] + report["model"]
    machine = meta["machine"]
    assert machine["threads"] == 1 and machine["cpu_count"] == os.cpu_count()
    assert machine["busy"] == bool(machine["reasons"])
    assert machine["busy"] == any(note.startswith("busy machine") for note in meta["notes"])
    assert machine["busy"] == ("Warning: the machine was busy" in out)
    reliability = meta["reliability"]
    assert reliability["max_rounds"] == machine_load.MAX_ROUNDS and reliability["rows"] == len(timed)
    assert reliability["unreliable_rows"] == sum(not row["reliable"] for row in timed)
    assert (reliability["unreliable_rows"] > 0) == any("rows unreliable" in note for note in meta["notes"])
    for row in timed:
        assert row["reliable"] == (row["unreliable_reasons"] == [])
        rounds = 1 if row in report["model"] else machine_load.MAX_ROUNDS
        assert 1 <= row["rounds"] <= rounds and (row["reliable"] or row["rounds"] == rounds)
        assert row["relative_iqr"] == pytest.approx((row["q75_ms"] - row["q25_ms"]) / row["median_ms"])
        assert row["cpu_share"] > 0 and (row["cpu_stall"] is None or row["cpu_stall"] >= 0)
    for row in rows:  # the copy timed beside each row
        copy_bytes = 2 * torch.Size(row["shape"]).numel() * 4
        assert row["copy_gbps"] == pytest.approx(copy_bytes / row["copy_median_ms"] / 1e6)
        assert row["pct_of_copy"] == pytest.approx(100 * row["gbps"] / row["copy_gbps"])
        assert row["above_copy"] == (row["pct_of_copy"] > 100)
    for copy in report["copy"]:
        beside = sorted(row["copy_gbps"] for row in rows if row["case"] == copy["case"])
        assert (copy["gbps_min"], copy["gbps_max"]) == (beside[0], beside[-1])
        assert beside[0] <= copy["gbps"] <= beside[-1]
    assert "vs eager" in out and "vs compile" not in out  # no torch.compile in --quick: no column of "-"
    assert ", quick" in out


@pytest.mark.slow
@pytest.mark.skipif(not peers.installed(), reason="no peer installed (pip install onnxruntime onnx)")
def test_quick_run_with_peers(tmp_path, capsys):
    json_path = tmp_path / "peers.json"
    argv = ["bench", "--quick", "--peers", "--ops", "relu_lrn", "--no-model", "--device", "cpu", "--threads", "1",
            "--json", str(json_path)]
    status = cli.main(argv)
    out, err = capsys.readouterr()
    report = json.loads(json_path.read_text())
    assert status == 0, f"{report['meta']['notes']}\n{err[-2000:]}"
    rows = report["ops"]
    installed = peers.installed()
    for peer in installed:
        timed = [row for row in rows if row["provider"] == peer]
        assert {row["mode"] for row in timed} == set(peers.modes(peer))
        assert {row["case"] for row in timed} == {"norm1", "norm2"}
        for row in timed:
            assert row["error"] is None and row["median_ms"] > 0 and row["speedup_vs_eager"] > 0
            assert row["threads"]  # how the peer's threads were set
    assert report["meta"]["peers"].keys() == set(installed)
    notes = "\n".join(report["meta"]["notes"])
    assert "peers' threads: " in notes and all(peer in notes for peer in installed)
    for peer, packages in peers.missing().items():
        assert f"{peer} (pip install {packages})" in notes
    assert f"| {installed[0]} " in out or f"│ {installed[0]} " in out


@pytest.mark.parametrize(
    "args, named",
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--batch-size", "two"], "--batch-size"),
        (["--dtype", "int8"], "--dtype"),
        (["--device", "tpu"], "--device"),
        (["--ops", "relu_lrn,conv2d"], "--ops"),
        (["--json", "/no/such/directory/bench.json"], "--json"),
        (["--plot", "speedups.jpg"], "--plot"),
        (["--frobnicate"], "--frobnicate"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, named, capsys):
    assert cli.main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert named in err and "error:" in err and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_a_gpu_is_a_clear_error(capsys):
    assert cli.main(["bench", "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_no_command_is_an_error(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "alexnet_fast", "bench", "--dtype", "int8"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "argument --dtype: invalid choice: 'int8'" in done.stderr


def test_timing_statistics():
    timing = benchmarks.Timing((4.0, 1.0, 3.0, 2.0))
    assert (timing.median, timing.q25, timing.q75, timing.mean) == (2.5, 1.75, 3.25, 2.5)
    calls = []
    timing = benchmarks.time_workload(lambda: calls.append(1), "cpu", warmup=2, repeats=5)
    assert len(calls) == 7 and len(timing.times) == 5 and min(timing.times) >= 0
    timing = benchmarks.time_workload(lambda: None, "cpu", warmup=1, repeats=5, min_time=1.0)
    assert len(timing.times) == 50  # short calls: up to ten times the repeats


def test_speedups_are_ratios_of_medians():
    rows = bench_run.with_speedups([dict(provider="eager", median_ms=6.0), dict(provider="compile", median_ms=3.0),
                               dict(provider="cpu", median_ms=2.0), dict(provider="cuda", error="x")])
    assert [r["speedup_vs_eager"] for r in rows] == [1.0, 2.0, 3.0, None]
    assert [r["speedup_vs_compile"] for r in rows] == [0.5, 1.0, 1.5, None]
