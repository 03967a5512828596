"""Evaluation metrics, each exactly as the official scorer of its benchmark defines it.

This module owns every score stopover reports: accuracy (XNLI, PAWS-X,
Tatoeba, multiple choice), seqeval entity F1 (PAN-X), seqeval F1 on raw POS
tags plus token accuracy (UD POS), SQuAD v1.1 and v2.0 EM/F1 (XQuAD, TyDiQA-GoldP,
SQuAD), MLQA EM/F1, BUCC precision/recall/F1 with its threshold sweep, and the
XTREME aggregate. Every function returns a dict of metric name -> float on a
0-100 scale, as XTREME reports. Pure Python (seqeval for chunking); no torch.

Reference implementations reproduced here (read via the project's code search):
  - SQuAD v1.1: rajpurkar's `evaluate-v1.1.py` (also XTREME's `third_party/evaluate_squad.py`).
  - SQuAD v2.0: rajpurkar's `evaluate-v2.0.py`.
  - MLQA: facebookresearch/MLQA `mlqa_evaluation_v1.py` (also XTREME's `third_party/evaluate_mlqa.py`).
  - BUCC: google-research/xtreme `third_party/utils_retrieve.py` (`bucc_optimize`,
    `bucc_extract`, `bucc_eval`), itself from LASER's `bucc.py`.
  - Tagging, accuracy, BUCC F1 and the aggregate: google-research/xtreme `evaluate.py`.

`METRICS` names each metric function (tasks declare `metric=` with one of its
keys) and `PRIMARY_METRIC` names the headline key of each.

Size: one concept (every XTREME metric, each beside the official script it follows),
over 400 lines because the metrics are short and many.
"""

from __future__ import annotations

import logging
import math
import re
import string
import sys
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, cast

from stopover.errors import DataError, LanguageError

log = logging.getLogger(__name__)

Scores = dict[str, float]


# --------------------------------------------------------------------------- helpers


def _ratio(numerator: float, denominator: float) -> float:
    return 100.0 * numerator / denominator


def _check_pairs(what: str, predictions: Sequence[Any], references: Sequence[Any]) -> None:
    """Predictions and references must align one to one and be non-empty."""
    if len(predictions) != len(references):
        raise DataError(f"{what}: {len(predictions)} predictions but {len(references)} references; "
                        "pass one prediction per reference example, in the same order")
    if len(references) == 0:
        raise DataError(f"{what}: no examples to score; pass at least one prediction/reference pair")


# --------------------------------------------------------------------------- accuracy


def accuracy(predictions: Sequence[Hashable], references: Sequence[Hashable]) -> Scores:
    """Share of predictions equal to their reference (XNLI, PAWS-X, Tatoeba, multiple choice).

    As XTREME `evaluate.accuracy`: correct / number of examples, times 100.
    """
    predictions, references = list(predictions), list(references)
    _check_pairs("accuracy", predictions, references)
    correct = sum(1 for p, r in zip(predictions, references) if p == r)
    return {"accuracy": _ratio(correct, len(references))}


def tatoeba_accuracy(predicted_indices: Sequence[int],
                     gold_indices: Sequence[int] | None = None) -> Scores:
    """Tatoeba retrieval accuracy: share of source sentences whose nearest target is the gold one.

    `predicted_indices[i]` is the index of the target retrieved for source i.
    XTREME's Tatoeba gold is the identity alignment (source i translates target i),
    which is what `gold_indices=None` means.
    """
    predicted = [int(i) for i in predicted_indices]
    gold = list(range(len(predicted))) if gold_indices is None else [int(i) for i in gold_indices]
    return accuracy(predicted, gold)


# --------------------------------------------------------------------------- tagging


