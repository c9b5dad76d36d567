"""Study names: the one check (CLI, API and UI use it) and safe file names for names read from storages."""

from __future__ import annotations

from pathlib import Path

import pytest

from demix_core.cli import main
from demix_core.io.names import MAX_LENGTH, StudyNameError, check_study_name, safe_filename
from demix_core.search.study import create_study
from demix_core.workspace.manifest import load_workspace

BAD = ["../x", "../../x", "/tmp/evil", "x" * 600, "<script>alert(1)</script>", "", ".hidden", "a b", "a/b",
       "a\\b", "é", "x\ny"]
GOOD = ["study-1", "s", "A.b_c-9", "x" * MAX_LENGTH]


@pytest.mark.parametrize("name", GOOD)
def test_valid_names_pass_unchanged(name: str) -> None:
    assert check_study_name(name) == name


@pytest.mark.parametrize("name", BAD)
def test_bad_names_are_refused_in_one_line(name: str) -> None:
    with pytest.raises(StudyNameError) as err:
        check_study_name(name)
    message = str(err.value)
    assert "\n" not in message and "study name" in message
    assert len(message) < 200  # a 600-character name is not echoed in full


def test_too_long_names_say_the_limit() -> None:
    with pytest.raises(StudyNameError, match="at most 64"):
        check_study_name("x" * (MAX_LENGTH + 1))


@pytest.mark.parametrize("name", BAD + ["..", "con", "a" * 300])
def test_safe_filename_is_one_plain_name(name: str) -> None:
    out = safe_filename(name, ".html")
    assert out.endswith(".html") and "/" not in out and "\\" not in out and not out.startswith(".")
    assert len(out) <= MAX_LENGTH + len(".html")
    assert Path(out).name == out


def test_safe_filename_keeps_valid_names_and_separates_others() -> None:
    assert safe_filename("study-1", ".html") == "study-1.html"
    assert safe_filename("a/b") != safe_filename("a_b") and safe_filename("a/b") != safe_filename("a:b")


@pytest.mark.parametrize("name", ["../x", "/tmp/demix-abs", "x" * 600, "<script>"])
@pytest.mark.parametrize("command", [["study", "create"], ["study", "status"], ["study", "enqueue", "--mixture",
                                     "alpha=1"], ["worker"], ["recommend"],
                                     ["study", "export", "--out", "OUT"]])
def test_cli_refuses_bad_names_with_one_error_line(tiny_workspace: Path, capsys: pytest.CaptureFixture[str],
                                                   name: str, command: list[str]) -> None:
    before = sorted(p for p in tiny_workspace.parent.rglob("*"))
    argv = [*command, "--workspace", str(tiny_workspace), "--study", name]
    argv = [str(tiny_workspace / "out.csv") if a == "OUT" else a for a in argv]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: study name")
    assert sorted(p for p in tiny_workspace.parent.rglob("*")) == before  # nothing written, not even studies.db
    assert not Path("/tmp/demix-abs").exists()


def test_create_study_api_checks_the_name(tiny_workspace: Path) -> None:
    with pytest.raises(StudyNameError):
        create_study(load_workspace(tiny_workspace), "../escape")
    assert not (tiny_workspace / "studies.db").exists()
