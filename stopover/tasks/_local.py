"""Shared helpers for the task families' local-file readers and locators.

Not a task family (the leading underscore keeps it out of the registry's
discovery): gzip-aware text and JSONL reading, "first file that exists" over
plain and `.gz` names, XTREME's `<split>-<xx>.tsv[.gz]` file names, and the
headerless sentence-pair TSVs of XNLI and PAWS-X. Every reader has the
signature of a `Task.readers` entry, `reader(path, task, language) -> rows`,
and returns rows in the *source* columns the task declares (`Task.columns`),
so local files reach `stopover.data.canonicalize` exactly as the Hub's rows do.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from stopover.errors import DataError

Reader = Callable[[Path, Any, str], list[dict[str, Any]]]


def open_text(path: Path):
    """A text handle on `path`, decompressing when its name ends in `.gz` (UTF-8)."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_text(path: Path, what: str) -> str:
    """The whole text of a plain or gzipped UTF-8 file; a DataError naming `what` it should be."""
    try:
        with open_text(path) as fh:
            return fh.read()
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as err:  # zlib: a damaged .gz
        raise DataError(f"{path}: cannot read ({str(err).splitlines()[0] if str(err) else type(err).__name__}); "
                        f"expected {what}") from None


def first_existing(*paths: Path) -> Path | None:
    """The first of `paths` that is a file, else None."""
    return next((p for p in paths if p.is_file()), None)


def plain_or_gz(directory: Path, name: str) -> tuple[Path, Path]:
    """`<directory>/<name>` and `<directory>/<name>.gz`, in that order."""
    return directory / name, directory / f"{name}.gz"


def find(directory: Path, name: str) -> Path | None:
    """`<directory>/<name>` or its `.gz` copy, whichever exists first."""
    return first_existing(*plain_or_gz(Path(directory), name))


