"""What a run reads for one task, resolved once: `TaskData`, and the `Reader` that loads it.

`task_data(cfg, task)` turns the run config's `tasks.<name>` entry and the task's
declaration into a frozen `TaskData`: where each (split, language) comes from
(local file(s) and their content hashes, or a Hub id with the revision asked for
and, where a branch was asked for, the commit actually served; or a
`$STOPOVER_HUB_MIRROR` copy, hashed), the evaluation languages, the training
languages of an intermediate stage, which task a target trains on and picks its
checkpoint on, the holdout rule and the evaluation length. The pipeline,
`stopover plan` and diversity profiling all read through this one object, so
they cannot disagree about which examples a stage reads.

An explicit data directory (`tasks.<name>.data_dir`, or `<data_dir>/<task>/`
when it exists) must hold every split a run reads: a missing file is an error
naming it, never a silent download. The data fingerprint (`fingerprint`) is
what stage identities hash. No torch here.

Size: one concept (what a run reads per task and where it comes from), over 400 lines
because TaskData, the Hub/mirror state and the Reader resolve one source together.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from stopover.config import RunConfig, TaskSource, TrainConfig
from stopover.data import FILE_TYPES, SKIP_BAD_ROWS, canonicalize, find_local_file, load_examples, read_table
from stopover.errors import DataError, StopoverError
from stopover.tasks import Task, get_task

DATA_SEED = 0  # training subsets are drawn with a fixed seed: runs differ by training seed only
MIRROR_ENV = "STOPOVER_HUB_MIRROR"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA_CACHE: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, once per process


def file_sha(path: Path) -> str:
    """sha256 of a file's bytes (remembered per process by path, size and mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def subset(rows: list[dict], limit: int | None, sample_seed: int | None) -> list[dict]:
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
    except StopoverError:  # not one of the task's languages (e.g. training text): compare as written
        return code


def mirror_commit(repo_dir: Path) -> str | None:
    """The commit an `hf download --local-dir` copy came from (its `.cache/huggingface` metadata), if any."""
    meta = repo_dir / ".cache" / "huggingface" / "download"
    if not meta.is_dir():
        return None
    for path in sorted(meta.rglob("*.metadata")):
        first = path.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
        if first and _COMMIT.match(first[0].strip()):
            return first[0].strip()
    return None


