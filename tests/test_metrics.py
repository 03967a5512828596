"""Hand-worked cases for stopover.metrics: every expected value is worked out in the comments."""

from __future__ import annotations

import pytest

from stopover.errors import DataError, LanguageError
from stopover.metrics import (
    METRICS,
    PRIMARY_METRIC,
    _seqeval_v0_tag,
    accuracy,
    bucc_extract,
    bucc_f1,
    bucc_optimal_threshold,
    mlqa,
    mlqa_language,
    mlqa_normalize,
    pos_scores,
    qa_task_score,
    seqeval_f1,
    squad_normalize,
    squad_v1,
    squad_v2,
    tatoeba_accuracy,
    xtreme_aggregate,
)

approx = pytest.approx


# ----------------------------------------------------------------- accuracy


def test_accuracy_counts_equal_pairs() -> None:
    assert accuracy([1, 0, 2, 2], [1, 1, 2, 0]) == {"accuracy": 50.0}
    assert accuracy(["entailment"], ["entailment"]) == {"accuracy": 100.0}


@pytest.mark.parametrize("preds, refs", [([1, 2], [1]), ([], [])])
def test_accuracy_rejects_misaligned_or_empty(preds: list[int], refs: list[int]) -> None:
    with pytest.raises(DataError, match="accuracy"):
        accuracy(preds, refs)


def test_tatoeba_accuracy_defaults_to_identity_gold() -> None:
    # sources 0 and 3 retrieve their own translation; 1 and 2 are swapped
    assert tatoeba_accuracy([0, 2, 1, 3]) == {"accuracy": 50.0}
    assert tatoeba_accuracy([0, 2, 1, 3], gold_indices=[0, 2, 2, 2]) == {"accuracy": 50.0}


# ----------------------------------------------------------------- seqeval (PAN-X)


def test_seqeval_wrong_type_is_a_miss() -> None:
    # gold PER(0-1), LOC(3); pred PER(0-1), ORG(3): 1 of 2 correct each way
    scores = seqeval_f1([["B-PER", "I-PER", "O", "B-ORG"]], [["B-PER", "I-PER", "O", "B-LOC"]])
    assert scores == {"f1": approx(50.0), "precision": approx(50.0), "recall": approx(50.0)}


def test_seqeval_boundaries_and_micro_average_over_sentences() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["O"]]
    # pred PER(0) has the wrong span; LOC(3) right: tp 1, 2 predicted, 3 gold
    # P 1/2, R 1/3, F1 2*(1/2)(1/3)/(5/6) = 0.4
    assert seqeval_f1(pred, gold) == {"f1": approx(40.0), "precision": approx(50.0),
                                      "recall": approx(100 / 3)}


def test_seqeval_is_lenient_like_xtreme_and_never_spans_sentences() -> None:
    # default (non-strict) mode: an entity opened by I- counts, as in XTREME's call
    assert seqeval_f1([["I-PER", "I-PER"]], [["B-PER", "I-PER"]])["f1"] == approx(100.0)
    # I-PER at the start of sentence 2 is its own entity, not a continuation
    scores = seqeval_f1([["B-PER"], ["O"]], [["B-PER"], ["I-PER"]])
    assert scores == {"f1": approx(200 / 3), "precision": approx(100.0), "recall": approx(50.0)}


def test_seqeval_no_predicted_entities_scores_zero() -> None:
    assert seqeval_f1([["O", "O"]], [["B-LOC", "O"]]) == {"f1": 0.0, "precision": 0.0, "recall": 0.0}


def test_seqeval_rejects_tag_count_mismatch() -> None:
    with pytest.raises(DataError, match="sentence 1 has 1 predicted tags but 2 gold"):
        seqeval_f1([["O"], ["O"]], [["O"], ["O", "B-PER"]])


# ----------------------------------------------------------------- POS (seqeval on raw tags)


def test_pos_identical_tags_merge_into_chunks() -> None:
    # gold NOUN NOUN VERB = chunks NOUN(0-1), VERB(2); pred NOUN VERB VERB = NOUN(0), VERB(1-2):
    # no chunk matches, so the leaderboard F1 is 0 while 2 of 3 tokens are right
    scores = pos_scores([["NOUN", "VERB", "VERB"]], [["NOUN", "NOUN", "VERB"]])
    assert scores == {"f1": 0.0, "token_accuracy": approx(200 / 3)}


