"""Sentence and sentence-pair classification (NLI, paraphrase): a linear head on <s>.

Features: the pair encoded as XLM-R does (`<s> a </s></s> b </s>`), truncated
to `max_length` (longest-first). Prediction: argmax of the logits. Metric:
accuracy (XNLI, PAWS-X, MNLI, QQP, ANLI).
"""

from __future__ import annotations

from typing import Any

from stopover.formats.batching import pad_batch, run_inference


class ClassificationFormat:
    name = "classification"
    # Bumped whenever featurising, the head or decoding changes: part of every stage identity.
    version = 1
    trains = True  # a head is fine-tuned on it

    def build_model(self, encoder_path: str, task: Any):
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(
            encoder_path, num_labels=len(task.labels),
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
        return pad_batch(features, tokenizer.pad_token_id)

    def predict(self, model, features, examples, task, tokenizer, batch_size):
        return run_inference(model, features, batch_size, lambda f: self.collate(f, tokenizer),
                             lambda out: out.logits.argmax(-1).tolist())

    def score(self, task, examples, predictions, language):
        from stopover.metrics import accuracy

        return accuracy(predictions, [ex["label"] for ex in examples])


FORMAT = ClassificationFormat()
