"""Power before running: each test's floor and its minimum detectable effect.

Pure functions of a planned design (languages, seeds, random draws, the size
of each Holm family); nothing here reads a run. `stopover plan` and the report
call `plan_power`.

- A *floor* is the smallest p-value a test can return whatever the data: the
  exact two-sided sign-flip test over n languages cannot go below 2 / 2^n
  (the observed signs and their mirror image are the two most extreme of the
  2^n flips); the two-sided draw-rank test of one set among N random draws
  cannot go below 2 / (N + 1) (one-sided: 1 / (N + 1)). With Holm across a
  family of m tests the smallest adjusted p is m times the floor, so the
  family can reach significance at alpha only when m * floor < alpha.
- The *minimum detectable effect* (MDE) is the smallest true slope at which
  a test rejects with the requested power (default 80%), found by simulation
  under stated noise levels (`Noise`) with common random numbers and
  bisection. The simulated test is the studentised OLS slope against a t
  reference at the Holm-adjusted level alpha / m; its closed form is the
  noncentral t (`mde_closed_form`), which the tests check the simulation
  against. For the sign-flip test this is the large-sample equivalent of the
  permutation test, valid once its floor is below the level.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence, cast

import numpy as np
from numpy.typing import ArrayLike

from stopover.errors import ConfigError


@dataclass(frozen=True)
class Noise:
    """Noise levels of a design, in score points (stated defaults, or from a pilot run).

    language_sd: residual SD of one language's score around its set's line, per seed;
    set_sd: SD of the true distance slope from one intermediate set to the next
    (points per unit distance; the demo suggests 7-10);
    diversity_sd: SD of set diversity across random draws (diversity units).
    """

    language_sd: float = 3.0
    set_sd: float = 5.0
    diversity_sd: float = 1.0


@dataclass(frozen=True)
class TestPower:
    """Floor and minimum detectable effect of one planned test."""

    test: str
    unit: str
    family: int
    floor: float
    floor_adjusted: float
    reachable: bool
    mde: float
    effect: str
    fix: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_alpha(alpha: float) -> None:
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and 0 < alpha < 1):
        raise ConfigError(f"alpha={alpha!r}: the significance level must be a finite number in (0, 1)")


def sign_flip_floor(n_languages: int) -> float:
    """Smallest two-sided p-value of the exact sign-flip test over n languages: 2 / 2^n."""
    if n_languages < 1:
        raise ConfigError(f"n_languages={n_languages}: need at least one language")
    return min(1.0, 2.0 / 2.0 ** n_languages)


def draw_rank_floor(n_draws: int, *, sided: int = 2) -> float:
    """Smallest p-value of one set's rank among n random draws: sided / (n + 1)."""
    if sided not in (1, 2):
        raise ConfigError(f"sided={sided}: 1 (one-sided) or 2 (two-sided)")
    if n_draws < 0:
        raise ConfigError(f"n_draws={n_draws}: cannot be negative")
    return min(1.0, sided / (n_draws + 1))


def draws_needed(alpha: float = 0.05, family: int = 1, *, sided: int = 2) -> int:
    """Fewest random draws with family * floor < alpha (40 at 0.05 two-sided; 320 with Holm over 8)."""
    _check_alpha(alpha)
    n = max(0, math.floor(sided * family / alpha) - 1)
    while family * draw_rank_floor(n, sided=sided) >= alpha:  # float-safe: step to the first that passes
        n += 1
    return n


def languages_needed(alpha: float = 0.05, family: int = 1) -> int:
    """Fewest languages with family * 2 / 2^n < alpha for the exact sign-flip test."""
    _check_alpha(alpha)
    n = 1
    while family * sign_flip_floor(n) >= alpha:
        n += 1
    return n


def _t_crit(alpha: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(1 - alpha / 2, df))