def _check_tags(what: str, pred_tags: Sequence[Sequence[str]],
                gold_tags: Sequence[Sequence[str]]) -> tuple[list[list[str]], list[list[str]]]:
    pred = [list(s) for s in pred_tags]
    gold = [list(s) for s in gold_tags]
    _check_pairs(what, pred, gold)
    for i, (p, g) in enumerate(zip(pred, gold)):
        if len(p) != len(g):
            raise DataError(f"{what}: sentence {i} has {len(p)} predicted tags but {len(g)} gold tags; "
                            "predict exactly one tag per gold token")
        if "" in p or "" in g:
            raise DataError(f"{what}: sentence {i} has an empty tag string; every token needs a tag")
    return pred, gold


def _seqeval_scores(pred: list[list[str]], gold: list[list[str]]) -> Scores:
    # The call XTREME's evaluate.f1 makes: seqeval's default (lenient, non-strict)
    # chunking, micro-averaged over all chunks of all sentences.
    from seqeval.metrics import f1_score, precision_score, recall_score

    with warnings.catch_warnings():
        # seqeval warns for every non-IOB tag ("NOUN seems not to be NE tag") and
        # when there are no predicted/gold chunks (the score is then 0, as XTREME reports).
        warnings.simplefilter("ignore")
        # seqeval annotates a per-class list too (average=None); the micro average is one float
        return {
            "f1": 100.0 * float(cast(float, f1_score(gold, pred))),
            "precision": 100.0 * float(cast(float, precision_score(gold, pred))),
            "recall": 100.0 * float(cast(float, recall_score(gold, pred))),
        }


def seqeval_f1(pred_tags: Sequence[Sequence[str]], gold_tags: Sequence[Sequence[str]]) -> Scores:
    """Micro entity F1/precision/recall over IOB2 tags (PAN-X), as XTREME scores it.

    An entity counts as correct only when its type and both boundaries match.
    Sentences never share a chunk (seqeval puts an "O" between them).
    """
    pred, gold = _check_tags("seqeval_f1", pred_tags, gold_tags)
    return _seqeval_scores(pred, gold)


def _seqeval_v0_tag(tag: str) -> str:
    """Rewrite a tag so seqeval 1.x chunks it as seqeval 0.0.x (XTREME's) did.

    seqeval 0.0.x read a tag as (tag[0], tag.split("-")[-1]); 1.x reads
    (tag[0], tag[1:].split("-", 1)[-1] or "_"). "N-NOUN" gives 1.x the old
    reading of "NOUN"; IOB tags such as "B-PER" are unchanged.
    """
    return f"{tag[0]}-{tag.split('-')[-1]}"


def pos_scores(pred_tags: Sequence[Sequence[str]], gold_tags: Sequence[Sequence[str]]) -> Scores:
    """UD POS scores: `f1` as the XTREME leaderboard computes it, and `token_accuracy`.

    XTREME's evaluate.py scores udpos with the same seqeval call as NER, on the
    raw UPOS tags. seqeval reads a tag's first character as its IOBES prefix and
    (in 0.0.x, current when XTREME was published; `pip install seqeval` unpinned
    in its install_tools.sh) the whole tag as the chunk type. So:
      - consecutive identical tags merge into one chunk: gold NOUN NOUN VERB has
        2 chunks (NOUN 0-1, VERB 2), pred NOUN VERB VERB has NOUN 0, VERB 1-2,
        and none match: F1 0 although 2 of 3 tokens are right (accuracy 66.7);
      - a tag starting with "S" (SCONJ, SYM) is a single-token chunk, so SCONJ
        SCONJ is two chunks; one starting with "I" (INTJ) continues a chunk of
        the same tag like any other; chunks never span sentences.
    Later seqeval (1.x, installed here) reads the type as tag[1:] ("OUN"), which
    also makes CCONJ and SCONJ one type ("CONJ": a CCONJ right before SCONJ is
    lost) and X the empty type "_" (an X ending a sentence is never counted).
    Tags are rewritten with `_seqeval_v0_tag` so the installed seqeval gives the
    0.0.x numbers. `token_accuracy` is ordinary POS accuracy (correct / tokens).
    """
    pred, gold = _check_tags("pos_scores", pred_tags, gold_tags)
    total = sum(len(g) for g in gold)
    if total == 0:
        raise DataError("pos_scores: every sentence is empty; pass at least one tagged token")
    correct = sum(1 for p, g in zip(pred, gold) for pt, gt in zip(p, g) if pt == gt)
    scores = _seqeval_scores([[_seqeval_v0_tag(t) for t in s] for s in pred],
                             [[_seqeval_v0_tag(t) for t in s] for s in gold])
    return {"f1": scores["f1"], "token_accuracy": _ratio(correct, total)}


