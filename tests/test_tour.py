"""The tour (``demix tour``): its record, stage by stage; a run killed mid-stage resumes there (the stages before it
are not run again); the whole quick tour ends on a verdict; two starts share one background job."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demix_core.background import jobs
from demix_core.errors import ConfigError
from demix_core.tour import state
from demix_core.tour.run import remaining, run_tour, start_tour
from demix_core.tour.stages import NAMES, stages_until
from demix_core.tour.status import DONE, STOPPED, WAITING, stage_lines, tour_status
from demix_core.workspace.manifest import load_workspace
from demix_core.workspace.records import read_plan, read_validation

ROOT = Path(__file__).resolve().parent.parent


def test_stage_records_times_and_resumes(tmp_path: Path) -> None:
    first = state.mark(tmp_path, "components", "running", pid=7)
    assert first["status"] == "running" and first["pid"] == 7 and "ended" not in first
    again = state.mark(tmp_path, "components", "running")  # its process died: started once more
    assert again["resumed"] == 1
    failed = state.mark(tmp_path, "components", "failed", error="disk full")
    assert failed["status"] == "failed" and failed["seconds"] >= 0 and failed["error"] == "disk full"
    retried = state.mark(tmp_path, "components", "running")
    assert retried["resumed"] == 2 and retried["seconds_before"] == failed["seconds"] and "seconds" not in retried
    state.update_stage(tmp_path, "components", done=3, total=6)
    done = state.mark(tmp_path, "components", "done")
    assert done["status"] == "done" and done["done"] == 3 and done["seconds"] >= failed["seconds"]
    assert json.loads((tmp_path / "tour.json").read_text())["stages"]["components"]["status"] == "done"


def test_unreadable_record_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / "tour.json").write_text("{not json")
    assert state.read_state(tmp_path) == {"version": 1, "stages": {}}
    assert tour_status(tmp_path).stages == [] and not tour_status(tmp_path).started


def test_stages_in_order_and_until() -> None:
    assert NAMES == ("components", "references", "validate", "study", "train", "verdict", "benchmarks", "paper")
    assert [s.name for s in stages_until("components")] == ["components"]
    assert [s.name for s in stages_until("verdict")] == list(NAMES[:6])
    with pytest.raises(ConfigError, match="unknown tour stage 'verdicts'; the stages are components, references"):
        stages_until("verdicts")


def _tour_process(root: Path, until: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "demix_core", "tour", "--workspace", str(root), "--quick",
                             "--until", until], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


@pytest.fixture(scope="module")
def killed_then_resumed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A quick tour killed (SIGKILL) while it trains references, then run again to the verdict."""
    root = tmp_path_factory.mktemp("tour") / "demo"
    proc = _tour_process(root, "verdict")
    deadline = time.monotonic() + 300
    while state.stage_record(root, "references").get("status") != "running":
        assert proc.poll() is None, "the tour ended before its references stage"
        assert time.monotonic() < deadline, "the references stage did not start in 300 s"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = state.read_state(root)
    status_after_kill = tour_status(root)
    lines: list[str] = []
    record = run_tour(root, until="verdict", quick=True, log=lines.append)
    return {"root": root, "before": before, "killed": status_after_kill, "lines": lines, "record": record}


def test_a_killed_stage_shows_stopped_and_resumes_there(killed_then_resumed: dict[str, object]) -> None:
    killed = killed_then_resumed["killed"]
    assert [s.status for s in killed.stages] == [DONE, STOPPED] + [WAITING] * 4  # type: ignore[attr-defined]
    lines: list[str] = killed_then_resumed["lines"]  # type: ignore[assignment]
    starts = [ln.split(":")[0] for ln in lines if ln.startswith("tour [") and not ln.endswith(" s")]
    assert starts == [f"tour [{i}/6] {n}" for i, n in enumerate(NAMES[1:6], 2)]  # components not run again
    before: dict = killed_then_resumed["before"]  # type: ignore[assignment]
    record: dict = killed_then_resumed["record"]  # type: ignore[assignment]
    assert record["stages"]["components"] == before["stages"]["components"]
    assert record["stages"]["references"]["resumed"] == 1
    assert all(record["stages"][n]["status"] == "done" for n in NAMES[:6])


def test_the_quick_tour_ends_on_a_verdict(killed_then_resumed: dict[str, object]) -> None:
    root: Path = killed_then_resumed["root"]  # type: ignore[assignment]
    ws = load_workspace(root)
    assert len([r for r in ws.references if r.kind == "reference" and r.name.startswith("ref-")]) == 6
    plan = read_plan(ws)
    assert plan is not None and plan.study == "tour"
    record = read_validation(ws, "quick")
    assert record is not None and record["pick"]["proxy"] in ("merge", "ensemble")
    loop = record["loop"]
    assert {e["role"] for e in loop["entries"]} >= {"recommended", "uniform", "natural"}
    assert loop["verdict"].startswith("Loop: the trained recommendation ranks")
    status = tour_status(root)
    assert status.finished and status.fraction() == 1.0 and remaining(root, "verdict") == []
    # every planned model trained, each at two seeds (4 or 5 distinct mixtures: the best trial can be the null pick)
    assert plan.repeats == 2 and re.match(r"\[5/6\] train +done (8|10)/\1 \(", stage_lines(status)[4])
    floor = record["noise_floor"]  # the repeats measure the floor, so every comparison gets a call
    assert floor is not None and floor["mixtures"] >= 4 and set(floor["domains"]) == set(record["domains"])
    natural = next(e for e in loop["entries"] if e["role"] == "natural")
    assert {c["call"] for c in natural["calls"].values()} <= {"better", "worse", "within noise"}
    assert status.sentence.startswith("the recommendation ") and "natural" in status.sentence
    assert status.verdict == loop["verdict"] and f"Per domain, {status.sentence}" in status.verdict
    assert stage_lines(status)[-1] == f"verdict: {status.verdict}"


