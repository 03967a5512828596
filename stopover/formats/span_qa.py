"""Extractive question answering (SQuAD, SQuAD 2.0, XQuAD, MLQA, TyDi QA-GoldP).

Features: the question and a window of the context, encoded as XLM-R pairs
(`<s> question </s></s> context window </s>`). Contexts longer than the
window are split into overlapping windows (`doc_stride` tokens of overlap, the
`stride` of transformers' tokenizers and run_qa.py's `--doc_stride`); each
window is one feature, and predictions are aggregated per example. The
stride is clamped per example to half the room its window leaves for the
context: the fast tokenizer panics (instead of raising) when stride >= room.

Training labels: the token positions of the first gold answer when it lies
wholly inside the window, else the CLS token (index 0) - as for unanswerable
questions. Decoding (per example, over all its windows): the n-best (20)
start and end positions among each window's context tokens, spans of at most
`max_answer_length` (30) tokens with end >= start, the best by start + end
logit, mapped back to the context text through the tokenizer's character
offsets. SQuAD 2.0 (tasks with unanswerable questions): the answer is ""
when the null score (CLS start + end logit, minimum over the windows) exceeds
the best span score by more than `null_threshold` (0.0 by default, as
run_qa.py's `null_score_diff_threshold`).

Options (`SpanQAOptions` as `Task.format_options`, all optional): doc_stride
(128), max_query_length (64), n_best (20), max_answer_length (30),
null_threshold (0.0); unanswerable is True for metric squad_v2.

Predictions: the answer text of each example, in example order; `score`
keys them by question id for the official scorers in stopover.metrics
(squad_v1, squad_v2, mlqa), which return exact_match and f1. The decoder's
span and null scores ride along in `Predictions.side["scores"]` and
`["null_scores"]`.

Records (stopover.predictions): id (the question id), question, gold (the
gold answer texts), answer_starts, prediction (the answer text, "" = no
answer), score and null_score (None when predict did not give them). XTREME
export (XQuAD, MLQA, TyDi QA): predictions as one JSON object {id: answer};
labels as a SQuAD-format file (data/paragraphs/qas with the gold answers),
what `third_party/evaluate_squad.py` and `evaluate_mlqa.py` read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from stopover.errors import ConfigError, DataError, TaskError
from stopover.formats.options import SpanQAOptions, options_for

DEFAULTS: dict[str, Any] = {"doc_stride": 128, "max_query_length": 64, "n_best": 20,
                            "max_answer_length": 30, "null_threshold": 0.0}


@dataclass(frozen=True)
class QAOptions:
    doc_stride: int
    max_query_length: int
    n_best: int
    max_answer_length: int
    null_threshold: float
    unanswerable: bool


def qa_options(task: Any) -> QAOptions:
    """The task's QA settings: DEFAULTS overridden by the task's `SpanQAOptions`."""
    opts = {**DEFAULTS, "unanswerable": task.metric == "squad_v2"}
    overrides = options_for(task, SpanQAOptions)
    opts.update({k: getattr(overrides, k) for k in DEFAULTS if getattr(overrides, k) is not None})
    for key in ("doc_stride", "max_query_length", "n_best", "max_answer_length"):
        if not isinstance(opts[key], int) or opts[key] < (0 if key == "doc_stride" else 1):
            raise ConfigError(f"task {task.name!r}: option {key} = {opts[key]!r} must be a positive integer")
    return QAOptions(**opts)


# ----------------------------------------------------------------------------- features


def window_stride(doc_stride: int, room: int) -> int:
    """The overlap to request for a window with `room` context tokens.

    The fast tokenizer panics (a Rust panic, not a Python error) when the
    stride is >= the room left for the context, so the requested overlap is
    clamped to half the room: consecutive windows then always advance by at
    least half a window.
    """
    if room < 2:
        raise ConfigError(f"max_length leaves {room} token(s) for the context; raise max_length")
    return max(0, min(doc_stride, room // 2))


def _truncate_questions(questions: list[str], tokenizer: Any, max_query: int) -> tuple[list[str], list[int]]:
    """Cut questions to `max_query` tokens (at a token's character end); return them and their lengths."""
    questions = [q.lstrip() for q in questions]  # leading spaces waste tokens (as run_qa.py)
    for _ in range(3):  # a cut can re-tokenise differently; converge in a few passes
        enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
        lengths = [len(ids) for ids in enc["input_ids"]]
        long = [i for i, n in enumerate(lengths) if n > max_query]
        if not long:
            return questions, lengths
        for i in long:
            questions[i] = questions[i][:enc["offset_mapping"][i][max_query - 1][1]]
    return questions, lengths


def _label_span(offsets: list[Any], context_tokens: list[int], start_char: int,
                end_char: int) -> tuple[int, int] | None:
    """Token (start, end) of the character span [start_char, end_char) in this window, or None."""
    first, last = context_tokens[0], context_tokens[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return None  # the answer is not wholly inside this window
    start = max(k for k in context_tokens if offsets[k][0] <= start_char)
    end = min(k for k in context_tokens if offsets[k][1] >= end_char)
    return (start, end) if end >= start else None


def featurize_qa(examples: list[dict[str, Any]], tokenizer: Any, max_length: int, *, train: bool,
                 doc_stride: int = DEFAULTS["doc_stride"],
                 max_query_length: int = DEFAULTS["max_query_length"],
                 where: str = "training data") -> list[dict[str, Any]]:
    """Windows over the contexts; training labels or (for decoding) the context offsets.

    `where` names the data in error messages (a wrong answer_start is a DataError).
    """
    from stopover.squad import check_answers

    n_special = tokenizer.num_special_tokens_to_add(pair=True)
    max_query = min(max_query_length, (max_length - n_special) // 2)
    if max_query < 1:
        raise ConfigError(f"max_length = {max_length} is too short for extractive QA; "
                          f"use at least {n_special + 8}")
    if train:  # a wrong answer_start would silently train on the wrong span
        for i, ex in enumerate(examples):
            check_answers(where, str(ex.get("id", i)), ex["context"], list(ex["answers"]["text"]),
                          list(ex["answers"]["answer_start"]))
    questions, q_lengths = _truncate_questions([ex["question"] for ex in examples], tokenizer, max_query)
    # Examples share a stride unless their questions leave less room than doc_stride needs;
    # group them so each tokenizer call gets one safe stride.
    groups: dict[int, list[int]] = defaultdict(list)
    for i, q_len in enumerate(q_lengths):
        groups[window_stride(doc_stride, max_length - n_special - q_len)].append(i)
    cls_id = tokenizer.cls_token_id
    features: list[dict[str, Any]] = []
    for stride, members in groups.items():
        enc = tokenizer([questions[i] for i in members], [examples[i]["context"] for i in members],
                        truncation="only_second", max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
        for j, ids in enumerate(enc["input_ids"]):
            index = members[enc["overflow_to_sample_mapping"][j]]
            sequence_ids = enc.sequence_ids(j)
            offsets = enc["offset_mapping"][j]
            context_tokens = [k for k, s in enumerate(sequence_ids) if s == 1]
            cls_index = ids.index(cls_id) if cls_id in ids else 0
            feature: dict[str, Any] = {"input_ids": list(ids), "attention_mask": list(enc["attention_mask"][j]),
                                       "example_index": index}
            if train:
                ex = examples[index]
                texts = list(ex["answers"]["text"])
                starts = list(ex["answers"]["answer_start"])
                span = None
                if texts and context_tokens:
                    span = _label_span(offsets, context_tokens, starts[0], starts[0] + len(texts[0]))
                feature["start_positions"], feature["end_positions"] = span or (cls_index, cls_index)
            else:
                feature["offsets"] = [tuple(offsets[k]) if s == 1 else None for k, s in enumerate(sequence_ids)]
                feature["cls_index"] = cls_index
            features.append(feature)
    features.sort(key=lambda f: f["example_index"])  # stable: windows stay in context order
    return features


# ----------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class Answer:
    text: str  # "" = no answer
    score: float | None  # start + end logit of the best span (None: no valid span)
    null_score: float  # the lowest CLS start + end logit over the example's windows


def _top(values: Any, candidates: Any, n: int) -> list[int]:
    """The `n` candidate positions with the highest values, best first."""
    import numpy as np

    order = np.argsort(-values[candidates], kind="stable")[:n]
    return candidates[order].tolist()


def decode_answers(examples: list[dict[str, Any]], features: list[dict[str, Any]],
                   logits: list[tuple[list[float], list[float]]], *, n_best: int = DEFAULTS["n_best"],
                   max_answer_length: int = DEFAULTS["max_answer_length"], unanswerable: bool = False,
                   null_threshold: float = DEFAULTS["null_threshold"]) -> list[Answer]:
    """One answer per example from the (start, end) logits of its windows."""
    import numpy as np

    best: list[tuple[float, int, int] | None] = [None] * len(examples)
    null: list[float] = [float("inf")] * len(examples)
    for feature, (start_logits, end_logits) in zip(features, logits):
        i = feature["example_index"]
        n = len(feature["input_ids"])
        start, end = np.asarray(start_logits[:n], dtype=float), np.asarray(end_logits[:n], dtype=float)
        offsets = feature["offsets"]
        cls = feature.get("cls_index", 0)
        null[i] = min(null[i], float(start[cls] + end[cls]))
        context = examples[i]["context"]
        # n-best among the window's context tokens (question and special tokens are never answers)
        candidates = np.asarray([k for k, o in enumerate(offsets[:n]) if o is not None], dtype=int)
        if candidates.size == 0:
            continue
        ends = _top(end, candidates, n_best)
        for s in _top(start, candidates, n_best):
            for e in ends:
                if e < s or e - s + 1 > max_answer_length:
                    continue
                score = float(start[s] + end[e])
                if best[i] is not None and score <= best[i][0]:
                    continue
                if not context[offsets[s][0]:offsets[e][1]].strip():
                    continue  # a span of bare word-boundary pieces is no answer
                best[i] = (score, offsets[s][0], offsets[e][1])
    answers = []
    for i, ex in enumerate(examples):
        found = best[i]
        if found is None:
            answers.append(Answer("", None, null[i]))
            continue
        score, a, b = found
        if unanswerable and null[i] - score > null_threshold:
            answers.append(Answer("", score, null[i]))
        else:
            # Offsets of SentencePiece word-initial pieces cover the preceding space: strip it.
            answers.append(Answer(ex["context"][a:b].strip(), score, null[i]))
    return answers


# ----------------------------------------------------------------------------- the format


def _references(examples: list[dict[str, Any]], predictions: list[str]) -> tuple[dict, dict]:
    if len(predictions) != len(examples):
        raise DataError(f"span_qa: {len(predictions)} predictions for {len(examples)} questions; "
                        "predict one answer per question")
    refs: dict[str, list[str]] = {}
    preds: dict[str, str] = {}
    for ex, pred in zip(examples, predictions):
        qid = str(ex["id"])
        if qid in refs:
            raise DataError(f"span_qa: question id {qid!r} occurs twice in the evaluated split; "
                            "question ids must be unique (answers are scored by id)")
        refs[qid] = list(ex["answers"]["text"])
        preds[qid] = pred
    return preds, refs


class SpanQAFormat:
    name = "span_qa"
    # Bumped whenever featurising, the head or decoding changes: part of every stage identity.
    version = 1
    trains = True  # a head is fine-tuned on it

    def build_model(self, encoder_path: str, task: Any):
        from transformers import AutoModelForQuestionAnswering

        from stopover.models import load_pretrained

        # transformers 5: the QA head's width comes from num_labels (start and end logits).
        return load_pretrained(AutoModelForQuestionAnswering, encoder_path, "an encoder", num_labels=2)

    def featurize(self, examples, tokenizer, task, max_length, *, train):
        opts = qa_options(task)
        return featurize_qa(examples, tokenizer, max_length, train=train, doc_stride=opts.doc_stride,
                            max_query_length=opts.max_query_length,
                            where=f"training data for task {task.name!r}")

    def collate(self, features, tokenizer):
        import torch

        from stopover.formats.batching import pad_batch

        batch = pad_batch(features, tokenizer.pad_token_id, label_key=None)
        if features and "start_positions" in features[0]:
            batch["start_positions"] = torch.tensor([f["start_positions"] for f in features], dtype=torch.long)
            batch["end_positions"] = torch.tensor([f["end_positions"] for f in features], dtype=torch.long)
        return batch

    def predict(self, model, features, examples, task, tokenizer, batch_size):
        from stopover.formats.batching import run_inference

        opts = qa_options(task)
        logits = run_inference(model, features, batch_size, lambda f: self.collate(f, tokenizer),
                               lambda out: list(zip(out.start_logits.float().tolist(),
                                                    out.end_logits.float().tolist())))
        answers = decode_answers(examples, features, logits, n_best=opts.n_best,
                                 max_answer_length=opts.max_answer_length, unanswerable=opts.unanswerable,
                                 null_threshold=opts.null_threshold)
        from stopover.predictions import Predictions

        return Predictions([a.text for a in answers], scores=[a.score for a in answers],
                           null_scores=[a.null_score for a in answers])

    def score(self, task, examples, predictions, language):
        preds, refs = _references(examples, predictions)
        return score_answers(task, preds, refs, language)

    def records(self, task, examples, predictions, language):
        from stopover.predictions import finite_or_none, side

        _references(examples, predictions)  # one answer per question, unique ids
        scores, nulls = side(predictions, "scores"), side(predictions, "null_scores")
        return [{"id": str(ex["id"]), "question": ex.get("question") or "",
                 "gold": list(ex["answers"]["text"]),
                 "answer_starts": [int(a) for a in ex["answers"].get("answer_start", [])],
                 "prediction": pred,
                 "score": finite_or_none(scores[i]) if scores is not None else None,
                 "null_score": finite_or_none(nulls[i]) if nulls is not None else None}
                for i, (ex, pred) in enumerate(zip(examples, predictions))]

    def score_records(self, task, records, language):
        examples = [{"id": r["id"], "answers": {"text": r["gold"]}} for r in records]
        preds, refs = _references(examples, [r["prediction"] for r in records])
        return score_answers(task, preds, refs, language)

    def xtreme_files(self, task, records, *, label_names=True):
        import json

        qas = [{"id": r["id"], "question": r.get("question", ""),
                "answers": [{"text": text, "answer_start": start} for text, start in
                            zip(r["gold"], r.get("answer_starts") or [-1] * len(r["gold"]))]}
               for r in records]
        # Contexts are not kept in the records: the scorers read only ids and answers.
        labels = {"version": "1.1", "data": [{"title": task.name, "paragraphs": [{"context": "", "qas": qas}]}]}
        predictions = {r["id"]: r["prediction"] for r in records}
        return {"suffix": "json", "predictions": json.dumps(predictions, ensure_ascii=False, indent=1) + "\n",
                "labels": json.dumps(labels, ensure_ascii=False) + "\n"}


def score_answers(task: Any, preds: dict[str, str], refs: dict[str, list[str]], language: str) -> dict[str, float]:
    """The task's QA metric over {id: answer} and {id: gold answers} (shared by score and score_records)."""
    from stopover import metrics

    if task.metric == "squad_v1":
        return metrics.squad_v1(preds, refs)
    if task.metric == "squad_v2":
        return metrics.squad_v2(preds, refs)
    if task.metric == "mlqa":
        return metrics.mlqa(preds, refs, language)
    raise TaskError(f"task {task.name!r}: metric {task.metric!r} does not score extractive QA; "
                    "use squad_v1, squad_v2 or mlqa")


FORMAT = SpanQAFormat()
