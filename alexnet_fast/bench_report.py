"""How a benchmark report is shown: the operators' and the model's tables
(rich, plain text or Markdown), the notes, and a bar chart of the speed-ups.

A report is the dict made by alexnet_fast.bench_run (``meta``, ``ops``,
``copy``, ``model``); :func:`reports_from_pytest_benchmark` makes the same
from a pytest-benchmark JSON of benches/, so both are shown alike.
"""
from __future__ import annotations

import importlib.util
import sys
from collections import defaultdict
from pathlib import Path

from alexnet_fast import benchmarks, machine_load, peers
from alexnet_fast.bench_run import with_speedups

Table = tuple[str, list[str], list[list[str]], list[str]]  # title, headers, rows, footnotes


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    decimals = 0 if value >= 100 else 1 if value >= 10 else 2 if value >= 1 else 3
    return f"{value:.{decimals}f}"


def _percent(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}%" if value >= 10 else f"{value:.2g}%"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _trust_cells(row: dict) -> tuple[str, str]:
    """The median's mark ("?" when the row is unreliable) and the check
    column: the problems without their limits (in the footnote)."""
    reasons = row.get("unreliable_reasons") or []
    return (" ?" if reasons else ""), ", ".join(reason.split(" (limit")[0] for reason in reasons)


def _unreliable_footnote(rows: list[dict], limits: dict | None) -> list[str]:
    if not any(row.get("unreliable_reasons") for row in rows):
        return []
    limits = limits or machine_load.limits()
    return [f"?: unreliable after {limits['max_rounds']} rounds of timed calls (the model: 1): spread (IQR / median) "
            f"above {limits['max_relative_iqr']:.0%}, CPU share (process CPU time / wall time) below "
            f"{limits['min_cpu_share']:.0%}, or CPU stall (time in which a task waited for a CPU, "
            f"/proc/pressure/cpu) above {limits['max_cpu_stall']:.0%}"]


def _drop_empty_column(headers: list[str], rows: list[list[str]], header: str) -> None:
    """Removes the column ``header`` where no row has a value in it."""
    i = headers.index(header)
    if all(row[i] in ("-", "") for row in rows):
        del headers[i]
        for row in rows:
            del row[i]


def op_table(report: dict) -> Table:
    """The operators' table."""
    headers = ["op", "case", "mode", "provider", "median ms", "IQR ms", "GB/s", "% copy", "vs eager", "vs compile",
               "check"]
    rows = []
    for row in report["ops"]:
        head = [row["op"], f"{row['case']} {'x'.join(map(str, row['shape']))}", row["mode"], row["provider"]]
        if row["error"]:
            rows.append(head + ["failed", "", "", "", "", "", ""])
            continue
        mark, check = _trust_cells(row)
        rows.append(head + [_ms(row["median_ms"]) + mark, f"{_ms(row['q25_ms'])}-{_ms(row['q75_ms'])}",
                            f"{row['gbps']:.3g}", _percent(row["pct_of_copy"]) + ("!" if row.get("above_copy") else ""),
                            _ratio(row["speedup_vs_eager"]), _ratio(row["speedup_vs_compile"]), check])
    _drop_empty_column(headers, rows, "vs compile")
    _drop_empty_column(headers, rows, "check")
    meta, settings = report["meta"], report["meta"]["settings"]
    isa = (meta.get("cpu") or {}).get("isa") if meta["device"] == "cpu" else None
    title = (f"Operators: {settings['dtype']} on {meta['device_name']} ({meta['device']}"
             f"{', ' + isa + ' kernels' if isa else ''}), batch {settings['op_batch']}, "
             f"median of {settings['repeats']}{'+' if settings['min_time'] else ''} timed calls after "
             f"{settings['warmup']} warm-up{', quick' if settings.get('quick') else ''}")
    footnotes = [_copy_footnote(report["copy"]), "vs X: X's median / this median (above 1: faster than X)"]
    footnotes += _unreliable_footnote(report["ops"], meta.get("reliability"))
    if any(row.get("above_copy") for row in report["ops"]):
        footnotes.append("!: above a copy's bandwidth: the data stayed in a cache, or the timing is off")
    return title, headers, rows, footnotes


