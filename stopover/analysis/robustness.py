"""Robustness per condition x task x distance kind: slopes and correlations with bootstrap CIs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from stopover.analysis.cells import (
    Cell,
    build_cell,
    cell_means,
    cell_rng,
    estimability,
    line_stats,
    per_draw_stats,
    percentile_ci,
    resampled_means,
    unit_indices,
)
from stopover.analysis.frame import (
    ENGLISH,
    MEASURES,
    strategy_of,
)


def _robustness_cell(cell: Cell, x: np.ndarray, measure: str, n_boot: int, ci: float,
                     rng: np.random.Generator) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Point estimates and bootstrap CIs for one cell and measure; also (intercept, slope) replicates."""
    Y = cell.measure(measure)
    mean = cell_means(Y)
    point = line_stats(x[None, :], mean[None, :])
    row: dict[str, Any] = {
        "slope": float(point["slope"][0]), "intercept": float(point["intercept"][0]),
        "pearson_r": float(point["r"][0]), "spearman_rho": float(point["rho"][0]),
        "n_languages": int(point["n"][0]),
    }
    L = len(cell.languages)
    li = rng.integers(0, L, size=(n_boot, L))
    si, di = unit_indices(cell, rng, n_boot)
    reps = line_stats(x[li], resampled_means(Y, li, si, di))
    for name, col in (("slope", "slope"), ("r", "pearson_r"), ("rho", "spearman_rho")):
        lo, hi, valid = percentile_ci(reps[name], ci)
        row[f"{col}_lo"], row[f"{col}_hi"] = lo, hi
        if name == "slope":
            row["boot_valid"] = valid
    return row, reps["intercept"], reps["slope"]


def robustness(scores: pd.DataFrame, distances: pd.DataFrame, kinds: Sequence[str], *,
               n_boot: int = 2000, seed: int = 0, ci: float = 0.95
               ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Slope/correlation of score and gap on distance per condition x task x kind.

    Returns (robustness, draws, points, bands): the summary rows, the per-draw
    statistics of random conditions, the per-language means behind each fit and
    the fitted line with its pointwise bootstrap band (for plots).
    """
    rows, draw_rows, point_rows, band_rows = [], [], [], []
    for kind in kinds:
        dk = distances[distances["kind"] == kind].set_index("language")["distance"]
        backend = distances.loc[distances["kind"] == kind, "backend"].iloc[0]
        for (condition, task), sub in scores.groupby(["condition", "task"], sort=True):
            condition = cast(str, condition)  # the stubs type group keys as Hashable; conditions are names
            langs = sorted(lang for lang in sub["language"].unique()
                           if lang != ENGLISH and lang in dk.index and np.isfinite(dk[lang]))
            cell = build_cell(sub, condition, langs)
            x = np.array([dk[lang] for lang in langs], dtype=float)
            base = {"condition": condition, "strategy": strategy_of(condition),
                    "intermediate": (f"({len(cell.draws)} draws)" if cell.has_draws else cell.draws[0]),
                    "task": task, "kind": kind, "backend": backend,
                    "n_seeds": len(cell.seeds), "n_draws": len(cell.draws)}
            without = sorted(set(sub["language"]) - set(langs) - {ENGLISH})
            for measure in MEASURES:
                row = dict(base, measure=measure)
                problem = estimability(langs, x)
                if measure == "gap" and cell.english is None:
                    problem = "no English score for this condition"
                if problem:
                    rows.append(dict(row, estimable=False, note=f"not estimable: {problem}"))
                    continue
                stats, b_int, b_slope = _robustness_cell(
                    cell, x, measure, n_boot, ci, cell_rng(seed, "robustness", condition, task, kind, measure))
                note = f"no {kind} distance for {', '.join(without)}" if without else ""
                rows.append(dict(row, **stats, estimable=np.isfinite(stats["slope"]), note=note))
                if cell.has_draws:
                    per_draw = per_draw_stats(cell, x, measure)
                    for draw, st in zip(cell.draws, per_draw):
                        draw_rows.append(dict(condition=condition, task=task, kind=kind, measure=measure,
                                              draw=draw, **st))
                    slopes = np.array([st["slope"] for st in per_draw])
                    slopes = slopes[np.isfinite(slopes)]
                    if slopes.size:
                        q = (1 - ci) / 2 * 100
                        rows[-1].update(draw_slope_mean=float(slopes.mean()),
                                        draw_slope_sd=float(slopes.std(ddof=1)) if slopes.size > 1 else math.nan,
                                        draw_slope_lo=float(np.percentile(slopes, q)),
                                        draw_slope_hi=float(np.percentile(slopes, 100 - q)))
                mean = cell_means(cell.measure(measure))
                for lang, xv, mv in zip(langs, x, mean):
                    point_rows.append(dict(condition=condition, task=task, kind=kind, measure=measure,
                                           language=lang, distance=xv, value=mv))
                grid = np.linspace(x.min(), x.max(), 40)
                ok = np.isfinite(b_int) & np.isfinite(b_slope)
                if ok.sum() >= 2:
                    lines = b_int[ok, None] + b_slope[ok, None] * grid[None, :]
                    q = (1 - ci) / 2 * 100
                    lo, hi = np.percentile(lines, [q, 100 - q], axis=0)
                    fit = stats["intercept"] + stats["slope"] * grid
                    for gx, f, a, b in zip(grid, fit, lo, hi):
                        band_rows.append(dict(condition=condition, task=task, kind=kind, measure=measure,
                                              x=gx, fit=f, lo=a, hi=b))
    cols = ["condition", "strategy", "intermediate", "task", "kind", "backend", "measure", "n_languages",
            "n_seeds", "n_draws", "slope", "slope_lo", "slope_hi", "intercept", "pearson_r", "pearson_r_lo",
            "pearson_r_hi", "spearman_rho", "spearman_rho_lo", "spearman_rho_hi", "boot_valid",
            "draw_slope_mean", "draw_slope_sd", "draw_slope_lo", "draw_slope_hi", "estimable", "note"]
    rob = pd.DataFrame(rows).reindex(columns=cols)
    return (rob, pd.DataFrame(draw_rows), pd.DataFrame(point_rows), pd.DataFrame(band_rows))


