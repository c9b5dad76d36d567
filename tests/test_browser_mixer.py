"""Two Mixer sessions at once in a real browser, on one server (one shared engine, one live proxy).

Each page must show the CLI's numbers for its own mixture (``demix eval --workspace ... --mixture ... --json``),
also when both pages rerun at the same moment; ten quick key presses all count (keys step 0.0001 from the exact
weight) and the page ends on the last one's measured scores; at 1280 px every lock is visible. Skips without
Chromium, except under CI where it must run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
MIXTURES = ("alpha=0.8,beta=0.1,gamma=0.1", "alpha=0.1,beta=0.1,gamma=0.8")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def mixer_server(tiny_workspace: Path):
    if _chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required under CI (apt-get install chromium)")
        pytest.skip("no chromium on this machine: apt-get install chromium to run the browser test")
    pytest.importorskip("playwright")
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


def cli_domains(ws: Path, mixtures: list[str]) -> list[list[str]]:
    """The CLI's domain scores for each mixture, formatted as the mixer shows them (4 decimals)."""
    procs = [subprocess.Popen([sys.executable, "-m", "demix_core", "eval", "--workspace", str(ws), "--mixture", m,
                               "--device", "cpu", "--json"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for m in mixtures]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        out.append([f"{v:.4f}" for v in json.loads(stdout)["domains"].values()])
    return out


def shown(page) -> list[str]:  # noqa: ANN001 - a Playwright page
    return [m.inner_text() for m in page.get_by_test_id("stMetricValue").all()]


def page_mixture(page) -> str:  # noqa: ANN001 - a Playwright page
    return parse_qs(urlparse(page.url).query)["mixture"][0]


@pytest.mark.browser
def test_two_mixer_sessions_show_their_own_scores(mixer_server) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, ws = mixer_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--no-first-run"])
        pages = [browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                 for _ in MIXTURES]  # two sessions (separate contexts)
        for page, mix in zip(pages, MIXTURES):
            page.goto(f"{url}/mixer?mixture={mix}", wait_until="commit", timeout=60_000)  # both load at once
        for page in pages:
            expect(page.get_by_test_id("stMetricValue").first).to_be_visible(timeout=90_000)
        expected = cli_domains(ws, list(MIXTURES))
        assert expected[0] != expected[1]
        assert [shown(page) for page in pages] == expected

        # Both sessions rerun at the same moment on the shared engine: alpha up in one, gamma up in the other.
        sliders = [pages[0].get_by_role("slider").nth(0), pages[1].get_by_role("slider").nth(2)]
        for slider in sliders:
            slider.focus()
        for slider in sliders:  # one step each, at the same moment
            slider.press("ArrowRight")
        for page, name in zip(pages, ("alpha", "gamma")):  # (one step of 0.0001 may not move a 4-decimal score)
            deadline = time.monotonic() + 60  # the URL follows the rerun: 0.80 + one step of 0.0001
            while f"{name}=0.8001" not in page_mixture(page) and time.monotonic() < deadline:
                page.wait_for_timeout(200)
        moved = [page_mixture(page) for page in pages]
        assert "alpha=0.8001" in moved[0] and "gamma=0.8001" in moved[1], moved
        for page, numbers in zip(pages, cli_domains(ws, moved)):
            for i, value in enumerate(numbers):  # polls until the page's last rerun has drawn
                expect(page.get_by_test_id("stMetricValue").nth(i)).to_have_text(value, timeout=60_000)

        # Ten quick key presses, none lost: the slider ends 10 steps up and the page on that mixture's scores.
        page = pages[0]
        for lock in page.get_by_text("lock", exact=True).all():  # the locks are visible at 1280 px
            box = lock.bounding_box()
            assert box is not None and box["width"] > 0 and box["x"] + box["width"] <= 1280
        slider = page.get_by_role("slider").nth(0)
        slider.focus()
        for _ in range(10):
            slider.press("ArrowRight")
            page.wait_for_timeout(40)
        deadline = time.monotonic() + 60
        while "alpha=0.8011" not in page_mixture(page) and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        final = page_mixture(page)
        assert "alpha=0.8011" in final, final
        assert sum(float(p.split("=")[1]) for p in final.split(",")) == pytest.approx(1.0, abs=1e-9)
        expect(page.get_by_test_id("stSliderThumbValue").first).to_have_text("0.8011", timeout=30_000)
        for i, value in enumerate(cli_domains(ws, [final])[0]):
            expect(page.get_by_test_id("stMetricValue").nth(i)).to_have_text(value, timeout=60_000)
        expect(page.get_by_text(re.compile(r"measured \(merged weights"))).to_be_visible(timeout=30_000)
        browser.close()
