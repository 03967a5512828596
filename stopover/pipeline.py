"""The three stages of one grid cell: intermediate -> target -> zero-shot evaluation.

Readable as three methods of `Pipeline`:
(a) `intermediate(iset, seed)`: zero or more English tasks in sequence,
    starting from the pretrained encoder (heads are never carried over);
(b) `target(task, parent, seed)`: the target task's English training data,
    checkpoint chosen on its English dev split;
(c) `evaluate(task, parent, seed)`: the target's test split in every language.

Each stage lives in `stages/<hash>/` of the run directory; its hash is a
stable hash of its resolved config, its parent's hash, the data fingerprint
(dataset id + revision, or the content hash of local files) and the stopover
version. A stage with a `DONE` marker is never run again, so one intermediate
stage serves every target that needs it and a killed run resumes.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from stopover import __version__
from stopover.config import RunConfig, TrainConfig, stable_hash, to_plain, to_yaml
from stopover.data import canonicalize, find_local_file, load_examples, read_table
from stopover.device import default_device
from stopover.errors import ConfigError, DataError
from stopover.formats.cache import FeatureCache
from stopover.store import DONE_MARKER, FAILED_MARKER, STAGES_DIR, ResultRow, append_results, atomic_write_text, read_results
from stopover.tasks import Task, get_task

DATA_SEED = 0  # training subsets are drawn with a fixed seed: runs differ by training seed only


@dataclass(frozen=True)
class Stage:
    kind: str  # intermediate | target | eval
    hash: str
    dir: Path
    parent: "Stage | None" = None

    @property
    def done(self) -> bool:
        """Finished, with its outputs still on disk (`keep_models: false` prunes model weights
        once every evaluation that needs them is done; such a stage re-runs only if needed)."""
        if not (self.dir / DONE_MARKER).exists():
            return False
        if self.kind == "intermediate":
            return self.encoder_dir.is_dir()
        if self.kind == "target":
            return (self.dir / "model").is_dir()
        return True

    @property
    def encoder_dir(self) -> Path:
        return self.dir / "encoder"


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _subset(rows: list[dict], limit: int | None, sample_seed: int | None) -> list[dict]:
    """At most `limit` rows: the first ones, or a seeded random sample kept in file order."""
    if limit is None or limit >= len(rows):
        return rows
    if sample_seed is None:
        return rows[:limit]
    idx = sorted(random.Random(sample_seed).sample(range(len(rows)), limit))
    return [rows[i] for i in idx]


def holdout_half(example: dict[str, Any]) -> int:
    """0 (training half) or 1 (evaluation half) of an item, for targets whose English training data
    and test sets are parallel (`tasks.<name>.holdout`).

    Decided by a hash of the item's *passage* (QA context, first sentence of a pair, the tokens), not
    of the item, so that questions on one paragraph never straddle the halves: a model trained on
    some questions about a paragraph has read that paragraph, in English, before it is tested on
    the paragraph's translations.
    """
    key = example.get("context") or example.get("text_a") or example.get("source") or example.get("text")
    if not key:
        key = " ".join(example.get("tokens") or ()) or str(example.get("id", ""))
    return int(hashlib.sha256(str(key).encode("utf-8")).hexdigest(), 16) % 2


def _iso3(task: Task, code: str) -> str:
    try:
        return task.check_language(code)
    except Exception:  # not one of the task's languages (e.g. training text): compare as written
        return code


def example_texts(example: dict[str, Any]) -> list[str]:
    """Every piece of text in a canonical example (for training a tiny tokenizer)."""
    texts = []
    for value in example.values():
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list) and value and isinstance(value[0], str):
            texts.append(" ".join(value))
    return texts


class Pipeline:
    def __init__(self, cfg: RunConfig, run_dir: Path, *, progress: Any = None,
                 log: Callable[[str], None] = lambda msg: None) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.progress = progress
        self.log = log
        self._model_path: str | None = None
        self._examples: dict[tuple, list[dict]] = {}
        self.trained: list[str] = []  # hashes of stages this process actually ran
        self._checkpoint_dir: Path | None = None  # where the stage being trained keeps its checkpoint
        self._tokenizers: dict[str, Any] = {}
        self._feature_cache = FeatureCache(__version__)
        self._fresh: tuple[str, Any, Any] | None = None  # (target stage hash, model, tokenizer) just trained

    # ------------------------------------------------------------------ data
    def source(self, task: Task | str):
        """The config's `tasks.<name>` entry (a TaskSource), or None."""
        return self.cfg.tasks.get(task if isinstance(task, str) else task.name)

    def task_dir(self, task: Task) -> Path | None:
        source = self.source(task)
        if source and source.data_dir:
            return Path(source.data_dir)
        if self.cfg.data_dir:
            path = Path(self.cfg.data_dir) / task.name
            if path.is_dir():
                return path
        return None

    def revision(self, task: Task) -> str | None:
        source = self.source(task)
        return source.revision if source else None

    def languages(self, task: Task) -> tuple[str, ...]:
        source = self.source(task)
        if source and source.languages:
            return tuple(task.check_language(lang) for lang in source.languages)
        return task.languages

    def train_languages(self, task: Task, *, target: bool = False) -> tuple[str, ...]:
        """Languages whose training files an intermediate stage reads: `tasks.<name>.train_languages`,
        else what the task discovers in its data directory (the mlm task: every language with text),
        else English. A target stage (`target=True`) always trains on English: zero-shot transfer."""
        if target:
            return ("eng",)
        source = self.source(task)
        if source and source.train_languages:
            return tuple(source.train_languages)
        discover = task.train_languages_from
        if callable(discover):
            found = tuple(discover(self.task_dir(task)))
            if not found:
                raise DataError(task.missing_data or
                                f"task {task.name!r}: no training files; set tasks.{task.name}.data_dir")
            return found
        return ("eng",)

    def train_config(self, task: Task | str, base: TrainConfig) -> TrainConfig:
        """`base` with the task's `tasks.<name>.train` overrides applied."""
        source = self.source(task)
        name = task if isinstance(task, str) else task.name
        return source.train_config(base, f"tasks.{name}") if source else base

    def mapped_file(self, task: Task, language: str, split: str) -> Path | None | bool:
        """The file `tasks.<name>.files` names for (language, split); None: mapped to null (no such
        split); False: not mapped (the directory layout decides)."""
        source = self.source(task)
        if not source or not source.files:
            return False
        for key, value in source.files.items():
            lang, _, name = key.rpartition("/")
            if name != split or (lang and lang != language and _iso3(task, lang) != language):
                continue
            if value is None:
                return None
            path = Path(value).expanduser()
            directory = self.task_dir(task)
            if not path.is_absolute() and directory is not None:
                path = directory / path
            if not path.is_file():
                raise DataError(f"tasks.{task.name}.files.{key} = {value}: no such file ({path})")
            return path
        return False

    def _load(self, task: Task, split: str, language: str) -> list[dict]:
        mapped = self.mapped_file(task, language, split)
        if mapped is False:
            return load_examples(task, split, language, data_dir=self.task_dir(task), revision=self.revision(task))
        if mapped is None:
            raise DataError(f"task {task.name!r} has no {split} split here (tasks.{task.name}.files maps it to null)")
        reader = next((fn for ext, fn in task.readers.items() if mapped.name.endswith("." + ext)), None)
        rows = reader(mapped, task, language) if reader else read_table(mapped)
        examples = canonicalize(rows, task, str(mapped))
        if not examples:
            raise DataError(f"{mapped}: the {split} split of {task.name!r} ({language}) is empty")
        return examples

    def examples(self, task: Task, split: str, language: str = "eng", limit: int | None = None,
                 sample_seed: int | None = None) -> list[dict]:
        key = (task.name, split, language)
        if key not in self._examples:
            self._examples[key] = self._load(task, split, language)
        return _subset(self._examples[key], limit, sample_seed)

    def train_examples(self, task: Task, limit: int | None = None, sample_seed: int | None = None,
                       holdout: bool = False, target: bool = False) -> list[dict]:
        """Training examples in `train_languages` (English by default; always for a target stage,
        `target=True`), concatenated, capped at `limit`.

        `holdout`: only the training half of the items (see `holdout_half`)."""
        langs = self.train_languages(task, target=target)
        rows = [ex for lang in langs for ex in self.examples(task, "train", lang)]
        if holdout:
            rows = [ex for ex in rows if holdout_half(ex) == 0]
        return _subset(rows, limit, sample_seed)

    def test_examples(self, task: Task, language: str, limit: int | None = None) -> list[dict]:
        """A language's test examples; with `tasks.<name>.holdout`, only the items whose English
        counterpart (same id) is in the evaluation half."""
        source = self.source(task)
        rows = self.examples(task, "test", language)
        if source and source.holdout:
            english = {ex.get("id"): holdout_half(ex) for ex in self.examples(task, "test", "eng")}
            rows = [ex for ex in rows if english.get(ex.get("id"), 1) == 1]
        return _subset(rows, limit, None)

    def fingerprint(self, task: Task, splits: tuple[str, ...], languages: tuple[str, ...], *,
                    target: bool = False) -> dict:
        """What identifies the data a stage reads: file contents, or Hub id + revision. An
        intermediate stage's training files are those of `train_languages` (`target`: English)."""
        directory = self.task_dir(task)
        files = {}
        for split in splits:
            # training data may be in other languages (translated data, mlm text); the default is English
            train = split == "train" and languages == ("eng",)
            for lang in (self.train_languages(task, target=target) if train else languages):
                mapped = self.mapped_file(task, lang, split)
                if mapped is False:
                    path = find_local_file(directory, task, lang, split) if directory is not None else None
                else:
                    path = mapped
                if path is not None:
                    files[f"{lang}/{split}"] = _file_sha(path)
                    for other in (task.companions(path, task, lang) if task.companions else ()):
                        # a missing companion is the reader's error to report; here it is just absent
                        files[f"{lang}/{split}/{other.name}"] = _file_sha(other) if other.is_file() else None
                elif mapped is None:
                    files[f"{lang}/{split}"] = None  # mapped to null: no such split
        hub = task.hub
        union = task.union_of
        return {"task": task.name, "files": files,
                "hub": None if hub is None else [hub.path, hub.name, self.revision(task) or hub.revision],
                "union": [self.fingerprint(get_task(t), splits, languages) for t in union] if union else None}

    # ------------------------------------------------------------------ model
    def model_path(self) -> str:
        if self._model_path is None:
            source = self.cfg.model
            if source.startswith("tiny:"):
                from stopover.models import tiny_model_for_corpus

                self._model_path = str(tiny_model_for_corpus(source, self._tiny_corpus()))
            else:
                from stopover.models import resolve_model_path

                self._model_path = resolve_model_path(source)
        return self._model_path

    def _tiny_corpus(self) -> list[str]:
        texts: list[str] = []
        names = list(self.cfg.pool) + list(self.cfg.targets)
        for name in names:
            task = get_task(name)
            train_task = get_task(task.train_task) if task.train_task else task
            if task.format != "retrieval":
                for ex in self.train_examples(train_task, limit=2000):
                    texts.extend(example_texts(ex))
            if task.name in self.cfg.targets:
                for lang in self.languages(task):
                    for ex in self.examples(task, "test", lang, limit=500):
                        texts.extend(example_texts(ex))
        return texts

    def load_tokenizer(self, path: str):
        """The tokenizer of a model directory, loaded once per run.

        Every stage saves its parent's tokenizer unchanged (so that each saved model
        directory is usable on its own), so inside this run's stages every tokenizer is the
        base model's: one object serves them all. Loading a copy per stage instead would
        cost seconds each (XLM-R's 250k pieces) and keep ~100 MB alive per stage.
        """
        if Path(path).exists() and Path(path).resolve().is_relative_to((self.run_dir / STAGES_DIR).resolve()):
            path = self.model_path()
        key = str(Path(path).resolve()) if Path(path).exists() else path
        if key not in self._tokenizers:
            from stopover.models import load_tokenizer

            self._tokenizers[key] = load_tokenizer(path)
        return self._tokenizers[key]

    # ------------------------------------------------------------------ features
    def features(self, fmt: Any, task: Task, examples: list[dict], tokenizer: Any, max_length: int,
                 *, train: bool, data_key: Any) -> list[dict]:
        """Tokenised features, cached on disk by data, tokenizer, format and length."""
        return self._feature_cache.features(fmt, task, examples, tokenizer, max_length, train=train,
                                            data_key=data_key)

    # ------------------------------------------------------------------ stages
    @staticmethod
    def _full_identity(kind: str, identity: dict, parent: Stage | None) -> dict:
        """What a stage's hash is computed from, and what its config.yaml records."""
        return {"kind": kind, "parent": parent.hash if parent else None, "stopover": __version__, **identity}

    def _stage(self, kind: str, identity: dict, parent: Stage | None) -> Stage:
        h = stable_hash(self._full_identity(kind, identity, parent))
        return Stage(kind, h, self.run_dir / STAGES_DIR / h, parent)

    def _run(self, stage: Stage, identity: dict, body: Callable[[], dict]) -> Stage:
        """Run `body` for `stage` once: skipped when DONE, locked against other workers.

        A failure leaves a one-line FAILED file (for `stopover status`) and no DONE
        marker, so the next invocation runs the stage again.
        """
        if stage.done:
            return stage
        from filelock import FileLock

        stage.dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(stage.dir / ".lock")):
            if stage.done:  # another worker finished it while we waited
                return stage
            # the full identity (kind, parent, version too), so config.yaml hashes to the stage's name
            atomic_write_text(stage.dir / "config.yaml",
                              to_yaml(self._full_identity(stage.kind, identity, stage.parent)))
            (stage.dir / FAILED_MARKER).unlink(missing_ok=True)
            try:
                info = body()
                atomic_write_text(stage.dir / "stage.json", json.dumps(info, indent=2, sort_keys=True))
            except BaseException as err:
                reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                try:
                    atomic_write_text(stage.dir / FAILED_MARKER, f"{type(err).__name__}: {reason}\n")
                except OSError:
                    pass  # e.g. the disk is full: the original error is the one to report
                raise
            atomic_write_text(stage.dir / DONE_MARKER, stage.hash + "\n")
        self.trained.append(stage.hash)
        return stage

    def pretrained(self) -> Stage:
        """The pretrained encoder as a pseudo-stage (the 'none' intermediate set)."""
        identity = {"model": self.cfg.model}
        if self.cfg.model.startswith("tiny:"):
            identity["model_path"] = Path(self.model_path()).name  # the corpus digest
        return self._stage("pretrained", identity, None)

    # (a) ---------------------------------------------------------------- intermediate
    def intermediate_stage(self, tasks: tuple[str, ...], seed: int, budget: int | None = None
                           ) -> tuple[Stage, dict]:
        base = self.pretrained()
        if not tasks:
            return base, {}
        cfg = self.cfg.intermediate
        mixed_only = [t for t in tasks if get_task(t).mixed_only]
        if len(tasks) > 1 and mixed_only and self.cfg.multitask.mode != "mixed":
            raise ConfigError(f"intermediate set {'+'.join(tasks)}: {', '.join(mixed_only)} trains alongside "
                              "the other tasks, not before or after them; set multitask.mode=mixed")
        per_task = budget // len(tasks) if budget else cfg.max_examples
        identity = {"tasks": list(tasks), "seed": seed, "train": to_plain(cfg), "per_task_examples": per_task,
                    "multitask": to_plain(self.cfg.multitask) if len(tasks) > 1 else None,
                    "data": [self.fingerprint(get_task(t), ("train", "dev"), ("eng",)) for t in tasks]}
        overrides = {t: to_plain(self.train_config(t, cfg)) for t in tasks
                     if self.source(t) and self.source(t).train}
        if overrides:  # only then: stage hashes of configs without overrides stay as they were
            identity["task_train"] = overrides
        return self._stage("intermediate", identity, base), identity

    def intermediate(self, tasks: tuple[str, ...], seed: int, budget: int | None = None) -> Stage:
        stage, identity = self.intermediate_stage(tasks, seed, budget)
        if stage.kind == "pretrained":
            return stage
        return self._run(stage, identity, lambda: self._train_intermediate(stage, tasks, seed,
                                                                           identity["per_task_examples"]))

    def _train_intermediate(self, stage: Stage, tasks: tuple[str, ...], seed: int, per_task: int | None) -> dict:
        self._fresh = None  # free the last target model before loading more
        model_path = self.model_path()
        info: dict[str, Any] = {"tasks": {}}
        if len(tasks) > 1 and self.cfg.multitask.mode == "mixed":
            self._checkpoint_dir = stage.dir / "checkpoint" / "mixed"
            model, result = self._train_mixed(tasks, model_path, seed, per_task)
            info["mixed"] = {"best_dev": result.best_dev, "steps": result.steps, "precision": result.precision}
            self._save_encoder(model, model_path, stage.encoder_dir)
            return info
        encoder_path = model_path
        for name in tasks:  # sequential: each task gets a fresh head on the current encoder
            task = get_task(name)
            marker = stage.encoder_dir / f".done-{name}"
            if marker.exists():  # resumed: this task finished before; its record is in the marker
                info["tasks"][name] = json.loads(marker.read_text(encoding="utf-8") or "null")
                encoder_path = str(stage.encoder_dir)
                continue
            self._checkpoint_dir = stage.dir / "checkpoint" / name
            model, result = self._train_task(task, encoder_path, self.train_config(task, self.cfg.intermediate),
                                             seed, limit=per_task, label=f"intermediate {name}")
            info["tasks"][name] = {"best_dev": result.best_dev, "steps": result.steps,
                                   "precision": result.precision}
            if result.best_dev is not None:  # before the marker: a resume that skips this task needs the row
                self._record(stage, task.name, "eng", "dev", {self._primary_name(task): result.best_dev},
                             seed=seed, strategy="", intermediate="+".join(tasks), n=0, primary=True)
            # the markers of every task trained so far go inside the new encoder directory, which is
            # renamed into place: the encoder on disk and its markers always agree
            self._save_encoder(model, encoder_path, stage.encoder_dir,
                               done={t: info["tasks"][t] for t in tasks[:tasks.index(name) + 1]})
            encoder_path = str(stage.encoder_dir)
        return info

    # (b) ---------------------------------------------------------------- target
    def target_stage(self, task: Task, parent: Stage, seed: int) -> tuple[Stage, dict]:
        train_task = get_task(task.train_task) if task.train_task else task
        # checkpoint choice reads the target's English dev split, or its training task's (XQuAD <- SQuAD)
        dev_task = task if "dev" in task.splits else train_task
        identity = {"task": task.name, "train_task": train_task.name, "seed": seed,
                    "train": to_plain(self.train_config(task, self.cfg.target)),
                    "data": [self.fingerprint(train_task, ("train",), ("eng",), target=True),
                             self.fingerprint(dev_task, ("dev",), ("eng",))]}
        if self._holdout(task):
            identity["holdout"] = True
        return self._stage("target", identity, parent), identity

    def target(self, task: Task, parent: Stage, seed: int) -> Stage:
        stage, identity = self.target_stage(task, parent, seed)
        return self._run(stage, identity, lambda: self._train_target(stage, task, parent, seed))

    def _train_target(self, stage: Stage, task: Task, parent: Stage, seed: int) -> dict:
        self._fresh = None  # the previous target's model is no longer needed: free it before loading
        cfg = self.train_config(task, self.cfg.target)
        train_task = get_task(task.train_task) if task.train_task else task
        encoder = str(parent.encoder_dir) if parent.kind != "pretrained" else self.model_path()
        self._checkpoint_dir = stage.dir / "checkpoint"
        model, result = self._train_task(task, encoder, cfg, seed, limit=cfg.max_examples,
                                         label=f"target {task.name}", train_from=train_task,
                                         holdout=self._holdout(task), target=True)
        # The evaluation that follows in this process takes the model from memory; with
        # keep_models: false it is never written (saves a full model write per target stage).
        self._fresh = (stage.hash, model, self.load_tokenizer(encoder))
        in_process = self.cfg.executor == "local" and self.cfg.jobs == 1
        if self.cfg.keep_models or not in_process:
            tmp = stage.dir / "model.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            model.save_pretrained(tmp)
            self._fresh[2].save_pretrained(tmp)
            shutil.rmtree(stage.dir / "model", ignore_errors=True)
            tmp.rename(stage.dir / "model")
        if result.best_dev is not None:
            self._record(stage, task.name, "eng", "dev", {self._primary_name(task): result.best_dev},
                         seed=seed, strategy="", intermediate="", n=0, primary=True)
        return {"best_dev": result.best_dev, "steps": result.steps, "history": result.history,
                "precision": result.precision, "note": result.note}

    # (c) ---------------------------------------------------------------- zero-shot evaluation
    def eval_stage(self, task: Task, parent: Stage) -> tuple[Stage, dict]:
        langs = self.languages(task)
        identity = {"task": task.name, "languages": list(langs), "eval": to_plain(self.cfg.evaluation),
                    "data": self.fingerprint(task, ("test",), langs)}
        if self._holdout(task):
            identity["holdout"] = True
        if self.eval_length(task) != self.cfg.evaluation.max_length:
            identity["max_length"] = self.eval_length(task)
        return self._stage("eval", identity, parent), identity

    def evaluate(self, task: Task, parent: Stage, seed: int) -> tuple[Stage, dict[str, dict[str, float]]]:
        """Zero-shot scores of `parent`'s model on the test split of every language."""
        stage, identity = self.eval_stage(task, parent)
        self._run(stage, identity, lambda: self._evaluate(stage, task, parent))
        return stage, json.loads((stage.dir / "scores.json").read_text(encoding="utf-8"))

    def _evaluate(self, stage: Stage, task: Task, parent: Stage) -> dict:
        from stopover.formats import get_format

        langs = self.languages(task)
        fmt = get_format(task.format)
        model, tokenizer = self._load_for_eval(task, parent, fmt)
        ecfg = self.cfg.evaluation
        scores: dict[str, dict[str, float]] = {}
        bar = self.progress.add_task(f"evaluate {task.name}", total=len(langs)) if self.progress else None
        for lang in langs:
            part = stage.dir / "languages" / f"{lang}.json"
            if part.exists():  # resumed: this language was finished before the interruption
                scores[lang] = json.loads(part.read_text(encoding="utf-8"))
            else:
                examples = self.test_examples(task, lang, limit=ecfg.max_examples)
                feats = self.features(fmt, task, examples, tokenizer, self.eval_length(task), train=False,
                                      data_key=[self.fingerprint(task, ("test",), (lang,)), lang, ecfg.max_examples]
                                      + (["holdout"] if self._holdout(task) else []))
                preds = self.predict(fmt, model, feats, examples, task, tokenizer)
                scores[lang] = {**fmt.score(task, examples, preds, lang), "n": float(len(examples))}
                atomic_write_text(part, json.dumps(scores[lang]))
            if bar is not None:
                self.progress.update(bar, advance=1)
        atomic_write_text(stage.dir / "scores.json", json.dumps(scores, indent=2, sort_keys=True))
        return {"languages": list(langs), "precision": self.eval_precision(model)[0]}

    def eval_precision(self, model: Any) -> tuple[str, str | None]:
        """(precision, note) for scoring with `model`: `evaluation.precision` resolved on its device."""
        from stopover.device import model_device
        from stopover.precision import resolve_precision

        return resolve_precision(self.cfg.evaluation.precision, model_device(model).type)

    def predict(self, fmt: Any, model: Any, features: list[dict], examples: list[dict], task: Task,
                tokenizer: Any) -> list[Any]:
        """`fmt.predict` in the evaluation precision (test sets and dev sets during training alike)."""
        from stopover.device import model_device
        from stopover.precision import autocast

        with autocast(self.eval_precision(model)[0], model_device(model).type):
            return fmt.predict(model, features, examples, task, tokenizer, self.cfg.evaluation.batch_size)

    # ------------------------------------------------------------------ helpers
    def _load_for_eval(self, task: Task, parent: Stage, fmt: Any):
        if task.format == "retrieval":  # no target training: the intermediate encoder itself
            path = str(parent.encoder_dir) if parent.kind not in ("pretrained",) else self.model_path()
            from stopover.models import load_encoder

            return load_encoder(path).to(default_device()), self.load_tokenizer(path)
        if self._fresh is not None and self._fresh[0] == parent.hash:
            return self._fresh[1], self._fresh[2]
        path = parent.dir / "model"
        if not path.is_dir():
            raise DataError(f"{parent.dir}: the target model was pruned (keep_models: false) before its "
                            "evaluation finished; delete that stage directory and run again")
        return fmt.build_model(str(path), task).to(default_device()), self.load_tokenizer(str(path))

    def eval_length(self, task: Task) -> int:
        """A task's sequences are cut alike in training and evaluation (as jiant does): its
        `tasks.<name>.train.max_length` when set, else `evaluation.max_length`."""
        source = self.source(task)
        if source and "max_length" in source.train:
            return int(source.train["max_length"])
        return self.cfg.evaluation.max_length

    def _holdout(self, task: Task) -> bool:
        source = self.source(task)
        return bool(source and source.holdout)

    def _train_task(self, task: Task, encoder_path: str, cfg: TrainConfig, seed: int, *, limit: int | None,
                    label: str, train_from: Task | None = None, holdout: bool = False, target: bool = False):
        from stopover.formats import get_format
        from stopover.train import seed_everything, train

        fmt = get_format(task.format)
        source = train_from or task
        tokenizer = self.load_tokenizer(encoder_path)
        examples = self.train_examples(source, limit=limit, sample_seed=DATA_SEED, holdout=holdout, target=target)
        feats = self.features(fmt, task, examples, tokenizer, cfg.max_length, train=True,
                              data_key=[self.fingerprint(source, ("train",), ("eng",), target=target), limit]
                              + (["holdout"] if holdout else []))
        dev_fn = None
        dev_task = task if "dev" in task.splits else source
        try:
            dev = self.examples(dev_task, "dev", "eng", limit=cfg.max_dev_examples)
        except DataError:
            dev = []  # no English dev split available: keep the last checkpoint
        if dev:
            dev_feats = self.features(fmt, task, dev, tokenizer, cfg.max_length, train=False,
                                      data_key=[self.fingerprint(dev_task, ("dev",), ("eng",)),
                                                cfg.max_dev_examples])
            primary = self._primary_name(task)

            def dev_fn(m):
                preds = self.predict(fmt, m, dev_feats, dev, task, tokenizer)
                return fmt.score(task, dev, preds, "eng")[primary]

        seed_everything(seed)  # the head's initialisation depends on the seed
        model = fmt.build_model(encoder_path, task).to(default_device())
        self.log(f"{label}: {len(examples)} examples, {cfg.epochs:g} epoch(s)")
        result = train(model, feats, lambda b: fmt.collate(b, tokenizer), cfg, seed=seed, dev_score=dev_fn,
                       progress=self.progress, description=label, checkpoint_dir=self._checkpoint_dir,
                       checkpoint_every=self.cfg.checkpoint_every)
        return model, result

    def _train_mixed(self, tasks: tuple[str, ...], encoder_path: str, seed: int, per_task: int | None):
        """Multi-task training with one shared encoder (see stopover.multitask)."""
        from stopover.formats import get_format
        from stopover.multitask import MultiTaskModel, mixed_batch_plan
        from stopover.train import seed_everything, train

        cfg, mt = self.cfg.intermediate, self.cfg.multitask
        tokenizer = self.load_tokenizer(encoder_path)
        feats: list[dict] = []
        task_of: list[str] = []
        devs = {}
        models = {}
        seed_everything(seed)
        for name in tasks:
            task = get_task(name)
            fmt = get_format(task.format)
            # per-task max_length (tasks.<name>.train.max_length, e.g. 384 for QA); the batch schedule is shared
            length = self.train_config(task, cfg).max_length
            examples = self.train_examples(task, limit=per_task, sample_seed=DATA_SEED)
            part = self.features(fmt, task, examples, tokenizer, length, train=True,
                                 data_key=[self.fingerprint(task, ("train",), ("eng",)), per_task])
            feats.extend(part)
            task_of.extend([name] * len(part))
            model_t = fmt.build_model(encoder_path, task).to(default_device())
            if models:  # share the first task's encoder now, so each further copy is freed at once
                first = next(iter(models.values()))
                setattr(model_t, model_t.base_model_prefix, getattr(first, first.base_model_prefix))
            models[name] = model_t
            try:
                dev = self.examples(task, "dev", "eng", limit=cfg.max_dev_examples)
                devs[name] = (task, fmt, dev, fmt.featurize(dev, tokenizer, task, length, train=False))
            except DataError:
                pass
        model = MultiTaskModel(models)

        collators = {name: get_format(get_task(name).format).collate for name in tasks}

        def collate(batch: list[dict]) -> dict:
            name = batch[0]["task"]  # the batch plan never mixes tasks within a batch
            return {"task": name, **collators[name](batch, tokenizer)}

        for f, name in zip(feats, task_of):
            f["task"] = name

        def dev_fn(m: MultiTaskModel) -> float:
            scores = []
            for name, (task, fmt, dev, dev_feats) in devs.items():
                preds = self.predict(fmt, m.tasks[name], dev_feats, dev, task, tokenizer)
                scores.append(fmt.score(task, dev, preds, "eng")[self._primary_name(task)])
            return sum(scores) / len(scores)

        lengths = [len(f["input_ids"]) for f in feats]
        plan = mixed_batch_plan(task_of, lengths, cfg.batch_size, mt.sampling, mt.temperature)
        self.log(f"intermediate {'+'.join(tasks)} (mixed, {mt.sampling}): {len(feats)} features")
        result = train(model, feats, collate, cfg, seed=seed, dev_score=dev_fn if devs else None,
                       progress=self.progress, description=f"intermediate {'+'.join(tasks)} (mixed)",
                       batch_plan=plan, checkpoint_dir=self._checkpoint_dir,
                       checkpoint_every=self.cfg.checkpoint_every)
        return model, result

    def _save_encoder(self, model: Any, encoder_path: str, out: Path, done: dict[str, Any] | None = None) -> None:
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.base_model.save_pretrained(tmp)
        self.load_tokenizer(encoder_path).save_pretrained(tmp)
        for name, record in (done or {}).items():  # `.done-<task>`: trained into this encoder
            (tmp / f".done-{name}").write_text(json.dumps(record), encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)

    @staticmethod
    def _primary_name(task: Task) -> str:
        from stopover.metrics import PRIMARY_METRIC

        return PRIMARY_METRIC[task.metric]

    # ------------------------------------------------------------------ results
    def _record(self, stage: Stage, task: str, language: str, split: str, metrics: dict[str, float], *,
                seed: int, strategy: str, intermediate: str, n: int, primary: bool = True,
                target: str = "") -> None:
        rows = [ResultRow(run=self.cfg.name, stage=stage.kind, stage_hash=stage.hash, task=task,
                          language=language, split=split, metric=m, value=float(v), seed=seed, strategy=strategy,
                          intermediate=intermediate, primary=primary and m == self._primary_name(get_task(task)),
                          target=target or task, model=self.cfg.model, n=n)
                for m, v in metrics.items() if m != "n"]
        record_rows(self.run_dir, rows)

    def record_cell(self, eval_stage: Stage, scores: dict[str, dict[str, float]], task: Task, *, seed: int,
                    strategy: str, intermediate: str) -> None:
        primary = self._primary_name(task)
        rows = []
        for lang, metrics in scores.items():
            n = int(metrics.get("n", 0))
            for m, v in metrics.items():
                if m == "n":
                    continue
                rows.append(ResultRow(run=self.cfg.name, stage="eval", stage_hash=eval_stage.hash, task=task.name,
                                      language=lang, split="test", metric=m, value=float(v), seed=seed,
                                      strategy=strategy, intermediate=intermediate, primary=(m == primary),
                                      target=task.name, model=self.cfg.model, n=n))
        record_rows(self.run_dir, rows)


def record_rows(run_dir: Path, rows: list[ResultRow]) -> int:
    """Append rows whose (stage_hash, task, language, split, metric, seed, strategy, intermediate)
    are not in results.jsonl yet; returns how many were added. Idempotent, so a stage that was
    interrupted between recording and its DONE marker never duplicates rows."""
    from filelock import FileLock

    from stopover.store import RESULTS_FILE

    path = run_dir / RESULTS_FILE
    run_dir.mkdir(parents=True, exist_ok=True)

    def key(r: ResultRow) -> tuple:
        return (r.stage_hash, r.task, r.language, r.split, r.metric, r.seed, r.strategy, r.intermediate)

    with FileLock(str(path) + ".record.lock"):
        existing = {key(r) for r in read_results(path)} if path.exists() else set()
        new = [r for r in rows if key(r) not in existing]
        append_results(run_dir, new)
    return len(new)
