"""The task registry: one small declaration per task, one file per task family.

A `Task` declares its format, metric, languages (ISO 639-3 internally, with the
dataset's own code for each), label set, column mapping and sources: a Hugging
Face Hub dataset (id + config + pinned revision + split names) and local files
(`<data_dir>/<language>/<split>.<jsonl|tsv|csv|parquet>` with the same column
mapping). Per-language variants are data (a tuple of languages), never
generated classes. Family modules in this package call `register(...)` at
import time and are discovered with pkgutil, so adding a task adds a file
(or a declaration in a family's file).

A task carries its own facts: its `version` (part of every stage identity;
docs/tasks.md says when to bump it), the published sizes `stopover plan`
falls back on, and where its English training data comes from (`train_task`).
`register` refuses a declaration whose languages are not keys of the language
table (stopover.languages): the dataset's own codes go in `lang_codes`, so
every task, typology table and analysis speaks one code per language.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

from stopover.errors import LanguageError, StopoverError, TaskError

FORMATS = ("classification", "tagging", "span_qa", "multiple_choice", "retrieval", "masked_lm")
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class HubSource:
    """Where a task lives on the Hugging Face Hub.

    `name` and the split names may contain `{lang}` (the dataset's own language
    code). `language_column` filters a multilingual split by language
    (XNLI keeps all languages in one config). `revision` pins the dataset: a
    branch name, or a full 40-hex commit (`register` refuses abbreviated ones:
    whether the Hub expands a prefix is not something to rely on, and stage
    identities key on the exact string, so one commit must have one spelling).
    Pin a commit that holds the data as Parquet: datasets >= 4
    refuses a commit that still holds a loading script.
    """

    path: str
    name: str | None = None
    revision: str = "main"
    splits: dict[str, str] = field(default_factory=dict)  # stopover split -> Hub split (may list several with "+")
    language_column: str | None = None
    filter: Callable[[dict[str, Any], str], bool] | None = None  # (row, dataset language code): TyDiQA by id prefix


@dataclass(frozen=True)
class Task:
    """One task's declaration: what it is, where its data lives, and the facts stages depend on."""

    name: str
    format: str
    metric: str  # a key of stopover.metrics.METRICS
    description: str
    languages: tuple[str, ...] = ("eng",)  # ISO 639-3; evaluation languages
    lang_codes: dict[str, str] = field(default_factory=dict)  # iso3 -> dataset code (default: iso3)
    labels: tuple[str, ...] = ()  # classification / tagging label names, in index order
    columns: dict[str, str] = field(default_factory=dict)  # canonical field -> source column
    source_labels: tuple[str, ...] = ()  # names of integer labels in the source (mapped by name)
    label_map: dict[str, str] = field(default_factory=dict)  # source string label -> label name
    hub: HubSource | None = None
    role: str = "intermediate"  # intermediate | target | both
    train_task: str | None = None  # target tasks trained on another task's English data (XNLI <- MNLI)
    splits: tuple[str, ...] = SPLITS  # splits this task provides
    licence: str = ""
    citation: str = ""
    convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # row -> canonical, for odd schemas
    # Bumped whenever what the declaration produces changes (columns, label mapping, convert,
    # readers): it is part of every stage identity, as lm-evaluation-harness versions tasks.
    version: int = 1
    format_options: Any = None  # the format's typed options (stopover.formats.options), None = defaults
    local_only: bool = False  # no Hub source: the user supplies files (CCG, BUCC, MLM, the lab)
    mixed_only: bool = False  # only trains inside a mixed multi-task stage (continued MLM)
    lab: bool = False  # a typology-lab task: its data is generated into the run directory
    union_of: tuple[str, ...] = ()  # training data = the union of these tasks' (ANLI+)
    eval_from: str | None = None  # dev/test come from this task (ANLI+ <- ANLI)
    # tasks whose data hold this task's English test items (XQuAD's 240 paragraphs are SQuAD v1.1 dev
    # paragraphs): a run that tests on this task drops those items from their training data
    test_drawn_from: tuple[str, ...] = ()
    # languages whose training text exists locally: (task, data dir) -> languages (MLM)
    train_languages_from: Callable[..., tuple[str, ...]] | None = None
    missing_data: str = ""  # what to tell a user whose files are missing (where to get them)
    published_train_size: int | None = None  # English training examples as published (for `plan`)
    published_test_size: int | None = None  # test examples per language as published (for `plan`)
    # Local files beyond the flat tables: extra readers by file suffix (e.g. "conllu.gz",
    # "json"), each `reader(path, task, language) -> rows`, and an optional `locate(dir, task,
    # language, split) -> Path | None` for layouts other than <dir>/<language>/<split>.<ext>
    # (e.g. LASER's tatoeba.<xxx>-eng.<xxx>). `companions(path, task, language) -> [Path]`
    # names the other files a reader reads beside the located one (Tatoeba's .eng side, BUCC's
    # .en and .gold files), so that a stage's data fingerprint covers them too.
    readers: dict[str, Callable[..., list[dict[str, Any]]]] = field(default_factory=dict)
    locate: Callable[..., Any] | None = None
    companions: Callable[..., list[Any]] | None = None
    # Languages beyond `languages` that local files may add (XTREME-R's, Romanian XQuAD, any UD
    # treebank or Tatoeba pair): the language-table scheme that names their files ("iso1" for
    # two-letter file codes, "tatoeba" for LASER's; ISO 639-3 where the table has no such code),
    # or "" for the declared languages only. Their files must exist locally: there is no Hub config.
    open_languages: str = ""

    def code(self, language: str) -> str:
        """The dataset's own code for one of the task's languages (a table key); for an open
        task, any table language in the task's code scheme (`open_languages`).
        """
        if language in self.lang_codes or not self.open_languages or language in self.languages:
            return self.lang_codes.get(language, language)
        from stopover import languages as langtable

        try:
            return langtable.codes(self.open_languages, language)
        except LanguageError:
            return language

    def has_local_files(self, language: str, data_dir: Any) -> bool:
        """Whether `data_dir` holds a file of any split for `language` (ISO 639-3), in the task's own
        layout (`locate`) or the flat one (`<dir>/<language or code>/<split>.*`).
        """
        from pathlib import Path

        directory = Path(data_dir)
        for split in self.splits:
            try:
                if self.locate is not None and self.locate(directory, self, language, split) is not None:
                    return True
            except StopoverError:  # a locator reporting the file missing
                pass
            for name in dict.fromkeys((language, self.code(language))):
                folder = directory / name
                if folder.is_dir() and any(p.name.startswith(f"{split}.") for p in folder.iterdir()):
                    return True
        return False

    def check_language(self, language: str, data_dir: Any = None) -> str:
        """The task's key for `language` in any code form (`sw`, `swh`, `swa` -> `swa`). With
        `open_languages`, any language of the table qualifies whose files are in `data_dir`.
        """
        if language in self.languages:
            return language
        from stopover import languages as langtable  # may resolve "de" -> "deu"

        try:
            iso3 = langtable.normalize(language)
        except LanguageError as err:
            # the dataset's own code for one of its languages, else an unknown or ambiguous code:
            # say which (the table's suggestions included), not just "the task lacks it"
            by_code = {code: iso for iso, code in self.lang_codes.items()}
            if by_code.get(language) in self.languages:
                return by_code[language]
            raise LanguageError(f"task {self.name!r}: {err}; the task's languages: "
                                f"{', '.join(self.languages)}") from None
        if iso3 in self.languages:
            return iso3
        if self.open_languages and data_dir is not None and self.has_local_files(iso3, data_dir):
            return iso3
        more = ""
        if self.open_languages:
            more = (f"; other languages need their own local files, and {data_dir} has none for {iso3}"
                    if data_dir is not None else f"; other languages need local files (tasks.{self.name}.data_dir)")
        raise LanguageError(f"task {self.name!r} has no language {language!r}; "
                            f"it has: {', '.join(self.languages)}{more}")