def test_pos_merging_can_also_give_full_credit() -> None:
    assert pos_scores([["NOUN", "NOUN", "VERB"]], [["NOUN", "NOUN", "VERB"]]) == {
        "f1": approx(100.0), "token_accuracy": approx(100.0)}
    # gold NOUN VERB NOUN = 3 chunks; pred NOUN NOUN NOUN = one chunk 0-2: nothing matches
    assert pos_scores([["NOUN", "NOUN", "NOUN"]], [["NOUN", "VERB", "NOUN"]])["f1"] == 0.0


def test_pos_first_letter_acts_as_iobes_prefix() -> None:
    # NOUN NOUN is one chunk, so pred NOUN VERB matches nothing ...
    assert pos_scores([["NOUN", "VERB"]], [["NOUN", "NOUN"]])["f1"] == 0.0
    # ... but "S" marks a single-token chunk: gold SCONJ SCONJ = SCONJ(0), SCONJ(1);
    # pred SCONJ VERB = SCONJ(0), VERB(1): tp 1 of 2 each way
    assert pos_scores([["SCONJ", "VERB"]], [["SCONJ", "SCONJ"]])["f1"] == approx(50.0)


def test_pos_uses_the_whole_tag_as_chunk_type_like_seqeval_0() -> None:
    # gold CCONJ(0) SCONJ(1) NOUN(2); pred NOUN(0) SCONJ(1) NOUN(2): tp 2, P = R = 2/3.
    # (seqeval >= 1.0 on raw tags reads both CONJ tags as type "CONJ", drops the CCONJ
    # chunk and gives 80.)
    scores = pos_scores([["NOUN", "SCONJ", "NOUN"]], [["CCONJ", "SCONJ", "NOUN"]])
    assert scores == {"f1": approx(200 / 3), "token_accuracy": approx(200 / 3)}
    # X is an ordinary chunk, also at the end of a sentence (seqeval >= 1.0 loses it)
    assert pos_scores([["X"]], [["X"]])["f1"] == approx(100.0)
    # gold NOUN(0) X(1); pred NOUN(0-1): nothing matches
    assert pos_scores([["NOUN", "NOUN"]], [["NOUN", "X"]]) == {"f1": 0.0, "token_accuracy": 50.0}


@pytest.mark.parametrize("tag, rewritten", [
    ("NOUN", "N-NOUN"), ("X", "X-X"), ("O", "O-O"), ("B-PER", "B-PER"), ("I-LOC", "I-LOC")])
def test_seqeval_v0_tag_reading(tag: str, rewritten: str) -> None:
    assert _seqeval_v0_tag(tag) == rewritten


def test_pos_token_accuracy_spans_sentences() -> None:
    scores = pos_scores([["DET", "NOUN"], ["VERB"]], [["DET", "NOUN"], ["NOUN"]])
    assert scores["token_accuracy"] == approx(200 / 3)


def test_pos_rejects_empty_input() -> None:
    with pytest.raises(DataError, match="every sentence is empty"):
        pos_scores([[]], [[]])
    with pytest.raises(DataError, match="sentence 0 has an empty tag"):
        pos_scores([["NOUN", ""]], [["NOUN", "VERB"]])


# ----------------------------------------------------------------- SQuAD v1.1


@pytest.mark.parametrize("text, normalised", [
    ("The  Eiffel-Tower!", "eiffeltower"),          # punctuation dropped without a space
    ("an apple, a day", "apple day"),
    ("Theatre of the Absurd", "theatre of absurd"),  # articles only as whole words
    ("«Paris»", "«paris»"),                          # SQuAD removes ASCII punctuation only
    ("  ", ""),
])
def test_squad_normalize(text: str, normalised: str) -> None:
    assert squad_normalize(text) == normalised


