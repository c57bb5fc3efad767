"""Whether a timing can be trusted: signs that other work shared the CPUs.

A timed call that lost the CPU to another process for part of its time
measures the scheduler, not the kernel: on a busy machine medians come out
as whole multiples of the scheduler's tick, and a copy baseline timed at
another moment can be slower or faster than the op beside it. Three signs,
each read around a round of timed calls:

- spread: the interquartile range of the calls over their median. Calls of
  the same work on the same data differ little on an idle machine.
- CPU share: the process's CPU time (all its threads) over the wall time. A
  CPU-bound process keeps at least one thread running the whole time (the
  caller, or the workers while the caller waits for them), so a share below
  1 means it waited for a CPU. Not read on a GPU, where the host sleeps.
- CPU stall: Linux's pressure-stall information (/proc/pressure/cpu, line
  "some"): the fraction of the wall time in which some runnable task waited
  for a CPU, ours or another's. Where the file is missing, nothing is read.

The load average before the run says whether the machine was already busy.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Sequence

PRESSURE_PATH = "/proc/pressure/cpu"
MAX_RELATIVE_IQR = 0.10  # spread above which a round is repeated
MIN_CPU_SHARE = 0.90  # process CPU time / wall time below which the process waited for a CPU
MAX_CPU_STALL = 0.10  # fraction of the time with a task waiting for a CPU
MAX_ROUNDS = 3  # rounds of timed calls before a row is marked unreliable


def read_cpu_pressure(path: str = PRESSURE_PATH) -> dict | None:
    """The "some" line of a pressure file: ``avg10``, ``avg60``, ``avg300``
    (percent of the time) and ``total`` (microseconds stalled since boot);
    None where the file is missing or not in that format."""
    try:
        with open(path) as pressure:
            for line in pressure:
                kind, *fields = line.split()
                if kind == "some":
                    values = dict(field.split("=", 1) for field in fields)
                    return dict(avg10=float(values["avg10"]), avg60=float(values["avg60"]),
                                avg300=float(values["avg300"]), total=int(values["total"]))
    except (OSError, ValueError, KeyError):
        pass
    return None


@dataclasses.dataclass(frozen=True)
class Clocks:
    """A reading of the wall clock, the process's CPU time and the stall total."""

    wall: float  # seconds
    cpu: float  # seconds, all threads
    stalled_us: int | None

    @classmethod
    def read(cls, pressure_path: str = PRESSURE_PATH) -> "Clocks":
        pressure = read_cpu_pressure(pressure_path)
        return cls(time.perf_counter(), time.process_time(), pressure["total"] if pressure else None)


@dataclasses.dataclass(frozen=True)
class Round:
    """One round of timed calls: seconds per call of the work (and of the
    baseline timed beside it), and the clocks read around the round."""

    times: tuple[float, ...]
    baseline_times: tuple[float, ...]
    start: Clocks
    end: Clocks

    @property
    def relative_iqr(self) -> float:
        ordered = sorted(self.times)
        median = quantile(ordered, 0.5)
        return (quantile(ordered, 0.75) - quantile(ordered, 0.25)) / median if median > 0 else 0.0

    @property
    def cpu_share(self) -> float | None:
        wall = self.end.wall - self.start.wall
        return (self.end.cpu - self.start.cpu) / wall if wall > 0 else None

    @property
    def cpu_stall(self) -> float | None:
        wall = self.end.wall - self.start.wall
        if self.start.stalled_us is None or self.end.stalled_us is None or wall <= 0:
            return None
        return (self.end.stalled_us - self.start.stalled_us) / 1e6 / wall


def quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between the order statistics of sorted values (numpy's default)."""
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


PROBLEM_KINDS = ("spread", "CPU share", "CPU stall")  # how each problem of round_problems starts


def round_problems(measured: Round, cpu_share_applies: bool) -> list[str]:
    """Why a round cannot be trusted (empty: it can), e.g. "spread 23% (limit 10%)"."""
    problems = []
    if measured.relative_iqr > MAX_RELATIVE_IQR:
        problems.append(f"spread {measured.relative_iqr:.0%} (limit {MAX_RELATIVE_IQR:.0%})")
    share = measured.cpu_share
    if cpu_share_applies and share is not None and share < MIN_CPU_SHARE:
        problems.append(f"CPU share {share:.0%} (limit {MIN_CPU_SHARE:.0%})")
    stall = measured.cpu_stall
    if stall is not None and stall > MAX_CPU_STALL:
        problems.append(f"CPU stall {stall:.0%} (limit {MAX_CPU_STALL:.0%})")
    return problems


def repeat_until_steady(time_round: Callable[[], Round], cpu_share_applies: bool,
                        max_rounds: int = MAX_ROUNDS) -> tuple[Round, list[str], int]:
    """Times rounds until one has no problem, at most ``max_rounds``. Returns
    that round, else the one with the smallest spread and its problems; and
    the number of rounds timed."""
    best, best_problems = None, []
    for count in range(1, max_rounds + 1):
        measured = time_round()
        problems = round_problems(measured, cpu_share_applies)
        if not problems:
            return measured, [], count
        if best is None or measured.relative_iqr < best.relative_iqr:
            best, best_problems = measured, problems
    return best, best_problems, max_rounds


def machine_at_start(threads: int, pressure_path: str = PRESSURE_PATH,
                     load_average: Callable[[], tuple[float, float, float]] = os.getloadavg,
                     cpu_count: int | None = None) -> dict:
    """The load before the run: the load averages, the stall percentages, and
    ``busy`` with its ``reasons``: other work would take CPUs from ``threads``
    threads (1-minute load + threads above the CPUs, by more than half a CPU)
    or tasks already wait for a CPU (10-second stall above MAX_CPU_STALL)."""
    cpus = cpu_count or os.cpu_count() or 1
    try:
        loads = list(load_average())
    except OSError:
        loads = None
    pressure = read_cpu_pressure(pressure_path)
    reasons = []
    if loads is not None and loads[0] + threads > cpus + 0.5:
        ours = f"{threads} thread{'s' * (threads != 1)} of ours"
        reasons.append(f"load average {loads[0]:.2f} on {cpus} CPUs, with {ours} to come")
    if pressure is not None and pressure["avg10"] / 100 > MAX_CPU_STALL:
        reasons.append(f"tasks waited for a CPU {pressure['avg10']:.0f}% of the last 10 s")
    return dict(load_average=loads, cpu_pressure=pressure, cpu_count=cpus, threads=threads, busy=bool(reasons),
                reasons=reasons)


def limits() -> dict:
    """The thresholds, for the report's metadata."""
    return dict(max_relative_iqr=MAX_RELATIVE_IQR, min_cpu_share=MIN_CPU_SHARE, max_cpu_stall=MAX_CPU_STALL,
                max_rounds=MAX_ROUNDS)
