"""Load one split of one task, in one language, as canonical examples.

Sources, in order of precedence: local files under a data directory
(`<dir>/<language>/<split>.<jsonl|tsv|csv|parquet>`, where `<language>` is the
ISO 639-3 code or the dataset's own code), else the Hugging Face Hub (the
task's dataset id, config, pinned revision and split names). Setting
`$STOPOVER_HUB_MIRROR` to a directory that holds Hub dataset repositories
(`<mirror>/<owner>/<name>/...`, e.g. fetched with `huggingface-cli download`)
makes the Hub path read from there: the same `datasets.load_dataset` call, no
network - for clusters without internet, and for the tests.

Rows are mapped to the canonical shape of the task's format (see
docs/tasks.md); labels are mapped by *name*. Nothing else lives here:
tokenisation belongs to the formats.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from stopover.errors import DataError
from stopover.tasks import Task, get_task

FILE_TYPES = ("jsonl", "tsv", "csv", "parquet")
_CANONICAL_KEYS = {
    "classification": ("text_a", "text_b", "label"),
    "tagging": ("tokens", "tags"),
    "span_qa": ("id", "question", "context", "answers"),
    "multiple_choice": ("context", "question", "endings", "label"),
    "retrieval": ("source", "target", "source_id", "target_id"),  # ids: BUCC (empty for Tatoeba)
    "masked_lm": ("text",),  # plain text (the mlm task)
}
_OPTIONAL = {"text_b", "question", "context", "id", "source_id", "target_id"}
# fields the tokenizer reads as text: anything else there (a JSON number, a list) is a data error
# here, not a TypeError deep inside tokenisation
_TEXT_FIELDS = {"text_a", "text_b", "question", "context", "source", "target"}


def find_local_file(directory: Path, task: Task, language: str, split: str) -> Path | None:
    if task.locate is not None:
        found = task.locate(directory, task, language, split)
        if found is not None:
            return Path(found)
    for lang in dict.fromkeys((language, task.code(language))):
        for ext in (*task.readers, *FILE_TYPES):
            path = directory / lang / f"{split}.{ext}"
            if path.exists():
                return path
    return None


def read_table(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL / TSV / CSV / Parquet file as dicts (compressed .gz JSONL too)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            rows = []
            with open(path, encoding="utf-8") as fh:
                for i, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except (json.JSONDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
                        raise DataError(f"{path}:{i}: not valid JSON; JSONL needs one JSON object per line") from None
                    if not isinstance(row, dict):
                        raise DataError(f"{path}:{i}: expected a JSON object, got {type(row).__name__}")
                    rows.append(row)
            return rows
        import pandas as pd

        if suffix in (".tsv", ".csv"):
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str,
                                keep_default_na=False, quoting=3 if suffix == ".tsv" else 0)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise DataError(f"{path}: unsupported file type; use one of {', '.join(FILE_TYPES)}")
    except DataError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read ({str(err).splitlines()[0]})") from None
    return [_plain(r) for r in frame.to_dict(orient="records")]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    # numpy arrays / scalars from Parquet -> Python lists / scalars
    out = {}
    for key, value in row.items():
        if hasattr(value, "tolist"):
            value = value.tolist()
        if isinstance(value, dict):
            value = _plain(value)
        out[key] = value
    return out


def _hub_rows(task: Task, split: str, language: str, revision: str | None) -> tuple[list[dict], str]:
    hub = task.hub
    if hub is None:
        if task.missing_data:  # e.g. licensed CCGbank, raw BUCC files
            raise DataError(task.missing_data)
        raise DataError(f"task {task.name!r} has no Hub source; give local files with "
                        f"tasks.{task.name}.data_dir=DIR (layout DIR/<language>/<split>.jsonl)")
    if split not in hub.splits:
        raise DataError(f"task {task.name!r} has no {split!r} split on the Hub "
                        f"(it has: {', '.join(hub.splits) or 'none'})")
    import datasets

    code = task.code(language)
    path = hub.path
    mirror = os.environ.get("STOPOVER_HUB_MIRROR")
    if mirror:
        path = str(Path(mirror) / hub.path)
        if not Path(path).is_dir():
            raise DataError(f"$STOPOVER_HUB_MIRROR={mirror} has no {hub.path}/; download it there "
                            "or unset the variable")
    name = hub.name.format(lang=code) if hub.name else None
    rev = revision or hub.revision
    rows: list[dict] = []
    for hub_split in hub.splits[split].format(lang=code).split("+"):
        try:
            ds = datasets.load_dataset(path, name, revision=None if mirror else rev, split=hub_split)
        except Exception as err:  # datasets raises many types; all mean "cannot load"
            raise DataError(f"cannot load {hub.path} ({name}, split {hub_split}, revision {rev}) for task "
                            f"{task.name!r}: {str(err).splitlines()[0] if str(err) else type(err).__name__}; "
                            "offline? give local files with tasks.<task>.data_dir") from None
        rows.extend(_plain(r) for r in ds)
        feature = ds.features.get(task.columns.get("label", "label")) if task.columns else None
        names = getattr(feature, "names", None)
        if names and not task.source_labels:
            # ClassLabel ints in the Hub data: map them through the dataset's own names
            for r in rows:
                key = task.columns.get("label", "label")
                if isinstance(r.get(key), int) and r[key] >= 0:
                    r[key] = names[r[key]]
    if hub.language_column:
        rows = [r for r in rows if r.get(hub.language_column) == code]
    if hub.filter is not None:
        rows = [r for r in rows if hub.filter(r, code)]
    where = f"{hub.path}:{name or ''}@{rev}"
    return rows, where


def _map_label(value: Any, task: Task, where: str) -> int | None:
    """Source label -> index into task.labels, by name. None: no gold label (dropped)."""
    if value is None or value == -1 or value == "-1" or value == "":
        return None
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        names = task.source_labels or task.labels
        if not 0 <= value < len(names):
            raise DataError(f"{where}: label {value} is outside the label set of {task.name!r} "
                            f"({len(names)} labels: {', '.join(names)})")
        name = names[value]
    else:
        name = task.label_map.get(str(value), str(value))
    if name not in task.labels:
        raise DataError(f"{where}: label {value!r} is not in the label set of {task.name!r} "
                        f"({', '.join(task.labels)})")
    return task.labels.index(name)


def canonicalize(rows: list[dict[str, Any]], task: Task, where: str) -> list[dict[str, Any]]:
    """Rename columns to the canonical names of the task's format and check them."""
    keys = _CANONICAL_KEYS[task.format]
    out = []
    for i, row in enumerate(rows):
        if task.convert is not None:
            row = task.convert(row)
        ex: dict[str, Any] = {}
        for key in keys:
            source = task.columns.get(key, key)
            if source in row:
                ex[key] = row[source]
            elif key in row:
                ex[key] = row[key]
            elif key in _OPTIONAL and key not in task.columns:  # declared columns are required
                ex[key] = None if key == "text_b" else (str(i) if key == "id" else "")
            else:
                raise DataError(f"{where}: row {i + 1} has no column {source!r} for {key!r} (columns: "
                                f"{', '.join(map(str, row))}); rename it or map it in the task's columns")
        for key in _TEXT_FIELDS.intersection(ex):
            value = ex[key]
            if not isinstance(value, str) and not (value is None and key == "text_b"):
                source = task.columns.get(key, key)
                raise DataError(f"{where}: row {i + 1}: {source!r} is {value!r} ({type(value).__name__}), "
                                "not text; write it as a string")
        if "label" in ex:
            label = _map_label(ex["label"], task, f"{where}: row {i + 1}")
            if label is None:
                continue
            ex["label"] = label
        out.append(ex)
    return out


