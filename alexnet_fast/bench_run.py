"""The run of `alexnet-fast bench`: times every op case x mode x provider and
the model, and returns the report (a JSON-able dict: ``meta``, ``ops``,
``copy``, ``model``). What one timed call does is defined in
alexnet_fast.benchmarks; how the report is shown, in alexnet_fast.bench_report.
"""
from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import os
import platform
import statistics
from pathlib import Path

import torch

from alexnet_fast import benchmarks, machine_load, peers
from alexnet_fast.progress import Progress

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclasses.dataclass(frozen=True)
class Settings:
    """What one run measures."""

    device: torch.device
    dtype: torch.dtype
    ops: tuple[str, ...]
    op_batch: int
    warmup: int
    repeats: int
    min_time: float  # seconds: fast ops get more repeats (see benchmarks.time_workload)
    model: bool
    model_batch: int
    model_warmup: int
    model_steps: int
    compile: bool
    quick: bool = False
    peers: bool = False  # also time the installed peers (alexnet_fast.peers), on the CPU


def default_sizes(device: torch.device, quick: bool) -> dict:
    """A full run in a few minutes on a 2-core CPU (small batches there), the
    classic sizes on a GPU; ``quick``: tiny batches and few repeats."""
    if quick:
        return dict(op_batch=2, warmup=1, repeats=3, min_time=0.0, model_batch=2, model_warmup=1, model_steps=3)
    if device.type == "cuda":
        return dict(op_batch=128, warmup=5, repeats=50, min_time=0.1, model_batch=32, model_warmup=10,
                    model_steps=100)
    return dict(op_batch=8, warmup=2, repeats=10, min_time=0.1, model_batch=4, model_warmup=2, model_steps=10)


