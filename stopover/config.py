"""Typed, frozen configs: YAML + `key=value` overrides, validation, stable hashing.

A config is a tree of frozen dataclasses. `from_dict` builds one from plain
data and rejects unknown keys and ill-typed values with a one-line error that
names the key (dotted path) and lists the valid keys. `stable_hash` hashes the
canonical JSON of any config-like value; stage identities are built from it
(never from hand-made strings, see DESIGN.md).

`load_config` also owns what a config *file* means: a key given twice in one
mapping is an error naming both lines (YAML would keep the last one without a
word), and relative paths written in the file (`data_dir`, `output_dir`,
`tasks.<name>.data_dir`, a local `model` directory) are relative to the file's
own directory, so a config means the same thing from any working directory.
Paths given as `key=value` overrides on the command line stay relative to the
working directory, as every shell user expects.

Size: one concept (the run config: its dataclasses, validation and loading), over 400
lines because every key is declared and validated next to its siblings.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, cast

import yaml

from stopover.adapters import LoraSpec
from stopover.errors import ConfigError
from stopover.precision import PRECISIONS
from stopover.selection import validate_strategies
from stopover.tasks import SPLITS  # the registry module only: task families load on first lookup
from stopover.tracking import TrackingConfig


def _check_precision(value: str, where: str) -> None:
    if value not in PRECISIONS:
        raise ConfigError(f"{where}.precision = {value!r}: valid values are {', '.join(PRECISIONS)}")


@dataclass(frozen=True)
class TrainConfig:
    """How one training stage runs (intermediate or target); `peft` adds LoRA adapters (docs/training.md)."""

    epochs: float = 1.0
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 2e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_length: int = 128
    max_examples: int | None = None  # cap on training examples per task (None: all)
    max_dev_examples: int | None = 500  # cap on English dev examples used for checkpoint choice
    eval_per_epoch: int = 1  # checkpoint-selection evaluations on English dev per epoch
    precision: str = "auto"  # auto | bf16 | fp32 (auto: bf16 autocast where the CPU supports it)
    freeze_embeddings: bool = False  # freeze the word-embedding matrix (big CPU speed-up)
    group_by_length: bool = True
    # LoRA adapters on the encoder (stopover.adapters; docs/training.md); None: train all weights.
    # `{r: 8, alpha: 16, dropout: 0.1, target_modules: [query, value], carry: merge | adapter}`:
    # only the adapters and the task head train; `carry` says how an intermediate stage hands its
    # encoder on (merged weights, or base + adapter that the next stage continues). A target
    # stage's model is always saved and evaluated merged. Part of the stage identity (it is in the
    # train config); not supported in a mixed multi-task stage (multitask.mode: mixed).
    peft: LoraSpec | None = None

    def validate(self, where: str) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "grad_accum": self.grad_accum,
                    "lr": self.lr, "max_length": self.max_length, "eval_per_epoch": self.eval_per_epoch}
        for key, value in positive.items():
            if not math.isfinite(value):  # .nan and .inf are YAML floats too
                raise ConfigError(f"{where}.{key} = {value}: must be a finite number > 0")
            if value <= 0:
                raise ConfigError(f"{where}.{key} = {value}: must be > 0")
        if not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ConfigError(f"{where}.weight_decay = {self.weight_decay}: must be a finite number >= 0")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"{where}.warmup = {self.warmup}: must be in [0, 1)")
        for key in ("max_examples", "max_dev_examples"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"{where}.{key} = {value}: must be > 0 or null")
        _check_precision(self.precision, where)


@dataclass(frozen=True)
class EvalConfig:
    """Zero-shot evaluation settings."""

    batch_size: int = 64
    max_length: int = 128
    max_examples: int | None = None  # cap on test examples per language (None: all)
    # auto | bf16 | fp32: as for training, bf16 autocast only where the hardware computes in bf16
    # natively (stopover.precision); it also applies to dev-set scoring during training.
    precision: str = "auto"

    def validate(self, where: str) -> None:
        if self.batch_size <= 0 or self.max_length <= 0:
            raise ConfigError(f"{where}: batch_size and max_length must be > 0")
        _check_precision(self.precision, where)
        if self.max_examples is not None and self.max_examples <= 0:
            raise ConfigError(f"{where}.max_examples = {self.max_examples}: must be > 0 or null")


@dataclass(frozen=True)
class SelectionConfig:
    """Settings shared by the selection strategies (see stopover.selection)."""

    k: int = 2
    draws: int = 10  # random-k: number of random k-subsets
    budget: int | None = None  # total intermediate examples per set (None: k * intermediate.max_examples)
    diversity_sample: int = 2000
    diversity_measure: str = "composite"
    # English CoNLL-U file(s) the UPOS tagger of the syntactic diversity measures trains on (offline
    # runs); None: $STOPOVER_UPOS_TRAIN, spaCy, or UD English-EWT train downloaded (stopover.upos)
    upos_train: tuple[str, ...] | None = None

    def validate(self, where: str) -> None:
        if self.k <= 0 or self.draws <= 0 or self.diversity_sample <= 0:
            raise ConfigError(f"{where}: k, draws and diversity_sample must be > 0")
        if self.budget is not None and self.budget <= 0:
            raise ConfigError(f"{where}.budget = {self.budget}: must be > 0 or null")
        for path in self.upos_train or ():
            if not Path(path).expanduser().is_file():
                raise ConfigError(f"{where}.upos_train: no such file {path} (English CoNLL-U for the UPOS tagger; "
                                  "a config's relative paths start at the config file)")


@dataclass(frozen=True)
class MultitaskConfig:
    """How several intermediate tasks are combined in one stage."""

    mode: str = "sequential"  # sequential | mixed
    sampling: str = "proportional"  # proportional | temperature | uniform (mixed mode)
    temperature: float = 2.0

    def validate(self, where: str) -> None:
        if self.mode not in ("sequential", "mixed"):
            raise ConfigError(f"{where}.mode = {self.mode!r}: valid values are sequential, mixed")
        if self.sampling not in ("proportional", "temperature", "uniform"):
            raise ConfigError(f"{where}.sampling = {self.sampling!r}: valid values are "
                              "proportional, temperature, uniform")
        if not math.isfinite(self.temperature) or self.temperature <= 0:
            raise ConfigError(f"{where}.temperature = {self.temperature}: must be a finite number > 0")


@dataclass(frozen=True)
class TaskSource:
    """Per-task overrides: where the data comes from, and how this task trains.

    `files` names the file of a split when the directory layout does not
    (e.g. a UD sample whose English *dev* file is the training data): keys are
    `<split>` or `<language>/<split>`, values a path relative to the task's data
    directory (or absolute), or null for "this split does not exist" (no dev
    split: the last checkpoint is kept). `train_languages`: the languages whose
    training files an *intermediate* stage concatenates (default English;
    translated intermediate data, or the mlm task's text); a target stage always
    trains on English. `train`: TrainConfig fields that replace the
    stage's own for this task wherever it trains (target stage; an intermediate
    stage of its own or a sequential one; in a mixed multi-task stage only
    `max_length` applies, the batch schedule being shared). `holdout`: the
    target's English training data and its test sets are parallel (the same
    items by id, e.g. XQuAD trained on English XQuAD): train on one half of the
    items and evaluate every language on the other (see stopover.pipeline).
    `skip_bad_rows`: see `stopover.data.read_table`. `train_from`: the task whose
    English training split a *target* stage reads, in place of the declared one
    (XNLI trains on MNLI; where MNLI is absent, `train_from: xnli` with
    `holdout: true` trains on one half of XNLI's own English items).
    A `files` value may hold `{code}` (the dataset's code of the language, e.g.
    `de` in XTREME's `dev-de.tsv.gz`) or `{language}` (its ISO 639-3 key), so
    one key maps a split for every language: `test: dev-{code}.tsv.gz`.
    """

    data_dir: str | None = None  # local files: <data_dir>/<language>/<split>.<jsonl|tsv|csv|parquet>
    revision: str | None = None  # Hub revision (overrides the task's pinned one)
    languages: tuple[str, ...] | None = None  # restrict evaluation languages
    files: dict[str, str | None] = field(default_factory=dict)  # <split> or <lang>/<split> -> file | null
    train_languages: tuple[str, ...] | None = None  # languages of the training files (default: eng)
    train: dict[str, Any] = field(default_factory=dict)  # per-task TrainConfig overrides
    holdout: bool = False  # train and test are parallel: split the items in two halves
    train_from: str | None = None  # target stages: the task whose English train split they read
    # TSV/CSV rows whose number of fields differs from the header's: skipped with a warning that gives
    # the count (true), or the run stops naming file:line (false). Only the skipped rows differ, and
    # without the option no run gets that far, so it needs no place in the stage identity.
    skip_bad_rows: bool = False
    # retrieval tasks: the hidden_states index that embeds sentences (0 = embeddings, -1 = last);
    # None = the protocol's default (stopover.formats.retrieval.retrieval_layer). Part of the identity.
    layer: int | None = None

    def validate(self, where: str) -> None:
        for key in self.files:
            split = key.rsplit("/", 1)[-1]
            if split not in SPLITS or key.count("/") > 1 or key.startswith("/"):
                raise ConfigError(f"{where}.files: key {key!r} must be <split> or <language>/<split> "
                                  f"with split one of {', '.join(SPLITS)}")
        if self.train_languages is not None and not self.train_languages:
            raise ConfigError(f"{where}.train_languages: give at least one language, or leave it out")
        if self.languages is not None and not self.languages:  # () once meant "all", silently
            raise ConfigError(f"{where}.languages: give at least one language, or leave it out for all of them")
        if self.data_dir is not None and not self.data_dir.strip():
            raise ConfigError(f"{where}.data_dir is empty: give a directory, or leave it out")
        if self.train_from is not None:
            from stopover.tasks import all_tasks  # the registry: plain declarations

            if self.train_from not in {t.name for t in all_tasks()}:
                raise ConfigError(f"{where}.train_from: unknown task {self.train_from!r}; "
                                  "`stopover tasks` lists them")
        if self.train:
            self.train_config(TrainConfig(), where)  # unknown keys and bad values fail here

    def train_config(self, base: TrainConfig, where: str = "tasks") -> TrainConfig:
        """`base` with this task's `train` overrides applied (validated like any TrainConfig)."""
        if not self.train:
            return base
        return from_dict(TrainConfig, {**to_plain(base), **self.train}, f"{where}.train")


@dataclass(frozen=True)
class LabConfig:
    """Generate the typology lab's data for this run (see stopover.lab)."""

    seed: int = 0
    train: int = 2000  # English training examples per task
    dev: int = 200
    test: int = 200  # test examples per language
    variants: tuple[str, ...] = ()  # lab language codes (empty: the default set)

    def validate(self, where: str) -> None:
        for key in ("train", "dev", "test"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{where}.{key} = {getattr(self, key)}: must be > 0")
        if self.variants:
            from stopover.lab.variants import ANCHORS, ENGLISH_CODE  # plain data, no numpy/torch

            unknown = [code for code in self.variants if code not in ANCHORS and code != ENGLISH_CODE]
            if unknown:
                raise ConfigError(f"{where}.variants: unknown typology-lab language(s) {', '.join(map(repr, unknown))}; "
                                  f"valid: {', '.join(ANCHORS)}")


@dataclass(frozen=True)
class RunConfig:
    """A grid: strategies x seeds x targets, each cell three stages (see DESIGN.md).

    `tracking` sends every stage that runs to TensorBoard, MLflow or W&B (docs/training.md); it
    observes only, like `notes` and `checkpoint_every`, and is part of no stage identity.
    """

    name: str
    model: str = "embedded:multilingual-e5-small"
    output_dir: str = "runs"
    data_dir: str | None = None  # root of local task files: <data_dir>/<task>/<language>/<split>.*
    pool: tuple[str, ...] = ()  # intermediate task pool
    strategies: tuple[Any, ...] = ("none",)  # names, or {explicit: [task, ...]}
    targets: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    tasks: dict[str, TaskSource] = field(default_factory=dict)
    intermediate: TrainConfig = TrainConfig()
    target: TrainConfig = TrainConfig()
    evaluation: EvalConfig = EvalConfig()
    selection: SelectionConfig = SelectionConfig()
    multitask: MultitaskConfig = MultitaskConfig()
    executor: str = "local"  # local | submitit | ray
    jobs: int = 1  # local executor: worker processes
    checkpoint_every: int = 0  # optimizer steps between resumable checkpoints (0: none); not part of stage identity
    slurm: dict[str, Any] = field(default_factory=dict)  # submitit parameters, e.g. {partition: gpu, timeout_min: 600}
    lab: LabConfig | None = None  # generate typology-lab data into the run directory
    keep_models: bool = True  # false: delete model weights once every evaluation needing them is done
    # what this run can and cannot conclude, in a sentence or two: shown at the top of report.html
    # (a reader's note, part of no stage identity)
    notes: str = ""
    # experiment tracking (stopover.tracking; docs/training.md): `{backend: none | tensorboard | mlflow |
    # wandb, dir: <default <run dir>/tracking>, project: stopover}`. Each training and evaluation stage
    # that runs logs its resolved config, per-step loss and learning rate, English dev scores and its
    # final scores. Observes runs only: part of no stage identity.
    tracking: TrackingConfig = TrackingConfig()

    def validate(self, where: str = "config") -> None:
        if not self.name or "/" in self.name or "\\" in self.name or "\x00" in self.name \
                or self.name.startswith("."):
            raise ConfigError(f"{where}.name = {self.name!r}: a run name is a plain directory name "
                              "(no '/', '\\' or NUL, not starting with '.')")
        if not self.model.strip():
            raise ConfigError(f"{where}.model is empty: name the encoder, e.g. embedded:multilingual-e5-small "
                              "(offline), tiny:64x2 (a tiny random model for tests), a Hub id such as "
                              "xlm-roberta-large, or a local model directory")
        for key in ("output_dir", "data_dir"):
            value = getattr(self, key)
            if value is not None and not value.strip():
                raise ConfigError(f"{where}.{key} is empty: give a directory, or leave it out "
                                  f"({'default: runs' if key == 'output_dir' else 'no local data'})")
        if not self.targets:
            pool = f" (the pool {', '.join(self.pool)} only supplies intermediate tasks)" if self.pool else ""
            raise ConfigError(f"{where}.targets: give at least one target task, e.g. targets: [xnli]{pool}; "
                              "`stopover tasks` lists them")
        if not self.seeds:
            raise ConfigError(f"{where}.seeds: give at least one seed")
        for seed in self.seeds:
            if not 0 <= seed < 2**32:  # numpy's limit; checked here, not after hours of training
                raise ConfigError(f"{where}.seeds: seed {seed} is out of range; use integers from 0 to {2**32 - 1}")
        if self.checkpoint_every < 0:
            raise ConfigError(f"{where}.checkpoint_every = {self.checkpoint_every}: must be >= 0 (0: no checkpoints)")
        if self.executor not in ("local", "submitit", "ray"):
            raise ConfigError(f"{where}.executor = {self.executor!r}: valid values are local, submitit, ray")
        if self.jobs <= 0:
            raise ConfigError(f"{where}.jobs = {self.jobs}: must be > 0")
        if self.intermediate.peft is not None and self.multitask.mode == "mixed":
            raise ConfigError(f"{where}.intermediate.peft is not supported with multitask.mode: mixed; "
                              "use mode: sequential")
        # every strategy and its options, before anything runs (plan and run both build configs here)
        validate_strategies(self, where)


# --------------------------------------------------------------------------- building

def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Coerce plain YAML data into `tp`, or raise ConfigError naming `where`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return _freeze(value)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(cast(type, tp), value, where)  # a type hint: a dataclass class, never an instance
    if origin is tuple:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # a single value where a list is expected: accept it
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        return tuple(_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        ktp, vtp = args
        # a key with odd characters (a newline, say) is shown as repr: messages stay one line
        return {str(k): _convert(v, vtp, f"{where}.{k}" if str(k).isprintable() else f"{where}[{str(k)!r}]")
                for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported type {_type_name(tp)}")


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    return value


def from_dict(cls: type, data: dict[str, Any], where: str = "config") -> Any:
    """Build dataclass `cls` from a mapping; unknown keys and bad values are errors."""
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; valid keys: {', '.join(valid)}")
        kwargs[key] = _convert(value, hints[key], f"{where}.{key}")
    missing = [f.name for f in dataclasses.fields(cls)
               if f.name not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {', '.join(missing)}")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate:
        validate(where)
    for f in dataclasses.fields(obj):
        sub = getattr(obj, f.name)
        if dataclasses.is_dataclass(sub) and f.name not in kwargs:
            cast(Any, sub).validate(f"{where}.{f.name}")  # every config section defines validate()
    return obj


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`a.b=3 c=[x,y]` -> nested dict; values are parsed as YAML scalars/lists."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: write overrides as key=value, e.g. target.epochs=2")
        key, raw = item.split("=", 1)
        if not key:
            raise ConfigError(f"override {item!r}: empty key")
        if key in given:  # the last one would win without a word, as a repeated YAML key did
            raise ConfigError(f"override {key!r} is given twice ({given[key]!r} and {item!r}); keep one")
        given[key] = item
        try:
            value = yaml.safe_load(raw) if raw else ""
        except (yaml.YAMLError, ValueError, RecursionError):  # e.g. 2001-13-45 is a YAML date, but no date
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = value
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class _DuplicateKey(Exception):
    """Raised inside the YAML loader; turned into a ConfigError naming the file."""


class _StrictLoader(yaml.SafeLoader):
    """safe_load, except that a key given twice in one mapping is an error.

    PyYAML keeps the last value of a repeated key without a word (`epochs: 1` ... `epochs: 100`
    trained 100 epochs). Keys brought in by a `<<: *anchor` merge may still be overridden: that
    is what a merge is for.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue  # merges may override; a non-scalar key fails in the constructor itself
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # unhashable: the base constructor reports it
                continue
            if first is not None:
                raise _DuplicateKey(f"key {key!r} is given twice (lines {first} and {line}); keep one of them")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in `path`; a missing file, bad YAML or a repeated key is a ConfigError."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=_StrictLoader)  # a SafeLoader
    except _DuplicateKey as err:
        raise ConfigError(f"{path}: {err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}); save the config as UTF-8") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; give a YAML config file") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}; check indentation and quoting") from None
    except (ValueError, RecursionError) as err:  # a tagged or date-like value YAML cannot build
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0] if str(err) else type(err).__name__}); "
                          "quote values that are not numbers or dates") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping of keys to values")
    return data


def _against(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def _local_model(model: str, base: Path) -> bool:
    # Hub ids look like relative paths ("owner/name"): only an explicit ./ ../ ~ path, or a
    # directory that exists beside the config, is taken as a local model.
    return model.startswith(("./", "../", "~")) or (not Path(model).is_absolute() and (base / model).is_dir())


def resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """`data` (a config file's mapping) with its relative paths made relative to `base`.

    Paths: `data_dir`, `output_dir`, `tasks.<name>.data_dir`, `selection.upos_train` and a local
    `model` directory.
    (`tasks.<name>.files` entries stay relative to their task's data directory.) Values of the
    wrong type are left alone for `from_dict` to report.
    """
    out = dict(data)
    for key in ("data_dir", "output_dir"):
        if isinstance(out.get(key), str) and out[key]:
            out[key] = _against(out[key], base)
    model = out.get("model")
    if isinstance(model, str) and model.strip() and _local_model(model, base):
        out["model"] = _against(model, base)
    selection = out.get("selection")
    if isinstance(selection, dict) and isinstance(selection.get("upos_train"), list):
        out["selection"] = {**selection, "upos_train": [_against(p, base) if isinstance(p, str) and p else p
                                                        for p in selection["upos_train"]]}
    tasks = out.get("tasks")
    if isinstance(tasks, dict):
        out["tasks"] = {name: {**source, "data_dir": _against(source["data_dir"], base)}
                        if isinstance(source, dict) and isinstance(source.get("data_dir"), str)
                        and source["data_dir"] else source
                        for name, source in tasks.items()}
    return out


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """The RunConfig of a YAML file plus `key=value` overrides, validated (see the module docstring)."""
    data = load_yaml(path)
    # paths written in the file are relative to the file; overrides (typed in a shell) to the cwd
    data = resolve_paths(data, Path(path).absolute().parent.resolve())
    data = _merge(data, parse_overrides(overrides or []))
    data.setdefault("name", Path(path).stem)
    try:
        return from_dict(RunConfig, data, where="config")
    except ConfigError as err:
        raise ConfigError(f"{path}: {str(err).removeprefix('config.').removeprefix('config: ')}") from None


# --------------------------------------------------------------------------- hashing / dumping

def to_plain(value: Any) -> Any:
    """Config objects -> JSON-able plain data (dataclasses, tuples, paths)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, Path):
        return str(value)
    return value


def stable_hash(value: Any, length: int = 16) -> str:
    """sha256 of the canonical JSON of `value` (sorted keys, no whitespace)."""
    blob = json.dumps(to_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def to_yaml(value: Any) -> str:
    return yaml.safe_dump(to_plain(value), sort_keys=False, allow_unicode=True)
