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
  and the tests check that our vectors equal `lang2vec.get_features`. (It also
  installs a `lang2vec.py` script into bin/ that shadows the package for every
  console script, `stopover` included.)

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
            if target.is_symlink() and target.resolve() != source.resolve():
                target.unlink()  # left by another (moved or removed) install of this version
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


_GLOTTO: dict[str, str] | None = None


def _glottocodes() -> dict[str, str]:
    """URIEL+'s own ISO 639-3 -> Glottocode map (used once URIEL+ has switched to Glottocodes)."""
    global _GLOTTO
    if _GLOTTO is None:
        import csv

        path = urielplus_package_dir() / "database" / "urielplus_csvs" / "uriel_glottocode_map.csv"
        with open(path, encoding="utf-8", newline="") as fh:
            # csv, not pandas: the ISO code "nan" (Min Nan) must stay a string.
            _GLOTTO = {row["iso_code"].strip(): row["glottocode"].strip()
                       for row in csv.DictReader(fh) if row["iso_code"].strip()}
    return _GLOTTO


def _candidate_codes(code: str) -> list[str]:
    """ISO 639-3 codes to try for a language, best first: its key, then its 3-letter aliases.

    A code outside stopover's table is passed through if it looks like an ISO 639-3
    code, so any URIEL language can be queried; anything else raises LanguageError.
    """
    try:
        lang = langtable.get(code)
    except LanguageError:
        raw = code.strip().lower()
        if len(raw) == 3 and raw.isalpha():
            return [raw]
        raise
    extra = [a.lower() for a in lang.aliases if len(a) == 3 and a.isalpha() and a.islower()]
    return [lang.iso3, *extra]


def _canonical(code: str) -> str:
    return _candidate_codes(code)[0]


_SHARED: dict[str, Any] = {}  # cache_key -> loaded URIEL+ object, shared within a process


