"""The on-disk feature cache: tokenised features keyed by data, tokenizer, format and length.

Owns where features are cached (`cache_dir("features")`), what their key is made of,
and how an entry is read and written. Every stage copies the same tokenizer, so the key
uses the tokenizer's *content*, not its path: features tokenised once serve all stages.
"""

from __future__ import annotations

import hashlib
import pickle
import random
from typing import Any

from stopover.config import stable_hash
from stopover.paths import cache_dir


def tokenizer_digest(tokenizer: Any) -> str:
    """A short digest of a tokenizer's pipeline (vocabulary, normaliser, pre-tokeniser)."""
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is not None and hasattr(backend, "to_str"):
        return hashlib.sha256(backend.to_str().encode("utf-8")).hexdigest()[:16]
    return str(len(tokenizer))


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
                 *, train: bool, data_key: Any) -> list[dict]:
        """Tokenised features of `examples`, from the cache or built and stored."""
        key = stable_hash([data_key, self.signature(tokenizer), fmt.name, max_length, train, len(examples),
                           self.code_version], 24)
        path = cache_dir("features") / f"{key}.pkl"
        if path.exists():
            try:
                with open(path, "rb") as fh:
                    cached = pickle.load(fh)
                if isinstance(cached, list):
                    return cached
            except Exception:  # noqa: BLE001 - garbage bytes can raise almost anything from pickle
                pass
            path.unlink(missing_ok=True)  # corrupt cache entry: rebuild
        feats = fmt.featurize(examples, tokenizer, task, max_length, train=train)
        tmp = path.with_suffix(f".{random.getrandbits(32)}.tmp")
        try:
            with open(tmp, "wb") as fh:
                pickle.dump(feats, fh, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)  # a failed write (disk full) leaves no partial file behind
        return feats