def _copy_footnote(copies: list[dict]) -> str:
    if not copies:
        return "no copy timed: no % copy"
    if "gbps_min" not in copies[0]:  # one copy per shape, timed on its own
        return "copy GB/s (the 100% of % copy): " + ", ".join(f"{c['case']} {c['gbps']:.3g}" for c in copies)
    ranges = ", ".join(f"{c['case']} {c['gbps']:.3g} ({c['gbps_min']:.3g}-{c['gbps_max']:.3g})"
                       for c in copies if c["gbps"] is not None)
    return f"copy GB/s, timed beside each row (the 100% of its % copy): median (range) per case: {ranges}"


def peer_table(report: dict) -> Table | None:
    """Ours against each peer (--peers) per case and mode: the medians, and
    in brackets the peer's median over ours; None without peer rows."""
    rows = [row for row in report["ops"] if not row["error"]]
    peer_names = [p for p in peers.PEERS if any(row["provider"] == p for row in rows)]
    ours = next((row["provider"] for row in rows if row["provider"] not in ("eager", "compile", *peers.PEERS)), None)
    if not peer_names or ours is None:
        return None
    medians = {(row["case"], row["mode"], row["provider"]): row for row in rows}
    headers = ["op", "case", "mode", f"ours ({ours}) ms", *(f"{peer} ms" for peer in peer_names)]
    table = []
    for row in rows:
        if row["provider"] != ours or not any((row["case"], row["mode"], p) in medians for p in peer_names):
            continue
        cells = [row["op"], f"{row['case']} {'x'.join(map(str, row['shape']))}", row["mode"],
                 _ms(row["median_ms"]) + _trust_cells(row)[0]]
        for peer in peer_names:
            other = medians.get((row["case"], row["mode"], peer))
            cells.append("-" if other is None else f"{_ms(other['median_ms'])}{_trust_cells(other)[0]} "
                                                   f"({other['median_ms'] / row['median_ms']:.2g}x)")
        table.append(cells)
    threads = report["meta"].get("threads")
    title = f"Peers: {report['meta']['settings']['dtype']}, batch {report['meta']['settings']['op_batch']}, " \
            f"{threads} threads each"
    footnotes = ["(Nx): the peer's median / ours (above 1: ours is faster); -: the peer has no such mode",
                 *_unreliable_footnote(rows, report["meta"].get("reliability"))]
    return title, headers, table, footnotes


def model_table(report: dict) -> Table:
    """The model's table."""
    headers = ["provider", "mode", "batch", "mean +- std ms", "median ms", "images/s", "peak memory", "check"]
    rows = []
    for row in report["model"]:
        head = [row["provider"], row["mode"], str(row["batch"])]
        if row["error"]:
            rows.append(head + ["failed", "", "", "", ""])
            continue
        mark, check = _trust_cells(row)
        memory = "n/a" if row["peak_memory_bytes"] is None else f"{row['peak_memory_bytes'] / 2**20:.0f} MiB"
        rows.append(head + [f"{_ms(row['mean_ms'])} +- {_ms(row['std_ms'])}", _ms(row["median_ms"]) + mark,
                            f"{row['images_per_s']:.1f}", memory, check])
    _drop_empty_column(headers, rows, "check")
    meta, settings = report["meta"], report["meta"]["settings"]
    batch = f"batch {settings['model_batch']}"
    if meta["device"] == "cpu" and settings["model_batch"] < 32:
        batch += " (the classic benchmark's is 32: smaller to finish in minutes on a CPU; set --batch-size)"
    size = benchmarks.MODEL_IMAGE_SIZE
    title = (f"AlexNet (paper variant, {size}x{size}, float32) on {meta['device_name']}: "
             f"{settings['model_steps']} steps after {settings['model_warmup']} warm-up")
    kind = next((row["peak_memory_kind"] for row in report["model"] if not row["error"]), "n/a")
    footnotes = [
        "eval() mode (dropout off) so that every provider computes the same function; "
        "forward_backward: cross-entropy loss, grads set to None each step",
        batch,
        f"peak memory: {kind} during one step, above the weights and batch allocated before it",
        "fast: alexnet(backend='auto'); reference: plain PyTorch layers; +compile: torch.compile, compiled in warm-up",
        *_unreliable_footnote(report["model"], meta.get("reliability")),
    ]
    return title, headers, rows, footnotes


