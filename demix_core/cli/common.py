"""What every command module of the CLI shares: the parser class, argument types, quiet libraries."""

from __future__ import annotations

import argparse
import os
from typing import NoReturn


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


def quiet_libraries() -> None:
    """Offline and quiet: no hub access, no per-shard progress bars from transformers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # transformers is a hard dependency, imported here (not at the top) so that `--help` and argument
    # errors answer without loading it (~2 s).
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
