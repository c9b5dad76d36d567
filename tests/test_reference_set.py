"""A set of references for any workspace (`demix workspace train-references`): the demo's mixtures as they always
were, names, resuming, skipping what is trained, the same seed giving the same mixtures, and the command's errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from demix_core.cli import main
from demix_core.train.reference_set import reference_mixtures, train_reference_set
from demix_core.train.references import train_workspace_reference
from demix_core.train.trainer import read_training
from demix_core.workspace.manifest import ComponentEntry, DatasetEntry, ReferenceEntry, Workspace, load_workspace

TINY = {"steps": 3, "batch": 2, "seq_len": 16}  # the recipe the sets below copy (from a first reference)

# The demo's datasets and their token counts (the full demo's tokenizer on its corpora), and the first 16 mixtures
# the demo drew for them before the reference set was its own module (demix_core/train/demo.py at ed376aa:
# DirichletPrior(temperature 2, caps 0.7, grid 0.05), distinct_draws(..., seed=DemoSettings.seed + 1)).
DEMO_TOKENS = {"prose": 2888399, "code": 1623150, "docs": 1439588, "formal": 3367122, "math": 1516672}
DEMO_MIXTURES = [
    [0.45, 0.05, 0.1, 0.15, 0.25], [0.35, 0.1, 0.1, 0.4, 0.05], [0.15, 0.1, 0.6, 0.15, 0.0],
    [0.5, 0.15, 0.05, 0.1, 0.2], [0.15, 0.1, 0.2, 0.3, 0.25], [0.45, 0.0, 0.5, 0.05, 0.0],
    [0.1, 0.15, 0.45, 0.05, 0.25], [0.1, 0.0, 0.65, 0.2, 0.05], [0.05, 0.05, 0.1, 0.7, 0.1],
    [0.3, 0.2, 0.3, 0.05, 0.15], [0.35, 0.15, 0.05, 0.35, 0.1], [0.3, 0.05, 0.15, 0.3, 0.2],
    [0.25, 0.0, 0.05, 0.1, 0.6], [0.1, 0.15, 0.65, 0.1, 0.0], [0.1, 0.1, 0.15, 0.4, 0.25],
    [0.3, 0.05, 0.35, 0.2, 0.1],
]


def test_the_demo_draws_the_mixtures_it_always_drew(tmp_path: Path) -> None:
    ws = Workspace(root=tmp_path, name="demo",
                   components=[ComponentEntry(name=n, path=f"components/{n}", dataset=n, tokens=t)
                               for n, t in DEMO_TOKENS.items()],
                   datasets=[DatasetEntry(name=n, domain="general", tokens=t) for n, t in DEMO_TOKENS.items()])
    got = reference_mixtures(ws, 16)  # seed 0: the demo's
    assert [list(m.weights) for m in got] == DEMO_MIXTURES  # exactly: the weights the old code trained on
    assert [list(m.weights) for m in reference_mixtures(ws, 4)] == DEMO_MIXTURES[:4]  # a prefix of a longer set
    assert [list(m.weights) for m in reference_mixtures(ws, 4, seed=1)] != DEMO_MIXTURES[:4]
    ws.datasets = []  # the components' own token counts are the fallback
    assert [list(m.weights) for m in reference_mixtures(ws, 3)] == DEMO_MIXTURES[:3]


def test_a_prior_too_small_for_the_count_says_so(tmp_path: Path) -> None:
    from demix_core.errors import DemixError, WorkspaceError

    two = Workspace(root=tmp_path, name="two", components=[ComponentEntry(name=n, path=n, tokens=10) for n in "ab"])
    firsts = sorted(m.weights[0] for m in reference_mixtures(two, 9))  # 0.30 ... 0.70 on a 0.05 grid: 9 mixtures
    assert firsts == pytest.approx([0.3 + 0.05 * i for i in range(9)])
    with pytest.raises(DemixError, match=r"gave only 9 distinct mixtures of 10 asked \(2 components on a 0.05 grid\)"):
        reference_mixtures(two, 10)
    two.components = two.components[:1]
    with pytest.raises(WorkspaceError, match="at least 2 components to mix, got 1"):
        reference_mixtures(two, 1)


def _with_recipe(root: Path, name: str = "first", mixture: str = "alpha=1") -> Workspace:
    """The tiny workspace with one reference trained at tiny sizes: the recipe every later one copies."""
    ws = load_workspace(root)
    train_workspace_reference(ws, mixture, name=name, log=lambda s: None, **TINY)
    return load_workspace(root)


def test_a_set_trains_names_and_continues(tiny_workspace: Path, one_torch_thread,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    ws = _with_recipe(tiny_workspace)
    lines: list[str] = []
    entries = train_reference_set(ws, 2, log=lines.append, progress=False)
    mixtures = reference_mixtures(ws, 3)
    assert [e.name for e in entries] == ["ref-00", "ref-01"]
    assert [e.mixture for e in entries] == [m.as_dict() for m in mixtures[:2]]
    saved = load_workspace(tiny_workspace).references
    assert [(r.name, r.kind, r.path) for r in saved] == [
        ("first", "reference", "references/first"),
        ("ref-00", "reference", "references/ref-00"), ("ref-00", "trained_proxy", "trained_proxies/ref-00"),
        ("ref-01", "reference", "references/ref-01"), ("ref-01", "trained_proxy", "trained_proxies/ref-01")]
    assert read_training(tiny_workspace / "references" / "ref-00")["steps"] == 3  # the workspace's recipe
    proxy = read_training(tiny_workspace / "trained_proxies" / "ref-01")
    assert proxy["kind"] == "trained_proxy" and proxy["steps"] == 1  # 3 components x 3 steps / 112, at least 1
    assert len(lines) == 3 and lines[0].startswith("references: 2 mixtures of the prior (seed 0; 0 already trained)")
    for i, line in enumerate(lines[1:]):
        assert line.startswith(f"[{i + 1}/2] ref-0{i} {mixtures[i].label(2)}  drift ") and ", trained in " in line
    model = tiny_workspace / "references" / "ref-00" / "model.safetensors"
    before = model.stat().st_mtime_ns
    # three, from the command: the first two are skipped, only the third trains
    assert main(["workspace", "train-references", str(tiny_workspace), "--count", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    sets = [line for line in out if line.startswith("[")]
    assert [line.split()[0:2] for line in sets] == [["[1/3]", "ref-00"], ["[2/3]", "ref-01"], ["[3/3]", "ref-02"]]
    assert sets[0].endswith(", already trained") and sets[1].endswith(", already trained")
    assert ", trained in " in sets[2] and any(line.startswith("  ref-02 step 3/3 loss") for line in out)
    assert "(seed 0; 2 already trained)" in out[0] and out[-1].startswith("3 references of the set in ")
    assert model.stat().st_mtime_ns == before
    final = load_workspace(tiny_workspace)
    assert [r.name for r in final.references if r.kind == "reference"] == ["first", "ref-00", "ref-01", "ref-02"]
    assert final.references[-1].mixture == mixtures[2].as_dict()


def test_a_mixture_already_present_is_skipped_and_taken_names_are_passed(tiny_workspace: Path,
                                                                        one_torch_thread) -> None:
    ws = _with_recipe(tiny_workspace, name="ref-00")  # ref-00 holds alpha=1, which the prior never draws (cap 0.7)
    mixtures = reference_mixtures(ws, 2)
    ws.references.append(ReferenceEntry(name="mine", path=ws.components[0].path, mixture=mixtures[1].as_dict()))
    ws.save()
    entries = train_reference_set(ws, 2, trained_proxies=False, log=lambda s: None, progress=False)
    assert [e.name for e in entries] == ["ref-01", "mine"]
    assert [e.mixture for e in entries] == [m.as_dict() for m in mixtures]
    assert sorted(p.name for p in (tiny_workspace / "references").iterdir()) == ["ref-00", "ref-01"]
    assert not (tiny_workspace / "trained_proxies").exists()
    again = train_reference_set(load_workspace(tiny_workspace), 2, trained_proxies=False, log=lambda s: None)
    assert [e.name for e in again] == ["ref-01", "mine"]  # the same seed, the same mixtures: nothing new
    assert len(load_workspace(tiny_workspace).references) == 3


def test_the_command_says_what_is_wrong_in_one_line(tiny_workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad, said in ((["--count", "0"], "argument --count: 0 is not allowed: give 1 or more"),
                      (["--count", "two"], "argument --count: 'two' is not a whole number"),
                      (["--count", "2", "--seed", "-1"], "argument --seed: -1 is not allowed: give 0 or more"),
                      ([], "the following arguments are required: --count")):
        with pytest.raises(SystemExit) as exit_:
            main(["workspace", "train-references", str(tiny_workspace), *bad])
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith(f"error: {said}"), bad
    assert main(["workspace", "train-references", str(tiny_workspace), "--count", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "records its training settings" in err[0]
    ws = load_workspace(tiny_workspace)
    ws.datasets = []
    ws.save()
    assert main(["workspace", "train-references", str(tiny_workspace), "--count", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no datasets" in err[0]
    assert not (tiny_workspace / "references").exists()
