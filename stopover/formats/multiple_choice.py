"""Multiple choice (HellaSwag, CommonsenseQA, CosmosQA): one score per choice, softmax over choices.

Features: each choice is encoded as an XLM-R pair (`<s> context question </s></s>
ending </s>`), context and question joined by a space and left out when
empty (CommonsenseQA has no context, HellaSwag no question). Truncation
removes tokens from the *left*, longest sequence first, so a long context
loses its beginning, never the question at its end or the ending it must
connect to. A feature holds all choices of one example (`input_ids[c]` is
choice c); padding is dynamic, to the longest choice in the batch.

Model: `AutoModelForMultipleChoice` (a linear scorer on <s>, softmax over the
choices). Prediction: argmax over choices (the softmax over the choices rides
along in `Predictions.side["probabilities"]`); metric: accuracy.

Records (stopover.predictions): id, gold and prediction (choice indices, or
the task's label names where it declares them), gold_label and label
(indices), probabilities over the choices. XTREME export (XCOPA's layout):
one JSON object {"label": index} per line.
"""

from __future__ import annotations

from typing import Any

from stopover.errors import DataError


def choice_pairs(example: dict[str, Any]) -> list[tuple[str, str]]:
    """(first, second) text of each choice: (context [+ question], ending)."""
    first = " ".join(part.strip() for part in (example.get("context") or "", example.get("question") or "")
                     if part and part.strip())
    return [(first, ending) for ending in example["endings"]]


class MultipleChoiceFormat:
    name = "multiple_choice"
    # Bumped whenever featurising, the head or decoding changes: part of every stage identity.
    version = 1
    trains = True  # a head is fine-tuned on it

    def build_model(self, encoder_path: str, task: Any):
        from transformers import AutoModelForMultipleChoice

        from stopover.models import load_pretrained

        return load_pretrained(AutoModelForMultipleChoice, encoder_path, "an encoder")

    def featurize(self, examples, tokenizer, task, max_length, *, train):
        if not examples:
            return []
        n_choices = len(examples[0]["endings"])
        firsts, seconds = [], []
        for i, ex in enumerate(examples):
            endings = ex["endings"]
            if len(endings) != n_choices or n_choices < 2:
                raise DataError(f"task {task.name!r}: example {i + 1} has {len(endings)} endings, example 1 has "
                                f"{n_choices}; every example needs the same number (>= 2) of endings")
            if not 0 <= ex["label"] < n_choices:
                raise DataError(f"task {task.name!r}: example {i + 1} has label {ex['label']} but only "
                                f"{n_choices} endings")
            for first, second in choice_pairs(ex):
                firsts.append(first)
                seconds.append(second)
        side = tokenizer.truncation_side
        tokenizer.truncation_side = "left"  # keep the question and the ending, drop the context's start
        try:
            enc = tokenizer(firsts, seconds, truncation="longest_first", max_length=max_length)
        finally:
            tokenizer.truncation_side = side
        features = []
        for i, ex in enumerate(examples):
            rows = range(i * n_choices, (i + 1) * n_choices)
            features.append({"input_ids": [enc["input_ids"][r] for r in rows],
                             "attention_mask": [enc["attention_mask"][r] for r in rows],
                             "labels": ex["label"], "example_index": i})
        return features

    def collate(self, features, tokenizer):
        import torch

        width = max(len(ids) for f in features for ids in f["input_ids"])
        pad = tokenizer.pad_token_id
        batch = {
            "input_ids": torch.tensor([[ids + [pad] * (width - len(ids)) for ids in f["input_ids"]]
                                       for f in features], dtype=torch.long),
            "attention_mask": torch.tensor([[m + [0] * (width - len(m)) for m in f["attention_mask"]]
                                            for f in features], dtype=torch.long),
        }
        if features and "labels" in features[0]:
            batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.long)
        return batch

    def predict(self, model, features, examples, task, tokenizer, batch_size):
        from stopover.formats.batching import run_inference
        from stopover.predictions import Predictions

        rows = run_inference(model, features, batch_size, lambda f: self.collate(f, tokenizer),
                             lambda out: list(zip(out.logits.argmax(-1).tolist(),
                                                  out.logits.float().softmax(-1).tolist())))
        return Predictions([label for label, _ in rows], probabilities=[probs for _, probs in rows])

    def score(self, task, examples, predictions, language):
        from stopover.metrics import accuracy

        return accuracy(predictions, [ex["label"] for ex in examples])

    def records(self, task, examples, predictions, language):
        from stopover.predictions import label_records

        return label_records(task, examples, predictions)

    def score_records(self, task, records, language):
        from stopover.metrics import accuracy

        return accuracy([r["label"] for r in records], [r["gold_label"] for r in records])

    def xtreme_files(self, task, records, *, label_names=True):
        import json

        return {"suffix": "jsonl",
                "predictions": "".join(json.dumps({"label": r["label"]}) + "\n" for r in records),
                "labels": "".join(json.dumps({"label": r["gold_label"]}) + "\n" for r in records)}


FORMAT = MultipleChoiceFormat()