def directory_digest(root: Path) -> str:
    """sha256 over every file's relative path and bytes under `root` (a Hub mirror's copy)."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and ".cache" not in p.relative_to(root).parts):
        h.update(str(path.relative_to(root)).encode("utf-8") + b"\0" + file_sha(path).encode() + b"\n")
    return h.hexdigest()


def resolve_commit(repo: str, revision: str) -> str | None:
    """The commit the Hub serves for `revision` of dataset `repo` (None offline or unreachable)."""
    if _COMMIT.match(revision):
        return revision
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return None
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(repo, revision=revision).sha
    except Exception:  # noqa: BLE001 - unreachable Hub: loading reports it with its own message
        return None


@dataclass(frozen=True)
class HubState:
    """The Hub side of a task: id, config, revision asked for, and what was actually read."""

    path: str
    name: str | None
    revision: str  # requested: the config's tasks.<name>.revision, else the task's pin
    commit: str | None = None  # the commit served (resolved from a branch), None if unknown
    mirror: str | None = None  # $STOPOVER_HUB_MIRROR copy read instead of the Hub
    mirror_digest: str | None = None  # content hash of that copy

    def key(self) -> list[Any]:
        out: list[Any] = [self.path, self.name, self.revision]
        if self.commit and self.commit != self.revision:
            out.append(self.commit)
        if self.mirror_digest:
            out.append({"mirror": self.mirror_digest})
        return out


@dataclass(frozen=True)
class TaskData:
    """Everything a run reads for one task (see the module docstring); build with `task_data`."""

    task: str
    directory: str | None  # local files: <directory>/<language>/<split>.<ext>
    source: TaskSource
    languages: tuple[str, ...]  # evaluation languages (ISO 639-3)
    train_languages: tuple[str, ...]  # training files of an intermediate stage (empty: see train_error)
    train_error: str
    train_task: str  # the task whose English training data a target stage reads (XNLI <- MNLI)
    dev_task: str  # the task whose English dev split picks the checkpoint (XQuAD <- SQuAD)
    holdout: bool
    eval_length: int
    hub: HubState | None
    parts: tuple["TaskData", ...] = ()  # union tasks (ANLI+): the parts' own data
    excluded_by: tuple[str, ...] = ()  # targets of the run whose English test passages this task's training drops
    eval_data: "TaskData | None" = None  # union tasks: dev/test come from this task

    @property
    def declaration(self) -> Task:
        return get_task(self.task)

    def intermediate_languages(self) -> tuple[str, ...]:
        if not self.train_languages:
            raise DataError(self.train_error)
        return self.train_languages

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """`base` with the task's `tasks.<name>.train` overrides applied."""
        return self.source.train_config(base, f"tasks.{self.task}")

    def mapped_file(self, language: str, split: str) -> Path | None | Literal[False]:
        """The file `tasks.<name>.files` names for (language, split); None: mapped to null (no such
        split); False: not mapped (the directory layout decides).
        """
        task = self.declaration
        # a language's own key (eng/train) wins over the split's key (train), whatever their order
        keys = sorted(self.source.files, key=lambda k: "/" not in k)
        for key in keys:
            value = self.source.files[key]
            lang, _, name = key.rpartition("/")
            if name != split or (lang and lang != language and _iso3(task, lang) != language):
                continue
            if value is None:
                return None
            # {code}: the dataset's own code of the language (XTREME's `de`), {language}: its ISO 639-3 key
            try:
                value = value.format(code=task.code(language), language=language)
            except (KeyError, IndexError, ValueError):
                raise DataError(f"tasks.{task.name}.files.{key} = {value}: only the placeholders {{code}} "
                                "and {language} may appear in braces") from None
            path = Path(value).expanduser()
            if not path.is_absolute() and self.directory is not None:
                path = Path(self.directory) / path
            if not path.is_file():
                raise DataError(f"tasks.{task.name}.files.{key} = {value}: no such file ({path})")
            return path
        return False

    def local_file(self, language: str, split: str) -> Path | None:
        """The local file of (language, split), or None (not local: the Hub, or absent)."""
        mapped = self.mapped_file(language, split)
        if mapped is False:
            return find_local_file(Path(self.directory), self.declaration, language, split) \
                if self.directory is not None else None
        return mapped or None

    def where(self, language: str, split: str) -> str:
        """Which source (language, split) comes from: a file path, `hub:<id>@<commit>` or `absent`."""
        if self.parts and split == "train":
            return "union:" + ",".join(p.task for p in self.parts)
        if self.eval_data is not None and split != "train":
            return self.eval_data.where(language, split)
        path = self.local_file(language, split)
        if path is not None:
            return str(path)
        if self.mapped_file(language, split) is None or self.directory is not None or self.hub is None:
            return "absent"
        hub = self.hub
        return f"{'mirror' if hub.mirror else 'hub'}:{hub.path}@{hub.commit or hub.revision}"

    def revision_read(self, language: str, split: str) -> str | None:
        """`<hub id>@<commit or revision>` when (language, split) is read from the Hub or a mirror, else None
        (local files are identified by their content hashes in the stage identity).
        """
        if self.parts and split == "train":
            return None  # a union: its parts' rows say where they came from
        if self.eval_data is not None and split != "train":
            return self.eval_data.revision_read(language, split)
        if self.hub is None or self.directory is not None or self.mapped_file(language, split) is not False:
            return None
        return f"{self.hub.path}@{self.hub.commit or self.hub.revision}"

    def load(self, split: str, language: str) -> list[dict]:
        """Canonical examples of (split, language), from the one source resolved for it."""
        task = self.declaration
        if self.parts and split == "train":
            return [ex for part in self.parts for ex in part.load("train", language)]
        if self.eval_data is not None and split != "train":
            return self.eval_data.load(split, language)
        mapped = self.mapped_file(language, split)
        if mapped is None:
            raise DataError(f"task {task.name!r} has no {split} split here (tasks.{task.name}.files maps it to null)")
        if mapped is False and self.directory is not None \
                and find_local_file(Path(self.directory), task, language, split) is None:
            # an explicit directory is the whole source: say which file is missing, never download it
            raise DataError(f"{self.directory}: no {split} file for task {task.name!r}, language {language!r}; "
                            f"expected {self.directory}/{language}/{split}.<{'|'.join(FILE_TYPES)}> "
                            f"(an explicit data_dir is never completed from the Hub)")
        if mapped is False:
            revision = None
            if self.hub is not None:
                revision = self.hub.commit or self.hub.revision
            return load_examples(task, split, language, data_dir=self.directory, revision=revision,
                                 skip_bad_rows=self.source.skip_bad_rows)
        reader = next((fn for ext, fn in task.readers.items() if mapped.name.endswith("." + ext)), None)
        if reader is not None:
            token = SKIP_BAD_ROWS.set(self.source.skip_bad_rows)  # for readers that read flat tables
            try:
                rows = reader(mapped, task, language)
            finally:
                SKIP_BAD_ROWS.reset(token)
        else:
            rows = read_table(mapped, skip_bad_rows=self.source.skip_bad_rows,
                              option=f"tasks.{task.name}.skip_bad_rows")
        examples = canonicalize(rows, task, str(mapped))
        if not examples:
            raise DataError(f"{mapped}: the {split} split of {task.name!r} ({language}) is empty")
        return examples

    def fingerprint(self, splits: tuple[str, ...], languages: tuple[str, ...], *, target: bool = False) -> dict:
        """What identifies the data a stage reads: file contents, or Hub id + revision (+ commit served,
        + mirror contents). An intermediate stage's training files are those of `train_languages`
        (`target`: English).
        """
        task = self.declaration
        files: dict[str, str | None] = {}
        for split in splits:
            # training data may be in other languages (translated data, mlm text); the default is English
            train = split == "train" and languages == ("eng",)
            if train:
                langs = ("eng",) if target else self.train_languages
            else:
                langs = languages
            for lang in langs:
                mapped = self.mapped_file(lang, split)
                path = self.local_file(lang, split)
                if path is not None:
                    files[f"{lang}/{split}"] = file_sha(path)
                    for other in (task.companions(path, task, lang) if task.companions else ()):
                        # a missing companion is the reader's error to report; here it is just absent
                        files[f"{lang}/{split}/{other.name}"] = file_sha(other) if other.is_file() else None
                elif mapped is None:
                    files[f"{lang}/{split}"] = None  # mapped to null: no such split
        out = {"task": task.name, "files": files, "hub": None if self.hub is None else self.hub.key(),
               "union": [p.fingerprint(splits, languages) for p in self.parts] or None}
        if self.excluded_by and "train" in splits:
            out["excluded_by"] = list(self.excluded_by)  # other training data: a stage of its own
        return out

    @cached_property
    def sources(self) -> dict[str, str]:
        """{"<language>/<split>": where it comes from} for the splits a run may read (recorded per stage)."""
        out = {}
        for split in self.declaration.splits:
            langs = (self.train_languages or ("eng",)) if split == "train" else \
                ("eng",) if split == "dev" else self.languages
            for lang in langs:
                try:
                    out[f"{lang}/{split}"] = self.where(lang, split)
                except StopoverError as err:
                    out[f"{lang}/{split}"] = f"error: {err}"
        return out


