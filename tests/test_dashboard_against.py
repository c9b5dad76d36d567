"""The Recommend page's "Beat the mixture you have" and the Validate page's noise floor, under AppTest, on studies
whose trials are written directly with known scores (no worker) and validation records written directly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import t as student_t

from app.auth import ROLE_KEY
from demix_core.evaluate.scores import Scores
from demix_core.mixing.mixture import Mixture
from demix_core.search.study import add_measured_trial, create_study
from demix_core.validation.noise import measure_command
from demix_core.workspace.manifest import load_workspace
from demix_core.workspace.records import record_path

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
PAGES = str(Path(__file__).resolve().parent.parent / "pages")
DOMAINS = ["general", "code", "math"]
NATURAL = "natural (alpha=0.17 beta=0.33 gamma=0.50)"  # the tiny workspace's tokens: 1,000, 2,000, 3,000


def _study(ws_root: Path, name: str, score) -> None:  # noqa: ANN001 - (weights) -> {domain: score}
    """A study with 16 complete trials whose domain scores are ``score`` of their weights (no worker)."""
    ws = load_workspace(ws_root)
    study = create_study(ws, name, sampler="random")
    for w in np.random.default_rng(1).dirichlet(np.ones(3), 16):
        mixture = Mixture.from_weights(ws.component_names, list(w))
        add_measured_trial(study, mixture, Scores({}, {}, score(mixture.array())), proxy="merge")


def _alpha_helps(w: np.ndarray) -> dict[str, float]:  # every domain gains with alpha: natural can be beaten
    return {d: -1.0 + 0.5 * float(w[0]) + 0.1 * i for i, d in enumerate(DOMAINS)}


def _own_share(w: np.ndarray) -> dict[str, float]:  # each domain is its component's share: no mixture beats all
    return {d: float(v) for d, v in zip(DOMAINS, w)}


@pytest.fixture()
def page_ws(tiny_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(tiny_workspace.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(tiny_workspace))
    return tiny_workspace


@pytest.fixture()
def rec_ws(page_ws: Path) -> Path:
    tiny_workspace = page_ws
    _study(tiny_workspace, "helps", _alpha_helps)
    _study(tiny_workspace, "shares", _own_share)
    return tiny_workspace


def _recommend(study: str, **state: object):  # noqa: ANN202 - an AppTest
    at = AppTest.from_file(f"{PAGES}/recommend.py", default_timeout=120)
    at.session_state[ROLE_KEY] = "edit"
    for k, v in state.items():
        at.session_state[k] = v
    at.query_params["study"] = study
    at.run()
    at.number_input(key="samples").set_value(2000)
    return at


def _frame(at, column: str):  # noqa: ANN001, ANN202
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_beat_natural_by_default_with_the_floor_of_the_last_validation(rec_ws: Path) -> None:
    path = record_path(load_workspace(rec_ws), "quick")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"written": "2025-01-02T03:04:05", "noise_floor": {
        "domains": {"general": 0.01, "code": 0.02, "math": 0.03}, "mixtures": 1, "runs": 2}}))
    at = _recommend("helps")
    assert at.radio(key="rec_against").value == "natural"
    assert at.radio(key="rec_against").options[0] == NATURAL
    assert at.slider(key="rec_confidence").value == 0.8 and at.selectbox(key="rec_pick").value == "mean"
    at.button(key="run_rec").click().run()
    assert not at.exception and not at.error and not at.warning
    summary = at.success[0].value.replace("\\", "")
    assert " of 2,000 candidates are expected to beat " + NATURAL + " by at least the noise floor on every domain, " \
        "at the 80% lower bound of the predictor's out-of-fold error (natural's own scores are predicted, not " \
        "measured: no trial of the study holds it" in summary
    assert any(c.value == "Noise floor: the seed sd of 1 repeated trained mixture(s) (2 models) in "
               "the quick validation of 2025-01-02T03:04:05." for c in at.caption)
    mix = _frame(at, "component").set_index("component")["weight"]
    table = _frame(at, "predicted gain").set_index("domain")
    assert list(table.index) == DOMAINS and list(table["passes"]) == ["yes"] * 3
    assert table["noise floor"].tolist() == [0.01, 0.02, 0.03]
    # the scores are linear in alpha: the pick's gain over natural is half its extra alpha on every domain
    assert table["predicted gain"].to_numpy() == pytest.approx([0.5 * (mix["alpha"] - 1 / 6)] * 3, abs=2e-3)
    assert (table["lower bound"] <= table["predicted gain"]).all()
    assert any(b.proto.label.startswith("Download for") for b in at.get("download_button"))


def test_nothing_beats_natural_warns_which_domain_blocks_and_shows_no_mixture(rec_ws: Path) -> None:
    at = _recommend("shares")
    at.button(key="run_rec").click().run()
    assert not at.exception and not at.error
    assert len(at.warning) == 1
    text = at.warning[0].value.replace("\\", "")
    assert text.startswith(f"no candidate of 2,000 is expected to beat {NATURAL} by at least the noise floor on "
                           "every domain")
    # natural holds the most math (1/2): fewest candidates hold more, and none holds more of every component
    assert "): math blocks it together with the rest: " in text and "but none reaches all at once" in text
    assert "(noise floor unknown: judged on the predictor's error alone)" in text
    ws = load_workspace(rec_ws)
    assert f"Noise floor: no repeated trained mixture in the quick validation; measure it with `" \
           f"{measure_command(ws.root, ws.component_names)}`, then `demix validate`." in [c.value for c in at.caption]
    assert not [d for d in at.dataframe if "component" in d.value.columns] and not at.get("download_button")
    at.radio(key="rec_against").set_value("none").run()  # the plain recommendation stays
    assert not at.exception and not at.warning
    assert list(_frame(at, "component")["component"]) == ["alpha", "beta", "gamma"]
    assert not [d for d in at.dataframe if "predicted gain" in d.value.columns]


def test_a_given_mixture_is_checked_and_trained_against(rec_ws: Path) -> None:
    from demix_core.background import jobs

    at = _recommend("helps", _mixture="alpha=0.1,beta=0.2,gamma=0.7")  # the Mixer's mixture, to begin with
    at.radio(key="rec_against").set_value("given").run()
    assert at.text_input(key="rec_against_given").value == "alpha=0.1,beta=0.2,gamma=0.7"
    at.text_input(key="rec_against_given").set_value("alpha=0.5,delta=0.5").run()
    assert len(at.error) == 1 and at.error[0].value.startswith("--against 'alpha=0.5,delta=0.5': ")
    assert "delta" in at.error[0].value and not at.exception
    assert not [b for b in at.button if b.key == "run_rec"]  # nothing to fit until it parses
    at.text_input(key="rec_against_given").set_value("alpha=0.1,beta=0.2,gamma=0.7").run()
    at.selectbox(key="rec_pick").set_value("best")
    at.slider(key="rec_confidence").set_value(0.9)
    at.button(key="run_rec").click().run()
    assert not at.exception and not at.error
    assert "beat current (alpha=0.10 beta=0.20 gamma=0.70)" in at.success[0].value.replace("\\", "")
    assert "at the 90% lower bound" in at.success[0].value
    assert "Per domain, the pick's predicted gain over the mixture you gave, its 90% lower bound and the noise floor " \
           "that bound has to reach:" in [c.value for c in at.caption]
    table = _frame(at, "predicted gain")
    assert table["noise floor"].isna().all() and set(table["passes"]) <= {"yes", "no"}  # no validation: unknown
    at.checkbox(key="rec_train_baselines").uncheck()
    at.button(key="rec_train_train").click().run()
    job = jobs.latest(rec_ws, "train-reference")
    assert job is not None
    jobs.stop(job)
    args = job.command[job.command.index("recommend"):]
    assert args[args.index("--pick") + 1] == "best"
    assert args[args.index("--against") + 1] == "alpha=0.1,beta=0.2,gamma=0.7"
    assert args[args.index("--confidence") + 1] == "0.9" and args[args.index("--beat") + 1] == "every"
    assert args[-2:] == ["--train", "--no-baselines"]


def _loop_record(ws_root: Path, floor: dict[str, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """A validation record with a loop (the recommendation and uniform) and, when ``floor`` is given, its noise
    floor (1 repeated mixture, 2 models: 1 degree of freedom); returns (recommended, uniform) domain scores."""
    from conftest import one_hot_references

    from demix_core.proxy import get_kind
    from demix_core.runs.noise import NoiseFloor
    from demix_core.validation.loop import RECOMMENDED, loop_report
    from demix_core.validation.methods import NULL
    from demix_core.validation.report import ValidationReport, method_report, record_validation

    one_hot_references(ws_root)
    ws = load_workspace(ws_root)
    merged = get_kind("merge").report_name
    rng = np.random.default_rng(0)
    ref = {d: rng.normal(size=12) for d in ("general", "code")}
    proxy = {d: v + 0.1 * rng.normal(size=12) for d, v in ref.items()}
    null = {d: rng.normal(size=12) for d in ref}
    refs = np.column_stack([ref["general"], ref["code"]])
    rec, uni = refs.max(0), refs.max(0) - np.array([0.004, 0.5])
    loop = loop_report([f"r{i}" for i in range(12)], refs, {RECOMMENDED: ("loop-rec", {"alpha": 1.0}, rec),
                                                           "uniform": ("loop-uni", {"alpha": 1.0}, uni)},
                       ["general", "code"], floor=floor, floor_df=1 if floor else None)
    report = ValidationReport([f"r{i}" for i in range(12)], [{} for _ in range(12)], ["general", "code"],
                              {d: list(v) for d, v in ref.items()},
                              [method_report(merged, proxy, ref), method_report(NULL, null, ref, with_recovery=False)],
                              {}, "quick", {merged: {d: list(v) for d, v in proxy.items()},
                                            NULL: {d: list(v) for d, v in null.items()}}, {"merge": merged}, loop,
                              noise=NoiseFloor(dict(floor), 1, 2) if floor else None,
                              noise_command=measure_command(ws.root, ws.component_names))
    record_validation(ws, report)
    return rec, uni


def _validate():  # noqa: ANN202 - an AppTest
    at = AppTest.from_file(f"{PAGES}/validate.py", default_timeout=120)
    at.session_state[ROLE_KEY] = "view"
    return at.run()


def test_validate_draws_the_noise_band_and_the_calls_per_domain(page_ws: Path) -> None:
    floor = {"general": 0.01, "code": 0.02}
    rec, uni = _loop_record(page_ws, floor)
    at = _validate()
    assert not at.exception
    assert any(c.value == "band: the noise floor (seed sd general 0.01, code 0.02; pooled over 1 repeated mixture(s), "
               "2 models); bars: the 95% interval of each difference. A point inside the band is within noise."
               for c in at.caption)
    half = float(student_t.ppf(0.975, 1)) * math.sqrt(2)  # one seed each, 1 degree of freedom
    want = {}
    for i, d in enumerate(("general", "code")):
        diff = rec[i] - uni[i]
        low, high = diff - half * floor[d], diff + half * floor[d]
        call = "within noise" if abs(diff) <= floor[d] or low <= 0 <= high else "better"
        want[f"{d} call"] = ["", f"{diff:+.3f} [{low:+.3f}, {high:+.3f}] {call}"]
    assert want["general call"][1].endswith("within noise") and want["code call"][1].endswith("better")
    table = _frame(at, "regret [95% CI]")
    assert {c: list(table[c]) for c in want} == want
    charts = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    bands = [c for c in charts if "recommended minus each baseline" in c["layout"]["title"]["text"]]
    assert [c["layout"]["title"]["text"] for c in bands] == ["general: recommended minus each baseline",
                                                            "code: recommended minus each baseline"]
    for chart, d in zip(bands, ("general", "code")):
        rect = [s for s in chart["layout"]["shapes"] if s["type"] == "rect"]
        assert len(rect) == 1 and (rect[0]["y0"], rect[0]["y1"]) == (-floor[d], floor[d])
        assert chart["data"][0]["x"] == ["uniform"]


def test_validate_without_a_floor_says_noise_unknown_and_how_to_measure_it(page_ws: Path) -> None:
    rec, uni = _loop_record(page_ws, None)
    at = _validate()
    assert not at.exception
    ws = load_workspace(page_ws)
    command = measure_command(ws.root, ws.component_names)
    want = f"noise unknown: no mixture was trained twice; measure it with `{command}`"
    assert [i.value for i in at.info if i.value.startswith("noise unknown")] == [want]
    table = _frame(at, "regret [95% CI]")
    assert list(table["general call"]) == ["", f"{rec[0] - uni[0]:+.3f} noise unknown"]
    charts = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    unknown = [c for c in charts if "recommended minus each baseline" in c["layout"]["title"]["text"]]
    assert len(unknown) == 2 and all(c["layout"]["title"]["text"].endswith("(noise unknown)") for c in unknown)
    assert not [s for c in unknown for s in c["layout"].get("shapes", []) if s["type"] == "rect"]
