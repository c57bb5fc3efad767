"""`alexnet-fast bench`: its arguments, and the run that prints and saves the report.

It times, on the CPU or a GPU:

1. the operators (relu_lrn, max_pool2d, relu_lrn_max_pool2d) at AlexNet's
   shapes, each mode and provider (eager PyTorch, torch.compile, each fast
   backend): median and interquartile range, GB/s, % of a copy's GB/s
   measured on the same tensor, speed-ups against eager and torch.compile;
   with --peers, also in ONNX Runtime, OpenVINO, TensorFlow and JAX (those
   installed; alexnet_fast.peers);
2. the model, AlexNet's paper variant: forward and forward+backward per
   batch, mean +- std over many steps after warm-up (like the TensorFlow
   AlexNet benchmark), fast backends against the reference model eager and
   compiled; images per second; peak memory.

The run is alexnet_fast.bench_run, the tables and the plot
alexnet_fast.bench_report. Progress goes to stderr, the tables to stdout;
--json, --markdown and --plot save the results.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys

import torch

from alexnet_fast import bench_report, bench_run, benchmarks
from alexnet_fast.cli import argtypes

NAME = "bench"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME, help="time the operators and the model",
        description="Times AlexNet's ReLU+LRN and max-pool operators (eager, torch.compile, fast backends) "
        "and the AlexNet model, and prints tables.")
    parser.add_argument("--device", type=argtypes.device, default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--dtype", choices=tuple(bench_run.DTYPES), default="float32",
                        help="operators' dtype (default float32)")
    parser.add_argument("--batch-size", type=argtypes.positive_int, metavar="N", help="batch of operators and model")
    parser.add_argument("--ops", type=argtypes.comma_list(benchmarks.OPS, "op"), default=benchmarks.OPS,
                        metavar="OP,...", help=f"operators to time (default: {','.join(benchmarks.OPS)})")
    parser.add_argument("--model", action=argparse.BooleanOptionalAction, default=True,
                        help="time the AlexNet model (default: yes)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="include torch.compile providers (default: yes, no with --quick)")
    parser.add_argument("--threads", type=argtypes.positive_int, metavar="N",
                        help=f"CPU threads of torch (default: torch's, {torch.get_num_threads()} here)")
    parser.add_argument("--peers", action="store_true",
                        help="also time the ops in ONNX Runtime, OpenVINO, TensorFlow and JAX, those installed "
                        "(pip install alexnet-fast[peers]); CPU only")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats: a smoke test")
    parser.add_argument("--json", type=argtypes.output_file(".json"), metavar="PATH.json", help="write the raw numbers")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--plot", type=argtypes.output_file(".png"), metavar="PATH.png",
                        help="bar chart of the speed-ups")
    return parser


def settings_for(args: argparse.Namespace) -> bench_run.Settings:
    """The run's settings from the arguments: --quick skips torch.compile
    unless --compile; --batch-size sets both batches."""
    sizes = bench_run.default_sizes(args.device, args.quick)
    if args.batch_size is not None:
        sizes.update(op_batch=args.batch_size, model_batch=args.batch_size)
    return bench_run.Settings(device=args.device, dtype=bench_run.DTYPES[args.dtype], ops=args.ops, model=args.model,
                              compile=not args.quick if args.compile is None else args.compile, quick=args.quick,
                              peers=args.peers, **sizes)


def run(args: argparse.Namespace) -> int:
    """Runs the benchmarks, prints the tables, writes the files; the exit status."""
    if args.device is None:
        args.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        print("alexnet-fast bench: error: argument --plot: needs matplotlib (pip install matplotlib)", file=sys.stderr)
        return 2
    threads = torch.get_num_threads()
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        recorded = {key: value for key, value in vars(args).items() if key != "command_line"}
        report = bench_run.run_benchmarks(settings_for(args), command=args.command_line, args=recorded)
        return show_and_save(report, args)
    except KeyboardInterrupt:
        print("alexnet-fast: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one line, not a traceback
        print(f"alexnet-fast: error: {bench_run.one_line(error)}", file=sys.stderr)
        return 1
    finally:
        torch.set_num_threads(threads)


def show_and_save(report: dict, args: argparse.Namespace) -> int:
    """Prints the tables, writes --json and --plot; 1 if a measurement failed."""
    bench_report.print_report(report, markdown=args.markdown)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        bench_report.plot_speedups(report, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    failed = sum(1 for row in report["ops"] + report["model"] if row["error"])
    if failed:
        print(f"alexnet-fast: {failed} measurement(s) failed (see the notes)", file=sys.stderr)
    return 1 if failed else 0
