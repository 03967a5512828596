"""The URIEL+ backend: loading `urielplus` from a writable mirror, and `URIELPlusDistance`.

URIEL+ writes database copies into its own package directory at first use;
we point it at a mirror in stopover's cache instead, so it works from a
read-only site-packages. Torch-free.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from stopover.errors import ConfigError, LanguageError
from stopover.typology.codes import (
    candidate_codes,
    canonical,
    glottocodes,
    urielplus_package_dir,
)
from stopover.typology.distance import (
    KINDS,
    Confidence,
    Measurement,
    check_kind,
    package_version,
)

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
    home = Path(root) if root is not None else cache_dir("typology", f"urielplus-{package_version('urielplus')}")
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
        return (f"urielplus-{package_version('urielplus')}-agg{self.aggregation}-{self.metric}"
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
        for candidate in candidate_codes(code):
            if uriel.get_codes() == "Glotto":
                candidate = glottocodes().get(candidate, "")
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
        check_kind(kind, self.kinds, self.name)
        if canonical(a) == canonical(b):
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
        check_kind(kind, self.kinds, self.name)
        ca, cb = self._code(a), self._code(b)
        if ca is None or cb is None:
            return Confidence(math.nan, math.nan)
        agreement, coverage = self.uriel.confidence_score(ca, cb, kind)
        return Confidence(float(agreement), float(coverage))

    def vector(self, kind: str, code: str) -> np.ndarray:
        """URIEL+'s aggregated feature vector for `kind`, with its missing marker -1 turned into NaN."""
        check_kind(kind, self.kinds, self.name)
        ucode = self._code(code)
        if ucode is None:
            raise LanguageError(f"{code} is not in URIEL+; choose a language URIEL+ covers")
        values = np.asarray(self.uriel.get_vector(kind, [ucode])[ucode], dtype=float)
        values[values == -1.0] = np.nan
        return values