# --------------------------------------------------------------------------- SQuAD

_SQUAD_PUNCT = frozenset(string.punctuation)  # ASCII only, as in the official scripts
_SQUAD_ARTICLES = re.compile(r"\b(a|an|the)\b")


def squad_normalize(text: str) -> str:
    """SQuAD's normalize_answer: lower, drop ASCII punctuation, drop a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _SQUAD_PUNCT)
    text = _SQUAD_ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _token_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    common = Counter(pred_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _check_qa_refs(what: str, references: Mapping[str, Sequence[str]]) -> None:
    if not references:
        raise DataError(f"{what}: no reference questions to score; pass at least one id -> answers")


def _qa_v1_style(what: str, predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                 normalize: Callable[[str], str]) -> Scores:
    """The v1.1 / MLQA loop: max over gold answers; a missing prediction scores 0 but counts.

    Predictions for ids absent from `references` are ignored, as the official
    scripts iterate over the dataset only.
    """
    _check_qa_refs(what, references)
    exact = f1 = 0.0
    missing = []
    for qid, golds in references.items():
        golds = list(golds)
        if not golds:
            raise DataError(f"{what}: question {qid!r} has no gold answer; "
                            "unanswerable questions need squad_v2")
        if qid not in predictions:
            missing.append(qid)
            continue
        pred_norm = normalize(predictions[qid])
        pred_tokens = pred_norm.split()
        gold_norms = [normalize(g) for g in golds]
        # EM is string equality after normalisation; F1 is token overlap, which is 0
        # when the prediction and a gold both normalise to "" (v1.1 and MLQA quirk).
        exact += max(float(pred_norm == g) for g in gold_norms)
        f1 += max(_token_f1(pred_tokens, g.split()) for g in gold_norms)
    if missing:
        log.warning("%s: %d of %d questions have no prediction and score 0 (first: %r)",
                    what, len(missing), len(references), missing[0])
    return {"exact_match": _ratio(exact, len(references)), "f1": _ratio(f1, len(references))}


def squad_v1(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> Scores:
    """Official SQuAD v1.1 EM and F1 (also XQuAD and TyDiQA-GoldP in XTREME).

    `predictions`: question id -> predicted answer text; `references`: question
    id -> gold answer texts (at least one). Scores are the max over gold
    answers, averaged over all reference questions; a question without a
    prediction scores 0 (logged).
    """
    return _qa_v1_style("squad_v1", predictions, references, squad_normalize)


def _v2_tokens(text: str) -> list[str]:
    return squad_normalize(text).split() if text else []


def _v2_f1(gold: str, pred: str) -> float:
    gold_tokens, pred_tokens = _v2_tokens(gold), _v2_tokens(pred)
    if not gold_tokens or not pred_tokens:
        # An empty side is a no-answer: F1 is 1 if both are, 0 otherwise.
        return float(gold_tokens == pred_tokens)
    return _token_f1(pred_tokens, gold_tokens)


def squad_v2(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
             no_answer_probs: Mapping[str, float] | None = None, threshold: float = 1.0) -> Scores:
    """Official SQuAD v2.0 EM and F1, overall and split into answerable / unanswerable.

    `references[qid] == []` marks an unanswerable question; a prediction ""
    abstains. Gold answers that normalise to "" are dropped (if none remain the
    only correct answer is ""). With `no_answer_probs`, a question whose
    probability exceeds `threshold` counts as abstained (the official
    --na-prob-thresh, default 1.0). `has_ans_*` / `no_ans_*` keys appear only
    when that subset is non-empty, as in the official script.

    Every reference id needs a prediction: the official script silently drops
    missing ones from the overall total and then fails on the breakdown, so
    there is no official number to reproduce.
    """
    _check_qa_refs("squad_v2", references)
    missing = [qid for qid in references if qid not in predictions]
    if missing:
        raise DataError(f"squad_v2: {len(missing)} of {len(references)} questions have no prediction "
                        f"(first: {missing[0]!r}); predict \"\" to abstain")
    if no_answer_probs is not None:
        lacking = [qid for qid in references if qid not in no_answer_probs]
        if lacking:
            raise DataError(f"squad_v2: no_answer_probs lacks {len(lacking)} question ids "
                            f"(first: {lacking[0]!r}); give a probability for every question")
    exact: dict[str, float] = {}
    f1: dict[str, float] = {}
    has_answer: dict[str, bool] = {}
    for qid, golds in references.items():
        has_answer[qid] = bool(list(golds))  # from the raw list, as make_qid_to_has_ans
        kept = [g for g in golds if squad_normalize(g)] or [""]
        pred = predictions[qid]
        if no_answer_probs is not None and no_answer_probs[qid] > threshold:
            exact[qid] = f1[qid] = float(not has_answer[qid])
            continue
        exact[qid] = max(float(squad_normalize(g) == squad_normalize(pred)) for g in kept)
        f1[qid] = max(_v2_f1(g, pred) for g in kept)

    def mean(ids: list[str], scores: dict[str, float]) -> float:
        return _ratio(sum(scores[q] for q in ids), len(ids))

    everything = list(references)
    out = {"exact_match": mean(everything, exact), "f1": mean(everything, f1)}
    for prefix, ids in (("has_ans", [q for q in everything if has_answer[q]]),
                        ("no_ans", [q for q in everything if not has_answer[q]])):
        if ids:
            out[f"{prefix}_exact_match"] = mean(ids, exact)
            out[f"{prefix}_f1"] = mean(ids, f1)
    return out


# --------------------------------------------------------------------------- MLQA

# Reproduces facebookresearch/MLQA `mlqa_evaluation_v1.py` (read at commit 5ef5c731,
# https://github.com/facebookresearch/MLQA/blob/master/mlqa_evaluation_v1.py), which XTREME
# downloads as third_party/evaluate_mlqa.py: normalize_answer applies lower ->
# remove_punc -> remove_articles(lang) -> white_space_fix(lang), in that order.

# MLQA's answer languages, ISO 639-1 (as the official script takes them) and 639-3.
MLQA_LANGUAGES = {"en": "en", "eng": "en", "es": "es", "spa": "es", "de": "de", "deu": "de",
                  "ar": "ar", "ara": "ar", "hi": "hi", "hin": "hi", "vi": "vi", "vie": "vi",
                  "zh": "zh", "zho": "zh"}

# The article patterns of mlqa_evaluation_v1.py, verbatim (hi and zh have none).
# Arabic: the first alternative `\sال^` can never match (a `^` after characters),
# so the official pattern removes every "ال" anywhere, even inside words.
_MLQA_ARTICLES = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "ar": re.compile(r"\sال^|ال"),
}


@lru_cache(maxsize=1)
def _mlqa_punct() -> frozenset[str]:
    # Every code point whose Unicode category starts with "P", plus ASCII punctuation,
    # over range(sys.maxunicode) exactly as the official script builds it (the set
    # depends on the Python's Unicode database version). Built once, lazily (~0.3 s).
    return frozenset(ch for ch in map(chr, range(sys.maxunicode))
                     if unicodedata.category(ch).startswith("P")) | frozenset(string.punctuation)


def _mlqa_mixed_segmentation(text: str, punct: frozenset[str]) -> list[str]:
    """Chinese: each char in U+4E00..U+9FA5 (or punctuation) is a token; other runs split on whitespace.

    The official range stops at U+9FA5: later CJK ideographs, extensions and
    kana stay inside the surrounding non-CJK run.
    """
    tokens: list[str] = []
    run = ""
    for ch in text:
        if "\u4e00" <= ch <= "\u9fa5" or ch in punct:
            tokens.extend(run.split())
            run = ""
            tokens.append(ch)
        else:
            run += ch
    tokens.extend(run.split())
    return tokens


def mlqa_language(language: str) -> str:
    """The MLQA scorer's two-letter code for an ISO 639-1 or 639-3 code of an MLQA language."""
    code = MLQA_LANGUAGES.get(language.strip().lower())
    if code is None:
        raise LanguageError(f"mlqa: unknown answer language {language!r}; MLQA scores "
                            "en/eng, es/spa, de/deu, ar/ara, hi/hin, vi/vie, zh/zho")
    return code