def _hub_state(task: Task, source: TaskSource, *, resolve_hub: bool, local: bool) -> HubState | None:
    hub = task.hub
    if hub is None:
        return None
    revision = source.revision or hub.revision
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        repo = Path(mirror) / hub.path
        if not repo.is_dir():
            return HubState(hub.path, hub.name, revision, mirror=mirror)  # loading reports the missing copy
        served = mirror_commit(repo)
        if served and _COMMIT.match(revision) and not served.startswith(revision):
            raise DataError(f"${MIRROR_ENV}={mirror}: {hub.path} there is commit {served[:12]}, but task "
                            f"{task.name!r} is pinned to {revision[:12]}; download the pinned commit "
                            f"(hf download {hub.path} --repo-type dataset --revision {revision} --local-dir {repo}) "
                            f"or set tasks.{task.name}.revision={served}")
        return HubState(hub.path, hub.name, revision, commit=served, mirror=mirror,
                        mirror_digest=directory_digest(repo))
    commit = resolve_commit(hub.path, revision) if resolve_hub and not local else None
    return HubState(hub.path, hub.name, revision, commit=commit)


def task_data(cfg: RunConfig, task: Task | str, *, resolve_hub: bool = False) -> TaskData:
    """Resolve what `cfg` reads for `task`. `resolve_hub`: ask the Hub which commit a branch serves
    (a run that will load from it does; planning and tests never do).
    """
    task = get_task(task) if isinstance(task, str) else task
    source = cfg.tasks.get(task.name) or TaskSource()
    directory = None  # set only when the config names it: then it is the whole source
    if source.data_dir:
        directory = str(Path(source.data_dir).expanduser())
        if not Path(directory).is_dir():
            raise DataError(f"tasks.{task.name}.data_dir = {source.data_dir}: no such directory; fix the path "
                            "(a config's relative paths start at the config file) or remove the key to "
                            "read the task from the Hub")
    elif cfg.data_dir:
        if not Path(cfg.data_dir).expanduser().is_dir():
            raise DataError(f"data_dir = {cfg.data_dir}: no such directory; fix the path (a config's relative "
                            "paths start at the config file) or remove the key")
        path = Path(cfg.data_dir).expanduser() / task.name
        if path.is_dir():
            directory = str(path)
    # a language outside the task's list qualifies when its files are in the task's directory
    languages = tuple(task.check_language(lang, directory) for lang in source.languages) if source.languages \
        else task.languages
    train_languages, train_error = ("eng",), ""
    if source.train_languages:
        train_languages = tuple(source.train_languages)
    elif callable(task.train_languages_from):
        train_languages = tuple(task.train_languages_from(Path(directory) if directory else None))
        if not train_languages:
            train_error = task.missing_data or \
                f"task {task.name!r}: no training files; set tasks.{task.name}.data_dir"
    train_task = source.train_from or task.train_task or task.name
    dev_task = task.name if "dev" in task.splits else train_task
    eval_length = int(source.train["max_length"]) if "max_length" in source.train else cfg.evaluation.max_length
    parts = tuple(task_data(cfg, name, resolve_hub=resolve_hub) for name in task.union_of)
    eval_data = task_data(cfg, task.eval_from, resolve_hub=resolve_hub) if task.union_of and task.eval_from else None
    hub = _hub_state(task, source, resolve_hub=resolve_hub, local=directory is not None)
    excluded_by = tuple(sorted(t for t in cfg.targets if task.name in get_task(t).test_drawn_from))
    return TaskData(task=task.name, directory=directory, source=source, languages=languages,
                    train_languages=train_languages, train_error=train_error, train_task=train_task,
                    dev_task=dev_task, holdout=bool(source.holdout), eval_length=eval_length, hub=hub,
                    parts=parts, eval_data=eval_data, excluded_by=excluded_by)


