"""Causal commonsense: COPA (English, intermediate) and XCOPA (its translations, target).

COPA (Roemmele et al. 2011) asks which of two alternatives is the more
plausible cause or effect of a premise; XCOPA (Ponti et al. 2020) is its
validation and test sets translated and re-annotated in 11 languages. Both
convert to the canonical multiple-choice shape: `context` is the premise,
`question` renders the row's relation ("cause" / "effect", which XCOPA keeps
in English) as the same English question in every language, `endings` are
the two alternatives and the label names the right one (`choice1`,
`choice2`, the names of the Hub's ClassLabel).

XCOPA has no training data and no English: as in Ponti et al. 2020 and
XTREME-R, it is trained on English COPA (`train_task="copa"`), whose English
dev split also chooses the checkpoint, and tested in its 11 languages.

Sources (both Parquet at the pinned commits, so datasets >= 4 loads them):
- COPA: aps/super_glue, config `copa` (train 400, validation 100; the test
  labels are hidden, so the validation split is also the test split here).
  Local: SuperGLUE's `COPA/{train,val}.jsonl` in the task's directory, or
  `eng/<split>.jsonl` with the same columns.
- XCOPA: cambridgeltl/xcopa, one config per language (`et`, `ht`, ...), split
  `test` (500 per language). Local: the release's `<xx>/test.<xx>.jsonl`
  (or `data/<xx>/...`, as in github.com/cambridgeltl/xcopa), or
  `<language>/test.jsonl`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stopover.errors import DataError
from stopover.tasks import HubSource, Task, register

COPA_LABELS = ("choice1", "choice2")
# One English question per relation, for every language (the template, not the data, is English).
COPA_QUESTIONS = {"cause": "What was the cause?", "effect": "What happened as a result?"}


def copa_example(row: dict[str, Any]) -> dict[str, Any]:
    """A COPA/XCOPA row (premise, choice1, choice2, question, label) -> canonical multiple choice."""
    try:
        relation, premise = row["question"], row["premise"]
        endings = [row["choice1"], row["choice2"]]
    except KeyError as err:
        raise DataError(f"COPA row {row.get('idx', '?')!r} has no column {err.args[0]!r}; COPA/XCOPA rows "
                        "need premise, choice1, choice2, question, label") from None
    if relation not in COPA_QUESTIONS:
        raise DataError(f"COPA row {row.get('idx', '?')!r}: question is {relation!r}; expected 'cause' or "
                        "'effect'")
    return {"context": premise, "question": COPA_QUESTIONS[relation], "endings": endings,
            "label": row.get("label")}


def _locate_superglue(directory: Path, task: Task, language: str, split: str) -> Path | None:
    """SuperGLUE's COPA folder: train.jsonl and val.jsonl (the dev set; also the test split here)."""
    path = Path(directory) / f"{'train' if split == 'train' else 'val'}.jsonl"
    return path if path.is_file() else None


def _locate_xcopa(directory: Path, task: Task, language: str, split: str) -> Path | None:
    """The XCOPA release: `[data/]<xx>/test.<xx>.jsonl`."""
    code = task.code(language)
    for base in (Path(directory), Path(directory) / "data"):
        path = base / code / f"{split}.{code}.jsonl"
        if path.is_file():
            return path
    return None


register(Task(
    name="copa", format="multiple_choice", metric="accuracy",
    description="COPA: pick the more plausible cause or effect of a premise (2 alternatives)",
    labels=COPA_LABELS, label_map={"0": "choice1", "1": "choice2"}, convert=copa_example,
    # 3de24cf: a commit other evaluation code pins as Parquet (loaded without trust_remote_code);
    # super_glue's loading-script versions are the ones datasets >= 4 refuses
    hub=HubSource("aps/super_glue", "copa", revision="3de24cf8022e94f4ee4b9d55a6f539891524d646",
                  splits={"train": "train", "dev": "validation", "test": "validation"}),
    locate=_locate_superglue,
    published_train_size=400,  # SuperGLUE's COPA train (Wang et al. 2019, Table 1)
    licence="BSD 2-Clause", citation="Roemmele et al. 2011; Wang et al. 2019 (SuperGLUE)",
))

XCOPA_LANGS = {"est": "et", "hat": "ht", "ind": "id", "ita": "it", "que": "qu", "swa": "sw",
               "tam": "ta", "tha": "th", "tur": "tr", "vie": "vi", "zho": "zh"}

register(Task(
    name="xcopa", format="multiple_choice", metric="accuracy", role="target",
    description="XCOPA: COPA translated into 11 languages; trained on English COPA",
    languages=tuple(XCOPA_LANGS), lang_codes=XCOPA_LANGS,
    labels=COPA_LABELS, label_map={"0": "choice1", "1": "choice2"}, convert=copa_example,
    # 042f789: the README declares one Parquet config per language (`<xx>/test-00000-of-00001.parquet`;
    # also `translation-<xx>`, the translate-test data, not used here)
    hub=HubSource("cambridgeltl/xcopa", "{lang}", revision="042f78955ba48e6404616762fa6e05e839c3907a",
                  splits={"test": "test"}),
    locate=_locate_xcopa,
    train_task="copa", splits=("test",),
    published_test_size=500,  # per language (Ponti et al. 2020)
    licence="CC BY 4.0", citation="Ponti et al. 2020",
))
