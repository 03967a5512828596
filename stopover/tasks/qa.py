"""Extractive QA tasks: SQuAD v1.1 and v2.0 (intermediate); XQuAD, MLQA, TyDi QA-GoldP (targets).

All are SQuAD-format data. From the Hub they load as Parquet with the rows
`id, title, context, question, answers{text, answer_start}`; local files may be
SQuAD JSON (`<dir>/<language>/<split>.json[.gz]`, read by stopover.squad, which
checks every answer_start), the flat tables stopover.data reads, or each
dataset's own release layout (see the `locate` functions below).

Targets follow XTREME: XQuAD and MLQA are trained on English SQuAD v1.1
(`train_task="squad"`); TyDi QA-GoldP is trained on its own English part and
has no dev split, so its target stage keeps the last checkpoint. XQuAD has no
dev or train split of its own: its single Hub split ("validation") is the test
set here, and checkpoints are chosen on SQuAD's English dev.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stopover.errors import DataError
from stopover.squad import read_squad
from stopover.tasks import HubSource, Task, register
from stopover.tasks._local import undeclared_without_files

SQUAD_READERS = {"json": read_squad, "json.gz": read_squad}


def _first_existing(*paths: Path) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def _with_gz(directory: Path, name: str) -> tuple[Path, Path]:
    return directory / name, directory / f"{name}.gz"


# ----------------------------------------------------------------------------- SQuAD


def _squad_release(version: str):
    """Locate rajpurkar's release files (train-v1.1.json, dev-v1.1.json) in a data directory."""
    def locate(directory: Path, task: Task, language: str, split: str) -> Path | None:
        name = f"{'train' if split == 'train' else 'dev'}-v{version}.json"
        return _first_existing(*_with_gz(Path(directory), name))
    locate.__doc__ = f"The release's files: train-v{version}.json[.gz], dev-v{version}.json[.gz] (dev and test)"
    return locate


register(Task(
    name="squad", format="span_qa", metric="squad_v1",
    description="SQuAD v1.1: extractive QA over Wikipedia paragraphs",
    # Its dev set doubles as the test split (the official test set is hidden).
    hub=HubSource("rajpurkar/squad", "plain_text", revision="7b6d24c440a36b6815f21b70d25016731768db1f",
                  splits={"train": "train", "dev": "validation", "test": "validation"}),
    readers=SQUAD_READERS, locate=_squad_release("1.1"),
    published_train_size=87_599,  # Rajpurkar et al. 2016
    licence="CC BY-SA 4.0", citation="Rajpurkar et al. 2016",
))

register(Task(
    name="squad_v2", format="span_qa", metric="squad_v2",
    description="SQuAD 2.0: SQuAD v1.1 plus unanswerable questions (predict no answer)",
    hub=HubSource("rajpurkar/squad_v2", "squad_v2",
                  splits={"train": "train", "dev": "validation", "test": "validation"}),
    readers=SQUAD_READERS, locate=_squad_release("2.0"),
    published_train_size=130_319,  # Rajpurkar et al. 2018
    licence="CC BY-SA 4.0", citation="Rajpurkar et al. 2018",
))

# ----------------------------------------------------------------------------- XQuAD

XQUAD_LANGS = {"eng": "en", "ara": "ar", "deu": "de", "ell": "el", "spa": "es", "hin": "hi",
               "rus": "ru", "tha": "th", "tur": "tr", "vie": "vi", "zho": "zh"}


def _locate_xquad(directory: Path, task: Task, language: str, split: str) -> Path | None:
    """deepmind/xquad's layout: `xquad.<xx>.json[.gz]`, one file per language (the test set)."""
    if split != "test":
        return None
    name = f"xquad.{task.code(language)}.json"
    found = _first_existing(*_with_gz(Path(directory), name))
    if found is None:
        undeclared_without_files(directory, task, language, split, f"{name}[.gz]")
    return found


register(Task(
    name="xquad", format="span_qa", metric="squad_v1", role="target",
    description="XQuAD: 240 SQuAD v1.1 dev paragraphs professionally translated into 10 languages",
    languages=tuple(XQUAD_LANGS), lang_codes=XQUAD_LANGS,
    hub=HubSource("google/xtreme", "XQuAD.{lang}", splits={"test": "validation"}),
    readers=SQUAD_READERS, locate=_locate_xquad, open_languages="iso1",
    train_task="squad", splits=("test",), test_drawn_from=("squad",),
    published_test_size=1_190,  # per language (Hu et al. 2020, Table 1)
    licence="CC BY-SA 4.0", citation="Artetxe et al. 2020",
))

# ----------------------------------------------------------------------------- MLQA

MLQA_LANGS = {"eng": "en", "ara": "ar", "deu": "de", "spa": "es", "hin": "hi", "vie": "vi", "zho": "zh"}