def print_report(report: dict, markdown: bool = False) -> None:
    """The tables (rich, else plain text; Markdown with ``markdown``) and notes, on stdout."""
    tables = [op_table(report)] if report["ops"] or report["copy"] else []
    tables += [table for table in [peer_table(report)] if table is not None]
    tables += [model_table(report)] if report["model"] else []
    render = _markdown if markdown else _rich if importlib.util.find_spec("rich") else _plain_text
    machine = report["meta"].get("machine")
    if machine and machine["busy"]:
        print(f"Warning: the machine was busy before the run ({'; '.join(machine['reasons'])}): "
              "the timings may measure the scheduler, not the kernels.")
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
    from rich.table import Table as RichTable

    table = RichTable(title=title, caption="\n".join(footnotes), caption_justify="left")
    for i, header in enumerate(headers):
        table.add_column(header, justify="right" if all(_is_number(row[i]) for row in rows) else "left")
    previous = None
    for row in rows:
        if previous is not None and row[:2] != previous[:2]:
            table.add_section()
        unreliable = any(cell.endswith(" ?") for cell in row)
        table.add_row(*row, style="red" if "failed" in row else "yellow" if unreliable else None)
        previous = row
    Console(width=None if sys.stdout.isatty() else 200).print(table)  # files and logs: no wrapping at 80


def _plain_text(title, headers, rows, footnotes) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]

    def line(cells):
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    print("\n".join(["", title, line(headers), line(["-" * w for w in widths]), *map(line, rows), *footnotes]))


def _is_number(cell: str) -> bool:
    return cell[:1].isdigit() or cell in ("-", "", "failed")


def plot_title(report: dict) -> str:
    """What a plot shows: where, in which dtype, at which batch, --quick or not."""
    meta, settings = report["meta"], report["meta"]["settings"]
    title = f"alexnet-fast on {meta['device_name']}: ops {settings['dtype']}, batch {settings['op_batch']}"
    if report["model"]:
        title += f"; model float32, batch {settings['model_batch']}"
    return title + (" (quick: tiny sizes, few repeats)" if settings.get("quick") else "")


def _speedup_panels(report: dict) -> list[tuple[str, str, list[str], dict]]:
    """(y label, baseline, groups, {provider: {group: speed-up}}) per panel:
    one per op mode (groups: op cases, against eager) and one for the model
    (groups: modes, against the reference model); the baseline is 1x."""
    panels = []
    for mode in benchmarks.MODES:
        rows = [r for r in report["ops"] if r["mode"] == mode and r.get("speedup_vs_eager")]
        if rows:
            speedups: dict[str, dict] = defaultdict(dict)
            for r in rows:
                speedups[r["provider"]][r["case"]] = r["speedup_vs_eager"]
            panels.append((f"{mode}\nspeed-up vs eager", "eager", list(dict.fromkeys(r["case"] for r in rows)),
                           speedups))
    base = {r["mode"]: r["median_ms"] for r in report["model"] if r["provider"] == "reference" and not r["error"]}
    rows = [r for r in report["model"] if not r["error"] and r["mode"] in base]
    if rows:
        speedups = defaultdict(dict)
        for r in rows:
            speedups[r["provider"]][f"model {r['mode']}"] = base[r["mode"]] / r["median_ms"]
        panels.append(("model step\nspeed-up vs reference", "reference",
                       [f"model {mode}" for mode in base], speedups))
    return panels


