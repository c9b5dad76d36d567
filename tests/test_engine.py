"""One proxy per request: concurrent evaluations on one Engine, and its cache of recent results."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest


def mixtures(seed: int, n: int) -> list[list[float]]:
    r = random.Random(seed)
    out = []
    for _ in range(n):
        w = [r.random() + 0.01 for _ in range(3)]
        out.append([x / sum(w) for x in w])
    return out


def test_two_threads_get_single_threaded_scores(tiny_workspace: Path, one_torch_thread) -> None:
    from demix_core.engine import Engine
    from demix_core.workspace.manifest import load_workspace

    ws = load_workspace(tiny_workspace)
    jobs = {"a": mixtures(1, 30), "b": mixtures(2, 30)}
    single = Engine(ws, suite="quick", device="cpu", recent=0)
    expected = {k: [single.evaluate(m).scores.benchmarks for m in ms] for k, ms in jobs.items()}
    assert expected["a"][0] != expected["b"][0]  # different mixtures, different numbers

    shared = Engine(ws, suite="quick", device="cpu", recent=0)  # no cache: every call merges and scores
    got: dict[str, list[dict[str, float]]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def run(name: str) -> None:
        start.wait()
        for m in jobs[name]:
            got[name].append(shared.evaluate(m).scores.benchmarks)

    threads = [threading.Thread(target=run, args=(k,)) for k in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected  # exactly, not approximately


def test_recent_results_come_back_without_merging(tiny_workspace: Path, one_torch_thread) -> None:
    from demix_core.engine import Engine
    from demix_core.workspace.manifest import load_workspace

    engine = Engine(load_workspace(tiny_workspace), suite="quick", device="cpu", recent=2)
    first = engine.evaluate("alpha=0.5,beta=0.3,gamma=0.2")
    assert not first.cached
    again = engine.evaluate([0.50001, 0.29999, 0.2])  # the same mixture to 1e-4
    assert again.cached and again.scores.benchmarks == first.scores.benchmarks
    again.scores.benchmarks.clear()  # a caller's copy: the cache keeps its own
    assert engine.evaluate("alpha=0.5,beta=0.3,gamma=0.2").scores.benchmarks == first.scores.benchmarks
    assert not engine.evaluate("alpha=0.5,beta=0.3,gamma=0.2", method="task_arithmetic").cached  # method in key
    assert not engine.evaluate("alpha=0.5,beta=0.3,gamma=0.2", fresh=True).cached
    engine.evaluate("alpha=1")
    engine.evaluate("beta=1")  # only 2 kept: the oldest is gone
    assert not engine.evaluate("alpha=0.5,beta=0.3,gamma=0.2", method="task_arithmetic").cached


def test_a_studys_trials_are_remembered(tiny_workspace: Path, one_torch_thread) -> None:
    from demix_core.engine import Engine
    from demix_core.workspace.manifest import load_workspace

    engine = Engine(load_workspace(tiny_workspace), suite="quick", device="cpu")
    scored = engine.evaluate("alpha=1")
    trial = SimpleNamespace(state=SimpleNamespace(name="COMPLETE"), user_attrs={
        "mixture": {"alpha": 0.2, "beta": 0.2, "gamma": 0.6}, "benchmarks": {k: 1.5 for k in scored.scores.benchmarks},
        "domains": {k: -1.5 for k in scored.scores.domains}, "eval_s": 0.1})
    running = SimpleNamespace(state=SimpleNamespace(name="RUNNING"), user_attrs={})
    from demix_core.search.record import measured_results

    results = measured_results([trial, running])
    assert len(results) == 1  # only the complete trial carries scores
    assert engine.remember_trials(results, suite="paper") == 0  # another suite's numbers
    assert engine.remember_trials(results, suite="quick") == 1
    ev = engine.evaluate("alpha=0.2,beta=0.2,gamma=0.6")
    assert ev.cached and set(ev.scores.benchmarks.values()) == {1.5}
    assert ev.scores.higher_is_better == scored.scores.higher_is_better


@pytest.mark.parametrize("recent", [0, 4])
def test_scores_do_not_depend_on_the_previous_mixture(tiny_workspace: Path, one_torch_thread, recent: int) -> None:
    from demix_core.engine import Engine
    from demix_core.workspace.manifest import load_workspace

    engine = Engine(load_workspace(tiny_workspace), suite="quick", device="cpu", recent=recent)
    a = engine.evaluate("alpha=0.7,gamma=0.3").scores.benchmarks
    engine.evaluate("beta=1")
    assert engine.evaluate("alpha=0.7,gamma=0.3").scores.benchmarks == a
