"""Expand a grid config into cells, and run them.

A cell is (intermediate set, seed, target task). Intermediate sets come from
the selection strategies (stopover.selection); stages are deduplicated by their
spec's hash across the whole grid (stopover.spec), so an intermediate set is
trained once per seed and re-used by every target, and re-running a finished
grid trains nothing. The oracle strategy is resolved last, from the English
dev scores of the target stages the other strategies finished. Planning lives
in stopover.plan, one cell's stages in stopover.pipeline, executors in
stopover.executors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from stopover.config import RunConfig, to_yaml
from stopover.context import RunContext
from stopover.errors import ConfigError, TaskError
from stopover.selection import family_of, parse_spec
from stopover.store import atomic_write_text, run_dir_for, storage_errors
from stopover.tasks import get_task

# Strategies that rank the pool by its diversity profiles (computed before the sets exist).
# TODO(selection): a `needs_profiles` fact registered with each strategy would replace this set.
ORACLE = "oracle"  # chosen after the other strategies' target stages, from their English dev scores
PLACEHOLDER = "(chosen at run time)"


@dataclass(frozen=True)
class Cell:
    strategy: str
    intermediate: str  # the set's name ("none" or tasks joined by "+")
    tasks: tuple[str, ...]
    budget: int | None
    seed: int
    target: str
    reference: bool = False


def needs_diversity(strategies: tuple[Any, ...]) -> bool:
    return any(family_of(parse_spec(spec)[0]) == "diversity" for spec in strategies)


def _diversity_profiles(cfg: RunConfig, run: RunContext | None) -> tuple[Any, Any, Any]:
    """(profiles, composite, union Vendi) of the pool, with the run's own encoder on English train data."""
    import os

    from stopover import diversity
    from stopover.upos import TRAIN_ENV, get_tagger

    tagger = None
    lab_conllu = Path(cfg.data_dir or "") / "upos-train.conllu"
    if cfg.selection.upos_train:
        tagger = get_tagger(train_files=list(cfg.selection.upos_train))
    elif cfg.lab is not None and not os.environ.get(TRAIN_ENV) and lab_conllu.exists():
        tagger = get_tagger(train_files=[lab_conllu])  # offline: the lab's own gold UPOS
    full = {name: diversity.profile_task(
                name, data_dir=run.data(name).directory if run else None,
                model_source=run.model_path() if run else cfg.model,
                sample=cfg.selection.diversity_sample, tagger=tagger,
                examples=run.examples(name, "train", "eng") if run else None)
            for name in cfg.pool}
    profiles = {name: p["measures"] for name, p in full.items()}
    try:
        union = diversity.union_vendi(diversity.load_profile_embeddings(full))
    except Exception:  # no cached embeddings (semantic measures off): diversity-cover unavailable
        union = None
    return profiles, diversity.composite(profiles), union


def intermediate_sets(cfg: RunConfig, pipe: RunContext | None = None, *, profiles: bool = True,
                      dev_scores: dict[str, float] | None = None) -> list[Any]:
    """The intermediate sets the config's strategies produce (stopover.selection).

    Diversity strategies get the pool's diversity profiles (stopover.diversity,
    cached), computed with the run's own encoder on each task's English train data.
    `profiles=False` (planning without the data): diversity strategies pick
    placeholder sets of the right size and budget, named "<strategy> (chosen at
    run time)"; which tasks they hold is unknown until the profiles exist.
    `dev_scores` ({set name: English dev score} of one target) lets the oracle choose.
    """
    from stopover.selection import SelectionContext, expand

    for name in cfg.pool:
        get_task(name)  # unknown pool tasks fail here, with did-you-mean
    budget = cfg.selection.budget
    if budget is None and cfg.intermediate.max_examples:
        budget = cfg.selection.k * cfg.intermediate.max_examples
    composite = union = measures = None
    placeholder = bool(cfg.pool) and needs_diversity(cfg.strategies) and not profiles
    if placeholder:  # equal scores: the first k pool tasks stand in for the unknown choice
        composite = {name: 0.0 for name in cfg.pool}
        union = lambda tasks: float(len(tasks))  # noqa: E731
    elif cfg.pool and needs_diversity(cfg.strategies):
        measures, composite, union = _diversity_profiles(cfg, pipe)
        if pipe is not None:
            pipe.pool_diversity = dict(composite)
    ctx = SelectionContext(pool=tuple(cfg.pool), k=min(cfg.selection.k, max(1, len(cfg.pool))),
                           seed=0, draws=cfg.selection.draws, budget=budget, composite=composite,
                           profiles=measures, union_vendi=union, dev_scores=dev_scores)
    measure = cfg.selection.diversity_measure
    specs = [({"name": s, "measure": measure} if s == "diversity-topk" and measure != "composite"
              and not placeholder else s) for s in cfg.strategies]
    sets = expand(specs, ctx)
    if placeholder:
        sets = [dataclasses.replace(s, name=f"{s.strategy} {PLACEHOLDER}")
                if family_of(s.strategy) == "diversity" else s for s in sets]
    return sets


