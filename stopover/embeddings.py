"""Sentence embeddings from an encoder's hidden states.

`encode` owns one thing: turning texts into fixed-size vectors with a
Hugging Face encoder, the way XTREME's retrieval baselines do it: the mean of
one hidden layer over every position of the attention mask (special tokens
included). The diversity measures use it for their semantic side (Vendi score,
mean pairwise cosine distance) and the retrieval task format uses it to match
sentences across languages.

Texts are batched by token length (short with short, so little padding is
computed) and the vectors are returned in the caller's order. torch is
imported inside the function so that importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def encode(texts: list[str], model: Any, tokenizer: Any, *, layer: int = -1, batch_size: int = 32,
           max_length: int = 128, normalize: bool = False) -> "np.ndarray":
    """Embed `texts` as the masked mean of hidden layer `layer` of `model`.

    Args:
        texts: the sentences; an empty list gives an array of shape (0, hidden).
        model: a transformers encoder (e.g. `XLMRobertaModel`) that accepts
            `output_hidden_states=True`; it runs on the device its weights are
            on (CPU in stopover's tests), in eval mode, under
            `torch.inference_mode`; its train/eval mode is restored afterwards.
        tokenizer: the model's tokenizer (a fast tokenizer is fastest).
        layer: index into `hidden_states` (0 = embedding output, -1 = last
            layer; XTREME's retrieval uses a middle layer: hidden layer 14 of XLM-R
            large's 24 on Tatoeba, 8 on BUCC).
        batch_size: texts per forward pass.
        max_length: texts are truncated to this many tokens (specials included).
        normalize: scale each vector to unit L2 norm.

    Returns:
        float32 array of shape (len(texts), hidden), row i the embedding of texts[i].
        Pooling runs in float32 even when the model runs under bf16 autocast,
        so a summed mean over long sentences does not lose digits.

    """
    import numpy as np
    import torch

    hidden = int(getattr(model.config, "hidden_size", 0))
    if not texts:
        return np.zeros((0, hidden), dtype=np.float32)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    ids: list[list[int]] = enc["input_ids"]
    # Length-sorted batches: padding is computed for nothing, and on CPU the
    # cost of a batch is set by its longest member. Stable sort keeps ties in
    # input order so the result does not depend on Python's hash seed.
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    out = np.zeros((len(ids), hidden), dtype=np.float32) if hidden else None
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                features = [{"input_ids": ids[i], "attention_mask": [1] * len(ids[i])} for i in chunk]
                batch = tokenizer.pad(features, padding=True, return_tensors="pt")
                batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
                states = model(**batch, output_hidden_states=True).hidden_states[layer].float()
                mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
                vectors = pooled.float().cpu().numpy()
                if out is None:  # a config without hidden_size: learn the width from the output
                    out = np.zeros((len(ids), vectors.shape[1]), dtype=np.float32)
                out[chunk] = vectors
    finally:
        model.train(was_training)
    assert out is not None
    if normalize:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out = out / np.maximum(norms, 1e-12)
    return out
