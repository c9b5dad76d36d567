"""The DemixError hierarchy: every failure a person can fix says what, where and how.

Each message is one line that names the bad thing, what was expected and the fix. The CLI prints
``error: <message>`` and exits with status 2 for any :class:`DemixError`; nothing else is caught there,
so a traceback always means a bug in DeMix Studio, never bad input.
"""

from __future__ import annotations


class DemixError(Exception):
    """Base class of every error a user can act on."""

    def __init__(self, message: str) -> None:
        # One line: a multi-line message would read like a traceback in the CLI and the dashboard.
        super().__init__(" ".join(str(message).split()))


class ConfigError(DemixError):
    """A manifest, recipe or option is malformed or inconsistent."""


class WorkspaceError(DemixError):
    """A folder is not a DeMix workspace, or a workspace entry is broken."""


class CheckpointError(DemixError):
    """A checkpoint folder is missing, unsafe (pickle) or unreadable (truncated, corrupt)."""


class CompatibilityError(CheckpointError):
    """Checkpoints cannot be merged: architecture, parameter names, shapes, dtypes or tokenizer differ."""


class MixtureError(DemixError):
    """Mixture weights are negative, non-finite, sum to zero, have the wrong count or unknown names."""


class BudgetError(MixtureError):
    """A token budget no mixture can meet, or a mixture outside the budget's bounds."""


class MergeError(DemixError):
    """A merge method is unknown, or its parameters are invalid."""


class OutputError(DemixError):
    """An output cannot be written: a folder in the way, disk full, no permission, or it is an input."""


class OutputExistsError(OutputError):
    """An output path exists and ``force`` was not given."""


class DataError(DemixError):
    """A data file is empty, unreadable, of an unknown format, or too small for the token budget."""


class EvaluationError(DemixError):
    """A task is unknown, its data is missing, or a model and tokenizer do not match."""


class StudyError(DemixError):
    """A study or storage is unknown or unreachable, or has too few trials for what was asked."""


class UnknownStudyError(StudyError):
    """No study of that name in the storage (or no storage yet); the message ends asking to create it first."""


def near_matches(name: str, known: list[str] | tuple[str, ...], n: int = 5) -> str:
    """Format the closest known names to ``name`` for an error message.

    Args:
        name: The unknown name a user gave.
        known: Every valid name.
        n: How many close matches to list at most.

    Returns:
        ``"did you mean: a, b?"`` when close matches exist, else ``"known: a, b, c"``.
    """
    import difflib

    close = difflib.get_close_matches(name, list(known), n=n, cutoff=0.5)
    if close:
        return "did you mean: " + ", ".join(close) + "?"
    shown = sorted(known)
    more = f" (+{len(shown) - 20} more)" if len(shown) > 20 else ""
    return "known: " + ", ".join(shown[:20]) + more
