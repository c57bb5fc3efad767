"""The `alexnet-fast` command line: `alexnet-fast bench [options]` and
`alexnet-fast train [options]` (alexnet_fast/train/).

`bench` times, on the CPU or a GPU:

1. the operators (relu_lrn, max_pool2d, relu_lrn_max_pool2d) at AlexNet's
   shapes, each mode and provider (eager PyTorch, torch.compile, each fast
   backend): median and interquartile range, GB/s, % of a copy's GB/s
   measured on the same tensor, speed-ups against eager and torch.compile;
2. the model, AlexNet's paper variant: forward and forward+backward per
   batch, mean +- std over many steps after warm-up (like the TensorFlow
   AlexNet benchmark), fast backends against the reference model eager and
   compiled; images per second; peak memory.

What is timed is defined in alexnet_fast.benchmarks. Progress goes to
stderr, the tables to stdout; --json, --markdown and --plot save the results.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from alexnet_fast import benchmarks
from alexnet_fast.train.cli import add_train_parser, run_train

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclasses.dataclass(frozen=True)
class Settings:
    """What one run measures, from the arguments and the device."""

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


def settings_for(args: argparse.Namespace) -> Settings:
    """Defaults: a full run in a few minutes on a 2-core CPU (small batches
    there), the classic sizes on a GPU; --quick: tiny batches, few repeats,
    no torch.compile unless --compile."""
    gpu = args.device.type == "cuda"
    if args.quick:
        sizes = dict(op_batch=2, warmup=1, repeats=3, min_time=0.0, model_batch=2, model_warmup=1, model_steps=3)
    elif gpu:
        sizes = dict(op_batch=128, warmup=5, repeats=50, min_time=0.1, model_batch=32, model_warmup=10,
                     model_steps=100)
    else:
        sizes = dict(op_batch=8, warmup=2, repeats=10, min_time=0.1, model_batch=4, model_warmup=2, model_steps=10)
    if args.batch_size is not None:
        sizes.update(op_batch=args.batch_size, model_batch=args.batch_size)
    return Settings(
        device=args.device,
        dtype=DTYPES[args.dtype],
        ops=args.ops,
        model=args.model,
        compile=not args.quick if args.compile is None else args.compile,
        **sizes,
    )


# --- Arguments --------------------------------------------------------------
def _device(text: str) -> torch.device:
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use cpu or cuda") from None
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"{text!r} is not supported; use cpu or cuda")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise argparse.ArgumentTypeError(f"{text!r}: CUDA is not available here ({why}); use --device cpu")
        if (device.index or 0) >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r}: there are {torch.cuda.device_count()} CUDA devices")
    return device


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {value}")
    return value


def _ops(text: str) -> tuple[str, ...]:
    ops = tuple(op.strip() for op in text.split(",") if op.strip())
    unknown = [op for op in ops if op not in benchmarks.OPS]
    if unknown or not ops:
        raise argparse.ArgumentTypeError(
            f"unknown op {', '.join(map(repr, unknown)) or '(none given)'}; choose from {','.join(benchmarks.OPS)}"
        )
    return ops


def _output(suffix: str):
    def check(text: str) -> Path:
        path = Path(text)
        if path.suffix.lower() != suffix:
            raise argparse.ArgumentTypeError(f"{text!r} must end with {suffix}")
        if not path.parent.is_dir():
            raise argparse.ArgumentTypeError(f"directory {str(path.parent)!r} does not exist")
        return path

    return check


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alexnet-fast", description="alexnet-fast tools")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bench = commands.add_parser(
        "bench",
        help="time the operators and the model",
        description="Times AlexNet's ReLU+LRN and max-pool operators (eager, torch.compile, fast backends) "
        "and the AlexNet model, and prints tables.",
    )
    bench.add_argument("--device", type=_device, default=None, help="cpu or cuda (default: cuda if available)")
    bench.add_argument("--dtype", choices=tuple(DTYPES), default="float32", help="operators' dtype (default float32)")
    bench.add_argument("--batch-size", type=_positive_int, metavar="N", help="batch of operators and model")
    bench.add_argument("--ops", type=_ops, default=benchmarks.OPS, metavar="OP,...",
                       help=f"operators to time (default: {','.join(benchmarks.OPS)})")
    bench.add_argument("--model", action=argparse.BooleanOptionalAction, default=True,
                       help="time the AlexNet model (default: yes)")
    bench.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                       help="include torch.compile providers (default: yes, no with --quick)")
    bench.add_argument("--threads", type=_positive_int, metavar="N",
                       help=f"CPU threads of torch (default: torch's, {torch.get_num_threads()} here)")
    bench.add_argument("--quick", action="store_true", help="tiny sizes and few repeats: a smoke test")
    bench.add_argument("--json", type=_output(".json"), metavar="PATH.json", help="write the raw numbers")
    bench.add_argument("--markdown", action="store_true", help="print Markdown tables")
    bench.add_argument("--plot", type=_output(".png"), metavar="PATH.png", help="bar chart of the speed-ups")
    add_train_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `alexnet-fast` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its message
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.command == "train":
        return run_train(args)
    if args.device is None:
        args.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("argument --plot: needs matplotlib (pip install matplotlib)")
    threads = torch.get_num_threads()
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        return bench(args, command=shlex.join(["alexnet-fast", *argv]))
    except KeyboardInterrupt:
        print("alexnet-fast: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one line, not a traceback
        print(f"alexnet-fast: error: {_one_line(error)}", file=sys.stderr)
        return 1
    finally:
        torch.set_num_threads(threads)


def _one_line(error: BaseException, limit: int = 200) -> str:
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- The run ----------------------------------------------------------------
def bench(args: argparse.Namespace, command: str) -> int:
    """Runs the benchmarks, prints the tables, writes the files; the exit status."""
    settings = settings_for(args)
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
        notes.append("torch.compile: skipped" + (" (--quick; add --compile)" if args.quick else " (--no-compile)"))
    model_providers = [p for p in benchmarks.MODEL_PROVIDERS if settings.compile or not p.compiled]
    if settings.model and not benchmarks.models_available():
        notes.append("model: skipped, alexnet_fast.models is not in this build")
    run_model = settings.model and benchmarks.models_available()

    total = len(cases) * (1 + len(benchmarks.MODES) * len(op_providers))
    total += len(model_providers) * len(benchmarks.MODEL_MODES) if run_model else 0
    with Progress(total) as progress:
        op_rows, copy_rows = bench_ops(settings, cases, op_providers, progress)
        model_rows = bench_model(settings, model_providers, progress) if run_model else []

    failed = [row for row in op_rows + model_rows if row["error"]]
    notes += _failure_notes(failed)
    report = {"meta": meta(settings, args, command, notes), "ops": op_rows, "copy": copy_rows, "model": model_rows}
    print_report(report, markdown=args.markdown)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        plot_speedups(op_rows, args.plot, title=f"alexnet-fast on {report['meta']['device_name']}")
        print(f"wrote {args.plot}", file=sys.stderr)
    if failed:
        print(f"alexnet-fast: {len(failed)} measurement(s) failed (see the notes)", file=sys.stderr)
    return 1 if failed else 0


def _failure_notes(failed: list[dict]) -> list[str]:
    """One note per distinct error, naming the runs that hit it."""
    by_error: dict[str, list[str]] = {}
    for row in failed:
        where = row["case"] if "op" in row else "model"
        by_error.setdefault(row["error"], []).append(f"{where} {row['mode']} {row['provider']}")
    return [f"failed ({', '.join(labels)}): {error}" for error, labels in by_error.items()]


def bench_ops(settings: Settings, cases, providers, progress) -> tuple[list[dict], list[dict]]:
    """Times every case x mode x provider on the same fresh inputs per case,
    and a copy of the case's input as the bandwidth yardstick."""
    rows, copies = [], []
    for seed, case in enumerate(cases):
        x, grad = benchmarks.make_inputs(case, settings.dtype, settings.device, seed=seed)
        progress.step(f"{case.name} copy")
        copy = _time(benchmarks.copy_workload(x), settings)
        copy_gbps = 2 * x.numel() * x.element_size() / copy.median / 1e9
        copies.append(dict(case=case.name, shape=list(case.shape), dtype=str(settings.dtype)[6:],
                           median_ms=copy.median * 1e3, gbps=copy_gbps))
        functions = {}
        for mode in benchmarks.MODES:
            measured = []
            for provider in providers:
                progress.step(f"{case.name} {mode} {provider}")
                row = dict(op=case.op, case=case.name, shape=list(case.shape), dtype=str(settings.dtype)[6:],
                           mode=mode, provider=provider, bytes=benchmarks.bytes_moved(case, mode, x, grad),
                           copy_gbps=copy_gbps)
                try:
                    if provider not in functions:
                        functions[provider] = benchmarks.function(case.op, provider)
                    work = benchmarks.workload(functions[provider], mode, x, grad)
                    timing = _time(work, settings)
                    del work
                    row.update(_timing_fields(timing), error=None)
                    row["gbps"] = row["bytes"] / timing.median / 1e9
                    row["pct_of_copy"] = 100 * row["gbps"] / copy_gbps
                except Exception as error:  # shown in the table and the notes
                    row.update(error=_one_line(error))
                measured.append(row)
            rows += _with_speedups(measured)
    return rows, copies


