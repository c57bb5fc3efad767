"""Provider x mode grid for AlexNet's LRN and max-pool layers, and the installed peers."""
import pytest
import torch

from alexnet_fast import benchmarks, peers
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


# The installed peers (alexnet_fast.peers), on the CPU, in float32: forward,
# and forward_backward where the framework has autograd.
PEERS = peers.installed() if DEVICE.type == "cpu" else []
PEER_MODES = [(peer, mode) for peer in PEERS for mode in peers.modes(peer)]


@pytest.mark.parametrize("case", [c for c in CASES if c.for_peers], ids=lambda c: f"{c.op}-{c.name}")
@pytest.mark.parametrize("peer, mode", PEER_MODES, ids=lambda value: str(value))
def test_peer(run_benchmark, benchmark, peer, mode, case):
    dtype = torch.float32
    benchmark.group = f"{case.op}-{case.name}-{mode}-{str(dtype)[6:]}"
    x, grad = benchmarks.make_inputs(case, dtype, DEVICE)
    peer_op = peers.build(peer, case.op, **benchmarks.LRN_PARAMS, **benchmarks.POOL_PARAMS)
    run_benchmark(
        peers.workload(peer_op, mode, x, grad),
        dict(op=case.op, case=case.name, shape=list(case.shape), dtype=str(dtype), provider=peer, mode=mode,
             bytes=benchmarks.bytes_moved(case, mode, x, grad), threads=peer_op.threads),
    )
