"""What the benchmarks time, shared by `pytest benches` and `alexnet-fast bench`.

An op case is one operator at one shape; a provider computes it (eager
PyTorch, torch.compile of the eager code, or a fast backend); a mode is what
is timed: ``forward`` (inference, no autograd), ``backward`` (the gradient of
a forward taken outside the timed region) or ``forward_backward``. Every
provider of a case sees the same input and gradient.
"""
from __future__ import annotations

import ctypes
import dataclasses
import functools
import importlib.util
import math
import os
import statistics
import threading
import time
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F

import alexnet_fast
from alexnet_fast._backends import BACKEND_BY_NAME
from alexnet_fast import machine_load

MODES = ("forward", "backward", "forward_backward")
OPS = ("relu_lrn", "max_pool2d", "relu_lrn_max_pool2d")
LRN_PARAMS = dict(size=5, alpha=1e-4, beta=0.75, k=1.0)  # PyTorch convention, AlexNet's window
POOL_PARAMS = dict(kernel_size=3, stride=2)  # AlexNet's overlapping pool


@dataclasses.dataclass(frozen=True)
class OpCase:
    op: str  # one of OPS
    name: str  # e.g. "norm1"
    shape: tuple[int, ...]
    channels_last: bool = False  # input and gradient in torch.channels_last

    @property
    def for_peers(self) -> bool:
        """Whether the peers time this case: they take NCHW arrays, so the
        channels-last cases are ours and PyTorch's alone."""
        return not self.channels_last


def op_available(op: str) -> bool:
    """Whether this build of alexnet_fast has the operator ``op``."""
    return hasattr(alexnet_fast, op)


def op_cases(batch: int, ops=OPS) -> list[OpCase]:
    """AlexNet's layers: the LRNs after conv1/conv2, the three 3x3/2 pools
    and the two ReLU -> LRN -> pool blocks, for the ``ops`` this build has."""
    cases = [
        OpCase("relu_lrn", "norm1", (batch, 96, 55, 55)),
        OpCase("relu_lrn", "norm2", (batch, 256, 27, 27)),
        OpCase("max_pool2d", "pool1", (batch, 96, 55, 55)),
        OpCase("max_pool2d", "pool2", (batch, 256, 27, 27)),
        OpCase("max_pool2d", "pool5", (batch, 256, 13, 13)),
        # Against PyTorch's own channels-last kernels (eager and compile get the same layout).
        OpCase("max_pool2d", "pool1-nhwc", (batch, 96, 55, 55), channels_last=True),
        OpCase("max_pool2d", "pool2-nhwc", (batch, 256, 27, 27), channels_last=True),
        OpCase("relu_lrn_max_pool2d", "norm1+pool1", (batch, 96, 55, 55)),
        OpCase("relu_lrn_max_pool2d", "norm2+pool2", (batch, 256, 27, 27)),
    ]
    return [c for c in cases if c.op in ops and op_available(c.op)]


