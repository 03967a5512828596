"""The three stages of one grid cell: intermediate -> target -> zero-shot evaluation.

Read top to bottom:
(a) `intermediate(run, spec)`: zero or more English tasks, in sequence or mixed,
    starting from the pretrained encoder (heads are never carried over);
(b) `target(run, spec)`: the target task's English training data, checkpoint
    chosen on its English dev split;
(c) `evaluate(run, spec)`: the target's test split in every language;
and `run_cell`, which runs what one grid cell still needs.

Each stage runs from its `StageSpec` alone (stopover.spec): the spec's hash
names `stages/<hash>/`, and a stage with a `DONE` marker is never run again
(stopover.store), so one intermediate stage serves every target that needs it
and a killed run resumes. What the stages read comes from each task's resolved
`TaskData` (stopover.sources); the per-run state is a `RunContext`.

A training stage with `peft:` in its train config trains LoRA adapters and its heads
only (stopover.adapters, through `train.fit`) and saves its encoder merged or with the
adapter (`peft.carry`); a target model is always saved and evaluated merged. Every
stage that runs has a tracker (`tracking:`, stopover.tracking; `StageLog`), which
observes the stage and is part of no identity. Each training stage's `stage.json` records
its trainable and total parameter counts (`TrainResult.record`), and `resources.json` its
peak memory (a measurement that differs between runs, so kept out of stage.json).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Callable, Protocol

from stopover.context import RunContext, example_texts
from stopover.errors import DataError
from stopover.selection import family_of
from stopover.sources import DATA_SEED, holdout_half
from stopover.spec import StageSpec, format_trains
from stopover.store import ResultRow, Stage, atomic_write_text, record_rows
from stopover.tasks import get_task
from stopover.tracking import NullTracker, Tracker

StepLog = Callable[[dict[str, float], int], None]  # stopover.train.StepLog (no torch import here)

Pipeline = RunContext  # the name earlier callers use for the per-run state
__all__ = ["Pipeline", "cell_specs", "evaluate", "example_texts", "holdout_half", "intermediate", "record_rows",
           "run_cell", "target"]


class CellLike(Protocol):  # what `run_cell` reads of a grid cell (stopover.grid.Cell, a frozen dataclass)
    @property
    def strategy(self) -> str: ...
    @property
    def intermediate(self) -> str: ...
    @property
    def tasks(self) -> tuple[str, ...]: ...
    @property
    def budget(self) -> int | None: ...
    @property
    def seed(self) -> int: ...
    @property
    def target(self) -> str: ...


# (a) -------------------------------------------------------------------- intermediate
def intermediate(run: RunContext, spec: StageSpec) -> Stage:
    """Train the spec's intermediate set into one encoder (nothing to do for the pretrained one)."""
    stage = run.stage(spec)
    if spec.kind == "pretrained":
        return stage
    return run.run_stage(stage, spec, lambda: _write_info(stage, _tracked(
        run, spec, lambda log: _train_intermediate(run, spec, stage, log))))


def _train_intermediate(run: RunContext, spec: StageSpec, stage: Stage, log: StageLog) -> tuple[dict, dict]:
    from stopover.models import save_encoder

    run.fresh = None  # free the last target model before loading more
    base = run.model_path()
    seed = int(spec.seed or 0)
    run.record_sources(stage, spec.tasks)
    info: dict[str, Any] = {"tasks": {}}
    if spec.schedule is not None:  # mixed multi-task (no peft: refused by the config)
        model, result = _fit_mixed(run, spec, base, stage, log.task(f"dev/{'+'.join(spec.tasks)}/mean"))
        info["mixed"] = result.record()
        _write_resources(stage, {"mixed": result.resources()})
        save_encoder(model, run.load_tokenizer(base), stage.encoder_dir)
        return info, {**_final(info["mixed"]), **_final(result.resources())}
    encoder = base
    final: dict[str, float] = {}
    resources: dict[str, Any] = {}
    for i, name in enumerate(spec.tasks):  # sequential: each task gets a fresh head on the current encoder
        marker = stage.encoder_dir / f".done-{name}"
        if marker.exists():  # resumed: this task finished before; its record is in the marker
            info["tasks"][name] = json.loads(marker.read_text(encoding="utf-8") or "null")
            log.advance((info["tasks"][name] or {}).get("steps") or 0)
            encoder = str(stage.encoder_dir)
            continue
        cfg = spec.train_config(name)
        model, result, n_dev = _fit(run, name, name, encoder, cfg, seed,
                                    limit=spec.per_task_examples, label=f"intermediate {name}",
                                    checkpoint=stage.dir / "checkpoint" / name,
                                    log=log.task(f"dev/{name}/{_primary(name)}"))
        log.advance(result.steps)
        info["tasks"][name] = result.record()
        resources[name] = result.resources()
        _write_resources(stage, resources)  # a resumed stage's earlier tasks: measured by the earlier process
        final.update(_final({**info["tasks"][name], **resources[name]}, f"{name}/"))
        if result.best_dev is not None:  # before the marker: a resume that skips this task needs the row
            run.record(stage, name, "eng", "dev", {_primary(name): result.best_dev, "n": n_dev}, seed=seed,
                       strategy="", intermediate=spec.set_name)
        # the markers of every task trained so far go inside the new encoder directory, which is
        # renamed into place: the encoder on disk and its markers always agree. With peft the
        # encoder is saved merged, or base + adapter for the next task or stage (peft.carry).
        save_encoder(model, run.load_tokenizer(encoder), stage.encoder_dir,
                     done={t: info["tasks"][t] for t in spec.tasks[:i + 1]}, peft=cfg.peft)
        encoder = str(stage.encoder_dir)
    return info, final


