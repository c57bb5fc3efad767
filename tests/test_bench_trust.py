"""The signs of a busy machine in `alexnet-fast bench` (alexnet_fast.machine_load),
fed with synthetic timings, clocks and pressure files: nothing here is timed."""
import pytest

from alexnet_fast import benchmarks, machine_load
from alexnet_fast.machine_load import Clocks, Round

PRESSURE = """some avg10=12.50 avg60=3.25 avg300=0.75 total=7323418
full avg10=0.00 avg60=0.00 avg300=0.00 total=0
"""


def _round(times, cpu_seconds=None, stalled_us=None, wall=1.0) -> Round:
    """A round of ``times`` over ``wall`` seconds in which the process used
    ``cpu_seconds`` of CPU (default: all of it) and tasks stalled ``stalled_us``."""
    start = Clocks(wall=100.0, cpu=10.0, stalled_us=None if stalled_us is None else 5_000_000)
    end = Clocks(wall=100.0 + wall, cpu=10.0 + (wall if cpu_seconds is None else cpu_seconds),
                 stalled_us=None if stalled_us is None else 5_000_000 + stalled_us)
    return Round(tuple(times), (), start, end)


def test_reads_the_some_line_of_a_pressure_file(tmp_path):
    path = tmp_path / "cpu"
    path.write_text(PRESSURE)
    assert machine_load.read_cpu_pressure(str(path)) == dict(avg10=12.5, avg60=3.25, avg300=0.75, total=7323418)
    assert machine_load.read_cpu_pressure(str(tmp_path / "missing")) is None
    path.write_text("some avg10=garbage\n")
    assert machine_load.read_cpu_pressure(str(path)) is None
    path.write_text("full avg10=1.00 avg60=1.00 avg300=1.00 total=5\n")  # no "some" line
    assert machine_load.read_cpu_pressure(str(path)) is None


def test_round_statistics_from_the_clocks():
    measured = _round([4.0, 1.0, 3.0, 2.0], cpu_seconds=1.5, stalled_us=250_000, wall=2.0)
    # sorted 1, 2, 3, 4: q25 1.75, median 2.5, q75 3.25
    assert measured.relative_iqr == pytest.approx(1.5 / 2.5)
    assert measured.cpu_share == pytest.approx(0.75)
    assert measured.cpu_stall == pytest.approx(0.125)
    assert _round([1.0]).cpu_stall is None  # no pressure file


def test_a_steady_round_has_no_problem():
    steady = _round([1.00, 1.01, 1.02, 0.99], cpu_seconds=1.9, stalled_us=10_000)  # two threads busy
    assert machine_load.round_problems(steady, cpu_share_applies=True) == []


@pytest.mark.parametrize("measured, kind", [
    (_round([1.0, 1.0, 1.5, 2.0]), "spread"),  # IQR 0.625 of the median 1.25
    (_round([1.0] * 4, cpu_seconds=0.6), "CPU share"),  # waited 40% of the time for a CPU
    (_round([1.0] * 4, stalled_us=300_000), "CPU stall"),  # tasks waited 30% of the time
])
def test_each_sign_of_a_busy_machine_is_a_problem(measured, kind):
    problems = machine_load.round_problems(measured, cpu_share_applies=True)
    assert len(problems) == 1 and problems[0].startswith(kind) and "(limit" in problems[0]


def test_the_cpu_share_is_not_judged_on_a_gpu():
    idle_host = _round([1.0] * 4, cpu_seconds=0.1)  # the host sleeps while the GPU works
    assert machine_load.round_problems(idle_host, cpu_share_applies=False) == []
    assert machine_load.round_problems(idle_host, cpu_share_applies=True) != []


def test_rounds_repeat_until_one_is_steady():
    rounds = iter([_round([1.0, 1.0, 1.5, 2.0]), _round([1.0, 1.0, 1.0, 1.01]), _round([9.0] * 4)])
    kept, problems, count = machine_load.repeat_until_steady(lambda: next(rounds), True, max_rounds=3)
    assert (kept.times, problems, count) == ((1.0, 1.0, 1.0, 1.01), [], 2)
    assert next(rounds).times == (9.0,) * 4  # the third round was never timed


def test_without_a_steady_round_the_least_spread_one_is_kept_and_marked():
    noisy = [_round([1.0, 1.0, 1.5, 2.0]), _round([1.0, 1.0, 1.2, 1.3]), _round([1.0, 2.0, 3.0, 4.0])]
    calls = iter(noisy)
    kept, problems, count = machine_load.repeat_until_steady(lambda: next(calls), True, max_rounds=3)
    assert kept is noisy[1] and count == 3
    assert problems == machine_load.round_problems(noisy[1], True) and problems[0].startswith("spread")


def test_busy_machine_before_the_run(tmp_path):
    pressure = tmp_path / "cpu"
    pressure.write_text(PRESSURE)  # 12.5% stalled over the last 10 s
    busy = machine_load.machine_at_start(2, str(pressure), load_average=lambda: (1.2, 1.0, 0.8), cpu_count=2)
    assert busy["busy"] and len(busy["reasons"]) == 2
    assert "load average 1.20 on 2 CPUs" in busy["reasons"][0] and "12%" in busy["reasons"][1]
    assert busy["load_average"] == [1.2, 1.0, 0.8] and busy["cpu_pressure"]["avg10"] == 12.5

    pressure.write_text(PRESSURE.replace("avg10=12.50", "avg10=0.40"))
    idle = machine_load.machine_at_start(2, str(pressure), load_average=lambda: (0.3, 0.2, 0.1), cpu_count=2)
    assert not idle["busy"] and idle["reasons"] == []
    # One thread of ours leaves a CPU to another job.
    assert not machine_load.machine_at_start(1, str(pressure), load_average=lambda: (1.2, 1, 1), cpu_count=2)["busy"]

    def no_load_average():
        raise OSError("not available")

    unknown = machine_load.machine_at_start(2, str(tmp_path / "missing"), load_average=no_load_average, cpu_count=2)
    assert unknown["load_average"] is None and unknown["cpu_pressure"] is None and not unknown["busy"]


def test_measure_times_the_baseline_beside_each_call():
    calls = []
    result = benchmarks.measure(lambda: calls.append("op"), "cpu", warmup=1, repeats=4,
                                baseline=lambda: calls.append("copy"))
    assert calls[:2] == ["op", "copy"]  # warm-up
    timed = calls[2:]
    assert timed == ["op", "copy"] * (4 * result.rounds)  # interleaved, call for call
    assert len(result.timing.times) == len(result.baseline.times) == 4
    assert 1 <= result.rounds <= machine_load.MAX_ROUNDS
    assert result.problems == machine_load.round_problems(result.round, True)
