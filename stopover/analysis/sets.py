"""Set-level inference: the intermediate set is the unit of the research question.

Every intermediate set a run trained (each random draw, each diversity-chosen
set) is one unit with its measured diversity and, per target task and
distance kind, its robustness slope: the OLS slope of a language's score
(mean over seeds) on its distance from English, optionally adjusted for
log pretraining size and same-script-as-English inside the set's regression.
Two primary tests use these units (docs/analysis.md):

(a) draw-rank: the diversity set's slope ranked among the random sets' slopes
    (two-sided, floor 2 / (draws + 1)); a random draw that *is* the diversity
    set (same intermediate name, hence the same stage) is named as a tie and
    not counted as a draw;
(b) dose-response: the OLS regression of set slope on set diversity across
    all sets (random and diversity-chosen), a t-test with (sets - 2) degrees of
    freedom. It is the "slopes as outcomes" estimator of a model that nests
    languages in sets (score ~ distance x diversity with a random distance
    slope per set): when every set is scored on the same languages, the GLS
    estimate of that model's cross-level term equals this OLS estimate, and
    the stage-2 residual variance holds both the between-set variance and
    the within-set sampling error.

Everything is vectorised over a leading replicate axis so that the planted-
effect tests can run hundreds of replicates in a second. Set diversity is
read from the run directory (`set_diversity.csv`, or `task_diversity.csv`
averaged over a set's tasks); see `load_set_diversity`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, cast

import numpy as np
import pandas as pd

from stopover.analysis.frame import ENGLISH, is_diversity, is_random
from stopover.errors import DataError

SET_DIVERSITY_FILE = "set_diversity.csv"
TASK_DIVERSITY_FILE = "task_diversity.csv"
MIN_SETS = 3
ADJUSTERS = ("log_pretrain_gib", "fertility", "same_script")  # in design-column order


# --------------------------------------------------------------------------- vectorised core


def set_slopes(Y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance coefficient and its OLS standard error for every set, at once.

    Y: (..., sets, languages) scores; X: (languages, p) design whose column 1
    is distance (column 0 the intercept, further columns adjusters). NaN-free:
    the caller keeps only languages every set scored. Returns (slope, se),
    each of shape (..., sets).
    """
    L, p = X.shape
    xtx_inv = np.linalg.inv(X.T @ X)
    coef = Y @ (X @ xtx_inv)  # (..., sets, p)
    res = Y - coef @ X.T
    dof = L - p
    s2 = (res * res).sum(-1) / dof if dof > 0 else np.full(res.shape[:-1], np.nan)
    return coef[..., 1], np.sqrt(s2 * xtx_inv[1, 1])


