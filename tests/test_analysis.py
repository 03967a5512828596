"""Tests for stopover.analysis on synthetic runs with planted effects.

`make_run` writes a run directory (results.jsonl, typology.csv,
covariates.csv) where a language's score falls linearly with its syntactic
distance from English, with a slope chosen per strategy, plus Gaussian noise;
tests/test_report.py imports it too.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from stopover import analysis as an
from stopover.errors import DataError
from stopover.store import ResultRow, append_results

LANGS = ["deu", "fra", "spa", "rus", "zho", "jpn", "ara", "hin", "tur", "swh", "fin", "kor"]
N_BOOT = 150


def make_run(root: Path, *, div_slope: float = -10.0, rand_slope: float = -30.0, base_slope: float = -35.0,
             seeds: tuple[int, ...] = (0, 1, 2), n_draws: int = 5, tasks: tuple[str, ...] = ("xnli", "pawsx"),
             noise: float = 2.0, data_seed: int = 0, langs: list[str] | None = None,
             pretrain: list[float] | None = None, extra_rows: list[ResultRow] | None = None,
             english: bool = True, qa_task: str | None = None) -> Path:
    """A synthetic run: score = 80 + offset + slope * syntactic distance + N(0, noise)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(data_seed)
    langs = LANGS if langs is None else langs
    dist = dict(zip(langs, np.linspace(0.1, 0.8, len(langs))))
    rows: list[ResultRow] = []

    def add(strategy: str, inter: str, task: str, seed: int, slope: float, offset: float) -> None:
        def row(lang: str, value: float, metric: str = "accuracy", primary: bool = True) -> ResultRow:
            return ResultRow(run="syn", stage="eval", stage_hash="h", task=task, language=lang, split="test",
                             metric=metric, value=float(value), seed=seed, strategy=strategy,
                             intermediate=inter, primary=primary, target=task, model="tiny")
        values = {"eng": 85 + offset + rng.normal(0, noise)} if english else {}
        values.update({lang: 80 + offset + slope * dist[lang] + rng.normal(0, noise) for lang in langs})
        for lang, v in values.items():
            if task == qa_task:
                rows.append(row(lang, v, "f1"))
                rows.append(row(lang, v - 10, "em", primary=False))
            else:
                rows.append(row(lang, v))

    for ti, task in enumerate(tasks):
        offset = -5.0 * ti
        for s in seeds:
            add("none", "none", task, s, base_slope, offset - 2)
            add("diversity-topk", "mnli+qqp", task, s, div_slope, offset)
            for k in range(n_draws):
                # Single draws differ a little in slope, as different task sets would.
                add("random-k", f"t{k}a+t{k}b", task, s, rand_slope + rng.normal(0, 1), offset)
    append_results(root, rows + list(extra_rows or []))
    typ = []
    for lang in langs:
        typ.append((lang, "syntactic", dist[lang], "urielplus"))
        typ.append((lang, "genetic", float(np.clip(dist[lang] + rng.normal(0, 0.05), 0, 1)), "urielplus"))
    pd.DataFrame(typ, columns=["language", "kind", "distance", "backend"]).to_csv(root / "typology.csv",
                                                                                   index=False)
    gib = pretrain if pretrain is not None else list(np.exp(rng.normal(2, 1, len(langs))))
    pd.DataFrame({"language": langs, "name": langs, "family": "x", "script": "Latn", "same_script": True,
                  "pretrain_gib": gib, "resource_level": "high"}).to_csv(root / "covariates.csv", index=False)
    return root


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> an.Analysis:
    run = make_run(tmp_path_factory.mktemp("planted"))
    return an.analyze(run, n_boot=N_BOOT, seed=1)


@pytest.fixture(scope="module")
def null(tmp_path_factory: pytest.TempPathFactory) -> an.Analysis:
    run = make_run(tmp_path_factory.mktemp("null"), div_slope=-30.0, data_seed=4)
    return an.analyze(run, n_boot=N_BOOT, seed=1)


