"""Studies take the manifest's ``defaults``; studies over the user's lm-eval tasks run end to end."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from demix_core.cli import main
from demix_core.errors import WorkspaceError
from demix_core.search.study import create_study, load_study
from demix_core.workspace.manifest import load_workspace

WORDS = "the cat sat on a mat while dogs ran past green hills under grey skies".split()


def _with_defaults(ws: Path, text: str) -> Path:
    manifest = ws / "demix.yaml"
    manifest.write_text(manifest.read_text() + text)
    return ws


def test_new_studies_take_the_manifest_defaults(tiny_workspace: Path) -> None:
    ws = load_workspace(_with_defaults(tiny_workspace, "defaults:\n  sampler: random\n  seed: 5\n"))
    attrs = create_study(ws, "d").user_attrs
    assert (attrs["sampler"], attrs["seed"], attrs["method"]) == ("random", 5, "linear")
    assert create_study(ws, "e", sampler="tpe", seed=1).user_attrs["sampler"] == "tpe"  # arguments win


@pytest.mark.parametrize(("text", "fragment"), [
    ("defaults:\n  samplr: tpe\n", "unknown setting 'samplr'"),
    ("defaults:\n  seed: '3'\n", "defaults.seed is '3'"),
])
def test_bad_defaults_are_refused_on_load(tiny_workspace: Path, text: str, fragment: str) -> None:
    with pytest.raises(WorkspaceError, match=fragment):
        load_workspace(_with_defaults(tiny_workspace, text))


def _tasks(folder: Path) -> Path:
    """Two user tasks: one with ``metadata.domain``, one without (its domain is its name)."""
    folder.mkdir()
    r = random.Random(0)
    rows = [{"text": " ".join(r.choice(WORDS) for _ in range(12))} for _ in range(6)]
    data = folder / "text.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    body = (f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {json.dumps(str(data))}\n"
            "test_split: test\noutput_type: loglikelihood_rolling\ndoc_to_text: \"\"\n"
            "doc_to_target: \"{{text}}\"\nmetric_list:\n  - metric: bits_per_byte\n")
    (folder / "prose.yaml").write_text("task: prose\n" + body + "metadata:\n  domain: writing\n")
    (folder / "notes.yaml").write_text("task: notes\n" + body)
    return folder


def test_a_study_over_user_tasks_is_created_and_worked(tiny_workspace: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    tasks = _tasks(tmp_path / "tasks")
    common = ["--workspace", str(tiny_workspace), "--study", "t"]
    code = main(["study", "create", *common, "--tasks", "prose,notes", "--include-path", str(tasks),
                 "--sampler", "random"])
    out = capsys.readouterr().out
    assert code == 0 and "objectives writing, notes" in out and "tasks prose,notes" in out
    assert main(["worker", *common, "--n-trials", "2", "--device", "cpu"]) == 0
    study = load_study(load_workspace(tiny_workspace), "t")
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 2 and study.metric_names == ["writing", "notes"]
    benchmarks = " ".join(done[0].user_attrs["benchmarks"])
    assert "prose" in benchmarks and "notes" in benchmarks
    assert main(["worker", *common, "--n-trials", "3", "--suite", "quick"]) == 2
    assert "scores with tasks 'prose,notes', not 'quick'" in capsys.readouterr().err


def test_unknown_study_error_gets_the_create_command_in_the_cli(tiny_workspace: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    create_study(load_workspace(tiny_workspace), "e")
    with pytest.raises(Exception, match=r"create the study first$"):
        load_study(load_workspace(tiny_workspace), "nope")
    assert main(["study", "status", "--workspace", str(tiny_workspace), "--study", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"`demix study create --workspace {tiny_workspace}" in err


def test_workspace_command_shows_the_manifest_and_study_defaults(tiny_workspace: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _with_defaults(tiny_workspace, "defaults:\n  method: ties\n")
    assert main(["workspace", "--workspace", str(tiny_workspace)]) == 0
    out = capsys.readouterr().out
    assert "component alpha" in out and "new studies: sampler front, method ties, seed 0" in out
    assert main(["workspace", "--workspace", str(tiny_workspace), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["defaults"] == {"method": "ties"} and [c["name"] for c in data["components"]][0] == "alpha"
    assert main(["workspace", "--workspace", str(tiny_workspace / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
