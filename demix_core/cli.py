"""The ``demix`` command line. Each command group lives in its own ``cli_*`` module.

Every :class:`DemixError` becomes one line on stderr (``error: ...``) and exit status 2; nothing else
is caught, so a traceback always means a bug.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from demix_core.errors import DemixError

# Modules exposing ``register(subparsers)``; each adds its commands with ``set_defaults(func=...)``.
COMMAND_MODULES = (
    "demix_core.cli_merge",
    "demix_core.cli_train",
    "demix_core.cli_eval",
    "demix_core.cli_search",
)


def quiet_libraries() -> None:
    """Offline and quiet: no hub access, no per-shard progress bars from transformers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # transformers is a hard dependency; keep the CLI usable for --help anyway
        pass


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error: ...`` line (exit status 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        """Print ``error: <message>; see `<prog> --help``` on stderr and exit with status 2."""
        text = " ".join(message.split())
        self.exit(2, f"error: {text}; see `{self.prog} --help`\n")


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1 (trial counts, worker counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: give 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = Parser(
        prog="demix", description="DeMix Studio: choose pre-training data mixtures by merging models."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