def mlqa_normalize(text: str, language: str) -> str:
    """mlqa_evaluation_v1.normalize_answer: lower, drop Unicode punctuation, drop the
    language's articles, then re-tokenise (whitespace, or mixed segmentation for zh).
    """
    lang = mlqa_language(language)
    punct = _mlqa_punct()
    text = text.lower()
    text = "".join(ch for ch in text if ch not in punct)
    if lang in _MLQA_ARTICLES:
        text = _MLQA_ARTICLES[lang].sub(" ", text)
    tokens = _mlqa_mixed_segmentation(text, punct) if lang == "zh" else text.split()
    return " ".join(t for t in tokens if t.strip() != "")


def mlqa(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
         language: str) -> Scores:
    """Official MLQA EM and F1 for answers in `language` (ISO 639-1 or 639-3).

    Same loop as SQuAD v1.1 (max over gold answers; a missing prediction scores
    0) with MLQA's language-aware normalisation (see `mlqa_normalize`).
    """
    lang = mlqa_language(language)
    return _qa_v1_style("mlqa", predictions, references, lambda s: mlqa_normalize(s, lang))


# --------------------------------------------------------------------------- BUCC

Pair = tuple[str, str]


def bucc_f1(predicted_pairs: Iterable[Pair], gold_pairs: Iterable[Pair]) -> Scores:
    """Precision, recall and F1 of mined (source id, target id) pairs against the gold pairs.

    As XTREME `evaluate.bucc_f1`: all three are 0 when no predicted pair is correct.
    """
    predicted = {tuple(p) for p in predicted_pairs}
    gold = {tuple(p) for p in gold_pairs}
    correct = len(predicted & gold)
    if correct == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    precision = correct / len(predicted)
    recall = correct / len(gold)
    return {"precision": 100.0 * precision, "recall": 100.0 * recall,
            "f1": 100.0 * 2 * precision * recall / (precision + recall)}