# (b) -------------------------------------------------------------------- target
def target(run: RunContext, spec: StageSpec) -> Stage:
    """Train the target task on English (its own data or its train_task's) from the parent's encoder."""
    stage = run.stage(spec)
    return run.run_stage(stage, spec, lambda: _write_info(stage, _tracked(
        run, spec, lambda log: _train_target(run, spec, stage, log))))


def _train_target(run: RunContext, spec: StageSpec, stage: Stage, log: StageLog) -> tuple[dict, dict]:
    from stopover.adapters import merged
    from stopover.models import save_model

    run.fresh = None  # the previous target's model is no longer needed: free it before loading
    run.record_sources(stage, (spec.train_task or spec.task, spec.dev_task or spec.task))
    parent = stage.parent
    assert parent is not None and spec.train_task is not None
    encoder = str(parent.encoder_dir) if parent.kind != "pretrained" else run.model_path()
    cfg, seed = spec.train_config(), int(spec.seed or 0)
    model, result, n_dev = _fit(run, spec.task, spec.train_task, encoder, cfg, seed, limit=cfg.max_examples,
                                label=f"target {spec.task}", checkpoint=stage.dir / "checkpoint",
                                holdout=spec.holdout, target=True, dev_task=spec.dev_task,
                                log=log.task(f"dev/{spec.task}/{_primary(spec.task)}"))
    model = merged(model)  # LoRA folded in: the evaluation (here or loading model/) sees a plain model
    # The evaluation that follows in this process takes the model from memory; with
    # keep_models: false it is never written (saves a full model write per target stage).
    run.fresh = (stage.hash, model, run.load_tokenizer(encoder))
    in_process = run.cfg.executor == "local" and run.cfg.jobs == 1
    if run.cfg.keep_models or not in_process:
        save_model(model, run.fresh[2], stage.model_dir)
    if result.best_dev is not None:
        run.record(stage, spec.task, "eng", "dev", {_primary(spec.task): result.best_dev, "n": n_dev},
                   seed=seed, strategy="", intermediate=spec.set_name)
    info = {**result.record(), "history": result.history, "note": result.note}
    _write_resources(stage, result.resources())
    return info, _final({**info, **result.resources()})


# (c) -------------------------------------------------------------------- zero-shot evaluation
def evaluate(run: RunContext, spec: StageSpec) -> tuple[Stage, dict[str, dict[str, float]]]:
    """Zero-shot scores of the parent's model on the test split of every language."""
    stage = run.stage(spec)
    run.run_stage(stage, spec, lambda: _write_info(stage, _tracked(
        run, spec, lambda log: _evaluate(run, spec, stage, log))))
    return stage, json.loads((stage.dir / "scores.json").read_text(encoding="utf-8"))


