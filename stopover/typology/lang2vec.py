"""The lang2vec backend: classic URIEL distances from the feature vectors lang2vec 1.1.2 ships.

It reads lang2vec's `.npz` files directly instead of importing lang2vec (see
stopover.typology's docstring for why). Torch-free.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from stopover.errors import ConfigError
from stopover.typology.codes import candidate_codes, canonical
from stopover.typology.distance import (
    Measurement,
    check_kind,
    feature_distance,
    package_version,
)

# lang2vec's named feature sets: (file, source, feature-name prefix), as in its FEATURE_SETS_DICT.
_L2V_SETS = {
    "syntax_knn": ("feature_predictions.npz", "predicted", "S_"),
    "phonology_knn": ("feature_predictions.npz", "predicted", "P_"),
    "inventory_knn": ("feature_predictions.npz", "predicted", "INV_"),
    "fam": ("family_features.npz", "FAM", ""),
    "geo": ("geocoord_features.npz", "GEOCOORDS", ""),
}
# The classic URIEL distances (Littell et al. 2017): each kind is the distance between
# these lang2vec feature sets, concatenated. The k-NN sets are URIEL's imputed values,
# so every URIEL language has a full vector.
LANG2VEC_KINDS: dict[str, tuple[str, ...]] = {
    "syntactic": ("syntax_knn",),
    "phonological": ("phonology_knn",),
    "inventory": ("inventory_knn",),
    "featural": ("syntax_knn", "phonology_knn", "inventory_knn"),
    "genetic": ("fam",),
    "geographic": ("geo",),
}
_l2v_files: dict[str, dict[str, Any]] = {}
_l2v_lock = threading.Lock()


def lang2vec_data_dir() -> Path:
    """lang2vec's `data/` directory, found without importing lang2vec (see the module docstring).

    `find_spec` alone is not enough: lang2vec also installs a `lang2vec.py` script into the
    environment's bin/, and any console script there (`stopover`, `pytest`) puts bin/ first on
    sys.path, so `lang2vec` resolves to that single-file module. The installed distribution's
    file list is the fallback that always finds the package data.
    """
    spec = importlib.util.find_spec("lang2vec")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(list(spec.submodule_search_locations)[0]) / "data"
        if candidate.is_dir():
            return candidate
    try:
        candidate = Path(str(importlib.metadata.distribution("lang2vec").locate_file("lang2vec/data")))
    except importlib.metadata.PackageNotFoundError:
        candidate = None
    if candidate is None or not candidate.is_dir():
        raise ConfigError("the lang2vec backend needs the `lang2vec` package (pip install lang2vec==1.1.2) "
                          "or use --backend urielplus")
    return candidate


def _l2v_file(name: str) -> dict[str, Any]:
    with _l2v_lock:
        if name not in _l2v_files:
            with np.load(lang2vec_data_dir() / name) as npz:
                langs = [str(x) for x in npz["langs"]]
                _l2v_files[name] = {
                    "index": {code: i for i, code in enumerate(langs)},  # row order differs by file
                    "feats": np.array([str(f) for f in npz["feats"]]),
                    "sources": [str(s) for s in npz["sources"]],
                    "data": npz["data"],
                }
        return _l2v_files[name]


class Lang2VecDistance:
    """Classic URIEL distances from lang2vec's shipped feature vectors (see `LANG2VEC_KINDS`)."""

    name = "lang2vec"

    def __init__(self, *, metric: str = "angular") -> None:
        if metric not in ("angular", "cosine"):
            raise ConfigError(f"lang2vec metric {metric!r} is not 'angular' or 'cosine'")
        self.metric = metric

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(LANG2VEC_KINDS)

    @property
    def cache_key(self) -> str:
        return f"lang2vec-{package_version('lang2vec')}-{self.metric}"

    def feature_names(self, feature_set: str) -> list[str]:
        """Feature names of a lang2vec set, spelled as `lang2vec.get_features` spells them."""
        file, _, prefix = _L2V_SETS[feature_set]
        feats = _l2v_file(file)["feats"]
        return [str(f).replace(" ", "_") for f in feats if f.startswith(prefix)]

    def feature_set_vector(self, feature_set: str, code: str) -> np.ndarray | None:
        """One lang2vec feature set for a language (NaN where lang2vec has -1), None if absent."""
        if feature_set not in _L2V_SETS:
            raise ConfigError(f"unknown lang2vec feature set {feature_set!r}; valid: {', '.join(_L2V_SETS)}")
        file, source, prefix = _L2V_SETS[feature_set]
        table = _l2v_file(file)
        row = None
        for candidate in candidate_codes(code):
            row = table["index"].get(candidate)
            if row is not None:
                break
        if row is None:
            return None
        mask = np.char.startswith(table["feats"], prefix)
        values = table["data"][row, mask, table["sources"].index(source)].astype(float)
        values[values == -1.0] = np.nan
        return values

    def vector(self, kind: str, code: str) -> np.ndarray | None:
        """The concatenated feature sets of `kind` for a language; None if lang2vec lacks it."""
        check_kind(kind, self.kinds, self.name)
        parts = [self.feature_set_vector(fs, code) for fs in LANG2VEC_KINDS[kind]]
        present = [p for p in parts if p is not None]
        if len(present) < len(parts):
            return None
        return np.concatenate(present)

    def measure(self, kind: str, a: str, b: str) -> Measurement:
        check_kind(kind, self.kinds, self.name)
        if canonical(a) == canonical(b):
            return Measurement(0.0)
        va, vb = self.vector(kind, a), self.vector(kind, b)
        if va is None or vb is None:
            given = a if va is None else b
            return Measurement(math.nan, f"{given} is not in lang2vec's URIEL data")
        value = feature_distance(va, vb, metric=self.metric)
        if math.isnan(value):
            return Measurement(value, f"no shared {kind} features for {a} and {b} in lang2vec")
        return Measurement(value)

    def distance(self, kind: str, a: str, b: str) -> float:
        return self.measure(kind, a, b).value
