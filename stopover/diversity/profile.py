"""Diversity profiles of English datasets: which texts are measured, the sample, the cache.

Every measure is computed on a fixed-size, seeded random sample of a
dataset's texts (default 2,000 texts, drawn without replacement after
dropping empty texts; all texts when there are fewer), so that datasets of
very different sizes are compared on equal terms.

What one text is, per task format (`task_texts`):

- classification: `text_a`, plus `text_b` after one space when the task is a
  pair task: one text per example, so a 2,000-text sample is 2,000 examples
  whatever the format;
- tagging: the tokens joined by spaces;
- span_qa: the question, a space, the context (a dataset that asks many
  questions about one paragraph repeats that paragraph, and is measured as
  the model sees it);
- multiple_choice: the context, the question and every ending, joined by spaces;
- retrieval: the English side (`target`).

The measures themselves live in `stopover.diversity.measures`.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from stopover.diversity.measures import (
    MEASURES_VERSION,
    DiversityMeasure,
    Sample,
    directions,
    measure_settings,
    requirements,
    resolve_measures,
)
from stopover.errors import ConfigError, DataError, TaskError
from stopover.upos import UposTagger

if TYPE_CHECKING:
    import numpy as np

DEFAULT_SAMPLE = 2000
DEFAULT_MODEL = "embedded:multilingual-e5-small"


# ---------------------------------------------------------------- profiles


def sample_texts(texts: Sequence[str], size: int = DEFAULT_SAMPLE, seed: int = 0) -> list[str]:
    """A seeded sample of `size` non-empty texts without replacement (all of them, shuffled, if fewer)."""
    if size < 1:
        raise ConfigError(f"diversity sample size must be >= 1, got {size}")
    pool = [t for t in texts if t and t.strip()]
    if not pool:
        raise DataError("no non-empty texts to measure")
    rng = random.Random(seed)
    return [pool[i] for i in rng.sample(range(len(pool)), min(size, len(pool)))]


def profile_texts(texts: Sequence[str], *, model: Any = None, tokenizer: Any = None,
                  sample: int = DEFAULT_SAMPLE, seed: int = 0,
                  measures: Sequence[str | DiversityMeasure] | None = None,
                  tagger: UposTagger | None = None, layer: int = -1, max_length: int = 128,
                  batch_size: int = 32) -> dict[str, float]:
    """Diversity of `texts`: {measure name: value} on a seeded sample of `sample` texts.

    With `measures=None`: the lexical and syntactic measures, plus the
    semantic ones when `model` and `tokenizer` are given (embeddings of
    hidden layer `layer`, mean-pooled, texts truncated to `max_length`).
    The UPOS tagger is `tagger`, else `stopover.upos.get_tagger()`, created
    only when a measure needs it.
    """
    chosen = sample_texts(texts, sample, seed)
    embedder: Callable[[list[str]], np.ndarray] | None = None
    if model is not None:
        if tokenizer is None:
            raise ConfigError("profile_texts: a model needs its tokenizer (tokenizer=...)")
        from stopover.embeddings import encode

        def embed(batch: list[str]) -> np.ndarray:
            return encode(batch, model, tokenizer, layer=layer, max_length=max_length, batch_size=batch_size)

        embedder = embed

    available = ("upos", "embeddings") if embedder is not None else ("upos",)
    ms = resolve_measures(measures, available=available)
    if tagger is None and any("upos" in requirements(m) for m in ms):
        from stopover.upos import get_tagger

        tagger = get_tagger()
    s = Sample(chosen, tagger=tagger, embedder=embedder)
    return {m.name: float(m.compute(s)) for m in ms}


def task_texts(fmt: str, examples: Iterable[Mapping[str, Any]]) -> list[str]:
    """One text per example, by task format (see the module docstring)."""
    try:
        fn = _FORMAT_TEXT[fmt]
    except KeyError:
        raise TaskError(f"no diversity text for task format {fmt!r}; "
                        f"known formats: {', '.join(_FORMAT_TEXT)}") from None
    try:
        return [fn(ex) for ex in examples]
    except KeyError as err:
        raise DataError(f"a {fmt} example lacks the field {err}; canonical {fmt} examples have "
                        f"{_FORMAT_FIELDS[fmt]}") from None


def _join(*parts: Any) -> str:
    return " ".join(str(p).strip() for p in parts if p is not None and str(p).strip())


_FORMAT_TEXT: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "classification": lambda ex: _join(ex["text_a"], ex.get("text_b")),
    "tagging": lambda ex: _join(*ex["tokens"]),
    "span_qa": lambda ex: _join(ex["question"], ex["context"]),
    "multiple_choice": lambda ex: _join(ex.get("context"), ex["question"], *ex["endings"]),
    "retrieval": lambda ex: _join(ex["target"]),
}
_FORMAT_FIELDS = {
    "classification": "text_a (and text_b)", "tagging": "tokens", "span_qa": "question, context",
    "multiple_choice": "context, question, endings", "retrieval": "target (English)",
}

_MODELS: dict[str, tuple[Any, Any]] = {}


def _load_model(source: str) -> tuple[Any, Any]:
    """(encoder, tokenizer) for a model source, loaded once per process."""
    if source.startswith("tiny:"):
        raise ConfigError(f"model {source!r}: tiny models are random and trained per corpus, so their "
                          f"embeddings are not comparable across tasks; use {DEFAULT_MODEL}, a Hub id or "
                          f"a local model directory, or 'none' to skip the semantic measures")
    if source not in _MODELS:
        from stopover.models import load_encoder, load_tokenizer, resolve_model_path

        path = resolve_model_path(source)
        _MODELS[source] = (load_encoder(path), load_tokenizer(path))
    return _MODELS[source]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def profile_task(task_name: str, *, data_dir: str | Path | None = None, model_source: str | None = None,
                 sample: int = DEFAULT_SAMPLE, seed: int = 0, split: str = "train",
                 measures: Sequence[str | DiversityMeasure] | None = None,
                 tagger: UposTagger | None = None, layer: int = -1, max_length: int = 128,
                 examples: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The diversity profile of a task's English `split`, cached on disk.

    `examples`: the split as a run resolved it (`stopover.sources`: the files or Hub commit the
    run's stages read, so profiling and training cannot disagree); default: loaded here from
    `data_dir` or the Hub.

    `model_source` picks the sentence encoder of the semantic measures
    (None = DEFAULT_MODEL, the offline embedded encoder; "none" = skip the
    semantic measures). Returns a dict with the measures under "measures"
    ({name: value}), their directions under "directions" ({name:
    higher_is_more_diverse}) and what produced them: task, format, source,
    revision, split, number of examples, sample size and seed, the tagger's
    and the model's names.

    The cache (`cache_dir("diversity")`) is keyed by the task and its source
    and revision, the split, sample size, seed, the measures' settings, the
    tagger's and model's names, a digest of stopover's code (`stopover.spec.code_digest`) and a
    hash of the sampled texts themselves, so changed data or code never returns stale numbers.
    """
    from stopover.data import load_examples
    from stopover.paths import cache_dir
    from stopover.spec import code_digest
    from stopover.store import atomic_write_text
    from stopover.tasks import get_task

    task = get_task(task_name)
    if examples is None:
        examples = load_examples(task, split=split, language="eng",
                                 data_dir=str(data_dir) if data_dir is not None else None)
    texts = task_texts(task.format, examples)
    chosen = sample_texts(texts, sample, seed)
    source = model_source or DEFAULT_MODEL
    semantic = source.lower() != "none"
    ms = resolve_measures(measures, available=("upos", "embeddings") if semantic else ("upos",))
    needs = {r for m in ms for r in requirements(m)}
    if "embeddings" in needs and not semantic:
        raise ConfigError("semantic diversity measures need a model; model_source='none' skips them")
    if "upos" in needs and tagger is None:
        from stopover.upos import get_tagger

        tagger = get_tagger()
    hub = getattr(task, "hub", None)
    meta: dict[str, Any] = {
        "task": task.name, "format": task.format,
        "source": str(data_dir) if data_dir is not None else (
            f"{hub.path}/{hub.name}" if hub is not None and hub.name else getattr(hub, "path", None)),
        "revision": getattr(hub, "revision", None) if data_dir is None else None,
        "split": split, "language": "eng", "n_examples": len(examples), "n_sample": len(chosen),
        "sample": sample, "seed": seed,
        "tagger": tagger.name if "upos" in needs and tagger is not None else None,
        "model": source if "embeddings" in needs else None,
        "layer": layer if "embeddings" in needs else None,
        "max_length": max_length if "embeddings" in needs else None,
    }
    key = _digest({"meta": meta, "measures": [measure_settings(m) for m in ms], "code": code_digest(),
                   "measures_version": MEASURES_VERSION, "texts": _digest(chosen)})
    path = cache_dir("diversity") / f"{task.name}-{key[:16]}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            pass  # a torn cache file: recompute
    embedder: Callable[[list[str]], np.ndarray] | None = None
    if "embeddings" in needs:
        from stopover.embeddings import encode

        model, tok = _load_model(source)

        def embed(batch: list[str]) -> np.ndarray:
            return encode(batch, model, tok, layer=layer, max_length=max_length)

        embedder = embed

    s = Sample(chosen, tagger=tagger, embedder=embedder)
    values = {m.name: float(m.compute(s)) for m in ms}
    profile = dict(meta, measures=values, directions=directions(ms), cache_key=key)
    if "embeddings" in needs:
        # Kept for diversity-cover: the Vendi score of a union of task samples.
        import numpy as np

        emb_path = path.with_suffix(".npy")
        np.save(emb_path, s.embeddings.astype(np.float32))
        profile["embeddings_file"] = str(emb_path)
    atomic_write_text(path, json.dumps(profile, indent=1, ensure_ascii=False))
    return profile


