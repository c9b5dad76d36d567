"""Study page render time with a large study (default 5,000 trials), measured with Streamlit's AppTest.

Builds a temporary workspace next to the given one (same components, its own SQLite storage), fills a
study with synthetic complete trials (mixtures from a flat Dirichlet, scores from a smooth function),
then times full runs of the study page script (median of several; the first, cold run is shown apart):
once after a new trial lands in the storage (what the live page does) and once with nothing new.

    python benchmarks/bench_dashboard.py [--workspace workspace/demo] [--trials 5000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import optuna  # noqa: E402

from demix_core.mixing.mixture import Mixture, params_from_mixture  # noqa: E402
from demix_core.search.study import create_study, load_study  # noqa: E402
from demix_core.workspace.manifest import load_workspace  # noqa: E402


def fill(study: optuna.Study, names: list[str], domains: list[str], n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    dist = {f"u_{c}": optuna.distributions.FloatDistribution(0.0, 1.0) for c in names}
    target = rng.dirichlet(np.ones(len(names)), size=len(domains))
    trials = []
    for x in rng.dirichlet(np.ones(len(names)), size=n):
        mix = Mixture.from_weights(names, x)
        values = [float(-1.0 - np.abs(x - t).sum()) for t in target]
        trials.append(optuna.trial.create_trial(
            params=params_from_mixture(mix), distributions=dist, values=values,
            user_attrs={"mixture": mix.as_dict(), "source": "bench", "worker": "bench:0", "device": "cpu",
                        "benchmarks": {f"{d}/bpb": -v for d, v in zip(domains, values)}}))
    study.add_trials(trials)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", default="workspace/demo")
    p.add_argument("--trials", type=int, default=5000)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    import logging

    from streamlit.testing.v1 import AppTest

    # AppTest in bare mode warns "missing ScriptRunContext" on each cached call made outside a script run.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage())

    src = load_workspace(args.workspace)
    with tempfile.TemporaryDirectory(prefix="bench-dash-", dir=src.root.parent) as tmp:
        root = Path(tmp)
        src.root, src.storage = root, f"sqlite:///{root / 'bench.db'}"
        for c in src.components:
            c.path = str((Path(args.workspace).resolve() / c.path) if not Path(c.path).is_absolute() else c.path)
        for d in src.datasets:
            d.train = str(Path(args.workspace).resolve() / d.train)
            d.heldout = str(Path(args.workspace).resolve() / d.heldout)
        src.base = str(Path(args.workspace).resolve() / src.base) if src.base else None
        src.tokenizer = str(Path(args.workspace).resolve() / src.tokenizer) if src.tokenizer else None
        src.references = []
        src.save()
        ws = load_workspace(root)
        create_study(ws, "big", sampler="random")
        study = load_study(ws, "big")
        t0 = time.perf_counter()
        fill(study, list(ws.component_names), list(study.metric_names or []), args.trials)
        print(f"filled {args.trials} trials in {time.perf_counter() - t0:.1f}s")
        os.environ["DEMIX_ALLOWED_ROOT"] = str(root.parent)
        os.environ["DEMIX_WORKSPACE"] = str(root)
        def render(expected: int) -> float:
            at = AppTest.from_file(str(ROOT / "pages" / "study.py"), default_timeout=120)
            at.query_params["study"] = "big"
            t0 = time.perf_counter()
            at.run()
            dt = time.perf_counter() - t0
            if at.exception:
                raise SystemExit(f"study page failed: {at.exception}")
            if not any(f"complete {expected}" in c.value for c in at.caption):
                raise SystemExit(f"the study page did not show {expected} complete trials")
            return dt

        print(f"cold run (imports, first storage read): {render(args.trials):.2f}s")
        landing, unchanged = [], []
        for i in range(args.repeats):
            fill(study, list(ws.component_names), list(study.metric_names or []), 1, seed=1000 + i)
            landing.append(render(args.trials + i + 1))  # a trial landed: table and figures rebuilt
            unchanged.append(render(args.trials + i + 1))
        n = args.trials
        for label, times in ((f"a new trial landed ({n + 1}..{n + args.repeats} trials)", landing),
                             (f"no change ({n + 1}..{n + args.repeats} trials)", unchanged)):
            print(f"study page, {label}: median {statistics.median(times):.2f}s, max {max(times):.2f}s over "
                  f"{args.repeats} runs (AppTest, server-side script time incl. storage read and figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