def mde_closed_form(x: ArrayLike, sigma: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Slope at which the two-sided OLS slope t-test on predictor x (residual SD sigma) has `power`.

    Noncentral t with df = n - 2 and noncentrality slope * sqrt(Sxx) / sigma.
    """
    from scipy.optimize import brentq
    from scipy.stats import nct

    x = np.asarray(x, dtype=float)
    df = x.size - 2
    if df < 1:
        return math.inf
    sxx = float(((x - x.mean()) ** 2).sum())
    crit = _t_crit(alpha, df)

    def gap(delta: float) -> float:
        ncp = delta * math.sqrt(sxx) / sigma
        return float(nct.sf(crit, df, ncp) + nct.cdf(-crit, df, ncp)) - power

    hi = sigma / math.sqrt(sxx)
    while gap(hi) < 0:
        hi *= 2
    return float(cast(float, brentq(gap, 0.0, hi, xtol=1e-10 * hi)))  # full_output=False: a float


def mde_simulated(x: ArrayLike, sigma: float, *, alpha: float = 0.05, power: float = 0.8,
                  n_sim: int = 4000, seed: int = 0) -> float:
    """The same MDE by simulation: data y = slope * x + N(0, sigma^2), t-test of the OLS slope.

    Common random numbers (one noise matrix for every candidate slope) make
    the power curve monotone in the slope, so bisection finds the MDE.
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    if n < 3:
        return math.inf
    dx = x - x.mean()
    sxx = float((dx * dx).sum())
    z = np.random.default_rng(seed).normal(0.0, sigma, size=(n_sim, n))
    zc = z - z.mean(1, keepdims=True)
    bz = zc @ dx / sxx  # slope of the noise alone
    crit = _t_crit(alpha, n - 2)

    def achieved(delta: float) -> float:
        b = delta + bz
        # Residuals do not depend on the slope: y - fit = zc - bz * dx for every delta.
        res = zc - bz[:, None] * dx[None, :]
        se = np.sqrt((res * res).sum(1) / (n - 2) / sxx)
        return float(np.mean(np.abs(b) / se > crit))

    lo, hi = 0.0, sigma / math.sqrt(sxx)
    while achieved(hi) < power:
        hi *= 2
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if achieved(mid) < power else (lo, mid)
    return hi


def plan_power(distances: Sequence[float], *, n_seeds: int, n_draws: int, n_tasks: int = 1,
               n_kinds: int = 1, n_diversity_sets: int = 1, alpha: float = 0.05, power: float = 0.8,
               noise: Noise = Noise(), n_sim: int = 4000, seed: int = 0) -> list[TestPower]:
    """Floor and MDE of each test of a planned grid (the report's and `stopover plan`'s power table).

    distances: each planned target language's distance from English (headline kind);
    the Holm families are those the analysis uses: the sign-flip test over
    tasks x kinds per pair of strategies, draw-rank over tasks x diversity
    sets, dose-response over tasks.
    """
    _check_alpha(alpha)
    for name, value in (("n_seeds", n_seeds), ("n_tasks", n_tasks), ("n_kinds", n_kinds),
                        ("n_diversity_sets", n_diversity_sets)):
        if value < 1:
            raise ConfigError(f"{name}={value}: must be at least 1")
    if n_draws < 0:
        raise ConfigError(f"n_draws={n_draws}: cannot be negative")
    x = np.asarray(distances, dtype=float)
    n_lang = x.size
    out: list[TestPower] = []

    # Secondary: sign-flip over languages, one set vs the mean of the draws. Paired
    # differences average seeds, so their SD is language_sd * sqrt(2 / seeds).
    fam = n_tasks * n_kinds
    floor = sign_flip_floor(n_lang) if n_lang else 1.0
    reach = fam * floor < alpha
    sigma = noise.language_sd * math.sqrt(2.0 / n_seeds)
    mde = mde_simulated(x, sigma, alpha=alpha / fam, power=power, n_sim=n_sim, seed=seed) if reach else math.inf
    out.append(TestPower(
        "sign-flip (this set vs the mean of these draws)", "language", fam, floor, min(1.0, fam * floor), reach,
        mde, "slope difference, points per unit distance",
        "" if reach else f"more languages (at least {languages_needed(alpha, fam)}); more seeds do not lower "
        "this floor"))

    # Primary (a): draw-rank of each diversity set among the random draws.
    fam = n_tasks * n_diversity_sets
    floor = draw_rank_floor(n_draws)
    reach = fam * floor < alpha
    out.append(TestPower(
        "draw-rank (diversity set among random sets)", "intermediate set", fam, floor, min(1.0, fam * floor),
        reach, math.nan, "rank; no effect size (depends on the spread of set slopes)",
        "" if reach else f"more random draws (at least {draws_needed(alpha, fam)})"))

    # Primary (b): dose-response of set slope on set diversity across the draws.
    n_sets = n_draws + n_diversity_sets
    fam = n_tasks
    sxx_dist = float(((x - x.mean()) ** 2).sum()) if n_lang else 0.0
    within = noise.language_sd / math.sqrt(n_seeds * sxx_dist) if sxx_dist > 0 else math.inf
    sigma_sets = math.sqrt(noise.set_sd ** 2 + within ** 2)
    diversity = np.linspace(-1.0, 1.0, n_sets) * noise.diversity_sd * math.sqrt(3.0)  # uniform, given SD
    reach = n_sets >= 3 and math.isfinite(sigma_sets)
    mde = (mde_simulated(diversity, sigma_sets, alpha=alpha / fam, power=power, n_sim=n_sim, seed=seed)
           if reach else math.inf)
    out.append(TestPower(
        "dose-response (set slope on set diversity)", "intermediate set", fam, 0.0, 0.0, reach, mde,
        "change in distance slope per unit of diversity",
        "" if reach else "at least 3 intermediate sets with a measured diversity"))
    return out


__all__ = ["Noise", "TestPower", "sign_flip_floor", "draw_rank_floor", "draws_needed", "languages_needed",
           "mde_closed_form", "mde_simulated", "plan_power"]
