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
stage that runs has a tracker (`tracking:`, stopover.tracking; `stopover.fitting.StageLog`),
which observes the stage and is part of no identity. The training glue the stages share (data
and dev scorer of a training stage, the mixed stage, stage records) is stopover.fitting.
Each training stage's `stage.json` records its trainable and total parameter counts
(`TrainResult.record`), and `resources.json` its peak memory (a measurement that differs
between runs, so kept out of stage.json).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from stopover.context import RunContext, example_texts
from stopover.errors import DataError
from stopover.fitting import (
    StageLog,
    final_metrics,
    fit_mixed_stage,
    fit_task,
    load_for_eval,
    primary_metric,
    tracked,
    write_info,
    write_resources,
)
from stopover.selection import family_of
from stopover.sources import holdout_half
from stopover.spec import StageSpec, format_trains
from stopover.store import ResultRow, Stage, atomic_write_text, record_rows
from stopover.tasks import get_task

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
    return run.run_stage(stage, spec, lambda: write_info(stage, tracked(
        run, spec, lambda log: _train_intermediate(run, spec, stage, log))))


def _train_intermediate(run: RunContext, spec: StageSpec, stage: Stage, log: StageLog) -> tuple[dict, dict]:
    from stopover.models import save_encoder

    run.fresh = None  # free the last target model before loading more
    base = run.model_path()
    seed = int(spec.seed or 0)
    run.record_sources(stage, spec.tasks)
    info: dict[str, Any] = {"tasks": {}}
    if spec.schedule is not None:  # mixed multi-task (no peft: refused by the config)
        model, result = fit_mixed_stage(run, spec, base, stage, log.task(f"dev/{'+'.join(spec.tasks)}/mean"))
        info["mixed"] = result.record()
        write_resources(stage, {"mixed": result.resources()})
        save_encoder(model, run.load_tokenizer(base), stage.encoder_dir)
        return info, {**final_metrics(info["mixed"]), **final_metrics(result.resources())}
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
        model, result, n_dev = fit_task(run, name, name, encoder, cfg, seed,
                                    limit=spec.per_task_examples, label=f"intermediate {name}",
                                    checkpoint=stage.dir / "checkpoint" / name,
                                    log=log.task(f"dev/{name}/{primary_metric(name)}"))
        log.advance(result.steps)
        info["tasks"][name] = result.record()
        resources[name] = result.resources()
        write_resources(stage, resources)  # a resumed stage's earlier tasks: measured by the earlier process
        final.update(final_metrics({**info["tasks"][name], **resources[name]}, f"{name}/"))
        if result.best_dev is not None:  # before the marker: a resume that skips this task needs the row
            run.record(stage, name, "eng", "dev", {primary_metric(name): result.best_dev, "n": n_dev}, seed=seed,
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
    return run.run_stage(stage, spec, lambda: write_info(stage, tracked(
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
    model, result, n_dev = fit_task(run, spec.task, spec.train_task, encoder, cfg, seed, limit=cfg.max_examples,
                                label=f"target {spec.task}", checkpoint=stage.dir / "checkpoint",
                                holdout=spec.holdout, target=True, dev_task=spec.dev_task,
                                log=log.task(f"dev/{spec.task}/{primary_metric(spec.task)}"))
    model = merged(model)  # LoRA folded in: the evaluation (here or loading model/) sees a plain model
    # The evaluation that follows in this process takes the model from memory; with
    # keep_models: false it is never written (saves a full model write per target stage).
    run.fresh = (stage.hash, model, run.load_tokenizer(encoder))
    in_process = run.cfg.executor == "local" and run.cfg.jobs == 1
    if run.cfg.keep_models or not in_process:
        save_model(model, run.fresh[2], stage.model_dir)
    if result.best_dev is not None:
        run.record(stage, spec.task, "eng", "dev", {primary_metric(spec.task): result.best_dev, "n": n_dev},
                   seed=seed, strategy="", intermediate=spec.set_name)
    info = {**result.record(), "history": result.history, "note": result.note}
    write_resources(stage, result.resources())
    return info, final_metrics({**info, **result.resources()})


# (c) -------------------------------------------------------------------- zero-shot evaluation
def evaluate(run: RunContext, spec: StageSpec) -> tuple[Stage, dict[str, dict[str, float]]]:
    """Zero-shot scores of the parent's model on the test split of every language."""
    stage = run.stage(spec)
    run.run_stage(stage, spec, lambda: write_info(stage, tracked(
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
    model, tokenizer = load_for_eval(run, task, fmt, stage.parent)
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
    primary, data = primary_metric(cell.target), run.data(cell.target)
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
