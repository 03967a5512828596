"""The training loop: one model, one or more feature sets, checkpoint chosen on English dev.

A small loop rather than `transformers.Trainer`, because stopover needs four
things the Trainer makes awkward: length-grouped batches over *cached*
features, mixed multi-task batches with their own sampler, bf16 autocast and
frozen word embeddings as plain switches, and a resumable state (model,
optimizer, scheduler, sampler position and RNG) in one file.

That file holds tensors and plain values only (lists, dicts, numbers; the RNG
states converted to tensors) and is read with `torch.load(weights_only=True)`,
and only when resuming is on (`checkpoint_every` > 0): a checkpoint planted in a
run directory can never run code.

Checkpoint selection: the English dev score is computed `eval_per_epoch`
times per epoch; the best weights are kept (in memory) and restored at the end.

Size: one concept (the training loop and what it needs: batches, precision, checkpoints,
fit and predict), over 400 lines because resuming inside a stage touches every part of
the loop.
"""

from __future__ import annotations

import math
import os
import random
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar, cast

import numpy as np
import torch

from stopover.adapters import trainable_parameters
from stopover.config import TrainConfig
from stopover.device import model_device, to_device
from stopover.errors import ModelError
from stopover.models import writing

if TYPE_CHECKING:
    from transformers import PreTrainedModel

ModelT = TypeVar("ModelT", bound=torch.nn.Module)


@dataclass
class TrainResult:
    steps: int
    examples_seen: int
    best_dev: float | None
    history: list[dict[str, float]] = field(default_factory=list)
    precision: str = "fp32"
    note: str | None = None
    trainable_params: int | None = None  # parameters the optimizer updated (LoRA: adapters + heads)
    total_params: int | None = None  # every parameter of the trained model (tied tensors once)
    peak_memory_mb: float | None = None  # see `memory`
    memory: str | None = None  # what peak_memory_mb measures: "cuda max allocated" | "process max RSS"
    carried_adapter: str | None = None  # a parent's carry: adapter: "continued" | "folded" (stopover.adapters)

    def record(self) -> dict[str, Any]:
        """The stage.json fields of this result: what trained and how far. Deterministic (a resumed
        run writes the same stage.json as an uninterrupted one, docs/reliability.md), so memory
        is not here but in `resources()`.
        """
        share = (self.trainable_params / self.total_params) if self.trainable_params is not None \
            and self.total_params else None
        out: dict[str, Any] = {"best_dev": self.best_dev, "steps": self.steps, "precision": self.precision,
                               "trainable_params": self.trainable_params, "total_params": self.total_params,
                               "trainable_share": share}
        if self.carried_adapter is not None:
            out["carried_adapter"] = self.carried_adapter
        return out

    def resources(self) -> dict[str, Any]:
        """What this execution used (`resources.json` beside stage.json): differs from run to run."""
        return {"peak_memory_mb": self.peak_memory_mb, "memory": self.memory}


#: `train`'s optional metrics callback: (metrics, optimizer step), e.g. a tracker's log_metrics
StepLog = Callable[[dict[str, float], int], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def length_grouped_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffle, then sort within mega-batches of 50 batches by length, then shuffle the batches.

    Batches hold examples of similar length (little padding) while the order
    of batches stays random: the scheme of transformers' LengthGroupedSampler.
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = batch_size * 50
    batches = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start:start + mega], key=lambda i: -lengths[i])
        batches.extend(chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def plain_batches(n: int, batch_size: int, rng: random.Random) -> list[list[int]]:
    order = list(range(n))
    rng.shuffle(order)
    return [order[j:j + batch_size] for j in range(0, n, batch_size)]


def make_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup: float):
    warm = int(total_steps * warmup)

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:  # the fused kernel is several times faster than the per-tensor loop on CPU
        return torch.optim.AdamW(groups, lr=cfg.lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=cfg.lr, foreach=True)


def _resolve_precision(requested: str, device: str = "cpu") -> tuple[str, str | None]:
    from stopover.precision import resolve_precision

    return resolve_precision(requested, device)