class Reader:
    """Loads examples through each task's `TaskData`, once per (task, split, language) per run."""

    def __init__(self, cfg: RunConfig, *, resolve_hub: bool = False) -> None:
        self.cfg = cfg
        self.resolve_hub = resolve_hub
        self._data: dict[str, TaskData] = {}
        self._examples: dict[tuple[str, str, str], list[dict]] = {}

    def data(self, task: Task | str) -> TaskData:
        name = task if isinstance(task, str) else task.name
        if name not in self._data:
            self._data[name] = task_data(self.cfg, name, resolve_hub=self.resolve_hub)
        return self._data[name]

    def examples(self, task: Task | str, split: str, language: str = "eng", limit: int | None = None,
                 sample_seed: int | None = None) -> list[dict]:
        data = self.data(task)
        key = (data.task, split, language)
        if key not in self._examples:
            self._examples[key] = data.load(split, language)
        return subset(self._examples[key], limit, sample_seed)

    def train_examples(self, task: Task | str, limit: int | None = None, sample_seed: int | None = None,
                       holdout: bool = False, target: bool = False) -> list[dict]:
        """Training examples in `train_languages` (English by default; always for a target stage,
        `target=True`: zero-shot transfer), concatenated, capped at `limit`.

        `holdout`: only the training half of the items (see `holdout_half`).
        """
        data = self.data(task)
        langs = ("eng",) if target else data.intermediate_languages()
        rows = [ex for lang in langs for ex in self.examples(data.task, "train", lang)]
        if data.excluded_by:
            # the run tests on translations of some of these passages (XQuAD <- SQuAD v1.1 dev): never
            # train on them; said with its count
            # the passages actually tested: with the target's holdout, only its evaluation half
            tested = {ex.get("context") for t in data.excluded_by for ex in self.test_examples(t, "eng")}
            kept = [ex for ex in rows if ex.get("context") not in tested]
            if len(kept) < len(rows):
                warnings.warn(f"{data.task}: {len(rows) - len(kept)} training example(s) dropped: their passages "
                              f"are {', '.join(data.excluded_by)}'s English test items, which this run tests on",
                              stacklevel=2)
            rows = kept
        if holdout:
            rows = [ex for ex in rows if holdout_half(ex) == 0]
        return subset(rows, limit, sample_seed)

    def test_examples(self, task: Task | str, language: str, limit: int | None = None) -> list[dict]:
        """A language's test examples; with `tasks.<name>.holdout`, only the items whose English
        counterpart (same id) is in the evaluation half.
        """
        data = self.data(task)
        rows = self.examples(data.task, "test", language)
        if data.holdout:
            english = self.examples(data.task, "test", "eng")
            if all("id" in ex for ex in english) and all("id" in ex for ex in rows):
                half = {ex["id"]: holdout_half(ex) for ex in english}
                rows = [ex for ex in rows if half.get(ex["id"], 1) == 1]
            elif len(english) == len(rows):
                # parallel files without ids (XTREME's XNLI and PAWS-X TSVs): items match by position
                rows = [ex for ex, en in zip(rows, english) if holdout_half(en) == 1]
            else:
                raise DataError(f"tasks.{data.task}.holdout: the {language} test items have no ids and "
                                f"{len(rows)} rows against English's {len(english)}, so they cannot be matched "
                                "to their English items; give both files the same items in the same order")
        return subset(rows, limit, None)


def english_train_examples(cfg: RunConfig, task: str, limit: int | None = None) -> list[dict]:
    """A task's English training examples as `cfg` resolves them (for diversity profiling)."""
    return Reader(cfg).examples(task, "train", "eng", limit=limit)
