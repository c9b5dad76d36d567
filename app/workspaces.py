"""What the Workspace page shows and checks: the component table, the held-out loss heatmap, the references by
mixture, the demo, and the checked changes (a new workspace, a component, a reference) that the page saves after
showing their report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.state import DEFAULT_WORKSPACE, OutsideRootError, inside_allowed_root, md, open_workspace
from demix_core.errors import DemixError, WorkspaceError
from demix_core.mixing.pairs import format_pairs
from demix_core.view import figures
from demix_core.workspace.manifest import DEFAULT_HELDOUT_TOKENS, Workspace
from demix_core.workspace.repeats import group_by_mixture

if TYPE_CHECKING:  # the checks import torch: loaded when a form is checked, not with the page
    from demix_core.workspace.init import Prepared

__all__ = ["COMPONENT_COLUMNS", "DEFAULT_HELDOUT_TOKENS", "check_component", "check_new_workspace",
           "check_reference", "component_table", "example_mixture", "heatmap_figure", "is_compatible", "is_demo",
           "offers_new_workspace", "quick_suite_note", "references_table", "summary"]


# Counts with thousands separators (``2,888,399``), still numbers so the columns sort as numbers.
COMPONENT_COLUMNS = {"tokens": st.column_config.NumberColumn(format="%,d", help="tokens of the component's dataset"),
                     "params": st.column_config.NumberColumn(format="%,d", help="parameters of the checkpoint")}


@st.cache_data(ttl=60, show_spinner=False)
def component_table(root: str) -> tuple[list[dict], list[str]]:
    """Component rows and the compatibility report (cached for a minute)."""
    from demix_core.io.checkpoints import check_compatibility, open_checkpoint

    ws = open_workspace(Path(root))
    ckpts = [open_checkpoint(p) for p in ws.component_paths()]
    rows = [{"component": e.name, "domain": e.domain, "dataset": e.dataset, "tokens": e.tokens,
             "params": ck.num_params, "drift δ": None if e.drift is None else round(e.drift, 4)}
            for e, ck in zip(ws.components, ckpts)]
    return rows, check_compatibility(ckpts).lines()


def is_compatible(report: list[str]) -> bool:
    """Whether a compatibility report (its lines) says the components can be merged."""
    return report[-1].startswith("compatible")


@st.cache_data(show_spinner="Scoring held-out loss of the base and every component...")
def heatmap_data(root: str) -> pd.DataFrame:
    """The held-out loss matrix (rows: base and components; columns: datasets)."""
    from demix_core.train.demo import loss_matrix

    return loss_matrix(open_workspace(Path(root)), max_tokens=4096)


def heatmap_figure(root: str) -> go.Figure:
    """The held-out loss heatmap of the workspace at ``root`` (its matrix is cached)."""
    return figures.heatmap(heatmap_data(root), title="held-out loss (nats/token), lower is better",
                           color_label="loss (nats/token)")


def references_table(ws: Workspace) -> pd.DataFrame:
    """One row per mixture the workspace's models are trained on: its references (the repeats side by side, in seed
    order) and their training seeds, its weights, its trained proxies."""
    rows = [{"references": ", ".join(g.names), "seeds": ", ".join(map(str, g.seeds)),
             **{f"{c} weight": float(g.mixture.get(c, 0.0)) for c in ws.component_names},
             "trained proxy": ", ".join(t.name for t in g.trained_proxies)}
            for g in group_by_mixture(ws.references)]
    return pd.DataFrame(rows, columns=["references", "seeds", *(f"{c} weight" for c in ws.component_names),
                                       "trained proxy"])


def summary(ws: Workspace) -> str:
    """One line about the workspace: its name, counts and storage (markdown-safe)."""
    refs = sum(r.kind == "reference" for r in ws.references)
    trained = len(ws.references) - refs
    return (f"{md(ws.name)} · {len(ws.components):,} components · {refs:,} reference models"
            + (f" (+ {trained:,} trained proxies)" if trained else "") + f" · storage {md(ws.storage)}")


def quick_suite_note(ws: Workspace) -> str:
    """What the quick suite scores on this workspace's held-out files."""
    return (f"Quick suite: the first {ws.heldout_slice():,} tokens of each of {len(ws.datasets)} held-out file(s), "
            "a deterministic slice.")


def is_demo(path: str | Path) -> bool:
    """Whether ``path`` is the demo workspace's folder."""
    return Path(path).resolve() == DEFAULT_WORKSPACE.resolve()


def offers_new_workspace(exc: DemixError) -> bool:
    """Whether a folder that did not open may become a workspace here (not one outside the allowed root)."""
    return isinstance(exc, WorkspaceError) and not isinstance(exc, OutsideRootError)


def _lines(text: str) -> list[str]:
    """One entry per line or comma (paths, names)."""
    return [p.strip() for line in text.splitlines() for p in line.split(",") if p.strip()]


def check_new_workspace(folder: str, components: str, *, names: str, domains: str, heldout: str, text_field: str,
                        tokens: int, base: str, force: bool) -> Prepared:
    """A new workspace from the form's text (one path or name per line or comma), checked and not yet saved.

    Returns:
        The prepared workspace: its compatibility report, and ``save``.

    Raises:
        DemixError: The folder is outside the allowed root, or the checkpoints or files are not usable.
    """
    from demix_core.workspace.init import prepare_init

    target = inside_allowed_root(Path(folder).expanduser())
    return prepare_init(target, _lines(components), names=_lines(names), domains=_lines(domains),
                        base=base.strip() or None, heldout=_lines(heldout), text_field=text_field.strip() or "text",
                        heldout_tokens=int(tokens), force=force)


def check_component(ws: Workspace, name: str, path: str, *, domain: str, heldout: str, text_field: str) -> Prepared:
    """A component to add to ``ws``, checked and not yet saved (empty optional fields: their defaults)."""
    from demix_core.workspace.init import prepare_component

    return prepare_component(ws.root, name.strip(), path.strip(), domain=domain.strip() or None,
                             heldout=heldout.strip() or None, text_field=text_field.strip() or "text")


def check_reference(ws: Workspace, name: str, path: str, mixture: str) -> Prepared:
    """A reference model (really trained on ``mixture``) to add to ``ws``, checked and not yet saved."""
    from demix_core.workspace.init import prepare_reference

    return prepare_reference(ws.root, name.strip(), path.strip(), mixture)


def example_mixture(ws: Workspace) -> str:
    """Equal weights over the workspace's components, as mixture text (a form's hint)."""
    return format_pairs(dict.fromkeys(ws.component_names, 1 / len(ws.components)), digits=2)
