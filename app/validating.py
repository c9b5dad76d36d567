"""What the Validate page shows of the last validation (``<workspace>/validation/<suite>.json``): the pick, the
summary, one scatter per proxy kind and domain, the trained recommendation among the references (with its calls per
domain against each baseline, read through the noise floor), and why.

The record is the core's (:mod:`demix_core.workspace.records`, written by ``demix validate``); this reads it for
the page, so a reload, another session or a viewer sees the last result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from app.state import Workspace
from demix_core.proxy import DEFAULT_KIND, get_kind
from demix_core.validation import loop as core_loop
from demix_core.validation.calls import call_text
from demix_core.validation.explain import explanation, summary_frame
from demix_core.view import figures
from demix_core.workspace.manifest import ReferenceEntry
from demix_core.workspace.records import read_validation, record_path

__all__ = ["MIN_REFERENCES", "SUITES", "call_text", "calls_figures", "loop_figure", "loop_frame", "noise_known",
           "noise_words", "proxy_figures", "proxy_tabs", "read_validation", "record_name", "reference_frame",
           "summary_frame", "trained_references", "trust_note", "why"]

SUITES = ["quick", "paper"]
MIN_REFERENCES = 3  # validation ranks proxies by their rank correlation with at least this many references
loop_figure = figures.loop_figure


def loop_frame(loop: Mapping[str, Any]) -> pd.DataFrame:
    """The loop's table (:func:`demix_core.validation.loop.loop_frame`) with one column per domain, ``<domain>
    call``: the recommendation minus that model on the domain, its 95% interval and the call (:func:`call_text`;
    empty on the recommendation's own row)."""
    frame = core_loop.loop_frame(loop)
    entries = loop.get("entries") or []
    for d in figures.loop_domains(loop):
        frame[f"{d} call"] = [call_text((e.get("calls") or {}).get(d)) for e in entries]
    return frame


def calls_figures(loop: Mapping[str, Any]) -> list[tuple[str, go.Figure]]:
    """(domain, figure) per domain the baselines have calls on: the recommendation minus each baseline with the
    noise floor's band (:func:`demix_core.view.figures.calls_figure`)."""
    return [(d, figures.calls_figure(loop, d)) for d in figures.loop_domains(loop)]


def noise_known(data: Mapping[str, Any]) -> bool:
    """Whether the validation measured a noise floor (some mixture trained at several seeds)."""
    return bool((data.get("noise_floor") or {}).get("domains"))


def noise_words(data: Mapping[str, Any]) -> str:
    """The noise floor under the loop's charts: ``band: the noise floor (seed sd general 0.0021, ...; pooled over
    1 repeated mixture(s), 2 models)...``; or ``noise unknown: `` and the record's reason (the command that
    measures it)."""
    if noise_known(data):
        nf = data["noise_floor"]
        sds = ", ".join(f"{d} {float(sd):.3g}" for d, sd in nf["domains"].items())
        return (f"band: the noise floor (seed sd {sds}; pooled over {nf.get('mixtures')} repeated mixture(s), "
                f"{nf.get('runs')} models); bars: the 95% interval of each difference. A point inside the band is "
                "within noise.")
    reason = data.get("noise_reason") or "this validation was recorded before the noise floor; run validation again"
    return f"noise unknown: {reason}"


def trained_references(ws: Workspace) -> list[ReferenceEntry]:
    """The workspace's reference models really trained on a mixture (not the trained recommendation's loop)."""
    return [r for r in ws.references if r.kind == "reference"]


def record_name(ws: Workspace, suite: str) -> str:
    """The validation record's path inside the workspace."""
    return str(record_path(ws, suite).relative_to(ws.root))


def trust_note(pick: Mapping[str, Any]) -> str:
    """The proxy to trust on this workspace, in words (markdown)."""
    named = get_kind(pick["proxy"]).report_name
    return (f"Proxy to trust on this workspace: **{pick['proxy']}** ({named}). New studies "
            "default to it unless a flag or the manifest's defaults.proxy says otherwise.")


def proxy_tabs(data: Mapping[str, Any]) -> dict[str, str]:
    """Proxy kind -> its method's name in the record (records before proxy kinds: the first method, as merge)."""
    return dict(data.get("proxies") or {DEFAULT_KIND: data["methods"][0]["name"]})


def proxy_figures(data: Mapping[str, Any], kind: str, name: str) -> list[tuple[str, go.Figure]]:
    """(domain, figure) per domain: the proxy kind's scores against the references', titled with their rho."""
    method = next(m for m in data["methods"] if m["name"] == name)
    scores = data["method_scores"][name]
    out = []
    for d in data["domains"]:
        rho = method["rho"][d]["value"]
        out.append((d, figures.scatter_with_identity(
            scores[d], data["reference_scores"][d], labels=data["references"],
            x_title=f"{kind} proxy {d} score ({figures.SCORE_UNIT})",
            y_title=f"reference {d} score ({figures.SCORE_UNIT})", title=f"{d}: rho {rho:.2f}")))
    return out


def why(data: Mapping[str, Any]) -> str | None:
    """Why the verdict, in words read from the validation's numbers (markdown; None when there is nothing to say)."""
    words = explanation(data)
    return "\n".join(words[1:]) if words else None


def reference_frame(data: Mapping[str, Any]) -> pd.DataFrame:
    """One row per reference: its domain scores (negated bits per byte, the unit in each header)."""
    return pd.DataFrame({"reference": data["references"], **{f"{d} ({figures.SCORE_UNIT})": data["reference_scores"][d]
                                                             for d in data["domains"]}})
