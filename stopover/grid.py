"""Expand a grid config into cells and stages, and run them.

A cell is (intermediate set, seed, target task). Intermediate sets come from
the selection strategies (stopover.selection); stages are deduplicated by hash
across the whole grid, so an intermediate set is trained once per seed and
re-used by every target, and re-running a finished grid trains nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from stopover.config import RunConfig, to_yaml
from stopover.errors import ConfigError
from stopover.store import atomic_write_text
from stopover.tasks import get_task


@dataclass(frozen=True)
class Cell:
    strategy: str
    intermediate: str  # the set's name ("none" or tasks joined by "+")
    tasks: tuple[str, ...]
    budget: int | None
    seed: int
    target: str
    reference: bool = False


def intermediate_sets(cfg: RunConfig, *, diversity: dict[str, float] | None = None,
                      profiles: dict[str, dict[str, float]] | None = None) -> list[Any]:
    """The intermediate sets the config's strategies produce (stopover.selection)."""
    from stopover.selection import SelectionContext, expand

    for name in cfg.pool:
        get_task(name)  # unknown pool tasks fail here, with did-you-mean
    budget = cfg.selection.budget
    if budget is None and cfg.intermediate.max_examples:
        budget = cfg.selection.k * cfg.intermediate.max_examples
    ctx = SelectionContext(pool=tuple(cfg.pool), k=min(cfg.selection.k, max(1, len(cfg.pool))),
                           seed=0, draws=cfg.selection.draws, budget=budget,
                           diversity=diversity or {}, profiles=profiles or {},
                           measure=cfg.selection.diversity_measure)
    return expand(list(cfg.strategies), ctx)


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


def run_grid(cfg: RunConfig, *, progress: Any = None, log: Callable[[str], None] = lambda m: None,
             sets: list[Any] | None = None) -> tuple[Path, "Pipeline"]:
    """Run every cell of the grid in this process; finished stages are skipped."""
    from stopover.pipeline import Pipeline

    run_dir = run_dir_for(cfg)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
    except OSError as err:
        raise ConfigError(f"output_dir {cfg.output_dir}: cannot write there ({err.strerror}); "
                          "choose a writable output_dir=...") from None
    pipe = Pipeline(cfg, run_dir, progress=progress, log=log)
    if sets is None:
        sets = intermediate_sets(cfg)
    for cell in cells(cfg, sets):
        task = get_task(cell.target)
        parent = pipe.intermediate(cell.tasks, cell.seed, cell.budget)
        model_stage = parent if task.format == "retrieval" else pipe.target(task, parent, cell.seed)
        stage, scores = pipe.evaluate(task, model_stage, cell.seed)
        pipe.record_cell(stage, scores, task, seed=cell.seed, strategy=cell.strategy,
                         intermediate=cell.intermediate)
    return run_dir, pipe
