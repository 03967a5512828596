"""The crossed mixed-effects model per distance kind (statsmodels MixedLM, REML)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from stopover.analysis.comparisons import comparison_pairs
from stopover.analysis.frame import (
    BASELINE,
    ENGLISH,
    MIN_LANGUAGES,
    first_line,
    is_diversity,
    is_random,
    strategy_of,
)


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
    rnd = [c for c in conditions if is_random(strategy_of(c))]
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
                errors.append(f"{method}: {type(err).__name__}: {first_line(err)}")
                attempt = None
        if attempt is None:
            continue
        # Keep the latest fit that ran; a converged one ends the search.
        result = attempt
        caught = [f"{method}: {first_line(w.message)}" for w in rec
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
    caught += [first_line(w.message) for w in rec if not issubclass(w.category, DeprecationWarning)]
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
        if not (is_diversity(strategy_of(da)) and is_random(strategy_of(rb))):
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
            rows.append(dict(label, status=f"not estimable: {type(err).__name__}: {first_line(err)}"))
    return rows


def _pretty_term(term: str) -> str:
    return re.sub(r"C\(condition, Treatment\(reference=[^)]*\)\)\[T\.(.+?)\]", r"[\1]", term)
