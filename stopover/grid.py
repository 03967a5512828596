"""Expand a grid config into cells and stages, and run them.

A cell is (intermediate set, seed, target task). Intermediate sets come from
the selection strategies (stopover.selection); stages are deduplicated by hash
across the whole grid, so an intermediate set is trained once per seed and
re-used by every target, and re-running a finished grid trains nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from stopover.config import RunConfig, to_yaml
from stopover.errors import ConfigError
from stopover.store import atomic_write_text
from stopover.tasks import get_task

if TYPE_CHECKING:
    from stopover.pipeline import Pipeline


@dataclass(frozen=True)
class Cell:
    strategy: str
    intermediate: str  # the set's name ("none" or tasks joined by "+")
    tasks: tuple[str, ...]
    budget: int | None
    seed: int
    target: str
    reference: bool = False


def _needs_diversity(strategies: tuple[Any, ...]) -> bool:
    from stopover.selection import _parse_spec

    return any(_parse_spec(spec)[0].startswith("diversity") for spec in strategies)


def intermediate_sets(cfg: RunConfig, pipe: "Pipeline | None" = None) -> list[Any]:
    """The intermediate sets the config's strategies produce (stopover.selection).

    Diversity strategies get the pool's diversity profiles (stopover.diversity,
    cached), computed with the run's own encoder on each task's English train data.
    """
    from stopover.selection import SelectionContext, expand

    for name in cfg.pool:
        get_task(name)  # unknown pool tasks fail here, with did-you-mean
    budget = cfg.selection.budget
    if budget is None and cfg.intermediate.max_examples:
        budget = cfg.selection.k * cfg.intermediate.max_examples
    composite = profiles = union = None
    if cfg.pool and _needs_diversity(cfg.strategies):
        import os

        from stopover import diversity
        from stopover.upos import TRAIN_ENV, get_tagger

        tagger = None
        lab_conllu = Path(cfg.data_dir or "") / "upos-train.conllu"
        if cfg.lab is not None and not os.environ.get(TRAIN_ENV) and lab_conllu.exists():
            tagger = get_tagger(train_files=[lab_conllu])  # offline: the lab's own gold UPOS

        full = {name: diversity.profile_task(
                    name, data_dir=pipe.task_dir(get_task(name)) if pipe else None,
                    model_source=pipe.model_path() if pipe else cfg.model,
                    sample=cfg.selection.diversity_sample, tagger=tagger)
                for name in cfg.pool}
        profiles = {name: p["measures"] for name, p in full.items()}
        composite = diversity.composite(profiles)
        try:
            union = diversity.union_vendi(diversity.load_profile_embeddings(full))
        except Exception:  # no cached embeddings (semantic measures off): diversity-cover unavailable
            union = None
    ctx = SelectionContext(pool=tuple(cfg.pool), k=min(cfg.selection.k, max(1, len(cfg.pool))),
                           seed=0, draws=cfg.selection.draws, budget=budget, composite=composite,
                           profiles=profiles, union_vendi=union)
    measure = cfg.selection.diversity_measure
    specs = [({"name": s, "measure": measure} if s == "diversity-topk" and measure != "composite" else s)
             for s in cfg.strategies]
    return expand(specs, ctx)


def cells(cfg: RunConfig, sets: list[Any]) -> list[Cell]:
    for name in cfg.targets:
        get_task(name)
    out = []
    for iset in sets:
        for seed in cfg.seeds:
            for target in cfg.targets:
                out.append(Cell(iset.strategy, iset.name, tuple(iset.tasks), iset.budget, seed, target,
                                getattr(iset, "reference", False)))
    return out


def run_dir_for(cfg: RunConfig) -> Path:
    root = Path(cfg.output_dir).expanduser()
    run_dir = (root / cfg.name).resolve()
    if root.resolve() not in run_dir.parents:
        raise ConfigError(f"run name {cfg.name!r} would write outside output_dir {root}")
    return run_dir


def cell_stages(pipe: "Pipeline", cell: Cell) -> tuple[Any, Any, Any]:
    """The (intermediate, model, eval) stages of a cell, computed without running anything."""
    task = get_task(cell.target)
    inter, _ = pipe.intermediate_stage(cell.tasks, cell.seed, cell.budget)
    model = inter if task.format == "retrieval" else pipe.target_stage(task, inter, cell.seed)[0]
    ev, _ = pipe.eval_stage(task, model)
    return inter, model, ev


def run_cell(pipe: "Pipeline", cell: Cell, upto: str = "eval") -> None:
    """Run what one cell still needs, up to `upto` (intermediate | target | eval).

    Work is skipped from the end: a cell whose evaluation is done trains nothing,
    even if the models behind it were pruned (`keep_models: false`).
    """
    task = get_task(cell.target)
    _, model_stage, ev = cell_stages(pipe, cell)
    if upto == "eval" and ev.done:
        stage, scores = pipe.evaluate(task, model_stage, cell.seed)
    else:
        if upto == "target" and model_stage.done:
            return
        parent = pipe.intermediate(cell.tasks, cell.seed, cell.budget)
        if upto == "intermediate":
            return
        model_stage = parent if task.format == "retrieval" else pipe.target(task, parent, cell.seed)
        if upto == "target":
            return
        stage, scores = pipe.evaluate(task, model_stage, cell.seed)
    pipe.record_cell(stage, scores, task, seed=cell.seed, strategy=cell.strategy, intermediate=cell.intermediate)


def prune_models(pipe: "Pipeline", grid_cells: list[Cell]) -> int:
    """Delete model weights no unfinished evaluation of this grid needs; returns bytes freed."""
    import shutil

    def size(path: Path) -> int:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())

    needed: set[Path] = set()
    prunable: set[Path] = set()
    for cell in grid_cells:
        inter, model, ev = cell_stages(pipe, cell)
        outputs = [p for p in (inter.dir / "encoder" if inter.kind == "intermediate" else None,
                               model.dir / "model" if model.kind == "target" else None) if p is not None]
        (prunable if ev.done else needed).update(outputs)
    freed = 0
    for path in prunable - needed:
        if path.is_dir():
            freed += size(path)
            shutil.rmtree(path)
    return freed


def prepare_run_dir(cfg: RunConfig) -> Path:
    run_dir = run_dir_for(cfg)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
    except OSError as err:
        raise ConfigError(f"output_dir {cfg.output_dir}: cannot write there ({err.strerror}); "
                          "choose a writable output_dir=...") from None
    return run_dir


def materialize_lab(cfg: RunConfig, run_dir: Path) -> RunConfig:
    """With a `lab:` section and no data_dir: generate the lab's data once under the run directory."""
    if cfg.lab is None or cfg.data_dir is not None:
        return cfg
    import dataclasses
    import json

    from stopover.config import stable_hash, to_plain

    out = run_dir / "lab-data"
    key = stable_hash(to_plain(cfg.lab))
    manifest = out / "manifest.json"
    fresh = (manifest.exists() and (out / "upos-train.conllu").exists()
             and json.loads(manifest.read_text(encoding="utf-8")).get("config_hash") == key)
    if not fresh:
        from stopover.lab.datasets import write_lab_data
        from stopover.lab.variants import anchored_variant, default_variants

        variants = [anchored_variant(c) for c in cfg.lab.variants] if cfg.lab.variants else default_variants()
        needed = sorted({*cfg.pool, *cfg.targets, "lab-pos"})  # lab-pos: gold UPOS for the diversity tagger
        info = write_lab_data(out, variants, {"train": cfg.lab.train, "dev": cfg.lab.dev, "test": cfg.lab.test},
                              seed=cfg.lab.seed, tasks=[t for t in needed if t.startswith("lab-")])
        info["config_hash"] = key
        _write_upos_conllu(out / "lab-pos" / "eng" / "train.jsonl", out / "upos-train.conllu")
        atomic_write_text(manifest, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    from stopover.config import TaskSource
    from stopover.lab.variants import DEFAULT_CODES

    # evaluate lab targets in exactly the generated variants (unless the config restricts them further)
    generated = ("eng", *(cfg.lab.variants or DEFAULT_CODES))
    tasks = dict(cfg.tasks)
    for name in cfg.targets:
        if name.startswith("lab-") and not (name in tasks and tasks[name].languages):
            old = tasks.get(name, TaskSource())
            tasks[name] = dataclasses.replace(old, languages=generated)
    return dataclasses.replace(cfg, data_dir=str(out), tasks=tasks)


def _write_upos_conllu(jsonl: Path, out: Path) -> None:
    """The lab's gold-tagged English as CoNLL-U: training data for the diversity module's UPOS
    tagger when no English UD treebank is at hand (offline demo)."""
    import json

    blocks = []
    for line in jsonl.read_text(encoding="utf-8").splitlines():
        ex = json.loads(line)
        blocks.append("\n".join(f"{i}\t{w}\t_\t{t}\t_\t_\t_\t_\t_\t_"
                                for i, (w, t) in enumerate(zip(ex["tokens"], ex["tags"]), start=1)))
    atomic_write_text(out, "\n\n".join(blocks) + "\n\n")


def write_typology_tables(cfg: RunConfig, run_dir: Path) -> None:
    """typology.csv + covariates.csv for every evaluated language (real ones via URIEL+, lab ones
    from the lab's own feature vectors), for the analysis and the report."""
    import pandas as pd

    from stopover.pipeline import Pipeline
    from stopover.store import read_results

    langs = sorted({r.language for r in read_results(run_dir) if r.stage == "eval"} - {"eng"})
    lab = [l for l in langs if l.startswith("lab-")]
    real = [l for l in langs if not l.startswith("lab-")]
    typ, cov = [], []
    if lab:
        from stopover.lab.variants import anchored_variant, lab_typology_tables

        t, c = lab_typology_tables([anchored_variant(code) for code in lab])
        typ.append(t)
        cov.append(c)
    if real:
        from stopover.typology import write_run_tables

        tmp = run_dir / ".typology-real"
        write_run_tables(tmp, real)
        typ.append(pd.read_csv(tmp / "typology.csv"))
        cov.append(pd.read_csv(tmp / "covariates.csv"))
    if typ:
        atomic_write_text(run_dir / "typology.csv", pd.concat(typ).to_csv(index=False))
        atomic_write_text(run_dir / "covariates.csv", pd.concat(cov).to_csv(index=False))


def run_grid(cfg: RunConfig, *, progress: Any = None, log: Callable[[str], None] = lambda m: None,
             sets: list[Any] | None = None) -> tuple[Path, "Pipeline"]:
    """Run every cell of the grid with the configured executor; finished stages are skipped."""
    from stopover.pipeline import Pipeline

    run_dir = prepare_run_dir(cfg)
    cfg = materialize_lab(cfg, run_dir)
    pipe = Pipeline(cfg, run_dir, progress=progress, log=log)
    if sets is None:
        sets = intermediate_sets(cfg, pipe)
    grid_cells = cells(cfg, sets)
    if cfg.executor == "local" and cfg.jobs == 1:
        for cell in grid_cells:
            run_cell(pipe, cell)
    else:
        from stopover.executors import run_waves

        run_waves(cfg, run_dir, grid_cells, log=log)
        for cell in grid_cells:  # everything is done now: this only collects and records
            run_cell(pipe, cell)
    if not cfg.keep_models:
        freed = prune_models(pipe, grid_cells)
        if freed:
            log(f"pruned {freed / 2**20:.0f} MiB of model weights no pending evaluation needs (keep_models: false)")
    return run_dir, pipe


@dataclass
class PlannedStage:
    kind: str
    hash: str
    label: str
    done: bool
    examples: int | None  # examples this stage processes (train x epochs, or test), None if unknown
    cells: int = 0  # grid cells that use it


def plan_grid(cfg: RunConfig) -> list[PlannedStage]:
    """Every distinct stage of the grid, without running anything."""
    from stopover.errors import StopoverError
    from stopover.pipeline import Pipeline

    cfg = materialize_lab(cfg, prepare_run_dir(cfg)) if cfg.lab is not None else cfg
    pipe = Pipeline(cfg, run_dir_for(cfg))
    stages: dict[str, PlannedStage] = {}

    def count(task, split, lang, cap):
        try:
            n = len(pipe.examples(task, split, lang))
        except StopoverError:
            return cap  # not available offline: the cap is the best estimate
        return min(n, cap) if cap else n

    def add(kind, stage, label, examples):
        entry = stages.setdefault(stage.hash, PlannedStage(kind, stage.hash, label, stage.done, examples))
        entry.cells += 1

    for cell in cells(cfg, intermediate_sets(cfg, pipe)):
        task = get_task(cell.target)
        parent, _ = pipe.intermediate_stage(cell.tasks, cell.seed, cell.budget)
        if cell.tasks:
            per_task = cell.budget // len(cell.tasks) if cell.budget else cfg.intermediate.max_examples
            sizes = [count(get_task(t), "train", "eng", per_task) for t in cell.tasks]
            ex = None if None in sizes else int(sum(sizes) * cfg.intermediate.epochs)
            add("intermediate", parent, f"{cell.intermediate} (seed {cell.seed})", ex)
        model_stage = parent
        if task.format != "retrieval":
            model_stage, _ = pipe.target_stage(task, parent, cell.seed)
            train_task = get_task(task.train_task) if task.train_task else task
            n = count(train_task, "train", "eng", cfg.target.max_examples)
            add("target", model_stage, f"{cell.target} <- {cell.intermediate} (seed {cell.seed})",
                None if n is None else int(n * cfg.target.epochs))
        ev, _ = pipe.eval_stage(task, model_stage)
        sizes = [count(task, "test", lang, cfg.evaluation.max_examples) for lang in pipe.languages(task)]
        add("eval", ev, f"{cell.target} x {len(sizes)} languages <- {cell.intermediate} (seed {cell.seed})",
            None if None in sizes else sum(sizes))
    return list(stages.values())
