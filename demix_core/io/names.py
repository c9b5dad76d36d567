"""Study names: checked once where they are made, made safe wherever they are shown or become a file.

A study name becomes part of file names (reports), URLs (``?study=``) and database rows, so it is held
to a small alphabet: letters, digits, ``-``, ``_`` and ``.``, at most 64 characters, not starting with a
dot. Names that already sit in a storage (made by another tool) are never trusted: :func:`safe_filename`
turns any string into one plain file name, and views escape them before showing them.
"""

from __future__ import annotations

import hashlib
import re

from demix_core.errors import StudyError

MAX_LENGTH = 64
_ALLOWED = re.compile(r"[A-Za-z0-9_.\-]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


class StudyNameError(StudyError):
    """A study name has characters outside letters, digits and ``-_.``, is empty or is too long."""


def _shown(name: str, limit: int = 40) -> str:
    """A short, printable rendering of a bad name for a one-line message."""
    text = ascii(name)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def check_study_name(name: object) -> str:
    """Return ``name`` if it is a valid study name, else raise.

    Args:
        name: The name a user gave (CLI flag, text field, API argument).

    Returns:
        The same name, unchanged.

    Raises:
        StudyNameError: Empty, longer than 64 characters, starting with a dot, or holding anything but
            letters, digits, ``-``, ``_`` and ``.``.
    """
    if not isinstance(name, str) or not name:
        raise StudyNameError("study name is empty; use letters, digits, '-', '_' or '.' (e.g. study-1)")
    if len(name) > MAX_LENGTH:
        raise StudyNameError(f"study name {_shown(name)} is {len(name)} characters long; use at most {MAX_LENGTH}")
    if not _ALLOWED.fullmatch(name):
        bad = "".join(dict.fromkeys(c for c in name if not _ALLOWED.fullmatch(c)))
        raise StudyNameError(f"study name {_shown(name)} contains {ascii(bad)}; use only letters, digits, "
                             "'-', '_' and '.' (e.g. study-1)")
    if name.startswith("."):
        raise StudyNameError(f"study name {_shown(name)} starts with '.'; start it with a letter or digit")
    return name


def is_valid_study_name(name: object) -> bool:
    """Whether :func:`check_study_name` accepts ``name``."""
    try:
        check_study_name(name)
    except StudyNameError:
        return False
    return True


def safe_filename(name: str, suffix: str = "") -> str:
    """A plain file name (no folder, no leading dot) derived from any string, e.g. a stored study name.

    A valid study name maps to itself; anything else has its unsafe runs replaced by ``_`` and gets a
    short hash of the original, so two different names never share a file.

    Args:
        name: Any text.
        suffix: Appended as is (e.g. ``".html"``).

    Returns:
        ``[A-Za-z0-9_.-]`` characters only, at most ``MAX_LENGTH`` of them before ``suffix``.
    """
    if is_valid_study_name(name):
        return name + suffix
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    stem = _UNSAFE.sub("_", name).strip("._")[: MAX_LENGTH - len(digest) - 1]
    return f"{stem or 'study'}-{digest}{suffix}"


def seeded_name(name: str, seed: int) -> str:
    """A model's name at training seed ``seed``: ``name`` at seed 0, else ``<name>-s<seed>`` (repeats never
    collide)."""
    return f"{name}-s{seed}" if seed else name
