"""The one ``name=value,...`` parser and formatter: mixtures, merge-method parameters and domain weightings.

Every place that reads ``key=number`` pairs from a person (the CLI's ``--weights``, ``--mixture``,
``--param`` and ``--weighting``, the dashboard's text fields) goes through :func:`parse_pairs`, so they
accept the same syntax and fail with the same kind of message. The error class and the words naming
what is parsed come from the caller; no message names a CLI flag. Every place that writes a mixture (a label,
a link, a command line, a name's hash) goes through :func:`format_pairs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from demix_core.errors import ConfigError, DemixError

T = TypeVar("T")


def split_items(text: str) -> list[str]:
    """``" a=1, b=2 "`` -> ``["a=1", "b=2"]``: comma-separated entries, stripped (empty ones kept)."""
    return [part.strip() for part in text.split(",")]


def parse_pairs(items: str | Iterable[str], *, what: str, example: str,
                error: type[DemixError] = ConfigError) -> dict[str, float]:
    """Parse ``name=number`` entries into a mapping, in the order given.

    Args:
        items: ``"a=0.5,b=0.3"``, or entries already split (e.g. one per repeated option).
        what: What the entries are, for messages (``"mixture"``, ``"method parameter"``).
        example: A valid entry for the message, e.g. ``"density=0.5"``.
        error: The :class:`DemixError` subclass to raise.

    Returns:
        Name -> value.

    Raises:
        DemixError: (of class ``error``) An empty entry, an entry without ``=`` or a name, a name given
            twice, or a value that is not a number.
    """
    return parse_named(items, what=what, example=example, value=float, error=error)


def parse_named(items: str | Iterable[str], *, what: str, example: str, value: Callable[[str], T],
                expected: str = "a number", error: type[DemixError] = ConfigError,
                shown: str | None = None) -> dict[str, T]:
    """Parse ``name=value`` entries into a mapping, in the order given, each value read by ``value``.

    :func:`parse_pairs` is this with numbers; ``demix import-runs --objectives family=m1+m2`` reads groups.

    Args:
        items: ``"a=0.5,b=0.3"``, or entries already split.
        what: What the entries are, for messages.
        example: A valid entry for the message.
        value: Reads one value's text; a ``ValueError`` means the text is not ``expected``.
        expected: What a value must be, for the message (``"a number"``).
        error: The :class:`DemixError` subclass to raise.
        shown: The text as the person wrote it, for messages (default: ``items`` joined by commas).

    Raises:
        DemixError: (of class ``error``) An empty entry, an entry without ``=`` or a name, a name given
            twice, or a value that ``value`` rejects.
    """
    source = shown if shown is not None else items if isinstance(items, str) else ",".join(items)
    parts = split_items(items) if isinstance(items, str) else [str(p).strip() for p in items]
    if "" in parts:
        position = parts.index("") + 1
        raise error(f"{what} {source!r} has an empty entry at position {position}; remove the extra comma")
    out: dict[str, T] = {}
    for part in parts:
        key, sep, text = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise error(f"{what} entry {part!r} is not name=value; write it as {example}")
        if key in out:
            raise error(f"{key!r} appears twice in {what} {source!r}; give each name once")
        try:
            out[key] = value(text)
        except ValueError:
            raise error(f"{what} value {text.strip()!r} for {key!r} is not {expected}; write it as {example}") from None
    return out


def format_pairs(values: Mapping[str, float], *, digits: int | None = None, sep: str = ",",
                 nonzero: bool = False) -> str:
    """``a=0.5,b=0.25``: name=number pairs as text, in the order given (``sep=","`` reads back with
    :func:`parse_pairs`).

    Args:
        values: Name -> number (a mixture's weights).
        digits: Fixed decimals (``0.5000`` at 4); None: up to 6 significant digits (``0.5``, ``1e-07``).
        sep: Between the pairs: ``","`` for text that parses back, ``" "`` for a label, ``", "`` in a sentence.
        nonzero: Leave out the pairs whose number prints as zero (at ``digits``; None: those equal to 0).
    """
    def shown(v: float) -> bool:
        return not nonzero or (round(v, digits) if digits is not None else v) > 0

    spec = ".6g" if digits is None else f".{digits}f"
    return sep.join(f"{n}={float(v):{spec}}" for n, v in values.items() if shown(float(v)))


def parse_weighting(text: str) -> str | dict[str, float]:
    """How a recommendation weighs the domains: ``composite``, ``average`` or ``domain=weight,...``.

    Raises:
        ConfigError: Neither a known name nor ``domain=weight`` pairs.
    """
    if text in ("composite", "average"):
        return text
    return parse_pairs(text, what="weighting", example="composite, average or general=1,math=2")
