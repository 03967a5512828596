"""Property tests for stopover.metrics: ranges, EM <= F1, order invariance, perfect scores."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stopover.metrics import (
    MLQA_LANGUAGES,
    accuracy,
    bucc_extract,
    bucc_f1,
    bucc_optimal_threshold,
    mlqa,
    mlqa_normalize,
    pos_scores,
    seqeval_f1,
    squad_normalize,
    squad_v1,
    squad_v2,
)

# Small, fast runs; no deadline because the first MLQA call builds its punctuation table.
FAST = settings(max_examples=60, deadline=None)

# Answer text drawn from pieces that exercise normalisation: articles, ASCII and
# Unicode punctuation, CJK, Arabic "ال", whitespace.
PIECES = ["the", "a", "an", "el", "der", "của", "ال", "cat", "Dog", "Paris", "1990", "北", "京",
          "书", ",", ".", "«", "»", "¿", "。", " ", "  ", "-"]
text = st.lists(st.sampled_from(PIECES), max_size=6).map(" ".join)
# Gold answers made of content words only, so they never normalise to "".
CONTENT = ["cat", "Dog", "Paris", "1990", "red", "house", "Rome"]
content_answer = st.lists(st.sampled_from(CONTENT), min_size=1, max_size=4).map(" ".join)

qa_v1_data = st.dictionaries(st.text("abcdef", min_size=1, max_size=3),
                             st.tuples(text, st.lists(text, min_size=1, max_size=3)),
                             min_size=1, max_size=6)
qa_v2_data = st.dictionaries(st.text("abcdef", min_size=1, max_size=3),
                             st.tuples(text, st.lists(text, max_size=3)),
                             min_size=1, max_size=6)


def split(data: dict[str, tuple[str, list[str]]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    return {q: p for q, (p, _) in data.items()}, {q: g for q, (_, g) in data.items()}


def in_range(scores: dict[str, float]) -> bool:
    return all(0.0 <= v <= 100.0 for v in scores.values())


@FAST
@given(qa_v1_data, st.sampled_from(sorted(MLQA_LANGUAGES)))
def test_qa_v1_style_scores_in_range(data: dict, language: str) -> None:
    preds, refs = split(data)
    assert in_range(squad_v1(preds, refs))
    assert in_range(mlqa(preds, refs, language))


@FAST
@given(qa_v2_data, st.booleans())
def test_squad_v2_in_range_and_em_never_exceeds_f1(data: dict, with_probs: bool) -> None:
    preds, refs = split(data)
    probs = {q: (len(q) % 3) / 2 for q in refs} if with_probs else None  # 0, .5, 1
    scores = squad_v2(preds, refs, no_answer_probs=probs, threshold=0.4)
    assert in_range(scores)
    assert scores["exact_match"] <= scores["f1"] + 1e-9
    for prefix in ("has_ans_", "no_ans_"):
        if f"{prefix}f1" in scores:
            assert scores[f"{prefix}exact_match"] <= scores[f"{prefix}f1"] + 1e-9


@FAST
@given(st.dictionaries(st.text("abcdef", min_size=1, max_size=3),
                       st.tuples(text, st.lists(content_answer, min_size=1, max_size=3)),
                       min_size=1, max_size=6),
       st.sampled_from(["en", "es", "de", "vi", "hi", "zh"]))
def test_em_never_exceeds_f1_when_golds_are_non_empty(data: dict, language: str) -> None:
    # v1.1 and MLQA give EM 1 but F1 0 when prediction and gold both normalise to ""
    # (see test_metrics); with golds that keep content, EM <= F1 holds.
    preds, refs = split(data)
    assert all(squad_normalize(g) for golds in refs.values() for g in golds)
    assert all(mlqa_normalize(g, language) for golds in refs.values() for g in golds)
    v1 = squad_v1(preds, refs)
    assert v1["exact_match"] <= v1["f1"] + 1e-9
    ml = mlqa(preds, refs, language)
    assert ml["exact_match"] <= ml["f1"] + 1e-9


@FAST
@given(qa_v2_data, st.randoms(use_true_random=False))
def test_squad_scores_ignore_example_order(data: dict, rng: random.Random) -> None:
    preds, refs = split(data)
    order = list(refs)
    rng.shuffle(order)
    shuffled_refs = {q: refs[q] for q in order}
    shuffled_preds = {q: preds[q] for q in reversed(order)}
    assert squad_v2(shuffled_preds, shuffled_refs) == pytest.approx(squad_v2(preds, refs))
    answerable = {q: g for q, g in refs.items() if g}
    if answerable:
        shuffled = {q: answerable[q] for q in order if q in answerable}
        assert squad_v1(shuffled_preds, shuffled) == pytest.approx(squad_v1(preds, answerable))


@FAST
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=30),
       st.randoms(use_true_random=False))
def test_accuracy_in_range_and_order_invariant(pairs: list[tuple[int, int]], rng: random.Random) -> None:
    shuffled = pairs[:]
    rng.shuffle(shuffled)
    scores = accuracy([p for p, _ in pairs], [g for _, g in pairs])
    assert in_range(scores)
    assert accuracy([p for p, _ in shuffled], [g for _, g in shuffled]) == pytest.approx(scores)
    assert accuracy([g for _, g in pairs], [g for _, g in pairs]) == {"accuracy": 100.0}


NER_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
UPOS = ["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
        "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"]
sentences = st.lists(st.lists(st.sampled_from(NER_TAGS), min_size=1, max_size=8), min_size=1, max_size=4)


@FAST
@given(sentences)
def test_seqeval_identical_input_is_perfect(gold: list[list[str]]) -> None:
    if all(tag == "O" for sentence in gold for tag in sentence):
        gold = gold + [["B-PER"]]  # F1 needs at least one entity to be defined
    assert seqeval_f1(gold, gold) == {"f1": 100.0, "precision": 100.0, "recall": 100.0}


@FAST
@given(sentences, st.randoms(use_true_random=False))
def test_seqeval_in_range(gold: list[list[str]], rng: random.Random) -> None:
    pred = [[rng.choice(NER_TAGS) for _ in sentence] for sentence in gold]
    assert in_range(seqeval_f1(pred, gold))


@FAST
@given(st.lists(st.lists(st.sampled_from(UPOS), min_size=1, max_size=8), min_size=1, max_size=4),
       st.randoms(use_true_random=False))
def test_pos_perfect_on_identical_and_in_range(gold: list[list[str]], rng: random.Random) -> None:
    assert pos_scores(gold, gold) == {"f1": 100.0, "token_accuracy": 100.0}
    pred = [[rng.choice(UPOS) for _ in sentence] for sentence in gold]
    assert in_range(pos_scores(pred, gold))


@FAST
@given(st.lists(st.integers(0, 40), min_size=1, max_size=12, unique=True),
       st.lists(st.booleans(), min_size=12, max_size=12), st.integers(0, 3))
def test_bucc_threshold_beats_every_other_cut(scores: list[int], is_gold: list[bool],
                                              unmatched_gold: int) -> None:
    # distinct scores: extracting at the chosen threshold is at least as good as at any score
    candidates = [(f"s{i}", f"t{i}", float(s)) for i, s in enumerate(scores)]
    gold = {(f"s{i}", f"t{i}") for i in range(len(scores)) if is_gold[i]}
    gold |= {(f"g{i}", f"h{i}") for i in range(unmatched_gold)}  # gold pairs never proposed
    threshold = bucc_optimal_threshold(candidates, gold)
    best = bucc_f1(bucc_extract(candidates, threshold), gold)
    assert in_range(best)
    for cut in scores:
        assert bucc_f1(bucc_extract(candidates, float(cut)), gold)["f1"] <= best["f1"] + 1e-9
