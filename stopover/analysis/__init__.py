"""Robustness statistics: how a language's zero-shot score depends on its distance from English.

This package owns every number in a run's report. It reads only the run
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

Modules: `frame` (inputs), `cells` (statistical building blocks),
`robustness`, `comparisons` (secondary tests), `sets` (primary set-level
tests), `mixed`, `power` (floors and MDE), `tables`, `summary`; this module
holds the `Analysis` result, option validation and `analyze`, and re-exports
the public names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stopover.analysis.cells import line_stats
from stopover.analysis.comparisons import (
    comparison_pairs,
    comparisons,
    draw_rank_pvalue,
    sign_flip_pvalue,
)
from stopover.analysis.frame import (
    BASELINE,
    CONFIG_FILE,
    ENGLISH,
    MIN_COVERAGE,
    TYPOLOGY_FILE,
    condition_labels,
    ensure_run_tables,
    is_diversity,
    is_random,
    kind_order,
    load_covariates,
    load_distances,
    load_eval_frame,
    normalise_languages,
    score_table,
)
from stopover.analysis.mixed import mixed_models
from stopover.analysis.robustness import robustness
from stopover.analysis.summary import summarize
from stopover.analysis.tables import slug, task_scores, xtreme_tables
from stopover.errors import ConfigError, DataError


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
    available = kind_order(distances["kind"].unique())
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


__all__ = ["BASELINE", "CONFIG_FILE", "ENGLISH", "Analysis", "analyze", "comparison_pairs", "comparisons",
           "condition_labels", "draw_rank_pvalue", "ensure_run_tables", "is_diversity", "is_random", "line_stats",
           "load_covariates", "load_distances", "load_eval_frame", "mixed_models", "normalise_languages",
           "power_table", "robustness", "score_table", "sign_flip_pvalue", "slug", "summarize", "task_scores",
           "validate_options", "xtreme_tables"]
