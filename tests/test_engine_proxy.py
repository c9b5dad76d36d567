"""The engine's proxy kinds: ``demix eval --proxy ensemble`` scores from the cached ensemble scorer, a one-hot
mixture is that component, and an unknown kind is one error line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from demix_core.engine import Engine
from demix_core.errors import ConfigError
from demix_core.workspace.manifest import load_workspace

ROOT = Path(__file__).resolve().parents[1]


def _demix(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "demix_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=_env())


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def test_cli_ensemble_scores_are_the_ensemble_scorers(tiny_workspace: Path, one_torch_thread) -> None:
    from demix_core.evaluate.ensemble_scorer import workspace_scorer

    proc = _demix("eval", "--workspace", str(tiny_workspace), "--suite", "quick", "--device", "cpu",
                  "--mixture", "alpha=0.2,beta=0.3,gamma=0.5", "--proxy", "ensemble", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["proxy"] == "ensemble"
    assert any((tiny_workspace / "cache" / "ensemble").rglob("*")), "the CLI keeps the log-probs on disk"
    want = workspace_scorer(load_workspace(tiny_workspace), suite="quick", device="cpu", cache=False).score(
        [0.2, 0.3, 0.5])
    assert set(out["benchmarks"]) == set(want.benchmarks)
    for key, value in want.benchmarks.items():
        assert out["benchmarks"][key] == pytest.approx(value, abs=1e-9), key
    for key, value in want.domains.items():
        assert out["domains"][key] == pytest.approx(value, abs=1e-9), key
    merged = json.loads(_demix("eval", "--workspace", str(tiny_workspace), "--suite", "quick", "--device", "cpu",
                               "--mixture", "alpha=0.2,beta=0.3,gamma=0.5", "--json").stdout)
    assert merged["proxy"] == "merge"
    assert merged["benchmarks"] != out["benchmarks"], "the two proxy kinds are different models"


def test_one_hot_ensemble_is_the_component(tiny_workspace: Path, tiny_family: dict[str, Path],
                                           one_torch_thread) -> None:
    engine = Engine(load_workspace(tiny_workspace), suite="quick", device="cpu", proxy="ensemble")
    for i, name in enumerate(("alpha", "beta", "gamma")):
        ev = engine.evaluate([1.0 if j == i else 0.0 for j in range(3)])
        assert (ev.proxy, ev.method, ev.merge_seconds) == ("ensemble", "ensemble", 0.0)
        own = engine.score_checkpoint(tiny_family[name])
        assert set(ev.scores.benchmarks) == set(own.benchmarks)
        for key, value in own.benchmarks.items():
            assert ev.scores.benchmarks[key] == pytest.approx(value, abs=1e-6), (name, key)
    again = engine.evaluate([1.0, 0.0, 0.0])
    assert again.cached and again.proxy == "ensemble"
    merge = Engine(load_workspace(tiny_workspace), suite="quick", device="cpu")
    assert merge.evaluate([0.5, 0.5, 0.0]).proxy == "merge"


def test_unknown_proxy_kind_is_one_error_line(tiny_workspace: Path) -> None:
    with pytest.raises(ConfigError, match="unknown proxy kind 'bogus'; use one of: merge, ensemble"):
        Engine(load_workspace(tiny_workspace), suite="quick", device="cpu", proxy="bogus")
    proc = _demix("eval", "--workspace", str(tiny_workspace), "--mixture", "alpha=0.5,beta=0.5,gamma=0",
                  "--proxy", "bogus")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "merge, ensemble" in lines[0], proc.stderr
