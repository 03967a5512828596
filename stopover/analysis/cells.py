"""Statistical building blocks: row-wise OLS and correlations, and one condition's scores as a cell.

A cell holds one condition's scores in one task as a (language, seed, draw)
tensor; the bootstrap resamples languages and seeds or draws of it.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stopover.analysis.frame import (
    ENGLISH,
    MIN_LANGUAGES,
)


def cell_rng(seed: int, *key: object) -> np.random.Generator:
    # One stream per cell, derived from the user seed and the cell's name, so a
    # cell's bootstrap does not change when other cells are added or filtered.
    digest = zlib.crc32("\x1f".join(map(str, key)).encode("utf-8"))
    return np.random.default_rng([int(seed), digest])


def line_stats(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """OLS slope/intercept, Pearson r and Spearman rho of y on x, row-wise.

    `x` and `y` have shape (B, L); NaN marks a missing language in a row.
    Rows with fewer than 3 finite pairs or no spread in x give NaN.
    """
    from scipy.stats import rankdata

    x = np.atleast_2d(np.asarray(x, dtype=float))
    y = np.atleast_2d(np.asarray(y, dtype=float))
    x = np.broadcast_to(x, y.shape)
    ok = np.isfinite(x) & np.isfinite(y)
    n = ok.sum(axis=1)

    def pearson_parts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
        with np.errstate(invalid="ignore", divide="ignore"):
            ma = np.where(ok, a, 0.0).sum(1) / n
            mb = np.where(ok, b, 0.0).sum(1) / n
            da = np.where(ok, a - ma[:, None], 0.0)
            db = np.where(ok, b - mb[:, None], 0.0)
        return ma, mb, (da * da).sum(1), (db * db).sum(1), (da * db).sum(1)

    mx, my, sxx, syy, sxy = pearson_parts(x, y)
    valid = (n >= MIN_LANGUAGES) & (sxx > 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(valid, sxy / sxx, np.nan)
        intercept = np.where(valid, my - slope * mx, np.nan)
        r = np.where(valid & (syy > 1e-12), sxy / np.sqrt(sxx * syy), np.nan)
    rx = rankdata(np.where(ok, x, np.nan), axis=1, nan_policy="omit")
    ry = rankdata(np.where(ok, y, np.nan), axis=1, nan_policy="omit")
    _, _, rxx, ryy, rxy = pearson_parts(rx, ry)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(valid & (ryy > 1e-12) & (rxx > 1e-12), rxy / np.sqrt(rxx * ryy), np.nan)
    return {"slope": slope, "intercept": intercept, "r": np.clip(r, -1, 1),
            "rho": np.clip(rho, -1, 1), "n": n}


def percentile_ci(reps: np.ndarray, ci: float) -> tuple[float, float, int]:
    """Percentile interval of the finite replicates; NaN if under half are finite."""
    finite = reps[np.isfinite(reps)]
    if finite.size < max(2, reps.size // 2):
        return math.nan, math.nan, int(finite.size)
    q = (1 - ci) / 2 * 100
    lo, hi = np.percentile(finite, [q, 100 - q])
    return float(lo), float(hi), int(finite.size)


def nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices are expected: missing cells
        return np.nanmean(a, axis=axis)


def cell_means(Y: np.ndarray) -> np.ndarray:
    """Per-language mean: over seeds within each draw, then over draws (draws weigh equally)."""
    return nanmean(nanmean(Y, axis=1), axis=1)


@dataclass
class Cell:
    """One condition's scores in one task, as a (language, seed, draw) tensor."""

    condition: str
    languages: list[str]
    seeds: list[int]
    draws: list[str]
    Y: np.ndarray  # scores, shape (L, S, D), NaN where missing
    english: np.ndarray | None  # English scores, shape (S, D)

    def measure(self, name: str) -> np.ndarray:
        if name == "score":
            return self.Y
        if self.english is None:
            return np.full_like(self.Y, np.nan)
        return self.english[None, :, :] - self.Y

    @property
    def has_draws(self) -> bool:
        return len(self.draws) > 1

    def subset(self, languages: Sequence[str]) -> "Cell":
        idx = [self.languages.index(lang) for lang in languages]
        return Cell(self.condition, list(languages), self.seeds, self.draws, self.Y[idx], self.english)


def build_cell(sub: pd.DataFrame, condition: str, languages: Sequence[str]) -> Cell:
    seeds = sorted(int(s) for s in sub["seed"].unique())
    draws = sorted(sub["intermediate"].unique())
    s_ix = {s: i for i, s in enumerate(seeds)}
    d_ix = {d: i for i, d in enumerate(draws)}
    l_ix = {lang: i for i, lang in enumerate(languages)}
    Y = np.full((len(languages), len(seeds), len(draws)), np.nan)
    E = np.full((len(seeds), len(draws)), np.nan)
    for lang, seed, draw, value in sub[["language", "seed", "intermediate", "score"]].itertuples(index=False):
        if lang == ENGLISH:
            E[s_ix[int(seed)], d_ix[draw]] = value
        elif lang in l_ix:
            Y[l_ix[lang], s_ix[int(seed)], d_ix[draw]] = value
    english = E if np.isfinite(E).any() else None
    return Cell(condition, list(languages), seeds, draws, Y, english)


def resampled_means(Y: np.ndarray, li: np.ndarray, si: np.ndarray | None, di: np.ndarray | None,
                     chunk: int = 128) -> np.ndarray:
    """Per-language means of Y under B resamplings of languages, seeds and draws -> (B, L)."""
    B, L = li.shape
    _, S, D = Y.shape
    si = np.broadcast_to(np.arange(S), (B, S)) if si is None else si
    di = np.broadcast_to(np.arange(D), (B, D)) if di is None else di
    out = np.empty((B, L))
    for start in range(0, B, chunk):
        sl = slice(start, start + chunk)
        sub = Y[li[sl][:, :, None, None], si[sl][:, None, :, None], di[sl][:, None, None, :]]
        out[sl] = nanmean(nanmean(sub, axis=2), axis=2)
    return out


def unit_indices(cell: Cell, rng: np.random.Generator, n_boot: int,
                  shared_seeds: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Resampling of a cell's runs: draws for a random condition, else seeds."""
    S, D = len(cell.seeds), len(cell.draws)
    if D > 1:
        # The draw is the unit; all of a draw's seeds travel with it.
        return None, rng.integers(0, D, size=(n_boot, D))
    if shared_seeds is not None:
        return shared_seeds, None
    if S > 1:
        return rng.integers(0, S, size=(n_boot, S)), None
    return None, None


def estimability(langs: Sequence[str], x: np.ndarray) -> str:
    if len(langs) < MIN_LANGUAGES:
        return f"{len(langs)} language(s) with a distance besides English; a regression needs {MIN_LANGUAGES}"
    if np.ptp(x) <= 1e-12:
        return "every language has the same distance"
    return ""


def per_draw_stats(cell: Cell, x: np.ndarray, measure: str) -> list[dict[str, float]]:
    Y = cell.measure(measure)
    means = nanmean(Y, axis=1).T  # (D, L): seed means per draw
    st = line_stats(np.broadcast_to(x, means.shape), means)
    return [{"slope": float(st["slope"][d]), "pearson_r": float(st["r"][d]),
             "spearman_rho": float(st["rho"][d]), "n_languages": int(st["n"][d])}
            for d in range(means.shape[0])]