def _time(work, settings: Settings) -> benchmarks.Timing:
    return benchmarks.time_workload(work, settings.device, settings.warmup, settings.repeats, settings.min_time)


def _timing_fields(timing: benchmarks.Timing) -> dict:
    return dict(median_ms=timing.median * 1e3, q25_ms=timing.q25 * 1e3, q75_ms=timing.q75 * 1e3,
                mean_ms=timing.mean * 1e3, std_ms=timing.std * 1e3, repeats=len(timing.times),
                times_ms=[t * 1e3 for t in timing.times])


def _with_speedups(rows: list[dict]) -> list[dict]:
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
                timing = benchmarks.time_workload(work, settings.device, settings.model_warmup, settings.model_steps)
                model.zero_grad(set_to_none=True)  # the step's grads count as its memory
                peak, peak_kind = benchmarks.peak_memory(work, settings.device)
                row.update(_timing_fields(timing), images_per_s=settings.model_batch / timing.mean,
                           peak_memory_bytes=peak, peak_memory_kind=peak_kind, error=None)
            except Exception as error:
                row.update(error=_one_line(error))
            rows.append(row)
        del model
    return rows


def meta(settings: Settings, args: argparse.Namespace, command: str, notes: list[str]) -> dict:
    device = settings.device
    return dict(
        device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        torch=torch.__version__,
        triton=_version("triton"),
        alexnet_fast=_version("alexnet-fast"),
        python=platform.python_version(),
        cpu_count=os.cpu_count(),
        threads=torch.get_num_threads(),
        backends=[b for b in benchmarks.providers(device) if b not in ("eager", "compile")],
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        command=command,
        args={key: _plain(value) for key, value in vars(args).items()},
        settings={key: _plain(value) for key, value in dataclasses.asdict(settings).items()},
        notes=notes,
    )


