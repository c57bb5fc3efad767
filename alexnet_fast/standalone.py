"""One `alexnet-fast` subcommand run on its own: ``python -m alexnet_fast.export ...``.

A subcommand module provides ``add_parser(subparsers)`` and ``run(args) -> int``."""
from __future__ import annotations

import argparse
import sys


def run_subcommand(name: str, add_parser, run, argv: list[str] | None = None) -> int:
    """Parses ``argv`` (default: sys.argv[1:]) as `alexnet-fast NAME ARGV` and runs it; the exit status."""
    parser = argparse.ArgumentParser(prog="alexnet-fast")
    add_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args([name, *argv])
    except SystemExit as exit_:  # argparse has printed its message
        return exit_.code if isinstance(exit_.code, int) else 2
    return run(args)
