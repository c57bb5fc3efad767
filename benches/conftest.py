"""pytest-benchmark suite: `pytest benches --benchmark-only [--benchmark-json PATH]`.

Runs on the GPU when there is one (else the CPU). ALEXNET_FAST_BENCH_BATCH
sets the batch (default 32 on CPU, 128 on GPU). Each benchmark's extra_info
carries the bytes an ideal kernel moves, so GB/s and the fraction of the
`copy` provider's bandwidth follow from the saved JSON.
"""
import platform

import pytest
import torch

from _bench_setup import BATCH, DEVICE
from alexnet_fast.bench_run import cpu_info


def pytest_benchmark_update_machine_info(config, machine_info):
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    machine_info.update(
        device=torch.cuda.get_device_name() if DEVICE.type == "cuda" else platform.processor() or "cpu",
        torch=torch.__version__,
        triton=triton_version,
        cuda=torch.version.cuda,
        threads=torch.get_num_threads(),
        batch=BATCH,
        cpu=cpu_info(),
    )


@pytest.fixture
def run_benchmark(benchmark):
    """Times a zero-argument callable: warm-up (compilation) outside the
    timed region, the device synchronised inside it."""

    def run(work, extra_info, rounds=None):
        for _ in range(2):
            work()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()

            def timed():
                work()
                torch.cuda.synchronize()
        else:
            timed = work
        benchmark.extra_info.update(extra_info, device=str(DEVICE))
        rounds = rounds or (15 if DEVICE.type == "cpu" else 50)
        benchmark.pedantic(timed, rounds=rounds, warmup_rounds=1)

    return run
