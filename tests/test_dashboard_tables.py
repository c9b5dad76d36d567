"""Every dashboard page on a table workspace (issue 25: past runs imported with `demix import-runs`, no checkpoints),
under Streamlit's AppTest.

The workspace is built from the small RegMix-shaped fixture tables (tests/fixtures/runs/regmix: 12 runs at "1M", two
mixtures run twice, 6 references at "1B") and, for families and a higher-is-better metric, the Olmix-shaped ones.
No page shows a traceback; what needs checkpoints is one sentence; the Mixer's predictions are the predictor's
fitted on the study (± its out-of-fold error, a fit label per metric) and follow the sliders within 200 ms.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.auth import ROLE_KEY
from demix_core.runs.advice import fit_label
from demix_core.runs.fit import TableFit
from demix_core.runs.importer import import_runs
from demix_core.search.study import load_study
from demix_core.validation.regression import validate_table
from demix_core.validation.stats import Figure
from demix_core.workspace.manifest import load_workspace

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
TIMEOUT = 120
PAGES = str(Path(__file__).resolve().parent.parent / "pages")
FIXTURES = Path(__file__).parent / "fixtures" / "runs"
REGMIX, OLMIX = FIXTURES / "regmix", FIXTURES / "olmix"
METRICS = ["web_val_loss", "code_val_loss", "math_val_loss"]
DOMAINS = ["train_web", "train_code", "train_math", "train_books"]
WRITES = {"start_worker", "stop_workers", "create_study", "enqueue", "export", "rec_enqueue", "rec_train_train",
          "mixer_train", "run_val", "val_refs_train", "val_loop_train"}


def regmix_workspace(folder: Path, *, references: bool = True) -> Path:
    """A table workspace: study s1m from the 1M runs, and (``references``) the 1B runs as its references."""
    import_runs(folder, REGMIX / "train_mixture_1m.csv", REGMIX / "train_pile_loss_1m.csv", study="s1m")
    if references:
        import_runs(folder, REGMIX / "test_mixture_1B.csv", REGMIX / "test_pile_loss_1B.csv", references=True)
    return folder


@pytest.fixture()
def table_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = regmix_workspace(tmp_path / "tables" / "regmix")
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(ws.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(ws))
    return ws


def page(name: str, **query: str):  # noqa: ANN201 - an AppTest that ran once
    at = AppTest.from_file(f"{PAGES}/{name}.py", default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def frame(at, *columns: str):  # noqa: ANN001, ANN201 - the first table on the page with these columns
    return next(d.value for d in at.dataframe if set(columns) <= set(d.value.columns))


def texts(at) -> list[str]:  # noqa: ANN001 - every info, caption, warning and markdown on the page
    return [str(e.value) for kind in ("info", "caption", "warning", "markdown", "success") for e in getattr(at, kind)]


def no_checkpoint_sentences(at) -> list[str]:  # noqa: ANN001
    return [t for t in texts(at) if "has no checkpoints" in t]


def test_workspace_page_shows_domains_studies_and_references(table_ws: Path) -> None:
    at = page("workspace")
    assert not at.exception and not at.error
    assert list(frame(at, "domain")["domain"]) == DOMAINS
    studies = frame(at, "study", "runs")
    assert studies.to_dict("records")[0]["study"] == "s1m" and studies["runs"].tolist() == [12]
    assert "web_val_loss (lower)" in studies["objectives (which is better)"][0]
    refs = frame(at, "reference")
    assert list(refs["reference"]) == [str(i) for i in range(6)] and set(METRICS) <= set(refs.columns)
    [note] = no_checkpoint_sentences(at)  # one sentence says it, no checkpoint widget is drawn
    assert note.count(". ") == 0 and note.endswith(".")
    assert not [d for d in at.dataframe if "component" in d.value.columns]
    assert not [b for b in at.button if b.key and b.key.endswith("_save")]


def test_study_page_shows_runs_front_and_metrics(table_ws: Path) -> None:
    at = page("study")
    assert not at.exception and not at.error
    metrics = frame(at, "metric", "noise floor ±").set_index("metric")
    assert list(metrics.index) == METRICS
    assert set(metrics["direction"]) == {"lower is better"}
    study = load_study(load_workspace(table_ws), "s1m")
    web = [t.user_attrs["benchmarks"]["metric/web_val_loss"] for t in study.trials]
    assert metrics.loc["web_val_loss", "best"] == pytest.approx(min(web))
    assert metrics.loc["web_val_loss", "runs"] == 12 and metrics.loc["web_val_loss", "noise floor ±"] > 0
    runs = frame(at, "run", "trial")
    assert sorted(runs["run"], key=int) == [str(i) for i in range(1, 13)]
    assert runs.set_index("run").loc["1", "web_val_loss"] == pytest.approx(2.84471)  # raw, as the table wrote it
    assert at.selectbox(key="px").value == "d:web_val_loss"
    charts = [c for c in at.get("plotly_chart")]
    assert charts and "negated if lower is better" in charts[0].proto.spec
    assert len(no_checkpoint_sentences(at)) == 1
    assert not [b for b in at.button if b.key in WRITES]
    at.button(key="export_report").click().run()  # the HTML report needs no checkpoints
    assert not at.exception and (table_ws / "reports" / "s1m.html").is_file()


def test_study_page_directions_follow_higher_is_better(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "tables" / "olmix"
    import_runs(ws, OLMIX / "ratios.csv", OLMIX / "metrics.csv", study="swarm",
                objectives="code=mbpp:3shot::none,qa=arc_easy:rc::olmes+minerva_math_algebra::olmes",
                higher_is_better=["arc_easy:rc::olmes"])
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(ws.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(ws))
    at = page("study")
    assert not at.exception
    metrics = frame(at, "metric", "noise floor ±").set_index("metric")
    assert metrics["direction"].to_dict() == {"arc_easy:rc::olmes": "higher is better",
                                              "mbpp:3shot::none": "lower is better",
                                              "minerva_math_algebra::olmes": "lower is better"}
    assert metrics.loc["arc_easy:rc::olmes", "objective"] == "qa"
    at = page("mixer")
    assert not at.exception
    shown = frame(at, "metric", "±").set_index("metric")
    assert shown.loc["arc_easy:rc::olmes", "direction"] == "higher is better"
    assert shown.loc["qa", "direction"].startswith("higher is better (mean")  # a family objective, oriented


def test_mixer_predicts_with_fit_labels_and_follows_the_sliders(table_ws: Path) -> None:
    at = page("mixer")
    assert not at.exception and not at.error
    assert not [s for s in at.selectbox if s.key == "method"]  # nothing to merge
    assert not [b for b in at.button if b.key in WRITES]
    fit = TableFit.fit(load_study(load_workspace(table_ws), "s1m"))

    def check() -> dict[str, float]:
        weights = {n: at.slider(key=f"w_{n}").value for n in DOMAINS}
        table = frame(at, "metric", "±").set_index("metric")
        assert list(table.index) == METRICS
        want = fit.predict(weights)
        for m in METRICS:
            row = table.loc[m]
            assert row["predicted"] == pytest.approx(want[f"metric/{m}"], abs=1e-12)
            assert row["±"] == pytest.approx(fit.predictor.error[f"metric/{m}"], abs=1e-12)
            assert row["out-of-fold Spearman"] == pytest.approx(fit.predictor.spearman[f"metric/{m}"])
            assert row["fit"] == fit_label(row["out-of-fold Spearman"])
            assert row["direction"] == "lower is better"
        return table["predicted"].to_dict()

    before = check()
    at.slider(key="w_train_web").set_value(0.7).run()
    assert not at.exception
    assert at.slider(key="w_train_web").value == pytest.approx(0.7)
    assert sum(at.slider(key=f"w_{n}").value for n in DOMAINS) == pytest.approx(1.0, abs=1e-9)
    after = check()
    assert after != before
    assert 0 <= at.session_state["_mixer_times"]["predicted_s"] <= 0.2  # slider move -> prediction, server side
    [measured] = [t for t in texts(at) if "nothing is measured here" in t]
    assert "has no checkpoints" in measured
    near = frame(at, "distance", "run")
    assert len(near) == 5 and near["distance"].is_monotonic_increasing and set(METRICS) <= set(near.columns)
    assert [c for c in at.get("plotly_chart")]  # the study's front with this mixture marked
    assert any(b.proto.label.startswith("Download for") for b in at.get("download_button"))


def test_mixer_export_takes_the_budget_and_the_paths(table_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from demix_core.cli import main

    assert main(["budget", "--workspace", str(table_ws), "--target-tokens", "5000000000"]) == 0
    at = page("mixer", mixture="train_web=0.4,train_code=0.3,train_math=0.2,train_books=0.1")
    assert not at.exception
    assert at.number_input(key="mix_export_target").value == 5_000_000_000
    at.selectbox(key="mix_export_fmt").set_value("demix").run()
    at.text_area(key="mix_export_paths").set_value(
        "\n".join(f"{d}=/data/{d}" for d in DOMAINS)).run()
    [download] = [b for b in at.get("download_button") if b.proto.label == "Download for demix"]
    assert not at.exception and download
    at.text_area(key="mix_export_paths").set_value("train_web /data/web").run()
    assert any("not name=value" in w.value for w in at.warning)  # one line, no traceback


def test_mixer_without_enough_runs_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "tables" / "few"
    mix = "id,a,b\n" + "".join(f"r{i},{w:.2f},{1 - w:.2f}\n" for i, w in enumerate((0.1, 0.5, 0.9)))
    (tmp_path / "few.csv").write_text(mix)
    (tmp_path / "sco.csv").write_text("id,loss\nr0,1.0\nr1,2.0\nr2,3.0\n")
    import_runs(ws, tmp_path / "few.csv", tmp_path / "sco.csv", study="few", key="id")
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(ws.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(ws))
    at = page("mixer")
    assert not at.exception
    assert any("too few to fit a predictor" in i.value for i in at.info)
    at = page("recommend")
    at.button(key="run_rec").click().run()
    assert not at.exception and any("too few" in w.value for w in at.warning)


def test_recommend_page_gives_fit_per_target_and_the_noise_floor(table_ws: Path) -> None:
    at = page("recommend")
    at.number_input(key="samples").set_value(5000).run()
    at.button(key="run_rec").click().run()
    assert not at.exception and not at.error
    mix = frame(at, "component", "weight")
    assert list(mix["component"]) == DOMAINS and mix["weight"].sum() == pytest.approx(1.0)
    table = frame(at, "metric", "fit").set_index("metric")
    fit = TableFit.fit(load_study(load_workspace(table_ws), "s1m"))
    assert list(table.index) == METRICS and set(table["direction"]) == {"lower is better"}
    for m in METRICS:  # the recommendation's fit is the Mixer's: same runs, same seed
        assert table.loc[m, "out-of-fold Spearman"] == pytest.approx(fit.predictor.spearman[f"metric/{m}"])
        assert table.loc[m, "fit"] == fit_label(table.loc[m, "out-of-fold Spearman"])
        assert table.loc[m, "predicted"] > 0  # as the table writes it: a loss, not its negation
    assert any("Noise floor from 2 mixtures run more than once" in i.value for i in at.info)
    assert [c for c in at.get("plotly_chart")]  # the out-of-fold fit of one metric
    assert any(b.proto.label.startswith("Download for") for b in at.get("download_button"))
    assert not [b for b in at.button if b.key in WRITES]
    assert len(no_checkpoint_sentences(at)) == 1


def test_validate_page_ranks_the_references(table_ws: Path) -> None:
    at = page("validate")
    assert not at.exception and not at.error
    want = validate_table(load_workspace(table_ws), log=lambda s: None).to_json()
    assert any(want["verdict"][:20] in m.value.replace("\\", "") for m in at.markdown)
    summary = frame(at, "regression on s1m")
    assert list(summary.columns) == ["regression on s1m", "null: domain weight"]
    for m in METRICS:
        rho = want["methods"][0]["rho"][m]
        pair = want["pairwise"]["regression on s1m"][m]
        assert summary.loc[f"rho {m}", "regression on s1m"] == Figure(rho["value"], rho["low"], rho["high"]).text()
        assert summary.loc[f"pairwise accuracy {m}", "regression on s1m"] == Figure(
            pair["value"], pair["low"], pair["high"]).text()
    assert {"macro rho", "macro pairwise accuracy"} <= set(summary.index)
    assert any("Fit on s1m (12 runs" in c.value for c in at.caption)
    assert len([c for c in at.get("plotly_chart")]) == 2 * len(METRICS)  # each method, each metric
    assert not (table_ws / "validation").exists()  # shown, not written


def test_validate_page_needs_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = regmix_workspace(tmp_path / "tables" / "norefs", references=False)
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(ws.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(ws))
    at = page("validate")
    assert not at.exception
    assert any("needs at least 3" in i.value and "--references" in i.value for i in at.info)


def test_a_viewer_sees_every_page_and_writes_nothing(table_ws: Path) -> None:
    before = sorted(p for p in table_ws.rglob("*"))
    for name in ("workspace", "study", "mixer", "recommend", "validate"):
        at = AppTest.from_file(f"{PAGES}/{name}.py", default_timeout=TIMEOUT)
        at.session_state[ROLE_KEY] = "view"
        at.run()
        if name == "recommend":
            at.button(key="run_rec").click().run()
        assert not at.exception and not at.error, name
        assert not [b for b in at.button if b.key in WRITES | {"export_report"}], name
    assert sorted(p for p in table_ws.rglob("*")) == before


def test_front_point_opens_the_run_in_the_mixer(table_ws: Path) -> None:
    study = load_study(load_workspace(table_ws), "s1m")
    run = next(t for t in study.trials if t.user_attrs["run"] == "4")
    mixture = ",".join(f"{d}={run.user_attrs['mixture'][d]:.4f}" for d in DOMAINS)
    at = page("mixer", study="s1m", mixture=mixture, trial=str(run.number))
    assert not at.exception
    weights = np.array([at.slider(key=f"w_{d}").value for d in DOMAINS])
    assert weights == pytest.approx([run.user_attrs["mixture"][d] for d in DOMAINS], abs=1e-4)
    assert frame(at, "distance", "run")["run"].iloc[0] == "4"


def test_table_fit_is_the_recommendation_fit(table_ws: Path) -> None:
    from demix_core.search.recommend import recommend_for_study

    ws = load_workspace(table_ws)
    study = load_study(ws, "s1m")
    fit = TableFit.fit(study)
    rec = recommend_for_study(ws, study, samples=500)
    for t in fit.targets:  # same runs, folds and seed: the Mixer's labels are the recommendation's
        assert fit.predictor.spearman[t.key] == pytest.approx(rec.spearman[t.key], abs=1e-12)
        held, measured = fit.held_out(t.key)
        assert len(held) == fit.runs == 12
        assert t.error == pytest.approx(float(np.sqrt(np.mean((held - measured) ** 2))))
    at = fit.predict(dict(zip(DOMAINS, [0.4, 0.3, 0.2, 0.1])))
    for m in METRICS:  # a one-metric objective is its metric's prediction, oriented (lower is better: negated)
        assert at[m] == pytest.approx(-at[f"metric/{m}"])