def _evaluate(run: RunContext, spec: StageSpec, stage: Stage, log: StageLog) -> tuple[dict, dict]:
    from stopover.formats import get_format
    from stopover.predictions import write_predictions
    from stopover.train import predict

    task = get_task(spec.task)
    fmt = get_format(task.format)
    run.record_sources(stage, spec.tasks)
    assert stage.parent is not None
    model, tokenizer = _load_for_eval(run, task, fmt, stage.parent)
    ecfg = spec.eval_config()
    precision = run.eval_precision(model)[0]
    # settings a format resolves against the model (retrieval: the embedding layer), recorded
    eval_task, settings = task, {}
    resolve = getattr(fmt, "for_evaluation", None)
    if resolve is not None:
        source = run.cfg.tasks.get(task.name)
        eval_task, settings = resolve(task, model, override=source.layer if source else None,
                                      model_source=run.cfg.model)
    scores: dict[str, dict[str, float]] = {}
    bar = run.progress.add_task(f"evaluate {task.name}", total=len(spec.languages)) if run.progress else None
    for lang in spec.languages:
        part = stage.dir / "languages" / f"{lang}.json"
        if part.exists():  # resumed: this language was finished before the interruption
            scores[lang] = json.loads(part.read_text(encoding="utf-8"))
        else:
            examples = run.test_examples(task, lang, limit=ecfg.max_examples)
            if not examples:  # never a row scored on nothing
                raise DataError(f"task {task.name!r}, language {lang!r}: no test examples to evaluate")
            feats = run.features(fmt, task, examples, tokenizer, int(spec.max_length or ecfg.max_length),
                                 train=False, data_key=[run.fingerprint(task, ("test",), (lang,)), lang,
                                                        ecfg.max_examples] + (["holdout"] if spec.holdout else []))
            predictions = predict(fmt, model, feats, examples, eval_task, tokenizer, precision, ecfg.batch_size)
            scores[lang] = {**fmt.score(task, examples, predictions, lang), "n": float(len(examples))}
            # per-example predictions first: a language with a scores file always has them too
            write_predictions(stage.dir, task.name, lang, fmt.records(task, examples, predictions, lang))
            atomic_write_text(part, json.dumps(scores[lang]))
        log.tracker.log_metrics({f"test/{lang}/{m}": v for m, v in scores[lang].items() if m != "n"}, 0)
        if bar is not None:
            run.progress.update(bar, advance=1)
    atomic_write_text(stage.dir / "scores.json", json.dumps(scores, indent=2, sort_keys=True))
    return {"languages": list(spec.languages), "precision": precision, **settings}, {}


def _load_for_eval(run: RunContext, task: Any, fmt: Any, parent: Stage) -> tuple[Any, Any]:
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


# ----------------------------------------------------------------------- training glue
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


def _tracked(run: RunContext, spec: StageSpec, body: Callable[[StageLog], tuple[dict, dict]]) -> dict:
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


