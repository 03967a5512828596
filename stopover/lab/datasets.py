"""The typology lab's task datasets, written as JSONL files in stopover's canonical shapes.

This module owns the lab's tasks and `write_lab_data`. Every example is
built from generated meanings (`stopover.lab.grammar`) and realised per
language (`stopover.lab.variants`), so all languages' test sets are parallel:
line i of `<task>/<language>/test.jsonl` realises the same structure in
every language.

Target tasks (full grammar; English train/dev/test, every variant test):

- `lab-nli` (classification): premise = one sentence, hypothesis = one
  clause whose label (`NLI_LABELS`) follows from the premise's facts by
  `stopover.lab.facts.nli_label`; labels are balanced.
- `lab-pos` (tagging): tokens and UPOS tags.
- `lab-ner` (tagging): tokens and IOB2 tags over PER/LOC/ORG.
- `lab-qa` (span_qa): context = 1-3 sentences, a wh-question about an
  argument of a stated (positive) event; the answer is that argument's
  phrase in the context (without its adposition, case word or relative
  clause), an exact substring at `answer_start`.
- `lab-retrieval` (retrieval): source = the sentence in the language,
  target = the same sentence in English. Test split only (zero-shot, as
  XTREME's Tatoeba); English's test pairs are identical sentences.

Intermediate tasks (English only, train/dev/test): `lab-int-<level>-<format>`
for the levels of `LEVELS` (growing construction sets and lexicons, so
lexical and syntactic diversity grow with the level) and the formats `nli`
(classification, as lab-nli) and `qa` (span_qa, as lab-qa).

Tagging in languages written without spaces keeps the word tokens (the
token list is the segmentation, as in UD treebanks of such languages); the
text-based tasks (NLI, QA, retrieval) get the unspaced text, and QA offsets
index into it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stopover.errors import ConfigError
from stopover.lab.facts import NLI_LABELS
from stopover.lab.grammar import CONSTRUCTIONS, Grammar, Sentence
from stopover.lab.tree import UPOS
from stopover.lab.variants import ENGLISH_CODE, ENGLISH_VARIANT, Variant, lab_typology_tables
from stopover.store import atomic_write_text

SPLITS = ("train", "dev", "test")
DEFAULT_SIZES = {"train": 2000, "dev": 200, "test": 200}
NER_LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")

# Intermediate levels: (constructions, lexicon size); None = the full lexicon.
LEVELS: dict[str, tuple[tuple[str, ...], int | None]] = {
    "narrow": (("transitive", "negation"), 50),
    "small": (("intransitive", "transitive", "negation", "adjective"), 100),
    "medium": (("intransitive", "transitive", "ditransitive", "negation", "adjective", "adposition",
                "possessive"), 200),
    "full": (CONSTRUCTIONS, None),
}


@dataclass(frozen=True)
class QAItem:
    sentences: tuple[Sentence, ...]
    question: Sentence
    answer_sentence: int
    answer: Any  # the tree node whose phrase answers the question


@dataclass(frozen=True)
class NLIItem:
    premise: Sentence
    hypothesis: Sentence
    label: int


@dataclass(frozen=True)
class LabTask:
    """One lab task: its format, labels, grammar, and how items become examples."""

    name: str
    format: str
    role: str  # target | intermediate
    kind: str  # nli | pos | ner | qa | retrieval
    constructions: tuple[str, ...] = CONSTRUCTIONS
    lexicon_size: int | None = None
    level: str = "full"

    @property
    def labels(self) -> tuple[str, ...] | None:
        return {"nli": NLI_LABELS, "pos": UPOS, "ner": NER_LABELS}.get(self.kind)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("test",) if self.kind == "retrieval" else SPLITS

    def grammar(self) -> Grammar:
        return _grammar(self.constructions, self.lexicon_size)


@functools.lru_cache(maxsize=None)
def _grammar(constructions: tuple[str, ...], lexicon_size: int | None) -> Grammar:
    return Grammar(constructions, lexicon_size)


TARGET_TASKS = (
    LabTask("lab-nli", "classification", "target", "nli"),
    LabTask("lab-pos", "tagging", "target", "pos"),
    LabTask("lab-ner", "tagging", "target", "ner"),
    LabTask("lab-qa", "span_qa", "target", "qa"),
    LabTask("lab-retrieval", "retrieval", "target", "retrieval"),
)
INTERMEDIATE_TASKS = tuple(
    LabTask(f"lab-int-{level}-{fmt}", "classification" if fmt == "nli" else "span_qa", "intermediate", fmt,
            cons, size, level)
    for level, (cons, size) in LEVELS.items() for fmt in ("nli", "qa"))
TASKS = {t.name: t for t in TARGET_TASKS + INTERMEDIATE_TASKS}


def _rng(seed: int, *parts: str) -> random.Random:
    # A stable per-(task, split) stream: Python's hash() is salted per process.
    digest = hashlib.sha256("/".join([str(seed), *parts]).encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


# --------------------------------------------------------------------------- items


def _nli_item(g: Grammar, rng: random.Random, label: int) -> NLIItem:
    for _ in range(200):
        premise = g.sentence(rng, declarative=True)
        hyp = g.hypothesis(rng, premise, NLI_LABELS[label])
        if hyp is not None:
            return NLIItem(premise, hyp, label)
    raise RuntimeError(f"could not draw an NLI pair labelled {NLI_LABELS[label]!r}")


def _qa_item(g: Grammar, rng: random.Random) -> QAItem:
    for _ in range(200):
        sentences = g.paragraph(rng, rng.randint(1, 3))
        found = g.question(rng, sentences)
        if found is not None:
            q, si, node = found
            return QAItem(tuple(sentences), q, si, node)
    raise RuntimeError("could not draw a QA item")


def _items(task: LabTask, g: Grammar, rng: random.Random, n: int, key: Callable[[Any], str],
           exclude: set[str]) -> list[tuple[Any, str]]:
    """`n` (item, English key) pairs; no key in `exclude` (no train/test overlap)."""
    labels = [i % len(NLI_LABELS) for i in range(n)]
    rng.shuffle(labels)
    out: list[Any] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise RuntimeError(f"{task.name}: too many duplicates of the training data; the grammar is "
                               "too small for the requested split sizes")
        if task.kind == "nli":
            item: Any = _nli_item(g, rng, labels[len(out)])
        elif task.kind == "qa":
            item = _qa_item(g, rng)
        else:
            item = g.sentence(rng, declarative=task.kind == "retrieval")
        k = key(item)
        if k in exclude:
            continue
        out.append((item, k))
    return out


def english_key(task: LabTask, item: Any) -> str:
    """The item's English text: what identifies it for the train/test overlap check."""
    if task.kind == "nli":
        return item.premise.realise().text + "\t" + item.hypothesis.realise().text
    if task.kind == "qa":
        return " ".join(s.realise().text for s in item.sentences) + "\t" + \
            item.question.realise().text
    return item.realise().text