def _rob(a: an.Analysis, condition: str, task: str, kind: str = "syntactic", measure: str = "score") -> pd.Series:
    r = a.robustness
    sel = r[(r.condition == condition) & (r.task == task) & (r.kind == kind) & (r.measure == measure)]
    assert len(sel) == 1
    return sel.iloc[0]


# --------------------------------------------------------------------------- planted effects


@pytest.mark.parametrize("task", ["xnli", "pawsx"])
@pytest.mark.parametrize("condition,slope", [("diversity-topk", -10.0), ("random-k", -30.0), ("none", -35.0)])
def test_planted_slopes_lie_in_their_confidence_intervals(planted: an.Analysis, task: str, condition: str,
                                                          slope: float) -> None:
    row = _rob(planted, condition, task)
    assert row.estimable and row.n_languages == 12
    assert row.slope_lo <= slope <= row.slope_hi
    assert row.slope_lo < row.slope < row.slope_hi
    assert row.pearson_r < -0.5 and row.spearman_rho < -0.5
    gap = _rob(planted, condition, task, measure="gap")
    assert gap.slope_lo <= -slope <= gap.slope_hi


def test_random_condition_reports_its_draw_distribution(planted: an.Analysis) -> None:
    row = _rob(planted, "random-k", "xnli")
    assert row.n_draws == 5 and row.intermediate == "(5 draws)"
    draws = planted.draws
    d = draws[(draws.condition == "random-k") & (draws.task == "xnli") & (draws.kind == "syntactic")
              & (draws.measure == "score")]
    assert len(d) == 5
    assert row.draw_slope_mean == pytest.approx(d.slope.mean())
    assert row.draw_slope_lo <= row.draw_slope_mean <= row.draw_slope_hi
    assert ((d.slope > -36) & (d.slope < -24)).all()
    assert np.isnan(_rob(planted, "diversity-topk", "xnli").draw_slope_mean)


def test_point_estimates_equal_scipy_on_language_means(planted: an.Analysis) -> None:
    # Recompute independently from the raw file: mean over seeds per draw, then over draws.
    raw = pd.DataFrame([json.loads(line) for line in
                        (planted.run_dir / "results.jsonl").read_text().splitlines() if line])
    typ = pd.read_csv(planted.run_dir / "typology.csv")
    for condition, task, kind in [("random-k", "pawsx", "genetic"), ("diversity-topk", "xnli", "syntactic")]:
        sub = raw[(raw.strategy == condition) & (raw.task == task)]
        en = sub[sub.language == "eng"].set_index(["seed", "intermediate"])["value"]
        sub = sub[sub.language != "eng"].assign(
            gap=lambda d: en.loc[list(zip(d.seed, d.intermediate))].to_numpy() - d.value)
        means = sub.groupby(["language", "intermediate"])[["value", "gap"]].mean().groupby("language").mean()
        x = typ[typ.kind == kind].set_index("language").loc[means.index, "distance"].to_numpy()
        for measure, col in (("score", "value"), ("gap", "gap")):
            y = means[col].to_numpy()
            lr = stats.linregress(x, y)
            row = _rob(planted, condition, task, kind, measure)
            assert row.slope == pytest.approx(lr.slope, rel=1e-9)
            assert row.intercept == pytest.approx(lr.intercept, rel=1e-9)
            assert row.pearson_r == pytest.approx(stats.pearsonr(x, y)[0], rel=1e-9)
            assert row.spearman_rho == pytest.approx(stats.spearmanr(x, y)[0], rel=1e-9)


def test_line_stats_handles_missing_and_ties_like_scipy() -> None:
    x = np.array([0.1, 0.2, 0.2, 0.5, 0.7, 0.9])
    y = np.array([3.0, np.nan, 1.0, 1.0, -2.0, -4.0])
    st = an.line_stats(x[None], y[None])
    ok = ~np.isnan(y)
    assert st["slope"][0] == pytest.approx(stats.linregress(x[ok], y[ok]).slope)
    assert st["rho"][0] == pytest.approx(stats.spearmanr(x[ok], y[ok])[0])
    assert st["n"][0] == 5
    flat = an.line_stats(np.array([[0.3, 0.3, 0.3]]), np.array([[1.0, 2.0, 3.0]]))
    assert np.isnan(flat["slope"][0]) and np.isnan(flat["r"][0])


