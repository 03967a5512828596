"""Typological distances between languages (URIEL+ and URIEL via lang2vec).

This module owns the distance of one language from another by kind
(syntactic, phonological, inventory, featural, morphological, genetic,
geographic, script), the on-disk cache of those distances, and the per-run
typology table the analysis module reads.
"""

from __future__ import annotations

import math

import numpy as np


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
