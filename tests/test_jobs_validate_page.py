"""Background jobs (state and log under <workspace>/jobs/, progress from [i/n] lines, stop) and the Validate page:
both proxies' tables, the verdict and the pick from the record file, a validation job for editors only."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import one_hot_references

from app.auth import ROLE_KEY
from demix_core.background import jobs
from demix_core.errors import DemixError
from demix_core.proxy import get_kind
from demix_core.validation.methods import NULL
from demix_core.validation.report import ValidationReport, method_report, record_validation
from demix_core.workspace.manifest import load_workspace

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
PAGES = str(Path(__file__).resolve().parent.parent / "pages")
MERGED, ENSEMBLE = get_kind("merge").report_name, get_kind("ensemble").report_name


def _wait(job: jobs.Job, timeout: float = 60) -> jobs.Job:
    deadline = time.time() + timeout
    while time.time() < deadline:
        now = jobs.latest(job.state_file.parent.parent, job.kind)
        assert now is not None
        if now.status != "running":
            return now
        time.sleep(0.1)
    raise AssertionError(f"job {job.id} still running after {timeout} s")


def test_job_records_its_end_and_progress(tiny_workspace: Path) -> None:
    job = jobs.start_job(tiny_workspace, "show", ["workspace", "--workspace", str(tiny_workspace)], title="show")
    assert job.state_file.parent == tiny_workspace / "jobs"
    done = _wait(job)
    assert done.status == "done" and done.returncode == 0 and done.ended is not None
    fraction, last = done.progress()
    assert fraction == 1.0 and last.startswith("new studies:")
    assert "workspace tiny" in done.log_file.read_text()
    bad = _wait(jobs.start_job(tiny_workspace, "show", ["workspace", "--workspace", "/nonexistent"]))
    assert bad.status == "failed" and bad.returncode == 2 and bad.progress()[1].startswith("error: ")
    assert [j.id for j in jobs.jobs(tiny_workspace, "show")] == [bad.id, job.id]  # newest first


def test_progress_is_the_last_fraction_in_the_log(tmp_path: Path) -> None:
    job = jobs.Job("j", "k", "", ["x"], time.time(), pid=0, returncode=None, state_file=tmp_path / "j.json")
    job.log_file.write_text("[0/4] start\n[1/4] a\nstep\r[3/4] c\nloading\n")
    assert job.progress() == (0.75, "loading") and job.status == "lost"


def test_one_job_of_a_kind_at_a_time_and_stop(tiny_workspace: Path) -> None:
    script = "import time\nfor i in range(600):\n    time.sleep(0.05)\n"
    # a long job: the runner of start_job, on a command that sleeps
    state = jobs.Job("slow-x", "slow", "sleeper", [__import__("sys").executable, "-c", script], time.time(),
                     state_file=tiny_workspace / "jobs" / "slow-x.json")
    jobs._write(state)
    import subprocess
    import sys

    subprocess.Popen([sys.executable, "-m", "demix_core.background.jobs", str(state.state_file)],
                     start_new_session=True)
    deadline = time.time() + 20
    while (jobs.latest(tiny_workspace, "slow") or state).status != "running" and time.time() < deadline:
        time.sleep(0.05)
    running = jobs.latest(tiny_workspace, "slow")
    assert running is not None and running.id == "slow-x" and running.status == "running"
    with pytest.raises(DemixError, match="a slow job is already running"):
        jobs.start_job(tiny_workspace, "slow", ["workspace", "--workspace", str(tiny_workspace)])
    assert jobs.stop(running)
    ended = _wait(running)
    assert ended.status == "failed" and ended.returncode != 0


def _record(ws_root: Path) -> None:
    one_hot_references(ws_root)
    ws = load_workspace(ws_root)
    rng = np.random.default_rng(0)
    ref = {d: rng.normal(size=12) for d in ("general", "code", "math")}
    good = {d: v + 0.05 * rng.normal(size=12) for d, v in ref.items()}
    noise = {d: rng.normal(size=12) for d in ref}
    methods = [method_report(MERGED, noise, ref), method_report(ENSEMBLE, good, ref),
               method_report(NULL, noise, ref, with_recovery=False)]
    scores = {k: {d: list(v) for d, v in s.items()} for k, s in ((MERGED, noise), (ENSEMBLE, good), (NULL, noise))}
    record_validation(ws, ValidationReport([f"r{i}" for i in range(12)], [{} for _ in range(12)], list(ref),
                                           {d: list(v) for d, v in ref.items()}, methods, {}, "quick", scores,
                                           {"merge": MERGED, "ensemble": ENSEMBLE}))


@pytest.fixture()
def page_ws(tiny_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(tiny_workspace.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(tiny_workspace))
    _record(tiny_workspace)
    return tiny_workspace


def _page(role: str):
    at = AppTest.from_file(f"{PAGES}/validate.py", default_timeout=120)
    at.session_state[ROLE_KEY] = role
    return at.run()


def test_validate_page_shows_both_proxies_and_the_pick(page_ws: Path) -> None:
    at = _page("edit")
    assert not at.exception
    assert any("Proxy to trust on this workspace: **ensemble**" in s.value for s in at.success)
    assert any(m.value.startswith("**Verdict: trust the ensemble proxy") for m in at.markdown)
    summary = at.dataframe[0].value
    assert list(summary.columns) == [MERGED, ENSEMBLE, NULL] and "macro rho" in summary.index
    assert len(at.tabs) == 2
    assert any(c.value.startswith("Domain scores are negated bits per byte") for c in at.caption)
    assert list(at.dataframe[-1].value.columns) == ["reference", "general (−bits/byte)", "code (−bits/byte)",
                                                    "math (−bits/byte)"]
    at.button(key="run_val").click().run()
    job = jobs.latest(page_ws, "validate-quick")
    assert job is not None and job.command[-4:] == ["--workspace", str(page_ws), "--suite", "quick"]
    jobs.stop(job)
    _wait(job)


def test_viewer_reads_the_result_and_gets_no_run_button(page_ws: Path) -> None:
    before = sorted(page_ws.parent.rglob("*"))
    at = _page("view")
    assert not at.exception and not [b for b in at.button if b.key in ("run_val", "val_job_stop")]
    assert any("**ensemble**" in s.value for s in at.success)
    assert sorted(page_ws.parent.rglob("*")) == before


@pytest.fixture()
def few_refs_ws(tiny_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny workspace as the Validate page opens it, with no references yet."""
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(tiny_workspace.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(tiny_workspace))
    return tiny_workspace