def cells(cfg: RunConfig, sets: list[Any]) -> list[Cell]:
    for name in cfg.targets:
        get_task(name)
    for name in cfg.tasks:  # a misspelt `tasks:` entry would otherwise be ignored without a word
        try:
            get_task(name)
        except TaskError as err:
            raise TaskError(f"tasks.{name if name.isprintable() else repr(name)}: {err}") from None
    return [Cell(iset.strategy, iset.name, tuple(iset.tasks), iset.budget, seed, target,
                 getattr(iset, "reference", False))
            for iset in sets for seed in cfg.seeds for target in cfg.targets]


def oracle_cells(cfg: RunConfig, run_dir: Path, grid_cells: tuple[Cell, ...] | list[Cell] = ()) -> list[Cell]:
    """The oracle's cells, one set per target: the set whose target stage scored best on English dev
    (mean over seeds) among those already finished in this run; none before any finished. The
    chosen set keeps the budget it had in `grid_cells`, so its stages are re-used, not retrained.
    """
    if not any(parse_spec(s)[0] == ORACLE for s in cfg.strategies) or not (run_dir / "results.jsonl").exists():
        return []
    from stopover.selection import dev_scores_from_results
    from stopover.store import read_results

    rows = [r for r in read_results(run_dir) if r.stage == "target"]
    out = []
    for target in cfg.targets:
        dev = dev_scores_from_results(rows, target)
        if dev:
            (chosen,) = intermediate_sets(dataclasses.replace(cfg, strategies=(ORACLE,)), dev_scores=dev)
            budget = next((c.budget for c in grid_cells if c.intermediate == chosen.name and c.target == target),
                          chosen.budget)
            out.extend(Cell(chosen.strategy, chosen.name, tuple(chosen.tasks), budget, seed, target, True)
                       for seed in cfg.seeds)
    return out


def prepare_run_dir(cfg: RunConfig) -> Path:
    """Create the run directory and write the run's resolved config.yaml into it."""
    run_dir = run_dir_for(cfg)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
    except OSError as err:
        raise ConfigError(f"output_dir {cfg.output_dir}: cannot write there ({err.strerror}); "
                          "choose a writable output_dir=...") from None
    return run_dir


def prune_models(pipe: RunContext, grid_cells: list[Cell]) -> int:
    """Delete model weights no unfinished evaluation of this grid needs; returns bytes freed."""
    import shutil

    from stopover.pipeline import cell_specs

    def size(path: Path) -> int:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())

    needed: set[Path] = set()
    prunable: set[Path] = set()
    for cell in grid_cells:
        inter, model, ev = (pipe.stage(s) for s in cell_specs(pipe, cell))
        outputs = [p for p in (inter.encoder_dir if inter.kind == "intermediate" else None,
                               model.model_dir if model.kind == "target" else None) if p is not None]
        (prunable if ev.done else needed).update(outputs)
    freed = 0
    for path in prunable - needed:
        if path.is_dir():
            freed += size(path)
            shutil.rmtree(path)
    return freed


def write_run_tables(run_dir: Path, pipe: RunContext) -> None:
    """The run's tables for the analysis, at the end of every run: typology.csv + covariates.csv for
    every evaluated language (`stopover.typology.write_run_tables`, the one writer: URIEL+ for real
    languages, the lab's own facts for lab ones) and, when the pool was profiled,
    task_diversity.csv (the set-level analysis's diversity of each set).
    """
    from stopover.store import read_results
    from stopover.typology import write_run_tables as write_typology

    langs = sorted({r.language for r in read_results(run_dir) if r.stage == "eval"} - {"eng"})
    if langs:
        write_typology(run_dir, langs)
    if pipe.pool_diversity:
        from stopover.analysis.sets import write_task_diversity

        write_task_diversity(run_dir, pipe.pool_diversity)
    write_fertility(run_dir, pipe)


# Canonical fields holding a test language's own text (retrieval's `target` is the English side).
_LANGUAGE_TEXT_FIELDS = ("text_a", "text_b", "question", "context", "source", "tokens", "endings")


