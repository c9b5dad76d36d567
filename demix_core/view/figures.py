"""Figures built from plain data (numpy / pandas), shared by the dashboard and the HTML report.

Plot *data* (ternary coordinates here; Pareto masks and hypervolumes in ``demix_core.search.pareto``) is plain numpy;
plot *drawing* returns plotly figures. Nothing here knows about Streamlit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from demix_core.search.pareto import hypervolume_history, pareto_mask

if TYPE_CHECKING:
    from demix_core.mixing.bounds import Bounds

FADED = "rgba(150,150,150,0.35)"
FRONT = "#d62728"
INFEASIBLE = "rgba(120,120,120,0.30)"  # the shade of mixtures outside the token budget
SCORE_UNIT = "−bits/byte"  # domain scores are negated bits per byte (the suites' primary metric)
# A constant uirevision keeps the user's zoom, camera and selection when a live view redraws the figure.
UIREVISION = "demix"


def plain_name(column: str) -> str:
    """A column as people read it: ``d:math`` -> ``math score``, ``w:code`` -> ``code weight``, ``b:x`` -> ``x``."""
    kind, sep, name = column.partition(":")
    if not sep:
        return column
    return {"d": f"{name} score", "w": f"{name} weight", "b": name}.get(kind, column)


def axis_title(column: str, unit: str = SCORE_UNIT) -> str:
    """An axis title with its unit and direction."""
    if column.startswith("d:"):
        return f"{plain_name(column)} ({unit}, higher is better)"
    if column.startswith("w:"):
        return f"{plain_name(column)} (share of the mixture, 0-1)"
    return plain_name(column)


# --- plot data ----------------------------------------------------------------------------------


def ternary_coordinates(weights: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Collapse (n, K) mixture weights onto three axes by summing each group of component indices,
    renormalised to the simplex. Shape (n, 3)."""
    w = np.asarray(weights, dtype=np.float64)
    out = np.stack([w[:, list(g)].sum(axis=1) for g in groups], axis=1)
    total = out.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    return out / total