class URIELPlusDistance:
    """Distances from URIEL+ (`urielplus`), by calling its `new_distance` for each pair.

    Options map onto URIEL+'s own: `aggregation` ("U" union / "A" average of the
    sources of a feature), `metric` ("angular" / "cosine"), `fill_with_base_lang`,
    `databases` (names for `integrate_custom_databases`: UPDATED_SAPHON, BDPROTO,
    GRAMBANK, APICS, EWAVE, GLOTTOLOG, INFERRED, or "all"; integrating switches
    URIEL+ to Glottocodes, which this class maps to transparently; it takes a
    minute or two) and `imputation` (mean, knn, softimpute, midas: URIEL+'s
    imputation methods, which need the `urielplus[imputation]` extra and take
    minutes). The loaded URIEL+ object is shared by instances with equal options.
    """

    name = "urielplus"

    def __init__(self, *, aggregation: str = "U", metric: str = "angular",
                 fill_with_base_lang: bool = True, databases: Iterable[str] = (),
                 imputation: str | None = None, root: Path | None = None) -> None:
        if aggregation not in ("U", "A"):
            raise ConfigError(f"urielplus aggregation {aggregation!r} is not 'U' (union) or 'A' (average)")
        if metric not in ("angular", "cosine"):
            raise ConfigError(f"urielplus metric {metric!r} is not 'angular' or 'cosine'")
        dbs = tuple(databases)
        if dbs == ("all",):
            dbs = ("UPDATED_SAPHON", "BDPROTO", "GRAMBANK", "APICS", "EWAVE", "GLOTTOLOG", "INFERRED")
        unknown = [d for d in dbs if d not in _DATABASES]
        if unknown:
            raise ConfigError(f"unknown URIEL+ database(s) {', '.join(unknown)}; "
                              f"valid: {', '.join(_DATABASES)} or 'all'")
        if imputation is not None and imputation not in _IMPUTATIONS:
            raise ConfigError(f"unknown URIEL+ imputation {imputation!r}; valid: {', '.join(_IMPUTATIONS)}")
        self.aggregation, self.metric = aggregation, metric
        self.fill_with_base_lang, self.databases, self.imputation = fill_with_base_lang, dbs, imputation
        self.root = root
        self._members: dict[tuple[int, int], frozenset[str]] = {}

    @property
    def kinds(self) -> tuple[str, ...]:
        return KINDS

    @property
    def cache_key(self) -> str:
        dbs = "+".join(self.databases) or "none"
        return (f"urielplus-{_version('urielplus')}-agg{self.aggregation}-{self.metric}"
                f"-fill{int(self.fill_with_base_lang)}-db{dbs}-imp{self.imputation or 'none'}")

    @property
    def uriel(self) -> Any:
        """The configured `urielplus.URIELPlus` object (loaded on first use)."""
        key = self.cache_key + (f"@{self.root}" if self.root else "")
        if key not in _SHARED:
            uriel = load_urielplus(self.root)
            uriel.set_aggregation(self.aggregation)
            uriel.set_distance_metric(self.metric)
            uriel.set_fill_with_base_lang(self.fill_with_base_lang)
            if self.databases:
                uriel.integrate_custom_databases(list(self.databases))
            if self.imputation:
                try:
                    getattr(uriel, f"{self.imputation}_imputation")()
                except ImportError as err:
                    raise ConfigError(f"URIEL+ {self.imputation} imputation needs optional packages "
                                      f"({err}); pip install 'urielplus[imputation]'") from err
            _SHARED[key] = uriel
        return _SHARED[key]

    def _code(self, code: str) -> str | None:
        """The code URIEL+ knows this language by (ISO 639-3 or Glottocode), or None."""
        uriel = self.uriel
        members = self._languages(0)
        for candidate in _candidate_codes(code):
            if uriel.get_codes() == "Glotto":
                candidate = _glottocodes().get(candidate, "")
            if candidate in members:
                return candidate
        return None

    def _languages(self, idx: int) -> frozenset[str]:
        langs = self.uriel.langs[idx]
        key = (idx, len(langs))  # integrations append languages: the length tracks changes
        if key not in self._members:
            self._members[key] = frozenset(str(x) for x in langs)
        return self._members[key]

    def measure(self, kind: str, a: str, b: str) -> Measurement:
        _check_kind(kind, self.kinds, self.name)
        if _canonical(a) == _canonical(b):
            return Measurement(0.0)  # identity: defined even where URIEL+ has no data
        codes = [self._code(a), self._code(b)]
        for given, code in zip((a, b), codes):
            if code is None:
                return Measurement(math.nan, f"{given} is not in URIEL+")
        try:
            value = self.uriel.new_distance(kind, codes[0], codes[1])
        except ValueError as err:
            if "No shared" in str(err):
                return Measurement(math.nan, f"no shared {kind} features for {a} and {b} in URIEL+")
            raise
        except IndexError:  # in langs[0] but not in this kind's matrix (possible after integrations)
            return Measurement(math.nan, f"no {kind} data for {a} or {b} in URIEL+")
        # URIEL+ rounds to 4 places but returns float32 for some kinds (0.6336 -> 0.63359999...):
        # round again in float64 so that the value is the one URIEL+ meant.
        return Measurement(round(float(value), 4))

    def distance(self, kind: str, a: str, b: str) -> float:
        """URIEL+'s `new_distance(kind, a, b)`; NaN when it cannot be computed (see `measure`)."""
        return self.measure(kind, a, b).value

    def confidence(self, kind: str, a: str, b: str) -> Confidence:
        """URIEL+'s `confidence_score(a, b, kind)`: (agreement, coverage); NaNs if a language is absent."""
        _check_kind(kind, self.kinds, self.name)
        ca, cb = self._code(a), self._code(b)
        if ca is None or cb is None:
            return Confidence(math.nan, math.nan)
        agreement, coverage = self.uriel.confidence_score(ca, cb, kind)
        return Confidence(float(agreement), float(coverage))

    def vector(self, kind: str, code: str) -> np.ndarray:
        """URIEL+'s aggregated feature vector for `kind`, with its missing marker -1 turned into NaN."""
        _check_kind(kind, self.kinds, self.name)
        ucode = self._code(code)
        if ucode is None:
            raise LanguageError(f"{code} is not in URIEL+; choose a language URIEL+ covers")
        values = np.asarray(self.uriel.get_vector(kind, [ucode])[ucode], dtype=float)
        values[values == -1.0] = np.nan
        return values