def one_line(error: BaseException, limit: int = 200) -> str:
    """An exception as one line: its type and the first line of its message."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_benchmarks(settings: Settings, command: str, args: dict) -> dict:
    """Times what ``settings`` asks for; the report. ``command`` and ``args``
    (the command line and its parsed arguments) go into its metadata."""
    if settings.device.type == "cuda":
        torch.cuda.set_device(settings.device)  # the events and synchronisations' device
    notes: list[str] = []
    cases = benchmarks.op_cases(settings.op_batch, settings.ops)
    for op in settings.ops:
        if not benchmarks.op_available(op):
            notes.append(f"{op}: skipped, not in this build of alexnet_fast")
    op_providers = benchmarks.providers(settings.device)
    if not settings.compile:
        op_providers.remove("compile")
        notes.append("torch.compile: skipped" + (" (--quick; add --compile)" if settings.quick else " (--no-compile)"))
    op_providers += _peer_providers(settings, notes)
    model_providers = [p for p in benchmarks.MODEL_PROVIDERS if settings.compile or not p.compiled]
    if settings.model and not benchmarks.models_available():
        notes.append("model: skipped, alexnet_fast.models is not in this build")
    run_model = settings.model and benchmarks.models_available()

    machine = machine_load.machine_at_start(torch.get_num_threads())
    total = len(cases) * sum(len(_modes(provider)) for provider in op_providers)
    total += len(model_providers) * len(benchmarks.MODEL_MODES) if run_model else 0
    with Progress(total, lines=True) as progress:
        op_rows, copy_rows = bench_ops(settings, cases, op_providers, progress)
        model_rows = bench_model(settings, model_providers, progress) if run_model else []

    notes += failure_notes([row for row in op_rows + model_rows if row["error"]])
    notes += peer_notes(op_rows) + trust_notes(machine, op_rows + model_rows)
    timed = [row for row in op_rows + model_rows if not row["error"]]
    unreliable = sum(not row["reliable"] for row in timed)
    reliability = dict(machine_load.limits(), rows=len(timed), unreliable_rows=unreliable)
    info = dict(meta(settings, command, args, notes), machine=machine, reliability=reliability)
    return {"meta": info, "ops": op_rows, "copy": copy_rows, "model": model_rows}


def _peer_providers(settings: Settings, notes: list[str]) -> list[str]:
    """The installed peers, when asked for and on the CPU."""
    if not settings.peers:
        return []
    if settings.device.type != "cpu":
        notes.append(f"peers: timed on the CPU only, not on {settings.device}")
        return []
    absent = peers.missing()
    if absent:
        notes.append("peers not installed: " + ", ".join(f"{p} (pip install {pkg})" for p, pkg in absent.items()))
    return peers.installed()


def _modes(provider: str) -> tuple[str, ...]:
    return peers.modes(provider) if provider in peers.PEERS else benchmarks.MODES


def peer_notes(rows: list[dict]) -> list[str]:
    """How the peers ran: their threads, their modes, their layouts."""
    timed = {row["provider"]: row["threads"] for row in rows if row["provider"] in peers.PEERS and not row["error"]}
    if not timed:
        return []
    notes = ["peers' threads: " + "; ".join(f"{peer} {threads}" for peer, threads in timed.items()),
             "peers: the same inputs and LRN convention as ours (alexnet_fast/peers.py), converted to their arrays "
             "outside the timed calls (tensorflow: NHWC, its CPU LRN has no NCHW); forward, and forward_backward "
             "where the framework has autograd"]
    forward_only = [peer for peer in timed if peer not in peers.WITH_AUTOGRAD]
    if forward_only:
        notes.append(f"{', '.join(forward_only)}: forward only (inference engines, no autograd)")
    return notes


def trust_notes(machine: dict, rows: list[dict]) -> list[str]:
    """What says that the numbers may be off: a busy machine, rows whose
    rounds never settled, ops faster than a copy."""
    notes = [f"busy machine before the run: {'; '.join(machine['reasons'])}"] if machine["busy"] else []
    timed = [row for row in rows if not row["error"]]
    unreliable = [row for row in timed if not row["reliable"]]
    if unreliable:
        reasons = [reason for row in unreliable for reason in row["unreliable_reasons"]]
        kinds = [kind for kind in machine_load.PROBLEM_KINDS if any(r.startswith(kind) for r in reasons)]
        notes.append(f"{len(unreliable)} of {len(timed)} rows unreliable (marked ?): {', '.join(kinds)} out of bounds "
                     f"after {machine_load.MAX_ROUNDS} rounds (models: 1); run again on an idle machine")
    above = [row for row in timed if row.get("above_copy")]
    if above:
        notes.append(f"{len(above)} rows above 100% of a copy's bandwidth (marked !): their data stayed in a "
                     "cache, or the timing is off")
    return notes


def failure_notes(failed: list[dict]) -> list[str]:
    """One note per distinct error, naming the runs that hit it."""
    by_error: dict[str, list[str]] = {}
    for row in failed:
        where = row["case"] if "op" in row else "model"
        by_error.setdefault(row["error"], []).append(f"{where} {row['mode']} {row['provider']}")
    return [f"failed ({', '.join(labels)}): {error}" for error, labels in by_error.items()]


def bench_ops(settings: Settings, cases, providers, progress) -> tuple[list[dict], list[dict]]:
    """Times every case x mode x provider on the same fresh inputs per case,
    each with a copy of the case's input timed beside it, call for call, as
    the bandwidth yardstick; and per case a summary of those copies."""
    rows, copies = [], []
    dtype = str(settings.dtype).removeprefix("torch.")
    for seed, case in enumerate(cases):
        x, grad = benchmarks.make_inputs(case, settings.dtype, settings.device, seed=seed)
        copy = benchmarks.copy_workload(x)
        copy_bytes = 2 * x.numel() * x.element_size()
        functions = {}
        for mode in benchmarks.MODES:
            measured = []
            for provider in [p for p in providers if mode in _modes(p) and (case.for_peers or p not in peers.PEERS)]:
                progress.step(f"{case.name} {mode} {provider}")
                row = dict(op=case.op, case=case.name, shape=list(case.shape), dtype=dtype, mode=mode,
                           provider=provider, bytes=benchmarks.bytes_moved(case, mode, x, grad))
                try:
                    work = _workload(provider, case.op, mode, x, grad, functions)
                    if provider in peers.PEERS:
                        row["threads"] = functions[provider].threads
                    result = _measure(work, settings, baseline=copy)
                    del work
                    row.update(measurement_fields(result), error=None)
                    row.update(bandwidth_fields(row["bytes"], result.timing, copy_bytes, result.baseline))
                except Exception as error:  # shown in the table and the notes
                    row.update(error=one_line(error))
                measured.append(row)
            rows += with_speedups(measured)
        copies.append(copy_summary(case, dtype, [row for row in rows if row["case"] == case.name]))
    return rows, copies


def bandwidth_fields(nbytes: int, timing: benchmarks.Timing, copy_bytes: int, copy: benchmarks.Timing) -> dict:
    """GB/s of the floor's bytes, of the copy timed beside them, the ratio
    in percent, and whether it is above 100%."""
    gbps, copy_gbps = nbytes / timing.median / 1e9, copy_bytes / copy.median / 1e9
    return dict(gbps=gbps, copy_median_ms=copy.median * 1e3, copy_gbps=copy_gbps, pct_of_copy=100 * gbps / copy_gbps,
                above_copy=gbps > copy_gbps)


def _workload(provider: str, op: str, mode: str, x, grad, functions: dict):
    """The timed callable of ``provider`` for ``op`` in ``mode``; ``functions``
    keeps each provider's function (or peer op) across the modes of a case."""
    if provider not in functions:
        functions[provider] = (peers.build(provider, op, **benchmarks.LRN_PARAMS, **benchmarks.POOL_PARAMS)
                               if provider in peers.PEERS else benchmarks.function(op, provider))
    if provider in peers.PEERS:
        return peers.workload(functions[provider], mode, x, grad)
    return benchmarks.workload(functions[provider], mode, x, grad)