def group_bounds(bounds: Bounds, groups: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """The feasible set seen on a ternary map: each group's share lies in ``[sum lo, min(1, sum hi)]`` of its
    components, and every such point is reached (the box constraints are separable). Two arrays of shape (3,)."""
    lo, hi = bounds.lo_array(), bounds.hi_array()
    return (np.array([lo[list(g)].sum() for g in groups]),
            np.minimum(1.0, np.array([hi[list(g)].sum() for g in groups])))


def infeasible_regions(lo: np.ndarray, hi: np.ndarray) -> list[np.ndarray]:
    """Polygons (ternary coordinates, each (m, 3)) covering the mixtures outside ``lo <= share <= hi``:
    a corner triangle past each upper bound below 1 and a strip along the opposite edge under each lower
    bound above 0. Their union is exactly the infeasible part of the triangle."""
    eye = np.eye(3)
    out = []
    for g in range(3):
        a, b = [h for h in range(3) if h != g]
        if hi[g] < 1:  # share_g > hi_g: the triangle at corner g
            out.append(np.array([eye[g], hi[g] * eye[g] + (1 - hi[g]) * eye[a], hi[g] * eye[g] + (1 - hi[g]) * eye[b]]))
        if lo[g] > 0:  # share_g < lo_g: the strip along the edge opposite g
            out.append(np.array([eye[a], eye[b], lo[g] * eye[g] + (1 - lo[g]) * eye[b],
                                 lo[g] * eye[g] + (1 - lo[g]) * eye[a]]))
    return out


# --- drawing ------------------------------------------------------------------------------------


def _hover(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """One hover text per row, built column by column (fast for thousands of trials)."""
    parts = []
    for c in columns:
        col = frame[c]
        text = col.map(lambda v: f"{v:.4g}") if pd.api.types.is_float_dtype(col) else col.astype(str)
        parts.append(f"{plain_name(c)}: " + text)
    joined = parts[0]
    for p in parts[1:]:
        joined = joined + "<br>" + p
    return list(joined)


def pareto_2d(frame: pd.DataFrame, x: str, y: str, *, hover: Sequence[str] = (),
              key: str = "number", title: str = "", unit: str = SCORE_UNIT) -> go.Figure:
    """Scatter of two maximised objectives: the front in colour and joined, dominated points faded."""
    fig = go.Figure()
    if len(frame):
        mask = pareto_mask(frame[[x, y]].to_numpy())
        text = _hover(frame, [key, *hover]) if hover else None
        for on_front, color, name in ((False, FADED, "dominated"), (True, FRONT, "Pareto front")):
            sel = mask == on_front
            sub = frame[sel]
            fig.add_trace(go.Scatter(
                x=sub[x], y=sub[y], mode="markers", name=name,
                marker={"color": color, "size": 9 if on_front else 7},
                text=None if text is None else [t for t, s in zip(text, sel) if s],
                hovertemplate="%{text}<extra></extra>" if text else None,
                customdata=sub[key].to_numpy() if key in sub else None,
            ))
        front = frame[mask].sort_values(x)
        fig.add_trace(go.Scatter(x=front[x], y=front[y], mode="lines", line={"color": FRONT, "width": 1},
                                 showlegend=False, hoverinfo="skip"))
    fig.update_layout(title=title, xaxis_title=axis_title(x, unit), yaxis_title=axis_title(y, unit),
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h"},
                      uirevision=UIREVISION)
    return fig


def pareto_3d(frame: pd.DataFrame, x: str, y: str, z: str, *, hover: Sequence[str] = (),
              key: str = "number", unit: str = SCORE_UNIT) -> go.Figure:
    """3D scatter of three maximised objectives, dominated points faded."""
    fig = go.Figure()
    if len(frame):
        mask = pareto_mask(frame[[x, y, z]].to_numpy())
        text = _hover(frame, [key, *hover]) if hover else None
        for on_front, color, name in ((False, FADED, "dominated"), (True, FRONT, "Pareto front")):
            sel = mask == on_front
            sub = frame[sel]
            fig.add_trace(go.Scatter3d(
                x=sub[x], y=sub[y], z=sub[z], mode="markers", name=name,
                marker={"color": color, "size": 5 if on_front else 3},
                text=None if text is None else [t for t, s in zip(text, sel) if s],
                hovertemplate="%{text}<extra></extra>" if text else None,
            ))
    titles = {f"{a}axis_title": f"{plain_name(c)} ({unit})" for a, c in (("x", x), ("y", y), ("z", z))}
    fig.update_layout(scene={**titles, "uirevision": UIREVISION}, uirevision=UIREVISION,
                      title="all three higher is better", margin={"l": 0, "r": 0, "t": 30, "b": 0},
                      legend={"orientation": "h"})
    return fig


def ternary(weights: np.ndarray, groups: Sequence[Sequence[int]], labels: Sequence[str],
            color: np.ndarray | None = None, color_label: str = "", hover: Sequence[str] | None = None,
            bounds: Bounds | None = None) -> go.Figure:
    """Mixtures on a ternary plot (three components, or three groups of components), colored by a score;
    with ``bounds`` (a token budget) the mixtures outside it are shaded."""
    t = ternary_coordinates(weights, groups)
    marker: dict[str, object] = {"size": 8}
    if color is not None:
        marker.update(color=color, colorscale="Viridis", showscale=True,
                      colorbar={"title": {"text": plain_name(color_label), "side": "right"}, "x": 1.02})
    fig = go.Figure()
    if bounds is not None and not bounds.trivial:
        for i, poly in enumerate(infeasible_regions(*group_bounds(bounds, groups))):
            closed = np.vstack([poly, poly[:1]])
            fig.add_trace(go.Scatterternary(a=closed[:, 0], b=closed[:, 1], c=closed[:, 2], mode="lines",
                                            fill="toself", fillcolor=INFEASIBLE, line={"width": 0},
                                            name="outside the token budget", legendgroup="infeasible",
                                            showlegend=i == 0, hoverinfo="name"))
    fig.add_trace(go.Scatterternary(a=t[:, 0], b=t[:, 1], c=t[:, 2], mode="markers", marker=marker, text=hover,
                                    hovertemplate="%{text}<extra></extra>" if hover else None, name="trials",
                                    showlegend=False))
    # Room around the triangle: the corner titles sit outside it and were clipped with 30 px margins.
    axes = {f"{a}axis": {"title": {"text": f"{label} share"}, "min": 0} for a, label in zip("abc", labels)}
    fig.update_layout(ternary={**axes, "sum": 1}, margin={"l": 70, "r": 70, "t": 60, "b": 50},
                      uirevision=UIREVISION)
    return fig


def parallel_coordinates(frame: pd.DataFrame, columns: Sequence[str], color: str) -> go.Figure:
    """Weights -> scores as parallel coordinates, lines colored by ``color``."""
    dims = [{"label": plain_name(c), "values": frame[c]} for c in columns]
    fig = go.Figure(go.Parcoords(line={"color": frame[color], "colorscale": "Viridis", "showscale": True,
                                       "colorbar": {"title": {"text": plain_name(color), "side": "right"}}},
                                 dimensions=dims))
    fig.update_layout(margin={"l": 60, "r": 60, "t": 50, "b": 20}, uirevision=UIREVISION)
    return fig


def hypervolume_plot(history: np.ndarray, title: str = "Hypervolume") -> go.Figure:
    """Hypervolume after each completed trial."""
    fig = go.Figure(go.Scatter(x=np.arange(1, len(history) + 1), y=history, mode="lines+markers"))
    fig.update_layout(title=title, xaxis_title="completed trials (count)",
                      yaxis_title="hypervolume (score units ^ objectives)",
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, uirevision=UIREVISION)
    return fig


def heatmap(matrix: pd.DataFrame, title: str = "", fmt: str = ".3f", reverse: bool = True,
            color_label: str = "") -> go.Figure:
    """Annotated heatmap (rows x columns); ``reverse`` colors low values best (losses)."""
    fig = go.Figure(go.Heatmap(z=matrix.to_numpy(), x=list(matrix.columns), y=list(matrix.index),
                               colorscale="RdYlGn_r" if reverse else "RdYlGn",
                               colorbar={"title": {"text": color_label or title, "side": "right"}},
                               text=[[format(v, fmt) for v in row] for row in matrix.to_numpy()],
                               texttemplate="%{text}"))
    fig.update_layout(title=title, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      yaxis={"autorange": "reversed"})
    return fig


def scatter_with_identity(x: Sequence[float], y: Sequence[float], *, labels: Sequence[str] | None = None,
                          x_title: str = "", y_title: str = "", title: str = "") -> go.Figure:
    """Predicted vs measured (or proxy vs reference) with the y = x line."""
    x_arr, y_arr = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    fig = go.Figure(go.Scatter(x=x_arr, y=y_arr, mode="markers", text=labels,
                               hovertemplate="%{text}<br>x=%{x:.4g}<br>y=%{y:.4g}<extra></extra>"
                               if labels is not None else None))
    if len(x_arr):
        lo = float(min(x_arr.min(), y_arr.min()))
        hi = float(max(x_arr.max(), y_arr.max()))
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line={"dash": "dot", "color": "gray"},
                                 showlegend=False, hoverinfo="skip"))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, showlegend=False,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


