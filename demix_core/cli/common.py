"""What every command module of the CLI shares: the parser class, argument types, quiet libraries."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error: ...`` line (exit status 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        """Print ``error: <message>; see `<prog> --help``` on stderr and exit with status 2."""
        text = " ".join(message.split())
        self.exit(2, f"error: {text}; see `{self.prog} --help`\n")


class LazyNames:
    """A registry's names as argparse ``choices``, read only when a command checks or shows them: building the
    parser (``demix --help``) imports no registry."""

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        self._names: tuple[str, ...] | None = None

    def _all(self) -> tuple[str, ...]:
        if self._names is None:
            self._names = tuple(self._load())
        return self._names

    def __contains__(self, value: object) -> bool:
        return value in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]


class LazyText:
    """Help text made when a command's help is shown (``%(name)s`` in an argument's help)."""

    def __init__(self, make: Callable[[], str]) -> None:
        self._make = make

    def __str__(self) -> str:
        return self._make()


def lazy_option(p: argparse.ArgumentParser, flag: str, *, help: str, metavar: str,
                names: Callable[[], Sequence[str]] | None = None, default: str | None = None,
                texts: dict[str, Callable[[], str]] | None = None) -> argparse.Action:
    """Add ``flag`` whose choices (``names``) and help parts (``texts``, shown as ``%(key)s`` in ``help``) come
    from a registry only when used: the registry is imported by the command that needs it, not by ``--help``."""
    action = p.add_argument(flag, choices=LazyNames(names) if names else None, metavar=metavar, help=help,
                            default=default)
    for key, make in (texts or {}).items():
        setattr(action, key, LazyText(make))
    return action


def _at_least(text: str, low: int) -> int:
    """``text`` as an integer of at least ``low``, else an argparse type error saying so."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: give {low} or more")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1 (trial counts, worker counts)."""
    return _at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of at least 0 (seeds)."""
    return _at_least(text, 0)


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
