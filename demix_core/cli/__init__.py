"""The ``demix`` command line: one module per command group, each thin (parse, call the library, print).

``merge`` (merge, inspect), ``workspace`` (demo), ``tour`` (the demo to a verdict), ``budget`` (budget,
export-mixture), ``train`` (train, train-base), ``eval`` (eval, data), ``search`` (study, worker, recommend),
``runs`` (import-runs) and ``validate``. Every :class:`DemixError` becomes one line on stderr (``error: ...``)
and exit status 2; nothing else is caught, so a traceback always means a bug.

Imports: the command modules import the light parts of the core (errors, names, atomic writes, the
``name=value`` parser, the worker launcher) at the top; what loads numpy (the workspace, mixtures:
~0.4 s), torch, Optuna or lm-eval (seconds each) is imported inside the command that needs it, so
``demix --help`` and argument errors answer in ~0.2 s.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from demix_core.cli import budget, merge, recommend, runs, search, tour, train, validate, workspace
from demix_core.cli import eval as eval_commands
from demix_core.cli.common import Parser, positive_int, quiet_libraries
from demix_core.errors import DemixError

__all__ = ["build_parser", "main", "positive_int", "quiet_libraries"]

# Each exposes ``register(subparsers)``, adding its commands with ``set_defaults(func=...)``; in help order.
COMMAND_MODULES = (merge, workspace, tour, budget, train, eval_commands, search, recommend, runs, validate)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = Parser(
        prog="demix", description="DeMix Studio: choose pre-training data mixtures by merging models."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    quiet_libraries()
    try:
        return int(args.func(args) or 0)
    except DemixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (``demix ... | head``): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