# --- a study's figure set (the Study page and the HTML report draw the same) ----------------------------


class StudyFigure(NamedTuple):
    """One figure of a study's set: a stable ``key`` (``front:X|Y``, ``front3d``, ``ternary``,
    ``hypervolume``, ``parcoords``), a title, and the figure."""

    key: str
    title: str
    figure: go.Figure


def study_figures(done: pd.DataFrame, *, pairs: Sequence[tuple[str, str]] | None = None,
                  color: str | None = None, bounds: Bounds | None = None, unit: str = SCORE_UNIT) -> list[StudyFigure]:
    """The figure set of a study's complete trials: fronts, 3D front, mixture map, hypervolume, weights.

    Args:
        done: Complete trials with ``w:<component>`` and ``d:<domain>`` columns (``trials_frame``).
        pairs: The 2D fronts to draw as (x, y) columns; default every pair of domains.
        color: The domain column colouring the mixture map; default the mean domain score.
        bounds: The study's feasible set (token budget): shaded outside on the mixture map.
        unit: The domain scores' unit, for the fronts' axes.

    Returns:
        The figures in reading order (empty when there is no trial or no domain).
    """
    dcols = [c for c in done.columns if c.startswith("d:")]
    wcols = [c for c in done.columns if c.startswith("w:")]
    if done.empty or not dcols:
        return []
    hover = wcols + dcols
    if pairs is None:
        pairs = [(a, b) for i, a in enumerate(dcols) for b in dcols[i + 1:]]
    out = [StudyFigure(f"front:{x}|{y}", f"Pareto front: {x[2:]} vs {y[2:]}",
                       pareto_2d(done, x, y, hover=hover, unit=unit)) for x, y in pairs]
    if len(dcols) >= 3:
        out.append(StudyFigure("front3d", "Pareto front in 3D", pareto_3d(done, *dcols[:3], hover=hover, unit=unit)))
    values = done[dcols].to_numpy(dtype=float)
    history = hypervolume_history(values, values.min(axis=0), points=60)
    out.append(StudyFigure("hypervolume", "Hypervolume history", hypervolume_plot(history)))
    out.append(StudyFigure("parcoords", "Weights and scores", parallel_coordinates(done, wcols + dcols, dcols[0])))
    if len(wcols) >= 3:
        groups = [[0], [1], list(range(2, len(wcols)))]
        labels = [wcols[0][2:], wcols[1][2:], "+".join(c[2:] for c in wcols[2:])]
        shade, shade_label = (done[color].to_numpy(), color) if color else (values.mean(1), "mean score")
        out.append(StudyFigure("ternary", "Mixture space", ternary(done[wcols].to_numpy(dtype=float), groups, labels,
                                                                   color=shade, color_label=shade_label,
                                                                   bounds=bounds)))
    return out


