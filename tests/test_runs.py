"""Your past runs (issue 25): tables in RegMix's and Olmix's published layouts, and plain ones, become a table
workspace and a study; importing again adds nothing; --references and `demix validate` rank the larger runs with
the study's predictor; `demix recommend` gives per-target fit quality and the noise floor.

The fixtures (tests/fixtures/runs/) are small tables written for these tests: RegMix's shape (index,train_<domain>
/ index,metric/<name>_val_loss; 12 runs at "1M", runs 11 and 12 repeating the mixtures of runs 1 and 2, and 6
references at "1B"; the books domain has no metric of its own) and Olmix's (an unnamed first column, then
run,name,index; 10 runs, metrics named like arc_easy:rc::olmes).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from demix_core.cli import main
from demix_core.errors import WorkspaceError
from demix_core.mixing.mixture import mixture_from_params
from demix_core.runs.noise import noise_floor
from demix_core.search.study import load_study
from demix_core.search.trials import trials_frame
from demix_core.validation.regression import pairwise_accuracy
from demix_core.workspace.manifest import load_workspace

FIXTURES = Path(__file__).parent / "fixtures" / "runs"
REGMIX = FIXTURES / "regmix"
OLMIX = FIXTURES / "olmix"
METRICS = ["web_val_loss", "code_val_loss", "math_val_loss"]
DOMAINS = ["train_web", "train_code", "train_math", "train_books"]


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def import_regmix(ws: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    return run_json(capsys, ["import-runs", "--workspace", str(ws), "--study", "s1m",
                             "--mixtures", str(REGMIX / "train_mixture_1m.csv"),
                             "--scores", str(REGMIX / "train_pile_loss_1m.csv"), *extra])


def import_references(ws: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    return run_json(capsys, ["import-runs", "--workspace", str(ws), "--references",
                             "--mixtures", str(REGMIX / "test_mixture_1B.csv"),
                             "--scores", str(REGMIX / "test_pile_loss_1B.csv")])


@pytest.fixture()
def regmix_ws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    ws = tmp_path / "regmix"
    import_regmix(ws, capsys)
    return ws


def test_regmix_layout_becomes_a_table_workspace_and_a_study(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "regmix"
    out = import_regmix(ws, capsys)
    assert out["layout"] == "regmix" and out["key"] == "index" and out["study"] == "s1m"
    assert out["created"] == ["workspace", "study"]
    assert out["domains"] == DOMAINS
    assert out["metrics"] == METRICS  # the metric/ prefix dropped
    assert out["runs"] == 12 and out["imported"] == [str(i) for i in range(1, 13)]
    assert out["skipped"] == [] and out["already_imported"] == []
    assert set(out["objectives"]) == set(METRICS)  # 3 metrics <= 8: every one
    assert all(v == {k: "lower"} for k, v in out["objectives"].items())
    # weights written with 3 decimals over 4 domains may sum to 1 +- 0.002: renormalised and said
    assert out["sum_tolerance"] == pytest.approx(0.002)
    assert {r["run"] for r in out["renormalised"]} >= {"2", "3"}
    # runs 11 and 12 repeat the mixtures of runs 1 and 2: the noise floor
    assert out["noise"]["mixtures"] == 2 and out["noise"]["runs"] == 4
    assert set(out["noise"]["spread"]) == set(METRICS)

    w = load_workspace(ws)
    assert w.is_table and w.component_names == tuple(DOMAINS) and not w.datasets and w.base is None
    study = load_study(w, "s1m")
    assert study.metric_names == METRICS and all(d.name == "MAXIMIZE" for d in study.directions)
    frame = trials_frame(study)
    assert len(frame) == 12 and set(frame["state"]) == {"COMPLETE"}
    assert np.allclose(frame[[f"w:{d}" for d in DOMAINS]].sum(axis=1), 1.0)
    first = next(t for t in study.trials if t.user_attrs["run"] == "1")
    assert first.user_attrs["benchmarks"]["metric/web_val_loss"] == pytest.approx(2.84471)  # raw, as written
    assert first.values[0] == pytest.approx(-2.84471)  # oriented: lower is better, so negated
    back = mixture_from_params(DOMAINS, first.params)  # the trial's parameters map to its mixture, as any trial's
    assert np.allclose(back.weights, [first.user_attrs["mixture"][d] for d in DOMAINS])


def test_importing_the_same_table_again_adds_nothing(regmix_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = (regmix_ws / "demix.yaml").read_text()
    again = import_regmix(regmix_ws, capsys)
    assert again["runs"] == 0 and again["created"] == []
    assert again["already_imported"] == [str(i) for i in range(1, 13)]
    assert len(load_study(load_workspace(regmix_ws), "s1m").trials) == 12
    assert (regmix_ws / "demix.yaml").read_text() == manifest


def test_olmix_layout_with_families(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "olmix"
    out = run_json(capsys, ["import-runs", "--workspace", str(ws), "--study", "swarm",
                            "--mixtures", str(OLMIX / "ratios.csv"), "--scores", str(OLMIX / "metrics.csv"),
                            "--objectives", "code=mbpp:3shot::none,qa=arc_easy:rc::olmes+minerva_math_algebra::olmes",
                            "--higher-is-better", "arc_easy:rc::olmes"])
    assert out["layout"] == "olmix" and out["key"] == "run" and out["runs"] == 10
    assert out["domains"] == ["adult_content", "software_development", "science_math_and_technology"]
    assert out["metrics"] == ["arc_easy:rc::olmes", "mbpp:3shot::none", "minerva_math_algebra::olmes"]
    assert out["objectives"] == {"code": {"mbpp:3shot::none": "lower"},
                                 "qa": {"arc_easy:rc::olmes": "higher", "minerva_math_algebra::olmes": "lower"}}
    assert out["noise"]["mixtures"] == 0 and out["noise"]["spread"] == {}
    study = load_study(load_workspace(ws), "swarm")
    t = next(t for t in study.trials if t.user_attrs["run"] == "dclm-swarm-0000")
    assert study.metric_names == ["code", "qa"]
    assert t.values[0] == pytest.approx(-1.077169)
    assert t.values[1] == pytest.approx((1.145082 - 1.353239) / 2)  # the family's mean, each metric oriented


def test_plain_tables_with_a_key_and_one_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [(f"r{i}", w, 1 - w, 2.0 - w, 0.3 + 0.4 * w) for i, w in enumerate(np.linspace(0.05, 0.95, 9))]
    (tmp_path / "mix.csv").write_text("id,a,b\n" + "".join(f"{r},{a:.4f},{b:.4f}\n" for r, a, b, _, _ in rows))
    (tmp_path / "sco.csv").write_text("id,loss,acc\n" + "".join(f"{r},{x:.4f},{y:.4f}\n" for r, _, _, x, y in rows))
    two = run_json(capsys, ["import-runs", "--workspace", str(tmp_path / "two"), "--study", "p", "--key", "id",
                            "--mixtures", str(tmp_path / "mix.csv"), "--scores", str(tmp_path / "sco.csv"),
                            "--higher-is-better", "acc"])
    assert two["layout"] == "plain" and two["domains"] == ["a", "b"] and two["metrics"] == ["loss", "acc"]
    assert two["objectives"] == {"loss": {"loss": "lower"}, "acc": {"acc": "higher"}}
    (tmp_path / "one.csv").write_text("id,a,b,loss,acc\n" + "".join(
        f"{r},{a:.4f},{b:.4f},{x:.4f},{y:.4f}\n" for r, a, b, x, y in rows))
    one = run_json(capsys, ["import-runs", "--workspace", str(tmp_path / "one"), "--study", "p", "--key", "id",
                            "--mixtures", str(tmp_path / "one.csv"), "--objectives", "loss,acc",
                            "--higher-is-better", "acc"])
    assert one["domains"] == ["a", "b"] and one["metrics"] == ["loss", "acc"] and one["runs"] == 9


def test_a_table_workspace_has_no_checkpoints(regmix_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = load_workspace(regmix_ws)
    with pytest.raises(WorkspaceError, match="table of past runs and has no checkpoints"):
        ws.component_paths()
    for argv in (["merge", "--workspace", str(regmix_ws), "--weights", "0.25,0.25,0.25,0.25",
                  "--out", str(regmix_ws / "merged")],
                 ["study", "create", "--workspace", str(regmix_ws), "--study", "merged"],
                 ["worker", "--workspace", str(regmix_ws), "--study", "s1m"]):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "has no checkpoints" in err[0] and "demix import-runs" in err[0], err
    capsys.readouterr()
    assert main(["workspace", "--workspace", str(regmix_ws)]) == 0
    assert "table workspace" in capsys.readouterr().out


def test_table_manifest_errors(tmp_path: Path) -> None:
    (tmp_path / "demix.yaml").write_text("kind: tabel\ndomains: [a, b]\n")
    with pytest.raises(WorkspaceError, match="kind is 'tabel'"):
        load_workspace(tmp_path)
    (tmp_path / "demix.yaml").write_text("kind: table\n")
    with pytest.raises(WorkspaceError, match="needs 'domains'"):
        load_workspace(tmp_path)
    (tmp_path / "demix.yaml").write_text("kind: table\ndomains: [a]\ncomponents: [{name: a, path: a}]\n")
    with pytest.raises(WorkspaceError, match="has no components"):
        load_workspace(tmp_path)
    (tmp_path / "demix.yaml").write_text("kind: table\ndomains: [a, b]\nreferences:\n"
                                         "- {name: r, path: x.csv, mixture: {a: 1.0}}\n")
    with pytest.raises(WorkspaceError, match=r"references\[0\] lacks 'scores'"):
        load_workspace(tmp_path)


def test_references_and_validate(regmix_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refs = import_references(regmix_ws, capsys)
    assert refs["references"] is True and refs["runs"] == 6 and refs["study"] is None
    ws = load_workspace(regmix_ws)
    assert [r.name for r in ws.references] == [str(i) for i in range(6)]
    assert ws.references[0].scores == {"web_val_loss": 1.589867, "code_val_loss": 1.541994, "math_val_loss": 1.903984}
    assert import_references(regmix_ws, capsys)["already_imported"] == [str(i) for i in range(6)]

    out = run_json(capsys, ["validate", "--workspace", str(regmix_ws)])
    assert out["kind"] == "table" and out["domains"] == METRICS and out["suite"] == "table"
    names = [m["name"] for m in out["methods"]]
    assert names == ["regression on s1m", "null: domain weight"]  # every metric has its domain: the null joins
    for method in out["methods"]:
        for m in METRICS:
            fig = method["rho"][m]
            assert -1 <= fig["value"] <= 1 and fig["low"] <= fig["value"] <= fig["high"]
    for m in METRICS:
        fig = out["pairwise"]["regression on s1m"][m]
        assert 0.5 < fig["value"] <= 1 and fig["low"] <= fig["value"] <= fig["high"]
    assert out["fits"]["s1m"]["runs"] == 12 and set(out["fits"]["s1m"]["spearman"]) == set(METRICS)
    assert out["verdict"].startswith("Verdict: ") and "regression on s1m" in out["verdict"]
    assert (regmix_ws / "validation" / "table.json").exists()
    capsys.readouterr()
    assert main(["validate", "--workspace", str(regmix_ws), "--no-record"]) == 0
    text = capsys.readouterr().out
    assert "pairwise web_val_loss" in text and "macro pairwise accuracy" in text and "Verdict:" in text
    # a second study: each is a proxy, and the verdict says which one to trust
    run_json(capsys, ["import-runs", "--workspace", str(regmix_ws), "--study", "web", "--objectives", "web_val_loss",
                      "--mixtures", str(REGMIX / "train_mixture_1m.csv"),
                      "--scores", str(REGMIX / "train_pile_loss_1m.csv")])
    both = run_json(capsys, ["validate", "--workspace", str(regmix_ws), "--no-record"])
    assert [m["name"] for m in both["methods"]] == ["regression on s1m", "regression on web", "null: domain weight"]
    assert both["verdict"].startswith("Verdict: trust the ") and both["pick"]["proxy"] in ("s1m", "web")
    one = run_json(capsys, ["validate", "--workspace", str(regmix_ws), "--no-record", "--study", "web"])
    assert [m["name"] for m in one["methods"]] == ["regression on web", "null: domain weight"]


def test_validate_needs_references(regmix_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["validate", "--workspace", str(regmix_ws)]) == 2
    err = capsys.readouterr().err
    assert "has 0 references" in err and "--references" in err


def test_recommend_on_a_table_workspace(regmix_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, ["recommend", "--workspace", str(regmix_ws), "--study", "s1m", "--samples", "500"])
    assert set(out["mixture"]) == set(DOMAINS) and math.isclose(sum(out["mixture"].values()), 1.0)
    table = out["table"]
    assert set(table["predicted_raw"]) == set(METRICS) and all(v > 0 for v in table["predicted_raw"].values())
    for m in METRICS:
        fit = table["fit"][m]
        assert -1 <= fit["spearman"] <= 1 and fit["label"] in ("trust", "rough", "do not trust this one")
    assert table["noise"]["mixtures"] == 2 and set(table["gains"]) == set(METRICS)
    for g in table["gains"].values():
        assert g["reading"] in ("beyond", "within", "below") and g["floor"] > 0
    capsys.readouterr()
    assert main(["recommend", "--workspace", str(regmix_ws), "--study", "s1m", "--samples", "500"]) == 0
    text = capsys.readouterr().out
    assert "out-of-fold Spearman" in text and "(lower is better)" in text and "noise floor" in text
    assert main(["recommend", "--workspace", str(regmix_ws), "--study", "s1m", "--enqueue"]) == 2
    assert "no checkpoints" in capsys.readouterr().err


def test_noise_floor_is_the_pooled_spread_of_repeats() -> None:
    x = np.array([[0.5, 0.5], [0.5, 0.5], [0.2, 0.8], [0.2, 0.8], [0.2, 0.8], [1.0, 0.0]])
    y = {"m": np.array([1.0, 3.0, 2.0, 4.0, 6.0, 9.0]), "gap": np.array([1.0, np.nan, 2.0, np.nan, np.nan, 0.0])}
    floor = noise_floor(x, y)
    # squares about the means: (1 + 1) + (4 + 0 + 4) = 10 over (2 - 1) + (3 - 1) = 3 degrees of freedom
    assert floor.spread["m"] == pytest.approx(math.sqrt(10 / 3))
    assert "gap" not in floor.spread  # no mixture measured twice on it
    assert floor.mixtures == 2 and floor.runs == 5
    assert noise_floor(x[[0, 2, 5]], {"m": y["m"][[0, 2, 5]]}).spread == {}


def test_pairwise_accuracy_counts_ordered_pairs() -> None:
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    assert pairwise_accuracy(ref * 10, ref) == 1.0
    assert pairwise_accuracy(-ref, ref) == 0.0
    assert pairwise_accuracy(np.array([1.0, 3.0, 2.0, 4.0]), ref) == pytest.approx(5 / 6)
    assert pairwise_accuracy(np.ones(4), ref) == 0.5  # a constant proxy: every pair a tie, half right
    assert math.isnan(pairwise_accuracy(ref, np.ones(4)))