def test_diversity_vs_random_detects_the_planted_difference(planted: an.Analysis) -> None:
    comp = planted.comparisons
    dv = comp[comp.comparison == "diversity-vs-random"]
    assert len(dv) == 4  # 2 tasks x 2 kinds
    for _, row in dv.iterrows():
        assert row["diff"] == pytest.approx(row.slope_a - row.slope_b)
        assert row.diff_lo <= 20.0 <= row.diff_hi and row.diff_lo > 0
        assert row.p_perm < 0.01 and row.p_holm < 0.05
        assert row.perm_method == "exact (4096 sign flips)"
        assert row.share_draws_steeper == 1.0
        assert row.p_draws == pytest.approx(2 / 6)  # top of 5 draws: the smallest two-sided rank p
    assert set(comp[comp.comparison == "vs-baseline"].condition_a) == {"diversity-topk", "random-k"}


def test_holm_is_applied_within_each_pair_across_tasks_and_kinds(planted: an.Analysis) -> None:
    comp = planted.comparisons
    for _, grp in comp.groupby(["condition_a", "condition_b"]):
        expected = multipletests(grp.p_perm.to_numpy(), method="holm")[1]
        np.testing.assert_allclose(grp.p_holm.to_numpy(), expected)


def test_null_table_gives_no_significant_difference(null: an.Analysis) -> None:
    dv = null.comparisons[null.comparisons.comparison == "diversity-vs-random"]
    assert len(dv) == 4
    assert (dv.p_perm > 0.05).all()
    assert (dv.diff_lo < 0).all() and (dv.diff_hi > 0).all()
    assert "Answer (primary, set-level; syntactic distance): inconclusive" in null.summary
    assert "no difference between diversity-topk's set and the mean of these draws" in null.summary
    assert "more robust to distance than" not in null.summary


def test_summary_states_the_planted_direction(planted: an.Analysis) -> None:
    s = planted.summary
    assert s.startswith("Does choosing intermediate tasks by linguistic diversity")
    # One diversity set against 5 draws: the set-level draw-rank test cannot go below 2/6, so the
    # strategy verdict stays open while the secondary comparison names this set and these draws.
    assert "Answer (primary, set-level; syntactic distance): inconclusive" in s
    assert "cannot reach p < 0.05: that needs at least 40 draws, and 80 with Holm over 2 tests" in s
    assert "Secondary (diversity-topk's set vs the mean of random-k's draws" in s
    assert "diversity-topk's set is more robust to distance than the mean of these draws" in s
    assert "diversity-topk falls less steeply" in s
    assert "Holm-adjusted" in s and "95% CI" in s and "floor 2/2^12" in s
    assert "yes:" not in s


def test_mixed_model_interaction_has_the_planted_sign(planted: an.Analysis) -> None:
    m = planted.mixed[planted.mixed.kind == "syntactic"].set_index("term")
    assert (m.status == "ok").all()
    assert m.loc["distance", "estimate"] == pytest.approx(-35, abs=5)  # baseline "none" is the reference
    assert m.loc["distance:[diversity-topk]", "estimate"] > 15
    contrast = m.loc["distance:diversity-topk - distance:random-k"]
    assert contrast.ci_lo <= 20 <= contrast.ci_hi and contrast.ci_lo > 0
    assert "log_pretrain_gib" in m.index
    assert "0 + C(language)" in m.formula.iloc[0] and "0 + C(task)" in m.formula.iloc[0]


def test_xtreme_tables(planted: an.Analysis) -> None:
    tasks = planted.tables["tasks"].set_index("condition")
    assert list(tasks.columns) == ["pawsx (accuracy)", "xnli (accuracy)", "avg"]
    sc = planted.scores
    xnli_div = (sc[(sc.condition == "diversity-topk") & (sc.task == "xnli")]
                .groupby("language").score.mean().mean())
    assert tasks.loc["diversity-topk", "xnli (accuracy)"] == pytest.approx(xnli_div, abs=0.006)
    assert tasks.loc["none", "avg"] == pytest.approx(tasks.loc["none"].iloc[:2].mean(), abs=0.01)
    paper = planted.tables["paper"].set_index("task")
    assert list(paper.columns) == ["none", "mnli+qqp", "random-k (mean of draws)"]
    assert list(paper.index) == ["pawsx", "xnli", "avg"]
    assert paper.loc["xnli", "mnli+qqp"] == tasks.loc["diversity-topk", "xnli (accuracy)"]
    gain = planted.tables["paper_gain"].set_index("task")
    assert list(gain.columns) == ["mnli+qqp", "random-k (mean of draws)"]
    assert gain.loc["xnli", "mnli+qqp"] == pytest.approx(paper.loc["xnli", "mnli+qqp"] - paper.loc["xnli", "none"],
                                                         abs=0.011)
    lang = planted.tables["languages_xnli"]
    assert list(lang.columns[:3]) == ["condition", "eng", "deu"]  # English, then nearest first
    assert "slopes_syntactic" in planted.tables


def test_scores_hold_gap_and_relative(planted: an.Analysis) -> None:
    sc = planted.scores
    row = sc[(sc.language == "jpn") & (sc.condition == "none") & (sc.task == "xnli") & (sc.seed == 1)].iloc[0]
    assert row.gap == pytest.approx(row.en_score - row.score)
    assert row.relative == pytest.approx(100 * row.score / row.en_score)
    assert set(sc.columns) >= {"condition", "strategy", "intermediate", "task", "seed", "language", "score",
                               "en_score", "gap", "relative"}


# --------------------------------------------------------------------------- statistics in isolation


def test_sign_flip_exact_p_value_on_a_perfect_line() -> None:
    x = np.array([0.1, 0.3, 0.4, 0.6, 0.9])
    # diff grows exactly with x: only the identity and the full flip reach |T| -> p = 2 / 2^5.
    p, method = an.sign_flip_pvalue(3.0 + 10 * x, x, 10000, np.random.default_rng(0))
    assert p == pytest.approx(2 / 32) and method.startswith("exact")
    p0, _ = an.sign_flip_pvalue(np.full(5, 3.0), x, 10000, np.random.default_rng(0))
    assert p0 == 1.0
    pm, mc = an.sign_flip_pvalue(3.0 + 10 * x, x, 8, np.random.default_rng(0))
    assert mc.startswith("Monte Carlo") and 1 / 9 <= pm <= 1


def test_draw_rank_pvalue() -> None:
    draws = np.array([-30.0, -29.0, -31.0, -28.0, -32.0, -27.0, -33.0, -26.0, -34.0])
    share, p = an.draw_rank_pvalue(-10.0, draws)
    assert share == 1.0 and p == pytest.approx(2 / 10)
    share, p = an.draw_rank_pvalue(-30.0, draws)
    assert share == pytest.approx(4 / 9) and p == 1.0


# --------------------------------------------------------------------------- shapes of runs


def test_single_strategy_with_several_sets_becomes_one_condition_each(tmp_path: Path) -> None:
    extra = [ResultRow(run="syn", stage="eval", stage_hash="h", task="xnli", language=lang, split="test",
                       metric="accuracy", value=70.0 - i - 3 * j, seed=0, strategy="single", intermediate=inter,
                       target="xnli", model="tiny")
             for j, inter in enumerate(["mnli", "qqp"]) for i, lang in enumerate(["eng"] + LANGS)]
    run = make_run(tmp_path, tasks=("xnli",), seeds=(0,), n_draws=2, extra_rows=extra)
    a = an.analyze(run, n_boot=20, kinds=["syntactic"])
    conds = set(a.robustness.condition)
    assert {"single:mnli", "single:qqp", "random-k", "none", "diversity-topk"} <= conds
    assert "mnli" in a.tables["paper"].columns and "qqp" in a.tables["paper"].columns
    m = a.mixed
    assert "task intercept dropped: one task" in m.warnings.iloc[0]


def test_qa_task_aggregates_em_and_f1(tmp_path: Path) -> None:
    run = make_run(tmp_path, tasks=("xnli", "mlqa"), seeds=(0,), n_draws=2, qa_task="mlqa")
    a = an.analyze(run, n_boot=20, kinds=["syntactic"])
    tasks = a.tables["tasks"].set_index("condition")
    assert "mlqa ((EM+F1)/2)" in tasks.columns
    f1 = a.scores[(a.scores.task == "mlqa") & (a.scores.condition == "none")].score.mean()
    assert tasks.loc["none", "mlqa ((EM+F1)/2)"] == pytest.approx(f1 - 5, abs=0.01)  # EM = F1 - 10
    assert set(a.scores[a.scores.task == "mlqa"].metric) == {"f1"}


def test_too_few_languages_gives_not_estimable_entries(tmp_path: Path) -> None:
    run = make_run(tmp_path, langs=["deu", "jpn"], seeds=(0,), n_draws=2)
    a = an.analyze(run, n_boot=20)
    assert not a.robustness.estimable.any()
    assert a.robustness.note.str.startswith("not estimable: 2 language(s)").all()
    assert not a.comparisons.estimable.any()
    assert a.mixed.status.str.startswith("not estimable").all()
    assert "not estimable" in a.summary


def test_constant_or_missing_covariate_is_dropped_and_said(tmp_path: Path) -> None:
    run = make_run(tmp_path, seeds=(0,), n_draws=2, pretrain=[5.0] * 12)
    a = an.analyze(run, n_boot=20, kinds=["syntactic"])
    assert "log_pretrain_gib" not in set(a.mixed.term)
    assert "log(pretrain_gib) dropped: constant across languages" in a.mixed.warnings.iloc[0]
    run2 = make_run(tmp_path / "nan", seeds=(0,), n_draws=2, pretrain=[float("nan")] * 12)
    a2 = an.analyze(run2, n_boot=20, kinds=["syntactic"])
    assert "missing for every language" in a2.mixed.warnings.iloc[0]
    assert (a2.mixed.status == "ok").all()
    # Missing for some languages: those languages leave the model, the term stays, with a count.
    run3 = make_run(tmp_path / "some", seeds=(0,), n_draws=2, pretrain=[float("nan"), 0.0] + [3.0 + i for i in range(10)])
    a3 = an.analyze(run3, n_boot=20, kinds=["syntactic"])
    assert "log_pretrain_gib" in set(a3.mixed.term)
    assert "2 language(s) without a positive pretraining size (deu, fra) left out" in a3.mixed.warnings.iloc[0]
    assert (a3.mixed.n_languages == 10).all()


def test_mixed_model_failure_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    import statsmodels.formula.api as smf

    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(smf, "mixedlm", broken)
    data = pd.DataFrame({"condition": ["none", "random-k"] * 6, "task": "xnli", "language": LANGS,
                         "score": np.arange(12.0), "distance": np.linspace(0.1, 0.8, 12), "pretrain_gib": 1.0})
    from stopover.analysis.mixed import _mixed_one

    rows = _mixed_one(data, "syntactic", 0.95)
    assert len(rows) == 1 and rows[0]["status"].startswith("not estimable: lbfgs: LinAlgError: Singular matrix")


# --------------------------------------------------------------------------- bad input


def test_missing_results_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no results file"):
        an.analyze(tmp_path)


def test_no_eval_rows_is_a_data_error(tmp_path: Path) -> None:
    append_results(tmp_path, [ResultRow(run="r", stage="target", stage_hash="h", task="xnli", language="eng",
                                        split="dev", metric="accuracy", value=80.0, seed=0, strategy="none",
                                        intermediate="none")])
    with pytest.raises(DataError, match="no eval rows"):
        an.analyze(tmp_path)


