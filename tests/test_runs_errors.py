"""Bad tables for `demix import-runs` (issue 25, step 5): exit 2, one `error:` line naming the file, the row and
the column, and nothing written (every file under the test's folder unchanged, the study's trials included)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from demix_core.cli import main

MIX = "index,web,code\n1,0.5,0.5\n2,0.3,0.7\n3,0.9,0.1\n"
SCO = "index,metric/loss_web,metric/loss_code\n1,2.5,2.5\n2,2.7,2.1\n3,2.1,2.9\n"


def write(tmp: Path, mix: str = MIX, sco: str = SCO, name: str = "") -> tuple[Path, Path]:
    m, s = tmp / f"mix{name}.csv", tmp / f"sco{name}.csv"
    m.write_text(mix)
    s.write_text(sco)
    return m, s


def argv(tmp: Path, m: Path, s: Path | None, *extra: str, study: str | None = "s") -> list[str]:
    out = ["import-runs", "--workspace", str(tmp / "ws"), "--mixtures", str(m)]
    out += ["--scores", str(s)] if s is not None else []
    return out + (["--study", study] if study else []) + list(extra)


def imported(tmp: Path) -> None:
    """A workspace with study s made from the good tables (the cases that need one start from it)."""
    m, s = write(tmp, name="-first")
    assert main(argv(tmp, m, s)) == 0


def missing_key(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp, mix=MIX.replace("index,", "id,")))


def missing_given_key(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp), "--key", "run")


def row_not_joining(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp, sco=SCO.replace("\n3,", "\n9,")))


def empty_weight(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp, mix=MIX.replace("2,0.3,0.7", "2,,0.7")))


def nan_weight(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp, mix=MIX.replace("2,0.3,0.7", "2,nan,0.7")))


def negative_weight(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp, mix=MIX.replace("2,0.3,0.7", "2,-0.3,1.3")))


def text_weight(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp, mix=MIX.replace("2,0.3,0.7", "2,0.3,lots")))


def weights_off_one(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp, mix=MIX.replace("2,0.3,0.7", "2,0.3,0.6")))


def weights_zero(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp, mix=MIX.replace("2,0.3,0.7", "2,0,0")))


def text_score(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp, sco=SCO.replace("2,2.7,2.1", "2,2.7,n.a.")))


def duplicate_key(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp, mix=MIX.replace("\n3,", "\n2,")))


def short_row(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp, mix=MIX.replace("2,0.3,0.7", "2,1.0")))


def unknown_objective(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp), "--objectives", "loss_wbe")


def unknown_higher(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp), "--higher-is-better", "accuracy")


def too_many_metrics(tmp: Path) -> list[str]:
    header = "index," + ",".join(f"m{j}" for j in range(9))
    rows = "".join(f"{i}," + ",".join(str(i + j) for j in range(9)) + "\n" for i in (1, 2, 3))
    return argv(tmp, *write(tmp, sco=header + "\n" + rows))


def one_csv_without_objectives(tmp: Path) -> list[str]:
    m, _ = write(tmp)
    return argv(tmp, m, None)


def study_and_references(tmp: Path) -> list[str]:
    return argv(tmp, *write(tmp), "--references")


def domains_differ(tmp: Path) -> list[str]:
    imported(tmp)
    return argv(tmp, *write(tmp, mix=MIX.replace("index,web,code", "index,web,math")))


def metrics_differ(tmp: Path) -> list[str]:
    imported(tmp)
    return argv(tmp, *write(tmp, sco=SCO.replace("metric/loss_code", "metric/loss_math")))


def run_changed(tmp: Path) -> list[str]:
    imported(tmp)
    return argv(tmp, *write(tmp, mix=MIX.replace("1,0.5,0.5", "1,0.6,0.4")))


def objectives_changed(tmp: Path) -> list[str]:
    imported(tmp)
    return argv(tmp, *write(tmp), "--objectives", "loss_web")


CASES: list[tuple[Callable[[Path], list[str]], tuple[str, ...]]] = [
    (missing_key, ("mix.csv", "no key column (run, run_id or index)", "--key")),
    (missing_given_key, ("mix.csv has no key column 'run'",)),
    (row_not_joining, ("sco.csv row 3, column 'index'", "run '9' has no row in mix.csv")),
    (empty_weight, ("mix.csv row 2 (run '2'), column 'web'", "weight is empty")),
    (nan_weight, ("mix.csv row 2 (run '2'), column 'web'", "not a finite number")),
    (negative_weight, ("mix.csv row 2 (run '2'), column 'web'", "negative")),
    (text_weight, ("mix.csv row 2 (run '2'), column 'code'", "'lots' is not a number")),
    (weights_off_one, ("mix.csv row 2 (run '2')", "sum to 0.9, not 1")),
    (weights_zero, ("mix.csv row 2 (run '2')", "sum to 0")),
    (text_score, ("sco.csv row 2 (run '2'), column 'metric/loss_code'", "'n.a.' is not a number")),
    (duplicate_key, ("mix.csv rows 2 and 3 both name run '2' in column 'index'",)),
    (short_row, ("mix.csv row 2 has 2 cells but the header has 3",)),
    (unknown_objective, ("sco.csv has no metric 'loss_wbe'", "did you mean: loss_web", "--objectives")),
    (unknown_higher, ("sco.csv has no metric 'accuracy'", "--higher-is-better")),
    (too_many_metrics, ("sco.csv has 9 metrics: m0, m1", "--objectives a,b", "family=m1+m2")),
    (one_csv_without_objectives, ("mix.csv", "name the score columns", "--objectives")),
    (study_and_references, ("--study", "--references", "not both")),
    (domains_differ, ("mix.csv header: column 'math' is not a domain of workspace",)),
    (metrics_differ, ("sco.csv header: metric 'loss_math' is not among the metrics of study 's'",)),
    (run_changed, ("mix.csv row 1 (run '1')", "already holds run '1' with other weights or scores")),
    (objectives_changed, ("study 's' optimises loss_web, loss_code", "--objectives")),
]


def snapshot(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize(("case", "expected"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_bad_table_is_one_error_line_and_writes_nothing(case: Callable[[Path], list[str]], expected: tuple[str, ...],
                                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = case(tmp_path)
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for text in expected:
        assert text in err[0], err[0]
    assert snapshot(tmp_path) == before
    assert (tmp_path / "ws").exists() == any(k.startswith("ws") for k in before)


def test_weights_within_rounding_are_renormalised_and_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m, s = write(tmp_path, mix=MIX.replace("2,0.3,0.7", "2,0.3,0.7009"))
    assert main(argv(tmp_path, m, s)) == 0
    out = capsys.readouterr().out
    assert "renormalised 1 runs whose weights summed to 1 within 0.001 (e.g. run 2: 1.0009)" in out