def _candidate_scores(candidates: Iterable[tuple[str, str, float]]) -> dict[Pair, float]:
    # As read_candidate2score: a pair listed twice keeps its highest score; the
    # dict keeps first-seen order, which decides ties in the stable sort below.
    scores: dict[Pair, float] = {}
    for src, trg, score in candidates:
        score = float(score)
        if not math.isfinite(score):
            raise DataError(f"bucc: candidate ({src!r}, {trg!r}) has score {score}; "
                            "scores must be finite")
        scores[(src, trg)] = max(score, scores.get((src, trg), score))
    return scores


def bucc_optimal_threshold(candidates: Iterable[tuple[str, str, float]],
                           gold_pairs: Iterable[Pair]) -> float:
    """The score threshold that maximises F1 on the gold pairs (XTREME/LASER `bucc_optimize`).

    Candidates are sorted by score, descending; sweeping down the list, each
    new best F1 sets the threshold halfway between the current candidate's
    score and the next one's. Returns 0.0 when no candidate is gold. Where the
    best F1 falls on the last candidate (the official code would index past the
    end), the threshold is that candidate's score, which extracts the same set.
    Extract pairs with `bucc_extract(candidates, threshold)` (score >= threshold).
    """
    gold = {tuple(p) for p in gold_pairs}
    items = sorted(_candidate_scores(candidates).items(), key=lambda item: -item[1])
    extracted = correct = 0
    threshold = 0.0
    best_f1 = 0.0
    for i, (pair, score) in enumerate(items):
        extracted += 1
        if pair in gold:
            correct += 1
        if correct > 0:
            precision = correct / extracted
            recall = correct / len(gold)
            f1 = 2 * precision * recall / (precision + recall)
            if f1 > best_f1:
                best_f1 = f1
                threshold = (score + items[i + 1][1]) / 2 if i + 1 < len(items) else score
    return threshold


