"""`demix demo --quick`: real data end to end at tiny sizes, idempotent, with references."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from demix_core.train.demo import build_demo, own_domain_verdicts
from demix_core.train.trainer import read_training
from demix_core.workspace.manifest import load_workspace


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    lines: list[str] = []
    root = tmp_path_factory.mktemp("demo") / "ws"
    build_demo(root, quick=True, references=2, log=lines.append, progress=False)
    return root, lines


def test_quick_demo_builds_a_workspace(quick_demo) -> None:
    root, lines = quick_demo
    ws = load_workspace(root)
    assert len(ws.components) >= 5
    real_domains = {d.domain for d in ws.datasets if d.source != "mathgen"}
    assert len({d.name for d in ws.datasets if d.source != "mathgen"}) >= 4 and len(real_domains) >= 2
    assert any(d.source == "mathgen" for d in ws.datasets)
    assert all(c.drift is not None and c.drift > 0 for c in ws.components)
    assert any(line.startswith("[5/5] held-out loss") for line in lines)
    assert sum(1 for line in lines if line.strip().startswith(("ok", "NO"))) == len(ws.components)
    train = ws.path(ws.datasets[0].train).read_text()
    held = ws.path(ws.datasets[0].heldout).read_text()
    assert train and held and held[:200] not in train


def test_quick_demo_trains_references_and_trained_proxies(quick_demo) -> None:
    from demix_core.train.reference_set import reference_mixtures

    root, lines = quick_demo
    ws = load_workspace(root)
    refs = [r for r in ws.references if r.kind == "reference"]
    tps = [r for r in ws.references if r.kind == "trained_proxy"]
    assert [r.name for r in refs] == ["ref-00", "ref-01"] and [r.name for r in tps] == ["ref-00", "ref-01"]
    mixtures = reference_mixtures(ws, 2)  # the reference set's draws with the demo's seed (see test_reference_set)
    def positive(mix: dict[str, float]) -> dict[str, float]:
        return {k: v for k, v in mix.items() if v > 0}

    want = [positive(m.as_dict()) for m in mixtures]
    assert [positive(r.mixture) for r in refs] == [positive(r.mixture) for r in tps] == want
    assert [line.split()[:2] for line in lines if line.startswith("[") and "/2]" in line] == [
        ["[1/2]", "ref-00"], ["[2/2]", "ref-01"]]
    for r in refs:
        rec = read_training(ws.path(r.path))
        assert rec["kind"] == "reference" and abs(sum(rec["mixture"].values()) - 1) < 1e-9
        assert rec["drift"] > 0
        assert rec["steps"] == read_training(ws.path(ws.components[0].path))["steps"]  # same budget
    assert read_training(ws.path(tps[0].path))["steps"] < read_training(ws.path(refs[0].path))["steps"]


def test_second_run_reuses_everything(quick_demo) -> None:
    root, _ = quick_demo
    before = {p: p.stat().st_mtime for p in (root / "components").rglob("model.safetensors")}
    start = time.perf_counter()
    build_demo(root, quick=True, references=2, log=lambda s: None, progress=False)
    assert time.perf_counter() - start < 30
    assert {p: p.stat().st_mtime for p in (root / "components").rglob("model.safetensors")} == before


def test_verdicts_name_the_winner() -> None:
    import pandas as pd

    m = pd.DataFrame({"a": [2.0, 1.0, 3.0], "b": [2.0, 2.5, 1.5]}, index=["base", "a", "b"])
    lines = own_domain_verdicts(m)
    assert lines[0].strip().startswith("ok") and "NO" not in lines[0]
    assert lines[1].strip().startswith("ok")
    m.loc["a", "a"] = 2.5
    assert "beaten by base" in own_domain_verdicts(m)[0]


def test_reference_mixtures_are_distinct_draws_of_the_prior() -> None:
    import numpy as np

    from demix_core.errors import DemixError
    from demix_core.mixing.mixture import DirichletPrior
    from demix_core.train.reference_set import distinct_draws

    prior = DirichletPrior(("a", "b", "c"), (1.0, 1.0, 1.0), temperature=1.0, grid=0.25)
    raw = prior.sample(40, seed=3)
    assert len({tuple(r) for r in raw[:12]}) < 12  # a coarse grid repeats itself
    picked = distinct_draws(prior, 8, seed=3)
    assert len({tuple(r) for r in picked}) == 8
    firsts = []  # the same draws, in order, with repeats skipped
    for r in raw:
        if not any(np.allclose(r, f) for f in firsts):
            firsts.append(r)
    assert np.allclose(picked, firsts[:8])
    with pytest.raises(DemixError, match="only .* distinct mixtures of 50"):
        distinct_draws(prior, 50, seed=3)  # a 0.25 grid over 3 components has 15 points