def _freeze(model: torch.nn.Module) -> None:
    # a transformers model (or MultiTaskModel); nn.Module alone types unknown attributes as Tensor | Module
    emb = cast("PreTrainedModel", model).get_input_embeddings()
    emb.weight.requires_grad_(False)


@dataclass
class TrainState:
    """What a checkpoint holds to resume a stage exactly where it stopped."""

    step: int = 0
    epoch_batches: list[list[int]] = field(default_factory=list)
    position: int = 0  # index into epoch_batches
    epoch: int = 0
    best_dev: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)


CHECKPOINT_NAME = "checkpoint.pt"


def get_rng_state(rng: random.Random) -> dict[str, Any]:
    """The Python, torch and NumPy generator states as tensors and plain values (no pickled objects)."""
    # the global generator is MT19937, whose legacy state is this tuple (the stubs also allow a dict)
    np_state = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state())
    name, key, pos, has_gauss, gauss = np_state
    return {"python": rng.getstate(), "torch": torch.get_rng_state(),
            "numpy": [name, torch.from_numpy(key.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]}


def set_rng_state(saved: dict[str, Any], rng: random.Random) -> None:
    python = saved["python"]
    rng.setstate((python[0], tuple(python[1]), python[2]))
    torch.set_rng_state(saved["torch"])
    name, key, pos, has_gauss, gauss = saved["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), pos, has_gauss, gauss))


def _unusable_checkpoint(path: Path, reason: str) -> ModelError:
    return ModelError(f"{path}: not a checkpoint this stage can resume from ({reason}); delete it and re-run "
                      "the same command: the stage starts again from its beginning")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A resumable checkpoint, loaded weights-only: a file that holds code (or anything but tensors
    and plain values) is refused before any of it runs.
    """
    import pickle

    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise _unusable_checkpoint(path, "it holds objects other than tensors and plain values, which are "
                                         "never unpickled") from None
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        raise _unusable_checkpoint(path, f"damaged: {(str(err).splitlines() or [type(err).__name__])[0]}") from None
    required = {"model", "optimizer", "scheduler", "state", "best_weights", "rng"}
    if not isinstance(saved, dict) or not required <= saved.keys():
        raise _unusable_checkpoint(path, "not a stopover checkpoint")
    return saved


def write_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` (tensors and plain values only) atomically; a full disk is a StorageError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)  # never written through: a planted symlink there must not be followed
    try:
        with writing(path):
            # Written through a Python file object: a full disk then surfaces as an OSError with its
            # errno (torch's own file writer reports it as a bare "unexpected pos" RuntimeError).
            with open(tmp, "xb") as fh:
                torch.save(payload, fh)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _check_positions(model: torch.nn.Module, max_length: int) -> None:
    """max_length beyond the model's position table fails deep inside the embedding lookup: say so first."""
    from stopover.models import check_max_length, max_positions

    configs = [m.config for m in model.modules() if hasattr(getattr(m, "config", None), "max_position_embeddings")]
    limit = min((n for n in map(max_positions, configs) if n is not None), default=None)
    name = getattr(configs[0], "_name_or_path", "") if configs else ""
    check_max_length(max_length, limit, "max_length (intermediate.max_length, target.max_length or "
                     "tasks.<task>.train.max_length)", f"model {name}" if name else "the model")


def _peak_memory(device: torch.device) -> tuple[float | None, str | None]:
    """(peak MiB, what it measures): CUDA's max allocated since `train` began, else the process's max RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda max allocated"
    try:
        import resource
        import sys
    except ImportError:  # Windows
        return None, None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (2**20 if sys.platform == "darwin" else 2**10), "process max RSS"


def train(model: ModelT, features: list[dict[str, Any]], collate: Callable[[list[dict]], dict],
          cfg: TrainConfig, *, seed: int, dev_score: Callable[[ModelT], float] | None = None,
          progress: Any = None, description: str = "training", checkpoint_dir: Path | None = None,
          checkpoint_every: int = 0,
          batch_plan: tuple[int, Callable[[random.Random], list[list[int]]]] | None = None,
          log: StepLog | None = None) -> TrainResult:
    """Train `model` on `features`; return the result with the best dev weights loaded.

    `checkpoint_every` > 0 saves a resumable checkpoint to `checkpoint_dir`
    every that many optimizer steps, and resumes from one found there (loaded
    weights-only; one that holds anything else is a ModelError). With 0 an existing
    checkpoint is never opened: the stage starts from its beginning.
    `batch_plan` = (batches per epoch, rng -> one epoch of index batches) replaces the
    default length-grouped batching (multi-task sampling uses it).
    `log(metrics, step)`, when given, receives `train/loss` (the mean over the step's
    batches) and `train/lr` (the rate the step used) after every optimizer step, and
    `dev/score` after every dev evaluation; without it nothing is computed for it.
    """
    _check_positions(model, cfg.max_length)
    seed_everything(seed)
    precision, note = _resolve_precision(cfg.precision, model_device(model).type)
    if cfg.freeze_embeddings:
        _freeze(model)
    trainable, total = trainable_parameters(model)
    if model_device(model).type == "cuda":
        torch.cuda.reset_peak_memory_stats(model_device(model))
    rng = random.Random(seed)
    lengths = [len(f["input_ids"]) for f in features]
    per_epoch = batch_plan[0] if batch_plan else math.ceil(len(features) / cfg.batch_size)
    total_batches = max(1, math.ceil(per_epoch * cfg.epochs))
    total_steps = max(1, math.ceil(total_batches / cfg.grad_accum))
    eval_every = max(1, per_epoch // cfg.eval_per_epoch) if dev_score else 0
    optimizer = make_optimizer(model, cfg)
    scheduler = make_schedule(optimizer, total_steps, cfg.warmup)
    state = TrainState()
    best_weights: dict[str, torch.Tensor] | None = None
    # state_dict names of frozen parameters (tied copies included: remove_duplicate=False)
    frozen = {name for name, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}
    ckpt = checkpoint_dir / CHECKPOINT_NAME if checkpoint_dir else None
    if ckpt is not None and ckpt.exists():
        if checkpoint_every > 0:
            saved = read_checkpoint(ckpt)
            try:
                model.load_state_dict(saved["model"])
                optimizer.load_state_dict(saved["optimizer"])
                scheduler.load_state_dict(saved["scheduler"])
                state = TrainState(**saved["state"])
                best_weights = saved["best_weights"]
                set_rng_state(saved["rng"], rng)
            except (KeyError, TypeError, ValueError, RuntimeError) as err:
                raise _unusable_checkpoint(ckpt, f"it does not fit this stage: {type(err).__name__}") from None
        else:
            # Resuming is off: the file is never opened (it could hold anything), and the stage
            # starts from its beginning; the finished stage's outputs supersede it below.
            warnings.warn(f"{ckpt}: ignored, checkpoint_every is 0 (no resuming); the stage starts from "
                          "its beginning", stacklevel=2)

    def save_checkpoint() -> None:
        if ckpt is None:
            return
        write_checkpoint(ckpt, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict(), "state": asdict(state),
                                "best_weights": best_weights, "rng": get_rng_state(rng)})

    def evaluate() -> None:
        nonlocal best_weights
        assert dev_score is not None  # evaluate runs only when eval_every > 0, i.e. with a dev_score
        score = float(dev_score(model))
        state.history.append({"batch": float(batches_done), "dev": score})
        if log is not None:
            log({"dev/score": score}, state.step)
        if state.best_dev is None or score > state.best_dev:
            state.best_dev = score
            # Frozen tensors cannot differ from the current weights, so only trainable ones are
            # copied: for XLM-R the frozen word embeddings are most of the model (time and memory).
            best_weights = {k: v.detach().clone() for k, v in model.state_dict().items() if k not in frozen}
        model.train()

    bar = progress.add_task(description, total=total_batches) if progress is not None else None
    batches_done = state.step * cfg.grad_accum
    if progress is not None:
        progress.update(bar, completed=batches_done)
    model.train()
    use_bf16 = precision == "bf16"
    device = model_device(model)
    window_loss: torch.Tensor | None = None  # summed losses of the current step's batches (with `log`)
    window_batches = 0
    while batches_done < total_batches:
        if state.position >= len(state.epoch_batches):
            if batch_plan is not None:
                state.epoch_batches = batch_plan[1](rng)
            elif cfg.group_by_length:
                state.epoch_batches = length_grouped_batches(lengths, cfg.batch_size, rng)
            else:
                state.epoch_batches = plain_batches(len(features), cfg.batch_size, rng)
            state.position = 0
            state.epoch += 1
        idx = state.epoch_batches[state.position]
        state.position += 1
        batch = to_device(collate([features[i] for i in idx]), device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = model(**batch).loss
        (loss / cfg.grad_accum).backward()
        if log is not None:
            window_loss = loss.detach() if window_loss is None else window_loss + loss.detach()
            window_batches += 1
        batches_done += 1
        stepped = batches_done % cfg.grad_accum == 0 or batches_done == total_batches
        if stepped:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            if log is not None and window_loss is not None:
                log({"train/loss": float(window_loss) / window_batches, "train/lr": float(lr)}, state.step)
                window_loss, window_batches = None, 0
        if eval_every and (batches_done % eval_every == 0 or batches_done == total_batches):
            evaluate()
        if stepped and checkpoint_every and state.step % checkpoint_every == 0:
            # After this batch's dev evaluation: a resume continues with the next batch, so a
            # checkpoint taken before the evaluation would lose it (and, at the last step, the
            # stage's best_dev with it).
            save_checkpoint()
        if progress is not None:
            progress.update(bar, advance=1)
    if best_weights is not None:
        model.load_state_dict(best_weights, strict=False)  # the frozen tensors were left out
    model.eval()
    if ckpt is not None and ckpt.exists():
        ckpt.unlink()  # the stage's outputs supersede it
    peak, memory = _peak_memory(device)
    return TrainResult(steps=state.step, examples_seen=batches_done * cfg.batch_size, best_dev=state.best_dev,
                       history=state.history, precision=precision, note=note, trainable_params=trainable,
                       total_params=total, peak_memory_mb=peak, memory=memory)


def predict(fmt: Any, model: torch.nn.Module, features: list[dict], examples: list[dict], task: Any,
            tokenizer: Any, precision: str, batch_size: int) -> list[Any]:
    """`fmt.predict` under autocast in `precision` (as resolved for the model's device)."""
    from stopover.precision import autocast

    with autocast(precision, model_device(model).type):
        return fmt.predict(model, features, examples, task, tokenizer, batch_size)


def fit(fmt: Any, task: Any, encoder_path: str, features: list[dict], tokenizer: Any, cfg: TrainConfig, *,
        seed: int, dev_score: Callable[[torch.nn.Module], float] | None, progress: Any = None,
        description: str = "training", checkpoint_dir: Path | None = None,
        checkpoint_every: int = 0, log: StepLog | None = None) -> tuple[torch.nn.Module, TrainResult]:
    """A fresh `fmt` head for `task` on the encoder at `encoder_path`, trained on `features`;
    the head's initialisation depends on `seed`, so it is seeded before the model is built.

    With `cfg.peft` the model gets LoRA on its encoder (stopover.adapters.with_peft: only the
    adapters and the head train) and is returned wrapped: the caller saves it merged or with
    its adapter (stopover.models.save_encoder / save_model). An encoder saved with
    `carry: adapter` has its adapter continued or folded in (`TrainResult.carried_adapter`).
    """
    from stopover.adapters import with_peft
    from stopover.device import default_device

    seed_everything(seed)
    model, carried = with_peft(fmt.build_model(encoder_path, task), cfg.peft, encoder_path)
    model = model.to(default_device())
    result = train(model, features, lambda b: fmt.collate(b, tokenizer), cfg, seed=seed, dev_score=dev_score,
                   progress=progress, description=description, checkpoint_dir=checkpoint_dir,
                   checkpoint_every=checkpoint_every, log=log)
    result.carried_adapter = carried
    return model, result
