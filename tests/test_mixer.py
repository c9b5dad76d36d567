"""The Mixer: exact slider state, latest-first measuring, the surrogate's predictions, trials added from it,
dashboard workers that yield to it (core without Streamlit, then the page under AppTest)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from demix_core.background.latest import LatestFirst, measure, threads_now
from demix_core.background.launch import (
    BACKGROUND_ENV,
    BACKGROUND_NICE,
    YIELD_ENV,
    mixer_busy,
    touch,
    wait_while_mixer_busy,
)
from demix_core.errors import BudgetError, StudyError
from demix_core.mixing.bounds import Bounds
from demix_core.mixing.mixture import mixture_from_params
from demix_core.mixing.sliders import SCALE, SliderState, grid_bounds
from demix_core.search.nearest import nearest_trials
from demix_core.search.scheffe import ScheffeModel
from demix_core.search.study import add_measured_trial, create_study, load_study
from demix_core.search.surrogate import Surrogate
from demix_core.search.trials import trials_frame
from demix_core.search.worker import Worker
from demix_core.workspace.manifest import load_workspace

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "mixer.py")
NAMES = ("a", "b", "c", "d")


# --- the slider state -------------------------------------------------------------------------------


def test_any_sequence_of_slider_number_and_lock_changes_stays_on_the_simplex() -> None:
    rng = np.random.default_rng(0)
    state = SliderState(NAMES)
    locked: set[str] = set()
    for _ in range(2000):
        name = str(rng.choice(NAMES))
        if rng.random() < 0.2:
            locked ^= {name}  # a lock toggled
            continue
        before = dict(state.units)
        value = float(rng.choice([rng.random(), round(rng.random(), 2), 0.0, 1.0]))
        state.report(str(rng.choice(["w", "n"])), name, value)
        state.apply(locked)
        assert sum(state.units.values()) == SCALE and min(state.units.values()) >= 0
        assert abs(sum(state.weights().values()) - 1.0) < 1e-9
        held = locked - {name}
        assert all(state.units[n] == before[n] for n in held)  # locked weights never move
        room = SCALE - sum(before[n] for n in held)
        want = min(round(value * SCALE), room)
        # the moved weight is the value asked for, or all the room the locks leave (or all of it, if nothing is free)
        free = [n for n in NAMES if n != name and n not in held]
        assert state.units[name] == (want if free else room)


def _random_bounds(rng: np.random.Generator) -> Bounds:
    """Bounds on four components, most not on the 1e-4 grid, that leave room on it."""
    while True:
        lo = np.where(rng.random(4) < 0.6, rng.uniform(0, 0.2, 4), 0.0)
        hi = np.where(rng.random(4) < 0.7, np.minimum(1.0, lo + rng.uniform(0.05, 0.6, 4)), 1.0)
        if lo.sum() <= 0.95 and hi.sum() >= 1.05:
            return Bounds(NAMES, tuple(lo.tolist()), tuple(hi.tolist()))


def test_bounded_slider_number_and_lock_changes_keep_every_bound_and_sum_exactly() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        bounds = _random_bounds(rng)
        lo_u = [int(np.ceil(v * SCALE - 1e-6)) for v in bounds.lo]  # the grid bounds, computed here independently
        hi_u = [int(np.floor(v * SCALE + 1e-6)) for v in bounds.hi]
        start = dict(zip(NAMES, rng.dirichlet(np.ones(4)).tolist()))  # most starts are outside the bounds
        state = SliderState(NAMES, start, bounds)
        locked: set[str] = set()
        for _ in range(200):
            units = [state.units[n] for n in NAMES]
            assert sum(units) == SCALE  # exactly 1 in units
            assert all(a <= u <= b for u, a, b in zip(units, lo_u, hi_u))  # every grid bound
            assert bounds.feasible(np.array(units) / SCALE, tol=1e-12)  # so every budget bound
            name = str(rng.choice(NAMES))
            if rng.random() < 0.2:
                locked ^= {name}  # a lock toggled: the mixture stays as it is
                continue
            before = dict(state.units)
            low, high = state.ranges(locked - {name})[name]  # a moved slider moves, locked or not (as unbounded)
            value = float(rng.choice([rng.random(), round(rng.random(), 2), 0.0, 1.0]))
            state.report(str(rng.choice(["w", "n"])), name, value)
            state.apply(locked)
            held = locked - {name}
            assert all(state.units[n] == before[n] for n in held)  # locked weights never move
            want = min(max(round(value * SCALE), round(low * SCALE)), round(high * SCALE))
            assert state.units[name] == want  # the value asked for, clamped to its drawn range


def test_a_bounded_move_splits_the_rest_in_proportion_until_a_bound_binds() -> None:
    bounds = Bounds(("a", "b", "c"), (0.0, 0.05, 0.0), (0.7, 1.0, 0.2))
    state = SliderState(("a", "b", "c"), {"a": 0.4, "b": 0.45, "c": 0.15}, bounds)
    state.move("a", 0.2)  # 0.8 left for b and c at 3:1 would give c 0.2: exactly its cap
    assert state.units == {"a": 2000, "b": 6000, "c": 2000}
    state.move("a", 0.1)  # c stays at its cap 0.2; b takes the rest
    assert state.units == {"a": 1000, "b": 7000, "c": 2000}
    state.move("a", 0.95)  # past a's cap: clamped to 0.7; b down to its min 0.05 would leave c 0.25 > 0.2
    assert state.units["a"] == 7000 and sum(state.units.values()) == SCALE and state.units["c"] <= 2000
    assert state.units["b"] >= 500
    assert state.ranges(["c"])["a"] == (0.0, 0.7) and state.ranges(["c"])["c"] == (state.weight("c"),) * 2


def test_bounds_go_on_the_grid_inwards_and_an_outside_mixture_comes_in() -> None:
    grid = grid_bounds(Bounds(("a", "b", "c"), (0.10003, 0.0, 0.2), (0.40007, 0.30001, 0.99999)))
    assert grid.lo == (0.1001, 0.0, 0.2) and grid.hi == (0.4, 0.3, 0.9999)  # min up, max down to 1e-4
    assert grid_bounds(Bounds(("a", "b"), (0.4, 0.0), (1.0, 0.6))).lo == (0.4, 0.0)  # 0.4 * 1e4 is not 4000.0
    with pytest.raises(BudgetError, match="'a'.*no weight on the 1e-4 grid"):
        grid_bounds(Bounds(("a", "b"), (0.33331, 0.0), (0.33339, 1.0)))
    with pytest.raises(BudgetError, match="no mixture summing to 1"):
        grid_bounds(Bounds(("a", "b"), (0.0, 0.0), (0.50004, 0.49997)))
    state = SliderState(("a", "b", "c"), {"a": 0.8, "b": 0.1, "c": 0.1})
    assert state.set_bounds(Bounds(("a", "b", "c"), (0.0, 0.0, 0.2), (0.5, 1.0, 1.0)))
    assert state.units == {"a": 5000, "b": 2500, "c": 2500}  # the Euclidean projection, on the grid
    assert not state.set_bounds(Bounds(("a", "b", "c"), (0.0, 0.0, 0.2), (0.5, 1.0, 1.0)))  # same bounds: no move
    assert not state.set_bounds(None) and state.bounds is None and state.units["a"] == 5000
    state.move("a", 0.9)  # free again
    assert state.units["a"] == 9000


def test_values_are_exact_to_1e4_and_the_link_round_trips() -> None:
    state = SliderState(NAMES, {"a": 1, "b": 1, "c": 1, "d": 0})
    assert state.units == {"a": 3334, "b": 3333, "c": 3333, "d": 0}  # largest remainder, sums to 10,000
    state.report("w", "a", 0.2067)
    assert state.apply() and state.weight("a") == 0.2067
    again = SliderState(NAMES, {n: float(v) for n, v in (p.split("=") for p in state.text().split(","))})
    assert again.units == state.units


def test_a_stale_echo_beside_the_real_move_is_dropped_but_a_lone_change_always_counts() -> None:
    state = SliderState(("a", "b", "c"), {"a": 0.5, "b": 0.25, "c": 0.25})
    state.report("w", "a", 0.6)
    state.apply()
    writes = state.sync("w", {"a": 0.6, "b": 0.25, "c": 0.25})  # the page rewrites b and c, not a (being dragged)
    assert writes == {"b": 0.2, "c": 0.2}
    # The next key press on a arrives with b and c still at the values the browser had not replaced yet.
    state.report("w", "a", 0.61)
    state.report("w", "b", 0.25)
    state.report("w", "c", 0.25)
    state.apply()
    assert state.units == {"a": 6100, "b": 1950, "c": 1950}
    # Alone, the same value is the user's own move (typed back by hand).
    state.report("w", "b", 0.25)
    state.apply()
    assert state.weight("b") == 0.25
    # Right then Left on one slider comes back exactly.
    start = state.weight("a")
    for value in (start + 1e-4, start):
        state.report("w", "a", value)
        assert state.apply()
    assert state.weight("a") == start and sum(state.units.values()) == SCALE


def test_nearest_trials() -> None:
    import pandas as pd

    done = pd.DataFrame({"number": [0, 1, 2], "w:a": [1.0, 0.5, 0.0], "w:b": [0.0, 0.5, 1.0]})
    near = nearest_trials(done, {"a": 0.6, "b": 0.4}, k=2)
    assert list(near["number"]) == [1, 0] and near["distance"].tolist() == pytest.approx([0.2, 0.8])


def test_shown_distances_are_rounded_and_the_sign_note_names_the_metrics() -> None:
    import pandas as pd

    from app.figures import metric_unit, score_note
    from app.mixer_scores import nearest_columns, nearest_frame
    from app.table_fits import nearest_runs

    done = pd.DataFrame({"number": [0, 1], "source": ["front", "mixer"], "d:x": [-1.0, -2.0], "w:a": [0.1 + 0.2, 1.0],
                         "w:b": [0.7, 0.0]})
    weights = {"a": 0.3, "b": 0.7}  # trial 0 is this mixture but for ~5.6e-17 of float rounding
    frame = nearest_frame(done, weights, ["d:x"])
    assert frame["distance"].tolist() == [0.0, 1.4] and frame.columns.tolist() == [
        "distance", "number", "source", "x score", "a weight", "b weight"]
    assert [nearest_columns(weights)[c]["label"] for c in ("a weight", "b weight")] == ["a", "b"]
    assert nearest_runs(done, weights, {0: "run-0", 1: "run-1"})["distance"].tolist() == [0.0, 1.4]
    assert score_note(["arc_easy/acc", "arc_easy/acc_norm", "arc_easy/bpb", "gsm8k/bpb"]) == (
        "Domain scores are negated bits per byte (each domain's mean over its benchmarks, sign-flipped): higher is "
        "better, 0 is perfect; the studies maximise them. Benchmark metrics are shown as measured (acc: accuracy, 0 "
        "to 1, higher is better; acc_norm: length-normalised accuracy, 0 to 1, higher is better; bpb: bits per "
        "byte, lower is better).")
    assert score_note().endswith("the studies maximise them.")
    assert [metric_unit(k) for k in ("math", "gsm8k/bpb", "piqa/acc")] == [
        "−bits/byte, higher is better", "bits per byte, lower is better", "accuracy, 0 to 1, higher is better"]


def test_threads_now_leaves_the_cores_other_tasks_hold() -> None:
    assert all(1 <= threads_now(cores=k) <= k for k in (1, 2, 64))


# --- latest first -------------------------------------------------------------------------------------


def test_a_newer_request_cancels_the_waiting_one_and_the_last_is_measured() -> None:
    runner = LatestFirst()
    gate = threading.Event()
    ran: list[int] = []

    def job(i: int) -> int:
        if i == 0:
            gate.wait(5)
        ran.append(i)
        return i

    futures = [runner.submit("me", job, i) for i in range(5)]
    other = runner.submit("someone else", job, 99)  # another session's request is not cancelled by mine
    gate.set()
    assert futures[-1].result(5) == 4 and other.result(5) == 99
    assert all(f.cancelled() for f in futures[1:4]) and ran == [0, 4, 99]
    assert runner.cancelled == 3
    runner.shutdown()


def test_rapid_changes_end_with_the_last_values_measured_scores(tiny_workspace: Path) -> None:
    from demix_core.engine import Engine

    engine = Engine(load_workspace(tiny_workspace), suite="quick", device="cpu")
    runner = LatestFirst()
    mixtures = [f"alpha={a:.4f},beta={1 - a:.4f},gamma=0" for a in np.linspace(0.1, 0.9, 8)]
    futures = [runner.submit("me", measure, engine, engine.mixture(m)) for m in mixtures]
    last = futures[-1].result(60)
    assert sum(f.cancelled() for f in futures) >= 1
    expected = engine.evaluate(mixtures[-1], fresh=True)
    assert last.mixture == engine.mixture(mixtures[-1]) and last.scores.domains == expected.scores.domains
    runner.shutdown()


# --- the surrogate and trials added from the Mixer ------------------------------------------------------


def run_trials(ws_path: Path, study: str, n: int) -> None:
    ws = load_workspace(ws_path)
    create_study(ws, study, sampler="random")
    Worker(ws, study, device="cpu", log=lambda s: None).run(n)


def test_surrogate_is_the_front_samplers_scheffe_fit(tiny_workspace: Path) -> None:
    run_trials(tiny_workspace, "s", 6)
    study = load_study(load_workspace(tiny_workspace), "s")
    done = trials_frame(study, states=(TrialState.COMPLETE,))
    names, domains = ["alpha", "beta", "gamma"], list(study.metric_names)
    assert Surrogate.fit(done.iloc[:3], names, domains) is None  # fewer than the simplex design (k + 1)
    model = Surrogate.fit(done, names, domains)
    assert model is not None and model.trials == 6
    x = np.array([[t.user_attrs["mixture"][n] for n in names] for t in study.get_trials(states=(TrialState.COMPLETE,))])
    x = x / x.sum(axis=1, keepdims=True)  # as the surrogate takes them (a bit-level change may pick another penalty)
    y = np.array([t.values for t in study.get_trials(states=(TrialState.COMPLETE,))])
    mean, spread = ScheffeModel.fit(x, y, seed=0).predict(np.array([[0.2, 0.3, 0.5]]))
    pred, sd = model.predict({"alpha": 0.2, "beta": 0.3, "gamma": 0.5})
    assert [pred[d] for d in domains] == pytest.approx(mean[0].tolist(), abs=1e-12)
    assert [sd[d] for d in domains] == pytest.approx(spread[0].tolist(), abs=1e-12) and min(sd.values()) > 0


def test_added_trial_looks_like_a_workers(tiny_workspace: Path) -> None:
    from demix_core.engine import Engine

    run_trials(tiny_workspace, "add", 2)
    ws = load_workspace(tiny_workspace)
    study = load_study(ws, "add")
    ev = Engine(ws, suite="quick", device="cpu").evaluate("alpha=0.2067,beta=0.5,gamma=0.2933")
    number = add_measured_trial(study, ev.mixture, ev.scores, merge_seconds=ev.merge_seconds, device="cpu")
    trials = study.get_trials()
    added, worker = trials[number], trials[0]
    assert added.state == TrialState.COMPLETE and number == 2
    assert added.values == [ev.scores.domains[d] for d in study.metric_names]
    assert added.user_attrs["source"] == "mixer" and set(added.user_attrs) == set(worker.user_attrs)
    assert set(added.params) == set(worker.params)
    assert mixture_from_params(ws.component_names, added.params).weights == pytest.approx(ev.mixture.weights, abs=1e-12)
    row = trials_frame(study).set_index("number").loc[number]
    assert row["w:alpha"] == pytest.approx(0.2067) and row["d:general"] == ev.scores.domains["general"]
    assert added.user_attrs["proxy"] == worker.user_attrs["proxy"] == "merge"
    other = create_study(ws, "ens", proxy="ensemble")  # merged-weight scores do not belong in an ensemble study
    with pytest.raises(StudyError, match="scores with the ensemble proxy"):
        add_measured_trial(other, ev.mixture, ev.scores, merge_seconds=ev.merge_seconds, device="cpu")
    assert not load_study(ws, "ens").trials
    assert load_study(ws, "add").sampler.__class__.__name__ == "RandomSampler"  # the study still opens


# --- workers started from the dashboard yield ----------------------------------------------------------------


def test_yield_file_pauses_between_trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    busy = tmp_path / "mixer.busy"
    busy.touch()
    os.utime(busy, (0, 0))
    monkeypatch.setenv(YIELD_ENV, str(busy))
    assert not mixer_busy() and wait_while_mixer_busy(limit=1.0) < 0.05
    touch(busy)
    assert mixer_busy()
    start = time.monotonic()
    assert wait_while_mixer_busy(limit=0.3, poll=0.01) >= 0.29 and time.monotonic() - start < 1.0

    class Stopping:
        stopping = True

    assert wait_while_mixer_busy(stop=Stopping(), limit=5) < 0.05  # a worker being stopped does not wait
    touch(tmp_path / "absent")  # touching nothing creates nothing
    assert not (tmp_path / "absent").exists()


def test_background_worker_lowers_its_priority() -> None:
    code = "import os; from demix_core.background.launch import enter_background; print(enter_background(), os.nice(0))"
    env = {**os.environ, BACKGROUND_ENV: "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", str(max(BACKGROUND_NICE, os.nice(0)))]
    env.pop(BACKGROUND_ENV)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", str(os.nice(0))]


def test_worker_waits_for_the_mixer_without_losing_trials(tiny_workspace: Path, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    busy = tmp_path / "mixer.busy"
    monkeypatch.setenv(YIELD_ENV, str(busy))
    ws = load_workspace(tiny_workspace)
    create_study(ws, "y", sampler="random")
    lines: list[str] = []
    worker = Worker(ws, "y", device="cpu", log=lines.append)
    busy.touch()  # the Mixer is measuring now
    start = time.monotonic()
    done = worker.run(2)
    assert time.monotonic() - start >= 1.0  # it waited for the fresh touch to age out first
    assert done == 2 and any("paused" in line for line in lines)
    assert [t.state for t in load_study(ws, "y").trials] == [TrialState.COMPLETE] * 2
    touch(busy)  # the Mixer starts measuring while a trial is in flight: its next forward pass waits
    start = time.monotonic()
    worker.engine.evaluate("alpha=0.3,beta=0.3,gamma=0.4", fresh=True)
    assert time.monotonic() - start >= 1.0


# --- the page -----------------------------------------------------------------------------------------------


@pytest.fixture()
def env_ws(tiny_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(tiny_workspace.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(tiny_workspace))
    return tiny_workspace


def test_page_shows_the_surrogates_prediction_then_records_the_shown_scores(env_ws: Path) -> None:
    run_trials(env_ws, "p", 6)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["study"] = "p"
    at.query_params["mixture"] = "alpha=0.2,beta=0.3,gamma=0.5"
    at.run()
    assert not at.exception
    at.number_input(key="n_gamma").set_value(0.4567).run()  # a typed weight; the others absorb the change
    weights = {n: at.slider(key=f"w_{n}").value for n in ("alpha", "beta", "gamma")}
    assert weights["gamma"] == 0.4567 and abs(sum(weights.values()) - 1) < 1e-9
    study = load_study(load_workspace(env_ws), "p")
    x = np.array([[t.user_attrs["mixture"][n] for n in weights] for t in study.trials])
    x = x / x.sum(axis=1, keepdims=True)
    y = np.array([t.values for t in study.trials])
    mean, spread = ScheffeModel.fit(x, y, seed=0).predict(np.array([list(weights.values())]))
    table = at.dataframe[0].value.set_index("domain")
    assert table["predicted"].tolist() == pytest.approx(mean[0].tolist(), abs=1e-12)
    assert table["±"].tolist() == pytest.approx(spread[0].tolist(), abs=1e-12)
    times = at.session_state["_mixer_times"]
    assert 0 <= times["predicted_s"] <= times["measured_s"]
    shown = table["merged weights"].to_dict()
    assert [m.value for m in at.metric] == [f"{v:.4f}" for v in shown.values()]
    at.button(key="enqueue").click().run()
    assert not at.exception
    added = [t for t in load_study(load_workspace(env_ws), "p").trials if t.user_attrs.get("source") == "mixer"]
    assert len(added) == 1 and added[0].state == TrialState.COMPLETE
    assert added[0].values == [shown[d] for d in study.metric_names]
    assert added[0].user_attrs["mixture"] == weights
    assert any("as trial #6" in s.value for s in at.success)


def test_page_shows_one_column_of_scores_per_proxy_kind(env_ws: Path) -> None:
    from demix_core.proxy import get_kind, kind_names

    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["mixture"] = "alpha=0.2,beta=0.3,gamma=0.5"
    at.run()
    assert not at.exception
    labels = [get_kind(k).label for k in kind_names()]
    table, bench = at.dataframe[0].value, at.dataframe[1].value
    assert list(table.columns) == ["domain", *labels] and list(bench.columns) == ["benchmark", *labels]
    assert table[labels].notna().all().all()


def test_page_queues_instead_when_the_method_is_not_the_studys(env_ws: Path) -> None:
    create_study(load_workspace(env_ws), "q")
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["study"] = "q"
    at.run()
    at.selectbox(key="method").select("ties").run()
    at.button(key="enqueue").click().run()
    assert not at.exception
    [waiting] = load_study(load_workspace(env_ws), "q").trials
    assert waiting.state == TrialState.WAITING and any("merges with linear, not ties" in i.value for i in at.info)


def test_optuna_reads_the_added_trial(env_ws: Path) -> None:
    """The trial the Mixer adds is a plain Optuna trial: the front sampler sees its mixture."""
    from demix_core.search.front import FrontSampler

    run_trials(env_ws, "f", 1)
    ws = load_workspace(env_ws)
    study = load_study(ws, "f")
    from demix_core.engine import Engine

    ev = Engine(ws, suite="quick", device="cpu").evaluate("alpha=0.1,beta=0.1,gamma=0.8")
    number = add_measured_trial(study, ev.mixture, ev.scores)
    seen = FrontSampler(ws.component_names)._mixture_of(study.trials[number])
    assert seen is not None and seen.tolist() == pytest.approx([0.1, 0.1, 0.8])
    assert isinstance(study.trials[number].distributions["u_alpha"], optuna.distributions.FloatDistribution)


def test_mixture_figures_mark_the_mixture_on_the_fronts_and_the_map() -> None:
    import pandas as pd

    from demix_core.view import figures

    rng = np.random.default_rng(1)
    w = rng.dirichlet(np.ones(4), size=12)
    done = pd.DataFrame({"number": range(12), **{f"w:{n}": w[:, i] for i, n in enumerate(NAMES)},
                         "d:x": -w[:, 0], "d:y": -w[:, 1], "d:z": -w[:, 2]})
    scores = {"x": -0.5, "y": -0.6, "z": -0.7}
    figs = {f.key: f.figure for f in figures.mixture_figures(done, [0.1, 0.2, 0.3, 0.4], scores, pair=("d:y", "d:z"))}
    assert set(figs) == {"front:d:y|d:z", "front3d", "ternary"}
    star = figs["front:d:y|d:z"].data[-1]
    assert star.name == "this mixture" and (star.x[0], star.y[0]) == (-0.6, -0.7)
    assert (figs["front3d"].data[-1].x[0], figs["front3d"].data[-1].z[0]) == (-0.5, -0.7)
    point = figs["ternary"].data[-1]
    assert (point.a[0], point.b[0], point.c[0]) == pytest.approx((0.1, 0.2, 0.7))  # c and d grouped on one axis
