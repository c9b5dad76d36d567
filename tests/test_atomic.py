"""Atomic outputs under faults: a SIGKILLed merge, a full disk, replacing a file, stale leftovers."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demix_core.cli import main
from demix_core.errors import CheckpointError
from demix_core.io.atomic import PARTIAL, atomic_dir, atomic_write_text, clean_stale, is_partial
from demix_core.io.checkpoints import open_checkpoint


def merge_cmd(family: dict[str, Path], out: Path, *extra: str) -> list[str]:
    comps = ",".join(str(family[n]) for n in ("alpha", "beta", "gamma"))
    return [sys.executable, "-m", "demix_core", "merge", "--components", comps, "--weights", "0.5,0.3,0.2",
            "--device", "cpu", "--out", str(out), *extra]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}


def partials(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("moment", ["early", "complete"])
def test_sigkilled_merge_leaves_nothing_loadable_and_the_next_merge_succeeds(
    tmp_path: Path, tiny_family: dict[str, Path], moment: str
) -> None:
    parent = tmp_path / "exports"
    parent.mkdir()
    out = parent / "m"
    extra: list[str] = []
    if moment == "complete":  # an earlier output is being replaced with --force when the kill lands
        assert main(merge_cmd(tiny_family, out)[3:]) == 0
        extra = ["--force"]
        previous = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.Popen(merge_cmd(tiny_family, out, *extra), env=env(DEMIX_ATOMIC_PAUSE="60"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # early: as soon as the temporary folder exists; complete: all written
        found = partials(parent)
        if found and (moment == "early" or (found[0] / "mergekit.yaml").exists()):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = partials(parent)
    assert left, "the kill came after the merge finished"
    for p in left:  # nothing left behind opens as a checkpoint, through the API or `demix inspect`
        assert is_partial(p)
        with pytest.raises(CheckpointError, match="unfinished output of an interrupted write"):
            open_checkpoint(p)
        assert main(["inspect", str(p)]) == 2
    if moment == "complete":
        assert {p.name: p.read_bytes() for p in out.iterdir()} == previous  # the old output is untouched
    else:
        assert not out.exists()

    again = subprocess.run(merge_cmd(tiny_family, out, "--force"), env=env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in parent.iterdir()] == ["m"]  # the stale temporary folder was removed
    assert open_checkpoint(out).num_params > 0


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))


def test_disk_full_during_a_merge_is_one_error_line_and_leaves_nothing(
    tmp_path: Path, tiny_family: dict[str, Path]
) -> None:
    out = tmp_path / "m"
    proc = subprocess.run(merge_cmd(tiny_family, out), env=env(), capture_output=True, text=True,
                          preexec_fn=_limit_file_size, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "cannot write" in proc.stderr and "disk space" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_force_replaces_a_file_without_leftovers(tmp_path: Path, tiny_family: dict[str, Path], capsys) -> None:
    out = tmp_path / "m"
    out.write_text("an old file")
    argv = merge_cmd(tiny_family, out, "--force")[3:]
    assert main(argv) == 0, capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["m"] and (out / "model.safetensors").exists()
    atomic_write_text(tmp_path / "r.csv", "a\n")
    atomic_write_text(tmp_path / "r.csv", "b\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "r.csv"] and (tmp_path / "r.csv").read_text() == "b\n"


def test_stale_leftovers_are_removed_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = os.uname().nodename
    stale = tmp_path / f".out{PARTIAL}abc123-{dead.pid}@{host}"
    live = tmp_path / f".out{PARTIAL}def456-{os.getpid()}@{host}"
    legacy = tmp_path / ".out.tmp-xyz"
    other = tmp_path / f".other{PARTIAL}abc123-{dead.pid}@{host}"
    for p in (stale, live, legacy, other):
        p.mkdir()
        (p / "config.json").write_text("{}")
    assert sorted(p.name for p in clean_stale(tmp_path / "out")) == sorted([stale.name, legacy.name])
    assert live.exists() and other.exists()
    with atomic_dir(tmp_path / "other") as tmp:  # writing "other" cleans its own stale leftovers
        (tmp / "x").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "other"])
