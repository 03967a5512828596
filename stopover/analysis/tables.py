"""XTREME-style tables: per task x condition, the paper table, per-language and slope tables."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import cast

import numpy as np
import pandas as pd

from stopover.analysis.frame import (
    BASELINE,
    ENGLISH,
    QA_EM_NAMES,
    QA_F1_NAMES,
    condition_labels,
    is_random,
)


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
    if BASELINE in paper.columns and len(paper.columns) > 1:
        # the reference study's main table: each intermediate set's gain over no intermediate stage
        gain = paper.drop(columns=[BASELINE]).sub(paper[BASELINE], axis=0)
        tables["paper_gain"] = gain.round(2).reset_index()

    kind = kinds[0]
    dk = distances[distances["kind"] == kind].set_index("language")["distance"]
    lm = _language_means(scores, "score")
    for task, grp in lm.groupby("task", sort=True):
        wide = grp.pivot(index="condition", columns="language", values="score")
        cols = sorted(wide.columns, key=lambda c: (c != ENGLISH, dk.get(c, np.inf), c))
        wide = wide[cols]
        wide["avg"] = wide.mean(axis=1, skipna=False)
        wide.index.name = "condition"
        tables[f"languages_{slug(cast(str, task))}"] = wide.round(2).reset_index()  # group keys: task names

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
