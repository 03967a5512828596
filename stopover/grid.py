"""Expand a grid config into cells and stages, and run them.

A cell is (intermediate set, seed, target task). Intermediate sets come from
the selection strategies (stopover.selection); stages are deduplicated by hash
across the whole grid, so an intermediate set is trained once per seed and
re-used by every target, and re-running a finished grid trains nothing.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from stopover.config import RunConfig, to_yaml
from stopover.data import find_local_file
from stopover.errors import ConfigError, StorageError, TaskError
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


def intermediate_sets(cfg: RunConfig, pipe: "Pipeline | None" = None, *, profiles: bool = True) -> list[Any]:
    """The intermediate sets the config's strategies produce (stopover.selection).

    Diversity strategies get the pool's diversity profiles (stopover.diversity,
    cached), computed with the run's own encoder on each task's English train data.
    `profiles=False` (planning without the data): diversity strategies pick
    placeholder sets of the right size and budget, named "<strategy> (chosen at
    run time)"; which tasks they hold is unknown until the profiles exist.
    """
    from stopover.selection import SelectionContext, expand

    for name in cfg.pool:
        get_task(name)  # unknown pool tasks fail here, with did-you-mean
    budget = cfg.selection.budget
    if budget is None and cfg.intermediate.max_examples:
        budget = cfg.selection.k * cfg.intermediate.max_examples
    composite = union = None
    placeholder = cfg.pool and _needs_diversity(cfg.strategies) and not profiles
    profiles = None
    if placeholder:  # equal scores: the first k pool tasks stand in for the unknown choice
        composite = {name: 0.0 for name in cfg.pool}
        union = lambda tasks: float(len(tasks))  # noqa: E731
    elif cfg.pool and _needs_diversity(cfg.strategies):
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
    specs = [({"name": s, "measure": measure} if s == "diversity-topk" and measure != "composite"
              and not placeholder else s) for s in cfg.strategies]
    sets = expand(specs, ctx)
    if placeholder:
        import dataclasses

        sets = [dataclasses.replace(s, name=f"{s.strategy} (chosen at run time)")
                if s.strategy.startswith("diversity") else s for s in sets]
    return sets


def cells(cfg: RunConfig, sets: list[Any]) -> list[Cell]:
    for name in cfg.targets:
        get_task(name)
    for name in cfg.tasks:  # a misspelt `tasks:` entry would otherwise be ignored without a word
        try:
            get_task(name)
        except TaskError as err:
            raise TaskError(f"tasks.{name if name.isprintable() else repr(name)}: {err}") from None
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


# errno values that mean "this machine cannot store the run": the user can fix them, so they
# are one-line errors; any other OSError is a bug and keeps its traceback.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


@contextmanager
def storage_errors(run_dir: Path) -> Iterator[None]:
    """Turn a full disk (or a lost permission) while a run writes into a one-line StorageError."""
    try:
        yield
    except OSError as err:
        if err.errno not in _STORAGE_ERRNOS:
            raise
        where = err.filename or run_dir
        raise StorageError(f"cannot write {where}: {err.strerror or os.strerror(err.errno)}; free disk space "
                           "(or fix the permissions) and re-run the same command: finished stages are "
                           "kept, the interrupted one starts again") from None


def run_grid(cfg: RunConfig, *, progress: Any = None, log: Callable[[str], None] = lambda m: None,
             sets: list[Any] | None = None) -> tuple[Path, "Pipeline"]:
    """Run every cell of the grid with the configured executor; finished stages are skipped."""
    run_dir = prepare_run_dir(cfg)
    with storage_errors(run_dir):
        return _run_grid(cfg, run_dir, progress=progress, log=log, sets=sets)


def _run_grid(cfg: RunConfig, run_dir: Path, *, progress: Any, log: Callable[[str], None],
              sets: list[Any] | None) -> tuple[Path, "Pipeline"]:
    from stopover.pipeline import Pipeline

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


# English training-set sizes as published, for planning when the data is not on this machine
# (`stopover plan` never downloads): GLUE (MNLI, QQP), Bowman et al. 2015 (SNLI: 550,152 pairs less
# the 785 without a gold label), Nie et al. 2020 (ANLI r1-r3: 16,946 + 45,460 + 100,459), ANLI+ as
# their sum with MNLI and SNLI (Phang et al. 2020), Rajpurkar et al. 2016/2018 (SQuAD 1.1 / 2.0),
# Zellers et al. 2019 (HellaSwag), Talmor et al. 2019 (CommonsenseQA), Huang et al. 2019 (Cosmos QA),
# CCGbank sections 02-21 (Hockenmaier & Steedman 2007), and Hu et al. 2020, Table 1, for XTREME's
# English training sets (PAWS-X, UD POS, PAN-X, TyDi QA-GoldP).
PUBLISHED_TRAIN_SIZES = {
    "mnli": 392_702, "qqp": 363_846, "snli": 549_367, "anli": 162_865, "anli_plus": 1_104_934,
    "squad": 87_599, "squad_v2": 130_319, "hellaswag": 39_905, "commonsenseqa": 9_741, "cosmosqa": 25_262,
    "ccg": 39_604, "pawsx": 49_401, "udpos": 21_253, "panx": 20_000, "tydiqa": 3_696,
}
# Test-set sizes that are the same in every language of a target (Hu et al. 2020, Table 1).
PUBLISHED_TEST_SIZES = {"xnli": 5_010, "pawsx": 2_000, "xquad": 1_190}

# The GPU-time assumption of `stopover plan`: XLM-R large (24 layers, hidden 1024, 303M parameters
# outside the embeddings) costs about 6 x 303M + attention = 1.9 GFLOP per token to train; one
# A100 (312 TFLOP/s bf16 peak) at ~28% utilisation, typical of encoder fine-tuning with mixed
# precision, trains ~45,000 sequence positions per second. Inference is a forward pass (a third of
# the FLOPs): 3x that. Positions are counted as padded to max_length, as jiant pads, so for
# stopover, which pads per length-grouped batch, the estimate is an upper bound. It is an
# assumption to replace with a measurement: `stopover plan --gpu-throughput N`.
GPU_TRAIN_TOKENS_PER_S = 45_000
GPU_INFERENCE_SPEEDUP = 3.0


@dataclass
class PlannedStage:
    kind: str
    hash: str
    label: str
    done: bool
    examples: int | None  # examples this stage processes (train x epochs, or test), None if unknown
    cells: int = 0  # grid cells that use it
    positions: int | None = None  # sequence positions processed: sequences x max_length, None if unknown
    published: bool = False  # some of its example counts are published sizes (the data is not here)


@dataclass
class Plan:
    stages: list[PlannedStage]
    cells: int
    placeholder_sets: int = 0  # diversity sets whose tasks are chosen at run time (no data here)


def plan_grid(cfg: RunConfig, *, hub: bool = False) -> list[PlannedStage]:
    """Every distinct stage of the grid, without running anything (see `plan`)."""
    return plan(cfg, hub=hub).stages


def plan(cfg: RunConfig, *, hub: bool = False) -> Plan:
    """The grid's distinct stages and what they process, without running anything.

    Data is counted where it is on this machine (local files, `$STOPOVER_HUB_MIRROR`, or with
    `hub=True` whatever `datasets` can load, downloads included); elsewhere an English training
    split counts at its published size (`PUBLISHED_TRAIN_SIZES`) and other splits are unknown.
    """
    import os

    from stopover.errors import StopoverError
    from stopover.pipeline import Pipeline

    cfg = materialize_lab(cfg, prepare_run_dir(cfg)) if cfg.lab is not None else cfg
    pipe = Pipeline(cfg, run_dir_for(cfg))
    stages: dict[str, PlannedStage] = {}
    loadable = hub or bool(os.environ.get("STOPOVER_HUB_MIRROR"))

    def here(task, split, lang, target=False) -> bool:
        """Whether (task, split, language) can be read without the network."""
        if loadable:
            return True
        if task.union_of:
            return all(here(get_task(t), split, lang, target) for t in task.union_of)
        try:
            langs = pipe.train_languages(task, target=target) if split == "train" else (lang,)
        except StopoverError:
            return False
        directory = pipe.task_dir(task)
        for code in langs:
            mapped = pipe.mapped_file(task, code, split)
            if mapped is None or (mapped is False and (directory is None or
                                                       find_local_file(directory, task, code, split) is None)):
                return False
        return True

    def count(task, split, lang, cap, *, holdout=False, target=False) -> tuple[int | None, bool]:
        """(examples, from a published size)."""
        n, published = None, False
        if here(task, split, lang, target) and not task.union_of:
            try:
                n = len(pipe.train_examples(task, holdout=holdout, target=target) if split == "train"
                        else pipe.test_examples(task, lang) if split == "test" else pipe.examples(task, split, lang))
            except StopoverError:
                n = None
        if n is None and split == "train" and task.name in PUBLISHED_TRAIN_SIZES:
            n, published = PUBLISHED_TRAIN_SIZES[task.name] // (2 if holdout else 1), True
        elif n is None and split == "test" and task.name in PUBLISHED_TEST_SIZES:
            n, published = PUBLISHED_TEST_SIZES[task.name], True
        if n is None:
            return cap, False  # unknown: the cap, if any, is the best estimate
        return (min(n, cap) if cap else n), published

    def sequences(task) -> int:
        """Sequences the encoder reads per example: one per choice; both sides of a retrieval pair."""
        return {"multiple_choice": len(task.labels), "retrieval": 2}.get(task.format, 1)

    def add(kind, stage, label, examples, positions, published):
        entry = stages.setdefault(stage.hash, PlannedStage(kind, stage.hash, label, stage.done, examples,
                                                           positions=positions, published=published))
        entry.cells += 1

    needs_profiles = bool(cfg.pool) and _needs_diversity(cfg.strategies)
    profiles = not needs_profiles or all(here(get_task(t), "train", "eng") for t in cfg.pool)
    sets = intermediate_sets(cfg, pipe, profiles=profiles)
    grid_cells = cells(cfg, sets)
    for cell in grid_cells:
        task = get_task(cell.target)
        parent, _ = pipe.intermediate_stage(cell.tasks, cell.seed, cell.budget)
        if cell.tasks:
            per_task = cell.budget // len(cell.tasks) if cell.budget else cfg.intermediate.max_examples
            ex = pos = 0
            published = False
            for name in cell.tasks:
                t = get_task(name)
                tcfg = pipe.train_config(t, cfg.intermediate)
                n, pub = count(t, "train", "eng", per_task)
                published |= pub
                if n is None or ex is None:
                    ex = pos = None
                    continue
                # a mixed stage runs intermediate.epochs over all tasks; a sequential one each task's own
                epochs = cfg.intermediate.epochs if len(cell.tasks) > 1 and cfg.multitask.mode == "mixed" \
                    else tcfg.epochs
                ex += int(n * epochs)
                pos += int(n * epochs) * sequences(t) * tcfg.max_length
            add("intermediate", parent, f"{cell.intermediate} (seed {cell.seed})", ex, pos, published)
        model_stage = parent
        if task.format != "retrieval":
            model_stage, _ = pipe.target_stage(task, parent, cell.seed)
            train_task = get_task(task.train_task) if task.train_task else task
            tcfg = pipe.train_config(task, cfg.target)
            n, pub = count(train_task, "train", "eng", tcfg.max_examples, holdout=pipe._holdout(task), target=True)
            ex = None if n is None else int(n * tcfg.epochs)
            add("target", model_stage, f"{cell.target} <- {cell.intermediate} (seed {cell.seed})", ex,
                None if ex is None else ex * sequences(task) * tcfg.max_length, pub)
        ev, _ = pipe.eval_stage(task, model_stage)
        sizes = [count(task, "test", lang, cfg.evaluation.max_examples) for lang in pipe.languages(task)]
        known = None if any(n is None for n, _ in sizes) else sum(n for n, _ in sizes)
        add("eval", ev, f"{cell.target} x {len(sizes)} languages <- {cell.intermediate} (seed {cell.seed})",
            known, None if known is None else known * sequences(task) * pipe.eval_length(task),
            any(p for _, p in sizes))
    placeholders = len({s.name for s in sets if s.name.endswith("(chosen at run time)")})
    return Plan(list(stages.values()), len(grid_cells), placeholders)


def gpu_hours(stages: list[PlannedStage], train_tokens_per_s: float = GPU_TRAIN_TOKENS_PER_S
              ) -> dict[str, tuple[float, int]]:
    """{kind: (GPU-hours of its stages still to run whose size is known, stages of unknown size)}.

    Training stages at `train_tokens_per_s` sequence positions per second, evaluations at
    GPU_INFERENCE_SPEEDUP times that (see GPU_TRAIN_TOKENS_PER_S for the assumption).
    """
    out: dict[str, tuple[float, int]] = {}
    for kind in ("intermediate", "target", "eval"):
        todo = [s for s in stages if s.kind == kind and not s.done]
        rate = train_tokens_per_s * (GPU_INFERENCE_SPEEDUP if kind == "eval" else 1.0)
        seconds = sum(s.positions for s in todo if s.positions is not None) / rate
        out[kind] = (seconds / 3600.0, sum(1 for s in todo if s.positions is None))
    return out
