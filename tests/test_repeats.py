"""Repeats of a mixture (references trained at other seeds): the reference set trains them at a training seed
(``train-references --train-seed S``, the demo's ``--seed S``), resumes by mixture and seed, and every listing of the
references (``demix workspace``, the Workspace page) shows one mixture per row with its repeats side by side."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from demix_core.cli import main
from demix_core.train.reference_set import reference_mixtures, train_reference_set
from demix_core.train.references import train_workspace_reference
from demix_core.train.trainer import read_training
from demix_core.workspace.manifest import ReferenceEntry, load_workspace
from demix_core.workspace.repeats import group_by_mixture

TINY = {"steps": 3, "batch": 2, "seq_len": 16}  # the recipe the sets below copy (from a first reference)


def _weights(folder: Path) -> dict:
    [file] = sorted(folder.glob("*.safetensors"))
    return load_file(str(file))


def _mtimes(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*.safetensors")}


def test_a_set_at_a_training_seed_trains_repeats_and_resumes_by_seed(tiny_workspace: Path, one_torch_thread) -> None:
    ws = load_workspace(tiny_workspace)
    train_workspace_reference(ws, "alpha=1", name="first", log=lambda s: None, **TINY)  # the recipe; never drawn
    ws = load_workspace(tiny_workspace)
    train_reference_set(ws, 1, log=lambda s: None, progress=False)  # seed 0: ref-00 and its trained proxy
    lines: list[str] = []
    entries = train_reference_set(ws, 2, train_seed=1, log=lines.append, progress=False)
    mixtures = reference_mixtures(ws, 2)  # the same draws as at seed 0
    assert [(e.name, e.seed, e.mixture) for e in entries] == [
        ("ref-00-s1", 1, mixtures[0].as_dict()), ("ref-01-s1", 1, mixtures[1].as_dict())]
    assert lines[0].startswith("references: 2 mixtures of the prior (seed 0, training seed 1; 0 already trained)")
    assert lines[0].endswith("no trained proxies (repeats need none: validation pairs each with its mixture's)")
    assert [line.split()[:2] for line in lines[1:]] == [["[1/2]", "ref-00-s1"], ["[2/2]", "ref-01-s1"]]
    saved = load_workspace(tiny_workspace).references
    assert [(r.name, r.kind, r.seed) for r in saved] == [
        ("first", "reference", None), ("ref-00", "reference", None), ("ref-00", "trained_proxy", None),
        ("ref-00-s1", "reference", 1), ("ref-01-s1", "reference", 1)]
    assert read_training(tiny_workspace / "references" / "ref-01-s1")["seed"] == 1
    # again at seed 1: everything is there, nothing trains
    before, lines = _mtimes(tiny_workspace), []
    again = train_reference_set(load_workspace(tiny_workspace), 2, train_seed=1, log=lines.append, progress=False)
    assert [e.name for e in again] == ["ref-00-s1", "ref-01-s1"] and "2 already trained" in lines[0]
    assert all(line.endswith(", already trained") for line in lines[1:])
    assert _mtimes(tiny_workspace) == before and len(load_workspace(tiny_workspace).references) == 5
    # at seed 0 a repeat is not the mixture's model: mixture 1 gets its own ref-01 (and trained proxy)
    zero = train_reference_set(load_workspace(tiny_workspace), 2, trained_proxies=False, log=lambda s: None,
                               progress=False)
    assert [(e.name, e.seed) for e in zero] == [("ref-00", None), ("ref-01", None)]
    # the same seed trains the same weights; seed 0 others
    ws = load_workspace(tiny_workspace)
    train_workspace_reference(ws, mixtures[0], name="again-s1", seed=1, log=lambda s: None)
    a, b, c = (_weights(tiny_workspace / "references" / n) for n in ("ref-00-s1", "again-s1", "ref-00"))
    assert all((a[k] == b[k]).all() for k in a) and any(not (a[k] == c[k]).all() for k in a)
    # the demo, writing its manifest again from its folders, keeps each model's seed (read from its training.json)
    from demix_core.train.demo import _existing_references

    found = {(r.name, r.kind, r.seed) for r in _existing_references(tiny_workspace)}
    assert found == {(r.name, r.kind, r.seed) for r in load_workspace(tiny_workspace).references}
    assert ("ref-01-s1", "reference", 1) in found and ("ref-01", "reference", None) in found


def test_a_bad_training_seed_is_one_line(tiny_workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["workspace", "train-references", str(tiny_workspace), "--count", "2", "--train-seed", "-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1
    assert err[0].startswith("error: argument --train-seed: -1 is not allowed: give 0 or more")
    assert main(["demo", "--workspace", str(tiny_workspace.parent / "demo"), "--seed", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seed 1 is the references' training seed: give --references N too" in err[0]
    assert not (tiny_workspace.parent / "demo").exists()


# Two mixtures with repeats (weights within 1e-6, a zero weight left out or written), one with a trained proxy only.
HALF, ONE, THIRD = {"alpha": 0.5, "beta": 0.5}, {"alpha": 1.0, "beta": 0.0}, {"alpha": 0.25, "beta": 0.75}
MODELS = [
    ReferenceEntry("a", "components/alpha", HALF),
    ReferenceEntry("b", "components/alpha", ONE),
    ReferenceEntry("a-s2", "components/alpha", {"alpha": 0.5000001, "beta": 0.4999999}, seed=2),
    ReferenceEntry("a", "components/alpha", HALF, kind="trained_proxy"),
    ReferenceEntry("a-s1", "components/alpha", HALF, seed=1),
    ReferenceEntry("b-mine", "components/alpha", {"alpha": 1.0}),
    ReferenceEntry("c", "components/alpha", THIRD, kind="trained_proxy"),
]


def test_models_group_by_mixture_with_their_repeats_in_seed_order() -> None:
    groups = group_by_mixture(MODELS)
    assert [(g.mixture, g.names, g.seeds, [t.name for t in g.trained_proxies]) for g in groups] == [
        (HALF, ["a", "a-s1", "a-s2"], [0, 1, 2], ["a"]),
        (ONE, ["b", "b-mine"], [0, 0], []),
        (THIRD, [], [], ["c"])]
    assert group_by_mixture([]) == []


def test_the_workspace_command_lists_mixtures_with_their_repeats(tiny_workspace: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    ws = load_workspace(tiny_workspace)
    ws.references = list(MODELS)
    ws.save()
    assert main(["workspace", "--workspace", str(tiny_workspace)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("  5 reference model(s) of 2 mixture(s) (+ 2 trained proxies); base ") for line in out)
    assert [line for line in out if line.startswith("  mixture ")] == [
        "  mixture alpha=0.50 beta=0.50  seeds 0, 1, 2: a, a-s1, a-s2; trained proxy a",
        "  mixture alpha=1.00            seeds 0, 0: b, b-mine",
        "  mixture alpha=0.25 beta=0.75  no reference; trained proxy c"]


def test_the_workspace_page_shows_one_row_per_mixture(tiny_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app_test = pytest.importorskip("streamlit.testing.v1").AppTest
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(tiny_workspace.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(tiny_workspace))
    page = str(Path(__file__).resolve().parent.parent / "pages" / "workspace.py")
    at = app_test.from_file(page, default_timeout=120).run()
    assert not at.exception and any(c.value.startswith("None yet: the Validate page trains them") for c in at.caption)
    ws = load_workspace(tiny_workspace)
    ws.references = list(MODELS)
    ws.save()
    at = app_test.from_file(page, default_timeout=120).run()
    assert not at.exception
    table = at.dataframe[1].value
    assert list(table.columns) == ["references", "seeds", "alpha weight", "beta weight", "gamma weight",
                                   "trained proxy"]
    assert table.to_dict("records") == [
        {"references": "a, a-s1, a-s2", "seeds": "0, 1, 2", "alpha weight": 0.5, "beta weight": 0.5,
         "gamma weight": 0.0, "trained proxy": "a"},
        {"references": "b, b-mine", "seeds": "0, 0", "alpha weight": 1.0, "beta weight": 0.0, "gamma weight": 0.0,
         "trained proxy": ""},
        {"references": "", "seeds": "", "alpha weight": 0.25, "beta weight": 0.75, "gamma weight": 0.0,
         "trained proxy": "c"}]
