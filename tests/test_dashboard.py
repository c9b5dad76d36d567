"""Dashboard pages under Streamlit's AppTest: widgets set, scores asserted, trials land in the storage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from optuna.trial import TrialState

from app.auth import ROLE_KEY
from demix_core.search.study import create_study, load_study
from demix_core.search.worker import Worker
from demix_core.workspace.manifest import load_workspace

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
TIMEOUT = 120
PAGES = str(Path(__file__).resolve().parent.parent / "pages")


@pytest.fixture()
def env_ws(tiny_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(tiny_workspace.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(tiny_workspace))
    return tiny_workspace


def run_trials(ws_path: Path, study: str, n: int, sampler: str = "random") -> None:
    ws = load_workspace(ws_path)
    create_study(ws, study, sampler=sampler)
    Worker(ws, study, device="cpu", log=lambda s: None).run(n)


def test_workspace_page_lists_components(env_ws: Path) -> None:
    at = AppTest.from_file(PAGES + "/workspace.py", default_timeout=TIMEOUT).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["component"]) == ["alpha", "beta", "gamma"]
    assert any("compatible" in s.value for s in at.success)
    config = json.loads(at.dataframe[0].proto.columns)  # counts shown with thousands separators, sorted as numbers
    assert {c: config[c]["type_config"]["format"] for c in ("tokens", "params")} == {"tokens": "%,d", "params": "%,d"}
    assert table["tokens"].dtype.kind == "i"


def test_workspace_outside_root_is_refused(env_ws: Path, tmp_path_factory) -> None:
    at = AppTest.from_file(PAGES + "/workspace.py", default_timeout=TIMEOUT).run()
    at.text_input(key="ws_path").set_value("/etc").run()
    assert any("outside the allowed root" in e.value for e in at.error)


def test_workspace_not_a_workspace(env_ws: Path) -> None:
    (env_ws.parent / "empty").mkdir()
    at = AppTest.from_file(PAGES + "/workspace.py", default_timeout=TIMEOUT).run()
    at.text_input(key="ws_path").set_value(str(env_ws.parent / "empty")).run()
    assert any("not a DeMix workspace" in e.value for e in at.error)


def measured(at) -> dict[str, float]:  # noqa: ANN001 - an AppTest
    """The merged proxy's measured domain scores as the Mixer shows them (its final score table)."""
    return at.dataframe[0].value.set_index("domain")["merged weights"].to_dict()


def test_mixer_sliders_stay_on_the_simplex_and_scores_move(env_ws: Path) -> None:
    create_study(load_workspace(env_ws), "m")
    at = AppTest.from_file(PAGES + "/mixer.py", default_timeout=TIMEOUT).run()
    assert not at.exception
    before = measured(at)
    # short headers (the table fits at 1280 px), the unit on the domain column, the one note on the sign
    config = json.loads(at.dataframe[0].proto.columns)
    assert [config[c]["label"] for c in ("domain", "merged weights", "output ensemble")] == [
        "domain (−bpb)", "merged", "ensemble"]
    assert json.loads(at.dataframe[1].proto.columns)["benchmark"]["label"] == "benchmark/metric"
    assert ("Domain scores are negated bits per byte (each domain's mean over its benchmarks, sign-flipped): higher "
            "is better, 0 is perfect; the studies maximise them. Benchmark metrics are shown as measured (bpb: bits "
            "per byte, lower is better).") in [c.value for c in at.caption]
    assert [m.label for m in at.metric] == ["general", "code", "math"]
    at.slider(key="w_beta").set_value(0.8).run()
    weights = {n: at.slider(key=f"w_{n}").value for n in ("alpha", "beta", "gamma")}
    assert weights["beta"] == pytest.approx(0.8)
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-9)
    assert weights["alpha"] == pytest.approx(0.1, abs=1e-4)  # the others shrank in proportion (1/3 each -> 0.1)
    assert {n: at.number_input(key=f"n_{n}").value for n in weights} == weights  # the number inputs follow
    after = measured(at)
    assert after != before
    # A lock keeps a weight while another slider moves.
    at.checkbox(key="lock_gamma").check().run()
    gamma = at.slider(key="w_gamma").value
    at.slider(key="w_alpha").set_value(0.5).run()
    assert at.slider(key="w_gamma").value == pytest.approx(gamma)
    at.button(key="enqueue").click().run()
    done = load_study(load_workspace(env_ws), "m").get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 1 and done[0].user_attrs["source"] == "mixer"
    assert done[0].user_attrs["mixture"]["alpha"] == pytest.approx(0.5, abs=1e-12)


