"""Tiny task files the tests generate: MNLI-format and XNLI-format NLI in 4 languages.

Templated sentences ("the dog is big" / "the dog is not big" / "the cat is big")
with a small word list per language give a learnable, exactly labelled NLI
task whose languages share structure, so transfer is possible in principle.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = {
    "eng": {"the": "the", "is": "is", "not": "not",
            "nouns": ["dog", "cat", "house", "tree", "car", "bird", "river", "city"],
            "adjs": ["big", "small", "red", "old", "new", "green", "fast", "quiet"]},
    "deu": {"the": "der", "is": "ist", "not": "nicht",
            "nouns": ["Hund", "Katze", "Haus", "Baum", "Auto", "Vogel", "Fluss", "Stadt"],
            "adjs": ["groß", "klein", "rot", "alt", "neu", "grün", "schnell", "leise"]},
    "fra": {"the": "le", "is": "est", "not": "pas",
            "nouns": ["chien", "chat", "maison", "arbre", "voiture", "oiseau", "fleuve", "ville"],
            "adjs": ["grand", "petit", "rouge", "vieux", "neuf", "vert", "rapide", "calme"]},
    "spa": {"the": "el", "is": "es", "not": "no",
            "nouns": ["perro", "gato", "casa", "árbol", "coche", "pájaro", "río", "ciudad"],
            "adjs": ["grande", "pequeño", "rojo", "viejo", "nuevo", "verde", "rápido", "tranquilo"]},
}
LABELS = ["entailment", "neutral", "contradiction"]


def nli_rows(lang: str, n: int, seed: int) -> list[dict]:
    w = WORDS[lang]
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        i, j = rng.randrange(8), rng.randrange(8)
        k = (i + 1 + rng.randrange(7)) % 8
        premise = f"{w['the']} {w['nouns'][i]} {w['is']} {w['adjs'][j]}"
        label = rng.randrange(3)
        if label == 0:
            hyp = premise
        elif label == 1:
            hyp = f"{w['the']} {w['nouns'][k]} {w['is']} {w['adjs'][j]}"
        else:
            hyp = f"{w['the']} {w['nouns'][i]} {w['is']} {w['not']} {w['adjs'][j]}"
        rows.append({"premise": premise, "hypothesis": hyp, "label": LABELS[label]})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_nli_fixtures(root: Path, *, train: int = 96, test: int = 24) -> Path:
    """root/mnli/eng/{train,dev}.jsonl (MNLI columns) and root/xnli/<lang>/{dev,test}.jsonl (XNLI columns)."""
    write_jsonl(root / "mnli" / "eng" / "train.jsonl", nli_rows("eng", train, 1))
    write_jsonl(root / "mnli" / "eng" / "dev.jsonl", nli_rows("eng", test, 2))
    for lang in WORDS:
        rows = [{"sentence1": r["premise"], "sentence2": r["hypothesis"], "gold_label": r["label"]}
                for r in nli_rows(lang, test, 3)]
        write_jsonl(root / "xnli" / lang / "test.jsonl", rows)
        if lang == "eng":
            write_jsonl(root / "xnli" / lang / "dev.jsonl", rows)
    return root