def copy_summary(case, dtype: str, rows: list[dict]) -> dict:
    """The copy baselines of a case's rows: their median GB/s and range."""
    gbps = sorted(row["copy_gbps"] for row in rows if not row["error"])
    if not gbps:
        return dict(case=case.name, shape=list(case.shape), dtype=dtype, gbps=None, gbps_min=None, gbps_max=None)
    return dict(case=case.name, shape=list(case.shape), dtype=dtype, gbps=statistics.median(gbps),
                gbps_min=gbps[0], gbps_max=gbps[-1])


def _measure(work, settings: Settings, baseline=None) -> benchmarks.Measurement:
    return benchmarks.measure(work, settings.device, settings.warmup, settings.repeats, settings.min_time,
                              baseline=baseline)


def timing_fields(timing: benchmarks.Timing) -> dict:
    """The JSON fields of a timing, in milliseconds."""
    return dict(median_ms=timing.median * 1e3, q25_ms=timing.q25 * 1e3, q75_ms=timing.q75 * 1e3,
                mean_ms=timing.mean * 1e3, std_ms=timing.std * 1e3, repeats=len(timing.times),
                times_ms=[t * 1e3 for t in timing.times])


def measurement_fields(result: benchmarks.Measurement) -> dict:
    """The JSON fields of a measurement: its timing and whether to trust it."""
    return dict(timing_fields(result.timing), reliable=not result.problems, unreliable_reasons=result.problems,
                rounds=result.rounds, relative_iqr=result.round.relative_iqr, cpu_share=result.round.cpu_share,
                cpu_stall=result.round.cpu_stall)


def with_speedups(rows: list[dict]) -> list[dict]:
    """speedup_vs_X = X's median / this median (None where either is missing)."""
    medians = {row["provider"]: row.get("median_ms") for row in rows}
    for row in rows:
        for base in ("eager", "compile"):
            ok = row.get("median_ms") and medians.get(base)
            row[f"speedup_vs_{base}"] = medians[base] / row["median_ms"] if ok else None
    return rows


