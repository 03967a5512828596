"""Tests of stopover.analysis.power: floors and minimum detectable effects against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stopover.analysis import power as pw
from stopover.analysis import sign_flip_pvalue
from stopover.errors import ConfigError


def test_floors_match_closed_forms() -> None:
    assert pw.sign_flip_floor(10) == pytest.approx(2 / 2 ** 10)
    assert pw.draw_rank_floor(39) == pytest.approx(2 / 40)
    assert pw.draw_rank_floor(39, sided=1) == pytest.approx(1 / 40)
    # p < 0.05 needs 40 draws two-sided (2/41), 320 with Holm over 8 tests; 20 one-sided.
    assert pw.draws_needed(0.05) == 40
    assert pw.draws_needed(0.05, 8) == 320
    assert pw.draws_needed(0.05, sided=1) == 20
    # Sign flip: 2/2^6 = 0.031 < 0.05; with Holm over 9 tests 9*2/2^n < 0.05 needs n = 9.
    assert pw.languages_needed(0.05) == 6
    assert pw.languages_needed(0.05, 9) == 9


def test_sign_flip_floor_is_what_the_exact_test_returns() -> None:
    # A near-perfect line over 8 languages (no language at the mean distance): only the observed
    # signs and their mirror image are as extreme, so the exact p is the floor 2/2^8.
    x = np.linspace(0.1, 0.8, 8)
    noise = np.array([0.01, -0.02, 0.01, 0.01, -0.01, 0.02, 0.0, -0.01])
    p, method = sign_flip_pvalue(5.0 * x + 1.0 + noise, x, 10000, np.random.default_rng(0))
    assert method.startswith("exact")
    assert p == pytest.approx(pw.sign_flip_floor(8))


def test_simulated_mde_matches_noncentral_t() -> None:
    x = np.linspace(0.1, 0.8, 12)
    closed = pw.mde_closed_form(x, 3.0, alpha=0.05, power=0.8)
    sim = pw.mde_simulated(x, 3.0, alpha=0.05, power=0.8, n_sim=20000, seed=3)
    assert sim == pytest.approx(closed, rel=0.03)


def test_plan_power_warns_when_a_test_can_never_reach_significance() -> None:
    rows = {r.test.split(" ")[0]: r for r in pw.plan_power(np.linspace(0.1, 0.8, 5), n_seeds=3, n_draws=10,
                                                            n_tasks=9, n_kinds=1)}
    flip = rows["sign-flip"]
    assert flip.floor == pytest.approx(2 / 32) and not flip.reachable and math.isinf(flip.mde)
    assert "more languages (at least 9)" in flip.fix and "seeds do not" in flip.fix
    rank = rows["draw-rank"]
    assert rank.floor == pytest.approx(2 / 11) and not rank.reachable and "at least 360" in rank.fix
    dose = rows["dose-response"]
    assert dose.reachable and np.isfinite(dose.mde) and dose.mde > 0


def test_plan_power_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="alpha"):
        pw.plan_power([0.1, 0.2, 0.3], n_seeds=1, n_draws=1, alpha=1.5)
    with pytest.raises(ConfigError, match="n_seeds"):
        pw.plan_power([0.1, 0.2, 0.3], n_seeds=0, n_draws=1)
