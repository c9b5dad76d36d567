"""The mixture download shared by the Recommend and Mixer pages: a training framework's data config.

A table workspace has no dataset files: the path each framework reads per domain is typed in (``demix export-mixture
--path domain=PATH`` on the command line), each defaulting to the domain's name.
"""

from __future__ import annotations

import streamlit as st

from demix_core.errors import ConfigError, DemixError
from demix_core.export.frameworks import FORMATS, UNITS, export_text
from demix_core.mixing.mixture import Mixture
from demix_core.mixing.pairs import parse_named
from demix_core.workspace.feasible import max_target_tokens
from demix_core.workspace.manifest import Workspace


def _path(text: str) -> str:
    path = text.strip()
    if not path:
        raise ValueError(text)
    return path


def _table_paths(ws: Workspace, key: str) -> dict[str, str]:
    """The path per domain typed for a table workspace (one ``domain=PATH`` a line).

    Raises:
        ConfigError: An entry that is not ``domain=PATH``.
    """
    text = st.text_area("Dataset paths (domain=PATH, one a line)", value="\n".join(f"{n}={n}" for n in
                                                                                    ws.component_names),
                        key=f"{key}_paths", help="a table workspace has no dataset files: the path each framework "
                                                 "reads for each domain (default: the domain's name)")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return parse_named(lines, what="dataset paths", example=f"{ws.component_names[0]}=/data/{ws.component_names[0]}",
                       value=_path, expected="a path", error=ConfigError)


DEFAULT_TARGET = 1_000_000_000


def default_target(budget_target: int | None, most: int | None) -> int:
    """The download's first target: the budget's, else 1e9 tokens or, when the data holds less for this mixture
    within its epoch caps, that amount rounded down to 3 significant digits (so the first download is feasible)."""
    if budget_target:
        return int(budget_target)
    if most is None or most >= DEFAULT_TARGET:
        return DEFAULT_TARGET
    if most < 1:
        return 1
    step = 10 ** max(0, len(str(int(most))) - 3)
    return max(1, int(most) // step * step)


def mixture_download(ws: Workspace, mixture: Mixture, *, key: str) -> None:
    """Format, target tokens (default: the budget's) and, for OLMo-core, the global batch size (and on a table
    workspace the dataset paths); then a download of the export, or the one-line reason why this mixture cannot be
    trained at that target."""
    c1, c2, c3 = st.columns(3)
    fmt = c1.selectbox("Format", FORMATS, key=f"{key}_fmt",
                       format_func=lambda f: f"{f} ({UNITS[f]})")
    most = None if ws.is_table else max_target_tokens(ws, mixture.as_dict())
    target = c2.number_input("Target tokens", min_value=1, value=default_target(ws.budget.target_tokens, most),
                             step=1_000_000, key=f"{key}_target")
    c2.caption(f"{int(target):,} tokens"  # a number input shows no thousands separators
               + (f"; this mixture can train on up to {most:,} within the epoch caps" if most else ""))
    batch = c3.number_input("Global batch (tokens)", min_value=1, value=4_194_304, step=2048, key=f"{key}_batch",
                            disabled=fmt != "olmo-core", help="OLMo-core only: tokens per optimizer step")
    c3.caption(f"{int(batch):,} tokens per step")
    try:
        paths = _table_paths(ws, key) if ws.is_table else None
        name, text, warning = export_text(ws, mixture, fmt, target_tokens=int(target), paths=paths,
                                          global_batch_size=int(batch))
    except DemixError as exc:
        st.warning(str(exc))
        return
    if warning:
        st.warning(warning, icon=":material/repeat:")
    st.download_button(f"Download for {fmt}", text, file_name=name, key=f"{key}_download",
                       icon=":material/download:")
