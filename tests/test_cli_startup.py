"""`demix --help` stays light: it imports none of the heavy libraries and no registry or search module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported(*args: str) -> set[str]:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "demix_core", *args], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return {line.rpartition("|")[2].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}


def test_help_imports_no_heavy_library_and_no_registry() -> None:
    mods = _imported("--help")
    assert "demix_core.cli" in mods  # the measurement saw the CLI
    heavy = {"torch", "optuna", "numpy", "transformers", "lm_eval", "pandas", "yaml"} & mods
    assert not heavy, f"demix --help imports {sorted(heavy)}"
    ours = sorted(m for m in mods if m.startswith(("demix_core.proxy", "demix_core.search", "demix_core.engine")))
    assert not ours, f"demix --help imports {ours}: read registries inside the command that needs them"


def test_a_command_help_still_lists_the_registered_names() -> None:
    out = subprocess.run([sys.executable, "-m", "demix_core", "study", "create", "--help"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    from demix_core.proxy import kind_names
    from demix_core.search import samplers

    text = " ".join(out.split())
    for name in [*samplers.names(), *kind_names()]:
        assert f"{name} (" in text, f"{name} missing from `demix study create --help`"