def test_mixer_opens_a_shared_link(env_ws: Path) -> None:
    at = AppTest.from_file(PAGES + "/mixer.py", default_timeout=TIMEOUT)
    at.query_params["mixture"] = "alpha=0.2,beta=0.2,gamma=0.6"
    at.run()
    assert at.slider(key="w_gamma").value == pytest.approx(0.6)


def test_study_page_empty_state_then_fronts(env_ws: Path) -> None:
    create_study(load_workspace(env_ws), "empty")
    at = AppTest.from_file(PAGES + "/study.py", default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("No finished trials yet" in i.value for i in at.info)
    run_trials(env_ws, "full", 6)
    at = AppTest.from_file(PAGES + "/study.py", default_timeout=TIMEOUT)
    at.query_params["study"] = "full"
    at.run()
    assert not at.exception
    trials = at.dataframe[-1].value
    assert len(trials) == 6 and {"general score", "alpha weight"} <= set(trials.columns)  # no d:/w: prefixes
    assert any(c.value.startswith("Domain scores are negated bits per byte") for c in at.caption)
    assert at.selectbox(key="px").value == "d:general"


def test_study_page_read_only_hides_controls(env_ws: Path) -> None:
    create_study(load_workspace(env_ws), "ro")
    at = AppTest.from_file(PAGES + "/study.py", default_timeout=TIMEOUT)
    at.session_state[ROLE_KEY] = "view"
    at.run()
    assert not at.exception
    assert not [b for b in at.button if b.key in ("start_worker", "stop_workers", "create_study", "export_report")]


def test_recommend_page(env_ws: Path) -> None:
    run_trials(env_ws, "rec", 10)
    at = AppTest.from_file(PAGES + "/recommend.py", default_timeout=TIMEOUT).run()
    at.number_input(key="samples").set_value(5000)
    at.radio(key="rec_against").set_value("none").run()  # the plain recommendation (no mixture to beat)
    at.button(key="run_rec").click().run()
    assert not at.exception
    mix = at.dataframe[0].value
    assert list(mix["component"]) == ["alpha", "beta", "gamma"] and mix["weight"].sum() == pytest.approx(1.0)
    predicted = at.dataframe[1].value.set_index("target")["unit"]  # domains negated, benchmarks as measured
    assert (predicted["general"], predicted["alpha/bpb"]) == ("−bits/byte, higher is better",
                                                             "bits per byte, lower is better")
    assert any(c.value.endswith("Benchmark metrics are shown as measured (bpb: bits per byte, lower is better).")
               for c in at.caption)
    at.button(key="rec_enqueue").click().run()
    waiting = load_study(load_workspace(env_ws), "rec").get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].user_attrs["source"] == "recommendation"


def test_validate_page_needs_references(env_ws: Path) -> None:
    at = AppTest.from_file(PAGES + "/validate.py", default_timeout=TIMEOUT).run()
    assert any("needs at least 3" in i.value for i in at.info)


def test_report_is_self_contained(env_ws: Path, tmp_path: Path) -> None:
    from demix_core.view.report import write_report

    run_trials(env_ws, "rep", 5)
    out = write_report(load_study(load_workspace(env_ws), "rep"), tmp_path / "r.html")
    text = Path(out).read_text()
    assert "Pareto front" in text and "<script" in text and 'src="https://cdn.plot.ly' not in text
    assert text.count("Plotly.newPlot") >= 3
