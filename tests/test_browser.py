"""End to end in a real browser: Playwright driving Debian's Chromium against `streamlit run`.

- An editor creates a study in the UI (it is selected), starts a worker, watches the front fill live,
  clicks a point (the Mixer opens that mixture and its scores), exports the report and opens it offline.
- A viewer walks through every page: no control that writes is present, and no file is created.
- A server started from another folder with the README's command listens on loopback only; one started
  there without an address listens everywhere, and the gate then refuses to serve without a password.

Screenshots go to ``test-artifacts/``. Skips without Chromium, except under CI where it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from demix_core.search.study import create_study, load_study
from demix_core.search.worker import Worker
from demix_core.workspace.manifest import load_workspace

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ROOT = Path(__file__).resolve().parent.parent
WRITE_BUTTONS = re.compile(r"Create study|Start worker|Stop workers|Export report|Add to study|Export merged model|"
                           r"Enqueue the recommendation|Build the demo|Continue the tour|Train")
pytestmark = pytest.mark.browser


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required under CI (apt-get install chromium)")
        pytest.skip("no chromium on this machine: apt-get install chromium to run the browser test")
    pytest.importorskip("playwright")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def streamlit(ws: Path, *, cwd: Path, address: str | None = "127.0.0.1", **env: str) -> Iterator[str]:
    """`streamlit run <repo>/app/main.py [--server.address A]` started in ``cwd``; yields its URL."""
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"), "--server.port", str(port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    if address is not None:
        cmd += ["--server.address", address]
    full_env = {**os.environ, "DEMIX_ALLOWED_ROOT": str(ws.parent), "DEMIX_WORKSPACE": str(ws), "HF_HUB_OFFLINE": "1",
                "PYTHONPATH": str(ROOT), **env}
    for name in ("DEMIX_PASSWORD", "DEMIX_VIEW_PASSWORD"):
        if name not in env:
            full_env.pop(name, None)
    proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("streamlit did not start") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def browser_page() -> Iterator:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--no-first-run"])
        context = browser.new_context(viewport={"width": 1500, "height": 1100})
        try:
            yield context.new_page()
        finally:
            browser.close()


def _files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


def _settle(page) -> None:  # noqa: ANN001 - playwright Page
    """Wait until the script run ends and its stale elements are gone: during a rerun Streamlit shows the old
    and the new widgets at once (two "Start worker" buttons, one stale), and a click then hits either."""
    page.wait_for_function("""() => !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')
        && !document.querySelector('[data-stale="true"]')""", timeout=120_000)


def _click_front_point(page) -> None:  # noqa: ANN001 - playwright Page
    """Click the first Pareto-front marker of the 2D front (the first Plotly chart on the page)."""
    xy = page.evaluate("""() => {
        const gd = document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')[0];
        const trace = gd._fullData.findIndex(t => t.name === 'Pareto front');
        const L = gd._fullLayout, box = gd.getBoundingClientRect();
        const pt = gd.calcdata[trace][0];  // decoded positions (plotly 7 ships the data as base64)
        const x = pt.x, y = pt.y;
        return [box.left + L._size.l + L.xaxis.l2p(x), box.top + L._size.t + L.yaxis.l2p(y)];
    }""")
    page.mouse.click(xy[0], xy[1])


def test_editor_walk_create_run_click_export(tiny_workspace: Path) -> None:
    from playwright.sync_api import expect

    ws_path = tiny_workspace
    with streamlit(ws_path, cwd=ROOT) as url, browser_page() as page:
        page.goto(f"{url}/?study=nope", timeout=90_000)  # the root forwards to /workspace, link kept
        page.wait_for_url(re.compile(r"/workspace\?study=nope"), timeout=90_000)
        expect(page.get_by_role("heading", name="Workspace", exact=True)).to_be_visible(timeout=90_000)
        page.goto(f"{url}/study", timeout=90_000)
        expect(page.get_by_text("No study yet")).to_be_visible(timeout=90_000)
        page.get_by_label("Name", exact=True).fill("e2e")
        page.get_by_role("button", name="Create study").click()
        expect(page.get_by_text("it is selected")).to_be_visible(timeout=60_000)
        assert "study=e2e" in page.url
        page.get_by_label("Trials per worker", exact=True).fill("8")
        page.get_by_label("Trials per worker", exact=True).press("Enter")
        _settle(page)
        start = page.get_by_role("button", name="Start worker")
        expect(start).to_have_count(1, timeout=60_000)  # a rerun may still show the old layout's button beside it
        start.click()
        # The front fills live (the fragment redraws every 2 s, no reload).
        expect(page.get_by_text(re.compile(r"complete [3-9]"))).to_be_visible(timeout=180_000)
        expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "1-study-live.png"))
        page.wait_for_timeout(2500)  # let the chart settle after a redraw before clicking
        _click_front_point(page)
        page.wait_for_url(re.compile(r"/mixer\?.*mixture="), timeout=60_000)
        expect(page.get_by_text(re.compile(r"Opened from trial #\d+ of study e2e"))).to_be_visible(timeout=90_000)
        expect(page.get_by_test_id("stMetricValue").first).to_be_visible(timeout=150_000)
        number = int(re.search(r"trial=(\d+)", page.url).group(1))
        trial = load_study(load_workspace(ws_path), "e2e").trials[number]
        page.screenshot(path=str(ARTIFACTS / "2-mixer-from-point.png"))
        shown = page.get_by_test_id("stSliderThumbValue").first.inner_text()
        assert float(shown) == pytest.approx(trial.user_attrs["mixture"]["alpha"], abs=0.006)
        page.get_by_role("link", name="Study").click()  # back through the sidebar: still on e2e
        expect(page.get_by_role("button", name="Export report")).to_be_visible(timeout=120_000)
        assert "/study" in page.url and "study=e2e" in page.url
        page.get_by_role("button", name="Export report").click()
        expect(page.get_by_text("Report written")).to_be_visible(timeout=120_000)
        page.get_by_role("button", name="Stop workers").click()
        report = ws_path / "reports" / "e2e.html"
        assert report.is_file()
        # The report opens offline: no network at all, plotly inlined, the trials listed.
        page.context.set_offline(True)
        page.goto(report.as_uri())
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
        rows = page.locator("h2:text('Trials') + table tbody tr").count()
        assert rows >= 3  # every trial of the study at export time, one row each
        expect(page.get_by_role("heading", name="Recommendation")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "3-report-offline.png"), full_page=False)


def test_viewer_walk_has_no_write_control_and_writes_nothing(tiny_workspace: Path) -> None:
    from playwright.sync_api import expect

    ws = load_workspace(tiny_workspace)
    create_study(ws, "shared", sampler="random")
    Worker(ws, "shared", device="cpu", log=lambda s: None).run(4)
    before = _files(tiny_workspace.parent)
    with streamlit(tiny_workspace, cwd=ROOT, DEMIX_PASSWORD="edit-pw", DEMIX_VIEW_PASSWORD="view-pw") as url, \
            browser_page() as page:
        page.goto(f"{url}/study?view=0", timeout=90_000)
        page.get_by_label("Password", exact=True).fill("view-pw")
        page.get_by_label("Password", exact=True).press("Enter")
        expect(page.get_by_text("View only")).to_be_visible(timeout=60_000)
        ready = {"Study": page.get_by_text("Trials: complete 4"), "Mixer": page.get_by_text("Recipe (JSON)"),
                 "Recommend": page.get_by_text("Run the predictor"), "Validate": page.get_by_text("needs at least 3"),
                 "Workspace": page.get_by_text("compatible").first}
        for title in ("Study", "Mixer", "Recommend", "Validate", "Workspace", "Study"):
            page.get_by_role("link", name=title).click()
            expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=90_000)
            expect(ready[title]).to_be_visible(timeout=150_000)  # the page ran to its end
            page.wait_for_timeout(500)
            assert page.get_by_role("button", name=WRITE_BUTTONS).count() == 0, title
            page.screenshot(path=str(ARTIFACTS / f"viewer-{title.lower()}.png"))
    assert _files(tiny_workspace.parent) == before


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net shows them) of the sockets listening on ``port``."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                out.append(addr)
    return out


def test_server_started_elsewhere_listens_on_loopback_or_asks(tiny_workspace: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1
    with streamlit(tiny_workspace, cwd=elsewhere) as url:  # the README's command, from another folder
        port = int(url.rsplit(":", 1)[1])
        addresses = _listening(port)
        assert addresses and set(addresses) <= loopback, addresses
    with streamlit(tiny_workspace, cwd=elsewhere, address=None) as url, browser_page() as page:
        port = int(url.rsplit(":", 1)[1])
        assert not set(_listening(port)) <= loopback  # no config read: it listens on every interface
        page.goto(url, timeout=90_000)
        expect(page.get_by_text("every interface")).to_be_visible(timeout=90_000)
        assert page.get_by_role("link", name="Study").count() == 0  # no page is served
        page.screenshot(path=str(ARTIFACTS / "gate-refuses.png"))


def test_table_workspace_walk(tmp_path: Path) -> None:
    """A table workspace (past runs, no checkpoints) page by page: no traceback anywhere; the Study page's front opens
    a run in the Mixer, whose predictions follow a slider; Recommend gives the noise floor; Validate the verdict."""
    from playwright.sync_api import expect

    from demix_core.runs.importer import import_runs

    runs = ROOT / "tests" / "fixtures" / "runs" / "regmix"
    ws_path = tmp_path / "tables" / "regmix"
    import_runs(ws_path, runs / "train_mixture_1m.csv", runs / "train_pile_loss_1m.csv", study="s1m")
    import_runs(ws_path, runs / "test_mixture_1B.csv", runs / "test_pile_loss_1B.csv", references=True)

    def no_traceback(title: str) -> None:
        page.wait_for_timeout(1500)  # the page ran to its end and its tables are drawn
        assert page.get_by_test_id("stException").count() == 0, title
        page.screenshot(path=str(ARTIFACTS / f"table-{title}.png"))

    with streamlit(ws_path, cwd=ROOT) as url, browser_page() as page:
        page.goto(f"{url}/workspace", timeout=90_000)
        expect(page.get_by_text("table of past runs and has no checkpoints")).to_be_visible(timeout=90_000)
        expect(page.get_by_text("Studies of imported runs")).to_be_visible()
        expect(page.get_by_test_id("stDataFrame").nth(2)).to_be_visible(timeout=60_000)  # the references
        no_traceback("workspace")
        page.get_by_role("link", name="Study").click()
        expect(page.get_by_text("12 imported runs")).to_be_visible(timeout=90_000)
        expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible(timeout=60_000)
        no_traceback("study")
        page.wait_for_timeout(2500)  # let the chart settle before clicking
        _click_front_point(page)
        page.wait_for_url(re.compile(r"/mixer\?.*mixture="), timeout=60_000)
        expect(page.get_by_text(re.compile(r"predicted by the \w+ regressors fitted on 12 runs"))).to_be_visible(
            timeout=90_000)
        expect(page.get_by_text("nothing is measured here")).to_be_visible()
        no_traceback("mixer")
        before = re.search(r"mixture=([^&]+)", page.url).group(1)
        slider = page.get_by_role("slider").nth(0)
        slider.focus()
        slider.press("PageUp")  # +0.1 on the first domain; the others rebalance
        page.wait_for_function(f"() => !location.search.includes({before!r})", timeout=60_000)
        expect(page.get_by_text(re.compile(r"predicted by the \w+ regressors"))).to_be_visible(timeout=60_000)
        no_traceback("mixer-moved")
        page.get_by_role("link", name="Recommend").click()
        page.get_by_role("button", name="Run the predictor").click(timeout=90_000)
        expect(page.get_by_text("Noise floor from 2 mixtures run more than once")).to_be_visible(timeout=120_000)
        expect(page.get_by_role("button", name=re.compile("Download for"))).to_be_visible()
        no_traceback("recommend")
        page.get_by_role("link", name="Validate").click()
        expect(page.get_by_text(re.compile(r"Verdict: "))).to_be_visible(timeout=120_000)
        expect(page.get_by_role("tab", name="regression on s1m")).to_be_visible()
        no_traceback("validate")