def test_editors_train_references_from_the_validate_page(few_refs_ws: Path) -> None:
    at = _page("edit")
    assert not at.exception and any("needs at least 3" in i.value for i in at.info)
    assert at.number_input(key="val_refs_count").value == 16
    assert at.button(key="val_refs_train").label == "Train 16 references"
    at.number_input(key="val_refs_count").set_value(4).run()
    assert at.button(key="val_refs_train").label == "Train 4 references"
    at.checkbox(key="val_refs_proxies").uncheck()
    at.button(key="val_refs_train").click().run()
    assert not at.exception
    job = jobs.latest(few_refs_ws, "train-references")
    assert job is not None and job.title == "train 4 references"
    assert job.command[3:] == ["workspace", "train-references", str(few_refs_ws), "--count", "4",
                               "--no-trained-proxies"]
    jobs.stop(job)
    _wait(job)
    assert not [b for b in at.button if b.key == "val_loop_train"]  # no study: nothing to recommend yet


def test_viewers_see_a_set_training_but_no_controls(few_refs_ws: Path) -> None:
    job = jobs.Job("train-references-x", "train-references", "train 4 references", ["x"], time.time() - 5, pid=0,
                   state_file=few_refs_ws / "jobs" / "train-references-x.json")
    jobs._write(job)
    job.log_file.write_text("references: 4 mixtures\n[1/4] ref-00 alpha=0.25 beta=0.05 gamma=0.70\n")
    at = _page("view")  # the job's process is gone without a status: it shows as lost, with its last line
    assert not at.exception and not at.number_input and not at.button
    assert any("train 4 references: lost" in e.value and "alpha=0" in e.value for e in at.error)
    jobs._write(jobs.Job(**{**job.__dict__, "returncode": 0, "ended": time.time()}))
    assert any(s.value.startswith("train 4 references: done") for s in _page("view").success)


def test_a_workspace_without_datasets_is_told_how_to_add_references(few_refs_ws: Path) -> None:
    ws = load_workspace(few_refs_ws)
    ws.datasets = []
    ws.save()
    at = _page("edit")
    assert not at.exception and not [b for b in at.button if b.key == "val_refs_train"]
    assert any("has no datasets" in i.value and "demix workspace add-reference" in i.value for i in at.info)


def test_with_a_study_editors_train_the_recommendation_and_baselines(few_refs_ws: Path) -> None:
    from demix_core.search.study import create_study

    create_study(load_workspace(few_refs_ws), "s", sampler="random")
    at = _page("edit")  # fewer than 3 references: both controls
    assert not at.exception and at.selectbox(key="val_loop_study").options == ["s"]
    assert at.button(key="val_refs_train") and at.button(key="val_loop_train").label == (
        "Train the recommendation and baselines")
    viewer = _page("view")
    assert not viewer.exception and not viewer.button and not viewer.selectbox
    _record(few_refs_ws)  # 3 references and a validation: the control stays, below the result
    at = _page("edit")
    assert not at.exception and not [b for b in at.button if b.key == "val_refs_train"]
    at.button(key="val_loop_train").click().run()
    job = jobs.latest(few_refs_ws, "train-reference")
    ws = load_workspace(few_refs_ws)
    assert job is not None and job.title == "train the recommendation of s and its baselines"
    assert job.command[3:] == ["recommend", "--workspace", str(few_refs_ws), "--study", "s", "--storage",
                               ws.storage_url(), "--train"]
    jobs.stop(job)
    _wait(job)
