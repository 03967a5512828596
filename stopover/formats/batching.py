"""Batching shared by every format: dynamic padding and length-sorted inference.

Training batches are padded to the longest sequence in the batch (not to a
fixed length, as jiant and the XTREME scripts do) and grouped by length;
inference sorts features by length so each batch carries little padding, and
restores the original order afterwards.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch


def pad_batch(features: list[dict[str, Any]], pad_id: int, *, label_pad: int = -100,
              keys: tuple[str, ...] = ("input_ids", "attention_mask"),
              label_key: str | None = "labels") -> dict[str, torch.Tensor]:
    """Pad `keys` (and a per-token `label_key`) to the batch's longest sequence."""
    width = max(len(f["input_ids"]) for f in features)
    batch: dict[str, torch.Tensor] = {}
    for key in keys:
        fill = pad_id if key == "input_ids" else 0
        batch[key] = torch.tensor([f[key] + [fill] * (width - len(f[key])) for f in features],
                                  dtype=torch.long)
    if label_key and features and label_key in features[0]:
        first = features[0][label_key]
        if isinstance(first, list):
            batch[label_key] = torch.tensor(
                [f[label_key] + [label_pad] * (width - len(f[label_key])) for f in features], dtype=torch.long)
        else:
            batch[label_key] = torch.tensor([f[label_key] for f in features], dtype=torch.long)
    return batch


def sorted_batches(features: list[dict[str, Any]], batch_size: int) -> Iterator[list[int]]:
    """Index batches of features in order of length (longest first: memory peaks early)."""
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


@torch.inference_mode()
def run_inference(model: torch.nn.Module, features: list[dict[str, Any]], batch_size: int,
                  collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
                  outputs: Callable[[Any], list[Any]]) -> list[Any]:
    """Apply the model over length-sorted batches; return per-feature outputs in input order."""
    from stopover.device import model_device, to_device

    model.eval()
    device = model_device(model)
    results: list[Any] = [None] * len(features)
    for idx in sorted_batches(features, batch_size):
        batch = to_device(collate([features[i] for i in idx]), device)
        batch.pop("labels", None)
        out = model(**batch)
        for i, value in zip(idx, outputs(out)):
            results[i] = value
    return results
