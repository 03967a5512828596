"""Robustness statistics: how a language's zero-shot score depends on its distance from English.

This module owns every number in a run's report. It reads only the run
directory's `results.jsonl` (through `stopover.store.read_results`),
`typology.csv` and `covariates.csv`, and computes (docs/analysis.md gives the
exact definitions):

- per-language scores, transfer gaps (English minus language) and relative
  scores, per condition x task x seed;
- per condition x task x distance kind: OLS slope of score and of gap on
  distance, Pearson and Spearman correlation, with bootstrap CIs that
  resample languages (and seeds, or random draws);
- paired comparisons of slopes (each strategy against the baseline "none",
  each diversity strategy against each random one) with a paired bootstrap CI,
  a sign-flip permutation p-value, a draw-rank p-value against random's draws,
  and Holm correction across tasks and distance kinds;
- a crossed mixed-effects model per distance kind;
- XTREME-style tables;
- a plain-words summary answering the research question.

A *condition* is what a slope is estimated for: the strategy name, or
"strategy:intermediate" for a deterministic strategy that ran several
intermediate sets in one task (e.g. "single"). Random strategies
("random*") keep one condition whose intermediate sets are its draws.
No torch here: pandas, numpy, scipy and statsmodels only.
"""

from __future__ import annotations

import math
import re
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from stopover.errors import ConfigError, DataError
from stopover.store import read_results

ENGLISH = "eng"
BASELINE = "none"
TYPOLOGY_FILE = "typology.csv"
COVARIATES_FILE = "covariates.csv"
FERTILITY_FILE = "fertility.csv"
CONFIG_FILE = "config.yaml"
# Canonical order of URIEL distance kinds; the first present is the headline kind.
KIND_ORDER = ("syntactic", "genetic", "geographic", "phonological", "inventory", "featural")
MEASURES = ("score", "gap")
QA_EM_NAMES = ("em", "exact_match", "exact")
QA_F1_NAMES = ("f1",)
MIN_LANGUAGES = 3
MIN_COVERAGE = 0.25  # the same threshold as stopover.typology.MIN_COVERAGE (no import: urielplus loads slowly)
_TOL = 1e-9


@dataclass
class Analysis:
    """Everything the report shows, as DataFrames (columns documented in docs/analysis.md)."""

    run_dir: Path
    scores: pd.DataFrame
    robustness: pd.DataFrame
    comparisons: pd.DataFrame
    mixed: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    summary: str
    draws: pd.DataFrame = field(default_factory=pd.DataFrame)
    points: pd.DataFrame = field(default_factory=pd.DataFrame)
    bands: pd.DataFrame = field(default_factory=pd.DataFrame)
    distances: pd.DataFrame = field(default_factory=pd.DataFrame)
    covariates: pd.DataFrame = field(default_factory=pd.DataFrame)
    kinds: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    set_units: pd.DataFrame = field(default_factory=pd.DataFrame)
    set_tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    power: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def primary_kind(self) -> str:
        return self.kinds[0]


# --------------------------------------------------------------------------- helpers


def is_random(strategy: str) -> bool:
    """Random selection strategies: each intermediate set of theirs is one draw."""
    return strategy.startswith("random")


def is_diversity(strategy: str) -> bool:
    """Strategies that choose intermediate tasks by linguistic diversity."""
    return strategy.startswith("diversity")


def _strategy_of(condition: str) -> str:
    return condition.split(":", 1)[0]


def _rng(seed: int, *key: object) -> np.random.Generator:
    # One stream per cell, derived from the user seed and the cell's name, so a
    # cell's bootstrap does not change when other cells are added or filtered.
    digest = zlib.crc32("\x1f".join(map(str, key)).encode("utf-8"))
    return np.random.default_rng([int(seed), digest])


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


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


