"""Markdown tables from a pytest-benchmark JSON of this suite, or from the
JSON of `alexnet-fast bench --json`:

    python benches/report.py benches/results/<file>.json

The tables of `alexnet-fast bench --markdown` (alexnet_fast.bench_report),
one set per dtype: for each op case and mode the median per provider, its
interquartile range, effective GB/s (the floor's bytes, see
alexnet_fast.benchmarks.bytes_moved, over the median), its fraction of the
copy bandwidth measured on a tensor of the same shape, and the speed-ups
against eager and torch.compile measured in the same run; then the model.
"""
import json
import sys

from alexnet_fast.bench_report import print_report, reports_from_pytest_benchmark


def main(path: str) -> None:
    with open(path) as f:
        data = json.load(f)
    reports = [data] if "meta" in data else reports_from_pytest_benchmark(data)  # `bench --json`, or pytest's
    for report in reports:
        print_report(report, markdown=True)


if __name__ == "__main__":
    main(sys.argv[1])