# --------------------------------------------------------------------------------------------
# URIEL via lang2vec
# --------------------------------------------------------------------------------------------

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
        return f"lang2vec-{_version('lang2vec')}-{self.metric}"

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
        for candidate in _candidate_codes(code):
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
        _check_kind(kind, self.kinds, self.name)
        parts = [self.feature_set_vector(fs, code) for fs in LANG2VEC_KINDS[kind]]
        if any(p is None for p in parts):
            return None
        return np.concatenate(parts)

    def measure(self, kind: str, a: str, b: str) -> Measurement:
        _check_kind(kind, self.kinds, self.name)
        if _canonical(a) == _canonical(b):
            return Measurement(0.0)
        va, vb = self.vector(kind, a), self.vector(kind, b)
        for given, vec in zip((a, b), (va, vb)):
            if vec is None:
                return Measurement(math.nan, f"{given} is not in lang2vec's URIEL data")
        value = feature_distance(va, vb, metric=self.metric)
        if math.isnan(value):
            return Measurement(value, f"no shared {kind} features for {a} and {b} in lang2vec")
        return Measurement(value)

    def distance(self, kind: str, a: str, b: str) -> float:
        return self.measure(kind, a, b).value


# --------------------------------------------------------------------------------------------
# Backends, the on-disk cache and tables
# --------------------------------------------------------------------------------------------

_BACKENDS: dict[tuple[str, tuple[tuple[str, str], ...]], Distance] = {}


def get_backend(backend: str | Distance = "urielplus", **options: Any) -> Distance:
    """A distance backend by name ("urielplus", "lang2vec") with options, or the instance given."""
    if not isinstance(backend, str):
        return backend
    key = (backend, tuple(sorted((name, repr(value)) for name, value in options.items())))
    if key not in _BACKENDS:
        if backend == "urielplus":
            _BACKENDS[key] = URIELPlusDistance(**options)
        elif backend == "lang2vec":
            _BACKENDS[key] = Lang2VecDistance(**options)
        else:
            raise ConfigError(f"unknown typology backend {backend!r}; valid: {', '.join(BACKENDS)}")
    return _BACKENDS[key]


class MissingDistanceWarning(UserWarning):
    """Some distances could not be computed and are NaN (see the `note` column)."""


def _cache_path(backend: Distance, kind: str) -> Path:
    from stopover.paths import cache_dir

    safe = "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in backend.cache_key)
    return cache_dir("typology", "distances-v1", safe) / f"{kind}.npz"


def _read_cache(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, dict[tuple[str, str], str]]:
    if not path.exists():
        return [], np.zeros((0, 0)), np.zeros((0, 0), dtype=bool), {}
    try:
        with np.load(path) as npz:
            langs = [str(x) for x in npz["langs"]]
            values, done = npz["values"].copy(), npz["computed"].copy()
            notes = {(str(i), str(j)): str(t) for i, j, t in zip(npz["note_a"], npz["note_b"], npz["note_text"])}
    except (OSError, KeyError, ValueError) as err:  # a damaged cache is recomputed, never fatal
        warnings.warn(f"ignoring unreadable typology cache {path} ({err}); recomputing", stacklevel=3)
        return [], np.zeros((0, 0)), np.zeros((0, 0), dtype=bool), {}
    return langs, values, done, notes


def _write_cache(path: Path, langs: list[str], values: np.ndarray, done: np.ndarray,
                 notes: dict[tuple[str, str], str]) -> None:
    keys = sorted(notes)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
    os.close(fd)
    try:
        np.savez_compressed(tmp, langs=np.array(langs, dtype=str), values=values, computed=done,
                            note_a=np.array([k[0] for k in keys], dtype=str),
                            note_b=np.array([k[1] for k in keys], dtype=str),
                            note_text=np.array([notes[k] for k in keys], dtype=str))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _measurements(backend: Distance, kind: str, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Measurement]:
    """Measurements for ISO-coded pairs, from the on-disk matrix where present, computed otherwise.

    The matrix (per backend options and kind) grows as pairs are asked for; a pair
    that was computed and is missing is stored as NaN with its note, so it is
    neither recomputed nor mistaken for zero. Writers merge under a file lock.
    """
    from filelock import FileLock

    path = _cache_path(backend, kind)
    langs, values, done, notes = _read_cache(path)
    pos = {code: i for i, code in enumerate(langs)}
    out: dict[tuple[str, str], Measurement] = {}
    todo: list[tuple[str, str]] = []
    for a, b in pairs:
        i, j = pos.get(a), pos.get(b)
        if i is not None and j is not None and done[i, j]:
            out[(a, b)] = Measurement(float(values[i, j]), notes.get((min(a, b), max(a, b)), ""))
        elif (a, b) not in out:
            todo.append((a, b))
    if not todo:
        return out
    fresh = {}
    for a, b in dict.fromkeys(todo):
        m = backend.measure(kind, a, b)
        fresh[(a, b)] = m
        out[(a, b)] = m
    with FileLock(str(path) + ".lock"):
        langs, values, done, notes = _read_cache(path)  # another process may have added pairs
        new = [c for c in dict.fromkeys(code for pair in fresh for code in pair) if c not in langs]
        if new:
            n, m = len(langs), len(langs) + len(new)
            grown = np.full((m, m), np.nan)
            grown[:n, :n] = values
            grown_done = np.zeros((m, m), dtype=bool)
            grown_done[:n, :n] = done
            langs, values, done = langs + new, grown, grown_done
        pos = {code: i for i, code in enumerate(langs)}
        for (a, b), meas in fresh.items():
            i, j = pos[a], pos[b]
            values[i, j] = values[j, i] = meas.value
            done[i, j] = done[j, i] = True
            if meas.note:
                notes[(min(a, b), max(a, b))] = meas.note
        _write_cache(path, langs, values, done, notes)
    return out



