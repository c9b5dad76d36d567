"""CLI start-up: how long ``python -m demix_core ... --help`` and an argument error take (median of runs).

The command modules import the light core at the top and load torch, Optuna and lm-eval only inside
the commands that need them; this prints what that buys for help and for bad arguments.

    python benchmarks/bench_cli.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "demix --help": ["--help"],
    "demix study create --help": ["study", "create", "--help"],
    "demix merge (missing arguments)": ["merge"],
    "python -c 'import demix_core.search.study' (Optuna)": None,
}


def seconds(args: list[str] | None) -> float:
    """Wall time of one fresh interpreter running the CLI with ``args`` (or importing search.study)."""
    cmd = [sys.executable, "-m", "demix_core", *args] if args is not None else \
        [sys.executable, "-c", "import demix_core.search.study"]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    """Print the median and the spread of each case."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for name, case in CASES.items():
        runs = [seconds(case) for _ in range(args.repeats)]
        print(f"{name:<55} median {statistics.median(runs):.3f}s  (min {min(runs):.3f}, max {max(runs):.3f}, "
              f"{args.repeats} runs)")


if __name__ == "__main__":
    main()
