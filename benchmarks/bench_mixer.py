"""Mixer latency: slider change -> predicted and measured scores, idle and beside a local worker.

Copies the workspace's manifest into a temporary folder under /tmp (same components, its own SQLite storage
there), creates a study and runs a few trials (the surrogate needs K + 1), then times 20 slider changes:

* server-side: the Mixer page driven by Streamlit's AppTest (one session; each change is a new mixture).
  The page stamps the change when its widget callback fires and records when the predicted and the
  measured scores were handed to Streamlit (``_mixer_times`` in the session state): those two figures.
* on screen (``--browser``): a Streamlit server on the copy and Chromium (1280 x 900); each change is one
  ArrowRight key press on the first slider, timed until the status line shows that mixture as predicted,
  then as measured.

Each is run idle, with one local worker started the dashboard's way (``LocalWorkers.start``: background
priority, paused while the Mixer measures), and, for reference, with one plain worker (``demix study run``'s
way, no yielding).

    python benchmarks/bench_mixer.py [--workspace workspace/demo] [--changes 20] [--browser]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from demix_core.search.study import counts, create_study, load_study  # noqa: E402
from demix_core.workspace.manifest import Workspace, load_workspace  # noqa: E402

STUDY = "bench-mixer"


def copy_workspace(src_path: str, root: Path) -> Workspace:
    """The workspace's manifest in ``root`` with absolute paths into the original and storage in ``root``."""
    src = load_workspace(src_path)
    base = Path(src_path).resolve()
    src.root, src.storage = root, f"sqlite:///{root / 'bench.db'}"
    for c in src.components:
        c.path = str(base / c.path) if not Path(c.path).is_absolute() else c.path
    for d in src.datasets:
        d.train, d.heldout = str(base / d.train), str(base / d.heldout)
    src.base = str(base / src.base) if src.base else None
    src.tokenizer = str(base / src.tokenizer) if src.tokenizer else None
    src.references = []
    src.save()
    return load_workspace(root)


def summary(label: str, values: list[float]) -> str:
    ms = [v * 1e3 for v in values]
    return f"{label}: median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms (n={len(ms)})"


def complete(ws: Workspace) -> int:
    return counts(load_study(ws, STUDY)).get("COMPLETE", 0)


def worker_running(ws: Workspace, start: Callable[[], object], wait_for: int) -> None:
    """Start a worker and wait until it has completed ``wait_for`` trials (it is warm and busy then)."""
    start()
    target = complete(ws) + wait_for
    deadline = time.monotonic() + 300
    while complete(ws) < target and time.monotonic() < deadline:
        time.sleep(0.5)
    if complete(ws) < target:
        raise SystemExit("the worker completed no trial within 300 s; is the machine overloaded?")