# A distance resting on under this share of its kind's features is flagged in typology.csv and left
# out of the analysis (issue 18: Croatian's URIEL+ syntactic 0.000 rests on 8% of the features,
# Kazakh's phonological 0.000 on 2 features). With URIEL+ 1.3.2, 0.25 drops Croatian's and Kazakh's
# syntactic distances (12 of 103 features) and Kazakh's phonological one (2 of 28), and keeps
# German, Japanese, Wolof and Icelandic (73-87%).
MIN_COVERAGE = 0.25


def feature_coverage(backend: Any, kind: str, a: str, b: str) -> tuple[int, int]:
    """(features both languages have, features of the kind) behind one distance; (0, 0) if unknown.

    Counts on the backend's own vectors (`vector(kind, code)`, NaN = missing), so
    it is the share of features the distance was actually computed from.
    """
    vector = getattr(backend, "vector", None)
    if vector is None:
        return 0, 0
    try:
        va, vb = vector(kind, a), vector(kind, b)
    except (LanguageError, ConfigError):
        return 0, 0
    if va is None or vb is None:
        return 0, 0
    va, vb = np.asarray(va, dtype=float), np.asarray(vb, dtype=float)
    return int((np.isfinite(va) & np.isfinite(vb)).sum()), int(va.size)


def _kinds(kinds: Iterable[str] | None, backend: Distance) -> list[str]:
    chosen = list(kinds) if kinds is not None else [k for k in DEFAULT_KINDS if k in backend.kinds]
    if not chosen:
        raise ConfigError("no distance kinds given; choose from " + ", ".join(backend.kinds))
    for kind in chosen:
        _check_kind(kind, backend.kinds, backend.name)
    return chosen


def _resolve_all(codes: Iterable[str]) -> list[str]:
    out: list[str] = []
    for code in codes:
        iso = _canonical(code)
        if iso not in out:
            out.append(iso)
    return out


def distances_from(source: str, languages: Iterable[str], kinds: Iterable[str] | None = None,
                   backend: str | Distance = "urielplus", *, coverage: bool = True) -> "pd.DataFrame":
    """Distance of each language from `source`, one row per (language, kind).

    Columns: language (ISO 639-3), kind, distance (NaN when it cannot be
    computed), backend, note (why a distance is missing; empty otherwise),
    shared_features and coverage (the share of the kind's features both
    languages have: what the distance rests on; NaN where the backend has no
    vectors). The analysis leaves out distances with coverage < MIN_COVERAGE.
    Emits a `MissingDistanceWarning` naming the missing pairs.
    """
    import pandas as pd

    dist = get_backend(backend)
    src = _canonical(source)
    langs = _resolve_all(languages)
    rows = []
    for kind in _kinds(kinds, dist):
        found = _measurements(dist, kind, [(src, lang) for lang in langs])
        for lang in langs:
            m = found[(src, lang)]
            shared, total = feature_coverage(dist, kind, src, lang) if coverage else (0, 0)
            rows.append({"language": lang, "kind": kind, "distance": m.value,
                         "backend": dist.name, "note": m.note, "shared_features": shared,
                         "coverage": round(shared / total, 4) if total else math.nan})
    frame = pd.DataFrame(rows, columns=["language", "kind", "distance", "backend", "note", "shared_features",
                                        "coverage"])
    _warn_missing(frame, f"from {src}")
    return frame


