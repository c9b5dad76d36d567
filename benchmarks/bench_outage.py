"""Workers through a database outage: how fast they resume, and that nothing is lost or counted twice.

Three `demix worker` processes share a PostgreSQL study through a TCP proxy (tests/tcp_proxy.py); the
proxy is cut for --outage seconds once a few trials are done, then restored. Per run it prints the
seconds from the restore to the first trial completed afterwards, the trials failed by the heartbeat
mechanism and re-run, and checks: exactly --trials complete, none RUNNING or WAITING, no number twice.
The last line gives the median over --repeats runs.

    python benchmarks/bench_outage.py [--workspace DIR] [--trials 24] [--outage 5] [--repeats 3]

Without --workspace it builds a tiny workspace (3 components, hidden size 32) in a temporary folder.
Needs PostgreSQL at 127.0.0.1:5432 (database test, user postgres).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from tcp_proxy import CuttableProxy  # noqa: E402

from demix_core.search.study import create_study, load_study  # noqa: E402
from demix_core.workspace.manifest import ComponentEntry, DatasetEntry, Workspace, load_workspace  # noqa: E402

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def tiny_workspace(root: Path) -> Path:
    """Three tiny components continued from one base, one held-out text each."""
    from demix_core.train.tiny import byte_tokenizer, save_tiny

    tok = byte_tokenizer()
    base = save_tiny(root / "base", seed=0, tokenizer=tok)
    texts = {"alpha": "the quick brown fox jumps over the lazy dog. " * 120,
             "beta": "def f(x): return x + 1\nprint(f(2))\n" * 120, "gamma": "2 + 2 = 4. 3 * 7 = 21. " * 120}
    domains = {"alpha": "general", "beta": "code", "gamma": "math"}
    comps = []
    for i, (name, text) in enumerate(texts.items()):
        save_tiny(root / name, seed=i + 1, base=base, tokenizer=tok, noise=0.05)
        (root / f"{name}.txt").write_text(text)
        comps.append(ComponentEntry(name=name, path=name, domain=domains[name], dataset=name, tokens=1000))
    Workspace(root=root, name="tiny", components=comps, base="base",
              datasets=[DatasetEntry(name=n, domain=domains[n], train=f"{n}.txt", heldout=f"{n}.txt") for n in texts],
              ).save()
    return root


def complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]


def one_run(workspace: Path, n: int, outage: float, sleep: float) -> float:
    """One outage; returns seconds from the restore to the first trial completed after it."""
    ws = load_workspace(workspace)
    name = f"bench-outage-{uuid.uuid4().hex[:8]}"
    create_study(ws, name, sampler="random", storage=PG_URL)
    study = load_study(ws, name, storage=PG_URL)
    proxy = CuttableProxy(("127.0.0.1", 5432), lifetime=900)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "DEMIX_TRIAL_SLEEP": str(sleep)}
    cmd = [sys.executable, "-m", "demix_core", "worker", "--workspace", str(workspace), "--study", name,
           "--n-trials", str(n), "--device", "cpu", "--storage", proxy.url]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(3)]
    try:
        while len(complete(study)) < 4:
            time.sleep(0.05)
        proxy.cut()
        time.sleep(outage)
        before = {t.number for t in complete(study)}
        proxy.restore()
        restored = time.monotonic()
        resumed = None
        while resumed is None and time.monotonic() - restored < 300:
            if {t.number for t in complete(study)} - before:
                resumed = time.monotonic() - restored
            time.sleep(0.05)
        codes = [p.wait(timeout=600) for p in procs]
        trials = study.get_trials(deepcopy=False)
        done = complete(study)
        stuck = [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        failed = [t for t in trials if t.state == TrialState.FAIL]
        retried = [t for t in done if "failed_trial" in t.system_attrs]
        ok = codes == [0, 0, 0] and len(done) == n and not stuck and len({t.number for t in done}) == n
        print(f"  outage {outage:.0f}s: resumed {resumed:.2f}s after the restore; {len(done)} complete, "
              f"{len(failed)} failed and {len(retried)} re-run, {len(stuck)} stuck, exit codes {codes} -> "
              f"{'OK' if ok else 'WRONG'}", flush=True)
        return resumed if resumed is not None else float("nan")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        proxy.close()
        optuna.delete_study(study_name=name, storage=PG_URL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", default=None)
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--outage", type=float, default=5.0)
    ap.add_argument("--sleep", type=float, default=0.4, help="extra seconds per trial (DEMIX_TRIAL_SLEEP)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from demix_core.cli import quiet_libraries

    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="bench-outage-") as tmp:
        workspace = Path(args.workspace) if args.workspace else tiny_workspace(Path(tmp))
        times = [one_run(workspace, args.trials, args.outage, args.sleep) for _ in range(args.repeats)]
    print(f"resume after a {args.outage:.0f}s outage: median {statistics.median(times):.2f}s over {len(times)} runs "
          f"(3 workers, backoff 0.5 s doubling to 8 s)")


if __name__ == "__main__":
    main()
