"""Stage identity: a `StageSpec` is everything a stage depends on, and its hash names the stage.

A spec holds the stage's kind, its parent's spec, the tasks it trains or
evaluates, the seed, the resolved train / evaluation config, the data
fingerprints of every split it reads (stopover.sources), the version of each
task and format involved, and a digest of stopover's own source code. Nothing
else keys a stage: the stage functions of stopover.pipeline run from the spec
alone, so a stage's name and what it computes cannot drift apart. Changing any
of these - a config value, a data file's bytes, the Hub commit served, a
task's or format's `version`, one byte of the package's code - gives a new
stage (the identity rule of docs/results.md). No torch here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from stopover.config import EvalConfig, MultitaskConfig, RunConfig, TrainConfig, from_dict, stable_hash, to_plain
from stopover.errors import ConfigError
from stopover.sources import Reader
from stopover.tasks import get_task

PACKAGE = Path(__file__).resolve().parent


def source_files() -> list[Path]:
    """The package's Python source files, in a fixed order (the input of `code_digest`)."""
    return sorted(PACKAGE.rglob("*.py"))


@cache
def code_digest() -> str:
    """sha256 of stopover's source files (relative path and bytes), computed once per process."""
    h = hashlib.sha256()
    for path in source_files():
        h.update(str(path.relative_to(PACKAGE) if path.is_relative_to(PACKAGE) else path.name).encode())
        h.update(b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:24]


def format_version(format_name: str) -> int:
    from stopover.formats import get_format

    return int(get_format(format_name).version)


def format_trains(format_name: str) -> bool:
    """Whether a format fine-tunes anything (retrieval embeds with the bare encoder: no target stage)."""
    from stopover.formats import get_format

    return bool(get_format(format_name).trains)


@dataclass(frozen=True, eq=False)
class StageSpec:
    """One stage, fully resolved. `identity()` is what is hashed and written as its config.yaml."""

    kind: str  # pretrained | intermediate | target | eval
    parent: "StageSpec | None" = None
    tasks: tuple[str, ...] = ()  # intermediate: the set in training order; target / eval: (task,)
    seed: int | None = None
    model: str | None = None  # pretrained: the model source (tiny models: with their corpus digest)
    train: dict[str, Any] = field(default_factory=dict)  # task -> its resolved TrainConfig (plain)
    schedule: dict[str, Any] | None = None  # mixed intermediate: the shared TrainConfig (plain)
    per_task_examples: int | None = None  # intermediate: examples per task (budget split evenly)
    multitask: dict[str, Any] | None = None  # intermediate with several tasks: the MultitaskConfig (plain)
    train_task: str | None = None  # target: whose English training data it reads
    dev_task: str | None = None  # target: whose English dev split picks the checkpoint
    holdout: bool = False
    languages: tuple[str, ...] = ()  # eval: every language scored
    evaluation: dict[str, Any] | None = None  # eval: the EvalConfig (plain)
    max_length: int | None = None  # eval: sequence length (the task's training length)
    data: tuple[Any, ...] = ()  # data fingerprints of everything read (stopover.sources)
    versions: dict[str, int] = field(default_factory=dict)  # task -> Task.version
    formats: dict[str, int] = field(default_factory=dict)  # format -> Format.version
    code: str = ""  # code_digest() of the process that built the spec

    def identity(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "parent": self.parent.hash if self.parent else None}
        for name in ("tasks", "seed", "model", "train", "schedule", "per_task_examples", "multitask", "train_task",
                     "dev_task", "holdout", "languages", "evaluation", "max_length", "data", "versions",
                     "formats", "code"):
            value = getattr(self, name)
            if value not in (None, (), {}, "", False) or (name == "seed" and value is not None):
                out[name] = to_plain(value)
        return out

    @cached_property
    def hash(self) -> str:
        return stable_hash(self.identity())

    @property
    def task(self) -> str:
        return self.tasks[0]

    @property
    def set_name(self) -> str:
        """The intermediate set this stage descends from ("none": the pretrained encoder)."""
        spec: StageSpec | None = self
        while spec is not None and spec.kind not in ("intermediate", "pretrained"):
            spec = spec.parent
        return "+".join(spec.tasks) if spec is not None and spec.tasks else "none"

    def train_config(self, task: str | None = None) -> TrainConfig:
        return from_dict(TrainConfig, dict(self.train[task or self.task]), f"stage {self.hash}.train")

    def schedule_config(self) -> TrainConfig:
        return from_dict(TrainConfig, dict(self.schedule or {}), f"stage {self.hash}.schedule")

    def multitask_config(self) -> MultitaskConfig:
        return from_dict(MultitaskConfig, dict(self.multitask or {}), f"stage {self.hash}.multitask")

    def eval_config(self) -> EvalConfig:
        return from_dict(EvalConfig, dict(self.evaluation or {}), f"stage {self.hash}.evaluation")


