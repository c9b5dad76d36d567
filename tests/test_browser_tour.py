"""The tour in a real browser: the dashboard opens on a demo folder with nothing built, an editor starts the tour with
one click, and the pages fill themselves: the Workspace page shows the components when they land, the Validate page
ends on the verdict, with no reload and no command typed.

Uses the quick sizes (the tour record says so); skips without Chromium, except under CI where it must run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_browser import ARTIFACTS, _settle, browser_page, streamlit

from demix_core.tour import state
from demix_core.tour.stages import NAMES
from demix_core.tour.status import tour_status

pytestmark = pytest.mark.browser


def test_the_dashboard_opens_first_and_fills_as_the_tour_lands(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    root = tmp_path / "demo"
    root.mkdir()
    state.set_field(root, until="verdict", quick=True, stages_planned=list(NAMES[:6]))  # quick sizes, no stage run
    with streamlit(root, cwd=tmp_path) as url, browser_page() as page:
        page.goto(f"{url}/workspace", timeout=90_000)
        expect(page.get_by_text("Waiting for the demo's components")).to_be_visible(timeout=90_000)
        _settle(page)
        start = page.get_by_role("button", name="Build the demo and take it to a verdict")
        expect(start).to_have_count(1, timeout=60_000)
        start.click()
        expect(page.get_by_text(re.compile(r"Stage 1 of 6: the datasets"))).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "tour-1-building.png"))
        # The page fills itself: the components' table and compatibility appear without a reload.
        expect(page.get_by_text("Compatibility report")).to_be_visible(timeout=300_000)
        page.screenshot(path=str(ARTIFACTS / "tour-2-components.png"))
        page.get_by_role("link", name="Validate").click()
        expect(page.get_by_role("heading", name="Validate", exact=True)).to_be_visible(timeout=90_000)
        verdict = page.get_by_text(re.compile(r"Loop: the trained recommendation ranks \d+ of \d+")).first
        expect(verdict).to_be_visible(timeout=600_000)
        expect(page.get_by_text("Proxy to trust on this workspace")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "tour-3-verdict.png"))
    status = tour_status(root)
    assert status.finished and [s.status for s in status.stages] == ["done"] * 6
