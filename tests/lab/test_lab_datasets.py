"""stopover.lab.datasets: files, shapes, parallel test sets, QA offsets, determinism, graded diversity."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from stopover.errors import ConfigError
from stopover.lab.datasets import (
    INTERMEDIATE_TASKS,
    LEVELS,
    NER_LABELS,
    TARGET_TASKS,
    TASKS,
    build_split,
    english_key,
    write_lab_data,
)
from stopover.lab.facts import NLI_LABELS, nli_label
from stopover.lab.tree import UPOS
from stopover.lab.variants import default_variants

SIZES = {"train": 12, "dev": 6, "test": 6}
KEYS = {"classification": {"text_a", "text_b", "label"}, "tagging": {"tokens", "tags"},
        "span_qa": {"id", "question", "context", "answers"}, "retrieval": {"source", "target"}}


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def variants():
    return default_variants()


@pytest.fixture(scope="module")
def written(tmp_path_factory, variants):
    out = tmp_path_factory.mktemp("lab")
    manifest = write_lab_data(out, variants, SIZES, seed=3)
    return out, manifest


def test_layout_and_manifest(written, variants):
    out, manifest = written
    codes = ["eng"] + [v.code for v in variants]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["seed"] == 3 and manifest["languages"] == codes
    assert manifest["sizes"] == SIZES
    assert set(manifest["tasks"]) == set(TASKS)
    for name, entry in manifest["tasks"].items():
        task = TASKS[name]
        assert entry["format"] == task.format
        assert entry["labels"] == (list(task.labels) if task.labels else None)
        for lang in entry["languages"]:
            for split in entry["splits"][lang]:
                rows = _read(out / name / lang / f"{split}.jsonl")
                assert len(rows) == SIZES[split] == entry["counts"][lang][split]
                assert all(set(r) == KEYS[task.format] for r in rows)
        if task.role == "target":
            assert entry["languages"] == codes
            assert all(entry["splits"][c] == ["test"] for c in codes[1:])
            assert entry["splits"]["eng"] == (["test"] if task.kind == "retrieval" else ["train", "dev", "test"])
        else:
            assert entry["languages"] == ["eng"] and entry["splits"]["eng"] == ["train", "dev", "test"]
    assert manifest["tasks"]["lab-nli"]["labels"] == list(NLI_LABELS)
    assert manifest["tasks"]["lab-ner"]["labels"] == list(NER_LABELS)


def test_typology_files(written, variants):
    out, _ = written
    typ = pd.read_csv(out / "typology.csv")
    cov = pd.read_csv(out / "covariates.csv")
    assert list(typ.columns) == ["language", "kind", "distance", "backend"]
    assert set(typ.language) == set(cov.language) == {"eng"} | {v.code for v in variants}


def test_test_sets_are_parallel(written, variants):
    out, _ = written
    eng = {t.name: _read(out / t.name / "eng" / "test.jsonl") for t in TARGET_TASKS}
    for v in variants:
        rows = {t.name: _read(out / t.name / v.code / "test.jsonl") for t in TARGET_TASKS}
        assert [r["label"] for r in rows["lab-nli"]] == [r["label"] for r in eng["lab-nli"]]
        assert [r["target"] for r in rows["lab-retrieval"]] == [r["source"] for r in eng["lab-retrieval"]]
        assert [r["id"] for r in rows["lab-qa"]] == [r["id"] for r in eng["lab-qa"]]
        for mine, ref in zip(rows["lab-pos"], eng["lab-pos"]):  # same clauses, same entities
            assert mine["tags"].count("VERB") == ref["tags"].count("VERB")
            assert len(mine["tokens"]) == len(mine["tags"]) and set(mine["tags"]) <= set(UPOS)
        for mine, ref in zip(rows["lab-ner"], eng["lab-ner"]):
            assert sorted(t for t in mine["tags"] if t.startswith("B-")) == \
                sorted(t for t in ref["tags"] if t.startswith("B-"))
        if not v.params.spaces:
            assert all(" " not in r["text_a"] for r in rows["lab-nli"])


def test_qa_answers_are_substrings_at_answer_start(written, variants):
    out, manifest = written
    for name, entry in manifest["tasks"].items():
        if entry["format"] != "span_qa":
            continue
        for lang, splits in entry["splits"].items():
            for split in splits:
                for r in _read(out / name / lang / f"{split}.jsonl"):
                    (text,), (start,) = r["answers"]["text"], r["answers"]["answer_start"]
                    assert text and r["context"][start:start + len(text)] == text, (name, lang, r)


def test_english_nli_labels_follow_from_facts():
    items = build_split("lab-nli", "dev", 30, seed=1)
    assert sorted(it.label for it in items) == [0] * 10 + [1] * 10 + [2] * 10  # balanced
    for it in items:
        assert nli_label(it.premise.events, it.hypothesis.events[0]) == NLI_LABELS[it.label]


def test_splits_do_not_overlap():
    task = TASKS["lab-int-narrow-nli"]
    seen: set[str] = set()
    train = build_split(task, "train", 60, seed=0, exclude=seen)
    test = build_split(task, "test", 30, seed=0, exclude=seen)
    assert not {english_key(task, it) for it in train} & {english_key(task, it) for it in test}


def test_same_seed_same_files(tmp_path, variants):
    few = variants[:2]
    tasks = ["lab-nli", "lab-qa", "lab-int-small-nli"]
    sizes = {"train": 8, "dev": 4, "test": 4}
    write_lab_data(tmp_path / "a", few, sizes, seed=5, tasks=tasks)
    write_lab_data(tmp_path / "b", few, sizes, seed=5, tasks=tasks)
    write_lab_data(tmp_path / "c", few, sizes, seed=6, tasks=tasks)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 2 * 3 + 2 * 2 + 3 + 3  # eng splits, variant tests, int splits, csv + json
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a" / "lab-nli/eng/train.jsonl").read_bytes() != \
        (tmp_path / "c" / "lab-nli/eng/train.jsonl").read_bytes()


def _types(texts: list[str]) -> int:
    return len({w for t in texts for w in re.findall(r"[a-z]+", t.lower())})


@pytest.mark.parametrize("fmt", ["nli", "qa"])
def test_intermediate_levels_grow_in_lexical_variety(fmt):
    counts = []
    for level in LEVELS:
        task = TASKS[f"lab-int-{level}-{fmt}"]
        texts = [english_key(task, it) for it in build_split(task, "train", 150, seed=0)]
        counts.append(_types(texts))
    assert counts == sorted(counts) and len(set(counts)) == len(counts), counts
    assert len(INTERMEDIATE_TASKS) == 2 * len(LEVELS) >= 8


def test_bad_arguments_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="split"):
        write_lab_data(tmp_path, [], {"valid": 3})
    with pytest.raises(ConfigError, match="positive integer"):
        write_lab_data(tmp_path, [], {"test": 0})
    with pytest.raises(ConfigError, match="unknown lab task"):
        write_lab_data(tmp_path, [], tasks=["lab-xnli"])
