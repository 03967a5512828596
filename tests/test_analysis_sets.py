"""Planted-effect tests of the set-level (primary) inference in stopover.analysis.sets.

Replicates are generated as arrays (replicate x set x language) and pass
through the same vectorised functions `analyze` uses, so 1000 replicates
take well under a second. One end-to-end test writes results.jsonl in the
documented schema and reads the tests back from `analyze`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stopover import analysis as an
from stopover.analysis.sets import dose_response, rank_p, set_slopes, write_task_diversity
from stopover.store import ResultRow, append_results

R = 1000  # replicates
L = 12  # languages
N_DRAWS = 59  # random sets; with the diversity set 60 units (draw-rank floor 2/60 < 0.05)
X_DIST = np.linspace(0.1, 0.8, L)


def _design(*extra: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(L), X_DIST, *extra])


def _scores(rng: np.random.Generator, slopes: np.ndarray, noise: float = 3.0) -> np.ndarray:
    """(R, sets, L) seed-mean scores: 80 + slope_s * distance + N(0, noise)."""
    return 80 + slopes[..., None] * X_DIST + rng.normal(0, noise, size=slopes.shape + (L,))


def test_null_with_set_variation_keeps_primary_tests_at_nominal_rate() -> None:
    # The diversity set (index 0) is just another set: slopes vary from set to set (SD 10),
    # and diversity is unrelated to them.
    rng = np.random.default_rng(0)
    slopes = -30 + 10 * rng.normal(size=(R, N_DRAWS + 1))
    diversity = rng.normal(size=(R, N_DRAWS + 1))
    b, se = set_slopes(_scores(rng, slopes), _design())
    assert b.shape == se.shape == (R, N_DRAWS + 1)
    p_rank = rank_p(b[:, 0], b[:, 1:])
    p_dose = dose_response(b, diversity)["p"]
    assert np.mean(p_rank < 0.05) <= 0.06
    assert np.mean(p_dose < 0.05) <= 0.06
    # Not vacuous: both tests do reject at about the nominal rate, not never.
    assert np.mean(p_rank < 0.05) >= 0.02 and np.mean(p_dose < 0.05) >= 0.02
    # The secondary test (this set vs the mean of the draws, set 0 treated as fixed) is the
    # one that misleads here: a paired t on the slope difference rejects far too often.
    diff = b[:, 0] - b[:, 1:].mean(1)
    naive_se = np.sqrt(se[:, 0] ** 2 + (se[:, 1:] ** 2).mean(1) / N_DRAWS)
    assert np.mean(np.abs(diff / naive_se) > 1.96) > 0.3  # about 48% here


def test_dose_response_recovers_a_planted_slope_within_its_ci() -> None:
    rng = np.random.default_rng(1)
    gamma = 4.0  # points of distance slope per unit diversity
    diversity = rng.uniform(-2, 2, size=(R, 40))
    slopes = -30 + gamma * diversity + 5 * rng.normal(size=(R, 40))
    b, _ = set_slopes(_scores(rng, slopes), _design())
    res = dose_response(b, diversity, alpha=0.05)
    covered = (res["ci_lo"] <= gamma) & (gamma <= res["ci_hi"])
    assert covered.mean() >= 0.90
    assert abs(np.median(res["beta"]) - gamma) < 0.5
    assert np.mean(res["p"] < 0.05) > 0.5  # and it has power at this size


def test_pretraining_size_effect_gives_no_false_yes_once_adjusted() -> None:
    # Diversity helps low-resource languages, and has no effect on the distance slope at all;
    # low-resource languages are also the distant ones, so unadjusted slopes are confounded.
    rng = np.random.default_rng(2)
    log_gib = 3.0 - 4.0 * X_DIST + rng.normal(0, 0.5, L)
    diversity = rng.normal(size=(R, N_DRAWS + 1))
    slopes = -30 + 3 * rng.normal(size=(R, N_DRAWS + 1))
    Y = _scores(rng, slopes) + 6.0 * diversity[..., None] * (log_gib.mean() - log_gib)
    b_raw, _ = set_slopes(Y, _design())
    b_adj, _ = set_slopes(Y, _design(log_gib))
    assert np.mean(dose_response(b_raw, diversity)["p"] < 0.05) > 0.5  # the confound is real
    assert np.mean(dose_response(b_adj, diversity)["p"] < 0.05) <= 0.06
    assert np.mean(rank_p(b_adj[:, 0], b_adj[:, 1:]) < 0.05) <= 0.06


def test_rank_p_matches_closed_form() -> None:
    draws = np.arange(1.0, 40.0)  # 39 draws
    assert rank_p(100.0, draws) == pytest.approx(2 / 40)
    assert rank_p(20.0, draws) == pytest.approx(1.0)
    assert rank_p(1.0, draws) == pytest.approx(min(1, 2 * 2 / 40))  # ties count on both sides


def _set_run(root: Path, *, gamma: float, n_draws: int = 12, seed: int = 0) -> Path:
    """results.jsonl with one diversity set (also drawn once at random) and random draws."""
    rng = np.random.default_rng(seed)
    langs = ["deu", "fra", "spa", "rus", "zho", "jpn", "ara", "hin", "tur", "fin"]
    dist = dict(zip(langs, np.linspace(0.1, 0.8, len(langs))))
    pool = [f"t{i}" for i in range(8)]
    task_div = {t: float(i) / 2 for i, t in enumerate(pool)}
    sets = [("diversity-topk", "t6+t7")] + [("random-k", "+".join(sorted(rng.choice(pool, 2, replace=False),
                                                                          key=pool.index)))
                                            for _ in range(n_draws)] + [("random-k", "t6+t7")]
    rows = []
    seen: dict[str, float] = {}
    for strategy, inter in sets:
        div = np.mean([task_div[t] for t in inter.split("+")])
        slope = seen.setdefault(inter, -30 + gamma * div + rng.normal(0, 1))
        for s in (0, 1):
            values = {"eng": 85.0, **{lang: 80 + slope * dist[lang] + rng.normal(0, 1) for lang in langs}}
            rows += [ResultRow(run="syn", stage="eval", stage_hash=inter, task="xnli", language=lang, split="test",
                               metric="accuracy", value=float(v), seed=s, strategy=strategy, intermediate=inter,
                               model="tiny") for lang, v in values.items()]
    append_results(root, rows)
    pd.DataFrame([(lang, "syntactic", d, "urielplus") for lang, d in dist.items()],
                 columns=["language", "kind", "distance", "backend"]).to_csv(root / "typology.csv", index=False)
    pretrain = np.exp(np.linspace(4, 0, len(langs)) + rng.normal(0, 1, len(langs)))
    pd.DataFrame({"language": langs, "name": langs, "family": "x", "script": "Latn", "same_script": True,
                  "pretrain_gib": pretrain}).to_csv(root / "covariates.csv", index=False)
    write_task_diversity(root, task_div)
    return root


def test_analyze_reports_set_level_tests_and_names_the_tie(tmp_path: Path) -> None:
    run = _set_run(tmp_path / "run", gamma=6.0, seed=1)
    res = an.analyze(run, n_boot=50, n_perm=200, seed=0)
    tests = res.set_tests
    dose = tests[tests["test"] == "dose-response"].iloc[0]
    assert dose["estimate"] > 0 and dose["ci_lo"] <= 6.0 <= dose["ci_hi"]
    rank = tests[tests["test"] == "draw-rank"].iloc[0]
    assert rank["set"] == "t6+t7"
    assert "counted once" in rank["ties"]
    # The tied draw is not a draw: the random strategy's other distinct sets are.
    distinct_random = res.set_units.query("strategies == 'random-k'")["set"].nunique()
    assert rank["n_draws"] == distinct_random
    assert "Primary (set-level" in res.summary and "one mixed model with languages nested in sets" in res.summary


@pytest.mark.parametrize("option, value", [("alpha", 2.0), ("alpha", 0.0), ("alpha", -1.0), ("alpha", float("nan")),
                                           ("ci", 1.0), ("n_perm", 0), ("n_boot", 0), ("seed", -3)])
def test_analysis_options_are_validated(tmp_path: Path, option: str, value: float) -> None:
    from stopover.errors import ConfigError

    with pytest.raises(ConfigError, match=option):
        an.analyze(tmp_path, **{option: value})


@pytest.mark.parametrize("argv", [["--alpha", "2"], ["--alpha", "nan"], ["--n-perm", "0"], ["--seed", "-3"],
                                  ["--n-boot", "0"]])
def test_cli_rejects_bad_analysis_options_in_one_line(tmp_path: Path, argv: list[str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from stopover.cli import main

    assert main(["analyze", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and argv[0].lstrip("-").replace("-", "_") in err


def test_small_n_perm_warns_about_its_floor() -> None:
    notes = an.validate_options(n_perm=10, alpha=0.05)
    assert any("n_perm=10" in n and "1/(n_perm+1)" in n for n in notes)


def test_lab_run_without_tables_gets_them_from_the_one_writer(tmp_path: Path) -> None:
    # Issue 16.5: a lab run made with `stopover run` has no typology tables; analysis asks
    # stopover.typology.write_run_tables, which reads the lab's own facts for lab-* codes.
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_analysis import make_run

    langs = ["lab-jpn", "lab-tur", "lab-hin", "lab-deu", "lab-spa", "lab-rus"]
    run = make_run(tmp_path / "lab", langs=langs, seeds=(0,), n_draws=2, tasks=("lab-pos",))
    (run / "typology.csv").unlink()
    (run / "covariates.csv").unlink()
    res = an.analyze(run, n_boot=20, n_perm=100)
    assert (run / "typology.csv").exists() and (run / "covariates.csv").exists()
    assert set(res.distances["language"]) >= set(langs)
    assert any("computed typology.csv and covariates.csv" in n for n in res.notes)
    assert res.robustness["estimable"].any()


@pytest.mark.slow
def test_null_false_positive_rate_with_many_replicates() -> None:
    # 20000 replicates: the rate's standard error is about 0.15 points, so 5.6% is a tight bound.
    rng = np.random.default_rng(7)
    n = 20000
    slopes = -30 + 10 * rng.normal(size=(n, N_DRAWS + 1))
    b, _ = set_slopes(_scores(rng, slopes), _design())
    assert np.mean(rank_p(b[:, 0], b[:, 1:]) < 0.05) <= 0.056
    assert np.mean(dose_response(b, rng.normal(size=(n, N_DRAWS + 1)))["p"] < 0.05) <= 0.056


def test_nested_mixed_model_matches_the_two_stage_dose_response(tmp_path: Path) -> None:
    run = _set_run(tmp_path / "run", gamma=6.0, seed=2)
    tests = an.analyze(run, n_boot=20, n_perm=100, adjust=False).set_tests.set_index("test")
    two_stage, mixed = tests.loc["dose-response"], tests.loc["dose-response (mixed model)"]
    assert "languages nested in sets" in mixed["note"]
    # Same languages in every set, no adjusters: the GLS estimate of the cross-level term is the
    # two-stage one (up to the optimiser).
    assert mixed["estimate"] == pytest.approx(two_stage["estimate"], rel=0.01)
    assert mixed["ci_lo"] <= 6.0 <= mixed["ci_hi"]
    assert np.isnan(mixed["p_holm"])  # outside the Holm family and the verdict


def test_fertility_table_enters_the_adjusted_set_slopes(tmp_path: Path) -> None:
    from stopover.covariates import write_fertility_table

    run = _set_run(tmp_path / "run", gamma=6.0, seed=1)
    langs = ["deu", "fra", "spa", "rus", "zho", "jpn", "ara", "hin", "tur"]  # fin has none: dropped, counted
    write_fertility_table(run, [{"language": lang, "tokenizer": "tiny", "fertility": 1.2 + 0.1 * (i % 4),
                                 "n_words": 100} for i, lang in enumerate(langs)])
    res = an.analyze(run, n_boot=20, n_perm=100)
    dose = res.set_tests[res.set_tests["test"] == "dose-response"].iloc[0]
    assert "fertility" in dose["adjusted_for"] and dose["n_languages"] == 9
    assert any("1 language(s) lack a covariate (fin)" in n for n in res.notes)


def test_low_coverage_distances_are_excluded_and_counted(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_analysis import make_run

    run = make_run(tmp_path / "cov", seeds=(0,), n_draws=2)
    typ = pd.read_csv(run / "typology.csv")
    typ["coverage"] = np.where(typ["language"].isin(["deu", "fin"]) & (typ["kind"] == "syntactic"), 0.08, 0.9)
    typ.to_csv(run / "typology.csv", index=False)
    res = an.analyze(run, n_boot=20, n_perm=100, kinds=["syntactic"])
    assert any("2 syntactic distance(s) rest on under 25% of the features (deu, fin): excluded, which removes "
               "2 language(s)" in n for n in res.notes)
    assert not {"deu", "fin"} & set(res.points["language"])
    kept = an.analyze(run, n_boot=20, n_perm=100, kinds=["syntactic"], min_coverage=0.0)
    assert {"deu", "fin"} <= set(kept.points["language"])