def test_squad_v1_max_over_gold_answers() -> None:
    refs = {"q1": ["Denver Broncos", "The Denver Broncos"],
            "q2": ["Carolina Panthers"],
            "q3": ["Santa Clara, California"]}
    preds = {"q1": "the Denver Broncos.",            # EM 1, F1 1
             "q2": "Panthers",                        # P 1, R 1/2: F1 2/3
             "q3": "Levi's Stadium in Santa Clara"}   # 2 common of 5 pred / 3 gold: F1 1/2
    scores = squad_v1(preds, refs)
    assert scores == {"exact_match": approx(100 / 3), "f1": approx(100 * (1 + 2 / 3 + 1 / 2) / 3)}


def test_squad_v1_missing_prediction_scores_zero_and_extra_ids_are_ignored() -> None:
    refs = {"a": ["Paris"], "b": ["Rome"]}
    assert squad_v1({"a": "paris", "zzz": "Rome"}, refs) == {"exact_match": 50.0, "f1": 50.0}


def test_squad_v1_empty_normalised_answers_match_exactly_but_have_zero_f1() -> None:
    # the official v1.1 quirk: "the" and "a" both normalise to "", so EM is 1, F1 0
    assert squad_v1({"q": "the"}, {"q": ["a"]}) == {"exact_match": 100.0, "f1": 0.0}


def test_squad_v1_rejects_unanswerable_reference() -> None:
    with pytest.raises(DataError, match="squad_v2"):
        squad_v1({"q": ""}, {"q": []})


# ----------------------------------------------------------------- SQuAD v2.0


REFS_V2 = {"a": ["Denver Broncos"], "b": [], "c": ["Paris"], "d": []}
PREDS_V2 = {"a": "Broncos", "b": "", "c": "", "d": "London"}


def test_squad_v2_answerable_and_unanswerable() -> None:
    # a: EM 0, F1 2/3; b: correct abstention 1/1; c: wrong abstention 0/0; d: answered 0/0
    assert squad_v2(PREDS_V2, REFS_V2) == {
        "exact_match": approx(25.0), "f1": approx(100 * (2 / 3 + 1) / 4),
        "has_ans_exact_match": approx(0.0), "has_ans_f1": approx(100 / 3),
        "no_ans_exact_match": approx(50.0), "no_ans_f1": approx(50.0),
    }


def test_squad_v2_no_answer_threshold() -> None:
    # probabilities above 0.5 abstain: c (answerable) -> 0, d (unanswerable) -> 1
    probs = {"a": 0.2, "b": 0.1, "c": 0.9, "d": 0.8}
    scores = squad_v2(PREDS_V2, REFS_V2, no_answer_probs=probs, threshold=0.5)
    assert scores["exact_match"] == approx(50.0)
    assert scores["f1"] == approx(100 * (2 / 3 + 1 + 0 + 1) / 4)
    assert scores["no_ans_exact_match"] == approx(100.0)
    # the default threshold 1.0 never triggers on probabilities <= 1
    assert squad_v2(PREDS_V2, REFS_V2, no_answer_probs=probs) == squad_v2(PREDS_V2, REFS_V2)


def test_squad_v2_drops_gold_answers_that_normalise_to_empty() -> None:
    # ["the", "!!"] is a non-empty answer list (HasAns), but both normalise to "",
    # so the only correct answer left is the abstention ""
    scores = squad_v2({"q": ""}, {"q": ["the", "!!"]})
    assert scores == {"exact_match": 100.0, "f1": 100.0,
                      "has_ans_exact_match": 100.0, "has_ans_f1": 100.0}
    assert squad_v2({"q": "the"}, {"q": ["the"]})["f1"] == 100.0  # both sides empty: F1 1


def test_squad_v2_breakdown_keys_only_for_present_subsets() -> None:
    assert set(squad_v2({"q": "x"}, {"q": ["x"]})) == {
        "exact_match", "f1", "has_ans_exact_match", "has_ans_f1"}


def test_squad_v2_requires_every_prediction_and_probability() -> None:
    with pytest.raises(DataError, match="no prediction"):
        squad_v2({"a": "x"}, {"a": ["x"], "b": []})
    with pytest.raises(DataError, match="no_answer_probs"):
        squad_v2({"a": "x"}, {"a": ["x"]}, no_answer_probs={})


# ----------------------------------------------------------------- MLQA