def _plain(value):
    """A JSON-able form of an argument or setting."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (torch.device, torch.dtype, Path)):
        return str(value).removeprefix("torch.")
    return value


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


# --- Output -----------------------------------------------------------------
class Progress:
    """Progress on stderr: a bar (rich if installed, else tqdm) on a terminal,
    else one line per item (a log shows those as they come)."""

    def __init__(self, total: int):
        self.total, self.done, self._start = total, 0, time.monotonic()
        self._rich = self._tqdm = None
        terminal = sys.stderr.isatty()
        if terminal and importlib.util.find_spec("rich"):
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn
            from rich.progress import TimeElapsedColumn

            self._rich = RichProgress(TextColumn("{task.description:<36}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=Console(stderr=True))
        elif terminal and importlib.util.find_spec("tqdm"):
            from tqdm import tqdm

            self._tqdm = tqdm(total=total, file=sys.stderr, unit="run")

    def __enter__(self):
        if self._rich:
            self._rich.start()
            self._task = self._rich.add_task("starting", total=self.total)
        return self

    def step(self, description: str) -> None:
        """Marks the previous item done and names the next."""
        if self._rich:
            self._rich.update(self._task, completed=self.done, description=description)
        elif self._tqdm:
            self._tqdm.n = self.done
            self._tqdm.set_description(description)
        else:
            elapsed = time.monotonic() - self._start
            count = f"{self.done + 1:>{len(str(self.total))}}/{self.total}"
            print(f"[{count} {elapsed:4.0f} s] {description}", file=sys.stderr, flush=True)
        self.done += 1

    def __exit__(self, *exc):
        if self._rich:
            self._rich.update(self._task, completed=self.done, description="done")
            self._rich.stop()
        elif self._tqdm:
            self._tqdm.n = self.done
            self._tqdm.close()


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    decimals = 0 if value >= 100 else 1 if value >= 10 else 2 if value >= 1 else 3
    return f"{value:.{decimals}f}"


def _percent(value: float) -> str:
    return f"{value:.0f}%" if value >= 10 else f"{value:.2g}%"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def op_table(report: dict) -> tuple[str, list[str], list[list[str]], list[str]]:
    """(title, headers, rows, footnotes) of the operators' table."""
    headers = ["op", "case", "mode", "provider", "median ms", "IQR ms", "GB/s", "% copy", "vs eager", "vs compile"]
    rows = []
    for row in report["ops"]:
        head = [row["op"], f"{row['case']} {'x'.join(map(str, row['shape']))}", row["mode"], row["provider"]]
        if row["error"]:
            rows.append(head + ["failed", "", "", "", "", ""])
            continue
        rows.append(head + [_ms(row["median_ms"]), f"{_ms(row['q25_ms'])}-{_ms(row['q75_ms'])}",
                            f"{row['gbps']:.3g}", _percent(row["pct_of_copy"]),
                            _ratio(row["speedup_vs_eager"]), _ratio(row["speedup_vs_compile"])])
    settings = report["meta"]["settings"]
    title = (f"Operators: {settings['dtype']} on {report['meta']['device_name']} ({report['meta']['device']}), "
             f"batch {settings['op_batch']}, median of {settings['repeats']}"
             f"{'+' if settings['min_time'] else ''} timed calls after {settings['warmup']} warm-up")
    copies = ", ".join(f"{c['case']} {c['gbps']:.3g}" for c in report["copy"])
    footnotes = [f"copy GB/s (the 100% of % copy): {copies}" if copies else "no operators timed",
                 "vs X: X's median / this median (above 1: faster than X)"]
    return title, headers, rows, footnotes