# --------------------------------------------------------------------------- examples


def render(task: LabTask, item: Any, variant: Variant, example_id: str = "") -> dict[str, Any]:
    """One item as a canonical example of the task's format, in `variant`'s language."""
    p = variant.params
    if task.kind == "nli":
        return {"text_a": item.premise.realise(p).text, "text_b": item.hypothesis.realise(p).text,
                "label": item.label}
    if task.kind in ("pos", "ner"):
        r = item.realise(p)
        return {"tokens": r.tokens, "tags": r.upos if task.kind == "pos" else r.ner}
    if task.kind == "retrieval":
        return {"source": item.realise(p).text, "target": item.realise().text}
    if task.kind == "qa":
        sep = " " if variant.params.spaces else ""
        parts, start = [], 0
        answer_start = answer_end = -1
        for i, s in enumerate(item.sentences):
            r = s.realise(p)
            if i == item.answer_sentence:
                a, b = r.phrase_span(item.answer)
                answer_start, answer_end = start + a, start + b
            parts.append(r.text)
            start += len(r.text) + len(sep)
        context = sep.join(parts)
        return {"id": example_id, "question": item.question.realise(p).text, "context": context,
                "answers": {"text": [context[answer_start:answer_end]], "answer_start": [answer_start]}}
    raise ValueError(f"unknown lab task kind {task.kind!r}")


