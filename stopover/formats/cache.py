"""The on-disk feature cache: tokenised features keyed by data, tokenizer, format and length.

Owns where features are cached (`cache_dir("features")`), what their key is made of,
and how an entry is read and written. Every stage copies the same tokenizer, so the key
uses the tokenizer's *content*, not its path: features tokenised once serve all stages.

An entry is a safetensors file, which holds arrays and one JSON header and nothing that
can execute (the cache may be shared between users, see docs/slurm.md): a planted or
damaged file is at worst a visible rebuild. Features are stored column by column, one
column per feature key:

- `int`: an integer per feature (`example_index`, `labels`, `cls_index`, ...);
- `ints`: a list of integers (`input_ids`, `attention_mask`, tagging's `word_ids`, ...),
  one flat array plus offsets;
- `ints2`: a list of lists of integers (multiple choice: one list per choice);
- `spans`: a list whose items are (start, end) tuples or None (span QA's offsets);
- `json`: anything else (strings, floats, mixed values), one JSON text per feature with
  tuples marked, so that they come back as tuples.

A key missing from some features is recorded by a presence mask. Reading an entry gives
back exactly the list of dicts that was written (same keys, values, int/tuple/list types).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import warnings
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from stopover.config import stable_hash
from stopover.paths import cache_dir

#: Bumped when the entry layout changes; part of every entry's header.
ENTRY_VERSION = 1
_HEADER_KEY = "stopover-features"
_SUFFIX = ".safetensors"
# tokenizers that know no limit report model_max_length as a huge sentinel (1e30)
_REAL_LIMIT = 1_000_000


class DamagedEntry(Exception):
    """A cache entry that cannot be decoded: rebuilt, never used."""


class Unstorable(Exception):
    """Features this cache cannot represent faithfully (e.g. dicts with non-string keys)."""


def tokenizer_digest(tokenizer: Any) -> str:
    """A short digest of a tokenizer's pipeline (vocabulary, normaliser, pre-tokeniser)."""
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is not None and hasattr(backend, "to_str"):
        pipeline = json.loads(backend.to_str())
        # Truncation and padding are call settings that every tokenizer call leaves behind in the
        # backend (the last max_length used): not part of what the tokenizer is.
        pipeline.pop("truncation", None)
        pipeline.pop("padding", None)
        return hashlib.sha256(json.dumps(pipeline, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return str(len(tokenizer))


# ------------------------------------------------------------------ encoding

def _types(values: Any) -> set[type]:
    return set(map(type, values))  # map(type) runs at C speed: millions of token ids per second


def _int_types(types: set[type]) -> bool:
    """Only int-like types (bool is not one: True would come back as 1)."""
    return all(t is int or (issubclass(t, np.integer)) for t in types)


def _narrow(values: Any, count: int) -> np.ndarray:
    """`count` ints as an array of the smallest signed type that holds them (token ids fit int32)."""
    array = np.fromiter(values, dtype=np.int64, count=count)
    if array.size == 0:
        return array.astype(np.int8)
    low, high = int(array.min()), int(array.max())
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return array.astype(dtype)
    return array


def _offsets(lengths: list[int]) -> np.ndarray:
    bounds = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    return _narrow(bounds, len(bounds))


def _kind(values: list[Any]) -> str:
    """The narrowest column kind that stores every value of a column exactly."""
    types = _types(values)
    if _int_types(types):
        return "int"
    if types == {list}:
        inner = _types(chain.from_iterable(values))
        if _int_types(inner):
            return "ints"
        items = chain.from_iterable(values)
        if inner == {list} and _int_types(_types(chain.from_iterable(items))):
            return "ints2"
        if inner <= {tuple, type(None)} and all(x is None or (len(x) == 2 and _int_types(_types(x)))
                                                for x in chain.from_iterable(values)):
            return "spans"
    return "json"


def _to_json(value: Any) -> Any:
    """JSON-ready value with tuples marked ({"__tuple__": [...]}), so they come back as tuples."""
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value) or "__tuple__" in value:
            raise Unstorable(f"a dict with keys {sorted(map(repr, value))[:3]}")
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise Unstorable(f"a value of type {type(value).__name__}")


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(v) for v in value["__tuple__"])
        return {k: _from_json(v) for k, v in value.items()}
    return value


def _int_arrays(c: int, kind: str, values: list[Any]) -> dict[str, np.ndarray]:
    """The arrays of column `c` for the integer kinds (nothing for "json")."""
    lengths = [len(v) for v in values] if kind in ("ints", "ints2", "spans") else []
    if kind == "int":
        return {f"{c}.values": _narrow(values, len(values))}
    if kind == "ints":
        return {f"{c}.values": _narrow(chain.from_iterable(values), sum(lengths)), f"{c}.offsets": _offsets(lengths)}
    if kind == "ints2":
        inner = list(chain.from_iterable(values))
        sizes = [len(x) for x in inner]
        return {f"{c}.values": _narrow(chain.from_iterable(inner), sum(sizes)), f"{c}.inner": _offsets(sizes),
                f"{c}.offsets": _offsets(lengths)}
    if kind == "spans":
        items = list(chain.from_iterable(values))
        ends = chain.from_iterable(x if x is not None else (0, 0) for x in items)
        return {f"{c}.values": _narrow(ends, 2 * len(items)),
                f"{c}.none": np.fromiter((x is None for x in items), dtype=np.uint8, count=len(items)),
                f"{c}.offsets": _offsets(lengths)}
    return {}


def encode_features(features: list[dict[str, Any]], key: str = "") -> bytes:
    """The bytes of a cache entry holding `features` (a list of dicts with string keys) for cache `key`."""
    from safetensors.numpy import save

    if not all(type(f) is dict and all(isinstance(k, str) for k in f) for f in features):
        raise Unstorable("features must be dicts with string keys")
    keys = list(dict.fromkeys(chain.from_iterable(features)))  # first-seen order
    columns: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    for c, name in enumerate(keys):
        present = [name in f for f in features]
        values = [f[name] for f in features if name in f]
        kind = _kind(values)
        try:
            arrays.update(_int_arrays(c, kind, values))
        except OverflowError:  # an int beyond 64 bits: JSON keeps it exactly
            kind = "json"
        columns.append({"key": name, "kind": kind, "all": all(present)})
        if not all(present):
            arrays[f"{c}.present"] = np.asarray(present, dtype=np.uint8)
        if kind == "json":
            texts = [json.dumps(_to_json(v), ensure_ascii=False, allow_nan=True).encode("utf-8") for v in values]
            arrays[f"{c}.values"] = np.frombuffer(b"".join(texts), dtype=np.uint8).copy()
            arrays[f"{c}.offsets"] = _offsets([len(t) for t in texts])
    header = {"version": ENTRY_VERSION, "key": key, "n": len(features), "columns": columns}
    return save(arrays, metadata={_HEADER_KEY: json.dumps(header)})


def _cuts(offsets: np.ndarray, count: int, total: int, what: str) -> list[int]:
    """The `count + 1` cut points in `offsets`, after checking they split `total` values in order."""
    bounds = offsets.astype(np.int64)
    if (bounds.ndim != 1 or len(bounds) != count + 1 or bounds[0] != 0 or bounds[-1] != total
            or bool(np.any(np.diff(bounds) < 0))):
        raise DamagedEntry(f"column {what!r}: offsets do not match the values")
    return bounds.tolist()


def _ragged(values: list[Any], offsets: np.ndarray, count: int, what: str) -> list[list[Any]]:
    """`values` cut at `offsets` into `count` lists."""
    cuts = _cuts(offsets, count, len(values), what)
    return [values[cuts[i]:cuts[i + 1]] for i in range(count)]