def bench_model(settings: Settings, providers, progress) -> list[dict]:
    """AlexNet (paper variant, fp32, eval mode) per provider and mode:
    mean +- std over the steps after warm-up, and peak memory of one step."""
    rows = []
    images, labels = benchmarks.model_inputs(settings.model_batch, torch.float32, settings.device)
    for name, backend, compiled in providers:
        model = None
        for mode in benchmarks.MODEL_MODES:
            progress.step(f"model {name} {mode}")
            row = dict(provider=name, backend=backend, compiled=compiled, mode=mode, batch=settings.model_batch,
                       image_size=benchmarks.MODEL_IMAGE_SIZE, dtype="float32", warmup=settings.model_warmup)
            try:
                if model is None:
                    model = benchmarks.build_model(backend, compiled, settings.device, torch.float32)
                work = benchmarks.model_workload(model, mode, images, labels)
                # One round: a model step takes seconds on a CPU; the row is marked if it cannot be trusted.
                result = benchmarks.measure(work, settings.device, settings.model_warmup, settings.model_steps,
                                            max_rounds=1)
                model.zero_grad(set_to_none=True)  # the step's grads count as its memory
                peak, peak_kind = benchmarks.peak_memory(work, settings.device)
                row.update(measurement_fields(result), images_per_s=settings.model_batch / result.timing.mean,
                           peak_memory_bytes=peak, peak_memory_kind=peak_kind, error=None)
            except Exception as error:
                row.update(error=one_line(error))
            rows.append(row)
        del model
    return rows


def meta(settings: Settings, command: str, args: dict, notes: list[str]) -> dict:
    """Where, when and with what the run was made."""
    device = settings.device
    cpu = cpu_info()
    return dict(
        device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else cpu["name"],
        cpu=cpu,
        torch=torch.__version__,
        triton=package_version("triton"),
        alexnet_fast=package_version("alexnet-fast"),
        python=platform.python_version(),
        cpu_count=os.cpu_count(),
        threads=torch.get_num_threads(),
        backends=[b for b in benchmarks.providers(device) if b not in ("eager", "compile")],
        peers={peer: package_version(peers.INSTALL[peer].split()[0]) for peer in peers.installed()}
        if settings.peers else {},
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        command=command,
        args={key: plain(value) for key, value in args.items()},
        settings={key: plain(value) for key, value in dataclasses.asdict(settings).items()},
        notes=notes,
    )


def plain(value):
    """A JSON-able form of an argument or setting."""
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, (torch.device, torch.dtype, Path)):
        return str(value).removeprefix("torch.")
    return value


def package_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _first_processor() -> dict[str, str]:
    """The fields of the first processor in /proc/cpuinfo ({} where there is none)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_info() -> dict:
    """The CPU's name, its family and model numbers (a VM may hide the name),
    and the instruction-set variant the CPU kernels run (the best the CPU has,
    capped by ALEXNET_FAST_CPU_ISA)."""
    fields = _first_processor()

    def number(key):
        return int(fields[key]) if fields.get(key, "").isdigit() else None

    info = dict(name=cpu_name(fields), family=number("cpu family"), model=number("model"), isa=None,
                isa_supported=None, isa_cap=os.environ.get("ALEXNET_FAST_CPU_ISA"))
    try:
        from alexnet_fast import _C

        variants = _C._cpu_variants_used()
        info.update(isa=variants["selected"], isa_supported=variants["supported"])
    except (ImportError, AttributeError, KeyError):
        pass
    return info


def cpu_name(fields: dict[str, str] | None = None) -> str:
    """The CPU's model name (from ``fields`` of /proc/cpuinfo when given)."""
    fields = _first_processor() if fields is None else fields
    return fields.get("model name") or platform.processor() or platform.machine() or "cpu"