def _versions(names: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    tasks = {n: get_task(n) for n in dict.fromkeys(names)}
    for task in list(tasks.values()):  # a union's parts and eval task shape its data too
        for part in (*task.union_of, *([task.eval_from] if task.eval_from else [])):
            tasks.setdefault(part, get_task(part))
    return ({n: t.version for n, t in tasks.items()},
            {t.format: format_version(t.format) for t in tasks.values()})


def pretrained_spec(model: str) -> StageSpec:
    """The pretrained encoder as a pseudo-stage (the 'none' intermediate set); nothing is run for it."""
    return StageSpec("pretrained", model=model)


def intermediate_spec(cfg: RunConfig, reader: Reader, base: StageSpec, tasks: tuple[str, ...], seed: int,
                      budget: int | None) -> StageSpec:
    if not tasks:
        return base
    mixed_only = [t for t in tasks if get_task(t).mixed_only]
    if len(tasks) > 1 and mixed_only and cfg.multitask.mode != "mixed":
        raise ConfigError(f"intermediate set {'+'.join(tasks)}: {', '.join(mixed_only)} trains alongside "
                          "the other tasks, not before or after them; set multitask.mode=mixed")
    mixed = len(tasks) > 1 and cfg.multitask.mode == "mixed"
    train = {t: reader.data(t).train_config(cfg.intermediate) for t in tasks}
    with_peft = [t for t, c in train.items() if c.peft is not None]
    if mixed and with_peft:  # tasks.<t>.train.peft: only max_length applies in a mixed stage
        raise ConfigError(f"tasks.{with_peft[0]}.train.peft is not supported in a mixed multi-task "
                          f"intermediate stage ({'+'.join(tasks)}); use multitask.mode: sequential")
    per_task = budget // len(tasks) if budget else cfg.intermediate.max_examples
    versions, formats = _versions(list(tasks))
    return StageSpec(
        "intermediate", base, tasks=tuple(tasks), seed=seed,
        train={t: to_plain(c) for t, c in train.items()},
        per_task_examples=per_task, multitask=to_plain(cfg.multitask) if len(tasks) > 1 else None,
        schedule=to_plain(cfg.intermediate) if mixed else None,
        data=tuple(reader.data(t).fingerprint(("train", "dev"), ("eng",)) for t in tasks),
        versions=versions, formats=formats, code=code_digest())


def target_spec(cfg: RunConfig, reader: Reader, parent: StageSpec, task: str, seed: int) -> StageSpec:
    data = reader.data(task)
    versions, formats = _versions([task, data.train_task, data.dev_task])
    return StageSpec(
        "target", parent, tasks=(task,), seed=seed, train={task: to_plain(data.train_config(cfg.target))},
        train_task=data.train_task, dev_task=data.dev_task, holdout=data.holdout,
        data=(reader.data(data.train_task).fingerprint(("train",), ("eng",), target=True),
              reader.data(data.dev_task).fingerprint(("dev",), ("eng",))),
        versions=versions, formats=formats, code=code_digest())


def eval_spec(cfg: RunConfig, reader: Reader, parent: StageSpec, task: str) -> StageSpec:
    data = reader.data(task)
    versions, formats = _versions([task])
    return StageSpec(
        "eval", parent, tasks=(task,), languages=data.languages, evaluation=to_plain(cfg.evaluation),
        max_length=data.eval_length, holdout=data.holdout,
        data=(data.fingerprint(("test",), data.languages),), versions=versions, formats=formats,
        code=code_digest())
