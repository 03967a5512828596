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

import csv
import gzip
import json
import os
import warnings
import zlib
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any, Iterator, Mapping, cast

from stopover.errors import DataError
from stopover.squad import as_offset
from stopover.tasks import Task, get_task

FILE_TYPES = ("jsonl", "tsv", "csv", "parquet")
COMPRESSED_TYPES = ("jsonl.gz", "tsv.gz", "csv.gz")  # read_table reads these too
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
_TEXT_FIELDS = {"text_a", "text_b", "question", "context", "source", "target", "text"}


def find_local_file(directory: Path, task: Task, language: str, split: str) -> Path | None:
    if task.locate is not None:
        found = task.locate(directory, task, language, split)
        if found is not None:
            return Path(found)
    for lang in dict.fromkeys((language, task.code(language))):
        for ext in (*task.readers, *FILE_TYPES, *COMPRESSED_TYPES):
            path = directory / lang / f"{split}.{ext}"
            if path.exists():
                return path
    return None


def _open_text(path: Path, compressed: bool) -> IO[str]:
    # utf-8-sig: a byte-order mark (Excel and Notepad write one) is not part of the first column name
    # or the first JSON line; newline="": the csv module sees quoted line breaks as they are
    if compressed:
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_jsonl(path: Path, compressed: bool) -> list[dict[str, Any]]:
    rows = []
    with _open_text(path, compressed) as fh:
        for i, line in enumerate(fh, start=1):
            line = line.lstrip("\ufeff")  # a BOM mid-file: files joined with `cat`, each with its own mark
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):  # JSONDecodeError, an int too long to convert, deep nesting
                raise DataError(f"{path}:{i}: not valid JSON; JSONL needs one JSON object per line") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{i}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def _delimited_lines(fh: IO[str], tsv: bool, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of each non-blank record."""
    if tsv:  # no quoting in TSV (as XTREME's files are written): a quote is a character like any other
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if line:
                yield lineno, line.split("\t")
        return
    reader = csv.reader(fh)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataError(f"{path}:{start}: not valid CSV ({err}); check the quoting") from None
        if fields:
            yield start, fields


def _columns(header: list[str], most: int = 8) -> str:
    # column names as they can be shown on one line (a quoted CSV name may hold a line break)
    shown = [c if c.isprintable() else repr(c) for c in header[:most]]
    return ", ".join(shown) + (f", ... ({len(header)} in all)" if len(header) > most else "")


def _read_delimited(path: Path, compressed: bool, tsv: bool, skip_bad_rows: bool,
                    option: str | None) -> list[dict[str, Any]]:
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # long contexts (QA) exceed the 128 KiB default
    rows: list[dict[str, Any]] = []
    bad: list[int] = []
    with _open_text(path, compressed) as fh:
        records = _delimited_lines(fh, tsv, path)
        first = next(records, None)
        if first is None:
            return rows
        header = first[1]
        dupes = sorted({c for c in header if header.count(c) > 1})
        if dupes:
            raise DataError(f"{path}:{first[0]}: column(s) {', '.join(map(repr, dupes))} appear more than once "
                            "in the header row; give every column its own name")
        for lineno, fields in records:
            if len(fields) != len(header):
                if not skip_bad_rows:
                    sep = "tab" if tsv else "comma"
                    skip = f" or set {option}: true to skip such rows" if option else ""
                    raise DataError(f"{path}:{lineno}: {len(fields)} field(s) where the header has {len(header)} "
                                    f"({_columns(header)}); fix the row (a stray {sep} or a missing field?){skip}")
                bad.append(lineno)
                continue
            rows.append(dict(zip(header, fields)))
    if bad:
        warnings.warn(f"{path}: skipped {len(bad)} row(s) with the wrong number of fields (lines "
                      f"{', '.join(map(str, bad[:5]))}{', ...' if len(bad) > 5 else ''}; {option or 'skip_bad_rows'} "
                      "is on)", stacklevel=3)
    return rows


# `tasks.<name>.skip_bad_rows` of the load in progress, for task readers that read flat tables
# through `read_table` (their signature is (path, task, language) and carries no options).
SKIP_BAD_ROWS: ContextVar[bool] = ContextVar("skip_bad_rows", default=False)


def read_table(path: Path, *, skip_bad_rows: bool = False,
               option: str | None = "tasks.<task>.skip_bad_rows") -> list[dict[str, Any]]:
    """Rows of a JSONL / TSV / CSV / Parquet file as dicts (JSONL, TSV and CSV may be gzipped).

    TSV and CSV: the first row names the columns; every value is a string. A row whose number
    of fields differs from the header's is an error naming file:line, or, with `skip_bad_rows`
    (the config key `option`; None: a reader that offers no such key), skipped with one warning
    giving the count. A leading byte-order mark is ignored.
    """
    path = Path(path)
    name = path.name.lower()
    compressed = name.endswith(".gz")
    suffix = Path(name[:-3]).suffix if compressed else path.suffix.lower()
    try:
        if suffix == ".jsonl":
            return _read_jsonl(path, compressed)
        if suffix in (".tsv", ".csv"):
            return _read_delimited(path, compressed, suffix == ".tsv", skip_bad_rows, option)
        if suffix == ".parquet" and not compressed:
            import pandas as pd

            frame = pd.read_parquet(path)
        else:
            raise DataError(f"{path}: unsupported file type; use one of {', '.join(FILE_TYPES)} "
                            "(jsonl, tsv and csv may be gzipped: .jsonl.gz)")
    except DataError:
        raise
    except (OSError, EOFError, zlib.error, ValueError, UnicodeDecodeError) as err:
        # OSError covers a bad gzip header; EOFError / zlib.error a truncated or corrupt stream
        what = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{path}: cannot read ({what}); is it a UTF-8 {suffix.lstrip('.') or 'data'} file?") \
            from None
    return [_plain(r) for r in frame.to_dict(orient="records")]


def _plain(row: Mapping[Any, Any]) -> dict[str, Any]:
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
        rows.extend(_plain(cast(Mapping, r)) for r in ds)  # rows are dicts (no format is set)
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


def _check_shape(ex: dict[str, Any], task: Task, where: str) -> None:
    """The list-valued canonical fields hold what the formats read (text lists, offsets), or DataError."""
    def column(key: str) -> str:
        return repr(task.columns.get(key, key))

    def strings(key: str) -> list[str]:
        value = ex[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DataError(f"{where}: {column(key)} is {str(value)[:60]!r}; it must be a list of strings")
        return value

    if "tokens" in ex:
        tokens, tags = strings("tokens"), strings("tags")
        if len(tokens) != len(tags):
            raise DataError(f"{where}: {len(tokens)} tokens but {len(tags)} tags; give one tag per token")
    if "endings" in ex:
        strings("endings")
    if "answers" in ex:
        answers = ex["answers"]
        if not isinstance(answers, dict) or not isinstance(answers.get("text"), list) \
                or not isinstance(answers.get("answer_start"), list):
            raise DataError(f"{where}: {column('answers')} is {str(answers)[:60]!r}; write it as "
                            '{"text": [answer, ...], "answer_start": [character offset, ...]}')
        starts = [as_offset(v) for v in answers["answer_start"]]
        texts = answers["text"]
        bad = next((v for v in starts if not isinstance(v, int) or isinstance(v, bool) or v < 0), None)
        if bad is not None or len(starts) != len(texts) or not all(isinstance(t, str) for t in texts):
            raise DataError(f"{where}: answers {str(answers)[:80]!r}: every answer needs a text (a string) and "
                            "an answer_start (its character offset in the context, a whole number >= 0)")
        ex["answers"] = {**answers, "answer_start": starts}


def canonicalize(rows: list[dict[str, Any]], task: Task, where: str) -> list[dict[str, Any]]:
    """Rename columns to the canonical names of the task's format and check them."""
    keys = _CANONICAL_KEYS[task.format]
    out = []
    for i, row in enumerate(rows):
        if task.convert is not None:
            try:
                row = task.convert(row)
            except DataError as err:
                raise DataError(f"{where}: row {i + 1}: {err}") from None
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
                # a task's row adapter met a row of the wrong shape: the data's fault, so say where
                raise DataError(f"{where}: row {i + 1} is not {task.name} data ({type(err).__name__}: {err}; "
                                f"columns: {_columns(list(map(str, row)))}); see `stopover tasks` and docs/tasks.md "
                                "for its columns") from None
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
                                f"{_columns(list(map(str, row)), 20)}); rename it or map it in the task's columns")
        for key in _TEXT_FIELDS.intersection(ex):
            value = ex[key]
            if not isinstance(value, str) and not (value is None and key == "text_b"):
                source = task.columns.get(key, key)
                raise DataError(f"{where}: row {i + 1}: {source!r} is {value!r} ({type(value).__name__}), "
                                "not text; write it as a string")
        _check_shape(ex, task, f"{where}: row {i + 1}")
        if "label" in ex:
            label = _map_label(ex["label"], task, f"{where}: row {i + 1}")
            if label is None:
                continue
            ex["label"] = label
        out.append(ex)
    return out


