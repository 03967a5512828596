"""Metric properties that tests/test_metrics_properties.py does not cover: sentence-order
invariance of tagging scores, F1 between precision and recall, BUCC and Tatoeba ranges and
invariances, MLQA order invariance, perfect answers, the XTREME aggregate, and misuse raising
DataError (never another exception) whatever the tag strings."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stopover.errors import DataError
from stopover.metrics import (
    accuracy,
    bucc_f1,
    mlqa,
    pos_scores,
    seqeval_f1,
    squad_normalize,
    squad_v1,
    tatoeba_accuracy,
    xtreme_aggregate,
)

FAST = settings(max_examples=60, deadline=None)
NER = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
UPOS = ["ADJ", "ADP", "NOUN", "SCONJ", "SYM", "INTJ", "VERB", "X", "CCONJ"]


def paired(tags: list[str]) -> st.SearchStrategy[tuple[list[list[str]], list[list[str]]]]:
    """(pred, gold) sentence lists of matching lengths over `tags`."""
    sentence = st.integers(1, 7).flatmap(lambda n: st.tuples(st.lists(st.sampled_from(tags), min_size=n, max_size=n),
                                                            st.lists(st.sampled_from(tags), min_size=n, max_size=n)))
    return st.lists(sentence, min_size=1, max_size=5).map(lambda ps: ([p for p, _ in ps], [g for _, g in ps]))


def in_range(scores: dict[str, float]) -> bool:
    return all(0.0 <= v <= 100.0 for v in scores.values())


@FAST
@given(paired(NER), st.randoms(use_true_random=False))
def test_seqeval_ignores_sentence_order_and_f1_lies_between_p_and_r(data, rng: random.Random):
    pred, gold = data
    order = list(range(len(gold)))
    rng.shuffle(order)
    scores = seqeval_f1(pred, gold)
    assert seqeval_f1([pred[i] for i in order], [gold[i] for i in order]) == pytest.approx(scores)
    low, high = sorted((scores["precision"], scores["recall"]))
    assert low - 1e-9 <= scores["f1"] <= high + 1e-9  # a harmonic mean


@FAST
@given(paired(UPOS), st.randoms(use_true_random=False))
def test_pos_ignores_sentence_order(data, rng: random.Random):
    pred, gold = data
    order = list(range(len(gold)))
    rng.shuffle(order)
    assert pos_scores([pred[i] for i in order], [gold[i] for i in order]) == pytest.approx(pos_scores(pred, gold))
    assert in_range(pos_scores(pred, gold))


odd_tags = st.text(alphabet="BIOESX-_ ", min_size=1, max_size=4)


@FAST
@given(paired(["O"]).flatmap(lambda d: st.tuples(st.just(d), st.lists(odd_tags, min_size=40, max_size=40))))
def test_tagging_metrics_on_arbitrary_tag_strings(args):
    """Any non-empty tag strings: scores in range (seqeval must not crash on "B-", "-", "E_X")."""
    (pred, gold), pool = args
    it = iter(pool * 2)
    pred = [[next(it) for _ in s] for s in pred]
    gold = [[next(it) for _ in s] for s in gold]
    assert in_range(seqeval_f1(pred, gold))
    assert in_range(pos_scores(pred, gold))


@pytest.mark.parametrize("call", [
    lambda: accuracy([1, 2], [1]),
    lambda: accuracy([], []),
    lambda: seqeval_f1([["O", "O"]], [["O"]]),
    lambda: seqeval_f1([["O"]], [["O"], ["O"]]),
    lambda: seqeval_f1([[""]], [["O"]]),
    lambda: pos_scores([[]], [[]]),
    lambda: squad_v1({"q": "a"}, {}),
    lambda: squad_v1({"q": "a"}, {"q": []}),
    lambda: xtreme_aggregate({}),
    lambda: xtreme_aggregate({"xnli": {"deu": float("nan")}}),
    lambda: xtreme_aggregate({"xnli": {"deu": {"bleu": 3.0}}}),
], ids=["acc-lengths", "acc-empty", "seqeval-sentence-length", "seqeval-count", "seqeval-empty-tag",
        "pos-no-tokens", "squad-no-refs", "squad-no-gold", "xtreme-empty", "xtreme-nan", "xtreme-unknown-metric"])
def test_misuse_is_a_data_error(call):
    with pytest.raises(DataError):
        call()


pairs = st.sets(st.tuples(st.sampled_from("abcdef"), st.sampled_from("uvwxyz")), max_size=12)


@FAST
@given(pairs, pairs)
def test_bucc_f1_range_symmetry_and_perfect(pred, gold):
    scores = bucc_f1(pred, gold)
    assert in_range(scores)
    swapped = bucc_f1(gold, pred)  # swapping roles swaps precision and recall, F1 stays
    assert swapped["f1"] == pytest.approx(scores["f1"])
    assert swapped["precision"] == pytest.approx(scores["recall"])
    assert bucc_f1(list(reversed(sorted(pred))), gold) == scores  # pairs are a set: order is irrelevant
    if gold:
        assert bucc_f1(gold, gold) == {"precision": 100.0, "recall": 100.0, "f1": 100.0}
    if scores["f1"] > 0:
        low, high = sorted((scores["precision"], scores["recall"]))
        assert low - 1e-9 <= scores["f1"] <= high + 1e-9


@FAST
@given(st.lists(st.integers(0, 9), min_size=1, max_size=20), st.randoms(use_true_random=False))
def test_tatoeba_accuracy_range_identity_and_order(pred, rng: random.Random):
    assert in_range(tatoeba_accuracy(pred))
    assert tatoeba_accuracy(list(range(len(pred)))) == {"accuracy": 100.0}
    gold = list(range(len(pred)))
    order = list(range(len(pred)))
    rng.shuffle(order)
    assert tatoeba_accuracy([pred[i] for i in order], [gold[i] for i in order]) == pytest.approx(
        tatoeba_accuracy(pred))


CONTENT = ["cat", "Dog", "Paris", "1990", "red", "house", "Rome", "Haus", "perro"]
answer = st.lists(st.sampled_from(CONTENT), min_size=1, max_size=3).map(" ".join)
qa = st.dictionaries(st.text("abcdef", min_size=1, max_size=3), st.tuples(answer, st.lists(answer, min_size=1, max_size=3)),
                     min_size=1, max_size=6)


@FAST
@given(qa, st.sampled_from(["en", "es", "de", "ar", "hi", "vi", "zh"]), st.randoms(use_true_random=False))
def test_mlqa_ignores_order_and_stays_in_range(data, language, rng: random.Random):
    preds = {q: p for q, (p, _) in data.items()}
    refs = {q: g for q, (_, g) in data.items()}
    order = list(refs)
    rng.shuffle(order)
    scores = mlqa(preds, refs, language)
    assert in_range(scores) and scores["exact_match"] <= scores["f1"] + 1e-9
    assert mlqa({q: preds[q] for q in reversed(order)}, {q: refs[q] for q in order}, language) == pytest.approx(scores)


@FAST
@given(qa)
def test_a_gold_answer_scores_100_and_a_missing_prediction_scores_0(data):
    refs = {q: g for q, (_, g) in data.items()}
    perfect = {q: random.Random(q).choice(g) for q, g in refs.items()}
    assert squad_v1(perfect, refs) == {"exact_match": 100.0, "f1": 100.0}
    assert mlqa(perfect, refs, "de") == {"exact_match": 100.0, "f1": 100.0}
    first = next(iter(refs))
    partial = squad_v1({q: p for q, p in perfect.items() if q != first}, refs)
    assert partial["f1"] == pytest.approx(100.0 * (len(refs) - 1) / len(refs))
    assert all(squad_normalize(g) for g in perfect.values())


@FAST
@given(st.dictionaries(st.sampled_from(["xnli", "pawsx", "udpos", "xquad"]),
                       st.dictionaries(st.sampled_from(["eng", "deu", "swh", "tha"]),
                                       st.floats(0, 100), min_size=1, max_size=4), min_size=1, max_size=4))
def test_xtreme_aggregate_is_a_mean_of_means_in_range(scores):
    out = xtreme_aggregate(scores)
    assert 0.0 <= out["xtreme"] <= 100.0
    for task, langs in scores.items():
        assert out["tasks"][task] == pytest.approx(sum(langs.values()) / len(langs))
    reordered = {t: dict(reversed(list(scores[t].items()))) for t in reversed(list(scores))}
    assert xtreme_aggregate(reordered)["xtreme"] == pytest.approx(out["xtreme"])
    assert min(out["tasks"].values()) - 1e-9 <= out["xtreme"] <= max(out["tasks"].values()) + 1e-9
