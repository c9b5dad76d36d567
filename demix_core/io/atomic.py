"""Atomic writes: build in a temporary sibling, then rename, so a failure leaves no partial output.

Every output of DeMix Studio (merged models, trained checkpoints, exports, reports, manifests) is written
through :func:`atomic_dir` or :func:`atomic_write_text`. The temporary sibling is called
``.NAME.demix-partial-RANDOM-PID@HOST``: :func:`is_partial` recognises it (``open_checkpoint`` refuses to
open one), and the next write of the same output removes the ones whose process is gone (a SIGKILL, a
power cut). A replaced output is parked as ``.NAME.demix-replaced-...`` for the instant of the swap.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from demix_core.errors import OutputError, OutputExistsError

PARTIAL = ".demix-partial-"
REPLACED = ".demix-replaced-"
# Names written by versions before the partial marker (``.NAME.tmp-XXXX``, ``.NAME.old-PID``).
LEGACY = (".tmp-", ".old-")
# Failure-injection hook for tests: seconds to sleep between writing the temporary folder and the swap.
PAUSE_ENV = "DEMIX_ATOMIC_PAUSE"
# Leftovers of another host cannot be checked for a live owner; they are removed once this old.
FOREIGN_STALE_SECONDS = 24 * 3600


def is_partial(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (or a folder above it) is an unfinished or parked write of :mod:`demix_core.io.atomic`."""
    for part in Path(path).absolute().parts:
        if part.startswith(".") and (PARTIAL in part or REPLACED in part or any(m in part for m in LEGACY)):
            return True
    return False


def _owner() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _stale(entry: Path, marker: str) -> bool:
    """Whether a leftover's writer is gone: its process is dead here, or it is old and from another host."""
    if marker in LEGACY:
        return True  # no current code writes these names
    _, _, owner = entry.name.rpartition(marker)[2].partition("-")
    pid, _, host = owner.partition("@")
    if host == socket.gethostname() and pid.isdigit():
        return not _alive(int(pid))
    try:
        return time.time() - entry.lstat().st_mtime > FOREIGN_STALE_SECONDS
    except OSError:
        return False


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            entry.unlink()


def clean_stale(out: str | os.PathLike[str]) -> list[Path]:
    """Remove the leftovers of interrupted writes of ``out`` whose writer is gone; return them.

    A parked old output (``.NAME.demix-replaced-...``) whose swap was cut short is put back when ``out``
    itself is missing, so an interrupted ``--force`` never loses the previous output.
    """
    out = Path(out)
    if not out.parent.is_dir():
        return []
    removed = []
    for marker in (REPLACED, PARTIAL, *LEGACY):
        for name in sorted(glob.glob(glob.escape(f".{out.name}{marker}") + "*", root_dir=out.parent)):
            entry = out.parent / name
            if not _stale(entry, marker):
                continue
            if marker == REPLACED and not out.exists():
                with contextlib.suppress(OSError):
                    entry.rename(out)
                    continue
            _remove(entry)
            removed.append(entry)
    return removed


def check_output(path: str | os.PathLike[str], *, force: bool) -> Path:
    """Refuse an existing output unless ``force``; return the path.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false.
    """
    out = Path(path)
    if (out.exists() or out.is_symlink()) and not force:
        raise OutputExistsError(f"output {out} already exists; pass --force to replace it")
    return out


def check_file_output(path: str | os.PathLike[str], *, force: bool) -> Path:
    """Check a file output before any work: not a folder, not existing unless ``force``; return the path.

    Raises:
        OutputError: ``path`` is a folder.
        OutputExistsError: ``path`` exists and ``force`` is false.
    """
    out = Path(path)
    if out.is_dir():
        raise OutputError(f"output {out} is a folder; give a file path such as {out / 'trials.csv'}")
    return check_output(out, force=force)


def _fail(out: Path, exc: BaseException) -> OutputError:
    text = str(exc).strip()
    reason = getattr(exc, "strerror", None) or (text.splitlines()[0] if text else type(exc).__name__)
    return OutputError(f"cannot write {out} ({reason}); nothing was written there: check "
                       "free disk space, permissions and that the folder exists, then retry")


def _write_errors() -> tuple[type[BaseException], ...]:
    """OSError, and the error safetensors raises for a failed write (disk full comes as one)."""
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - safetensors is a dependency
        return (OSError,)
    return (OSError, SafetensorError)


def _swap(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out``, replacing what is there (parked under a recognisable name meanwhile)."""
    if not (out.exists() or out.is_symlink()):
        tmp.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}{REPLACED}", suffix=f"-{_owner()}", dir=out.parent))
    old.rmdir()
    out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        old.rename(out)
        raise
    _remove(old)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``path`` only if the block succeeds.

    Stale leftovers of earlier interrupted writes of ``path`` are removed first.

    Args:
        path: The final folder.
        force: Replace ``path`` if it exists.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false (checked before any work).
        OutputError: The folder cannot be written (disk full, permissions...); ``path`` is left as it was.
    """
    out = check_output(path, force=force)
    errors = _write_errors()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(out)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{PARTIAL}", suffix=f"-{_owner()}", dir=out.parent))
    except errors as exc:
        raise _fail(out, exc) from None
    try:
        yield tmp
        pause = float(os.environ.get(PAUSE_ENV, "0") or 0)
        if pause:  # failure injection for tests: a kill that lands after every file is written
            time.sleep(pause)
        _swap(tmp, out)
    except errors as exc:
        raise _fail(out, exc) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, force: bool = True) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename.

    Args:
        path: The file to write.
        text: Its content (UTF-8).
        force: Replace an existing file (the default, for files the program owns such as manifests).

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false.
        OutputError: ``path`` is a folder, or cannot be written (disk full, permissions...).
    """
    out = check_file_output(path, force=force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(out)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}{PARTIAL}", suffix=f"-{_owner()}", dir=out.parent)
    except OSError as exc:
        raise _fail(out, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, out)
    except OSError as exc:
        raise _fail(out, exc) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def refuse_inputs(out: str | os.PathLike[str], inputs: Mapping[str, str | os.PathLike[str]]) -> None:
    """Refuse an output that is one of the inputs, or a folder holding one (``--force`` included).

    Args:
        out: The output path.
        inputs: What each input is (``"component 'alpha'"``) -> its path.

    Raises:
        OutputError: Writing ``out`` would replace or delete an input.
    """
    target = _real(out)
    for what, path in inputs.items():
        src = _real(path)
        if src == target or target in src.parents:
            relation = "is" if src == target else "holds"
            raise OutputError(f"output {out} {relation} the {what} ({path}); an input is never overwritten, "
                              "not even with --force: choose another output path")


def _real(path: str | os.PathLike[str]) -> Path:
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare it as written
        return Path(os.path.abspath(path))
