"""End to end in a real browser: Playwright driving Debian's Chromium against `streamlit run`.

Open the mixer, move a slider, see the scores change, add the mixture to the study, start a worker
from the study page and see the new trial land there live (no reload). Screenshots go to
``test-artifacts/``. Skips without Chromium, except under CI where it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from demix_core.search.study import create_study, load_study
from demix_core.workspace import load_workspace

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ROOT = Path(__file__).resolve().parent.parent


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def server(tiny_workspace: Path):
    if _chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required under CI (apt-get install chromium)")
        pytest.skip("no chromium on this machine: apt-get install chromium to run the browser test")
    pytest.importorskip("playwright")
    create_study(load_workspace(tiny_workspace), "e2e", sampler="random")
    port = _free_port()
    env = {**os.environ, "DEMIX_ALLOWED_ROOT": str(tiny_workspace.parent), "DEMIX_WORKSPACE": str(tiny_workspace),
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"),
                             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    yield f"http://127.0.0.1:{port}", tiny_workspace
    proc.terminate()
    proc.wait(timeout=20)
    # Workers the page started are separate processes: stop any that outlived the server.
    subprocess.run(["pkill", "-f", f"demix_core worker --workspace {tiny_workspace}"], check=False)


@pytest.mark.browser
def test_mixer_to_study_in_a_browser(server) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, ws_path = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/mixer?study=e2e", timeout=60_000)
        metric = page.get_by_test_id("stMetricValue").first
        expect(metric).to_be_visible(timeout=60_000)
        before = metric.inner_text()
        page.screenshot(path=str(ARTIFACTS / "1-mixer.png"))
        slider = page.get_by_role("slider").nth(1)  # beta
        slider.focus()
        for _ in range(15):
            slider.press("ArrowRight")
        expect(metric).not_to_have_text(before, timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "2-mixer-moved.png"))
        page.get_by_role("button", name="Add to study").click()
        expect(page.get_by_text("Queued")).to_be_visible(timeout=30_000)
        study = load_study(load_workspace(ws_path), "e2e")
        assert len(study.trials) == 1 and study.trials[0].user_attrs["source"] == "manual"

        page.goto(f"{url}/study?study=e2e", timeout=60_000)
        expect(page.get_by_text("No finished trials yet")).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "3-study-empty.png"))
        page.get_by_role("button", name="Start worker").click()
        start = time.monotonic()
        # Live: time from the trial's completion in the storage to its appearance on the open page.
        in_storage = on_page = None
        study = load_study(load_workspace(ws_path), "e2e")
        while time.monotonic() - start < 120 and on_page is None:
            if in_storage is None and study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                in_storage = time.monotonic()
            if page.get_by_text(re.compile(r"complete [1-9]")).count():  # the worker goes on after it
                on_page = time.monotonic()
            page.wait_for_timeout(100)
        assert in_storage is not None and on_page is not None, "the trial never showed up"
        landed, lag = on_page - start, on_page - in_storage
        assert lag <= 3.0, f"the page showed the new trial {lag:.1f}s after it landed in the storage"
        page.screenshot(path=str(ARTIFACTS / "4-study-live.png"))
        done = [t for t in load_study(load_workspace(ws_path), "e2e").trials if t.state.name == "COMPLETE"]
        assert done and done[0].user_attrs["source"] == "manual"
        page.get_by_role("button", name="Stop workers").click()
        browser.close()
    print(f"first trial shown {landed:.1f}s after starting the worker (includes loading it), "
          f"{lag:.1f}s after it landed in the storage")