def server_side(ws: Workspace, changes: int, names: list[str], offset: float) -> tuple[list[float], list[float], int]:
    """(predicted seconds, measured seconds, recalled) over ``changes`` slider changes under AppTest."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "mixer.py"), default_timeout=300)
    at.query_params["study"] = STUDY
    at.run()
    if at.exception:
        raise SystemExit(f"the mixer page failed: {at.exception}")
    predicted, measured, recalled = [], [], 0
    first = names[0]
    start = at.slider(key=f"w_{first}").value
    for i in range(changes):
        value = round(min(0.95, start + offset + 0.0137 * (i + 1)), 4)  # a new mixture each time, in each phase
        at.slider(key=f"w_{first}").set_value(value).run()
        if at.exception:
            raise SystemExit(f"the mixer page failed: {at.exception}")
        times = at.session_state["_mixer_times"]
        if "predicted_s" not in times:
            raise SystemExit("the page showed no prediction (too few finished trials?)")
        predicted.append(times["predicted_s"])
        measured.append(times["measured_s"])
        recalled += bool(times.get("recalled"))
    return predicted, measured, recalled


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def first_weights(k: int, shift: float) -> list[float]:
    """A start mixture per phase (each phase measures mixtures no other phase measured)."""
    head = round(1.0 / k + shift, 4)
    return [head] + [(1.0 - head) / (k - 1)] * (k - 1)


def on_screen(url: str, changes: int, names: list[str], *, start_worker: bool, ws: Workspace,
              pause_ms: int = 1000, shift: float = 0.0) -> tuple[list[float], list[float], list[float]]:
    """(key press -> predicted on screen, key press -> measured on screen, the server's own widget change ->
    measured time for the same change) in Chromium, seconds."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("--browser needs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        if start_worker:  # the user's way: the Study page's Start worker button (the server's LocalWorkers)
            page.goto(f"{url}/study?study={STUDY}", timeout=120_000)
            page.get_by_role("button", name="Start worker").click(timeout=120_000)
            target = complete(ws) + 2
            deadline = time.monotonic() + 300
            while complete(ws) < target and time.monotonic() < deadline:
                page.wait_for_timeout(500)
        start = ",".join(f"{n}={w:.4f}" for n, w in zip(names, first_weights(len(names), shift)))
        page.goto(f"{url}/mixer?study={STUDY}&mixture={start}", timeout=120_000)
        page.get_by_text(re.compile(r"measured \(merged weights")).first.wait_for(timeout=300_000)
        slider = page.get_by_role("slider").nth(0)
        slider.focus()
        value = float(page.get_by_test_id("stSliderThumbValue").first.inner_text())
        predicted, measured, server = [], [], []
        # the status line names the mixture and the stage; a measurement that lands within one frame of the
        # prediction may replace it before it is painted: the predicted time is then the measured one
        js = """([stages, label]) => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
                  .some(e => e.innerText.includes(label) && stages.some(s => e.innerText.includes(s)))"""
        for _ in range(changes):
            value = round(value + 1e-4, 4)
            label = f"{names[0]}={value:.4f} "
            t0 = time.perf_counter()
            slider.press("ArrowRight")
            page.wait_for_function(js, arg=[["predicted", "measured ("], label], polling="raf", timeout=120_000)
            predicted.append(time.perf_counter() - t0)
            page.wait_for_function(js, arg=[["measured ("], label], polling="raf", timeout=120_000)
            measured.append(time.perf_counter() - t0)
            status = page.get_by_text(re.compile(r"measured \(merged weights")).first.inner_text()
            stamp = re.search(r"on screen (\d+) ms after the change", status)
            server.append(int(stamp.group(1)) / 1e3 if stamp else float("nan"))
            page.wait_for_timeout(pause_ms)
        if start_worker:
            page.goto(f"{url}/study?study={STUDY}", timeout=120_000)
            page.get_by_role("button", name="Stop workers").click(timeout=120_000)
            page.wait_for_timeout(1000)
        browser.close()
    return predicted, measured, server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--workspace", default="workspace/demo")
    p.add_argument("--changes", type=int, default=20)
    p.add_argument("--trials", type=int, default=12, help="trials run before timing (the surrogate needs K + 1)")
    p.add_argument("--browser", action="store_true", help="also time key press -> number on screen in Chromium")
    p.add_argument("--pause-ms", type=int, default=1000,
                   help="pause after each change's measured scores before the next key press (lets the figures draw)")
    p.add_argument("--browser-only", action="store_true", help="skip the server-side phases")
    p.add_argument("--skip-reference", action="store_true", help="skip the plain (non-yielding) worker phase")
    args = p.parse_args(argv)
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage())
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average, {os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="bench-mixer-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp) / "ws"
        ws = copy_workspace(args.workspace, root)
        names = list(ws.component_names)
        create_study(ws, STUDY, sampler="front")
        from demix_core.search.launch import start_workers

        t0 = time.perf_counter()
        [proc] = start_workers(ws.root, STUDY, n_trials=args.trials, quiet=True)
        proc.wait()
        print(f"{args.trials} trials for the surrogate in {time.perf_counter() - t0:.1f}s")
        os.environ["DEMIX_ALLOWED_ROOT"] = str(root.parent)
        os.environ["DEMIX_WORKSPACE"] = str(root)
        from app.workers import local_workers

        rows: list[str] = []

        def phase(label: str, start: Callable[[], object] | None, stop: Callable[[], object] | None) -> None:
            if start is not None:
                worker_running(ws, start, 2)
            before = complete(ws)
            load = os.getloadavg()[0]
            t = time.perf_counter()
            pred, meas, recalled = server_side(ws, args.changes, names, offset=0.0011 * len(rows))
            spent = time.perf_counter() - t
            done = complete(ws) - before
            if stop is not None:
                stop()
            rows.append(summary(f"server-side, {label}: predicted", pred))
            rows.append(summary(f"server-side, {label}: measured", meas) +
                        f"; recalled {recalled}; load {load:.2f}; worker trials meanwhile {done} in {spent:.1f}s")
            print(rows[-2], rows[-1], sep="\n", flush=True)

        workers = local_workers()
        if not args.browser_only:
            phase("idle", None, None)
            phase("one dashboard worker (yielding)",
                  lambda: workers.start(ws, STUDY, "auto", trials=100_000), lambda: workers.stop(STUDY))
            time.sleep(2)
        if not args.skip_reference and not args.browser_only:
            plain: list[subprocess.Popen[bytes]] = []
            phase("one plain worker (no yielding, reference)",
                  lambda: plain.extend(start_workers(ws.root, STUDY, n_trials=100_000, quiet=True)),
                  lambda: [w.terminate() for w in plain])
        if args.browser:
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"), "--server.port", str(port),
                 "--server.address", "127.0.0.1", "--server.headless", "true"], cwd=ROOT, env=os.environ.copy(),
                stdout=subprocess.DEVNULL, stderr=(root.parent / "server.log").open("wb"))
            try:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        time.sleep(0.3)
                url = f"http://127.0.0.1:{port}"
                phases = ((0.05, "idle", False), (0.1, "one dashboard worker (yielding)", True))
                for shift, label, with_worker in phases:
                    load = os.getloadavg()[0]
                    pred, meas, server_s = on_screen(url, args.changes, names, start_worker=with_worker, ws=ws,
                                                      pause_ms=args.pause_ms, shift=shift)
                    rows.append(summary(f"on screen (Chromium), {label}: key press -> predicted", pred))
                    rows.append(summary(f"on screen (Chromium), {label}: key press -> measured", meas) +
                                f"; load {load:.2f}")
                    rows.append(summary(f"  of which the server's widget change -> measured ({label})", server_s))
                    print(*rows[-3:], sep="\n", flush=True)
            except Exception:
                print("server log (tail):", (root.parent / "server.log").read_text()[-3000:], sep="\n")
                raise
            finally:
                server.terminate()
                server.wait(timeout=30)
        print("\nsummary (20 changes each unless --changes):")
        for row in rows:
            print("  " + row)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
