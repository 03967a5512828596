"""The distance protocol, its value types, the kinds, and the URIEL+ feature-distance formula.

Shared by every backend (stopover.typology.urielplus, .lang2vec) and by the
typology lab. Torch-free.
"""

from __future__ import annotations

import importlib.metadata
import math
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from stopover.errors import ConfigError

KINDS = ("syntactic", "phonological", "inventory", "featural", "morphological", "genetic",
         "geographic", "script")
# The six kinds both backends provide; the default for tables and the CLI.
DEFAULT_KINDS = ("syntactic", "phonological", "inventory", "featural", "genetic", "geographic")
BACKENDS = ("urielplus", "lang2vec")


def feature_distance(u: np.ndarray, v: np.ndarray, *, metric: str = "angular",
                     decimals: int | None = 4) -> float:
    """The distance URIEL+ computes between two typological feature vectors.

    Entries that are NaN in either vector are dropped pairwise (URIEL+ keeps
    only the features both languages have a value for; its own missing marker
    is -1, which callers turn into NaN first). With ``u``, ``v`` what is left::

        cos   = clip(u . v / (|u| |v|), -1, 1)
        angular distance = 2 * arccos(cos) / pi      (metric="angular", default)
        cosine distance  = 1 - cos                   (metric="cosine")

    rounded to ``decimals`` places (URIEL+ rounds to 4; ``None`` keeps full
    precision). As in URIEL+ (``URIELPlusQuerying._angular_distance``), an
    all-zero vector is replaced by a constant vector of 1e-10, so two zero
    vectors are at distance 0 and a zero vector is at the angle between the
    all-ones direction and the other vector. For non-negative feature vectors
    (all URIEL sets) the result lies in [0, 1]. Returns NaN when no feature is
    left after dropping missing entries.
    """
    a = np.asarray(u, dtype=float).ravel()
    b = np.asarray(v, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"feature vectors differ in length: {a.size} vs {b.size}")
    if metric not in ("angular", "cosine"):
        raise ValueError(f"unknown metric {metric!r}; use 'angular' or 'cosine'")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if a.size == 0:
        return math.nan
    if np.linalg.norm(a) == 0:
        a = np.full(a.size, 1e-10)
    if np.linalg.norm(b) == 0:
        b = np.full(b.size, 1e-10)
    cos = float(np.clip(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b)), -1.0, 1.0))
    dist = 1.0 - cos if metric == "cosine" else 2.0 * math.acos(cos) / math.pi
    return round(dist, decimals) if decimals is not None else dist


class Measurement(NamedTuple):
    """A distance and, when it is NaN, why (empty note when the value is known)."""

    value: float
    note: str = ""


class Confidence(NamedTuple):
    """URIEL+'s confidence in a distance: source agreement and data coverage, both in [0, 1].

    `coverage` is 1 minus the mean share of missing values of the two languages
    (URIEL+'s "missing values score"); after imputation URIEL+ reports the
    imputation accuracy in its place.
    """

    agreement: float
    coverage: float


@runtime_checkable
class Distance(Protocol):
    """A source of typological distances between languages (an extension point)."""

    name: str

    @property
    def kinds(self) -> tuple[str, ...]: ...

    @property
    def cache_key(self) -> str:
        """Names the backend, its library version and every option that changes a value."""
        ...

    def distance(self, kind: str, a: str, b: str) -> float: ...

    def measure(self, kind: str, a: str, b: str) -> Measurement: ...


def check_kind(kind: str, kinds: tuple[str, ...], backend: str) -> str:
    if kind in kinds:
        return kind
    import difflib

    close = difflib.get_close_matches(kind, KINDS, n=1, cutoff=0.5)
    if kind in KINDS:
        raise ConfigError(f"backend {backend!r} has no {kind!r} distance; its kinds: {', '.join(kinds)}")
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ConfigError(f"unknown distance kind {kind!r}{hint} (valid: {', '.join(kinds)})")


def package_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
