"""Training glue between a stage's `StageSpec` and `stopover.train`: what one training stage
reads (its English training examples and features, its English dev set and scorer), the mixed
multi-task stage, the model an evaluation loads, and what every stage reports - its tracker
(`StageLog`, `tracked`: `tracking:` in the config, part of no identity) and its records
(`stage.json`, deterministic; `resources.json`, a measurement of one execution).

stopover.pipeline reads as the three stages; this module holds what they share.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Callable

from stopover.context import RunContext
from stopover.errors import DataError
from stopover.sources import DATA_SEED
from stopover.spec import StageSpec
from stopover.store import Stage, atomic_write_text
from stopover.tasks import get_task
from stopover.tracking import NullTracker, Tracker

StepLog = Callable[[dict[str, float], int], None]  # stopover.train.StepLog (no torch import here)


def load_for_eval(run: RunContext, task: Any, fmt: Any, parent: Stage) -> tuple[Any, Any]:
    from stopover.device import default_device

    if not fmt.trains:  # no target training: the intermediate encoder itself
        from stopover.adapters import carried_adapter, fold_adapter
        from stopover.models import load_encoder

        path = str(parent.encoder_dir) if parent.kind != "pretrained" else run.model_path()
        encoder = load_encoder(path)
        carried = carried_adapter(path)  # saved with peft.carry: adapter: evaluate base + adapter
        if carried is not None:
            fold_adapter(encoder, *carried)
        return encoder.to(default_device()), run.load_tokenizer(path)
    if run.fresh is not None and run.fresh[0] == parent.hash:
        return run.fresh[1], run.fresh[2]
    if not parent.model_dir.is_dir():
        raise DataError(f"{parent.dir}: the target model was pruned (keep_models: false) before its "
                        "evaluation finished; delete that stage directory and run again")
    return fmt.build_model(str(parent.model_dir), task).to(default_device()), run.load_tokenizer(str(parent.model_dir))


class StageLog:
    """A stage's tracker (stopover.tracking), and `train`'s step callbacks that write to it.

    Steps continue across the tasks of a sequential intermediate stage (`advance`); dev scores
    are named `dev/<task>/<metric>`. With tracking off `task` gives no callback, so the training
    loop computes nothing for it.
    """

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.offset = 0

    def task(self, dev_name: str) -> StepLog | None:
        if isinstance(self.tracker, NullTracker):
            return None
        offset, tracker = self.offset, self.tracker

        def log(metrics: dict[str, float], step: int) -> None:
            tracker.log_metrics({dev_name if k == "dev/score" else k: v for k, v in metrics.items()}, step + offset)

        return log

    def advance(self, steps: int) -> None:
        self.offset += int(steps)


def tracked(run: RunContext, spec: StageSpec, body: Callable[[StageLog], tuple[dict, dict]]) -> dict:
    """Run a stage body with its tracker open; the body returns (stage info, final metrics)."""
    tracker = run.tracker(spec)
    try:
        info, final = body(StageLog(tracker))
    except BaseException:
        with contextlib.suppress(Exception):  # the stage's own error is the one to report
            tracker.finish(None, failed=True)
        raise
    tracker.finish(final)
    return info


def final_metrics(record: dict, prefix: str = "") -> dict[str, float]:
    """The numeric fields of a stage record, as a tracker's final metrics."""
    return {f"{prefix}{k}": float(v) for k, v in record.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def write_info(stage: Stage, info: dict) -> None:
    """The stage's record (`stage.json`: steps, dev scores, precision, trainable parameters), before
    its DONE marker. Deterministic: a resumed stage writes the same record (docs/reliability.md).
    """
    atomic_write_text(stage.dir / "stage.json", json.dumps(info, indent=2, sort_keys=True))


def write_resources(stage: Stage, resources: dict) -> None:
    """`resources.json`: what the stage's training used (peak memory, stopover.train.TrainResult.resources).
    A measurement of one execution, not a result: it differs between runs, so it stays out of stage.json.
    """
    atomic_write_text(stage.dir / "resources.json", json.dumps(resources, indent=2, sort_keys=True))


def primary_metric(task: str) -> str:  # the task's headline metric
    from stopover.metrics import PRIMARY_METRIC

    return PRIMARY_METRIC[get_task(task).metric]


def dev_examples(run: RunContext, task: str, limit: int | None) -> list[dict]:  # English dev examples, if any
    try:
        return run.examples(task, "dev", "eng", limit=limit)
    except DataError:
        return []  # no English dev split available: keep the last checkpoint


def fit_task(run: RunContext, name: str, train_from: str, encoder: str, cfg: Any, seed: int, *, limit: int | None,
         label: str, checkpoint: Any, holdout: bool = False, target: bool = False,
         dev_task: str | None = None, log: StepLog | None = None) -> tuple[Any, Any, int]:
    """(model, TrainResult, English dev size) of one task trained on `train_from`'s data."""
    from stopover.formats import get_format
    from stopover.train import fit

    task = get_task(name)
    fmt = get_format(task.format)
    tokenizer = run.load_tokenizer(encoder)
    examples = run.train_examples(train_from, limit=limit, sample_seed=DATA_SEED, holdout=holdout, target=target)
    feats = run.features(fmt, task, examples, tokenizer, cfg.max_length, train=True,
                         data_key=[run.fingerprint(train_from, ("train",), ("eng",), target=target), limit]
                         + (["holdout"] if holdout else []))
    dev_task = dev_task or name
    dev = dev_examples(run, dev_task, cfg.max_dev_examples)
    dev_fn: Callable[[Any], float] | None = None
    if dev:
        dev_feats = run.features(fmt, task, dev, tokenizer, cfg.max_length, train=False,
                                 data_key=[run.fingerprint(dev_task, ("dev",), ("eng",)), cfg.max_dev_examples])
        primary = primary_metric(name)

        def dev_score(m: Any) -> float:
            return fmt.score(task, dev, run.predict(fmt, m, dev_feats, dev, task, tokenizer), "eng")[primary]

        dev_fn = dev_score

    run.log(f"{label}: {len(examples)} examples, {cfg.epochs:g} epoch(s)")
    model, result = fit(fmt, task, encoder, feats, tokenizer, cfg, seed=seed, dev_score=dev_fn,
                        progress=run.progress, description=label, checkpoint_dir=checkpoint,
                        checkpoint_every=run.cfg.checkpoint_every, log=log)
    return model, result, len(dev)


def fit_mixed_stage(run: RunContext, spec: StageSpec, encoder: str, stage: Stage,
               log: StepLog | None = None) -> tuple[Any, Any]:
    """Multi-task training with one shared encoder (see stopover.multitask)."""
    from stopover.formats import get_format
    from stopover.multitask import fit_mixed

    cfg, mt = spec.schedule_config(), spec.multitask_config()
    tokenizer = run.load_tokenizer(encoder)
    parts, devs = [], {}
    for name in spec.tasks:
        task = get_task(name)
        fmt = get_format(task.format)
        # per-task max_length (tasks.<name>.train.max_length, e.g. 384 for QA); the batch schedule is shared
        length = spec.train_config(name).max_length
        examples = run.train_examples(name, limit=spec.per_task_examples, sample_seed=DATA_SEED)
        parts.append((name, task, fmt, run.features(fmt, task, examples, tokenizer, length, train=True, data_key=[
            run.fingerprint(name, ("train",), ("eng",)), spec.per_task_examples])))
        dev = dev_examples(run, name, cfg.max_dev_examples)
        if dev:
            devs[name] = (task, fmt, dev, fmt.featurize(dev, tokenizer, task, length, train=False))

    def dev_fn(m: Any) -> float:
        scores = [fmt.score(task, dev, run.predict(fmt, m.tasks[name], feats, dev, task, tokenizer), "eng")[
            primary_metric(name)] for name, (task, fmt, dev, feats) in devs.items()]
        return sum(scores) / len(scores)

    label = f"intermediate {'+'.join(spec.tasks)} (mixed)"
    run.log(f"{label}, {mt.sampling}: {sum(len(p[3]) for p in parts)} features")
    return fit_mixed(parts, encoder, tokenizer, cfg, mt.sampling, mt.temperature, seed=int(spec.seed or 0),
                     dev_score=dev_fn if devs else None, progress=run.progress, description=label,
                     checkpoint_dir=stage.dir / "checkpoint" / "mixed", checkpoint_every=run.cfg.checkpoint_every,
                     log=log)