def test_a_done_tour_runs_nothing_again(killed_then_resumed: dict[str, object]) -> None:
    root: Path = killed_then_resumed["root"]  # type: ignore[assignment]
    lines: list[str] = []
    run_tour(root, until="verdict", quick=True, log=lines.append)
    assert lines == []


def test_two_starts_share_one_job_and_a_stop_leaves_the_stage_to_resume(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    job, started = start_tour(root, until="components", quick=True, cwd=ROOT)
    try:
        again, started_again = start_tour(root, until="components", quick=True, cwd=ROOT)
        assert started and not started_again and again.id == job.id
        assert [j.id for j in jobs.jobs(root, "tour")] == [job.id]
        assert job.command[-5:] == ["--workspace", str(root.resolve()), "--until", "components", "--quick"]
        deadline = time.monotonic() + 120
        while state.stage_record(root, "components").get("status") != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        jobs.stop(job)
        deadline = time.monotonic() + 60
        while (jobs.latest(root, "tour") or job).status == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
    ended = jobs.latest(root, "tour")
    assert ended is not None and ended.status == "failed" and ended.returncode == 130  # stopped: "interrupted"
    assert "tour [1/1] components stopped; the next run resumes it" in ended.log_file.read_text()
    assert tour_status(root).of("components").status == STOPPED  # type: ignore[union-attr]
    assert remaining(root, "components") == ["components"]


# The pages, with AppTest: while the tour builds, after its process died, and once it ended on the verdict.

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
PAGES = ROOT / "pages"


def _page(name: str, root: Path, monkeypatch: pytest.MonkeyPatch, role: str = "edit"):  # noqa: ANN202 - AppTest
    from app.auth import ROLE_KEY

    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(root.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(root))
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=120)
    at.session_state[ROLE_KEY] = role
    return at.run()


def _texts(at) -> str:  # noqa: ANN001 - AppTest
    return "\n".join(str(e.value) for kind in ("info", "warning", "success", "caption", "markdown", "error")
                     for e in getattr(at, kind))


@pytest.fixture()
def building(tmp_path: Path) -> Path:
    """A demo folder whose tour is in its components stage (no manifest yet), its job alive."""
    root = tmp_path / "demo"
    root.mkdir()
    state.set_field(root, until="verdict", stages_planned=list(NAMES[:6]))
    state.mark(root, "components", "running")
    state.update_stage(root, "components", done=2, total=6)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    job = jobs.Job("tour-x", "tour", "the demo tour", ["demix", "tour"], time.time(), pid=sleeper.pid,
                   state_file=root / "jobs" / "tour-x.json")
    job.state_file.parent.mkdir()
    jobs._write(job)
    job.log_file.write_text("$ tour\ntour [1/6] components\ncomponent code:  40%|####      | 100/250\n")
    yield root
    sleeper.kill()
    sleeper.wait()


def test_pages_say_what_they_wait_for_while_the_tour_builds(building: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page("workspace", building, monkeypatch)
    assert not at.exception, at.exception
    text = _texts(at)
    assert "Waiting for the demo's components" in text and "stage 1 of 6 of the tour (running)" in text
    assert "Now: component code:  40%" in text
    assert not [b for b in at.button if b.key == "ws_tour_start"]  # it runs: nothing to start
    stages = at.dataframe[0].value
    assert list(stages["status"]) == ["running"] + ["waiting"] * 5 and stages["progress"][0] == "2 of 6"
    for name in ("mixer", "study", "validate"):
        other = _page(name, building, monkeypatch, role="view")
        assert not other.exception and "Waiting for the demo's components" in _texts(other), name


def test_a_stopped_tour_offers_continue_to_editors_only(building: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = jobs.latest(building, "tour")
    assert job is not None
    os.kill(job.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (jobs.latest(building, "tour") or job).status == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    at = _page("workspace", building, monkeypatch)
    assert "stopped when its process ended (2 of 6); Continue picks it up" in _texts(at)
    assert [b.label for b in at.button if b.key == "ws_tour_start"] == ["Continue the tour"]
    viewer = _page("workspace", building, monkeypatch, role="view")
    assert not [b for b in viewer.button if b.key == "ws_tour_start"]


def test_the_validate_page_ends_on_the_verdict(killed_then_resumed: dict[str, object],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root: Path = killed_then_resumed["root"]  # type: ignore[assignment]
    at = _page("validate", root, monkeypatch, role="view")
    assert not at.exception, at.exception
    text = _texts(at)
    assert "Proxy to trust on this workspace:" in text
    assert "Loop: the trained recommendation ranks" in text and "Waiting for" not in text
    ws_page = _page("workspace", root, monkeypatch, role="view")
    assert "The tour is done" in _texts(ws_page)