LOOP_SYMBOLS = {"recommended": "star", "uniform": "square", "natural": "diamond", "best trial": "triangle-up",
                "null pick": "x"}


def loop_figure(loop: Mapping[str, Any]) -> go.Figure:
    """The references as points on the composite axis, with the trained recommendation and baselines marked.

    Args:
        loop: A loop report's JSON (``demix validate``'s ``loop``): ``references``, ``reference_composite`` and
            ``entries`` (role, name, composite, rank).
    """
    fig = go.Figure(go.Scatter(
        x=list(loop.get("reference_composite") or []), y=["references"] * len(loop.get("references") or []),
        mode="markers", marker={"color": "gray", "size": 10, "opacity": 0.6}, name="references",
        text=list(loop.get("references") or []), hovertemplate="%{text}<br>composite %{x:.2f}<extra></extra>"))
    for e in loop.get("entries") or []:
        fig.add_trace(go.Scatter(
            x=[e["composite"]], y=["trained mixtures"], mode="markers+text", name=e["role"], text=[e["role"]],
            textposition="top center", marker={"symbol": LOOP_SYMBOLS.get(e["role"], "circle"), "size": 16},
            hovertemplate=f"{e['name']}<br>composite %{{x:.2f}}, rank {e['rank']}<extra>{e['role']}</extra>"))
    fig.update_layout(xaxis_title="DeMix composite among the references (higher is better)", yaxis_title="",
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, height=300,
                      title="Trained recommendation and baselines among the references")
    return fig


CALL_COLORS = {"better": "#2ca02c", "worse": "#d62728", "within noise": "gray", "noise unknown": "#1f77b4"}
NOISE_BAND = "rgba(150,150,150,0.25)"  # the shade of +- the noise floor


def loop_domains(loop: Mapping[str, Any]) -> list[str]:
    """The domains the loop's baselines have per-domain calls on, in the report's order."""
    return list(dict.fromkeys(d for e in loop.get("entries") or [] for d in e.get("calls") or {}))