def load_examples(task: Task | str, split: str = "train", language: str = "eng", *,
                  data_dir: str | Path | None = None, revision: str | None = None,
                  limit: int | None = None, skip_bad_rows: bool = False) -> list[dict[str, Any]]:
    """Canonical examples of (task, split, language); local files win over the Hub.

    `skip_bad_rows` (the config's `tasks.<name>.skip_bad_rows`): TSV/CSV rows with the wrong
    number of fields are skipped with a warning instead of stopping the run (see `read_table`).
    """
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
            if task.eval_from is None:  # a union task must say where its dev/test come from
                raise DataError(f"task {task.name!r}: union_of without eval_from has no {split} split")
            rows = load_examples(task.eval_from, split, language)
        return rows[:limit] if limit else rows
    rows, where = None, ""
    if data_dir is not None:
        directory = Path(data_dir)
        path = find_local_file(directory, task, language, split)
        if path is not None:
            reader = next((fn for ext, fn in task.readers.items() if path.name.endswith("." + ext)), None)
            if reader is not None:
                # a task reader that falls back on a flat table reads the option from here
                token = SKIP_BAD_ROWS.set(skip_bad_rows)
                try:
                    rows = reader(path, task, language)
                finally:
                    SKIP_BAD_ROWS.reset(token)
            else:
                rows = read_table(path, skip_bad_rows=skip_bad_rows, option=f"tasks.{task.name}.skip_bad_rows")
            where = str(path)
        elif task.hub is None:
            raise DataError(f"{directory}: no {split} file for task {task.name!r}, language {language!r}; "
                            f"expected {directory}/{language}/{split}.<{'|'.join(FILE_TYPES)}>")
    if rows is None:
        try:
            rows, where = _hub_rows(task, split, language, revision)
        except DataError as err:
            if data_dir is None:
                raise
            # the local miss is the likelier culprit: name it first, then why the Hub did not help
            directory = Path(data_dir)
            missing = (f"{directory} does not exist" if not directory.is_dir() else
                       f"{directory} has no {language}/{split}.<{'|'.join(FILE_TYPES)}> for task {task.name!r}")
            raise DataError(f"{missing}, and the Hub copy could not be used either ({err})") from None
    examples = canonicalize(rows, task, where)
    if not examples:
        raise DataError(f"{where}: the {split} split of {task.name!r} ({language}) is empty")
    return examples[:limit] if limit else examples
