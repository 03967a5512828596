"""Typological distances between languages (URIEL+ and URIEL via lang2vec).

This module owns the distance of one language from another by kind
(syntactic, phonological, inventory, featural, morphological, genetic,
geographic, script), the backends that compute it, the on-disk cache of those
distances (one language x language matrix per kind and backend), and the
per-run typology and covariate tables the analysis module reads.

Two backends implement the `Distance` protocol:

- `URIELPlusDistance` (``backend="urielplus"``) calls URIEL+ (`urielplus`)
  itself, with its aggregation, metric, database-integration and imputation
  options, and exposes its confidence scores. URIEL+ writes database copies
  into its own package directory at first use; we point it at a mirror in
  stopover's cache instead, so it works from a read-only site-packages.
- `Lang2VecDistance` (``backend="lang2vec"``) computes the classic URIEL
  distances from the feature vectors lang2vec 1.1.2 ships (it has no distance
  function): syntax_knn, phonology_knn, inventory_knn, their concatenation
  (featural), fam (genetic) and geo (geographic), with `feature_distance`,
  the very formula URIEL+ uses. It reads lang2vec's ``.npz`` files directly
  instead of importing lang2vec: the module imports `pkg_resources` at import
  time (gone with setuptools >= 81), loads data at import, prints to stdout
  for unknown languages and raises bare `Exception`; the files are the data,
  and the tests check that our vectors equal `lang2vec.get_features`.

Missing values are never zero: a distance that cannot be computed (no shared
features, language absent) is NaN with a note saying why, and callers warn.
Typology code never imports torch.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import math
import os
import shutil
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, NamedTuple, Protocol, runtime_checkable

import numpy as np

from stopover import languages as langtable
from stopover.errors import ConfigError, LanguageError

if TYPE_CHECKING:  # pandas is imported where tables are built, to keep import cheap
    import pandas as pd

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


def _check_kind(kind: str, kinds: tuple[str, ...], backend: str) -> str:
    if kind in kinds:
        return kind
    import difflib

    close = difflib.get_close_matches(kind, KINDS, n=1, cutoff=0.5)
    if kind in KINDS:
        raise ConfigError(f"backend {backend!r} has no {kind!r} distance; its kinds: {', '.join(kinds)}")
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ConfigError(f"unknown distance kind {kind!r}{hint} (valid: {', '.join(kinds)})")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------------------------
# URIEL+
# --------------------------------------------------------------------------------------------

_URIEL_FILES = ("family_features.npz", "features.npz", "geocoord_features.npz", "script_features.npz")
_IMPUTATIONS = ("mean", "knn", "softimpute", "midas")
_DATABASES = ("UPDATED_SAPHON", "BDPROTO", "GRAMBANK", "APICS", "EWAVE", "GLOTTOLOG", "INFERRED")
_uriel_lock = threading.Lock()
_uriel_module: Any = None


def _import_urielplus() -> Any:
    """Import `urielplus.urielplus` without letting it reconfigure the caller's logging.

    urielplus calls `logging.basicConfig(level=INFO)` at import time, which would
    attach a handler to the root logger of whatever program imports stopover
    and print a line per distance; we undo exactly what that call added.
    """
    global _uriel_module
    if _uriel_module is None:
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            import urielplus.urielplus as module
        except ImportError as err:
            raise ConfigError("the urielplus backend needs the `urielplus` package; "
                              "install it (pip install urielplus) or use --backend lang2vec") from err
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        _uriel_module = module
    return _uriel_module


def urielplus_package_dir() -> Path:
    """Where the installed urielplus package lives (its `database/` holds the shipped data)."""
    spec = importlib.util.find_spec("urielplus")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the urielplus backend needs the `urielplus` package; "
                          "install it (pip install urielplus) or use --backend lang2vec")
    return Path(list(spec.submodule_search_locations)[0])


def urielplus_home(root: Path | None = None) -> Path:
    """A writable mirror of urielplus's `database/` directory, in stopover's cache.

    urielplus resolves every data path as ``<package dir>/database/...`` and, at
    first use, copies its four ``.npz`` databases from ``database/original_uriel``
    into ``database/`` (and writes there again when its caching is on). Here the
    pristine originals are copied once into ``<root>/database/`` and the read-only
    sub-directories (``original_uriel``, ``urielplus_csvs``) are linked (or copied
    where links are not possible), so URIEL+ can run from a read-only site-packages
    and always starts from the shipped data, whatever an earlier session did to the
    package directory.
    """
    from stopover.paths import cache_dir

    package = urielplus_package_dir()
    home = Path(root) if root is not None else cache_dir("typology", f"urielplus-{_version('urielplus')}")
    database = home / "database"
    database.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(home / ".mirror.lock")):
        for sub in ("original_uriel", "urielplus_csvs"):
            target, source = database / sub, package / "database" / sub
            if target.exists():
                continue
            try:
                target.symlink_to(source, target_is_directory=True)
            except OSError:  # e.g. Windows without symlink rights
                shutil.copytree(source, target)
        for name in _URIEL_FILES:
            target = database / name
            if not target.exists():
                tmp = database / f".{name}.tmp"
                shutil.copyfile(package / "database" / "original_uriel" / name, tmp)
                os.replace(tmp, target)
    return home


def load_urielplus(root: Path | None = None) -> Any:
    """A fresh `urielplus.URIELPlus` that reads and writes under `urielplus_home(root)`.

    URIELPlus.__init__ builds its paths from its module's ``__file__`` (there is
    no parameter for it), so that name is pointed at the mirror while the object
    is built, under a lock; afterwards ``cur_dir`` (which every later read and
    write uses) is set to the mirror too. Nothing is written to the package.
    """
    module = _import_urielplus()
    home = urielplus_home(root)
    with _uriel_lock:
        original = module.__file__
        module.__file__ = str(home / "urielplus.py")
        try:
            uriel = module.URIELPlus()
        finally:
            module.__file__ = original
    uriel.cur_dir = str(home)
    return uriel


@functools_cache := None  # placeholder removed below (keeps flake-style linters quiet)