def calls_figure(loop: Mapping[str, Any], domain: str, *, unit: str = SCORE_UNIT) -> go.Figure:
    """One domain of the loop: the trained recommendation's score minus each baseline's, with its 95% interval
    (error bars), coloured by its call, over a shaded band of +- the domain's noise floor around 0 (no band when the
    noise is unknown): a point inside the band is within noise.

    Args:
        loop: A loop report's JSON (``demix validate``'s ``loop``): its baselines' ``calls`` per domain
            (``difference``, ``low``, ``high``, ``floor``, ``call``).
        domain: The domain drawn.
        unit: The domain scores' unit.
    """
    rows = [(e["role"], e["calls"][domain]) for e in loop.get("entries") or [] if domain in (e.get("calls") or {})]
    floor = next((float(c["floor"]) for _, c in rows if c.get("floor") is not None), None)
    fig = go.Figure()
    if floor is not None:
        fig.add_hrect(y0=-floor, y1=floor, fillcolor=NOISE_BAND, line_width=0, layer="below")
    fig.add_hline(y=0, line={"color": "gray", "width": 1, "dash": "dot"})
    for role, c in rows:
        diff = float(c["difference"])
        known = c.get("low") is not None and c.get("high") is not None
        error = {"type": "data", "symmetric": False, "array": [float(c["high"]) - diff],
                 "arrayminus": [diff - float(c["low"])]} if known else None
        interval = f" [{float(c['low']):+.4f}, {float(c['high']):+.4f}]" if known else ""
        fig.add_trace(go.Scatter(
            x=[role], y=[diff], mode="markers", name=role, error_y=error,
            marker={"color": CALL_COLORS.get(c["call"], "gray"), "size": 12,
                    "symbol": LOOP_SYMBOLS.get(role, "circle")},
            hovertemplate=f"recommended minus {role}: %{{y:+.4f}}{interval}<extra>{c['call']}</extra>"))
    fig.update_layout(title=f"{domain}: recommended minus each baseline" + ("" if floor is not None else
                                                                           " (noise unknown)"),
                      yaxis_title=f"difference ({unit}; above 0: recommended is better)", showlegend=False,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, height=320)
    return fig


# --- one mixture in the context of a study (the Mixer) --------------------------------------------------

MARKER = {"size": 16, "symbol": "star", "color": "#1f77b4", "line": {"width": 1, "color": "white"}}


def mixture_figures(done: pd.DataFrame, weights: Sequence[float], scores: dict[str, float], *,
                    pair: tuple[str, str] | None = None, front3d: bool = True,
                    label: str = "this mixture", bounds: Bounds | None = None,
                    unit: str = SCORE_UNIT) -> list[StudyFigure]:
    """A study's fronts (2D for ``pair``, 3D over the first three domains if ``front3d``) and mixture map, each with one
    mixture marked: at its ``scores`` (``{domain: score}``) on the fronts, at its ``weights`` (in the
    ``w:`` columns' order) on the map; with ``bounds`` (a token budget) the map shades the mixtures outside it;
    ``unit`` is the domain scores' unit on the fronts' axes.

    Returns:
        ``front:X|Y``, ``front3d`` and ``ternary`` figures, as far as the study's domains and components allow.
    """
    dcols = [c for c in done.columns if c.startswith("d:")]
    wcols = [c for c in done.columns if c.startswith("w:")]
    if done.empty or not dcols:
        return []
    hover = wcols + dcols
    out = []
    if pair is not None and all(c[2:] in scores for c in pair):
        x, y = pair
        fig = pareto_2d(done, x, y, hover=hover, title=f"{label} on the front", unit=unit)
        fig.add_trace(go.Scatter(x=[scores[x[2:]]], y=[scores[y[2:]]], mode="markers", name=label, marker=MARKER))
        out.append(StudyFigure(f"front:{x}|{y}", f"Pareto front: {x[2:]} vs {y[2:]}", fig))
    if front3d and len(dcols) >= 3 and all(c[2:] in scores for c in dcols[:3]):
        fig = pareto_3d(done, *dcols[:3], hover=hover, unit=unit)
        fig.add_trace(go.Scatter3d(x=[scores[dcols[0][2:]]], y=[scores[dcols[1][2:]]], z=[scores[dcols[2][2:]]],
                                   mode="markers", name=label, marker={**MARKER, "size": 8, "symbol": "diamond"}))
        out.append(StudyFigure("front3d", "Pareto front in 3D", fig))
    if len(wcols) >= 3 and len(weights) == len(wcols):
        groups = [[0], [1], list(range(2, len(wcols)))]
        labels = [wcols[0][2:], wcols[1][2:], "+".join(c[2:] for c in wcols[2:])]
        values = done[dcols].to_numpy(dtype=float)
        fig = ternary(done[wcols].to_numpy(dtype=float), groups, labels, color=values.mean(1), color_label="mean score",
                      bounds=bounds)
        t = ternary_coordinates(np.asarray([weights], dtype=np.float64), groups)
        fig.add_trace(go.Scatterternary(a=t[:, 0], b=t[:, 1], c=t[:, 2], mode="markers", name=label, marker=MARKER))
        fig.update_layout(showlegend=False)
        out.append(StudyFigure("ternary", "Mixture space", fig))
    return out
