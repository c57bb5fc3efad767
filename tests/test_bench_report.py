"""How a benchmark report is shown (alexnet_fast.bench_report): the tables'
marks and columns, the speed-up chart, and benches/report.py's reading of a
pytest-benchmark JSON. Synthetic reports: nothing here is timed."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alexnet_fast import bench_report, bench_run, benchmarks

ROOT = Path(__file__).resolve().parents[1]


def _op_row(provider, median_ms, mode="forward", case="norm1", **extra):
    row = dict(op="relu_lrn", case=case, shape=[2, 96, 55, 55], dtype="float32", mode=mode, provider=provider,
               error=None, median_ms=median_ms, q25_ms=median_ms * 0.99, q75_ms=median_ms * 1.01, gbps=10.0,
               pct_of_copy=50.0, above_copy=False, reliable=True, unreliable_reasons=[])
    row.update(extra)
    return row


def _report(ops, model=(), quick=True) -> dict:
    settings = dict(dtype="float32", op_batch=2, repeats=3, min_time=0.0, warmup=1, model_batch=2, model_steps=3,
                    model_warmup=1, quick=quick)
    meta = dict(device="cpu", device_name="Test CPU", settings=settings, notes=[])
    copy = [dict(case="norm1", shape=[2, 96, 55, 55], dtype="float32", gbps=20.0, gbps_min=18.0, gbps_max=22.0)]
    return dict(meta=meta, ops=bench_run.with_speedups(list(ops)), copy=copy, model=list(model))


def _model_row(provider, mode, median_ms):
    return dict(provider=provider, mode=mode, batch=2, error=None, mean_ms=median_ms, std_ms=1.0,
                median_ms=median_ms, images_per_s=2 / median_ms * 1e3, peak_memory_bytes=None,
                peak_memory_kind="n/a", reliable=True, unreliable_reasons=[])


def test_no_compile_column_without_compile_and_no_check_column_when_all_is_well():
    title, headers, rows, _ = bench_report.op_table(_report([_op_row("eager", 8.0), _op_row("cpu", 2.0)]))
    assert "vs compile" not in headers and "check" not in headers and "vs eager" in headers
    assert all(len(row) == len(headers) for row in rows)
    assert "float32" in title and "batch 2" in title and "quick" in title
    with_compile = _report([_op_row("eager", 8.0), _op_row("compile", 4.0), _op_row("cpu", 2.0)], quick=False)
    title, headers, rows, _ = bench_report.op_table(with_compile)
    assert headers[headers.index("vs eager") + 1] == "vs compile" and rows[2][headers.index("vs compile")] == "2.00x"
    assert "quick" not in title


def test_unreliable_rows_and_rows_above_a_copy_are_marked():
    ops = [_op_row("eager", 8.0, reliable=False, unreliable_reasons=["spread 23% (limit 10%)",
                                                                     "CPU stall 40% (limit 10%)"]),
           _op_row("cpu", 2.0, pct_of_copy=180.0, above_copy=True)]
    _, headers, rows, footnotes = bench_report.op_table(_report(ops))
    median, percent, check = headers.index("median ms"), headers.index("% copy"), headers.index("check")
    assert rows[0][median] == "8.00 ?" and rows[0][check] == "spread 23%, CPU stall 40%"
    assert rows[1][median] == "2.00" and rows[1][percent] == "180%!" and rows[1][check] == ""
    text = "\n".join(footnotes)
    assert "?: unreliable" in text and "!: above a copy's bandwidth" in text
    assert "norm1 20 (18-22)" in text  # the copies timed beside the rows


def test_percent_of_a_copy_timed_beside_the_row():
    timing, copy = benchmarks.Timing((0.004, 0.002, 0.003)), benchmarks.Timing((0.001, 0.001, 0.0015))
    fields = bench_run.bandwidth_fields(6 * 10**6, timing, 2 * 10**6, copy)  # op 2 GB/s, copy 2 GB/s
    assert fields == pytest.approx(dict(gbps=2.0, copy_median_ms=1.0, copy_gbps=2.0, pct_of_copy=100.0,
                                        above_copy=False))
    faster = bench_run.bandwidth_fields(9 * 10**6, timing, 2 * 10**6, copy)  # 3 GB/s against a 2 GB/s copy
    assert faster["pct_of_copy"] == pytest.approx(150.0) and faster["above_copy"] is True


def test_peer_table_compares_each_peer_with_ours(tmp_path):
    ops = [_op_row("eager", 80.0), _op_row("cpu", 2.0), _op_row("onnxruntime", 6.0),
           _op_row("jax", 3.0, reliable=False, unreliable_reasons=["spread 20% (limit 10%)"]),
           _op_row("eager", 90.0, mode="forward_backward"), _op_row("cpu", 5.0, mode="forward_backward"),
           _op_row("jax", 10.0, mode="forward_backward")]
    report = _report(ops)
    report["meta"]["threads"] = 2
    title, headers, rows, _ = bench_report.peer_table(report)
    assert headers == ["op", "case", "mode", "ours (cpu) ms", "onnxruntime ms", "jax ms"]
    assert rows[0][3:] == ["2.00", "6.00 (3x)", "3.00 ? (1.5x)"]
    assert rows[1][2:] == ["forward_backward", "5.00", "-", "10.0 (2x)"]  # no autograd in ONNX Runtime
    assert "2 threads each" in title
    assert bench_report.peer_table(_report(ops[:2])) is None  # no peer: no table
    path = tmp_path / "bench.json"  # benches/report.py reads `alexnet-fast bench --json` too
    path.write_text(json.dumps(report))
    done = subprocess.run([sys.executable, str(ROOT / "benches" / "report.py"), str(path)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "### Peers: float32, batch 2, 2 threads each" in done.stdout and "| 6.00 (3x) |" in done.stdout


def test_the_markdown_report_warns_of_a_busy_machine(capsys):
    report = _report([_op_row("eager", 8.0), _op_row("cpu", 2.0)])
    report["meta"]["machine"] = dict(busy=True, reasons=["load average 3.00 on 2 CPUs, with 2 threads of ours"])
    bench_report.print_report(report, markdown=True)
    out = capsys.readouterr().out
    assert out.startswith("Warning: the machine was busy before the run (load average 3.00")
    report["meta"]["machine"] = dict(busy=False, reasons=[])
    bench_report.print_report(report, markdown=True)
    assert "Warning" not in capsys.readouterr().out


def test_speedup_chart_has_a_bar_at_1x_every_mode_and_the_model():
    pytest.importorskip("matplotlib")
    ops = [_op_row(provider, median, mode=mode, case=case)
           for mode in benchmarks.MODES for case in ("norm1", "pool1")
           for provider, median in (("eager", 8.0), ("cpu", 8.0 if case == "pool1" else 2.0))]
    model = [_model_row("fast", mode, 100.0) for mode in benchmarks.MODEL_MODES]
    model += [_model_row("reference", mode, 150.0) for mode in benchmarks.MODEL_MODES]
    figure = bench_report.speedup_figure(_report(ops, model))
    axes = figure.axes
    assert len(axes) == len(benchmarks.MODES) + 1
    assert [ax.get_ylabel().split("\n")[0] for ax in axes] == [*benchmarks.MODES, "model step"]
    for ax in axes:
        tops = sorted(round(bar.get_y() + bar.get_height(), 6) for bar in ax.patches)
        assert all(bar.get_height() > 0 for bar in ax.patches)  # 1x too: nothing looks missing
        assert 1.0 in tops and ax.get_ylim()[0] < 1.0
    assert sorted(round(bar.get_y() + bar.get_height(), 6) for bar in axes[-1].patches) == [1.0, 1.0, 1.5, 1.5]
    title = figure._suptitle.get_text()
    assert "float32" in title and "batch 2" in title and "quick" in title and "model" in title


def test_pytest_benchmark_json_becomes_the_same_report():
    def bench(extra, median):
        stats = dict(median=median, q1=median * 0.9, q3=median * 1.1, mean=median, stddev=0.0, rounds=15)
        return dict(extra_info=dict(extra, device="cpu"), stats=stats)

    case = dict(case="norm1", shape=[32, 96, 55, 55], dtype="torch.float32")
    data = dict(machine_info=dict(device="cpu", torch="2.13", triton=None, threads=2, batch=32),
                datetime="2026-01-01", benchmarks=[
                    bench(dict(case, op="relu_lrn", provider="eager", mode="forward", bytes=10**8), 0.1),
                    bench(dict(case, op="relu_lrn", provider="cpu", mode="forward", bytes=10**8), 0.004),
                    bench(dict(case, op="copy", provider="copy", mode="forward", bytes=10**8), 0.002),
                    bench(dict(op="alexnet-paper", provider="fast", mode="forward", dtype="torch.float32",
                               batch=16, image_size=227), 0.15)])
    [report] = bench_report.reports_from_pytest_benchmark(data)
    eager, fast = report["ops"]
    assert fast["speedup_vs_eager"] == pytest.approx(25.0) and eager["speedup_vs_eager"] == 1.0
    assert fast["gbps"] == pytest.approx(25.0) and fast["pct_of_copy"] == pytest.approx(50.0)
    assert report["model"][0]["images_per_s"] == pytest.approx(16 / 0.15)
    assert report["meta"]["settings"]["op_batch"] == 32


def test_benches_report_prints_the_tables_of_a_stored_run():
    # Every stored pytest-benchmark run; the model's table only where the run
    # timed the model (a partial run, made with -k, may not).
    results = [p for p in sorted((ROOT / "benches" / "results").glob("cpu-*.json"))
               if "machine_info" in json.loads(p.read_text())]
    if not results:
        pytest.skip("no stored pytest-benchmark results in benches/results")
    for path in results:
        data = json.loads(path.read_text())
        done = subprocess.run([sys.executable, str(ROOT / "benches" / "report.py"), str(path)], capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, (path.name, done.stderr)
        assert "### Operators: float32" in done.stdout and "| op | case | mode | provider | median ms |" in done.stdout
        has_model = any(b["extra_info"].get("op", "").startswith("alexnet") for b in data["benchmarks"])
        assert ("### AlexNet (paper variant" in done.stdout) == has_model, path.name


def _pytest_benchmark_json(medians, iqr=None):
    """A pytest-benchmark JSON with the given {(op, case, mode, provider): median s}."""
    iqr = iqr or {}
    benchmarks = [dict(extra_info=dict(op=op, case=case, mode=mode, provider=provider),
                       stats=dict(median=median, iqr=iqr.get((op, case, mode, provider), 0.01 * median)))
                  for (op, case, mode, provider), median in medians.items()]
    return dict(machine_info=dict(cpu=dict(name="test CPU", family=6, model=1, isa="avx2"), threads=2, torch="x"),
                datetime="today", benchmarks=benchmarks)


def _cpu_targets_rows(path, run):
    """benches/cpu_targets.py's table for `run` (written to `path`): target name -> its row."""
    path.write_text(json.dumps(run))
    done = subprocess.run([sys.executable, str(ROOT / "benches" / "cpu_targets.py"), str(path)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return {line.split(" | ")[0].lstrip("| "): line for line in done.stdout.splitlines() if line.startswith("| ")}


def test_cpu_targets_computes_each_ratio_from_the_run(tmp_path):
    m = {("copy", "norm1", "forward", "copy"): 1.0, ("relu_lrn", "norm1", "forward", "cpu"): 1.4,
         ("copy", "norm2", "forward", "copy"): 1.0, ("relu_lrn", "norm2", "forward", "cpu"): 1.8}
    for fused, lrn, pool in (("norm1+pool1", "norm1", "pool1"), ("norm2+pool2", "norm2", "pool2")):
        for mode in ("forward", "forward_backward"):
            m[("relu_lrn", lrn, mode, "cpu")] = m.get(("relu_lrn", lrn, mode, "cpu"), 3.0)
            m[("max_pool2d", pool, mode, "cpu")] = 1.0
            m[("relu_lrn_max_pool2d", fused, mode, "cpu")] = 0.7 * (m[("relu_lrn", lrn, mode, "cpu")] + 1.0)
    m[("relu_lrn_max_pool2d", "norm2+pool2", "forward_backward", "cpu")] = 3.6  # 0.9x of 4.0: missed
    m[("max_pool2d", "pool1-nhwc", "forward_backward", "cpu")] = 1.0
    m[("max_pool2d", "pool1-nhwc", "forward_backward", "eager")] = 2.0
    m[("max_pool2d", "pool1", "forward", "onnxruntime")] = 0.5  # faster than ours (1.0)
    m[("relu_lrn", "norm1", "forward", "onnxruntime")] = 9.0
    m[("alexnet-paper", None, "forward_backward", "fast")] = 1.0
    m[("alexnet-paper", None, "forward_backward", "reference")] = 1.5
    noisy = {("copy", "norm1", "forward", "copy"): 0.5}
    rows = _cpu_targets_rows(tmp_path / "run.json", _pytest_benchmark_json(m, noisy))
    assert "1.40x | yes (unreliable: spread copy norm1 forward 50%)" in rows["relu_lrn forward <= 1.5x copy (norm1)"]
    assert "1.80x | no |" in rows["relu_lrn forward <= 1.7x copy (norm2)"]
    assert "0.70x | yes |" in rows["fused <= 0.8x relu_lrn + max_pool2d (norm1+pool1, forward)"]
    assert "0.90x | no |" in rows["fused <= 0.8x relu_lrn + max_pool2d (norm2+pool2, forward_backward)"]
    assert "2.00x | yes |" in rows["channels_last max_pool2d fwd+bwd >= 1.5x PyTorch (pool1-nhwc)"]
    assert "pool1 forward (500 ms vs ours 1e+03 ms) | no" in rows["faster than onnxruntime on every op and mode"]
    assert "1.50x | yes |" in rows["paper AlexNet training step >= 1.45x reference eager"]


def test_cpu_targets_names_what_a_partial_run_lacks(tmp_path):
    # A run of part of the suite (pytest -k): each target that needs a missing
    # timing says which one, and the others are still computed.
    m = {("copy", "norm1", "forward", "copy"): 1.0, ("relu_lrn", "norm1", "forward", "cpu"): 1.2,
         ("relu_lrn", "norm2", "forward", "cpu"): 1.0}
    rows = _cpu_targets_rows(tmp_path / "partial.json", _pytest_benchmark_json(m))
    assert "1.20x | yes |" in rows["relu_lrn forward <= 1.5x copy (norm1)"]
    assert "not in this run: copy norm2 forward copy | - |" in rows["relu_lrn forward <= 1.7x copy (norm2)"]
    fused = rows["fused <= 0.8x relu_lrn + max_pool2d (norm1+pool1, forward)"]
    assert "not in this run: relu_lrn_max_pool2d norm1+pool1 forward cpu | - |" in fused