def _warn_missing(frame: "pd.DataFrame", where: str) -> None:
    missing = frame[frame["distance"].isna()]
    if len(missing):
        listed = ", ".join(f"{r.language}/{r.kind}" for r in missing.head(8).itertuples())
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        warnings.warn(f"{len(missing)} {frame['backend'].iloc[0]} distance(s) {where} are missing "
                      f"(NaN, see the note column): {listed}{more}", MissingDistanceWarning, stacklevel=3)


def distance_matrix(languages: Iterable[str], kind: str, backend: str | Distance = "urielplus") -> "pd.DataFrame":
    """The symmetric language x language matrix of one kind (ISO 639-3 labels; NaN = missing)."""
    import pandas as pd

    dist = get_backend(backend)
    _check_kind(kind, dist.kinds, dist.name)
    langs = _resolve_all(languages)
    pairs = [(a, b) for i, a in enumerate(langs) for b in langs[i + 1:]]
    found = _measurements(dist, kind, pairs)
    matrix = np.zeros((len(langs), len(langs)))
    for i, a in enumerate(langs):
        for j in range(i + 1, len(langs)):
            matrix[i, j] = matrix[j, i] = found[(a, langs[j])].value
    frame = pd.DataFrame(matrix, index=langs, columns=langs)
    n_missing = int(np.isnan(matrix[np.triu_indices(len(langs), 1)]).sum())
    if n_missing:
        notes = [found[p].note for p in pairs if found[p].note][:3]
        warnings.warn(f"{n_missing} {dist.name} {kind} distance(s) are missing (NaN): {'; '.join(notes)}",
                      MissingDistanceWarning, stacklevel=2)
    return frame


def write_run_tables(run_dir: Path, languages: Iterable[str], source: str = "eng",
                     kinds: list[str] | None = None, backend: str = "urielplus") -> tuple[Path, Path]:
    """The one writer of a run's `typology.csv` and `covariates.csv` (both atomic, into `run_dir`).

    typology.csv: language, kind, distance, backend, note, shared_features,
    coverage; covariates.csv: see `stopover.covariates.covariates`. Real
    languages get URIEL+ (or `backend`) distances; typology-lab languages
    (`lab-*`) get the lab's own facts (`stopover.lab.variants.lab_typology_tables`),
    with coverage 1 (every lab feature is known). The source language itself
    is left out. `stopover report`/`analyze` call this when a table is
    missing; the grid calls it at the end of every run.
    """
    import pandas as pd

    from stopover.covariates import covariates
    from stopover.store import atomic_write_text

    run_dir = Path(run_dir)
    codes = list(dict.fromkeys(languages))
    lab = [c for c in codes if c.startswith("lab-")]
    src = _canonical(source)
    typ: list[pd.DataFrame] = []
    cov: list[pd.DataFrame] = []
    if lab:
        from stopover.lab.variants import anchored_variant, lab_typology_tables

        t, c = lab_typology_tables([anchored_variant(code) for code in lab])
        keep = t["language"].isin(lab)
        typ.append(t[keep].assign(note="", shared_features=math.nan, coverage=1.0))
        cov.append(c[c["language"].isin(lab)])
    real = [c for c in _resolve_all(c for c in codes if not c.startswith("lab-")) if c != src]
    if real:
        with warnings.catch_warnings():
            # Missing values are written as NaN with their note: the table itself reports them.
            warnings.simplefilter("ignore", MissingDistanceWarning)
            typ.append(distances_from(src, real, kinds, backend))
        cov.append(covariates(real, source=src))
    typology_path = run_dir / "typology.csv"
    covariates_path = run_dir / "covariates.csv"
    columns = ["language", "kind", "distance", "backend", "note", "shared_features", "coverage"]
    table = pd.concat(typ, ignore_index=True).reindex(columns=columns) if typ else pd.DataFrame(columns=columns)
    atomic_write_text(typology_path, table.to_csv(index=False))
    cov_frame = pd.concat(cov, ignore_index=True) if cov else pd.DataFrame(columns=["language"])
    atomic_write_text(covariates_path, cov_frame.to_csv(index=False))
    return typology_path, covariates_path
