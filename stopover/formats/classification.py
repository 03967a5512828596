"""Sentence and sentence-pair classification (NLI, paraphrase): a linear head on <s>.

Features: the pair encoded as XLM-R does (`<s> a </s></s> b </s>`), truncated
to `max_length` (longest-first). Prediction: argmax of the logits (the class
probabilities ride along in `Predictions.side["probabilities"]`). Metric:
accuracy (XNLI, PAWS-X, MNLI, QQP, ANLI).

Records (stopover.predictions): id (the example's position), gold and
prediction as label names, gold_label and label as indices, probabilities
(softmax over the classes, when predict produced them). XTREME export: one
label per line, names (XNLI) or indices (PAWS-X, `label_names=False`).
"""

from __future__ import annotations

from typing import Any

from stopover.predictions import Predictions, label_records


class ClassificationFormat:
    name = "classification"
    # Bumped whenever featurising, the head or decoding changes: part of every stage identity.
    version = 1
    trains = True  # a head is fine-tuned on it

    def build_model(self, encoder_path: str, task: Any):
        from transformers import AutoModelForSequenceClassification

        from stopover.models import load_pretrained

        return load_pretrained(
            AutoModelForSequenceClassification, encoder_path, "an encoder", num_labels=len(task.labels),
            id2label=dict(enumerate(task.labels)), label2id={l: i for i, l in enumerate(task.labels)})

    def featurize(self, examples, tokenizer, task, max_length, *, train):
        first = [ex["text_a"] for ex in examples]
        second = [ex.get("text_b") for ex in examples]
        pairs = any(s is not None for s in second)
        enc = tokenizer(first, [s or "" for s in second] if pairs else None, truncation=True,
                        max_length=max_length)
        feats = []
        for i, ex in enumerate(examples):
            feats.append({"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                          "labels": ex["label"], "example_index": i})
        return feats

    def collate(self, features, tokenizer):
        from stopover.formats.batching import pad_batch

        return pad_batch(features, tokenizer.pad_token_id)

    def predict(self, model, features, examples, task, tokenizer, batch_size):
        from stopover.formats.batching import run_inference

        rows = run_inference(model, features, batch_size, lambda f: self.collate(f, tokenizer),
                             lambda out: list(zip(out.logits.argmax(-1).tolist(),
                                                  out.logits.float().softmax(-1).tolist())))
        return Predictions([label for label, _ in rows], probabilities=[probs for _, probs in rows])

    def score(self, task, examples, predictions, language):
        from stopover.metrics import accuracy

        return accuracy(predictions, [ex["label"] for ex in examples])

    def records(self, task, examples, predictions, language):
        return label_records(task, examples, predictions)

    def score_records(self, task, records, language):
        from stopover.metrics import accuracy

        return accuracy([r["label"] for r in records], [r["gold_label"] for r in records])

    def xtreme_files(self, task, records, *, label_names=True):
        def show(index: int) -> str:
            return task.labels[index] if label_names else str(index)

        return {"suffix": "tsv", "predictions": "".join(show(r["label"]) + "\n" for r in records),
                "labels": "".join(show(r["gold_label"]) + "\n" for r in records)}


FORMAT = ClassificationFormat()