def _final(record: dict, prefix: str = "") -> dict[str, float]:
    """The numeric fields of a stage record, as a tracker's final metrics."""
    return {f"{prefix}{k}": float(v) for k, v in record.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _write_info(stage: Stage, info: dict) -> None:
    """The stage's record (`stage.json`: steps, dev scores, precision, trainable parameters), before
    its DONE marker. Deterministic: a resumed stage writes the same record (docs/reliability.md).
    """
    atomic_write_text(stage.dir / "stage.json", json.dumps(info, indent=2, sort_keys=True))


def _write_resources(stage: Stage, resources: dict) -> None:
    """`resources.json`: what the stage's training used (peak memory, stopover.train.TrainResult.resources).
    A measurement of one execution, not a result: it differs between runs, so it stays out of stage.json.
    """
    atomic_write_text(stage.dir / "resources.json", json.dumps(resources, indent=2, sort_keys=True))


def _primary(task: str) -> str:  # the task's headline metric
    from stopover.metrics import PRIMARY_METRIC

    return PRIMARY_METRIC[get_task(task).metric]


def _dev(run: RunContext, task: str, limit: int | None) -> list[dict]:  # English dev examples, if any
    try:
        return run.examples(task, "dev", "eng", limit=limit)
    except DataError:
        return []  # no English dev split available: keep the last checkpoint


def _fit(run: RunContext, name: str, train_from: str, encoder: str, cfg: Any, seed: int, *, limit: int | None,
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
    dev = _dev(run, dev_task, cfg.max_dev_examples)
    dev_fn: Callable[[Any], float] | None = None
    if dev:
        dev_feats = run.features(fmt, task, dev, tokenizer, cfg.max_length, train=False,
                                 data_key=[run.fingerprint(dev_task, ("dev",), ("eng",)), cfg.max_dev_examples])
        primary = _primary(name)

        def dev_score(m: Any) -> float:
            return fmt.score(task, dev, run.predict(fmt, m, dev_feats, dev, task, tokenizer), "eng")[primary]

        dev_fn = dev_score

    run.log(f"{label}: {len(examples)} examples, {cfg.epochs:g} epoch(s)")
    model, result = fit(fmt, task, encoder, feats, tokenizer, cfg, seed=seed, dev_score=dev_fn,
                        progress=run.progress, description=label, checkpoint_dir=checkpoint,
                        checkpoint_every=run.cfg.checkpoint_every, log=log)
    return model, result, len(dev)


def _fit_mixed(run: RunContext, spec: StageSpec, encoder: str, stage: Stage,
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
        dev = _dev(run, name, cfg.max_dev_examples)
        if dev:
            devs[name] = (task, fmt, dev, fmt.featurize(dev, tokenizer, task, length, train=False))

    def dev_fn(m: Any) -> float:
        scores = [fmt.score(task, dev, run.predict(fmt, m.tasks[name], feats, dev, task, tokenizer), "eng")[
            _primary(name)] for name, (task, fmt, dev, feats) in devs.items()]
        return sum(scores) / len(scores)

    label = f"intermediate {'+'.join(spec.tasks)} (mixed)"
    run.log(f"{label}, {mt.sampling}: {sum(len(p[3]) for p in parts)} features")
    return fit_mixed(parts, encoder, tokenizer, cfg, mt.sampling, mt.temperature, seed=int(spec.seed or 0),
                     dev_score=dev_fn if devs else None, progress=run.progress, description=label,
                     checkpoint_dir=stage.dir / "checkpoint" / "mixed", checkpoint_every=run.cfg.checkpoint_every,
                     log=log)


# ----------------------------------------------------------------------- one grid cell
def cell_specs(run: RunContext, cell: CellLike) -> tuple[StageSpec, StageSpec, StageSpec]:
    """The (intermediate, model, eval) specs of a cell; model is the intermediate one for a format
    that trains nothing (retrieval).
    """
    inter = run.intermediate_spec(cell.tasks, cell.seed, cell.budget)
    model = run.target_spec(cell.target, inter, cell.seed) if format_trains(get_task(cell.target).format) else inter
    return inter, model, run.eval_spec(cell.target, model)


def run_cell(run: RunContext, cell: CellLike, upto: str = "eval") -> None:
    """Run what one cell still needs, up to `upto` (intermediate | target | eval), and record its rows.

    Work is skipped from the end: a cell whose evaluation is done trains nothing,
    even if the models behind it were pruned (`keep_models: false`).
    """
    inter, model, ev = cell_specs(run, cell)
    if not (upto == "eval" and run.stage(ev).done):
        if upto == "target" and run.stage(model).done:
            return
        intermediate(run, inter)
        if upto == "intermediate":
            return
        if model is not inter:
            target(run, model)
        if upto == "target":
            return
    stage, scores = evaluate(run, ev)
    record_cell(run, stage, scores, cell)


def record_cell(run: RunContext, stage: Stage, scores: dict[str, dict[str, float]], cell: CellLike) -> None:
    """The cell's test rows: one per (language, metric), under the cell's strategy and set."""
    primary, data = _primary(cell.target), run.data(cell.target)
    revisions = {lang: data.revision_read(lang, "test") for lang in scores}
    family = family_of(cell.strategy)  # diversity / random / ...: what the analysis compares
    info_file = stage.dir / "stage.json"  # settings resolved against the model (retrieval: the layer)
    settings = {k: v for k, v in (json.loads(info_file.read_text(encoding="utf-8")) if info_file.exists()
                                  else {}).items() if k == "layer"}
    rows = [ResultRow(run=run.cfg.name, stage="eval", stage_hash=stage.hash, task=cell.target, language=lang,
                      split="test", metric=m, value=float(v), seed=cell.seed, strategy=cell.strategy,
                      intermediate=cell.intermediate, primary=(m == primary), target=cell.target,
                      model=run.cfg.model, n=int(metrics.get("n", 0)),
                      extra={"family": family, **settings,
                             **({"revision": revisions[lang]} if revisions[lang] else {})})
            for lang, metrics in scores.items() for m, v in metrics.items() if m != "n"]
    record_rows(run.run_dir, rows)