def _percentile_ci(reps: np.ndarray, ci: float) -> tuple[float, float, int]:
    """Percentile interval of the finite replicates; NaN if under half are finite."""
    finite = reps[np.isfinite(reps)]
    if finite.size < max(2, reps.size // 2):
        return math.nan, math.nan, int(finite.size)
    q = (1 - ci) / 2 * 100
    lo, hi = np.percentile(finite, [q, 100 - q])
    return float(lo), float(hi), int(finite.size)


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices are expected: missing cells
        return np.nanmean(a, axis=axis)


def _cell_means(Y: np.ndarray) -> np.ndarray:
    """Per-language mean: over seeds within each draw, then over draws (draws weigh equally)."""
    return _nanmean(_nanmean(Y, axis=1), axis=1)


@dataclass
class _Cell:
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

    def subset(self, languages: Sequence[str]) -> "_Cell":
        idx = [self.languages.index(lang) for lang in languages]
        return _Cell(self.condition, list(languages), self.seeds, self.draws, self.Y[idx], self.english)


def _build_cell(sub: pd.DataFrame, condition: str, languages: Sequence[str]) -> _Cell:
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
    return _Cell(condition, list(languages), seeds, draws, Y, english)


def _resampled_means(Y: np.ndarray, li: np.ndarray, si: np.ndarray | None, di: np.ndarray | None,
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
        out[sl] = _nanmean(_nanmean(sub, axis=2), axis=2)
    return out


def _unit_indices(cell: _Cell, rng: np.random.Generator, n_boot: int,
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


# --------------------------------------------------------------------------- inputs


def _kind_order(kinds: Iterable[str]) -> list[str]:
    kinds = list(dict.fromkeys(kinds))
    head = [k for k in KIND_ORDER if k in kinds]
    return head + sorted(k for k in kinds if k not in KIND_ORDER)


def load_eval_frame(run_dir: Path, *, split: str = "test", model: str | None = None) -> pd.DataFrame:
    """All eval rows of one split (every metric) as a DataFrame, checked for usable content."""
    rows = read_results(run_dir)
    if not rows:
        raise DataError(f"{run_dir / 'results.jsonl'}: no result rows; run the grid first")
    df = pd.DataFrame([r.__dict__ for r in rows])
    ev = df[df["stage"] == "eval"]
    if ev.empty:
        raise DataError(f"{run_dir / 'results.jsonl'}: no eval rows (stage 'eval'); "
                        "the zero-shot evaluation stage has not finished for any cell")
    at_split = ev[ev["split"] == split]
    if at_split.empty:
        have = ", ".join(sorted(ev["split"].unique()))
        raise DataError(f"{run_dir / 'results.jsonl'}: no eval rows for split {split!r} "
                        f"(splits present: {have}); pass --split")
    models = sorted(m for m in at_split["model"].unique())
    if model is not None:
        at_split = at_split[at_split["model"] == model]
        if at_split.empty:
            raise DataError(f"{run_dir / 'results.jsonl'}: no eval rows for model {model!r} "
                            f"(models present: {', '.join(models)})")
    elif len(models) > 1:
        raise DataError(f"{run_dir / 'results.jsonl'}: eval rows come from {len(models)} models "
                        f"({', '.join(models)}); choose one with --model")
    if not (at_split["primary"].astype(bool)).any():
        raise DataError(f"{run_dir / 'results.jsonl'}: no primary-metric eval rows for split {split!r}")
    if not (at_split["language"] == ENGLISH).any():
        raise DataError(f"{run_dir / 'results.jsonl'}: no English ({ENGLISH}) eval rows; the transfer "
                        "gap needs each model's English score")
    return at_split.reset_index(drop=True)


def condition_labels(ev: pd.DataFrame) -> pd.Series:
    """Condition of each row: the strategy, or strategy:intermediate where one task has several."""
    det = ev[~ev["strategy"].map(is_random)]
    per_task = det.groupby(["strategy", "task"])["intermediate"].nunique()
    multi = set(per_task[per_task > 1].index.get_level_values(0))
    return pd.Series([
        f"{s}:{i}" if (s in multi and not is_random(s)) else s
        for s, i in zip(ev["strategy"], ev["intermediate"])
    ], index=ev.index, dtype=object)


def normalise_languages(codes: pd.Series, notes: list[str]) -> pd.Series:
    """Each row's language as the language table's key (ISO 639-3), so joins meet on one code.

    swh and swa, cmn and zho, ... become one key. Lab languages (`lab-*`) keep
    their code. A code the table does not know stays as given and is counted in
    a note: it has no typology row, so it is left out of the regressions, never
    silently.
    """
    from stopover import languages as langtable
    from stopover.errors import LanguageError

    mapping: dict[str, str] = {}
    unknown: list[str] = []
    for code in codes.unique():
        if str(code).startswith("lab-"):
            mapping[code] = code
            continue
        try:
            mapping[code] = langtable.get(str(code)).iso3
        except LanguageError:
            mapping[code] = code
            unknown.append(str(code))
    if unknown:
        n = int(codes.isin(unknown).sum())
        notes.append(f"{n} eval row(s) have language codes the language table does not know "
                     f"({', '.join(sorted(unknown))}): kept as given, they join no typology row")
    renamed = sorted(f"{a}->{b}" for a, b in mapping.items() if a != b)
    if renamed:
        notes.append(f"language codes normalised to the language table's keys: {', '.join(renamed)}")
    return codes.map(mapping)


def score_table(ev: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Primary-metric scores with English score, gap and relative score per row."""
    prim = ev[ev["primary"].astype(bool)].copy()
    prim["language"] = normalise_languages(prim["language"], notes)
    # One headline metric per task: a task flagging several as primary keeps F1 if among them, else
    # the alphabetically first, so that no language is scored twice in a regression.
    for task, metrics in prim.groupby("task")["metric"].unique().items():
        if len(metrics) > 1:
            keep = next((m for m in sorted(metrics) if m.lower() in QA_F1_NAMES), sorted(metrics)[0])
            notes.append(f"task {task} has several primary metrics ({', '.join(sorted(metrics))}); "
                         f"used {keep}")
            prim = prim[(prim["task"] != task) | (prim["metric"] == keep)]
    prim["condition"] = condition_labels(prim)
    keys = ["condition", "strategy", "intermediate", "task", "seed", "language", "model", "metric"]
    dup = prim.duplicated(keys, keep=False)
    if dup.any():
        notes.append(f"{int(dup.sum())} eval rows share (strategy, intermediate, task, seed, language, "
                     "metric) with another row; their values were averaged")
    scores = prim.groupby(keys, as_index=False, sort=True)["value"].mean().rename(columns={"value": "score"})
    en = scores[scores["language"] == ENGLISH][
        ["condition", "intermediate", "task", "seed", "score"]].rename(columns={"score": "en_score"})
    scores = scores.merge(en, on=["condition", "intermediate", "task", "seed"], how="left")
    scores["gap"] = scores["en_score"] - scores["score"]
    with np.errstate(divide="ignore", invalid="ignore"):
        scores["relative"] = np.where(scores["en_score"] > 0, 100 * scores["score"] / scores["en_score"],
                                      np.nan)
    lacking = sorted(scores.loc[scores["en_score"].isna(), "task"].unique())
    if lacking:
        notes.append(f"no English score for some models of task(s) {', '.join(lacking)}: "
                     "their gaps are missing")
    return scores


def ensure_run_tables(run_dir: Path, languages: Sequence[str]) -> list[str]:
    """Create typology.csv/covariates.csv with stopover.typology when either is missing."""
    typ, cov = run_dir / TYPOLOGY_FILE, run_dir / COVARIATES_FILE
    if typ.exists() and cov.exists():
        return []
    missing = " and ".join(p.name for p in (typ, cov) if not p.exists())
    try:
        from stopover.typology import write_run_tables  # lazy: urielplus loads slowly
        write_run_tables(run_dir, sorted(languages))
    except Exception as err:  # ImportError, StopoverError or a library failure: all say the same
        if typ.exists():
            return [f"{COVARIATES_FILE} is missing and could not be computed "
                    f"({type(err).__name__}: {_first_line(err)}); the pretraining-size covariate is dropped"]
        raise DataError(f"{run_dir}: {missing} missing and stopover.typology.write_run_tables failed "
                        f"({type(err).__name__}: {_first_line(err)}); write {TYPOLOGY_FILE} "
                        "(language,kind,distance,backend) into the run directory") from err
    return [f"computed {missing} with stopover.typology.write_run_tables"]


def load_distances(run_dir: Path, notes: list[str], *, min_coverage: float = MIN_COVERAGE) -> pd.DataFrame:
    """typology.csv as (language, kind, distance, backend), one backend per kind.

    Distances whose feature coverage (column `coverage`, when present) is below
    `min_coverage` are left out, with a note saying how many languages that removes.
    """
    path = run_dir / TYPOLOGY_FILE
    if not path.exists():
        raise DataError(f"{path}: missing; write it with stopover.typology.write_run_tables")
    try:
        typ = pd.read_csv(path, dtype={"language": str, "kind": str})
    except Exception as err:
        raise DataError(f"{path}: unreadable CSV ({_first_line(err)})") from err
    lacking = [c for c in ("language", "kind", "distance") if c not in typ.columns]
    if lacking:
        raise DataError(f"{path}: missing column(s) {', '.join(lacking)}; "
                        "expected language,kind,distance,backend")
    if "backend" not in typ.columns:
        typ["backend"] = ""
    typ["backend"] = typ["backend"].fillna("").astype(str)
    typ["distance"] = pd.to_numeric(typ["distance"], errors="coerce")
    typ = typ.dropna(subset=["language", "kind"])
    typ["language"] = normalise_languages(typ["language"], [])  # the scores' keys: both sides normalised
    if "coverage" in typ.columns and min_coverage > 0:
        # A distance computed from few shared features is not a measurement (docs/analysis.md).
        cov = pd.to_numeric(typ["coverage"], errors="coerce")
        low = typ[(cov < min_coverage) & typ["distance"].notna()]
        for kind, grp in low.groupby("kind", sort=True):
            notes.append(f"{TYPOLOGY_FILE}: {len(grp)} {kind} distance(s) rest on under {min_coverage:.0%} of the "
                         f"features ({', '.join(sorted(grp['language']))}): excluded, which removes "
                         f"{grp['language'].nunique()} language(s) from the {kind} analyses")
        typ.loc[low.index, "distance"] = np.nan
    chosen = []
    for kind, grp in typ.groupby("kind", sort=False):
        cover = grp.dropna(subset=["distance"]).groupby("backend")["language"].nunique()
        if cover.empty:
            notes.append(f"{TYPOLOGY_FILE}: kind {kind!r} has no numeric distances; skipped")
            continue
        # The backend covering most languages wins; ties go to the alphabetically first.
        best = sorted(cover.index, key=lambda b: (-cover[b], b))[0]
        if len(cover) > 1:
            notes.append(f"{TYPOLOGY_FILE}: kind {kind!r} has backends {', '.join(sorted(cover.index))}; "
                         f"used {best or '(unnamed)'} (covers most languages)")
        chosen.append(grp[grp["backend"] == best].groupby("language", as_index=False)
                      .agg(distance=("distance", "mean"), backend=("backend", "first"))
                      .assign(kind=kind))
    if not chosen:
        raise DataError(f"{path}: no numeric distances for any kind")
    return pd.concat(chosen, ignore_index=True)[["language", "kind", "distance", "backend"]]


def load_covariates(run_dir: Path) -> pd.DataFrame:
    """covariates.csv, or an empty frame when absent."""
    path = run_dir / COVARIATES_FILE
    if not path.exists():
        return pd.DataFrame(columns=["language"])
    try:
        cov = pd.read_csv(path, dtype={"language": str})
    except Exception as err:
        raise DataError(f"{path}: unreadable CSV ({_first_line(err)})") from err
    if "language" not in cov.columns:
        raise DataError(f"{path}: missing column 'language'")
    cov["language"] = normalise_languages(cov["language"], [])
    cov = cov.drop_duplicates("language")
    fert = run_dir / FERTILITY_FILE
    if fert.exists():
        # Tokenizer fertility, measured by the run on each language's test text (stopover.covariates).
        from stopover.covariates import read_fertility_table

        table = read_fertility_table(fert)
        cov = cov.drop(columns=[c for c in ("fertility",) if c in cov.columns]).merge(
            table[["language", "fertility"]], on="language", how="left")
    return cov


# --------------------------------------------------------------------------- robustness


def _robustness_cell(cell: _Cell, x: np.ndarray, measure: str, n_boot: int, ci: float,
                     rng: np.random.Generator) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Point estimates and bootstrap CIs for one cell and measure; also (intercept, slope) replicates."""
    Y = cell.measure(measure)
    mean = _cell_means(Y)
    point = line_stats(x[None, :], mean[None, :])
    row: dict[str, Any] = {
        "slope": float(point["slope"][0]), "intercept": float(point["intercept"][0]),
        "pearson_r": float(point["r"][0]), "spearman_rho": float(point["rho"][0]),
        "n_languages": int(point["n"][0]),
    }
    L = len(cell.languages)
    li = rng.integers(0, L, size=(n_boot, L))
    si, di = _unit_indices(cell, rng, n_boot)
    reps = line_stats(x[li], _resampled_means(Y, li, si, di))
    for name, col in (("slope", "slope"), ("r", "pearson_r"), ("rho", "spearman_rho")):
        lo, hi, valid = _percentile_ci(reps[name], ci)
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
            langs = sorted(lang for lang in sub["language"].unique()
                           if lang != ENGLISH and lang in dk.index and np.isfinite(dk[lang]))
            cell = _build_cell(sub, condition, langs)
            x = np.array([dk[lang] for lang in langs], dtype=float)
            base = {"condition": condition, "strategy": _strategy_of(condition),
                    "intermediate": (f"({len(cell.draws)} draws)" if cell.has_draws else cell.draws[0]),
                    "task": task, "kind": kind, "backend": backend,
                    "n_seeds": len(cell.seeds), "n_draws": len(cell.draws)}
            without = sorted(set(sub["language"]) - set(langs) - {ENGLISH})
            for measure in MEASURES:
                row = dict(base, measure=measure)
                problem = _estimability(langs, x)
                if measure == "gap" and cell.english is None:
                    problem = "no English score for this condition"
                if problem:
                    rows.append(dict(row, estimable=False, note=f"not estimable: {problem}"))
                    continue
                stats, b_int, b_slope = _robustness_cell(
                    cell, x, measure, n_boot, ci, _rng(seed, "robustness", condition, task, kind, measure))
                note = f"no {kind} distance for {', '.join(without)}" if without else ""
                rows.append(dict(row, **stats, estimable=np.isfinite(stats["slope"]), note=note))
                if cell.has_draws:
                    per_draw = _per_draw_stats(cell, x, measure)
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
                mean = _cell_means(cell.measure(measure))
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


def _estimability(langs: Sequence[str], x: np.ndarray) -> str:
    if len(langs) < MIN_LANGUAGES:
        return f"{len(langs)} language(s) with a distance besides English; a regression needs {MIN_LANGUAGES}"
    if np.ptp(x) <= 1e-12:
        return "every language has the same distance"
    return ""


def _per_draw_stats(cell: _Cell, x: np.ndarray, measure: str) -> list[dict[str, float]]:
    Y = cell.measure(measure)
    means = _nanmean(Y, axis=1).T  # (D, L): seed means per draw
    st = line_stats(np.broadcast_to(x, means.shape), means)
    return [{"slope": float(st["slope"][d]), "pearson_r": float(st["r"][d]),
             "spearman_rho": float(st["rho"][d]), "n_languages": int(st["n"][d])}
            for d in range(means.shape[0])]


# --------------------------------------------------------------------------- comparisons


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


def _compare_cells(a: _Cell, b: _Cell, x: np.ndarray, n_boot: int, n_perm: int, ci: float,
                   rng: np.random.Generator) -> dict[str, Any]:
    ma, mb = _cell_means(a.Y), _cell_means(b.Y)
    sa = float(line_stats(x[None], ma[None])["slope"][0])
    sb = float(line_stats(x[None], mb[None])["slope"][0])
    L = len(x)
    li = rng.integers(0, L, size=(n_boot, L))
    shared = None
    if not a.has_draws and not b.has_draws and a.seeds == b.seeds and len(a.seeds) > 1:
        # Same seeds in both: resample them jointly, keeping the pairing over seeds.
        shared = rng.integers(0, len(a.seeds), size=(n_boot, len(a.seeds)))
    sia, dia = _unit_indices(a, rng, n_boot, shared)
    sib, dib = _unit_indices(b, rng, n_boot, shared)
    reps = (line_stats(x[li], _resampled_means(a.Y, li, sia, dia))["slope"]
            - line_stats(x[li], _resampled_means(b.Y, li, sib, dib))["slope"])
    lo, hi, _ = _percentile_ci(reps, ci)
    p, method = sign_flip_pvalue(ma - mb, x, n_perm, rng)
    out = {"slope_a": sa, "slope_b": sb, "diff": sa - sb, "diff_lo": lo, "diff_hi": hi,
           "p_perm": p, "perm_method": method, "n_draws_b": len(b.draws) if b.has_draws else 0,
           "distance_min": float(x.min()), "distance_max": float(x.max())}
    if b.has_draws:
        draw_slopes = np.array([d["slope"] for d in _per_draw_stats(b, x, "score")])
        share, p_draws = draw_rank_pvalue(sa, draw_slopes)
        out.update(share_draws_steeper=share, p_draws=p_draws)
    return out


def comparison_pairs(conditions: Iterable[str]) -> list[tuple[str, str, str]]:
    """(comparison, condition_a, condition_b): each condition vs baseline; diversity vs random."""
    conds = sorted(set(conditions))
    pairs = []
    if BASELINE in conds:
        pairs += [("vs-baseline", c, BASELINE) for c in conds if c != BASELINE]
    div = [c for c in conds if is_diversity(_strategy_of(c))]
    rnd = [c for c in conds if is_random(_strategy_of(c))]
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
                a = _build_cell(sa, ca, langs)
                b = _build_cell(sb, cb, langs)
                # Pair only languages that both conditions scored.
                keep = np.isfinite(_cell_means(a.Y)) & np.isfinite(_cell_means(b.Y))
                langs = [lang for lang, k in zip(langs, keep) if k]
                a, b = a.subset(langs), b.subset(langs)
                x = np.array([dk[lang] for lang in langs], dtype=float)
                problem = _estimability(langs, x)
                if problem:
                    rows.append(dict(base, n_languages=len(langs), estimable=False,
                                     note=f"not estimable: {problem}"))
                    continue
                res = _compare_cells(a, b, x, n_boot, n_perm, ci,
                                     _rng(seed, "compare", ca, cb, task, kind))
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


# --------------------------------------------------------------------------- mixed model


def _mixed_data(scores: pd.DataFrame, distances: pd.DataFrame, covariates: pd.DataFrame, kind: str
                ) -> pd.DataFrame:
    sub = scores[scores["language"] != ENGLISH]
    # One observation per (condition, task, language): mean over seeds, then over draws.
    cell = (sub.groupby(["condition", "task", "language", "intermediate"], as_index=False)["score"].mean()
            .groupby(["condition", "task", "language"], as_index=False)["score"].mean())
    dk = distances[distances["kind"] == kind][["language", "distance"]]
    data = cell.merge(dk, on="language", how="inner").dropna(subset=["distance", "score"])
    for col in ("pretrain_gib", "same_script"):
        if col in covariates.columns:
            data = data.merge(covariates[["language", col]], on="language", how="left")
        else:
            data[col] = np.nan
    return data


def mixed_models(scores: pd.DataFrame, distances: pd.DataFrame, covariates: pd.DataFrame,
                 kinds: Sequence[str], *, ci: float = 0.95) -> pd.DataFrame:
    """Fit score ~ distance * condition + log(pretrain_gib), crossed language and task intercepts."""
    rows: list[dict[str, Any]] = []
    for kind in kinds:
        rows += _mixed_one(_mixed_data(scores, distances, covariates, kind), kind, ci)
    cols = ["kind", "term", "condition", "estimate", "se", "ci_lo", "ci_hi", "p", "n_obs", "n_languages",
            "n_tasks", "reference", "formula", "converged", "status", "warnings"]
    return pd.DataFrame(rows).reindex(columns=cols)


def _reference(conditions: Sequence[str]) -> str:
    if BASELINE in conditions:
        return BASELINE
    rnd = [c for c in conditions if is_random(_strategy_of(c))]
    return rnd[0] if rnd else sorted(conditions)[0]


def _mixed_one(data: pd.DataFrame, kind: str, ci: float) -> list[dict[str, Any]]:
    import statsmodels.formula.api as smf

    conds = sorted(data["condition"].unique())
    n_lang, n_task = data["language"].nunique(), data["task"].nunique()
    info = {"kind": kind, "n_obs": len(data), "n_languages": n_lang, "n_tasks": n_task}

    def fail(reason: str, formula: str = "") -> list[dict[str, Any]]:
        return [dict(info, term="(model)", formula=formula, status=f"not estimable: {reason}")]

    if n_lang < MIN_LANGUAGES:
        return fail(f"{n_lang} language(s) with a {kind} distance; need {MIN_LANGUAGES}")
    if len(conds) < 2:
        return fail("one condition only; the distance x strategy interaction needs two")
    ref = _reference(conds)
    notes = []
    cond_term = f"C(condition, Treatment(reference={ref!r}))"
    terms = f"distance * {cond_term}"
    if n_task > 1:
        # Task-specific distance slopes (fixed: tasks are few, 2-9): the strategy contrast is then
        # not one slope forced across tasks that differ in how steeply they fall.
        terms += " + distance:C(task)"
    for col in ("pretrain_gib", "same_script"):
        if col not in data.columns:
            data = data.assign(**{col: np.nan})
    gib = pd.to_numeric(data.groupby("language")["pretrain_gib"].first(), errors="coerce")
    known = gib[(gib > 0) & gib.notna()]
    if known.size >= MIN_LANGUAGES and known.nunique() > 1:
        lacking = sorted(set(gib.index) - set(known.index))
        if lacking:
            # Drop the languages, never the term (a Yoruba without a CC-100 size would otherwise
            # remove pretraining size from every UD POS model).
            notes.append(f"{len(lacking)} language(s) without a positive pretraining size "
                         f"({', '.join(lacking)}) left out of this model")
            data = data[data["language"].isin(known.index)]
            n_lang = data["language"].nunique()
            info.update(n_obs=len(data), n_languages=n_lang)
        data = data.assign(log_pretrain_gib=np.log(data["pretrain_gib"].astype(float)))
        # Pretraining size x strategy: diversity that helps low-resource languages must not pass
        # for robustness to distance (issue 18).
        terms += f" + log_pretrain_gib * {cond_term}"
    else:
        why = ("missing for every language" if known.empty else
               f"known for only {known.size} language(s)" if known.size < MIN_LANGUAGES
               else "constant across languages")
        notes.append(f"log(pretrain_gib) dropped: {why}")
    script = data.groupby("language")["same_script"].first().map(
        lambda v: {True: 1.0, False: 0.0, "True": 1.0, "False": 0.0}.get(v, np.nan))
    if script.notna().all() and script.nunique() > 1:
        data = data.assign(same_script=data["language"].map(script))
        terms += " + same_script"
    vc = {"language": "0 + C(language)"}
    if n_task > 1:
        vc["task"] = "0 + C(task)"
        # Language x task: a language's advantage differs by task; without this variance component
        # the strategy contrast's SE is about twice the true spread (issue 18).
        data = data.assign(language_task=data["language"] + ":" + data["task"])
        vc["language_task"] = "0 + C(language_task)"
    else:
        notes.append("task intercept dropped: one task")
    formula = f"score ~ {terms}"
    described = (f"{formula}; random intercepts: " + ", ".join(f"{k} ({v})" for k, v in vc.items())
                 + "; one group (crossed variance components), REML. Assumes: normal random effects and "
                 "residuals, a linear distance effect per task, one observation per condition x task x "
                 "language (seeds and draws averaged, so sets are not its units - the set-level tests are)")
    data = data.assign(_group=1)

    result, caught, errors = None, [], []
    for method in ("lbfgs", "bfgs", "powell"):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            try:
                model = smf.mixedlm(formula, data, groups="_group", re_formula="0", vc_formula=vc)
                attempt = model.fit(reml=True, method=method)
            except Exception as err:  # singular design, LinAlgError, ...: report and try the next optimiser
                errors.append(f"{method}: {type(err).__name__}: {_first_line(err)}")
                attempt = None
        if attempt is None:
            continue
        # Keep the latest fit that ran; a converged one ends the search.
        result = attempt
        caught = [f"{method}: {_first_line(w.message)}" for w in rec
                  if not issubclass(w.category, DeprecationWarning)]
        if method != "lbfgs":
            caught.insert(0, f"fitted with the {method} optimiser after lbfgs failed or did not converge")
        if result.converged:
            break
    if result is None:
        return fail("; ".join(errors), described)
    with warnings.catch_warnings(record=True) as rec:
        # Standard errors of a singular fit come out NaN with a RuntimeWarning: record, don't print.
        warnings.simplefilter("always")
        rows = _mixed_rows(result, conds, ref, 1 - ci)
    caught += [_first_line(w.message) for w in rec if not issubclass(w.category, DeprecationWarning)]
    warn_text = "; ".join(dict.fromkeys(notes + caught + errors))
    common = dict(info, reference=ref, formula=described, converged=bool(result.converged), warnings=warn_text)
    return [dict(common, **row) for row in rows]


def _mixed_rows(result: Any, conds: Sequence[str], ref: str, alpha: float) -> list[dict[str, Any]]:
    """Fixed effects of a fitted MixedLM, plus each diversity - random interaction contrast."""
    def status(se: float) -> str:
        if not result.converged:
            return "did not converge"
        return "ok" if np.isfinite(se) else "no standard error (singular fit)"

    ci_tab = result.conf_int(alpha=alpha)
    rows = []
    for term in result.fe_params.index:
        m = re.search(r"\[T\.(.+)\]$", term)
        se = float(result.bse_fe[term])
        rows.append(dict(term=_pretty_term(term), condition=m.group(1) if m else "",
                         estimate=float(result.fe_params[term]), se=se,
                         ci_lo=float(ci_tab.loc[term, 0]), ci_hi=float(ci_tab.loc[term, 1]),
                         p=float(result.pvalues[term]), status=status(se)))
    names = list(result.fe_params.index)
    for _, da, rb in comparison_pairs(conds):
        if not (is_diversity(_strategy_of(da)) and is_random(_strategy_of(rb))):
            continue
        vec = np.zeros(len(names))
        for cond, sign in ((da, 1.0), (rb, -1.0)):
            key = [n for n in names if n.startswith("distance:") and n.endswith(f"[T.{cond}]")]
            if cond != ref and key:
                vec[names.index(key[0])] = sign
        label = dict(term=f"distance:{da} - distance:{rb}", condition=f"{da} - {rb}")
        try:
            t = result.t_test(vec[None, :])
            se = float(np.ravel(t.sd)[0])
            lo, hi = np.ravel(t.conf_int(alpha=alpha))[:2]
            rows.append(dict(label, estimate=float(np.ravel(t.effect)[0]), se=se, ci_lo=float(lo),
                             ci_hi=float(hi), p=float(np.ravel(t.pvalue)[0]), status=status(se)))
        except Exception as err:  # a singular covariance: say so in the row
            rows.append(dict(label, status=f"not estimable: {type(err).__name__}: {_first_line(err)}"))
    return rows


def _pretty_term(term: str) -> str:
    return re.sub(r"C\(condition, Treatment\(reference=[^)]*\)\)\[T\.(.+?)\]", r"[\1]", term)


# --------------------------------------------------------------------------- tables


def task_scores(ev: pd.DataFrame) -> pd.DataFrame:
    """Score used for XTREME aggregates per row: (EM+F1)/2 for QA tasks with both, else primary."""
    ev = ev.copy()
    ev["condition"] = condition_labels(ev)
    ev["metric_l"] = ev["metric"].str.lower()
    keys = ["condition", "strategy", "intermediate", "task", "seed", "language"]
    out = []
    for task, grp in ev.groupby("task", sort=True):
        metrics = set(grp["metric_l"])
        em = next((m for m in QA_EM_NAMES if m in metrics), None)
        f1 = next((m for m in QA_F1_NAMES if m in metrics), None)
        if em and f1:
            sel = grp[grp["metric_l"].isin([em, f1])]
            piv = sel.pivot_table(index=keys, columns="metric_l", values="value", aggfunc="mean")
            val = ((piv[em] + piv[f1]) / 2).rename("value").reset_index()
            out.append(val.assign(measure="(EM+F1)/2"))
        else:
            sel = grp[grp["primary"].astype(bool)]
            val = sel.groupby(keys, as_index=False)["value"].mean()
            out.append(val.assign(measure=sel["metric"].iloc[0] if len(sel) else ""))
    return pd.concat(out, ignore_index=True)


def _language_means(df: pd.DataFrame, value: str = "value") -> pd.DataFrame:
    """Mean over seeds within each intermediate, then over intermediates (random draws)."""
    return (df.groupby(["condition", "task", "language", "intermediate"], as_index=False)[value].mean()
            .groupby(["condition", "task", "language"], as_index=False)[value].mean())


def xtreme_tables(ev: pd.DataFrame, scores: pd.DataFrame, distances: pd.DataFrame,
                  robust: pd.DataFrame, kinds: Sequence[str]) -> dict[str, pd.DataFrame]:
    """XTREME-style tables: per task x condition, the paper table, per-language and slope tables."""
    ts = task_scores(ev)
    per_lang = _language_means(ts)
    by_task = per_lang.groupby(["condition", "task"])["value"].mean().unstack("task")
    measure = ts.groupby("task")["measure"].first()
    by_task.columns = [f"{t} ({measure[t]})" for t in by_task.columns]
    by_task["avg"] = by_task.mean(axis=1, skipna=False)
    by_task.index.name = "condition"
    tables = {"tasks": by_task.round(2).reset_index()}

    # Paper table: target tasks x intermediate sets; random draws collapse into one column.
    ts = ts.assign(column=[
        (f"{s} (mean of draws)" if is_random(s) else i) for s, i in zip(ts["strategy"], ts["intermediate"])])
    paper = (ts.groupby(["column", "task", "language", "intermediate"], as_index=False)["value"].mean()
             .groupby(["column", "task", "language"], as_index=False)["value"].mean()
             .groupby(["task", "column"])["value"].mean().unstack("column"))
    order = ([BASELINE] if BASELINE in paper.columns else []) + sorted(c for c in paper.columns if c != BASELINE)
    paper = paper[order]
    paper.loc["avg"] = paper.mean(axis=0, skipna=False)
    paper.index.name = "task"
    tables["paper"] = paper.round(2).reset_index()

    kind = kinds[0]
    dk = distances[distances["kind"] == kind].set_index("language")["distance"]
    lm = _language_means(scores, "score")
    for task, grp in lm.groupby("task", sort=True):
        wide = grp.pivot(index="condition", columns="language", values="score")
        cols = sorted(wide.columns, key=lambda c: (c != ENGLISH, dk.get(c, np.inf), c))
        wide = wide[cols]
        wide["avg"] = wide.mean(axis=1, skipna=False)
        wide.index.name = "condition"
        tables[f"languages_{slug(task)}"] = wide.round(2).reset_index()

    rk = robust[(robust["kind"] == kind) & (robust["measure"] == "score")]
    if not rk.empty:
        def fmt(r: pd.Series) -> str:
            if not r["estimable"] or not np.isfinite(r["slope"]):
                return "n/e"
            return f"{r['slope']:.1f} [{r['slope_lo']:.1f}, {r['slope_hi']:.1f}]"
        slopes = rk.assign(cell=rk.apply(fmt, axis=1)).pivot(index="condition", columns="task", values="cell")
        slopes.index.name = "condition"
        tables[f"slopes_{slug(kind)}"] = slopes.reset_index()
    return tables


def slug(text: str) -> str:
    """A file-name-safe form of a task or kind name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


# --------------------------------------------------------------------------- summary


def _p_text(label: str, p: float) -> str:
    """'label = 0.012', 'label < 0.001' or 'label not available'."""
    if not np.isfinite(p):
        return f"{label} not available"
    return f"{label} < 0.001" if p < 0.001 else f"{label} = {p:.3f}"


def _signed(value: float, digits: int = 1) -> str:
    return f"{value:+.{digits}f}"


def _primary_paragraphs(set_tests: pd.DataFrame, kind: str, alpha: float, pct: str
                        ) -> tuple[list[str], int, int, int]:
    """Sentences on the set-level tests of the headline kind; (sentences, n_for, n_against, n_tests)."""
    from stopover.analysis.power import draws_needed

    out: list[str] = []
    n_for = n_against = n_tests = 0
    if set_tests is None or set_tests.empty:
        return out, 0, 0, 0
    st = set_tests[set_tests["kind"] == kind]
    n_rank_family = int(((st["test"] == "draw-rank") & st["p"].notna()).sum())
    for _, r in st.iterrows():
        adj = ("slopes adjusted for " + r["adjusted_for"].replace(",", " and ").replace("log_pretrain_gib",
               "log pretraining size").replace("same_script", "same script as English").replace("fertility", "tokenizer fertility")
               if r["adjusted_for"] not in ("", "none") else "slopes not adjusted")
        if r["test"] == "dose-response":
            if not np.isfinite(r["p"]):
                out.append(f"Dose-response on {r['task']} ({kind}): {r['note']}.")
                continue
            n_tests += 1
            sig = r["p_holm"] < alpha
            n_for += int(sig and r["estimate"] > 0)
            n_against += int(sig and r["estimate"] < 0)
            out.append(
                f"Dose-response on {r['task']} ({kind} distance; {adj}; unit: intermediate set): across "
                f"{int(r['n_sets'])} sets ({int(r['n_draws'])} random draws), each unit of set diversity changes "
                f"the distance slope by {_signed(r['estimate'])} points per unit distance ({pct} CI "
                f"[{_signed(r['ci_lo'])}, {_signed(r['ci_hi'])}]; the p-value tests 'a set's diversity is "
                f"unrelated to its distance slope': {_p_text('p', r['p'])}, "
                f"{_p_text('Holm-adjusted over tasks', r['p_holm'])}).")
        else:
            if not np.isfinite(r["p"]):
                out.append(f"Draw-rank of {r['set']} on {r['task']} ({kind}): {r['note']}.")
                continue
            n_tests += 1
            sig = r["p_holm"] < alpha
            above = r["share_below"] >= 0.5
            n_for += int(sig and above)
            n_against += int(sig and not above)
            n = int(r["n_draws"])
            text = (f"Draw-rank on {r['task']} ({kind}; {adj}; unit: intermediate set): the diversity set "
                    f"{r['set']} has a distance slope of {r['estimate']:.1f}; {r['share_below'] * 100:.0f}% of "
                    f"the {n} distinct random sets fall more steeply (their slopes' {pct} quantiles: "
                    f"{r['ci_lo']:.1f} to {r['ci_hi']:.1f}); the p-value tests 'this set is exchangeable with "
                    f"the random sets': {_p_text('p', r['p'])}, "
                    f"{_p_text(f'Holm-adjusted over {n_rank_family} draw-rank tests', r['p_holm'])}. "
                    f"Floor: with {n} draws this two-sided test cannot go below 2/({n}+1) = {r['floor']:.3f}")
            need1 = draws_needed(alpha)
            needf = draws_needed(alpha, max(1, n_rank_family))
            if n_rank_family * r["floor"] >= alpha:
                text += (f", so it cannot reach p < {alpha}: that needs at least {need1} draws"
                         + (f", and {needf} with Holm over {n_rank_family} tests" if n_rank_family > 1 else ""))
            text += "."
            if r["ties"]:
                text += f" Note: {r['ties']}."
            out.append(text)
    return out, n_for, n_against, n_tests


def summarize(comp: pd.DataFrame, robust: pd.DataFrame, mixed: pd.DataFrame, kinds: Sequence[str],
              conditions: Sequence[str], alpha: float = 0.05, ci: float = 0.95,
              set_tests: pd.DataFrame | None = None, power: pd.DataFrame | None = None) -> str:
    """Plain-words answer to the research question, built only from the computed numbers.

    The verdict about the strategy rests on the set-level (primary) tests only;
    the paired comparison of one set with the mean of the random draws is
    reported as secondary, with what it is about named.
    """
    question = ("Does choosing intermediate tasks by linguistic diversity make zero-shot transfer more "
                "robust to typological distance than choosing them at random?")
    kind = kinds[0]
    pct = f"{round(ci * 100)}%"
    paras = [question]
    conds = sorted(set(conditions))
    div = [c for c in conds if is_diversity(_strategy_of(c))]
    rnd = [c for c in conds if is_random(_strategy_of(c))]
    if not div or not rnd:
        lacking = " and ".join(x for x, have in (("no diversity strategy", div), ("no random strategy", rnd))
                               if not have)
        paras.append(f"Answer: not answerable from this run: it has {lacking}. "
                     "Run a grid with both a diversity-* and a random-* strategy.")
    else:
        sentences, n_for, n_against, n_tests = _primary_paragraphs(
            set_tests if set_tests is not None else pd.DataFrame(), kind, alpha, pct)
        if not n_tests:
            verdict = ("not established at the set level: no set-level test (draw-rank of the diversity set "
                       "among random sets, dose-response of set robustness on set diversity) could be computed, "
                       "so nothing below is evidence about the strategy itself")
        elif n_for and not n_against:
            verdict = ("yes: in the set-level tests, diversity buys robustness to distance "
                       f"({n_for} of {n_tests} tests significant after Holm at alpha = {alpha}, none against)")
        elif n_against and not n_for:
            verdict = (f"no: the set-level tests point the other way ({n_against} of {n_tests} significant "
                       f"against diversity after Holm at alpha = {alpha})")
        elif n_for and n_against:
            verdict = f"mixed: set-level tests significant in both directions ({n_for} for, {n_against} against)"
        else:
            verdict = (f"inconclusive: none of the {n_tests} set-level tests is significant after Holm at "
                       f"alpha = {alpha}")
        paras.append(f"Answer (primary, set-level; {kind} distance): {verdict}.")
        if sentences:
            paras.append("Primary (set-level) tests. " + " ".join(sentences))
        for d in div:
            for r in rnd:
                paras.append(_pair_paragraph(comp, robust, mixed, d, r, kind, alpha, pct))
    if power is not None and not power.empty:
        floors = []
        for _, p in power.iterrows():
            if p["floor"] > 0:
                floors.append(f"{p['test']}: floor {p['floor']:.3g}, {p['floor_adjusted']:.3g} with Holm over "
                              f"{int(p['family'])}" + ("" if p["reachable"] else f" - cannot reach {alpha}; "
                                                       f"fix: {p['fix']}"))
        if floors:
            paras.append("Smallest attainable p-values (floors) as this run was designed: " + "; ".join(floors)
                         + ".")
    base = comp[(comp["comparison"] == "vs-baseline") & (comp["kind"] == kind)
                & comp["estimable"].astype(bool)] if not comp.empty else comp
    if not base.empty:
        sig = base[base["p_holm"] < alpha]
        better = sorted(set(sig.loc[sig["diff"] > 0, "condition_a"]))
        worse = sorted(set(sig.loc[sig["diff"] < 0, "condition_a"]))
        text = (f"Against the baseline without intermediate training ({BASELINE}), on {kind} distance "
                "(sign-flip over languages, Holm over tasks and kinds): ")
        parts = []
        if better:
            parts.append(f"{', '.join(better)} fell significantly less steeply with distance in at least one task")
        if worse:
            parts.append(f"{', '.join(worse)} fell significantly more steeply in at least one task")
        if not parts:
            parts.append(f"no strategy's slope differed significantly from the baseline's "
                         f"(Holm-adjusted p < {alpha})")
        paras.append(text + "; ".join(parts) + ".")
    return "\n\n".join(paras)


def _pair_paragraph(comp: pd.DataFrame, robust: pd.DataFrame, mixed: pd.DataFrame, d: str, r: str,
                    kind: str, alpha: float, pct: str) -> str:
    from stopover.analysis.power import languages_needed

    head = f"Secondary ({d}'s set vs the mean of {r}'s draws; about this set and these draws, not the strategy)"
    rows = comp[(comp["condition_a"] == d) & (comp["condition_b"] == r)] if not comp.empty else comp
    est = rows[rows["estimable"].astype(bool)] if not rows.empty else rows
    if est.empty:
        return (f"{head}: not estimable: fewer than {MIN_LANGUAGES} languages with a distance "
                "are scored by both strategies.")
    sig = est[est["p_holm"] < alpha]
    n_pos, n_neg = int((sig["diff"] > 0).sum()), int((sig["diff"] < 0).sum())
    if n_pos and not n_neg:
        finding = f"{d}'s set is more robust to distance than the mean of these draws"
    elif n_neg and not n_pos:
        finding = f"{d}'s set is less robust to distance than the mean of these draws"
    elif n_pos and n_neg:
        finding = f"{d}'s set is more robust than the mean of these draws in some tests and less in others"
    else:
        finding = f"no difference between {d}'s set and the mean of these draws is statistically significant"
    n_draws = int(est["n_draws_b"].max()) if est["n_draws_b"].notna().any() else 0
    draws_txt = f", {n_draws} random draws" if n_draws else ""
    out = [f"{head}{draws_txt}: {finding}."]
    prim = est[est["kind"] == kind]
    for _, row in prim.iterrows():
        ci_txt = (f"{pct} CI [{row['diff_lo']:+.1f}, {row['diff_hi']:+.1f}]"
                  if np.isfinite(row["diff_lo"]) else f"{pct} CI not estimable")
        includes = (np.isfinite(row["diff_lo"]) and row["diff_lo"] <= 0 <= row["diff_hi"])
        if abs(row["diff"]) < 0.05:
            how = "the two slopes are equal to one decimal"
        else:
            side = "less" if row["diff"] > 0 else "more"
            how = (f"{d} falls {side} steeply by {abs(row['diff']):.1f} points per unit of distance, "
                   f"{abs(row['diff']) * (row['distance_max'] - row['distance_min']):.1f} points over the "
                   f"observed range {row['distance_min']:.2f} to {row['distance_max']:.2f}")
        n_lang = int(row["n_languages"])
        sentence = (f"On {row['task']} with {kind} distance, the score changes by {row['slope_a']:.1f} points per "
                    f"unit of distance with {d} and by {row['slope_b']:.1f} with the mean of {r}: {how} ({ci_txt}"
                    f"{', which includes zero' if includes else ''}; the sign-flip p-value tests 'equal slopes "
                    f"over these {n_lang} languages, this set vs the mean of these draws': "
                    f"{_p_text('p', row['p_perm'])}, {_p_text('Holm-adjusted', row['p_holm'])}; floor "
                    f"2/2^{n_lang} = {2 / 2 ** n_lang:.2g}")
        if 2 / 2 ** n_lang * len(est) >= alpha:
            sentence += (f", {2 / 2 ** n_lang * len(est):.2g} with Holm over {len(est)} - it cannot reach "
                         f"{alpha}; that needs {languages_needed(alpha, len(est))} languages (more seeds do not help)")
        out.append(sentence + ").")
    out.append(f"Across all {len(est)} task x distance-kind tests, {len(sig)} are significant after Holm "
               f"correction at alpha = {alpha}" + (
                   f" ({n_pos} favouring {d}, {n_neg} favouring {r})." if len(sig) else "."))
    if not mixed.empty:
        mrow = mixed[(mixed["kind"] == kind) & (mixed["condition"] == f"{d} - {r}")]
        if not mrow.empty and np.isfinite(mrow["estimate"].iloc[0]):
            m = mrow.iloc[0]
            text = (f"The mixed-effects model pooling tasks ({kind}) puts this slope difference at "
                    f"{m['estimate']:+.1f} points per unit distance ({pct} CI [{m['ci_lo']:+.1f}, "
                    f"{m['ci_hi']:+.1f}], {_p_text('p', m['p'])}, not corrected for multiplicity"
                    f"{'; the fit did not converge' if not m['converged'] else ''})")
            widths = (prim["diff_hi"] - prim["diff_lo"]).to_numpy(dtype=float)
            widths = widths[np.isfinite(widths)]
            mwidth = float(m["ci_hi"] - m["ci_lo"])
            if widths.size and np.isfinite(mwidth) and mwidth > 2 * float(np.median(widths)):
                text += (f"; its CI is {mwidth / float(np.median(widths)):.1f} times as wide as the per-task ones, "
                         "so it adds no corroboration")
            out.append(text + ".")
    return " ".join(out)


# --------------------------------------------------------------------------- entry point


def validate_options(*, n_boot: Any = 2000, n_perm: Any = 10000, seed: Any = 0, alpha: Any = 0.05,
                     ci: Any = 0.95) -> list[str]:
    """Check every analysis option (the CLI and `analyze` both call this); return warnings as notes.

    Raises ConfigError, one line naming the option and the valid range.
    """
    def number(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ConfigError(f"{name}={value!r}: must be a number")
        return float(value)

    def integer(name: str, value: Any, least: int) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ConfigError(f"{name}={value!r}: must be an integer >= {least}")
        return int(value)

    for name, value in (("alpha", alpha), ("ci", ci)):
        v = number(name, value)
        if not (math.isfinite(v) and 0 < v < 1):
            raise ConfigError(f"{name}={value!r}: must be a finite number strictly between 0 and 1 "
                              f"(e.g. {'0.05' if name == 'alpha' else '0.95'})")
    integer("n_boot", n_boot, 1)
    integer("n_perm", n_perm, 1)
    integer("seed", seed, 0)
    notes = []
    if n_boot < 200:
        notes.append(f"n_boot={n_boot}: bootstrap CIs from under 200 samples are rough (default 2000)")
    if n_perm < math.ceil(1 / alpha):
        notes.append(f"n_perm={n_perm}: a Monte Carlo sign-flip p-value cannot go below 1/(n_perm+1) = "
                     f"{1 / (n_perm + 1):.3g}, above alpha = {alpha}; use --n-perm {math.ceil(20 / alpha)} or more")
    return notes


def power_table(scores: pd.DataFrame, distances: pd.DataFrame, kinds: Sequence[str], set_tests: pd.DataFrame,
                *, alpha: float) -> pd.DataFrame:
    """The floor of each test as this run ran it (and the MDE under the default noise levels)."""
    from stopover.analysis.power import Noise, plan_power

    kind = kinds[0]
    dk = distances[distances["kind"] == kind].set_index("language")["distance"]
    langs = sorted(set(scores["language"]) - {ENGLISH})
    x = [float(dk[lang]) for lang in langs if lang in dk.index and np.isfinite(dk[lang])]
    rnd = scores[scores["strategy"].map(is_random)]
    div_sets = scores.loc[scores["strategy"].map(is_diversity), "intermediate"].nunique()
    n_draws = int(rnd.groupby("task")["intermediate"].nunique().max()) if not rnd.empty else 0
    if not set_tests.empty and (set_tests["test"] == "draw-rank").any():
        n_draws = int(set_tests.loc[set_tests["test"] == "draw-rank", "n_draws"].max())
    rows = plan_power(x, n_seeds=max(1, scores["seed"].nunique()), n_draws=n_draws,
                      n_tasks=max(1, scores["task"].nunique()), n_kinds=len(kinds),
                      n_diversity_sets=max(1, div_sets), alpha=alpha, noise=Noise(), n_sim=2000)
    frame = pd.DataFrame([r.as_dict() for r in rows])
    frame.insert(1, "n_languages", len(x))
    return frame


def analyze(run_dir: str | Path, *, kinds: Sequence[str] | None = None, n_boot: int = 2000, seed: int = 0,
            n_perm: int = 10000, alpha: float = 0.05, ci: float = 0.95, split: str = "test",
            model: str | None = None, adjust: bool = True, min_coverage: float = MIN_COVERAGE) -> Analysis:
    """Compute every statistic of a run directory (see docs/analysis.md).

    `adjust`: adjust the set-level slopes for log pretraining size, tokenizer
    fertility and same-script-as-English (covariates.csv, fertility.csv) - the
    primary analysis does by default. `min_coverage`: distances resting on a
    smaller share of their kind's features are excluded (0 keeps all).
    """
    if not (isinstance(min_coverage, (int, float)) and 0 <= min_coverage <= 1):
        raise ConfigError(f"min_coverage={min_coverage!r}: must be a number in [0, 1]")
    run_dir = Path(run_dir)
    option_notes = validate_options(n_boot=n_boot, n_perm=n_perm, seed=seed, alpha=alpha, ci=ci)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: not a run directory")
    notes: list[str] = list(option_notes)
    ev = load_eval_frame(run_dir, split=split, model=model)
    scores = score_table(ev, notes)
    notes += ensure_run_tables(run_dir, sorted(scores["language"].unique()))
    distances = load_distances(run_dir, notes, min_coverage=min_coverage)
    covariates = load_covariates(run_dir)
    available = _kind_order(distances["kind"].unique())
    if kinds:
        unknown = [k for k in kinds if k not in available]
        if unknown:
            raise DataError(f"{run_dir / TYPOLOGY_FILE}: no distance kind(s) {', '.join(unknown)}; "
                            f"available: {', '.join(available)}")
        kinds = list(dict.fromkeys(kinds))
    else:
        kinds = available
    lacking = sorted(set(scores["language"]) - set(distances["language"]) - {ENGLISH})
    if lacking:
        notes.append(f"{TYPOLOGY_FILE} has no row for {', '.join(lacking)}: left out of the regressions")
    from stopover.analysis.sets import load_set_diversity, set_inference

    set_div = load_set_diversity(run_dir, scores["intermediate"].unique(), notes)
    set_units, set_tests, set_notes = set_inference(scores, distances, covariates, set_div, kinds, alpha=alpha,
                                                    ci=ci, adjust=adjust)
    notes += list(dict.fromkeys(set_notes))
    rob, draws, points, bands = robustness(scores, distances, kinds, n_boot=n_boot, seed=seed, ci=ci)
    comp = comparisons(scores, distances, kinds, n_boot=n_boot, n_perm=n_perm, seed=seed, ci=ci)
    mixed = mixed_models(scores, distances, covariates, kinds, ci=ci)
    tables = xtreme_tables(ev, scores, distances, rob, kinds)
    power = power_table(scores, distances, kinds, set_tests, alpha=alpha)
    summary = summarize(comp, rob, mixed, kinds, scores["condition"].unique(), alpha=alpha, ci=ci,
                        set_tests=set_tests, power=power)
    settings = {"n_boot": n_boot, "n_perm": n_perm, "seed": seed, "alpha": alpha, "ci": ci, "split": split,
                "model": model or (ev["model"].iloc[0] if len(ev) else ""), "kinds": list(kinds),
                "adjust": adjust, "min_coverage": min_coverage}
    return Analysis(run_dir=run_dir, scores=scores, robustness=rob, comparisons=comp, mixed=mixed,
                    tables=tables, summary=summary, draws=draws, points=points, bands=bands,
                    distances=distances, covariates=covariates, kinds=list(kinds), notes=notes,
                    settings=settings, set_units=set_units, set_tests=set_tests, power=power)


__all__ = ["Analysis", "analyze", "validate_options", "power_table", "line_stats", "sign_flip_pvalue", "draw_rank_pvalue", "robustness",
           "comparisons", "mixed_models", "xtreme_tables", "summarize"]
