"""Masked language modelling on plain text: continued MLM during intermediate training.

Phang et al. (2020, section 6) continue XLM-R's masked-LM objective on
target-language text while the encoder trains on English intermediate tasks,
so that it does not forget the other languages. Here that is a format like any
other: the `mlm` task (stopover/tasks/mlm.py) declares it, and a mixed
multi-task intermediate stage trains it alongside the other tasks, one shared
encoder, one head per task; only the encoder moves on to the target stage.

Masking is BERT's, as transformers' `DataCollatorForLanguageModeling` does it
(and it is what this format calls): each non-special token is chosen with
probability 0.15; a chosen token becomes <mask> 80% of the time, a random
vocabulary token 10% of the time, and stays as it is 10% of the time; the loss
is computed on the chosen tokens only (label -100 elsewhere). Training
batches are masked afresh every time they are drawn (dynamic masking, as
RoBERTa/XLM-R); evaluation features are masked once, with a seed per
example, so a score never changes between calls.

Head: `AutoModelForMaskedLM` on the encoder. XLM-R's output projection is the
encoder's own word-embedding matrix (weight tying). A multi-task stage swaps
every task model's encoder for one shared module, which would leave the tied
projection pointing at the discarded copy (an untied 250k x 1024 matrix for
XLM-R large); so the projection here reads the embeddings of whatever encoder
the model holds at call time (`TiedProjection`), and tying survives the swap.

Prediction: for each example, (predicted ids, original ids) at its masked
positions; score: accuracy over all masked tokens (`accuracy`). Records
(stopover.predictions): id, gold and prediction (the original and the
predicted token ids at the masked positions). No XTREME export: continued MLM
is an intermediate objective, not a benchmark task.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable

from stopover.errors import ModelError

MLM_PROBABILITY = 0.15
MASK_REPLACE = 0.8  # share of chosen tokens replaced by <mask>
RANDOM_REPLACE = 0.1  # share replaced by a random token; the rest stay unchanged
EVAL_SEED = 0  # evaluation masking: example i uses seed EVAL_SEED + i


def _collator(tokenizer: Any, seed: int | None = None):
    from transformers import DataCollatorForLanguageModeling

    if tokenizer.mask_token is None:
        raise ModelError(f"masked_lm needs a tokenizer with a mask token; {type(tokenizer).__name__} has none")
    return DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=MLM_PROBABILITY,
                                           mask_replace_prob=MASK_REPLACE, random_replace_prob=RANDOM_REPLACE,
                                           seed=seed, return_tensors="pt")


def _tied_projection_class():
    import torch

    class TiedProjection(torch.nn.Module):
        """The vocabulary projection, always with the owner's *current* input embeddings as weight."""

        _owner: Callable[[], Any]  # weakref.ref to the owning model (set in __init__, outside nn.Module's registry)

        def __init__(self, owner: torch.nn.Module, bias: torch.nn.Parameter | None) -> None:
            super().__init__()
            # a weak reference outside the module tree: the owner contains this module
            object.__setattr__(self, "_owner", weakref.ref(owner))
            self.bias = bias

        def forward(self, hidden: torch.Tensor) -> torch.Tensor:
            weight = self._owner().get_input_embeddings().weight
            return torch.nn.functional.linear(hidden, weight, self.bias)

    return TiedProjection


def build_mlm_model(encoder_path: str):
    """AutoModelForMaskedLM on `encoder_path`, its tied output projection made swap-proof."""
    from transformers import AutoModelForMaskedLM

    from stopover.models import load_pretrained

    model = load_pretrained(AutoModelForMaskedLM, encoder_path, "an encoder")
    out = model.get_output_embeddings()
    if out is not None and out.weight is model.get_input_embeddings().weight:
        model.set_output_embeddings(_tied_projection_class()(model, getattr(out, "bias", None)))
    return model


def mask_features(features: list[dict[str, list[int]]], tokenizer: Any, seed: int | None = None) -> dict[str, Any]:
    """Pad features ({input_ids, special_tokens_mask[, attention_mask]}) and mask them: a batch of
    input_ids (masked), attention_mask and labels (-100 except at the chosen tokens).

    With `seed`, the masking comes from its own generator (reproducible); without, from
    torch's global generator, which the training loop seeds and checkpoints.
    """
    keys = ("input_ids", "attention_mask", "special_tokens_mask")
    batch = _collator(tokenizer, seed)([{k: f[k] for k in keys if k in f} for f in features])
    return dict(batch)


class MaskedLMFormat:
    name = "masked_lm"
    # Bumped whenever featurising, the head or decoding changes: part of every stage identity.
    version = 1
    trains = True  # a head is fine-tuned on it

    def build_model(self, encoder_path: str, task: Any):
        return build_mlm_model(encoder_path)

    def featurize(self, examples, tokenizer, task, max_length, *, train):
        enc = tokenizer([ex["text"] for ex in examples], truncation=True, max_length=max_length,
                        return_special_tokens_mask=True)
        feats = []
        for i in range(len(examples)):
            ids, special = enc["input_ids"][i], enc["special_tokens_mask"][i]
            feat = {"input_ids": ids, "attention_mask": enc["attention_mask"][i], "example_index": i}
            if train:
                feat["special_tokens_mask"] = special  # masked at collate time, afresh for every batch
            else:
                batch = mask_features([{"input_ids": ids, "special_tokens_mask": special}], tokenizer,
                                      seed=EVAL_SEED + i)
                masked, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
                if all(l == -100 for l in labels) and not all(special):
                    # a short sentence drew no token: score its first real token (kept as it is)
                    first = special.index(0)
                    labels[first] = ids[first]
                feat["input_ids"], feat["labels"] = masked, labels
            feats.append(feat)
        return feats

    def collate(self, features, tokenizer):
        from stopover.formats.batching import pad_batch

        if "labels" in features[0]:  # evaluation features: masked already
            return pad_batch(features, tokenizer.pad_token_id)
        # training: only the model's inputs (multi-task batches also carry "task", "example_index")
        return mask_features(features, tokenizer)

    def predict(self, model, features, examples, task, tokenizer, batch_size):
        import torch

        from stopover.device import model_device, to_device
        from stopover.formats.batching import sorted_batches

        model.eval()
        out: list[tuple[list[int], list[int]]] = [([], []) for _ in examples]
        with torch.inference_mode():
            for idx in sorted_batches(features, batch_size):
                batch = self.collate([features[i] for i in idx], tokenizer)
                labels = batch.pop("labels")
                predicted = model(**to_device(batch, model_device(model))).logits.argmax(-1).cpu()
                for row, i in enumerate(idx):
                    chosen = labels[row] != -100
                    pred, gold = out[features[i]["example_index"]]
                    pred.extend(predicted[row][chosen].tolist())
                    gold.extend(labels[row][chosen].tolist())
        return out

    def score(self, task, examples, predictions, language):
        from stopover.metrics import accuracy

        pred = [p for ps, _ in predictions for p in ps]
        gold = [g for _, gs in predictions for g in gs]
        return accuracy(pred, gold)

    def records(self, task, examples, predictions, language):
        return [{"id": str(i), "gold": [int(g) for g in gs], "prediction": [int(p) for p in ps]}
                for i, (ps, gs) in enumerate(predictions)]

    def score_records(self, task, records, language):
        from stopover.metrics import accuracy

        return accuracy([p for r in records for p in r["prediction"]], [g for r in records for g in r["gold"]])


FORMAT = MaskedLMFormat()
