"""The `alexnet-fast` command line: a registry of subcommands.

Each subcommand is a module of this package with ``NAME``,
``add_parser(subparsers)`` (adds its argparse parser) and ``run(args) -> int``
(the exit status). Adding one is its module plus one line in SUBCOMMANDS.
"""
from __future__ import annotations

import argparse
import shlex
import sys

from alexnet_fast import evaluate, export
from alexnet_fast.cli import bench, train

SUBCOMMANDS = {module.NAME: module for module in (bench, train, export, evaluate)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alexnet-fast", description="alexnet-fast tools")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS.values():
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `alexnet-fast` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its message
        return exit_.code if isinstance(exit_.code, int) else 2
    args.command_line = shlex.join(["alexnet-fast", *argv])
    return SUBCOMMANDS[args.command].run(args)