@pytest.mark.parametrize("language, text, normalised", [
    ("en", "The cat and a dog", "cat and dog"),
    ("es", "El gato y la casa de unos amigos", "gato y casa de amigos"),
    ("de", "Der Hund, die Katze und ein Haus", "hund katze und haus"),
    ("vi", "những con mèo của tôi", "con mèo tôi"),
    ("ar", "الكتاب", "كتاب"),
    ("ar", "سالم", "س م"),            # official pattern removes "ال" even inside a word
    ("hi", "एक किताब।", "एक किताब"),   # no articles; the danda is Unicode punctuation
    ("zh", "the 书", "the 书"),        # no articles for Chinese
    ("en", "«Paris» — ¿qué?", "paris qué"),  # all Unicode P* categories are removed
])
def test_mlqa_normalize_articles_and_punctuation(language: str, text: str, normalised: str) -> None:
    assert mlqa_normalize(text, language) == normalised


def test_mlqa_chinese_mixed_segmentation() -> None:
    # each char in U+4E00..U+9FA5 is a token; runs of other chars split on whitespace
    assert mlqa_normalize("北京大学 Peking University。", "zh") == "北 京 大 学 peking university"
    assert mlqa_normalize("ab中cd ef", "zh") == "ab 中 cd ef"
    # U+9FA6 is past the official range, so it stays glued to its run
    assert mlqa_normalize("x\u9fa6y中", "zh") == "x\u9fa6y 中"


def test_mlqa_chinese_partial_credit_comes_from_segmentation() -> None:
    refs, preds = {"q": ["北京"]}, {"q": "北京大学"}
    # zh: 2 common of 4 pred / 2 gold chars: P 1/2, R 1, F1 2/3
    assert mlqa(preds, refs, "zh") == {"exact_match": 0.0, "f1": approx(200 / 3)}
    # whitespace languages see one token each: no overlap
    assert mlqa(preds, refs, "en") == {"exact_match": 0.0, "f1": 0.0}


def test_mlqa_scores_with_language_articles() -> None:
    refs = {"1": ["el Museo del Prado"], "2": ["Madrid"]}
    preds = {"1": "Museo del Prado", "2": "en Madrid, España"}
    # 1: EM after dropping "el"; 2: 1 common of 3 pred / 1 gold: F1 2*(1/3)/(4/3) = 1/2
    assert mlqa(preds, refs, "es") == {"exact_match": 50.0, "f1": approx(75.0)}


def test_mlqa_accepts_iso_639_1_and_3() -> None:
    refs, preds = {"q": ["die Katze"]}, {"q": "Katze"}
    assert mlqa(preds, refs, "deu") == mlqa(preds, refs, "de") == {"exact_match": 100.0, "f1": 100.0}
    assert [mlqa_language(c) for c in ("eng", "spa", "ara", "hin", "vie", "zho")] == [
        "en", "es", "ar", "hi", "vi", "zh"]


def test_mlqa_rejects_other_languages() -> None:
    with pytest.raises(LanguageError, match="'fra'"):
        mlqa({"q": "x"}, {"q": ["x"]}, "fra")


# ----------------------------------------------------------------- BUCC


def test_bucc_f1() -> None:
    pred = {("s1", "t1"), ("s2", "t2"), ("s3", "t9")}
    gold = {("s1", "t1"), ("s2", "t2"), ("s4", "t4"), ("s5", "t5")}
    # 2 correct: P 2/3, R 1/2, F1 (2/3)/(7/6) = 4/7
    assert bucc_f1(pred, gold) == {"precision": approx(200 / 3), "recall": approx(50.0),
                                   "f1": approx(400 / 7)}
    assert bucc_f1({("s3", "t9")}, gold) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


CANDIDATES = [("s1", "t1", 0.9), ("s2", "t9", 0.8), ("s3", "t3", 0.7),
              ("s4", "t4", 0.6), ("s5", "t8", 0.3), ("s6", "t7", 0.2)]
GOLD = {("s1", "t1"), ("s3", "t3"), ("s4", "t4"), ("s9", "t9")}