def model_table(report: dict) -> tuple[str, list[str], list[list[str]], list[str]]:
    headers = ["provider", "mode", "batch", "mean +- std ms", "median ms", "images/s", "peak memory"]
    rows = []
    for row in report["model"]:
        head = [row["provider"], row["mode"], str(row["batch"])]
        if row["error"]:
            rows.append(head + ["failed", "", "", ""])
            continue
        memory = "n/a" if row["peak_memory_bytes"] is None else f"{row['peak_memory_bytes'] / 2**20:.0f} MiB"
        rows.append(head + [f"{_ms(row['mean_ms'])} +- {_ms(row['std_ms'])}", _ms(row["median_ms"]),
                            f"{row['images_per_s']:.1f}", memory])
    settings = report["meta"]["settings"]
    batch = f"batch {settings['model_batch']}"
    if report["meta"]["device"] == "cpu" and settings["model_batch"] < 32:
        batch += " (the classic benchmark's is 32: smaller to finish in minutes on a CPU; set --batch-size)"
    size = benchmarks.MODEL_IMAGE_SIZE
    title = (f"AlexNet (paper variant, {size}x{size}, float32) on {report['meta']['device_name']}: "
             f"{settings['model_steps']} steps after {settings['model_warmup']} warm-up")
    kind = next((row["peak_memory_kind"] for row in report["model"] if not row["error"]), "n/a")
    footnotes = [
        "eval() mode (dropout off) so that every provider computes the same function; "
        "forward_backward: cross-entropy loss, grads set to None each step",
        batch,
        f"peak memory: {kind} during one step, above the weights and batch allocated before it",
        "fast: alexnet(backend='auto'); reference: plain PyTorch layers; +compile: torch.compile, compiled in warm-up",
    ]
    return title, headers, rows, footnotes


