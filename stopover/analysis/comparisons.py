"""Secondary tests: paired slope differences between conditions (this set vs the mean of these draws).

Sign-flip permutation p-values over languages, a draw-rank p-value against a
random condition's draws, paired bootstrap CIs and Holm correction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

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
    BASELINE,
    ENGLISH,
    is_diversity,
    is_random,
    strategy_of,
)

_TOL = 1e-9


def sign_flip_pvalue(diff: np.ndarray, x: np.ndarray, n_perm: int, rng: np.random.Generator
                     ) -> tuple[float, str]:
    """Two-sided p-value for slope(diff ~ x) = 0 by sign flips of null-model residuals.

    Under the null (equal slopes) diff_l = c + e_l with e_l symmetric about 0,
    so the residuals of the intercept-only model, e_l = diff_l - mean(diff), may
    have their signs flipped (Freedman-Lane). The statistic is the slope's
    t-value |b / se(b)| (studentised: better calibrated with few languages
    than the raw slope). All 2^L flips are enumerated when 2^L <= n_perm
    (exact); otherwise n_perm random flips and p = (1 + #{T* >= T}) / (1 + n_perm).
    """
    x = np.asarray(x, dtype=float)
    diff = np.asarray(diff, dtype=float)
    L = len(x)
    dx = x - x.mean()
    sxx = float((dx * dx).sum())
    e = diff - diff.mean()

    def t_abs(y: np.ndarray) -> np.ndarray:  # rows of y: |t| of the OLS slope on x
        b = (y * dx).sum(-1) / sxx
        res = y - y.mean(-1, keepdims=True) - b[..., None] * dx
        se = np.sqrt((res * res).sum(-1) / (L - 2) / sxx)
        with np.errstate(divide="ignore", invalid="ignore"):
            # A perfect fit (se = 0) is infinitely extreme unless the slope is 0 too.
            return np.where(se > 1e-12 * max(1.0, float(np.abs(y).max(initial=0.0))), np.abs(b) / se,
                            np.where(np.abs(b) > 1e-12, np.inf, 0.0))

    t_obs = float(t_abs(e[None, :])[0])
    if t_obs == 0.0:
        return 1.0, "no variation in the paired differences"
    tol = _TOL * max(1.0, t_obs) if np.isfinite(t_obs) else 0.0
    if L <= 20 and 2 ** L <= n_perm:
        signs = ((np.arange(2 ** L)[:, None] >> np.arange(L)) & 1) * 2 - 1
        t = t_abs(signs * e)
        return float(np.mean(t >= t_obs - tol)), f"exact ({2 ** L} sign flips)"
    count = 0
    for start in range(0, n_perm, 4096):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(min(4096, n_perm - start), L))
        count += int(np.sum(t_abs(signs * e) >= t_obs - tol))
    return (1 + count) / (1 + n_perm), f"Monte Carlo ({n_perm} sign flips)"


def draw_rank_pvalue(value: float, draw_values: np.ndarray) -> tuple[float, float]:
    """(share of draws with a lower slope, two-sided rank p-value of `value` among the draws).

    Label permutation: if the chosen set were just another random draw, its
    slope's rank among the N draws would be uniform; p = min(1, 2 min((1+#>=)/(N+1), (1+#<=)/(N+1))).
    """
    d = draw_values[np.isfinite(draw_values)]
    if d.size == 0 or not np.isfinite(value):
        return math.nan, math.nan
    ge = int(np.sum(d >= value))
    le = int(np.sum(d <= value))
    p = min(1.0, 2 * min((1 + ge) / (d.size + 1), (1 + le) / (d.size + 1)))
    return float(np.mean(d < value)), p


def _compare_cells(a: Cell, b: Cell, x: np.ndarray, n_boot: int, n_perm: int, ci: float,
                   rng: np.random.Generator) -> dict[str, Any]:
    ma, mb = cell_means(a.Y), cell_means(b.Y)
    sa = float(line_stats(x[None], ma[None])["slope"][0])
    sb = float(line_stats(x[None], mb[None])["slope"][0])
    L = len(x)
    li = rng.integers(0, L, size=(n_boot, L))
    shared = None
    if not a.has_draws and not b.has_draws and a.seeds == b.seeds and len(a.seeds) > 1:
        # Same seeds in both: resample them jointly, keeping the pairing over seeds.
        shared = rng.integers(0, len(a.seeds), size=(n_boot, len(a.seeds)))
    sia, dia = unit_indices(a, rng, n_boot, shared)
    sib, dib = unit_indices(b, rng, n_boot, shared)
    reps = (line_stats(x[li], resampled_means(a.Y, li, sia, dia))["slope"]
            - line_stats(x[li], resampled_means(b.Y, li, sib, dib))["slope"])
    lo, hi, _ = percentile_ci(reps, ci)
    p, method = sign_flip_pvalue(ma - mb, x, n_perm, rng)
    out = {"slope_a": sa, "slope_b": sb, "diff": sa - sb, "diff_lo": lo, "diff_hi": hi,
           "p_perm": p, "perm_method": method, "n_draws_b": len(b.draws) if b.has_draws else 0,
           "distance_min": float(x.min()), "distance_max": float(x.max())}
    if b.has_draws:
        draw_slopes = np.array([d["slope"] for d in per_draw_stats(b, x, "score")])
        share, p_draws = draw_rank_pvalue(sa, draw_slopes)
        out.update(share_draws_steeper=share, p_draws=p_draws)
    return out


def comparison_pairs(conditions: Iterable[str]) -> list[tuple[str, str, str]]:
    """(comparison, condition_a, condition_b): each condition vs baseline; diversity vs random."""
    conds = sorted(set(conditions))
    pairs = []
    if BASELINE in conds:
        pairs += [("vs-baseline", c, BASELINE) for c in conds if c != BASELINE]
    div = [c for c in conds if is_diversity(strategy_of(c))]
    rnd = [c for c in conds if is_random(strategy_of(c))]
    pairs += [("diversity-vs-random", d, r) for d in div for r in rnd]
    return pairs


def comparisons(scores: pd.DataFrame, distances: pd.DataFrame, kinds: Sequence[str], *,
                n_boot: int = 2000, n_perm: int = 10000, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """Paired slope differences (score on distance) with CIs, permutation and Holm-adjusted p-values."""
    from statsmodels.stats.multitest import multipletests

    rows = []
    for comparison, ca, cb in comparison_pairs(scores["condition"]):
        for kind in kinds:
            dk = distances[distances["kind"] == kind].set_index("language")["distance"]
            for task in sorted(scores["task"].unique()):
                sa = scores[(scores["condition"] == ca) & (scores["task"] == task)]
                sb = scores[(scores["condition"] == cb) & (scores["task"] == task)]
                base = {"comparison": comparison, "condition_a": ca, "condition_b": cb, "task": task,
                        "kind": kind, "measure": "score"}
                if sa.empty or sb.empty:
                    continue
                langs = sorted((set(sa["language"]) & set(sb["language"])) - {ENGLISH})
                langs = [lang for lang in langs if lang in dk.index and np.isfinite(dk[lang])]
                a = build_cell(sa, ca, langs)
                b = build_cell(sb, cb, langs)
                # Pair only languages that both conditions scored.
                keep = np.isfinite(cell_means(a.Y)) & np.isfinite(cell_means(b.Y))
                langs = [lang for lang, k in zip(langs, keep) if k]
                a, b = a.subset(langs), b.subset(langs)
                x = np.array([dk[lang] for lang in langs], dtype=float)
                problem = estimability(langs, x)
                if problem:
                    rows.append(dict(base, n_languages=len(langs), estimable=False,
                                     note=f"not estimable: {problem}"))
                    continue
                res = _compare_cells(a, b, x, n_boot, n_perm, ci,
                                     cell_rng(seed, "compare", ca, cb, task, kind))
                rows.append(dict(base, n_languages=len(langs), **res, estimable=True, note=""))
    cols = ["comparison", "condition_a", "condition_b", "task", "kind", "measure", "n_languages",
            "distance_min", "distance_max", "slope_a",
            "slope_b", "diff", "diff_lo", "diff_hi", "p_perm", "perm_method", "p_holm", "n_draws_b",
            "share_draws_steeper", "p_draws", "p_draws_holm", "estimable", "note"]
    comp = pd.DataFrame(rows).reindex(columns=cols)
    if comp.empty:
        return comp
    # Holm within each pair of conditions, across tasks and distance kinds.
    for (ca, cb), grp in comp.groupby(["condition_a", "condition_b"]):
        for src, dst in (("p_perm", "p_holm"), ("p_draws", "p_draws_holm")):
            ps = grp[src].astype(float)
            ok = ps.notna()
            if ok.any():
                comp.loc[ps[ok].index, dst] = multipletests(ps[ok].to_numpy(), method="holm")[1]
    return comp