def test_bucc_threshold_sweep() -> None:
    # sweeping down: F1 after each candidate = .4, .33, .571, .75, .667, .6;
    # the best (.75) is after s4 (0.6), so the threshold is (0.6 + 0.3) / 2
    threshold = bucc_optimal_threshold(CANDIDATES, GOLD)
    assert threshold == approx(0.45)
    extracted = bucc_extract(CANDIDATES, threshold)
    assert extracted == {("s1", "t1"), ("s2", "t9"), ("s3", "t3"), ("s4", "t4")}
    assert bucc_f1(extracted, GOLD)["f1"] == approx(75.0)


def test_bucc_duplicate_candidates_keep_their_best_score() -> None:
    candidates = [("s1", "t1", 0.1), ("s2", "t2", 0.5), ("s1", "t1", 0.9)]
    # s1-t1 counts at 0.9 (its best) and sorts first: F1 is 1 there, so the threshold
    # is halfway to the next score, (0.9 + 0.5) / 2
    assert bucc_optimal_threshold(candidates, {("s1", "t1")}) == approx(0.7)


def test_bucc_best_at_last_candidate_uses_its_score() -> None:
    # F1 rises to 2/3 only at the last candidate; the official code would index past
    # the end, so the threshold is that candidate's score, which keeps both pairs
    candidates = [("a", "x", 0.5), ("b", "y", 0.4)]
    assert bucc_optimal_threshold(candidates, {("b", "y")}) == 0.4
    assert bucc_extract(candidates, 0.4) == {("a", "x"), ("b", "y")}


def test_bucc_no_gold_candidate_gives_threshold_zero() -> None:
    assert bucc_optimal_threshold([("a", "x", 0.5)], {("b", "y")}) == 0.0


def test_bucc_rejects_non_finite_scores() -> None:
    with pytest.raises(DataError, match="finite"):
        bucc_optimal_threshold([("a", "x", float("nan"))], {("a", "x")})


# ----------------------------------------------------------------- XTREME aggregate


def test_qa_task_score() -> None:
    assert qa_task_score(70.0, 80.0) == 75.0


def test_xtreme_aggregate_means_languages_then_tasks() -> None:
    result = xtreme_aggregate({
        "xnli": {"eng": 80.0, "deu": 70.0},                                  # 75
        "xquad": {"eng": {"exact_match": 60.0, "f1": 80.0},                  # 70
                  "deu": {"exact_match": 40.0, "f1": 60.0}},                 # 50 -> 60
        "panx": {"eng": {"f1": 90.0, "precision": 10.0, "recall": 20.0}},   # 90
        "tatoeba": {"deu": {"accuracy": 30.0}},                              # 30
    })
    assert result == {"xtreme": approx(63.75),
                      "tasks": {"xnli": 75.0, "xquad": 60.0, "panx": 90.0, "tatoeba": 30.0}}


@pytest.mark.parametrize("scores, message", [
    ({}, "no tasks"),
    ({"xnli": {}}, "no language scores"),
    ({"xnli": {"eng": float("nan")}}, "finite"),
    ({"xnli": {"eng": {"precision": 1.0}}}, "exact_match\\+f1, f1 or accuracy"),
])
def test_xtreme_aggregate_rejects_bad_input(scores: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        xtreme_aggregate(scores)


# ----------------------------------------------------------------- registry


def test_every_metric_has_a_primary_key_it_returns() -> None:
    samples = {
        "accuracy": ([1], [1]),
        "seqeval_f1": ([["B-PER"]], [["B-PER"]]),
        "pos": ([["NOUN"]], [["NOUN"]]),
        "squad_v1": ({"q": "x"}, {"q": ["x"]}),
        "squad_v2": ({"q": ""}, {"q": []}),
        "mlqa": ({"q": "x"}, {"q": ["x"]}, "en"),
        "bucc": ({("a", "b")}, {("a", "b")}),
        "tatoeba": ([0, 1],),
    }
    assert set(METRICS) == set(PRIMARY_METRIC) == set(samples)
    for name, fn in METRICS.items():
        assert fn(*samples[name])[PRIMARY_METRIC[name]] == 100.0, name


def test_registered_tasks_name_known_metrics() -> None:
    from stopover.tasks import all_tasks

    for task in all_tasks():
        assert task.metric in METRICS, task.name