def _jsonl(rows: Sequence[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def build_split(task: LabTask | str, split: str, size: int, seed: int,
                exclude: set[str] | None = None) -> list[Any]:
    """The language-independent items of one split (deterministic in `seed`); `exclude`
    holds English renderings (see `english_key`) that must not recur, and gains this split's.
    """
    t = TASKS[task] if isinstance(task, str) else task
    seen = exclude if exclude is not None else set()
    pairs = _items(t, t.grammar(), _rng(seed, t.name, split), size, lambda it: english_key(t, it), seen)
    seen.update(k for _, k in pairs)
    return [it for it, _ in pairs]


def _check_sizes(sizes: Mapping[str, int]) -> dict[str, int]:
    unknown = [k for k in sizes if k not in SPLITS]
    if unknown:
        raise ConfigError(f"lab sizes: unknown split(s) {unknown}; use {', '.join(SPLITS)}")
    out = {**DEFAULT_SIZES, **sizes}
    for k, v in out.items():
        if not isinstance(v, int) or v < 1:
            raise ConfigError(f"lab sizes: {k}={v!r}; give a positive integer number of examples")
    return out


def write_lab_data(out_dir: str | Path, variants: Sequence[Variant], sizes: Mapping[str, int] | None = None,
                   seed: int = 0, tasks: Sequence[str] | None = None) -> dict[str, Any]:
    """Write the lab's tasks under `out_dir/<task>/<language>/<split>.jsonl`; return the manifest.

    Also writes `typology.csv`, `covariates.csv` (`lab_typology_tables`) and
    `manifest.json`. `sizes` maps split -> examples (missing splits take
    DEFAULT_SIZES); `tasks` restricts which tasks are written (default: all).
    """
    out = Path(out_dir)
    sizes = _check_sizes(sizes or {})
    names = list(tasks) if tasks is not None else list(TASKS)
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise ConfigError(f"unknown lab task(s) {unknown}; known: {', '.join(TASKS)}")
    langs = [ENGLISH_VARIANT] + [v for v in variants if v.code != ENGLISH_CODE]
    manifest: dict[str, Any] = {"seed": seed, "sizes": sizes, "splits": list(SPLITS),
                                "languages": [v.code for v in langs], "variants": {}, "tasks": {},
                                "typology": "typology.csv", "covariates": "covariates.csv"}
    for v in langs:
        manifest["variants"][v.code] = {"name": v.name, "anchor": v.anchor, "params": asdict(v.params)}
    for name in names:
        task = TASKS[name]
        entry: dict[str, Any] = {"format": task.format, "role": task.role, "kind": task.kind,
                                 "labels": list(task.labels) if task.labels else None,
                                 "level": task.level, "constructions": list(task.constructions),
                                 "lexicon_size": len(task.grammar().lexicon), "splits": {}, "counts": {}}
        seen: set[str] = set()
        for split in task.splits:
            items = build_split(task, split, sizes[split], seed, exclude=seen)
            targets = langs if (task.role == "target" and split == "test") else [ENGLISH_VARIANT]
            for v in targets:
                rows = [render(task, it, v, f"{name}-{split}-{i}") for i, it in enumerate(items)]
                path = out / name / v.code / f"{split}.jsonl"
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(path, _jsonl(rows))
                entry["splits"].setdefault(v.code, []).append(split)
                entry["counts"].setdefault(v.code, {})[split] = len(rows)
        entry["languages"] = list(entry["splits"])
        manifest["tasks"][name] = entry
    typology, covariates = lab_typology_tables([v for v in langs if v.code != ENGLISH_CODE])
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "typology.csv", typology.to_csv(index=False))
    atomic_write_text(out / "covariates.csv", covariates.to_csv(index=False))
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest
