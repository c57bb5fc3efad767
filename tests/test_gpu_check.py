"""benches/gpu_check.sh, the prepared GPU check, in what runs without a GPU: its
arguments, its dry run and its budget, the refusal without a GPU, and the sanitizer
cases it runs (through cuda_host here)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import alexnet_fast

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benches" / "gpu_check.sh"


def run(*args, env=None):
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_usage_errors():
    for args in ([], ["--bogus", "out"], ["a", "b"]):
        result = run(*args)
        assert result.returncode == 2 and "usage: bash benches/gpu_check.sh" in result.stderr, args


def test_dry_run_lists_the_steps_within_an_8_minute_budget(tmp_path):
    result = run("--dry-run", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    steps = re.findall(r"^  (\w+) \(at most (\d+) s\)$", result.stdout, re.M)
    assert [name for name, _ in steps] == [
        "environment", "build", "tests", "sanitizer", "benchmarks", "bench_float32", "bench_bfloat16"]
    assert sum(int(limit) for _, limit in steps) <= 8 * 60
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_refuses_a_plan_over_its_budget(tmp_path):
    result = run("--dry-run", str(tmp_path), env={"GPU_CHECK_BUDGET_S": "300"})
    assert result.returncode == 2 and "over the budget of 300 s" in result.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the check runs for real on a GPU")
def test_says_it_needs_a_gpu(tmp_path):
    result = run(str(tmp_path / "out"), env={"PYTHON": sys.executable})
    assert result.returncode == 1 and "no CUDA GPU visible to torch" in result.stderr


@pytest.mark.skipif("cuda_host" not in alexnet_fast.available_backends("cpu"), reason="needs cuda_host")
def test_sanitizer_cases_run_through_cuda_host():
    result = subprocess.run([sys.executable, str(ROOT / "benches" / "gpu_sanitize_cases.py"), "--device", "cpu"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.search(r"\d+ cases, forward and backward, on cpu", result.stdout)
