"""Multi-task intermediate training: one shared encoder, one head per task, mixed batches.

Every batch comes from a single task, chosen by a sampler, as in jiant:
- proportional: p_i = n_i / sum n (T = 1);
- temperature: p_i = n_i^(1/T) / sum_j n_j^(1/T) (T > 1 flattens towards uniform);
- uniform: p_i = 1 / K.
n_i is the task's number of training examples after the per-task cap. An
epoch has as many batches as all tasks together; a task that runs out of
batches starts a new shuffled pass over its own data. Only the encoder moves
on to the next stage; the heads are dropped.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Callable

import torch

from stopover.train import length_grouped_batches

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def task_probabilities(sizes: dict[str, int], sampling: str, temperature: float = 2.0) -> dict[str, float]:
    if sampling == "uniform":
        weights = {t: 1.0 for t in sizes}
    elif sampling == "proportional":
        weights = {t: float(n) for t, n in sizes.items()}
    elif sampling == "temperature":
        weights = {t: float(n) ** (1.0 / temperature) for t, n in sizes.items()}
    else:
        raise ValueError(f"unknown sampling {sampling!r}")
    total = sum(weights.values())
    return {t: w / total for t, w in weights.items()}


class MultiTaskModel(torch.nn.Module):
    """Task models whose encoders are one shared module; forward(task=..., **batch)."""

    def __init__(self, models: dict[str, PreTrainedModel]) -> None:
        super().__init__()
        first = next(iter(models.values()))
        prefix = first.base_model_prefix
        shared = getattr(first, prefix)
        for model in models.values():
            setattr(model, model.base_model_prefix, shared)  # one encoder, K heads
        self.tasks = torch.nn.ModuleDict(models)
        self.base_model = shared

    def forward(self, task: str, **batch: Any):
        return self.tasks[task](**batch)

    def get_input_embeddings(self):
        return self.base_model.get_input_embeddings()


def mixed_batch_plan(task_of: list[str], lengths: list[int], batch_size: int, sampling: str,
                     temperature: float) -> tuple[int, Callable[[random.Random], list[list[int]]]]:
    """(batches per epoch, rng -> an epoch of single-task index batches) for `train`."""
    by_task: dict[str, list[int]] = {}
    for i, t in enumerate(task_of):
        by_task.setdefault(t, []).append(i)
    sizes = {t: len(ix) for t, ix in by_task.items()}
    probs = task_probabilities(sizes, sampling, temperature)
    per_epoch = sum(-(-n // batch_size) for n in sizes.values())
    names = sorted(by_task)

    def task_batches(t: str, rng: random.Random) -> list[list[int]]:
        ix = by_task[t]
        local = length_grouped_batches([lengths[i] for i in ix], batch_size, rng)
        return [[ix[j] for j in b] for b in local]

    def plan(rng: random.Random) -> list[list[int]]:
        queues = {t: [] for t in names}
        out = []
        weights = [probs[t] for t in names]
        for _ in range(per_epoch):
            t = rng.choices(names, weights)[0]
            if not queues[t]:
                queues[t] = task_batches(t, rng)
            out.append(queues[t].pop())
        return out

    return per_epoch, plan


def fit_mixed(parts: list[tuple[str, Any, Any, list[dict]]], encoder_path: str, tokenizer: Any, cfg: Any,
              sampling: str, temperature: float, *, seed: int,
              dev_score: Callable[[MultiTaskModel], float] | None, progress: Any = None,
              description: str = "mixed", checkpoint_dir: Any = None, checkpoint_every: int = 0,
              log: Callable[[dict[str, float], int], None] | None = None):
    """Train one shared encoder with a head per task on mixed single-task batches.

    `parts`: (name, task, format, features) per task, in the set's order. The heads are built
    in that order right after seeding, so a seed gives the same initial heads however the
    features were obtained. Returns (MultiTaskModel, TrainResult). `log`: see `stopover.train.train`.
    LoRA (`peft:`) is not supported here: the config refuses it (stopover.config.RunConfig.validate).
    """
    from stopover.device import default_device
    from stopover.train import seed_everything, train

    seed_everything(seed)
    models: dict[str, PreTrainedModel] = {}
    for name, task, fmt, _ in parts:
        model_t = fmt.build_model(encoder_path, task).to(default_device())
        if models:  # share the first task's encoder now, so each further copy is freed at once
            first = next(iter(models.values()))
            shared = getattr(first, first.base_model_prefix)
            own = getattr(model_t, model_t.base_model_prefix)
            # heads that read the pooled output (multiple choice) need the pooler that a span-QA or
            # tagging encoder is built without: the shared encoder takes this task's
            if getattr(shared, "pooler", None) is None and getattr(own, "pooler", None) is not None:
                shared.pooler = own.pooler
            setattr(model_t, model_t.base_model_prefix, shared)
        models[name] = model_t
    model = MultiTaskModel(models)
    collators = {name: fmt.collate for name, _, fmt, _ in parts}
    feats: list[dict] = []
    task_of: list[str] = []
    for name, _, _, part in parts:
        for f in part:
            f["task"] = name
        feats.extend(part)
        task_of.extend([name] * len(part))

    def collate(batch: list[dict]) -> dict:
        name = batch[0]["task"]  # the batch plan never mixes tasks within a batch
        return {"task": name, **collators[name](batch, tokenizer)}

    lengths = [len(f["input_ids"]) for f in feats]
    plan = mixed_batch_plan(task_of, lengths, cfg.batch_size, sampling, temperature)
    result = train(model, feats, collate, cfg, seed=seed, dev_score=dev_score, progress=progress,
                   description=description, batch_plan=plan, checkpoint_dir=checkpoint_dir,
                   checkpoint_every=checkpoint_every, log=log)
    return model, result