def print_report(report: dict, markdown: bool = False) -> None:
    """The tables (rich, else plain text; Markdown with ``markdown``) and notes, on stdout."""
    tables = [op_table(report)] if report["ops"] or report["copy"] else []
    tables += [model_table(report)] if report["model"] else []
    render = _markdown if markdown else _rich if importlib.util.find_spec("rich") else _plain_text
    for title, headers, rows, footnotes in tables:
        render(title, headers, rows, footnotes)
    notes = report["meta"]["notes"]
    if notes:
        print("\n".join(["", "Notes:", *(f"- {note}" for note in notes)]))


def _markdown(title, headers, rows, footnotes) -> None:
    numeric = [all(_is_number(row[i]) for row in rows) for i in range(len(headers))]
    lines = [f"### {title}", "", "| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += [""] + [f"{note}  " for note in footnotes] + [""]
    print("\n".join(lines))


def _rich(title, headers, rows, footnotes) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption="\n".join(footnotes), caption_justify="left")
    for i, header in enumerate(headers):
        table.add_column(header, justify="right" if all(_is_number(row[i]) for row in rows) else "left")
    previous = None
    for row in rows:
        if previous is not None and row[:2] != previous[:2]:
            table.add_section()
        table.add_row(*row, style="red" if "failed" in row else None)
        previous = row
    Console(width=None if sys.stdout.isatty() else 200).print(table)  # files and logs: no wrapping at 80


def _plain_text(title, headers, rows, footnotes) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]
    line = lambda cells: "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()  # noqa: E731
    print("\n".join(["", title, line(headers), line(["-" * w for w in widths]), *map(line, rows), *footnotes]))


def _is_number(cell: str) -> bool:
    return cell[:1].isdigit() or cell in ("-", "", "failed")


def plot_speedups(rows: list[dict], path: Path, title: str) -> None:
    """A PNG, one panel per mode: each provider's speed-up against eager
    PyTorch at each op case (bars, log scale), eager's 1x as a dashed line."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
    from matplotlib.ticker import FuncFormatter

    providers = list(dict.fromkeys(row["provider"] for row in rows if row["provider"] != "eager"))
    cases = list(dict.fromkeys(row["case"] for row in rows))
    figure = Figure(figsize=(max(6.0, 1.2 * len(cases) + 2), 3 * len(benchmarks.MODES)), layout="constrained")
    axes = figure.subplots(len(benchmarks.MODES), 1, sharex=True, squeeze=False)[:, 0]
    width = 0.8 / max(1, len(providers))
    for ax, mode in zip(axes, benchmarks.MODES):
        speedup = {(r["case"], r["provider"]): r["speedup_vs_eager"] for r in rows if r["mode"] == mode}
        for i, provider in enumerate(providers):
            points = [(c, speedup[case, provider]) for c, case in enumerate(cases) if speedup.get((case, provider))]
            if points:
                bars = ax.bar([c + (i - (len(providers) - 1) / 2) * width for c, _ in points],
                              [v - 1 for _, v in points], width, bottom=1, label=provider)  # from 1x
                ax.bar_label(bars, labels=[f"{v:.2g}x" for _, v in points], fontsize=7)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_ylabel(f"{mode}\nspeed-up vs eager")
    axes[-1].set_xticks(range(len(cases)), cases, rotation=20, ha="right")
    if providers:
        axes[0].legend(title="provider", fontsize=8)
    figure.suptitle(title)
    figure.savefig(path, dpi=100)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