def bucc_extract(candidates: Iterable[tuple[str, str, float]], threshold: float) -> set[Pair]:
    """The candidate pairs whose (max) score is >= threshold, as XTREME `bucc_extract`."""
    return {pair for pair, score in _candidate_scores(candidates).items() if score >= threshold}


# --------------------------------------------------------------------------- XTREME aggregate


def qa_task_score(em: float, f1: float) -> float:
    """A QA task's XTREME score: the mean of exact match and F1 (both 0-100)."""
    return (em + f1) / 2.0


def _headline(task: str, language: str, value: float | Mapping[str, float]) -> float:
    # XTREME evaluate.py's avg_metric rule: QA -> (EM + F1) / 2, else F1, else accuracy.
    if isinstance(value, Mapping):
        if "exact_match" in value and "f1" in value:
            score = qa_task_score(value["exact_match"], value["f1"])
        elif "f1" in value:
            score = value["f1"]
        elif "accuracy" in value:
            score = value["accuracy"]
        else:
            raise DataError(f"xtreme_aggregate: task {task!r} language {language!r} has metrics "
                            f"{sorted(value)}; give exact_match+f1, f1 or accuracy")
    else:
        score = value
    score = float(score)
    if not math.isfinite(score):
        raise DataError(f"xtreme_aggregate: task {task!r} language {language!r} has score {score}; "
                        "scores must be finite numbers on a 0-100 scale")
    return score


def xtreme_aggregate(task_scores: Mapping[str, Mapping[str, float | Mapping[str, float]]]
                     ) -> dict[str, Any]:
    """The XTREME score: mean over tasks of each task's mean over its languages.

    `task_scores[task][language]` is that language's test score on a 0-100
    scale: either the task's headline number (for QA tasks already
    `qa_task_score(em, f1)`), or the metric dict a metric function returned,
    from which the headline is taken as XTREME's evaluate.py does: QA
    (exact_match and f1) -> their mean, else f1, else accuracy. Include every
    language to average over (XTREME's task averages include English).

    Returns {"xtreme": overall score, "tasks": {task: mean over its languages}}.
    """
    if not task_scores:
        raise DataError("xtreme_aggregate: no tasks given; pass {task: {language: score}}")
    per_task: dict[str, float] = {}
    for task, by_language in task_scores.items():
        if not by_language:
            raise DataError(f"xtreme_aggregate: task {task!r} has no language scores; "
                            "pass {language: score} for it or leave the task out")
        values = [_headline(task, lang, v) for lang, v in by_language.items()]
        per_task[task] = sum(values) / len(values)
    return {"xtreme": sum(per_task.values()) / len(per_task), "tasks": per_task}


# --------------------------------------------------------------------------- registry

METRICS: dict[str, Callable[..., Scores]] = {
    "accuracy": accuracy,
    "seqeval_f1": seqeval_f1,
    "pos": pos_scores,
    "squad_v1": squad_v1,
    "squad_v2": squad_v2,
    "mlqa": mlqa,
    "bucc": bucc_f1,
    "tatoeba": tatoeba_accuracy,
}

PRIMARY_METRIC: dict[str, str] = {
    "accuracy": "accuracy",
    "seqeval_f1": "f1",
    "pos": "f1",
    "squad_v1": "f1",
    "squad_v2": "f1",
    "mlqa": "f1",
    "bucc": "f1",
    "tatoeba": "accuracy",
}
