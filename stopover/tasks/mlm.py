"""`mlm`: continued masked-LM training on target-language text, during intermediate training.

The first alternative Phang et al. (2020) test to plain English intermediate
training: keep training XLM-R's masked-LM objective on text in the target
languages while it learns the English intermediate tasks, so it forgets less
of them. Here `mlm` is an intermediate task of format `masked_lm`
(stopover/formats/masked_lm.py) that a mixed multi-task stage trains alongside
the others (only the encoder moves on). Its text is the user's, one sentence
per line, UTF-8, plain or gzipped:

    <data_dir>/mlm/<language>/train.txt      (or tasks.mlm.data_dir: DIR/<language>/train.txt)

`<language>` is the ISO 639-3 code (`deu`, `jpn`, ...). Every language found
there is read, all concatenated, unless `tasks.mlm.train_languages` lists the
ones to use. There is no dev split: checkpoints are still chosen on the
English dev sets of the intermediate tasks. See docs/reference-study.md for a
config that adds `mlm` to intermediate sets.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

from stopover.errors import DataError
from stopover.tasks import Task, register
from stopover.tasks.nli import XNLI_LANGS
from stopover.tasks.qa import MLQA_LANGS, TYDIQA_LANGS, XQUAD_LANGS
from stopover.tasks.retrieval import BUCC_LANGS, TATOEBA_LANGS
from stopover.tasks.tagging import PANX_LANGS, UDPOS_LANGS

TEXT_FILES = ("train.txt", "train.txt.gz")
MLM_MISSING = ("task 'mlm' reads plain text, one sentence per line: put it in <data_dir>/mlm/<language>/train.txt "
               "(ISO 639-3 language directories) and set data_dir, or tasks.mlm.data_dir to the directory "
               "holding the language directories")

# every XTREME language: text in any of them may be used
_LANGUAGES = sorted({*XNLI_LANGS, *UDPOS_LANGS, *PANX_LANGS, *XQUAD_LANGS, *MLQA_LANGS, *TYDIQA_LANGS,
                     *TATOEBA_LANGS, *BUCC_LANGS} - {"eng"})


def read_text(path: Path, task: Task, language: str) -> list[dict[str, Any]]:
    """One row {"text": line} per non-empty line of a UTF-8 text file (plain or .gz)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            return [{"text": line.strip()} for line in fh if line.strip()]
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:  # zlib.error: a corrupt .gz stream
        raise DataError(f"{path}: cannot read ({err}); expected UTF-8 text, one sentence per line") from None


def text_languages(directory: Path | None) -> tuple[str, ...]:
    """The language directories under `directory` that hold a train.txt[.gz], sorted."""
    if directory is None or not Path(directory).is_dir():
        return ()
    return tuple(sorted(sub.name for sub in Path(directory).iterdir()
                        if sub.is_dir() and any((sub / name).is_file() for name in TEXT_FILES)))


register(Task(
    name="mlm", format="masked_lm", metric="accuracy",
    description="masked-LM on the user's target-language text (continued MLM during intermediate training)",
    languages=("eng", *_LANGUAGES), splits=("train",),
    readers={"txt": read_text, "txt.gz": read_text},
    local_only=True, mixed_only=True, train_languages_from=text_languages, missing_data=MLM_MISSING,
    licence="the user's text", citation="Phang et al. 2020 (continued multilingual MLM)",
))