def mlqa_file(directory: Path, split: str, context: str, question: str) -> Path | None:
    """MLQA_V1's file of one (context, question) language pair, by dataset codes (`de`, `en`):
    `<dir>/<split>/<split>-context-<c>-question-<q>.json[.gz]` or the same beside `<dir>`.
    """
    name = f"{split}-context-{context}-question-{question}.json"
    directory = Path(directory)
    return _first_existing(*_with_gz(directory / split, name), *_with_gz(directory, name))


def mlqa_locator(question: str | None = None):
    """Locate MLQA files with context in the language being loaded and questions in `question`
    (an ISO 639-3 code; None: the same language, XTREME's protocol). `question="eng"` gives
    MLQA's G-XLT setting with English questions; any one pair can also be named per language in a
    config (`tasks.mlqa.files: {deu/test: dev/dev-context-de-question-en.json.gz}`).
    """

    def locate(directory: Path, task: Task, language: str, split: str) -> Path | None:
        """MLQA_V1's layout: `{dev,test}/<split>-context-<xx>-question-<xx>.json[.gz]`."""
        if split not in ("dev", "test"):
            return None
        context = task.code(language)
        asked = context if question is None else task.code(task.check_language(question))
        found = mlqa_file(directory, split, context, asked)
        if found is None:
            undeclared_without_files(directory, task, language, split,
                                     f"{split}/{split}-context-{context}-question-{asked}.json[.gz]")
        return found

    return locate


_locate_mlqa = mlqa_locator()


register(Task(
    name="mlqa", format="span_qa", metric="mlqa", role="target",
    description="MLQA: extractive QA with context and question in the same language, 7 languages",
    languages=tuple(MLQA_LANGS), lang_codes=MLQA_LANGS,
    hub=HubSource("google/xtreme", "MLQA.{lang}.{lang}", splits={"dev": "validation", "test": "test"}),
    readers=SQUAD_READERS, locate=_locate_mlqa, open_languages="iso1",
    train_task="squad", splits=("dev", "test"),
    licence="CC BY-SA 3.0", citation="Lewis et al. 2020",
))

# ----------------------------------------------------------------------------- TyDi QA-GoldP

# TyDi QA ids start with the language's English name: `arabic-2387335860751143628-1`.
TYDIQA_LANGS = {"eng": "english", "ara": "arabic", "ben": "bengali", "fin": "finnish", "ind": "indonesian",
                "kor": "korean", "rus": "russian", "swa": "swahili", "tel": "telugu"}


@dataclass(frozen=True)
class IdPrefixFilter:
    """Keep the rows of one language of a mixed-language split, by id prefix (`<code>-`).

    Called by stopover.data with the row and the dataset's code of the
    language being loaded; the Hub's `tydiqa` config holds every language in
    one train and one validation split.
    """

    def __call__(self, row: dict[str, Any], code: str | None = None) -> bool:
        if code is None:
            raise DataError("tydiqa: stopover.data did not pass the language to HubSource.filter, so the "
                            "mixed-language Hub split cannot be filtered; update stopover.data or give "
                            "local files with tasks.tydiqa.data_dir")
        return str(row.get("id", "")).startswith(f"{code}-")


def _read_tydiqa(path: Path, task: Task, language: str) -> list[dict[str, Any]]:
    # Files may mix languages (the release's train/dev JSON): keep this language's questions.
    return read_squad(path, task, language, id_prefix=f"{task.code(language)}-")


def _locate_tydiqa(directory: Path, task: Task, language: str, split: str) -> Path | None:
    """Per-language files `{train,dev}/<xx>.<language>_tydiqa_{train,dev}.json[.gz]` (the GoldP dev
    file is the test split), else the release files (all languages in one file; the reader keeps
    the language's questions by id prefix).
    """
    if split not in ("train", "test"):
        return None
    part = "train" if split == "train" else "dev"
    directory = Path(directory)
    name = task.code(language)  # the English name TyDi QA's ids start with: `arabic`
    for folder in (directory / part, directory):
        if folder.is_dir():
            for suffix in (".json", ".json.gz"):
                found = sorted(folder.glob(f"*.{name}_tydiqa_{part}{suffix}"))
                if found:
                    return found[0]
    return _first_existing(*_with_gz(directory, f"tydiqa-goldp-v1.1-{part}.json"))


register(Task(
    name="tydiqa", format="span_qa", metric="squad_v1", role="target",
    description="TyDi QA-GoldP: information-seeking QA in 9 typologically diverse languages; "
                "English train only (XTREME setup), each language's GoldP dev as its test set",
    languages=tuple(TYDIQA_LANGS), lang_codes=TYDIQA_LANGS,
    hub=HubSource("google/xtreme", "tydiqa", splits={"train": "train", "test": "validation"},
                  filter=IdPrefixFilter()),
    readers={"json": _read_tydiqa, "json.gz": _read_tydiqa}, locate=_locate_tydiqa,
    splits=("train", "test"),
    published_train_size=3_696,  # TyDi QA-GoldP's English train (Hu et al. 2020, Table 1)
    licence="Apache 2.0", citation="Clark et al. 2020",
))
