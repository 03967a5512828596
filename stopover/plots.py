"""The report's figures, rendered to PNG bytes with matplotlib's Agg canvas.

This module owns drawing only: every number comes from an `Analysis`
(stopover.analysis). Figures are built on `matplotlib.figure.Figure` with an
Agg canvas rather than through pyplot, so no global state or GUI backend is
touched and figures are freed as soon as their bytes are taken.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from stopover.analysis import Analysis

_DPI = 110


def _figure(width: float, height: float) -> "Figure":
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: "Figure") -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def _colours(conditions: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(conditions) <= 10 else "tab20"]
    return {c: cmap(i % cmap.N) for i, c in enumerate(conditions)}


# Every metric is on a 0-100 scale (docs/results.md); a gap (English minus language) lies in -100..100.
METRIC_RANGE = {"score": (0.0, 100.0), "gap": (-100.0, 100.0)}


def clip_band(lo: np.ndarray, hi: np.ndarray, measure: str) -> tuple[np.ndarray, np.ndarray]:
    """A confidence band cut to the values the measure can take (a band past 100 is no information)."""
    low, high = METRIC_RANGE.get(measure, (-np.inf, np.inf))
    return np.clip(np.asarray(lo, dtype=float), low, high), np.clip(np.asarray(hi, dtype=float), low, high)


def score_vs_distance(analysis: "Analysis", kind: str, measure: str = "score") -> bytes | None:
    """Per-language mean score against distance, one panel per task, with OLS fit and CI band."""
    pts = analysis.points
    if pts.empty:
        return None
    pts = pts[(pts["kind"] == kind) & (pts["measure"] == measure)]
    if pts.empty:
        return None
    bands = analysis.bands
    if not bands.empty:
        bands = bands[(bands["kind"] == kind) & (bands["measure"] == measure)]
    tasks = sorted(pts["task"].unique())
    conds = sorted(pts["condition"].unique())
    colours = _colours(conds)
    ncol = min(3, len(tasks))
    nrow = int(np.ceil(len(tasks) / ncol))
    fig = _figure(4.2 * ncol + 1.6, 3.4 * nrow)
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    ci = int(round(analysis.settings.get("ci", 0.95) * 100))
    for ax, task in zip(axes, tasks):
        for cond in conds:
            p = pts[(pts["task"] == task) & (pts["condition"] == cond)]
            if p.empty:
                continue
            ax.scatter(p["distance"], p["value"], s=14, color=colours[cond], alpha=0.8, label=cond)
            if not bands.empty:
                b = bands[(bands["task"] == task) & (bands["condition"] == cond)].sort_values("x")
                if not b.empty:
                    lo, hi = clip_band(b["lo"], b["hi"], measure)
                    ax.plot(b["x"], b["fit"], color=colours[cond], lw=1.5)
                    # A faint fill plus dashed edges in the condition's colour: where bands overlap,
                    # each one's edges stay visible instead of merging into one grey area.
                    ax.fill_between(b["x"], lo, hi, color=colours[cond], alpha=0.08, lw=0)
                    for edge in (lo, hi):
                        ax.plot(b["x"], edge, color=colours[cond], lw=0.7, ls="--", alpha=0.8)
        task_pts = pts[pts["task"] == task]["value"].to_numpy(dtype=float)
        low, high = METRIC_RANGE.get(measure, (-np.inf, np.inf))
        if task_pts.size and np.isfinite(task_pts).any():
            # The axis follows the data (with the bands' clipped reach), never beyond the metric's range.
            span = max(5.0, float(np.nanmax(task_pts) - np.nanmin(task_pts)))
            ax.set_ylim(max(low - 2, float(np.nanmin(task_pts)) - 0.6 * span),
                        min(high + 2, float(np.nanmax(task_pts)) + 0.6 * span))
        ax.set_title(task)
        ax.set_xlabel(f"{kind} distance from English")
        ax.set_ylabel(measure)
        ax.grid(alpha=0.3)
    for ax in axes[len(tasks):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=8,
               title=f"condition (line: OLS, band: {ci}% bootstrap)", title_fontsize=8)
    return _png(fig)


def heatmap(analysis: "Analysis") -> bytes | None:
    """Mean score per (task, condition) row and language column; languages ordered by distance."""
    from stopover.analysis import ENGLISH

    sc = analysis.scores
    if sc.empty:
        return None
    means = (sc.groupby(["task", "condition", "language", "intermediate"])["score"].mean()
             .groupby(["task", "condition", "language"]).mean().unstack("language"))
    dist = analysis.distances
    dk = dist[dist["kind"] == analysis.primary_kind].set_index("language")["distance"]
    cols = sorted(means.columns, key=lambda c: (c != ENGLISH, dk.get(c, np.inf), c))
    means = means[cols]
    values = means.to_numpy(dtype=float)
    fig = _figure(max(5.0, 0.45 * len(cols) + 3.0), max(2.5, 0.32 * len(means) + 1.6))
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(cols)), labels=cols, rotation=60, fontsize=8)
    ax.set_yticks(range(len(means)), labels=[f"{t} | {c}" for t, c in means.index], fontsize=8)
    if values.size <= 600:
        finite = values[np.isfinite(values)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6,
                        color="white" if v < mid else "black")
    ax.set_xlabel(f"language (English first, then by {analysis.primary_kind} distance)")
    fig.colorbar(im, ax=ax, label="mean score")
    return _png(fig)


def slope_forest(analysis: "Analysis", measure: str = "score") -> bytes | None:
    """Slope of score on distance with its CI per condition and task; one panel per distance kind."""
    rob = analysis.robustness
    if rob.empty:
        return None
    rob = rob[(rob["measure"] == measure) & rob["estimable"].fillna(False).astype(bool)]
    if rob.empty:
        return None
    kinds = [k for k in analysis.kinds if k in set(rob["kind"])]
    labels = sorted({(t, c) for t, c in zip(rob["task"], rob["condition"])})
    conds = sorted({c for _, c in labels})
    colours = _colours(conds)
    fig = _figure(3.4 * len(kinds) + 1.8, max(2.5, 0.3 * len(labels) + 1.4))
    axes = np.atleast_1d(fig.subplots(1, len(kinds), sharey=True, squeeze=False)).ravel()
    ypos = {lab: i for i, lab in enumerate(labels)}
    for ax, kind in zip(axes, kinds):
        rk = rob[rob["kind"] == kind]
        for _, r in rk.iterrows():
            y = ypos[(r["task"], r["condition"])]
            if pd.notna(r.get("draw_slope_lo")):
                # The spread of random's single draws, behind the pooled estimate.
                ax.plot([r["draw_slope_lo"], r["draw_slope_hi"]], [y, y], color="0.8", lw=6,
                        solid_capstyle="butt", zorder=1)
            err = [[r["slope"] - r["slope_lo"]], [r["slope_hi"] - r["slope"]]]
            if not np.all(np.isfinite(err)):
                err = None
            ax.errorbar(r["slope"], y, xerr=err, fmt="o", ms=4, color=colours[r["condition"]], capsize=2,
                        zorder=2)
        ax.axvline(0, color="0.5", lw=0.8, ls="--")
        ax.set_title(kind)
        ax.set_xlabel(f"slope of {measure} (points per unit distance)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(labels)), labels=[f"{t} | {c}" for t, c in labels], fontsize=8)
    axes[0].invert_yaxis()
    ci = int(round(analysis.settings.get("ci", 0.95) * 100))
    fig.suptitle(f"points: pooled slope with {ci}% bootstrap CI; grey bars: middle {ci}% of single random draws",
                 fontsize=8)
    return _png(fig)


def all_figures(analysis: "Analysis") -> dict[str, bytes]:
    """Every figure of the report by file name (without directory); empty figures are left out."""
    from stopover.analysis import slug

    figures: dict[str, bytes | None] = {}
    for kind in analysis.kinds:
        figures[f"score_vs_distance_{slug(kind)}.png"] = score_vs_distance(analysis, kind)
    figures["heatmap.png"] = heatmap(analysis)
    figures["slope_forest.png"] = slope_forest(analysis)
    return {name: png for name, png in figures.items() if png}
