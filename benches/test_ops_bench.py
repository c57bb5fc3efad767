"""Provider x mode grid for AlexNet's LRN and max-pool layers."""
import pytest
import torch

from alexnet_fast import benchmarks
from _bench_setup import BATCH, DEVICE, DTYPES

CASES = benchmarks.op_cases(BATCH)
_FIRST_OF_SHAPE: dict = {}
for _case in CASES:
    _FIRST_OF_SHAPE.setdefault(_case.shape, _case)
COPY_CASES = list(_FIRST_OF_SHAPE.values())  # the copy bandwidth of every shape the ops run at


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.op}-{c.name}")
@pytest.mark.parametrize("mode", benchmarks.MODES)
@pytest.mark.parametrize("provider", benchmarks.providers(DEVICE))
def test_op(run_benchmark, benchmark, provider, mode, case, dtype):
    benchmark.group = f"{case.op}-{case.name}-{mode}-{str(dtype)[6:]}"
    torch.manual_seed(0)
    x, grad = benchmarks.make_inputs(case, dtype, DEVICE)
    work = benchmarks.workload(benchmarks.function(case.op, provider), mode, x, grad)
    run_benchmark(
        work,
        dict(op=case.op, case=case.name, shape=list(case.shape), dtype=str(dtype), provider=provider, mode=mode,
             bytes=benchmarks.bytes_moved(case, mode, x, grad)),
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", COPY_CASES, ids=lambda c: c.name)
def test_copy(run_benchmark, benchmark, case, dtype):
    """The measured copy bandwidth that the ops are compared with."""
    benchmark.group = f"copy-{case.name}-{str(dtype)[6:]}"
    x, _ = benchmarks.make_inputs(case, dtype, DEVICE)
    run_benchmark(benchmarks.copy_workload(x), dict(op="copy", case=case.name, shape=list(case.shape),
                                                     dtype=str(dtype), provider="copy", mode="forward",
                                                     bytes=2 * x.numel() * x.element_size()))
