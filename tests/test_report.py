"""The study report: written under the workspace's reports/, trials table, recommendation and recipe."""

from __future__ import annotations

import re
from pathlib import Path

from demix_core.search.study import create_study, load_study
from demix_core.search.worker import Worker
from demix_core.view.report import report_path, write_study_report
from demix_core.workspace.manifest import load_workspace


def test_report_path_stays_under_reports(tmp_path: Path) -> None:
    for name in ("../../x", "/etc/passwd", "<script>", "ok-1"):
        out = report_path(tmp_path, name).resolve()
        assert out.parent == (tmp_path / "reports").resolve() and out.suffix == ".html"
    assert report_path(tmp_path, "ok-1").name == "ok-1.html"


def test_study_report_holds_trials_recommendation_and_recipe(tiny_workspace: Path, one_torch_thread) -> None:
    ws = load_workspace(tiny_workspace)
    create_study(ws, "rep", sampler="random")
    Worker(ws, "rep", device="cpu", log=lambda s: None).run(12)
    out = write_study_report(ws, load_study(ws, "rep"), samples=2000)
    assert out == tiny_workspace / "reports" / "rep.html"
    text = out.read_text()
    assert "<h2>Trials</h2>" in text and "<h2>Recommendation</h2>" in text and "<h2>Recipe</h2>" in text
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>", text)
    assert sorted(int(r) for r in rows) == list(range(12))
    assert re.search(r"<td>-?\d+\.\d{4}</td>", text)  # four decimals through a callable float_format
    assert "demix-recipe/1" in text and "general score" in text and "d:general" not in text
    assert 'src="http' not in text  # offline: plotly.js inlined


def test_study_report_without_enough_trials_says_why(tiny_workspace: Path) -> None:
    ws = load_workspace(tiny_workspace)
    create_study(ws, "few", sampler="random")
    text = write_study_report(ws, load_study(ws, "few")).read_text()
    assert "no recommendation yet" in text and "Trials: 0" in text
