"""The plain-words answer to the research question, built only from the computed numbers.

The verdict about the strategy rests on the set-level tests (stopover.analysis.sets);
the comparison of one set with the mean of the draws is worded as secondary.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from stopover.analysis.frame import (
    BASELINE,
    MIN_LANGUAGES,
    is_diversity,
    is_random,
    strategy_of,
)


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
        adj = ("slopes adjusted for " + r["adjusted_for"].replace(",", " and ")
               .replace("log_pretrain_gib", "log pretraining size").replace("same_script", "same script as English")
               .replace("fertility", "tokenizer fertility")
               if r["adjusted_for"] not in ("", "none") else "slopes not adjusted")
        if r["test"] == "dose-response (mixed model)":
            if pd.notna(r["estimate"]):
                out.append(f"The same dose-response as one mixed model with languages nested in sets (random "
                           f"intercept and distance slope per set): {_signed(r['estimate'])} ({pct} CI "
                           f"[{_signed(r['ci_lo'])}, {_signed(r['ci_hi'])}], Wald) - the same question, shown "
                           "beside the test above, not as further evidence.")
            continue
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
              conditions: Iterable[str], alpha: float = 0.05, ci: float = 0.95,
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
    div = [c for c in conds if is_diversity(strategy_of(c))]
    rnd = [c for c in conds if is_random(strategy_of(c))]
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
