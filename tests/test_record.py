"""The trial record: the stored keys stay those of every existing study, and older studies read with the defaults."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest

from demix_core.evaluate.scores import Scores
from demix_core.mixing.mixture import Mixture
from demix_core.search import record


def test_a_scored_trial_stores_exactly_the_keys_of_every_existing_study() -> None:
    mix = Mixture.from_weights(["a", "b"], [0.25, 0.75])
    scores = Scores({"t/acc": 0.5}, {"t/acc": True}, {"general": 0.5}, seconds=2.0)
    attrs = {**record.runner(worker="h:1", device="cpu"), **record.source_attrs("tpe"),
             **record.result(mix, proxy="merge", scores=scores, merge_s=0.5, trial_s=2.5)}
    assert set(attrs) == {"worker", "host", "device", "source", "mixture", "proxy", "benchmarks", "domains",
                          "merge_s", "eval_s", "trial_s"}
    assert attrs["mixture"] == {"a": 0.25, "b": 0.75} and attrs["benchmarks"] == {"t/acc": 0.5}
    assert (attrs["merge_s"], attrs["eval_s"], attrs["trial_s"]) == (0.5, 2.0, 2.5)
    assert record.request(mix, source="manual") == {"source": "manual", "requested": {"a": 0.25, "b": 0.75}}


def test_readers_of_a_trial() -> None:
    dist = {"u_a": optuna.distributions.FloatDistribution(0.0, 1.0)}
    scored = optuna.trial.create_trial(params={"u_a": 0.5}, distributions=dist, values=[1.0], user_attrs={
        "mixture": {"a": 1.0}, "benchmarks": {"t/acc": 0.1}, "worker": "h:1", "device": "cpu", "merge_s": 0.2,
        "eval_s": 0.3, "source": "front"})
    asked = optuna.trial.create_trial(params={"u_a": 0.5}, distributions=dist, values=[1.0],
                                      user_attrs={"requested": {"a": 1.0}})
    assert record.mixture(scored) == record.shown_mixture(scored) == {"a": 1.0}
    assert record.mixture(asked) is None and record.shown_mixture(asked) == {"a": 1.0}
    assert record.benchmarks(scored) == {"t/acc": 0.1} and record.benchmarks(asked) == {}
    assert (record.worker(scored), record.device(scored), record.seconds(scored)) == ("h:1", "cpu", (0.2, 0.3))
    assert (record.worker(asked), record.device(asked), record.seconds(asked)) == ("", "", (None, None))
    assert record.source(scored) == "front" and record.source(asked) is None and record.source(asked, "") == ""


def test_an_older_study_reads_with_the_defaults() -> None:
    old = SimpleNamespace(user_attrs={"components": ["a"], "domains": ["general"]}, metric_names=None)
    dist = {"u_a": optuna.distributions.FloatDistribution(0.0, 1.0)}
    trial = optuna.trial.create_trial(params={"u_a": 0.5}, distributions=dist, values=[1.0],
                                      user_attrs={"mixture": {"a": 1.0}})
    attrs = old.user_attrs
    assert record.method(attrs) == "linear" and record.sampler(attrs) == "tpe" and record.seed(attrs) == 0
    assert record.study_proxy(old) == "merge" and record.trial_proxy(trial, old) == "merge"  # type: ignore[arg-type]
    assert record.domains(old) == ["general"] and record.components(attrs) == ["a"]  # type: ignore[arg-type]
    assert record.tasks(attrs) == [] and record.include_paths(attrs) == [] and record.stored_bounds(attrs) is None
    assert record.proxy_from(attrs) == "" and record.suite(attrs) is None and record.n_trials(attrs) is None
    assert record.tasks({"tasks": "a,b"}) == ["a", "b"]


@pytest.mark.parametrize(("stored", "kind"), [({"proxy": "merge"}, "merge"), ({}, "ensemble")])
def test_a_trials_proxy_is_its_own_else_the_studys(stored: dict[str, str], kind: str) -> None:
    study = SimpleNamespace(user_attrs={"proxy": "ensemble"}, metric_names=None)
    dist = {"u_a": optuna.distributions.FloatDistribution(0.0, 1.0)}
    trial = optuna.trial.create_trial(params={"u_a": 0.5}, distributions=dist, values=[1.0], user_attrs=stored)
    assert record.trial_proxy(trial, study) == kind  # type: ignore[arg-type]