def decode_features(path: Path, key: str | None = None) -> list[dict[str, Any]]:
    """The features of a cache entry; DamagedEntry if it is not a whole, valid entry (for `key`,
    when given: an entry copied or renamed from another key is not used).
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as fh:
            header = json.loads((fh.metadata() or {})[_HEADER_KEY])
            arrays = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as err:
        raise DamagedEntry(f"unreadable: {(str(err).splitlines() or [type(err).__name__])[0]}") from None
    try:
        if header["version"] != ENTRY_VERSION:
            raise DamagedEntry(f"entry version {header['version']}, expected {ENTRY_VERSION}")
        if key is not None and header["key"] != key:
            raise DamagedEntry(f"it holds the features of another cache key ({header['key']!r})")
        n = int(header["n"])
        features: list[dict[str, Any]] = [{} for _ in range(n)]
        for c, column in enumerate(header["columns"]):
            name, kind = column["key"], column["kind"]
            if column["all"]:
                owners = list(range(n))
            else:
                present = arrays[f"{c}.present"]
                if present.shape != (n,):
                    raise DamagedEntry(f"column {name!r}: presence mask of the wrong size")
                owners = np.flatnonzero(present).tolist()
            values = arrays[f"{c}.values"]
            if values.ndim != 1:
                raise DamagedEntry(f"column {name!r}: values are not one-dimensional")
            m = len(owners)
            if kind == "int":
                if len(values) != m:
                    raise DamagedEntry(f"column {name!r}: {len(values)} values for {m} features")
                decoded: list[Any] = values.tolist()
            elif kind == "ints":
                decoded = _ragged(values.tolist(), arrays[f"{c}.offsets"], m, name)
            elif kind == "ints2":
                inner = arrays[f"{c}.inner"]
                rows = _ragged(values.tolist(), inner, len(inner) - 1, name)
                decoded = _ragged(rows, arrays[f"{c}.offsets"], m, name)
            elif kind == "spans":
                none = arrays[f"{c}.none"].tolist()
                flat = values.tolist()
                if len(flat) != 2 * len(none):
                    raise DamagedEntry(f"column {name!r}: {len(flat)} span ends for {len(none)} spans")
                items = [None if none[j] else (flat[2 * j], flat[2 * j + 1]) for j in range(len(none))]
                decoded = _ragged(items, arrays[f"{c}.offsets"], m, name)
            elif kind == "json":
                if values.dtype != np.uint8:
                    raise DamagedEntry(f"column {name!r}: JSON column of type {values.dtype}")
                blob = values.tobytes()
                cuts = _cuts(arrays[f"{c}.offsets"], m, len(blob), name)
                decoded = [_from_json(json.loads(blob[cuts[i]:cuts[i + 1]].decode("utf-8"))) for i in range(m)]
            else:
                raise DamagedEntry(f"column {name!r}: unknown kind {kind!r}")
            for i, value in zip(owners, decoded):
                features[i][name] = value
    except DamagedEntry:
        raise
    except (KeyError, TypeError, ValueError, IndexError, UnicodeDecodeError) as err:
        raise DamagedEntry(f"inconsistent: {type(err).__name__}: {err}") from None
    return features


def _write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a private temporary file: a failed write (disk full) leaves
    no partial entry, and concurrent writers of one entry never mix their bytes.
    """
    from stopover.models import writing

    tmp = path.with_name(f"{path.name}.{random.getrandbits(32):08x}.tmp")
    try:
        with writing(path):
            with open(tmp, "xb") as fh:
                fh.write(data)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class FeatureCache:
    """Features per (data key, tokenizer, format, length, train flag), on disk.

    One instance per run: it remembers each tokenizer's signature (digesting XLM-R's 250k
    pieces costs ~0.4 s, so once), keeping the tokenizer alive so its id is not reused.
    """

    def __init__(self, code_version: str) -> None:
        self.code_version = code_version
        self._signatures: dict[int, tuple[Any, str]] = {}  # id -> (tokenizer kept alive, signature)

    def signature(self, tokenizer: Any) -> str:
        if id(tokenizer) not in self._signatures:
            self._signatures[id(tokenizer)] = (tokenizer, stable_hash(
                [len(tokenizer), tokenizer.__class__.__name__, tokenizer_digest(tokenizer)]))
        return self._signatures[id(tokenizer)][1]

    def features(self, fmt: Any, task: Any, examples: list[dict], tokenizer: Any, max_length: int,
                 *, train: bool, data_key: Any, length_key: str | None = None) -> list[dict]:
        """Tokenised features of `examples`, from the cache or built and stored.

        `length_key` names the config key `max_length` came from, for the error when it is
        longer than the tokenizer's model accepts (default: the keys it can come from).
        """
        check_length(tokenizer, max_length, length_key or _length_keys(task, train))
        key = stable_hash([data_key, self.signature(tokenizer), fmt.name, max_length, train, len(examples),
                           self.code_version], 24)
        path = cache_dir("features") / f"{key}{_SUFFIX}"
        if path.exists():
            try:
                return decode_features(path, key)
            except DamagedEntry as err:
                warnings.warn(f"feature cache entry {path} is damaged ({err}); rebuilding it", stacklevel=2)
                path.unlink(missing_ok=True)
        feats = fmt.featurize(examples, tokenizer, task, max_length, train=train)
        try:
            data = encode_features(feats, key)
        except Unstorable as err:
            warnings.warn(f"features of format {fmt.name!r} cannot be cached ({err}); they are tokenised "
                          "again on every run", stacklevel=2)
            return feats
        _write_atomic(path, data)
        return feats


def _length_keys(task: Any, train: bool) -> str:
    name = getattr(task, "name", "<task>")
    if train:
        return f"max_length (intermediate.max_length or target.max_length, or tasks.{name}.train.max_length)"
    return f"max_length (evaluation.max_length, or tasks.{name}.train.max_length)"


def check_length(tokenizer: Any, max_length: int, key: str) -> None:
    """ConfigError naming `key` when `max_length` exceeds what the tokenizer's model accepts
    (512 tokens for XLM-R, whose 514 positions start at 2): past it, the model's embedding
    lookup fails deep inside the forward pass.
    """
    from stopover.models import check_max_length

    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _REAL_LIMIT:
        name = getattr(tokenizer, "name_or_path", "")
        check_max_length(max_length, limit, key, f"model {name}" if name else "the model")
