"""Planning a grid without running it: its distinct stages, what they process, and GPU-hours.

`plan(cfg)` builds the same stage specs as a run (stopover.spec, through the
same `TaskData`), so planned and run stages share hashes, and counts examples
where the data is on this machine; elsewhere an English training split counts
at its published size (`Task.published_train_size`, else the tables below) and
other splits are unknown. Planning writes nothing: no run directory, and a
config with a `lab:` section has its lab data generated into a temporary
directory (or read from the run's own, when it is already there).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from stopover.config import RunConfig
from stopover.context import RunContext
from stopover.errors import StopoverError
from stopover.grid import PLACEHOLDER, cells, intermediate_sets, needs_diversity
from stopover.pipeline import cell_specs
from stopover.sources import MIRROR_ENV, TaskData
from stopover.store import run_dir_for
from stopover.tasks import Task, get_task

# The GPU-time assumption of `stopover plan`: XLM-R large (24 layers, hidden 1024, 303M parameters
# outside the embeddings) costs about 6 x 303M + attention = 1.9 GFLOP per token to train; one
# A100 (312 TFLOP/s bf16 peak) at ~28% utilisation, typical of encoder fine-tuning with mixed
# precision, trains ~45,000 sequence positions per second. Inference is a forward pass (a third of
# the FLOPs): 3x that. Positions are counted as padded to max_length, as jiant pads, so for
# stopover, which pads per length-grouped batch, the estimate is an upper bound. It is an
# assumption to replace with a measurement: `stopover plan --gpu-throughput N`.
GPU_TRAIN_TOKENS_PER_S = 45_000
GPU_INFERENCE_SPEEDUP = 3.0

# Time on the 2-core CPU development machine, per stage kind: (seconds of fixed cost per stage -
# model load and save, data reading, bookkeeping -, sequence positions per second), fitted by
# benchmarks/calibrate_plan.py on the run of configs/real-study.yaml (2026-12-08, bf16 autocast,
# frozen word embeddings, 139 stages, 50 min; the fit predicts 49 min). Per stage it is rough (a
# QA example is several features, a multiple-choice one several sequences): a model not listed
# here has no estimate: measure it.
MACHINE_TIME: dict[str, dict[str, tuple[float, float]]] = {
    "embedded:multilingual-e5-small": {"intermediate": (39.6, 2_554.0), "target": (0.0, 1_799.0), "eval": (7.6, 138_798.0)},
}
MACHINE = "2-core CPU (the development machine)"


# Sequences the encoder reads per example, for formats that do not declare `sequences(task)`:
# one per choice (multiple choice), both sides of a pair (retrieval), else one.
_SEQUENCES = {"multiple_choice": lambda task: len(task.labels), "retrieval": lambda task: 2}


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
    # per target: each planned test's floor and minimum detectable effect (stopover.analysis.power)
    power: dict[str, list[Any]] = field(default_factory=dict)


def published_train_size(task: Task) -> int | None:
    return task.published_train_size  # declared on the task, with its citation


def published_test_size(task: Task) -> int | None:
    return task.published_test_size


def sequences(task: Task) -> int:
    """Sequences the encoder reads per example of `task`."""
    from stopover.formats import get_format

    declared: Callable[[Task], int] | None = getattr(get_format(task.format), "sequences", None)
    if callable(declared):
        return int(declared(task))
    return int(_SEQUENCES.get(task.format, lambda t: 1)(task))


def plan_grid(cfg: RunConfig, *, hub: bool = False) -> list[PlannedStage]:
    """Every distinct stage of the grid, without running anything (see `plan`)."""
    return plan(cfg, hub=hub).stages


def plan(cfg: RunConfig, *, hub: bool = False) -> Plan:
    """The grid's distinct stages and what they process, without running or writing anything.

    Data is counted where it is on this machine (local files, `$STOPOVER_HUB_MIRROR`, or with
    `hub=True` whatever `datasets` can load, downloads included); elsewhere see the module docstring.
    """
    from stopover.lab.materialize import lab_data_fresh, materialize_lab

    run_dir = run_dir_for(cfg)
    if cfg.lab is None or cfg.data_dir is not None:
        return _plan(cfg, run_dir, hub)
    if lab_data_fresh(cfg, run_dir / "lab-data"):
        return _plan(materialize_lab(cfg, run_dir / "lab-data"), run_dir, hub)
    with tempfile.TemporaryDirectory(prefix="stopover-plan-lab-") as tmp:
        return _plan(materialize_lab(cfg, Path(tmp)), run_dir, hub)


def _plan(cfg: RunConfig, run_dir: Path, hub: bool) -> Plan:
    run = RunContext(cfg, run_dir, resolve_hub=hub)
    stages: dict[str, PlannedStage] = {}
    loadable = hub or bool(os.environ.get(MIRROR_ENV))

    def here(data: TaskData, split: str, target: bool = False) -> bool:
        """Whether (task, split) can be read without the network (training: every training language)."""
        if loadable:
            return True
        if data.parts and split == "train":
            return all(here(p, split) for p in data.parts)
        try:
            langs = (("eng",) if target else data.intermediate_languages()) if split == "train" else ("eng",)
            return all(data.local_file(code, split) is not None for code in langs)
        except StopoverError:
            return False

    def here_test(data: TaskData, lang: str) -> bool:
        if loadable:
            return True
        source = data.eval_data or data
        try:
            return source.local_file(lang, "test") is not None
        except StopoverError:
            return False

    def count(task: Task, split: str, lang: str, cap: int | None, *, holdout: bool = False,
              target: bool = False) -> tuple[int | None, bool]:
        """(examples, from a published size)."""
        data = run.data(task)
        n, published = None, False
        if here_test(data, lang) if split == "test" else here(data, split, target):
            try:
                n = len(run.train_examples(task, holdout=holdout, target=target) if split == "train"
                        else run.test_examples(task, lang) if split == "test" else run.examples(task, split, lang))
            except StopoverError:
                n = None
        if n is None and split == "train" and published_train_size(task):
            n, published = int(published_train_size(task) or 0) // (2 if holdout else 1), True
        elif n is None and split == "test" and published_test_size(task):
            n, published = published_test_size(task), True
        if n is None:
            return cap, False  # unknown: the cap, if any, is the best estimate
        return (min(n, cap) if cap else n), published

    def add(kind: str, spec: Any, label: str, examples: int | None, positions: int | None, published: bool) -> None:
        stage = run.stage(spec)
        entry = stages.setdefault(stage.hash, PlannedStage(kind, stage.hash, label, stage.done, examples,
                                                           positions=positions, published=published))
        entry.cells += 1

    needs_profiles = bool(cfg.pool) and needs_diversity(cfg.strategies)
    profiles = not needs_profiles or all(here(run.data(t), "train") for t in cfg.pool)
    sets = intermediate_sets(cfg, run, profiles=profiles)
    grid_cells = cells(cfg, sets)
    for cell in grid_cells:
        task = get_task(cell.target)
        inter, model, ev = cell_specs(run, cell)
        if cell.tasks:
            ex: int | None = 0
            pos: int | None = 0
            published = False
            for name in cell.tasks:
                t = get_task(name)
                tcfg = inter.train_config(name)
                n, pub = count(t, "train", "eng", inter.per_task_examples)
                published |= pub
                if n is None or ex is None or pos is None:
                    ex = pos = None
                    continue
                # a mixed stage runs intermediate.epochs over all tasks; a sequential one each task's own
                epochs = cfg.intermediate.epochs if inter.schedule is not None else tcfg.epochs
                ex += int(n * epochs)
                pos += int(n * epochs) * sequences(t) * tcfg.max_length
            add("intermediate", inter, f"{cell.intermediate} (seed {cell.seed})", ex, pos, published)
        if model is not inter:
            tcfg = model.train_config()
            n, pub = count(get_task(model.train_task or task.name), "train", "eng", tcfg.max_examples,
                           holdout=model.holdout, target=True)
            ex = None if n is None else int(n * tcfg.epochs)
            add("target", model, f"{cell.target} <- {cell.intermediate} (seed {cell.seed})", ex,
                None if ex is None else ex * sequences(task) * tcfg.max_length, pub)
        sizes = [count(task, "test", lang, cfg.evaluation.max_examples) for lang in ev.languages]
        known = None if any(n is None for n, _ in sizes) else sum(n or 0 for n, _ in sizes)
        add("eval", ev, f"{cell.target} x {len(sizes)} languages <- {cell.intermediate} (seed {cell.seed})",
            known, None if known is None else known * sequences(task) * int(ev.max_length or 0),
            any(p for _, p in sizes))
    placeholders = len({s.name for s in sets if s.name.endswith(PLACEHOLDER)})
    languages = {cell.target: cell_specs(run, cell)[2].languages for cell in grid_cells}
    return Plan(list(stages.values()), len(grid_cells), placeholders, planned_power(cfg, sets, languages))


def planned_power(cfg: RunConfig, sets: list[Any], languages: dict[str, tuple[str, ...]], *,
                  n_sim: int = 2000) -> dict[str, list[Any]]:
    """{target: [TestPower, ...]} for the planned languages, seeds and sets, before anything runs.

    Distances are the syntactic ones the report leads with (URIEL+ for real languages, the
    lab's own facts for lab ones); the draws are the distinct random sets (a random draw equal
    to a diversity set is the same set, not another draw); noise levels are
    `stopover.analysis.power.Noise`'s stated defaults.
    """
    import warnings

    from stopover.analysis.power import plan_power
    from stopover.selection import family_of

    diversity = {s.name for s in sets if family_of(s.strategy) == "diversity"}
    draws = {s.name for s in sets if family_of(s.strategy) == "random"} - diversity
    out: dict[str, list[Any]] = {}
    for target, langs in languages.items():
        distances = _syntactic_distances([lang for lang in langs if lang != "eng"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[target] = plan_power(distances, n_seeds=len(cfg.seeds), n_draws=len(draws),
                                     n_tasks=len(languages), n_diversity_sets=max(1, len(diversity)),
                                     n_sim=n_sim)
    return out


def _syntactic_distances(languages: list[str]) -> list[float]:
    """Known syntactic distances from English of `languages` (missing ones left out)."""
    import math
    import warnings

    lab = [lang for lang in languages if lang.startswith("lab-")]
    real = [lang for lang in languages if not lang.startswith("lab-")]
    values: list[float] = []
    if lab:
        from stopover.lab.variants import anchored_variant, lab_typology_tables

        table = lab_typology_tables([anchored_variant(code) for code in lab])[0]
        rows = table[(table["kind"] == "syntactic") & table["language"].isin(lab)]
        values += [float(v) for v in rows["distance"]]
    if real:
        from stopover.typology import MIN_COVERAGE, distances_from

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = distances_from("eng", real, ["syntactic"])
        ok = table[table["coverage"].fillna(1.0) >= MIN_COVERAGE]
        values += [float(v) for v in ok["distance"] if not math.isnan(float(v))]
    return values


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


def machine_minutes(stages: list[PlannedStage], model: str) -> dict[str, tuple[float, int]] | None:
    """{kind: (minutes on MACHINE of its stages still to run whose size is known, stages of unknown
    size)}, or None when `model` has no calibration in MACHINE_TIME.
    """
    rates = MACHINE_TIME.get(model)
    if rates is None:
        return None
    out: dict[str, tuple[float, int]] = {}
    for kind in ("intermediate", "target", "eval"):
        overhead, per_s = rates[kind]
        todo = [s for s in stages if s.kind == kind and not s.done]
        seconds = sum(overhead + s.positions / per_s for s in todo if s.positions is not None)
        out[kind] = (seconds / 60.0, sum(1 for s in todo if s.positions is None))
    return out


def planned_status(run_dir: Path) -> list[dict[str, Any]]:
    """Every stage the run's saved config plans, with its state (done / running / pending / failed)
    and the strategies, intermediate set, targets and seed it serves; stage directories that the
    config does not plan (an earlier config's) are listed after them with kind and state only.

    Reads the run's config.yaml and its data; writes nothing.
    """
    from stopover.config import from_dict, load_yaml
    from stopover.lab.materialize import lab_data_fresh, materialize_lab
    from stopover.store import STAGES_DIR, stage_state, stage_status

    cfg = from_dict(RunConfig, load_yaml(run_dir / "config.yaml"), str(run_dir / "config.yaml"))
    if cfg.lab is not None and cfg.data_dir is None and lab_data_fresh(cfg, run_dir / "lab-data"):
        cfg = materialize_lab(cfg, run_dir / "lab-data")
    run = RunContext(cfg, run_dir)
    from stopover.grid import oracle_cells

    grid_cells = cells(cfg, intermediate_sets(cfg, run))
    grid_cells += [c for c in oracle_cells(cfg, run_dir, grid_cells) if c not in grid_cells]
    rows: dict[str, dict[str, Any]] = {}
    for cell in grid_cells:
        inter, model, ev = cell_specs(run, cell)
        for spec in dict.fromkeys((inter, model, ev)):
            if spec.kind == "pretrained":
                continue
            row = rows.setdefault(spec.hash, {"stage": spec.hash, "kind": spec.kind, "strategy": [],
                                              "intermediate": cell.intermediate, "target": [], "seed": cell.seed})
            for key, value in (("strategy", cell.strategy), ("target", cell.target)):
                if spec.kind != "intermediate" or key == "strategy":
                    if value not in row[key]:
                        row[key].append(value)
    out = []
    for row in rows.values():
        state, reason = stage_state(run_dir / STAGES_DIR / row["stage"])
        out.append({**row, "strategy": ", ".join(row["strategy"]), "target": ", ".join(row["target"]) or "-",
                    "state": state, "reason": reason})
    out.extend({"stage": r["stage"], "kind": r["kind"], "strategy": "", "intermediate": "", "target": r["task"],
                "seed": r["seed"], "state": r["state"], "reason": r["reason"] or "not planned by the saved config"}
               for r in stage_status(run_dir) if r["stage"] not in rows)
    return out
