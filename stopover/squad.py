"""Read and write SQuAD-format JSON: the nested `data -> paragraphs -> qas` layout.

SQuAD v1.1 / v2.0, XQuAD, MLQA and TyDi QA-GoldP all ship in this format
(plain or gzipped). `read_squad` flattens a file into one row per question in
the shape the Hugging Face Hub versions use (`id`, `title`, `context`,
`question`, `answers: {text: [...], answer_start: [...]}`), so local files and
Hub data reach `stopover.data.canonicalize` identically. SQuAD 2.0's
unanswerable questions (`is_impossible: true`) get empty answer lists; their
`plausible_answers` are not answers and are dropped.

Every answer is checked against its context: `answer_start` must be the
character offset of the answer text. A mismatch silently trains a QA head on
the wrong span, so it is an error naming the file, the question and the fix.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import IO, Any, Iterable, cast

from stopover.errors import DataError

_SHAPE = 'SQuAD format is {"data": [{"title": ..., "paragraphs": [{"context": ..., "qas": [...]}]}]}'


def _open_text(path: Path, mode: str = "rt") -> IO[str]:
    # .gz by name: the real XQuAD/MLQA releases are often kept compressed. Reading, utf-8-sig
    # drops a byte-order mark (json.load would call it invalid JSON); writing, none is written.
    encoding = "utf-8-sig" if "r" in mode else "utf-8"
    if path.name.endswith(".gz"):
        return cast(IO[str], gzip.open(path, mode, encoding=encoding))  # a text mode: a text stream
    return open(path, mode, encoding=encoding)


def load_squad_json(path: str | Path) -> dict[str, Any]:
    """The parsed JSON document of a SQuAD-format file (.json or .json.gz)."""
    path = Path(path)
    try:
        with _open_text(path) as fh:
            document = json.load(fh)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON (line {err.lineno}: {err.msg}); {_SHAPE}") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError, RecursionError) as err:
        # zlib.error / EOFError: a corrupt or truncated .gz; ValueError: an int too long to convert
        raise DataError(f"{path}: cannot read ({str(err).splitlines()[0] if str(err) else type(err).__name__}); "
                        f"{_SHAPE}, as UTF-8 JSON (or .json.gz)") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataError(f"{path}: no top-level \"data\" list; {_SHAPE}")
    return document


def _answer_error(where: str, qid: str, text: str, start: Any, context: str) -> DataError:
    found = context.find(text) if isinstance(text, str) and text else -1
    if found >= 0:
        fix = f"set answer_start to {found}, where the text occurs in the context"
    else:
        fix = "the answer text does not occur in the context at all; correct the text or the context"
    at = context[start:start + len(text)] if isinstance(start, int) and isinstance(text, str) else ""
    return DataError(f"{where}: question {qid!r}: answer {text!r} is not at answer_start {start!r} "
                     f"(the context has {at!r} there); {fix}")


def as_offset(value: Any) -> Any:
    """An answer_start written as "12" or 12.0 -> 12; anything else unchanged.

    Converters often write offsets so: the same offset, taken as such (`check_answers` still
    checks that the text is there); other values are left for it to reject.
    """
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return value


def check_answers(where: str, qid: str, context: str, texts: list[str], starts: list[int]) -> None:
    """Every answer text must sit at its answer_start in the context (DataError otherwise)."""
    if len(texts) != len(starts):
        raise DataError(f"{where}: question {qid!r} has {len(texts)} answer texts but {len(starts)} "
                        "answer_start values; give one start per answer")
    for text, start in zip(texts, starts):
        if not isinstance(text, str):
            raise DataError(f"{where}: question {qid!r}: answer text {text!r} is not a string; write the answer "
                            "as it occurs in the context")
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            found = context.find(text) if text else -1
            fix = f" ({found}, where the text occurs in the context)" if found >= 0 else ""
            raise DataError(f"{where}: question {qid!r}: answer_start {start!r} is not a character offset; "
                            f"write it as a whole number >= 0{fix}")
        if context[start:start + len(text)] != text:
            raise _answer_error(where, qid, text, start, context)


def squad_rows(document: dict[str, Any], where: str, *, id_prefix: str | None = None) -> list[dict[str, Any]]:
    """Flatten a parsed SQuAD document into one Hub-shaped row per question.

    `id_prefix` keeps only questions whose id starts with it (TyDi QA mixes all
    languages in one file; its ids look like `arabic-<number>-<n>`).
    """
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for a, article in enumerate(document.get("data", [])):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f"{where}: data[{a}] has no \"paragraphs\" list; {_SHAPE}")
        title = article.get("title", "")
        for p, paragraph in enumerate(paragraphs):
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            if not isinstance(context, str) or not isinstance(qas, list):
                raise DataError(f"{where}: data[{a}].paragraphs[{p}] needs a \"context\" string and a "
                                f"\"qas\" list; {_SHAPE}")
            for q, qa in enumerate(qas):
                if not isinstance(qa, dict) or "id" not in qa or "question" not in qa:
                    raise DataError(f"{where}: data[{a}].paragraphs[{p}].qas[{q}] needs \"id\" and "
                                    "\"question\"; each question is {\"id\", \"question\", \"answers\": "
                                    "[{\"text\", \"answer_start\"}]}")
                qid = str(qa["id"])
                if id_prefix is not None and not qid.startswith(id_prefix):
                    continue
                if qid in seen:
                    raise DataError(f"{where}: question id {qid!r} occurs twice; question ids must be "
                                    "unique (predictions are keyed by id)")
                seen.add(qid)
                answers = [] if qa.get("is_impossible") else (qa.get("answers") or [])
                if not isinstance(answers, list) or not all(isinstance(x, dict) for x in answers):
                    raise DataError(f"{where}: question {qid!r}: \"answers\" must be a list of "
                                    "{\"text\", \"answer_start\"} objects")
                texts = [x.get("text") for x in answers]
                starts = [as_offset(x.get("answer_start")) for x in answers]
                check_answers(where, qid, context, texts, starts)
                rows.append({"id": qid, "title": title, "context": context, "question": qa["question"],
                             "answers": {"text": texts, "answer_start": starts}})
    return rows


def read_squad(path: str | Path, task: Any = None, language: str | None = None, *,
               id_prefix: str | None = None) -> list[dict[str, Any]]:
    """Rows of a SQuAD-format file; the signature of a `Task.readers` entry.

    `task` and `language` are accepted for that interface; a task that needs
    per-language filtering (TyDi QA) wraps this with its own `id_prefix`.
    """
    path = Path(path)
    return squad_rows(load_squad_json(path), str(path), id_prefix=id_prefix)


def write_squad(rows: Iterable[dict[str, Any]], path: str | Path, *, version: str = "1.1") -> Path:
    """Write Hub-shaped or canonical QA rows as SQuAD JSON (gzipped when the name ends in .gz).

    Consecutive questions on the same context share a paragraph; each row's
    answers are checked as on reading, so a written file always reads back.
    """
    path = Path(path)
    articles: list[dict[str, Any]] = []
    for row in rows:
        answers = row.get("answers") or {"text": [], "answer_start": []}
        check_answers(str(path), str(row["id"]), row["context"], list(answers["text"]),
                      list(answers["answer_start"]))
        title = row.get("title", "")
        if not articles or articles[-1]["title"] != title:
            articles.append({"title": title, "paragraphs": []})
        paragraphs = articles[-1]["paragraphs"]
        if not paragraphs or paragraphs[-1]["context"] != row["context"]:
            paragraphs.append({"context": row["context"], "qas": []})
        qa: dict[str, Any] = {"id": str(row["id"]), "question": row["question"],
                              "answers": [{"text": t, "answer_start": int(s)}
                                          for t, s in zip(answers["text"], answers["answer_start"])]}
        if version.startswith("2"):
            qa["is_impossible"] = not qa["answers"]
        paragraphs[-1]["qas"].append(qa)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open_text(path, "wt") as fh:
        json.dump({"version": version, "data": articles}, fh, ensure_ascii=False)
    return path
