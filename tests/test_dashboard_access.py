"""Dashboard safety and state: the gate, the two roles, study names in the UI, the study that follows the user."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit import config as st_config

from app.auth import ROLE_KEY, decide, is_loopback, role_for
from demix_core.search.study import create_study, load_study
from demix_core.workspace.manifest import load_workspace

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
TIMEOUT = 120
ROOT = Path(__file__).resolve().parent.parent
PAGES = str(ROOT / "pages")
MAIN = str(ROOT / "app" / "main.py")
WRITE_KEYS = {"create_study", "start_worker", "stop_workers", "export_report", "enqueue", "export", "rec_enqueue",
              "ws_tour_start", "ws_tour_stop", "run_val", "val_job_stop", "rec_train_train", "rec_train_job_stop",
              "mixer_train", "mixer_job_stop", "val_refs_train", "val_refs_job_stop", "val_loop_train",
              "val_loop_job_stop"}


@pytest.fixture()
def env_ws(tiny_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(tiny_workspace.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(tiny_workspace))
    monkeypatch.delenv("DEMIX_PASSWORD", raising=False)
    monkeypatch.delenv("DEMIX_VIEW_PASSWORD", raising=False)
    return tiny_workspace


@pytest.fixture()
def address():
    """Set server.address for the test (AppTest shares this process's config), then restore it."""
    before = st_config.get_option("server.address")
    yield lambda value: st_config.set_option("server.address", value)
    st_config.set_option("server.address", before)


@pytest.mark.parametrize(("addr", "local"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                             ("127.0.0.2", True), ("", False), (None, False), ("0.0.0.0", False),
                                             ("::", False), ("[::]", False), ("192.168.1.5", False),
                                             ("example.org", False)])
def test_loopback_addresses(addr: str | None, local: bool) -> None:
    assert is_loopback(addr) is local


def test_gate_decisions() -> None:
    assert decide("127.0.0.1", None, None) == "edit"
    assert decide("", None, None) == "refuse"  # started outside the repository: listens everywhere
    assert decide("0.0.0.0", None, None) == "refuse"
    assert decide("0.0.0.0", "e", None) == decide("127.0.0.1", None, "v") == "ask"
    assert role_for("e", "e", "v") == "edit" and role_for("v", "e", "v") == "view"
    assert role_for("x", "e", "v") is None and role_for("v", "e", None) is None


def test_unset_address_without_password_refuses(env_ws: Path, address) -> None:
    address("")
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    assert any("every interface" in e.value and "DEMIX_PASSWORD" in e.value for e in at.error)
    assert not at.button and not at.title  # no page ran
    assert not (env_ws / "studies.db").exists()


def test_passwords_grant_roles(env_ws: Path, address, monkeypatch: pytest.MonkeyPatch) -> None:
    address("0.0.0.0")
    monkeypatch.setenv("DEMIX_PASSWORD", "edit-secret")
    monkeypatch.setenv("DEMIX_VIEW_PASSWORD", "view-secret")
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    assert at.text_input(key="password_input") is not None and len(at.title) == 1  # only the form
    at.text_input(key="password_input").input("wrong").run()
    assert any("Wrong password" in e.value for e in at.error) and ROLE_KEY not in at.session_state
    at.text_input(key="password_input").input("view-secret").run()
    assert at.session_state[ROLE_KEY] == "view"
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    at.text_input(key="password_input").input("edit-secret").run()
    assert at.session_state[ROLE_KEY] == "edit"


def _page(name: str, role: str, **query: str):
    at = AppTest.from_file(f"{PAGES}/{name}.py", default_timeout=TIMEOUT)
    at.session_state[ROLE_KEY] = role
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


@pytest.mark.parametrize("name", ["workspace", "study", "mixer", "recommend", "validate"])
def test_viewer_sees_every_page_and_no_control_that_writes(env_ws: Path, name: str) -> None:
    before = sorted(env_ws.parent.rglob("*"))
    at = _page(name, "view", view="0")  # the old ?view= switch means nothing now
    assert not at.exception
    assert at.title[0].value.lower() == name
    assert not [b.key for b in at.button if b.key in WRITE_KEYS]
    assert sorted(env_ws.parent.rglob("*")) == before  # a viewer never writes a file (no studies.db either)


def test_viewer_of_a_study_gets_no_worker_or_enqueue_controls(env_ws: Path) -> None:
    create_study(load_workspace(env_ws), "shared")
    for name in ("study", "mixer"):
        at = _page(name, "view", study="shared")
        assert not at.exception
        assert not [b.key for b in at.button if b.key in WRITE_KEYS]
        assert at.selectbox(key="_study_pick").value == "shared"


@pytest.mark.parametrize("bad", ["../x", "/tmp/demix-abs-ui", "x" * 600, "<script>"])
def test_ui_refuses_bad_study_names(env_ws: Path, bad: str) -> None:
    at = _page("study", "edit")
    at.text_input(key="new_study_name").set_value(bad)
    at.button(key="create_study").click().run()
    assert any(e.value.startswith("study name") for e in at.error)
    assert not (env_ws / "studies.db").exists() and not Path("/tmp/demix-abs-ui").exists()


def test_created_study_is_selected_everywhere(env_ws: Path) -> None:
    create_study(load_workspace(env_ws), "aaa-first")
    at = _page("study", "edit")
    assert at.selectbox(key="_study_pick").value == "aaa-first"
    at.text_input(key="new_study_name").set_value("zzz-new")
    at.button(key="create_study").click().run()
    assert not at.exception
    assert at.selectbox(key="_study_pick").value == "zzz-new" and at.query_params["study"] == "zzz-new"
    assert any("zzz" in s.value and "selected" in s.value for s in at.success)
    assert load_study(load_workspace(env_ws), "zzz-new").study_name == "zzz-new"


def test_study_follows_the_user_across_pages(env_ws: Path) -> None:
    ws = load_workspace(env_ws)
    for name in ("aaa", "bbb"):
        create_study(ws, name)
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.session_state[ROLE_KEY] = "edit"
    at.run()
    at.switch_page("../pages/study.py").run()
    at.selectbox(key="_study_pick").select("bbb").run()
    assert at.query_params["study"] == "bbb"
    at.query_params.clear()  # what a navigation through the sidebar does to the URL
    at.switch_page("../pages/mixer.py").run()
    assert not at.exception
    assert at.selectbox(key="_study_pick").value == "bbb" and at.query_params["study"] == "bbb"
    at.button(key="enqueue").click().run()
    assert len(load_study(ws, "bbb").trials) == 1 and not load_study(ws, "aaa").trials


def test_ui_worker_stops_at_its_budget(env_ws: Path) -> None:
    from app.workers import LocalWorkers

    ws = load_workspace(env_ws)
    create_study(ws, "budget", sampler="random")
    workers = LocalWorkers()
    target = workers.start(ws, "budget", "cpu", trials=2)
    proc = workers.procs[0][0]
    assert target == 2 and proc.wait(timeout=300) == 0
    done = [t for t in load_study(ws, "budget").trials if t.state.name == "COMPLETE"]
    assert len(done) == 2
    assert workers.table("budget").iloc[0]["status"] == "finished"


def test_export_report_from_the_ui(env_ws: Path) -> None:
    from demix_core.search.worker import Worker

    ws = load_workspace(env_ws)
    create_study(ws, "rep", sampler="random")
    Worker(ws, "rep", device="cpu", log=lambda s: None).run(3)
    at = _page("study", "edit", study="rep")
    at.button(key="export_report").click().run()
    assert not at.exception
    out = env_ws / "reports" / "rep.html"
    assert out.is_file() and "<h2>Trials</h2>" in out.read_text()
    assert any("Report written" in s.value for s in at.success)