def dose_response(b: np.ndarray, d: np.ndarray, *, alpha: float = 0.05
                  ) -> dict[str, np.ndarray]:
    """OLS of set slope b on set diversity d along the last axis: beta, se, two-sided p, CI.

    b, d: (..., sets); d may broadcast. df = sets - 2.
    """
    from scipy.stats import t

    b = np.asarray(b, dtype=float)
    d = np.broadcast_to(np.asarray(d, dtype=float), b.shape)
    n = b.shape[-1]
    dc = d - d.mean(-1, keepdims=True)
    sxx = (dc * dc).sum(-1)
    bc = b - b.mean(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = (dc * bc).sum(-1) / sxx
        res = bc - beta[..., None] * dc
        se = np.sqrt((res * res).sum(-1) / (n - 2) / sxx) if n > 2 else np.full(beta.shape, np.nan)
        tval = beta / se
    p = 2 * t.sf(np.abs(tval), n - 2) if n > 2 else np.full(beta.shape, np.nan)
    half = t.ppf(1 - alpha / 2, n - 2) * se if n > 2 else np.full(beta.shape, np.nan)
    return {"beta": beta, "se": se, "t": tval, "p": p, "ci_lo": beta - half, "ci_hi": beta + half}


def rank_p(value: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Two-sided draw-rank p of value among draws (last axis): 2 min((1+#>=), (1+#<=)) / (N+1), capped at 1."""
    value = np.asarray(value, dtype=float)[..., None]
    n = draws.shape[-1]
    ge = (draws >= value).sum(-1)
    le = (draws <= value).sum(-1)
    return np.minimum(1.0, 2 * np.minimum(1 + ge, 1 + le) / (n + 1))


# --------------------------------------------------------------------------- run inputs


def set_tasks(intermediate: str) -> list[str]:
    """The tasks of an intermediate set's name ("mnli+qqp" -> [mnli, qqp]; "none" -> [])."""
    return [] if intermediate in ("", "none") else intermediate.split("+")


def write_task_diversity(run_dir: str | Path, composite: Mapping[str, float]) -> Path:
    """Write task_diversity.csv (task, diversity): each pool task's composite diversity score.

    The grid calls this once it has the pool's profiles; a set's diversity is
    then the mean over its tasks (what diversity-topk maximises).
    """
    from stopover.store import atomic_write_text

    path = Path(run_dir) / TASK_DIVERSITY_FILE
    frame = pd.DataFrame({"task": list(composite), "diversity": [float(v) for v in composite.values()]})
    atomic_write_text(path, frame.to_csv(index=False))
    return path


def load_set_diversity(run_dir: Path, intermediates: Iterable[str], notes: list[str]) -> dict[str, float]:
    """Intermediate -> measured diversity, from set_diversity.csv or task_diversity.csv (else empty).

    set_diversity.csv (intermediate, diversity) wins where present: it can hold a
    union-sample measure of the set. Otherwise task_diversity.csv (task,
    diversity) gives each set the mean of its tasks' scores.
    """
    names = [i for i in dict.fromkeys(intermediates) if set_tasks(i)]
    for fname, key in ((SET_DIVERSITY_FILE, "intermediate"), (TASK_DIVERSITY_FILE, "task")):
        path = run_dir / fname
        if not path.exists():
            continue
        try:
            frame = pd.read_csv(path, dtype={key: str})
        except Exception as err:
            raise DataError(f"{path}: unreadable CSV ({err}); expected columns {key},diversity") from err
        if key not in frame.columns or "diversity" not in frame.columns:
            raise DataError(f"{path}: needs columns {key},diversity")
        values = dict(zip(frame[key], pd.to_numeric(frame["diversity"], errors="coerce")))
        out: dict[str, float] = {}
        for name in names:
            if key == "intermediate":
                v = values.get(name, math.nan)
            else:
                parts = [values.get(t, math.nan) for t in set_tasks(name)]
                v = float(np.mean(parts)) if parts else math.nan
            if np.isfinite(v):
                out[name] = float(v)
        lacking = [n for n in names if n not in out]
        if lacking:
            notes.append(f"{fname}: no diversity for {len(lacking)} intermediate set(s) "
                         f"({', '.join(lacking[:5])}{' ...' if len(lacking) > 5 else ''}): "
                         "left out of the dose-response test")
        return out
    if names:
        notes.append(f"no {SET_DIVERSITY_FILE} or {TASK_DIVERSITY_FILE} in the run directory: the dose-response "
                     "test needs each set's measured diversity (stopover.analysis.sets.write_task_diversity)")
    return {}


@dataclass
class SetUnits:
    """The sets of one task x kind: slopes per set over a common language list."""

    task: str
    kind: str
    sets: list[str]
    strategies: list[list[str]]  # every strategy that produced each set (a tie when several)
    slope: np.ndarray
    se: np.ndarray
    n_seeds: np.ndarray
    languages: list[str]
    adjusted_for: list[str]
    Y: np.ndarray | None = None  # (sets, languages) seed-mean scores behind the slopes
    X: np.ndarray | None = None  # (languages, p) design: intercept, distance, adjusters


def adjusters(covariates: pd.DataFrame, languages: Sequence[str], notes: list[str], where: str
              ) -> tuple[list[str], np.ndarray]:
    """The adjuster columns usable for these languages, and the languages they leave in.

    A language lacking a covariate is dropped from the adjusted model (with a
    count in the notes); a covariate is dropped only if it is absent from the
    table or constant over the languages that remain.
    """
    if covariates.empty or "language" not in covariates.columns:
        notes.append(f"{where}: no covariates.csv: slopes are not adjusted for pretraining size or script")
        return [], np.ones(len(languages), dtype=bool)
    cov = covariates.set_index("language")
    cols: dict[str, pd.Series] = {}
    if "pretrain_gib" in cov.columns:
        gib = pd.to_numeric(cov["pretrain_gib"], errors="coerce")
        cols["log_pretrain_gib"] = np.log(gib.where(gib > 0))
    if "fertility" in cov.columns:
        cols["fertility"] = pd.to_numeric(cov["fertility"], errors="coerce")
    if "same_script" in cov.columns:
        cols["same_script"] = cov["same_script"].map(
            lambda v: {True: 1.0, False: 0.0, "True": 1.0, "False": 0.0}.get(v, math.nan)).astype(float)
    keep = np.ones(len(languages), dtype=bool)
    for name in list(cols):
        vals = np.array([cols[name].get(lang, math.nan) for lang in languages], dtype=float)
        if not np.isfinite(vals).any():
            # Known for no language (e.g. pretraining size of typology-lab languages): no term to fit.
            notes.append(f"{where}: {name} is missing for every language; not adjusted for")
            del cols[name]
            continue
        keep &= np.isfinite(vals)
    dropped = [lang for lang, k in zip(languages, keep) if not k]
    if dropped:
        notes.append(f"{where}: {len(dropped)} language(s) lack a covariate ({', '.join(dropped)}) and are left "
                     "out of the adjusted set slopes")
    used = []
    for name, series in cols.items():
        vals = np.array([series.get(lang, math.nan) for lang, k in zip(languages, keep) if k], dtype=float)
        if vals.size and np.ptp(vals) > 1e-12:
            used.append(name)
    return used, keep


def build_units(scores: pd.DataFrame, distances: pd.DataFrame, covariates: pd.DataFrame, task: str,
                kind: str, notes: list[str], *, adjust: bool = True) -> SetUnits | None:
    """Per-set slopes of one task x kind over the languages every set scored (None if under 3)."""
    sub = scores[(scores["task"] == task) & (scores["language"] != ENGLISH)
                 & scores["intermediate"].map(lambda i: bool(set_tasks(cast(str, i))))]  # set names, never NA
    dk = distances[distances["kind"] == kind].set_index("language")["distance"]
    sub = sub[sub["language"].isin(dk.index[np.isfinite(dk.to_numpy())])]
    if sub.empty:
        return None
    # One unit per intermediate set: the same set reached by two strategies is one stage.
    by_set = sub.groupby(["intermediate", "language"])["score"].mean().unstack("language")
    strategies = sub.groupby("intermediate")["strategy"].agg(lambda s: sorted(set(s)))
    n_seeds = sub.groupby("intermediate")["seed"].nunique()
    common = [lang for lang in by_set.columns if by_set[lang].notna().all()]
    lost = len(by_set.columns) - len(common)
    if lost:
        notes.append(f"set slopes ({task}, {kind}): {lost} language(s) not scored for every set are left out")
    where = f"set slopes ({task}, {kind})"
    used: list[str] = []
    if adjust:
        used, keep = adjusters(covariates, common, notes, where)
        common = [lang for lang, k in zip(common, keep) if k]
    if len(common) < 3 + len(used):
        return None
    x = dk.reindex(common).to_numpy(dtype=float)
    cols = [np.ones(len(common)), x]
    if used:
        cov = covariates.set_index("language")
        if "log_pretrain_gib" in used:
            cols.append(np.log(pd.to_numeric(cov["pretrain_gib"], errors="coerce").reindex(common).to_numpy()))
        if "fertility" in used:
            cols.append(pd.to_numeric(cov["fertility"], errors="coerce").reindex(common).to_numpy(dtype=float))
        if "same_script" in used:
            cols.append(cov["same_script"].reindex(common).map(
                lambda v: 1.0 if v in (True, "True") else 0.0).to_numpy(dtype=float))
    X = np.column_stack(cols)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        notes.append(f"{where}: distance is collinear with the adjusters; unadjusted slopes used")
        X, used = X[:, :2], []
    Y = by_set[common].to_numpy(dtype=float)
    slope, se = set_slopes(Y, X)
    names = list(by_set.index)
    return SetUnits(task, kind, names, [strategies[n] for n in names], slope, se,
                    n_seeds.reindex(names).to_numpy(), common, used, Y, X)


def set_mixed_model(u: SetUnits, diversity: np.ndarray, *, ci: float = 0.95) -> dict[str, Any]:
    """The dose-response as one model with languages nested in sets (statsmodels MixedLM, REML).

    score ~ distance * diversity [+ adjusters], a random intercept and a random
    distance slope per set; the distance:diversity coefficient is the
    dose-response beta. With every set scored on the same languages and no
    adjusters it matches the two-stage estimate; with adjusters it shares their
    coefficients across sets (the two-stage fit has one per set), so the two
    differ a little. Its p is a Wald z (no small-sample correction): it is
    reported beside the two-stage test, not as extra evidence. Returns
    estimate, se, ci_lo, ci_hi, p and a note.
    """
    import statsmodels.formula.api as smf

    if u.Y is None or u.X is None:
        return {"note": "not estimable: no scores kept"}
    ok = np.isfinite(diversity)
    if ok.sum() < MIN_SETS:
        return {"note": f"not estimable: {int(ok.sum())} set(s) with a diversity"}
    Y, d = u.Y[ok], diversity[ok] - diversity[ok].mean()
    n_sets, n_lang = Y.shape
    frame = pd.DataFrame({"score": Y.ravel(), "set": np.repeat(np.arange(n_sets), n_lang),
                          "diversity": np.repeat(d, n_lang), "distance": np.tile(u.X[:, 1], n_sets)})
    extra = []
    for j, name in enumerate(u.adjusted_for):
        frame[name] = np.tile(u.X[:, 2 + j], n_sets)
        extra.append(name)
    formula = "score ~ distance * diversity" + "".join(f" + {e}" for e in extra)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        try:
            fit = smf.mixedlm(formula, frame, groups="set", re_formula="~distance").fit(reml=True, method="lbfgs")
        except Exception as err:  # singular design or optimiser failure: reported in the row
            return {"note": f"not estimable: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
    term = "distance:diversity"
    lo, hi = fit.conf_int(alpha=1 - ci).loc[term]
    caught = "; ".join(dict.fromkeys(str(w.message).splitlines()[0] for w in rec
                                     if not issubclass(w.category, DeprecationWarning)))
    note = (f"{formula}; random intercept and distance slope per set (languages nested in sets), REML"
            + ("" if fit.converged else "; did not converge") + (f"; {caught}" if caught else ""))
    return {"estimate": float(fit.fe_params[term]), "se": float(fit.bse_fe[term]), "ci_lo": float(lo),
            "ci_hi": float(hi), "p": float(fit.pvalues[term]), "note": note}


def set_inference(scores: pd.DataFrame, distances: pd.DataFrame, covariates: pd.DataFrame,
                  set_diversity: Mapping[str, float], kinds: Sequence[str], *, alpha: float = 0.05,
                  ci: float = 0.95, adjust: bool = True, mixed: bool = True
                  ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(units, tests, notes): one row per set x task x kind, and the primary tests per task x kind.

    tests columns: test ("draw-rank" | "dose-response"), task, kind, set (the
    diversity set for draw-rank), estimate (draw-rank: the set's slope;
    dose-response: beta, change in distance slope per unit diversity), se,
    ci_lo, ci_hi, p, p_holm (Holm within each test across tasks and sets, per
    kind), n_sets, n_draws, floor, ties, adjusted_for, note.
    """
    from statsmodels.stats.multitest import multipletests

    notes: list[str] = []
    unit_rows: list[dict[str, Any]] = []
    test_rows: list[dict[str, Any]] = []
    mixed_rows: list[dict[str, Any]] = []
    for kind in kinds:
        for task in sorted(scores["task"].unique()):
            u = build_units(scores, distances, covariates, task, kind, notes, adjust=adjust)
            if u is None:
                continue
            div = np.array([set_diversity.get(s, math.nan) for s in u.sets])
            is_rand = np.array([any(is_random(st) for st in sts) for sts in u.strategies])
            is_div = np.array([any(is_diversity(st) for st in sts) for sts in u.strategies])
            for i, name in enumerate(u.sets):
                unit_rows.append(dict(set=name, strategies="+".join(u.strategies[i]), task=task, kind=kind,
                                      slope=u.slope[i], se=u.se[i], diversity=div[i], n_seeds=int(u.n_seeds[i]),
                                      n_languages=len(u.languages), adjusted_for=",".join(u.adjusted_for)))
            base = dict(task=task, kind=kind, adjusted_for=",".join(u.adjusted_for) or "none",
                        n_languages=len(u.languages))
            # (a) draw-rank: each diversity set among the random sets that are not it.
            for i in np.flatnonzero(is_div):
                pool = [j for j in np.flatnonzero(is_rand) if j != i]
                n = len(pool)
                tie = (f"{u.sets[i]} was chosen by {' and '.join(u.strategies[i])}: one stage, counted once "
                       "and not as a random draw" if is_rand[i] else "")
                row = dict(base, test="draw-rank", set=u.sets[i], estimate=u.slope[i], se=u.se[i],
                           n_sets=n + 1, n_draws=n, floor=min(1.0, 2 / (n + 1)), ties=tie)
                if n == 0:
                    test_rows.append(dict(row, p=math.nan, note="no random draws to rank against"))
                    continue
                draws = u.slope[pool]
                lo, hi = np.percentile(draws, [(1 - ci) / 2 * 100, (1 + ci) / 2 * 100])
                test_rows.append(dict(row, p=float(rank_p(u.slope[i], draws)), ci_lo=float(lo), ci_hi=float(hi),
                                      share_below=float(np.mean(draws < u.slope[i])),
                                      note=f"ci_lo/ci_hi: {ci * 100:g}% quantiles of the draws' slopes"))
            # (b) dose-response over every set with a measured diversity.
            ok = np.isfinite(div) & (is_rand | is_div)
            row = dict(base, test="dose-response", set="(all sets)", n_sets=int(ok.sum()),
                       n_draws=int((ok & is_rand & ~is_div).sum()), floor=0.0, ties="")
            if ok.sum() < MIN_SETS or np.ptp(div[ok]) <= 1e-12:
                why = (f"{int(ok.sum())} set(s) with a measured diversity; need {MIN_SETS}" if ok.sum() < MIN_SETS
                       else "every set has the same diversity")
                test_rows.append(dict(row, p=math.nan, note=f"not estimable: {why}"))
                continue
            res = dose_response(u.slope[ok], div[ok], alpha=1 - ci)
            test_rows.append(dict(row, estimate=float(res["beta"]), se=float(res["se"]),
                                  ci_lo=float(res["ci_lo"]), ci_hi=float(res["ci_hi"]), p=float(res["p"]),
                                  note="beta > 0: more diverse sets fall less steeply with distance"))
            if mixed:
                # Only the sets the two-stage test used (random and diversity-chosen, with a diversity).
                mm = set_mixed_model(u, np.where(ok, div, np.nan), ci=ci)
                mixed_rows.append(dict(row, test="dose-response (mixed model)", p_holm=math.nan, **mm))
    cols = ["test", "task", "kind", "set", "estimate", "se", "ci_lo", "ci_hi", "p", "p_holm", "n_sets",
            "n_draws", "n_languages", "floor", "share_below", "ties", "adjusted_for", "note"]
    tests = pd.DataFrame(test_rows).reindex(columns=cols)
    if not tests.empty:
        for _, grp in tests.groupby(["test", "kind"]):
            ps = grp["p"].astype(float)
            ok = ps.notna()
            if ok.any():
                tests.loc[ps[ok].index, "p_holm"] = multipletests(ps[ok].to_numpy(), method="holm")[1]
    if mixed_rows:
        # The mixed model answers the same question as the dose-response: shown beside it, outside
        # the Holm families and the verdict.
        tests = pd.concat([tests, pd.DataFrame(mixed_rows).reindex(columns=cols)], ignore_index=True)
    units = pd.DataFrame(unit_rows)
    return units, tests, notes


__all__ = ["SET_DIVERSITY_FILE", "TASK_DIVERSITY_FILE", "set_slopes", "dose_response", "rank_p", "set_tasks",
           "write_task_diversity", "load_set_diversity", "build_units", "set_inference", "SetUnits"]
