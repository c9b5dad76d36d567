"""Your past runs at RegMix's scale: import 512 runs x 13 metrics, fit the predictor, predict one mixture.

Writes a synthetic, seeded table in RegMix's layout (17 domains, 13 metrics ``metric/<name>_val_loss``, weights
written with 3 decimals) under a temporary folder, then times, each once:

* the import (``demix import-runs``' function: read, check, make the table workspace and study, add 512 trials);
* the predictor fit on the study (:class:`~demix_core.search.predictor.Predictor`: out-of-fold Spearman and the
  final fit of each of the 13 metrics), as ``demix recommend`` and ``demix validate`` do;
* one prediction (all 13 metrics for one mixture: what the Mixer does after a slider move), median of 20;
* with ``--mixer``, the Mixer page itself under Streamlit's AppTest: after each of 10 slider moves, the seconds from
  the move to the predicted scores handed to Streamlit (``_mixer_times["predicted_s"]``, server side), median.

The issue's targets on 2 CPU cores: import + fit <= 15 s, one prediction (and the Mixer's, after a move) <= 200 ms.

    python benchmarks/bench_runs.py [--runs 512] [--metrics 13] [--domains 17] [--seed 0] [--mixer]
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

from demix_core.runs.importer import import_runs  # noqa: E402
from demix_core.runs.table_study import oriented_metrics  # noqa: E402
from demix_core.search.predictor import Predictor  # noqa: E402
from demix_core.search.study import load_study  # noqa: E402
from demix_core.workspace.manifest import load_workspace  # noqa: E402


def write_table(folder: Path, runs: int, metrics: int, domains: int, seed: int) -> tuple[Path, Path]:
    """A RegMix-shaped table: losses fall with the weight on the metric's own domain, with interactions and noise."""
    rng = np.random.default_rng(seed)
    names = [f"train_domain_{i:02d}" for i in range(domains)]
    x = np.round(rng.dirichlet(np.full(domains, 0.4), size=runs), 3)
    mix = ["index," + ",".join(names)] + [f"{i}," + ",".join(f"{w:.3f}" for w in row) for i, row in enumerate(x, 1)]
    inter = rng.normal(0, 0.3, size=(metrics, domains))
    loss = 5.0 - 2.0 * np.log1p(8 * x[:, :metrics]) + (x @ inter.T) * x[:, :metrics] + rng.normal(0, 0.02,
                                                                                                 (runs, metrics))
    header = "index," + ",".join(f"metric/domain_{j:02d}_val_loss" for j in range(metrics))
    sco = [header] + [f"{i}," + ",".join(f"{v:.6f}" for v in row) for i, row in enumerate(loss, 1)]
    m, s = folder / "train_mixture.csv", folder / "train_loss.csv"
    m.write_text("\n".join(mix) + "\n")
    s.write_text("\n".join(sco) + "\n")
    return m, s


def mixer_after_moves(root: Path, moves: int = 10) -> tuple[float, float]:
    """(seconds of the page's first run, which fits the predictor; median seconds from a slider move to the predicted
    scores on the Mixer page of the table workspace at ``root``), under AppTest."""
    from streamlit.testing.v1 import AppTest

    os.environ.update(DEMIX_ALLOWED_ROOT=str(root.parent), DEMIX_WORKSPACE=str(root))
    t0 = time.perf_counter()
    at = AppTest.from_file(str(ROOT / "pages" / "mixer.py"), default_timeout=600).run()
    first = time.perf_counter() - t0
    slider = at.slider[0].key
    times = []
    for i in range(moves):
        at.slider(key=slider).set_value(0.1 + 0.8 * i / max(1, moves - 1)).run()
        times.append(float(at.session_state["_mixer_times"]["predicted_s"]))
    return first, statistics.median(times)


def main() -> None:
    """Time the import, the fit and one prediction; print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=512)
    ap.add_argument("--metrics", type=int, default=13)
    ap.add_argument("--domains", type=int, default=17)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mixer", action="store_true", help="also time the Mixer page after slider moves (AppTest)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        m, s = write_table(Path(tmp), args.runs, args.metrics, args.domains, args.seed)
        objectives = ",".join(f"domain_{j:02d}_val_loss" for j in range(min(args.metrics, 3)))
        t0 = time.perf_counter()
        report = import_runs(Path(tmp) / "ws", m, s, study="bench", objectives=objectives)
        t_import = time.perf_counter() - t0
        ws = load_workspace(Path(tmp) / "ws")
        study = load_study(ws, "bench")
        t0 = time.perf_counter()
        x, y = oriented_metrics(study, report.table.metrics)
        model = Predictor.fit(x, y, seed=args.seed)
        t_fit = time.perf_counter() - t0
        one = x[:1]
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            model.predict(one)
            times.append(time.perf_counter() - t0)
        rho = float(np.nanmean(list(model.spearman.values())))
        mixer = mixer_after_moves(Path(tmp) / "ws") if args.mixer else None
    print(f"{args.runs} runs x {args.metrics} metrics over {args.domains} domains ({os.cpu_count()} CPU cores)")
    print(f"import (read, check, workspace, study, {len(report.imported)} trials): {t_import:6.2f} s")
    print(f"predictor fit ({model.kind}, 5-fold out-of-fold Spearman + final fit): {t_fit:6.2f} s "
          f"(mean out-of-fold Spearman {rho:.3f})")
    print(f"import + fit: {t_import + t_fit:6.2f} s (target <= 15 s on 2 cores)")
    print(f"one prediction, {args.metrics} metrics: {statistics.median(times) * 1000:6.1f} ms median of 20 "
          "(target <= 200 ms)")
    if mixer is not None:
        print(f"Mixer page: first run (fits the predictor) {mixer[0]:6.2f} s; slider move -> predicted scores "
              f"{mixer[1] * 1000:6.1f} ms median of 10, server side (target <= 200 ms)")


if __name__ == "__main__":
    main()