def read_jsonl(path: Path, task: Any = None, language: str | None = None) -> list[dict[str, Any]]:
    """Rows of a JSONL file, plain or gzipped (`.jsonl.gz`); one JSON object a line."""
    rows = []
    for i, line in enumerate(read_text(path, "UTF-8 JSON lines").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise DataError(f"{path}:{i}: not valid JSON; JSONL needs one JSON object per line") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{i}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


# ------------------------------------------------------------------ XTREME's file names

# `dev-de.tsv`, `train-en.tsv.gz`, `test-zh.tsv`: the layout XTREME's download scripts write.
XTREME_NAME = re.compile(r"^(train|dev|test)-([A-Za-z_-]+)\.tsv(\.gz)?$")


def locate_xtreme_tsv(directory: Path, task: Any, language: str, split: str) -> Path | None:
    """XTREME's layout: `<dir>/<split>-<xx>.tsv[.gz]` (`xx`: the dataset's code, e.g. `de`)."""
    name = f"{split}-{task.code(language)}.tsv"
    found = find(Path(directory), name)
    if found is None:
        undeclared_without_files(directory, task, language, split, f"{name}[.gz]")
    return found


def xtreme_tsv_split(path: Path) -> str | None:
    """The split named by an XTREME-layout file name, or None when the name is not one."""
    match = XTREME_NAME.match(path.name)
    return match.group(1) if match else None


def _tsv_lines(path: Path, quoted: bool) -> Iterator[tuple[int, list[str]]]:
    text = read_text(path, "UTF-8 tab-separated lines")
    if quoted:
        # PAWS-X: a field holding a quote is written CSV-style, in quotes with inner quotes doubled
        reader = csv.reader(io.StringIO(text), delimiter="\t", quotechar='"', doublequote=True, strict=True)
        try:
            for fields in reader:
                yield reader.line_num, fields
        except csv.Error as err:
            raise DataError(f"{path}:{reader.line_num}: bad quoting ({err}); fields holding a quote "
                            'are written "..." with inner quotes doubled') from None
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        yield lineno, line.split("\t")


def pair_tsv_reader(*, quoted: bool) -> Reader:
    """A reader for sentence-pair TSVs (XNLI, PAWS-X) in XTREME's layout: no header, columns
    `text_a TAB text_b TAB label`, rows emitted under the task's declared source columns.

    `quoted`: fields may be CSV-quoted (PAWS-X's files double inner quotes); XNLI's are not, and
    a quote there is an ordinary character. A file not named like XTREME's (`<dir>/<lang>/dev.tsv`,
    the flat layout) has a header row naming its columns: stopover.data reads it (its `.gz` copy
    is read here, the same way).
    """

    def read(path: Path, task: Any, language: str) -> list[dict[str, Any]]:
        path = Path(path)
        if xtreme_tsv_split(path) is None and not path.name.endswith(".gz"):
            # a flat table, read as every task's are (imported here: stopover.data imports the tasks)
            from stopover.data import SKIP_BAD_ROWS, read_table

            return read_table(path, skip_bad_rows=SKIP_BAD_ROWS.get(), option=f"tasks.{task.name}.skip_bad_rows")
        columns = [task.columns.get(key, key) for key in ("text_a", "text_b", "label")]
        lines = [(n, fields) for n, fields in _tsv_lines(path, quoted) if fields != [""] and fields]
        if xtreme_tsv_split(path) is None:  # a gzipped flat table: header row first
            return _headed_rows(path, lines)
        rows = []
        for lineno, fields in lines:
            if len(fields) == 2:  # XTREME's unlabelled test files
                fields = [*fields, ""]
            if len(fields) != 3:
                raise DataError(f"{path}:{lineno}: expected 3 tab-separated fields (first sentence, second "
                                f"sentence, label), found {len(fields)}")
            rows.append(dict(zip(columns, fields)))
        if rows and all(not r[columns[2]] for r in rows):
            raise DataError(f"{path}: no labels (XTREME's test files are unlabelled); map a labelled file "
                            f"to this split with tasks.{task.name}.files, e.g. the dev file")
        return rows

    return read


def _headed_rows(path: Path, lines: list[tuple[int, list[str]]]) -> list[dict[str, Any]]:
    if not lines:
        return []
    header = lines[0][1]
    rows = []
    for lineno, fields in lines[1:]:
        if len(fields) != len(header):
            raise DataError(f"{path}:{lineno}: {len(fields)} fields but the header has {len(header)} "
                            f"({', '.join(header)})")
        rows.append(dict(zip(header, fields)))
    return rows


# ------------------------------------------------------------------ languages beyond the declared ones


def undeclared_without_files(directory: Path, task: Any, language: str, split: str, expected: str) -> None:
    """Raise when `language` is outside the task's declared languages and has no local file.

    Such a language (`Task.open_languages`: any language of the table) has no Hub config to fall
    back to, so a missing file is the user's to fix, and saying so beats a Hub error for a config
    that does not exist. A flat-layout file (`<dir>/<language>/<split>.*`) still counts.
    """
    if language in task.languages:
        return
    directory = Path(directory)
    for name in dict.fromkeys((language, task.code(language))):
        folder = directory / name
        if folder.is_dir() and any(p.name.startswith(f"{split}.") for p in folder.iterdir()):
            return
    raise DataError(f"{directory}: no {split} file for language {language!r} of task {task.name!r} "
                    f"(expected {expected}); {language!r} is not one of the task's published languages "
                    f"({', '.join(task.languages)}), so its data must be local")


# ------------------------------------------------------------------ what `stopover tasks` can show


def local_layout(task: Any) -> str:
    """One line naming the local files a task reads beyond the flat tables: its locator's layout
    (the first line of its docstring) and the file endings its readers take.
    """
    parts = []
    doc = (getattr(task.locate, "__doc__", None) or "").strip()
    if doc:
        parts.append(" ".join(doc.split("\n\n")[0].split()).rstrip("."))
    if task.readers:
        endings = [f".{e}" for e in sorted(task.readers)]
        shown = endings if len(endings) <= 8 else [*endings[:8], f"... ({len(endings)} in all)"]
        parts.append("readers: " + ", ".join(shown))
    return "; ".join(parts) or "flat tables only (<dir>/<language>/<split>.<jsonl|tsv|csv|parquet>)"