_REGISTRY: dict[str, Task] = {}
_LOADED = False


_HEX = frozenset("0123456789abcdef")


def _check_declaration(task: Task) -> None:
    """What a declaration must get right before anything loads it (one-line errors)."""
    from stopover import languages as langtable

    if task.format not in FORMATS:
        raise TaskError(f"task {task.name!r}: unknown format {task.format!r}; valid: {', '.join(FORMATS)}")
    if not isinstance(task.version, int) or isinstance(task.version, bool) or task.version < 1:
        raise TaskError(f"task {task.name!r}: version {task.version!r} must be an integer >= 1")
    for language in task.languages:
        try:
            key = langtable.normalize(language)
        except LanguageError as err:
            raise TaskError(f"task {task.name!r}: {err}") from None
        if key != language:
            raise TaskError(f"task {task.name!r}: language {language!r} is not a key of the language "
                            f"table; declare {key!r} and keep the dataset's code in lang_codes, e.g. "
                            f"{{{key!r}: {language!r}}}")
    stray = sorted(set(task.lang_codes) - set(task.languages))
    if stray:
        raise TaskError(f"task {task.name!r}: lang_codes names {', '.join(stray)}, which are not among "
                        "its languages; lang_codes maps each declared language to the dataset's code")
    revision = task.hub.revision if task.hub else ""
    if 7 <= len(revision) < 40 and set(revision.casefold()) <= _HEX:
        raise TaskError(f"task {task.name!r}: Hub revision {revision!r} looks like an abbreviated commit; "
                        "give the full 40-character SHA (identities key on the exact string)")


def register(task: Task) -> Task:
    """Add a declaration to the registry after checking it (see `_check_declaration`)."""
    _check_declaration(task)
    _REGISTRY[task.name] = task
    return task


def _load_families() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def get_task(name: str) -> Task:
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise TaskError(f"unknown task {name!r}{hint} (`stopover tasks` lists all)") from None


def all_tasks() -> list[Task]:
    _load_families()
    return sorted(_REGISTRY.values(), key=lambda t: (t.role == "target", t.name))