def _eager(op: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if op == "relu_lrn":
        return lambda x: F.local_response_norm(torch.relu(x), **LRN_PARAMS)
    if op == "max_pool2d":
        return lambda x: F.max_pool2d(x, **POOL_PARAMS)
    if op == "relu_lrn_max_pool2d":
        return lambda x: F.max_pool2d(F.local_response_norm(torch.relu(x), **LRN_PARAMS), **POOL_PARAMS)
    raise ValueError(f"op must be one of {OPS}; got {op!r}")


def _fast(op: str, backend: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if op == "relu_lrn":
        return functools.partial(alexnet_fast.relu_lrn, **LRN_PARAMS, backend=backend)
    if op == "max_pool2d":
        return functools.partial(alexnet_fast.max_pool2d, **POOL_PARAMS, backend=backend)
    return functools.partial(alexnet_fast.relu_lrn_max_pool2d, **LRN_PARAMS, **POOL_PARAMS, backend=backend)


def providers(device: torch.device | str) -> list[str]:
    """eager, compile and every fast backend that runs natively on ``device``
    (the emulations, Triton's interpreter and cuda_host on the CPU, are test tools,
    not providers)."""
    device = torch.device(device)
    fast = [
        name for name in alexnet_fast.available_backends(device)
        if name != "reference" and device.type not in BACKEND_BY_NAME[name].emulated_on
    ]
    return ["eager", "compile", *fast]


def function(op: str, provider: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function of ``provider`` for ``op``. A compile provider starts from
    a clean torch.compile cache: the eager lambdas of an op share one code
    object, so a second shape would otherwise get a dynamic-shape recompile,
    and many would hit the recompile limit and silently run eager."""
    if provider == "eager":
        return _eager(op)
    if provider == "compile":
        torch._dynamo.reset()
        return torch.compile(_eager(op))
    return _fast(op, provider)


def make_inputs(case: OpCase, dtype: torch.dtype, device, seed: int = 0):
    """Fresh random input and output gradient for a case (ReLU-like data for
    the pools: AlexNet pools LRN outputs of ReLUs, full of ties at zero)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(case.shape, generator=gen)
    if case.op == "max_pool2d":
        x = torch.relu(x)
    out_shape = _eager(case.op)(x[:1]).shape[1:]
    grad = torch.randn((case.shape[0], *out_shape), generator=gen)
    layout = torch.channels_last if case.channels_last else torch.contiguous_format
    return (x.to(device=device, dtype=dtype, memory_format=layout),
            grad.to(device=device, dtype=dtype, memory_format=layout))


def workload(fn, mode: str, x: torch.Tensor, grad: torch.Tensor) -> Callable[[], object]:
    """A zero-argument callable doing one timed unit of ``mode``."""
    if mode == "forward":
        def run():
            with torch.no_grad():
                return fn(x)
    elif mode == "forward_backward":
        leaf = x.detach().requires_grad_()

        def run():
            return torch.autograd.grad(fn(leaf), leaf, grad)
    elif mode == "backward":
        leaf = x.detach().requires_grad_()
        out = fn(leaf)

        def run():
            return torch.autograd.grad(out, leaf, grad, retain_graph=True)
    else:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    return run


def bytes_moved(case: OpCase, mode: str, x: torch.Tensor, grad: torch.Tensor) -> int:
    """The floor's bytes: what an ideal kernel must read and write once.

    relu_lrn  forward: read x, write y; backward: read x and dy, write dx.
    max_pool2d forward: read x, write y (+ 1-byte argmax when training is
    not counted: inference); backward: read dy and argmax, write dx.
    relu_lrn_max_pool2d forward: read x, write the pooled y (argmax not
    counted, as above); backward: read x, dy and argmax, write dx.
    """
    nx, ny, size = x.numel(), grad.numel(), x.element_size()
    if case.op == "relu_lrn":
        forward, backward = 2 * nx * size, 3 * nx * size
    elif case.op == "max_pool2d":
        forward, backward = (nx + ny) * size, ny * (size + 1) + nx * size
    else:
        forward, backward = (nx + ny) * size, ny * (size + 1) + 2 * nx * size
    return {"forward": forward, "backward": backward, "forward_backward": forward + backward}[mode]


def copy_workload(x: torch.Tensor) -> Callable[[], object]:
    """The bandwidth yardstick: one read and one write of x."""
    out = torch.empty_like(x)
    return lambda: out.copy_(x)


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


# --- Timing -----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds per call of the timed repeats."""

    times: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def q25(self) -> float:
        return machine_load.quantile(sorted(self.times), 0.25)

    @property
    def q75(self) -> float:
        return machine_load.quantile(sorted(self.times), 0.75)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)

    @property
    def std(self) -> float:
        return statistics.stdev(self.times) if len(self.times) > 1 else 0.0


def time_calls(works: Sequence[Callable[[], object]], device, repeats: int) -> list[tuple[float, ...]]:
    """Seconds per call of each of ``works``, called in turn ``repeats`` times
    (works[0], works[1], works[0], ...: each is timed under the same
    conditions as the others). CUDA events around each call on a GPU (read
    after one synchronisation), time.perf_counter on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        events = [[(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in works]
                  for _ in range(repeats)]
        for pairs in events:
            for work, (start, end) in zip(works, pairs):
                start.record()
                work()
                end.record()
        torch.cuda.synchronize()
        return [tuple(pairs[i][0].elapsed_time(pairs[i][1]) / 1e3 for pairs in events) for i in range(len(works))]
    times = [[] for _ in works]
    for _ in range(repeats):
        for work, seconds in zip(works, times):
            start = time.perf_counter()
            work()
            seconds.append(time.perf_counter() - start)
    return [tuple(seconds) for seconds in times]


def _warm_up(works: Sequence[Callable[[], object]], device, warmup: int, repeats: int, min_time: float) -> int:
    """Runs each of ``works`` ``warmup`` times untimed (torch.compile compiles
    there); returns the number of timed calls: ``repeats``, or more (up to ten
    times as many) where the last warm-up call of works[0] says that
    ``repeats`` calls would take less than ``min_time`` seconds."""
    last = float("inf")
    for _ in range(warmup):
        for i, work in enumerate(works):
            start = time.perf_counter()
            work()
            synchronize(device)
            if i == 0:
                last = time.perf_counter() - start
    if last * repeats < min_time:
        return min(10 * repeats, math.ceil(min_time / max(last, 1e-9)))
    return repeats


def time_workload(work: Callable[[], object], device, warmup: int, repeats: int, min_time: float = 0.0) -> Timing:
    """``work`` warmed up, then timed per call (see _warm_up and time_calls)."""
    repeats = _warm_up([work], device, warmup, repeats, min_time)
    return Timing(time_calls([work], device, repeats)[0])


@dataclasses.dataclass(frozen=True)
class Measurement:
    """A timing that says whether it can be trusted (alexnet_fast.machine_load):
    the kept round's timing, its baseline's, the round itself, its problems
    (empty: trusted) and how many rounds were timed."""

    timing: Timing
    baseline: Timing | None
    round: machine_load.Round
    problems: list[str]
    rounds: int


def measure(work: Callable[[], object], device, warmup: int, repeats: int, min_time: float = 0.0,
            baseline: Callable[[], object] | None = None,
            max_rounds: int = machine_load.MAX_ROUNDS) -> Measurement:
    """Times ``work`` (and ``baseline`` beside it, call for call) in rounds of
    ``repeats`` calls until a round shows no sign of a busy machine, at most
    ``max_rounds`` (see machine_load.repeat_until_steady)."""
    device = torch.device(device)
    works = [work] if baseline is None else [work, baseline]
    repeats = _warm_up(works, device, warmup, repeats, min_time)

    def one_round() -> machine_load.Round:
        start = machine_load.Clocks.read()
        times = time_calls(works, device, repeats)
        return machine_load.Round(times[0], times[1] if baseline is not None else (), start,
                                  machine_load.Clocks.read())

    kept, problems, rounds = machine_load.repeat_until_steady(one_round, device.type == "cpu", max_rounds)
    return Measurement(Timing(kept.times), Timing(kept.baseline_times) if baseline is not None else None, kept,
                       problems, rounds)


# --- The model --------------------------------------------------------------
class ModelProvider(NamedTuple):
    name: str
    backend: str  # of alexnet_fast.models.alexnet
    compiled: bool  # torch.compile'd


MODEL_PROVIDERS = (
    ModelProvider("fast", "auto", False),
    ModelProvider("reference", "reference", False),
    ModelProvider("reference+compile", "reference", True),
)
MODEL_IMAGE_SIZE = 227  # the paper variant's input
MODEL_MODES = ("forward", "forward_backward")


def models_available() -> bool:
    """Whether this build has alexnet_fast.models."""
    return importlib.util.find_spec("alexnet_fast.models") is not None


def build_model(backend: str, compiled: bool, device, dtype) -> torch.nn.Module:
    """AlexNet's paper variant in eval() mode (dropout off, so that every
    provider computes the same function); the same weights for every backend."""
    from alexnet_fast.models import alexnet

    torch.manual_seed(0)
    model = alexnet(variant="paper", backend=backend).to(device=device, dtype=dtype).eval()
    if compiled:
        torch._dynamo.reset()
        model = torch.compile(model)
    return model


def model_inputs(batch: int, dtype, device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images and labels for a batch."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn((batch, 3, MODEL_IMAGE_SIZE, MODEL_IMAGE_SIZE), generator=gen)
    labels = torch.randint(0, 1000, (batch,), generator=gen)
    return images.to(device=device, dtype=dtype), labels.to(device)


def model_workload(model: torch.nn.Module, mode: str, images, labels) -> Callable[[], object]:
    """One step: ``forward`` (inference, no autograd) or ``forward_backward``
    (cross-entropy loss, parameters' grads set to None first)."""
    if mode == "forward":
        def run():
            with torch.no_grad():
                return model(images)
    elif mode == "forward_backward":
        def run():
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(images).float(), labels).backward()
    else:
        raise ValueError(f"mode must be one of {MODEL_MODES}; got {mode!r}")
    return run


def peak_memory(work: Callable[[], object], device) -> tuple[int | None, str]:
    """Peak memory of one call of ``work`` above what was allocated before it,
    in bytes, and what was measured: on a GPU torch's peak allocation; on
    Linux with glibc the peak growth of the process's resident set, sampled
    every millisecond after handing freed heap memory back to the system (so
    that memory kept from earlier calls is counted); elsewhere (None, "n/a")."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        work()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before, "peak of torch.cuda.max_memory_allocated"
    if _rss() is None or not _release_free_memory():
        return None, "n/a"
    before = peak = _rss()
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss())
            done.wait(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return max(peak, _rss()) - before, "peak growth of the process's RSS"


def _rss() -> int | None:
    """The process's resident set size in bytes (Linux), else None."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError, AttributeError):
        return None


def _release_free_memory() -> bool:
    """glibc's malloc_trim: returns the heap's free pages to the system."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False