def speedup_figure(report: dict):
    """A matplotlib Figure: per panel, each provider's speed-up against the
    baseline (eager, or the reference model) as bars from the bottom of a
    log axis, the baseline's own bar at exactly 1x, and a dashed line at 1x."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
    from matplotlib.ticker import FuncFormatter

    panels = _speedup_panels(report)
    widest = max((len(groups) for _, _, groups, _ in panels), default=1)
    figure = Figure(figsize=(max(6.0, 1.4 * widest + 2), 3 * max(1, len(panels))), layout="constrained")
    axes = figure.subplots(max(1, len(panels)), 1, squeeze=False)[:, 0]
    for ax, (label, baseline, groups, speedups) in zip(axes, panels):
        providers = sorted(speedups, key=lambda provider: provider != baseline)  # the baseline first
        values = [v for by_group in speedups.values() for v in by_group.values()]
        floor = min(0.5, min(values) / 1.5)  # bars start here, so that every bar, 1x too, has a height
        width = 0.8 / len(providers)
        for i, provider in enumerate(providers):
            points = [(g, speedups[provider][group]) for g, group in enumerate(groups) if group in speedups[provider]]
            bars = ax.bar([g + (i - (len(providers) - 1) / 2) * width for g, _ in points],
                          [v - floor for _, v in points], width, bottom=floor, label=provider,
                          color="0.7" if provider == baseline else None)
            ax.bar_label(bars, labels=[f"{v:.2g}x" for _, v in points], fontsize=7)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.set_ylim(bottom=floor)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_ylabel(label)
        ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right")
        ax.legend(title="provider", fontsize=7)
    figure.suptitle(plot_title(report))
    return figure


def plot_speedups(report: dict, path: Path) -> None:
    """The speed-up chart (speedup_figure) as a PNG."""
    speedup_figure(report).savefig(path, dpi=100)


# --- pytest-benchmark ----------------------------------------------------------
def reports_from_pytest_benchmark(data: dict) -> list[dict]:
    """The reports (one per dtype) of a pytest-benchmark JSON of benches/:
    its op, copy and model benchmarks as the rows of `alexnet-fast bench`."""
    parts: dict[str, dict[str, list]] = defaultdict(lambda: dict(ops=[], copy=[], model=[]))
    for bench in data["benchmarks"]:
        extra, stats = bench["extra_info"], bench["stats"]
        dtype = extra["dtype"].removeprefix("torch.")
        timing = dict(median_ms=stats["median"] * 1e3, q25_ms=stats["q1"] * 1e3, q75_ms=stats["q3"] * 1e3,
                      mean_ms=stats["mean"] * 1e3, std_ms=stats["stddev"] * 1e3, repeats=stats["rounds"], error=None)
        if extra["provider"] == "copy":
            gbps = extra["bytes"] / stats["median"] / 1e9
            parts[dtype]["copy"].append(dict(case=extra["case"], shape=extra["shape"], dtype=dtype,
                                             median_ms=timing["median_ms"], gbps=gbps))
        elif extra["op"] == "alexnet-paper":
            parts[dtype]["model"].append(dict(timing, provider=extra["provider"], mode=extra["mode"],
                                              batch=extra["batch"], images_per_s=extra["batch"] / stats["mean"],
                                              peak_memory_bytes=None, peak_memory_kind="n/a"))
        else:
            parts[dtype]["ops"].append(dict(timing, op=extra["op"], case=extra["case"], shape=extra["shape"],
                                            dtype=dtype, mode=extra["mode"], provider=extra["provider"],
                                            bytes=extra["bytes"], gbps=extra["bytes"] / stats["median"] / 1e9))
    device = next((b["extra_info"].get("device", "cpu") for b in data["benchmarks"]), "cpu")
    return [_pytest_report(data, device, dtype, **rows) for dtype, rows in parts.items()]


def _pytest_report(data: dict, device: str, dtype: str, ops: list, copy: list, model: list) -> dict:
    info = data["machine_info"]
    copy_gbps = {tuple(row["shape"]): row["gbps"] for row in copy}
    case_order = {case.name: i for i, case in enumerate(benchmarks.op_cases(1))}
    groups: dict[tuple, list[dict]] = defaultdict(list)  # the rows compared with each other, in the CLI's order
    for row in ops:
        row["copy_gbps"] = copy_gbps.get(tuple(row["shape"]))
        row["pct_of_copy"] = 100 * row["gbps"] / row["copy_gbps"] if row["copy_gbps"] else None
        order = case_order.get(row["case"], len(case_order))
        groups[order, row["case"], benchmarks.MODES.index(row["mode"])].append(row)
    ops = [row for key in sorted(groups) for row in with_speedups(groups[key])]
    model.sort(key=lambda row: (row["provider"], benchmarks.MODEL_MODES.index(row["mode"])))

    def rounds(rows):
        return "/".join(map(str, sorted({row["repeats"] for row in rows}))) or "0"

    # conftest.py's run_benchmark: two untimed calls, then one warm-up round
    settings = dict(dtype=dtype, op_batch=info.get("batch"), repeats=rounds(ops), min_time=0, warmup="2+1",
                    model_batch=model[0]["batch"] if model else None, model_steps=rounds(model), model_warmup="2+1")
    note = (f"pytest-benchmark run of {data.get('datetime')}: torch {info.get('torch')}, triton {info.get('triton')}, "
            f"{info.get('threads')} threads")
    cpu = info.get("cpu") or {}
    meta = dict(device=device, device_name=cpu.get("name") or info.get("device") or device, cpu=cpu,
                threads=info.get("threads"), settings=settings, notes=[note])
    return dict(meta=meta, ops=ops, copy=copy, model=model)