def write_fertility(run_dir: Path, pipe: RunContext) -> None:
    """fertility.csv: subwords per word of each evaluated language's test text under the run's
    tokenizer (a covariate of the analysis: over-segmented languages transfer worse).
    """
    from stopover.covariates import fertility, write_fertility_table

    texts: dict[str, list[str]] = {}
    for target in pipe.cfg.targets:
        data = pipe.data(target)
        for lang in data.languages:
            for ex in pipe.test_examples(target, lang, limit=pipe.cfg.evaluation.max_examples):
                for key in _LANGUAGE_TEXT_FIELDS:
                    value = ex.get(key)
                    if isinstance(value, str):
                        texts.setdefault(lang, []).append(value)
                    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                        texts.setdefault(lang, []).append(" ".join(value))
    if not texts:
        return
    tokenizer = pipe.load_tokenizer(pipe.model_path())
    rows = []
    for lang, chunk in sorted(texts.items()):
        value = fertility(tokenizer, chunk)
        if value == value:  # NaN: no words (nothing to measure)
            rows.append({"language": lang, "tokenizer": pipe.cfg.model, "fertility": round(value, 4),
                         "n_words": sum(len(t.split()) for t in chunk)})
    if rows:
        write_fertility_table(run_dir, rows)


def run_grid(cfg: RunConfig, *, progress: Any = None, log: Callable[[str], None] = lambda m: None,
             sets: list[Any] | None = None) -> tuple[Path, RunContext]:
    """Run every cell of the grid with the configured executor; finished stages are skipped.
    Ends, on every run, by writing the run's tables for the analysis (`write_run_tables`).
    """
    run_dir = prepare_run_dir(cfg)
    with storage_errors(run_dir):
        return _run_grid(cfg, run_dir, progress=progress, log=log, sets=sets)


def check_extras(cfg: RunConfig) -> None:
    """ConfigError, before anything trains, when `peft:` or `tracking:` needs a library that is absent
    (otherwise the first stage that needs it would fail, possibly hours into a run).
    """
    import importlib.util

    sections = [cfg.intermediate.peft, cfg.target.peft, *(s.train.get("peft") for s in cfg.tasks.values())]
    if any(section is not None for section in sections) and importlib.util.find_spec("peft") is None:
        raise ConfigError("peft: LoRA needs the peft package: pip install 'stopover[peft]'")
    module = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}.get(cfg.tracking.backend)
    if module is not None and importlib.util.find_spec(module) is None:
        extra = "pip install wandb" if module == "wandb" else "pip install 'stopover[tracking]'"
        raise ConfigError(f"tracking.backend = {cfg.tracking.backend} needs the {module} package: {extra}")


def _run_grid(cfg: RunConfig, run_dir: Path, *, progress: Any, log: Callable[[str], None],
              sets: list[Any] | None) -> tuple[Path, RunContext]:
    from stopover.lab.materialize import materialize_lab

    check_extras(cfg)
    cfg = materialize_lab(cfg, run_dir / "lab-data")
    pipe = RunContext(cfg, run_dir, progress=progress, log=log, resolve_hub=True)
    if sets is None:
        sets = intermediate_sets(cfg, pipe)
    grid_cells = cells(cfg, sets)
    _run_cells(cfg, run_dir, pipe, grid_cells, log)
    extra = [c for c in oracle_cells(cfg, run_dir, grid_cells) if c not in grid_cells]
    if extra:  # the oracle's sets were trained above: this re-uses their stages and records its rows
        _run_cells(cfg, run_dir, pipe, extra, log)
        grid_cells += extra
    if not cfg.keep_models:
        freed = prune_models(pipe, grid_cells)
        if freed:
            log(f"pruned {freed / 2**20:.0f} MiB of model weights no pending evaluation needs (keep_models: false)")
    write_run_tables(run_dir, pipe)
    return run_dir, pipe


def _run_cells(cfg: RunConfig, run_dir: Path, pipe: RunContext, grid_cells: list[Cell],
               log: Callable[[str], None]) -> None:
    from stopover.pipeline import run_cell

    if cfg.executor == "local" and cfg.jobs == 1:
        for cell in grid_cells:
            run_cell(pipe, cell)
        return
    from stopover.executors import run_waves

    pipe.trained.extend(run_waves(cfg, run_dir, grid_cells, log=log))
    for cell in grid_cells:  # everything is done now: this only collects and records
        run_cell(pipe, cell)
