"""Distances by backend, with the on-disk matrix cache: `get_backend`, `distances_from`, `distance_matrix`.

One language x language matrix per kind and backend options grows as pairs
are asked for; missing values are NaN with a note, never zero. Each distance
from a source also records its feature coverage. Torch-free.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from stopover.errors import ConfigError, LanguageError
from stopover.store import file_mode
from stopover.typology.codes import canonical
from stopover.typology.distance import (
    BACKENDS,
    DEFAULT_KINDS,
    Distance,
    Measurement,
    check_kind,
)
from stopover.typology.lang2vec import Lang2VecDistance
from stopover.typology.urielplus import URIELPlusDistance

if TYPE_CHECKING:
    import pandas as pd


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
        os.chmod(tmp, file_mode())  # mkstemp creates 0600; a shared cache is read by others
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
        check_kind(kind, backend.kinds, backend.name)
    return chosen


def resolve_all(codes: Iterable[str]) -> list[str]:
    out: list[str] = []
    for code in codes:
        iso = canonical(code)
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
    src = canonical(source)
    langs = resolve_all(languages)
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
    check_kind(kind, dist.kinds, dist.name)
    langs = resolve_all(languages)
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