def load_examples(task: Task | str, split: str = "train", language: str = "eng", *,
                  data_dir: str | Path | None = None, revision: str | None = None,
                  limit: int | None = None) -> list[dict[str, Any]]:
    """Canonical examples of (task, split, language); local files win over the Hub."""
    if isinstance(task, str):
        task = get_task(task)
    language = task.check_language(language, data_dir) if split != "train" else language
    union = task.union_of
    if union:
        if split == "train":
            rows = []
            for part in union:
                rows.extend(load_examples(part, "train", language, data_dir=None, revision=None))
        else:
            rows = load_examples(task.eval_from, split, language)
        return rows[:limit] if limit else rows
    rows, where = None, ""
    if data_dir is not None:
        directory = Path(data_dir)
        path = find_local_file(directory, task, language, split)
        if path is not None:
            reader = next((fn for ext, fn in task.readers.items() if path.name.endswith("." + ext)), None)
            rows = reader(path, task, language) if reader else read_table(path)
            where = str(path)
        elif task.hub is None:
            raise DataError(f"{directory}: no {split} file for task {task.name!r}, language {language!r}; "
                            f"expected {directory}/{language}/{split}.<{'|'.join(FILE_TYPES)}>")
    if rows is None:
        rows, where = _hub_rows(task, split, language, revision)
    examples = canonicalize(rows, task, where)
    if not examples:
        raise DataError(f"{where}: the {split} split of {task.name!r} ({language}) is empty")
    return examples[:limit] if limit else examples