def test_a_run_without_english_rows_is_analysed_by_score_without_gaps(tmp_path: Path) -> None:
    """A retrieval-only run (Tatoeba and BUCC score xx -> English) has no English score: the
    score-vs-distance analysis stands, the gap (which needs English) is not estimable, said so."""
    run = make_run(tmp_path, english=False, seeds=(0,), n_draws=3)
    a = an.analyze(run, n_boot=20, n_perm=50)
    score = a.robustness[(a.robustness["measure"] == "score") & (a.robustness["kind"] == "syntactic")]
    gap = a.robustness[a.robustness["measure"] == "gap"]
    assert score["estimable"].astype(bool).all() and np.isfinite(score["slope"]).all()
    assert not gap["estimable"].astype(bool).any()
    assert any("no English score" in n for n in a.notes)


def test_wrong_split_kind_and_several_models_are_data_errors(tmp_path: Path) -> None:
    extra = [ResultRow(run="syn", stage="eval", stage_hash="h", task="xnli", language="eng", split="test",
                       metric="accuracy", value=80.0, seed=0, strategy="none", intermediate="none", model="other")]
    run = make_run(tmp_path, seeds=(0,), n_draws=2, extra_rows=extra)
    with pytest.raises(DataError, match="splits present: test"):
        an.analyze(run, split="validation")
    with pytest.raises(DataError, match=r"2 models \(other, tiny\); choose one with --model"):
        an.analyze(run)
    with pytest.raises(DataError, match="no distance kind\\(s\\) lexical; available: syntactic, genetic"):
        an.analyze(run, model="tiny", kinds=["lexical"])


def test_missing_typology_tables_are_computed_by_stopover_typology(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(tmp_path, seeds=(0,), n_draws=2)
    saved = {name: (run / name).read_text() for name in ("typology.csv", "covariates.csv")}
    for name in saved:
        (run / name).unlink()
    calls = []

    def write_run_tables(run_dir: Path, languages: list[str]) -> None:
        calls.append(sorted(languages))
        for name, text in saved.items():
            (Path(run_dir) / name).write_text(text)

    monkeypatch.setitem(sys.modules, "stopover.typology",
                        types.SimpleNamespace(write_run_tables=write_run_tables))
    a = an.analyze(run, n_boot=20, kinds=["syntactic"])
    # Codes reach the writer as the language table's keys (swh -> swa), the ones analysis joins on.
    assert calls == [sorted(["eng", "swa"] + [lang for lang in LANGS if lang != "swh"])]
    assert any("computed typology.csv and covariates.csv" in n for n in a.notes)


def test_language_codes_are_normalised_on_both_sides_of_the_join(planted: an.Analysis) -> None:
    # results and typology.csv say swh (XNLI's code); the language table's key is swa: it must join.
    assert "swa" in set(planted.points["language"]) and "swh" not in set(planted.scores["language"])
    assert any("swh->swa" in n for n in planted.notes)


def test_unknown_language_codes_are_counted_not_dropped_silently(tmp_path: Path) -> None:
    extra = [ResultRow(run="syn", stage="eval", stage_hash="h", task="xnli", language="qqq", split="test",
                       metric="accuracy", value=50.0, seed=0, strategy="none", intermediate="none", target="xnli",
                       model="tiny")]
    a = an.analyze(make_run(tmp_path, seeds=(0,), n_draws=2, extra_rows=extra), n_boot=20, kinds=["syntactic"])
    assert any(n.startswith("1 eval row(s) have language codes the language table does not know (qqq)")
               for n in a.notes)


def test_missing_typology_that_cannot_be_computed_is_a_data_error(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(tmp_path, seeds=(0,), n_draws=2)
    (run / "typology.csv").unlink()

    def write_run_tables(run_dir: Path, languages: list[str]) -> None:
        raise RuntimeError("URIEL has no entry for lab-xyz\nsecond line")

    monkeypatch.setitem(sys.modules, "stopover.typology",
                        types.SimpleNamespace(write_run_tables=write_run_tables))
    with pytest.raises(DataError) as err:
        an.analyze(run, n_boot=20)
    msg = str(err.value)
    assert "typology.csv missing" in msg and "URIEL has no entry for lab-xyz" in msg and "\n" not in msg
