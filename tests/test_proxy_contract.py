"""One contract over every registered proxy kind: a one-hot mixture scores like that component alone, scores name
every domain, the labels are there and distinct, and an unknown kind's error names the near match."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_tiny_workspace

from demix_core.engine import Engine
from demix_core.errors import ConfigError
from demix_core.proxy import DEFAULT_KIND, get_kind, kind_names
from demix_core.workspace.checks import PROXY_KINDS
from demix_core.workspace.manifest import load_workspace

KINDS = kind_names()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_family: dict[str, Path]) -> Path:
    return make_tiny_workspace(tmp_path_factory.mktemp("contract") / "ws", tiny_family)


@pytest.fixture(scope="module")
def engines(workspace: Path) -> dict[str, Engine]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    ws = load_workspace(workspace)
    yield {k: Engine(ws, suite="quick", device="cpu", proxy=k, ensemble_cache=workspace / "cache" / k)
           for k in KINDS}
    torch.set_num_threads(before)


def test_the_registry_lists_the_default_first_and_the_manifest_accepts_every_kind() -> None:
    assert KINDS[0] == DEFAULT_KIND and set(KINDS) >= {"merge", "ensemble"}
    assert set(PROXY_KINDS) == set(KINDS)  # the manifest's layer cannot ask the registry: kept equal here


@pytest.mark.parametrize("kind", KINDS)
def test_one_hot_mixture_scores_like_component_one(kind: str, engines: dict[str, Engine],
                                                   tiny_family: dict[str, Path]) -> None:
    engine = engines[kind]
    ev = engine.evaluate([1.0, 0.0, 0.0])
    assert ev.proxy == kind and not ev.cached
    alone = engine.score_checkpoint(tiny_family["alpha"])
    assert set(ev.scores.benchmarks) == set(alone.benchmarks)
    for key, value in alone.benchmarks.items():
        assert ev.scores.benchmarks[key] == pytest.approx(value, abs=1e-6), key
    assert engine.kind().ready and engine.evaluate([1.0, 0.0, 0.0]).cached


@pytest.mark.parametrize("kind", KINDS)
def test_scores_have_every_domain(kind: str, engines: dict[str, Engine]) -> None:
    engine = engines[kind]
    scores = engine.evaluate("alpha=0.2,beta=0.3,gamma=0.5").scores
    assert set(scores.domains) == set(engine.suite.domains) == set(engine.workspace.domains().values())
    assert all(v == v for v in scores.domains.values())  # no NaN


@pytest.mark.parametrize("kind", KINDS)
def test_any_engine_scores_any_kind_by_name(kind: str, engines: dict[str, Engine]) -> None:
    other = engines[DEFAULT_KIND]
    asked = other.evaluate([0.2, 0.3, 0.5], proxy=kind)
    own = engines[kind].evaluate([0.2, 0.3, 0.5])
    assert asked.proxy == kind and asked.scores.domains == pytest.approx(own.scores.domains, abs=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_labels_are_there_and_distinct(kind: str) -> None:
    cls = get_kind(kind)
    assert cls.name == kind and cls.__doc__
    for attr in ("label", "report_name", "help"):
        mine = getattr(cls, attr)
        assert isinstance(mine, str) and mine.strip(), (kind, attr)
        assert [getattr(get_kind(k), attr) for k in KINDS].count(mine) == 1, (kind, attr)


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_kind_names_the_near_match(kind: str) -> None:
    typo = kind[:-1] + ("x" if kind[-1] != "x" else "y")
    with pytest.raises(ConfigError) as err:
        get_kind(typo)
    text = str(err.value)
    assert "\n" not in text and f"unknown proxy kind {typo!r}" in text
    assert f"did you mean: {kind}" in text and ", ".join(KINDS) in text
