"""Read CoNLL-U files (Universal Dependencies) into sentences of word forms and UPOS tags.

This module owns the file format only: which lines are words, how sentences
are delimited, and what counts as malformed. What a task does with the tags
(checking them against a tag set, mapping them to indices) belongs to the task.

Decisions, stated once:
- A sentence is a block of non-empty lines; blank lines separate sentences;
  `#` lines are comments (`# sent_id = ...` is kept as the sentence's id).
- Multi-word token lines (ID `1-2`, e.g. Spanish "del" = "de" + "el") are
  skipped and the *syntactic words* they span are kept, because the words
  carry the UPOS tags (the range line has `_`). This differs from XTREME's
  own preprocessing, which replaces the words by the fused surface form and
  keeps the tag of the span's head (ud-conversion-tools
  `--replace_subtokens_with_fused_forms`); the google/xtreme Hub copy is
  built differently again. Scores on local CoNLL-U files and on the Hub copy
  are therefore close, not identical, for languages with contractions
  (de, es, fr, it, pt, he, ...).
- Empty nodes (ID `1.1`, enhanced-UD ellipsis) are skipped: they have no
  surface form.
- Every word line must have the 10 tab-separated CoNLL-U columns; anything
  else is a DataError naming the file and line.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from stopover.errors import DataError

COLUMNS = 10  # ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC


@dataclass(frozen=True)
class Sentence:
    """One CoNLL-U sentence: its syntactic words, their UPOS tags and where each word line is."""

    forms: list[str]
    upos: list[str]
    lines: list[int] = field(default_factory=list)  # 1-based line number of each word
    sent_id: str | None = None


def _open(path: Path):
    # .gz by suffix: UD releases ship plain files, the shared samples are gzipped. utf-8-sig: a
    # byte-order mark would otherwise turn the first `# sent_id` comment into a malformed word line.
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def read_conllu(path: str | Path) -> Iterator[Sentence]:
    """Yield the sentences of a CoNLL-U file (plain or .gz), in file order.

    Multi-word token ranges and empty nodes are skipped (see the module
    docstring); a sentence with no words (comments only) is not yielded.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CoNLL-U file {path} does not exist; give a .conllu or .conllu.gz file")
    forms: list[str] = []
    upos: list[str] = []
    lines: list[int] = []
    sent_id: str | None = None
    try:
        with _open(path) as fh:
            for lineno, raw in enumerate(fh, start=1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    if forms:
                        yield Sentence(forms, upos, lines, sent_id)
                    forms, upos, lines, sent_id = [], [], [], None
                    continue
                if line.startswith("#"):
                    key, _, value = line[1:].partition("=")
                    if key.strip() == "sent_id" and not forms:
                        sent_id = value.strip()
                    continue
                cols = line.split("\t")
                if len(cols) != COLUMNS:
                    raise DataError(f"{path}:{lineno}: expected {COLUMNS} tab-separated CoNLL-U columns, "
                                    f"found {len(cols)}; is this a CoNLL-U file?")
                word_id = cols[0]
                if "-" in word_id or "." in word_id:
                    continue  # multi-word token range or empty node
                if not word_id.isdigit():
                    raise DataError(f"{path}:{lineno}: word ID {word_id!r} is not a number, a range "
                                    "(1-2) or an empty node (1.1)")
                forms.append(cols[1])
                upos.append(cols[3])
                lines.append(lineno)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:  # zlib.error: a corrupt .gz stream
        raise DataError(f"{path}: cannot read ({err}); is it a UTF-8 CoNLL-U file?") from None
    if forms:
        yield Sentence(forms, upos, lines, sent_id)


def read_sentences(path: str | Path) -> list[Sentence]:
    """All sentences of a CoNLL-U file as a list."""
    return list(read_conllu(path))
