"""Natural language inference tasks: MNLI, SNLI, ANLI, ANLI+ (intermediate) and XNLI (target).

All share the label set (entailment, neutral, contradiction); labels are
mapped *by name* from each source, so a source that orders them differently
cannot silently swap classes. Rows with label -1 (no gold label: GLUE test
sets, SNLI's unannotated pairs) are dropped by the loader.

Local files beside the flat tables (`<dir>/<language>/<split>.jsonl`):
- anli: the official release, `<dir>/R1/<split>.jsonl[.gz]` (and R2, R3): the
  file of the first round brings the same split of the task's other rounds
  beside it; labels `e`/`n`/`c` are mapped to the label names.
- xnli: XTREME's layout, `<dir>/<split>-<xx>.tsv[.gz]` (premise TAB hypothesis
  TAB label, no header).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from stopover.errors import DataError
from stopover.tasks import HubSource, Task, register
from stopover.tasks._local import find, locate_xtreme_tsv, pair_tsv_reader, read_jsonl

NLI_LABELS = ("entailment", "neutral", "contradiction")
_PAIR = {"text_a": "premise", "text_b": "hypothesis", "label": "label"}

# ------------------------------------------------------------------ ANLI's release files

ANLI_ROUNDS = ("R1", "R2", "R3")
ANLI_LETTERS = {"e": "entailment", "n": "neutral", "c": "contradiction"}


def _anli_files(path: Path, rounds: tuple[str, ...]) -> list[Path]:
    """The files of every round for the split `path` holds (`<root>/R<n>/<split>.jsonl[.gz]`)."""
    path = Path(path)
    if path.parent.name not in rounds:
        return [path]  # not the release layout (a flat or explicitly named file): just that file
    root, stem = path.parent.parent, path.name.removesuffix(".gz")
    return [find(root / r, stem) or root / r / path.name for r in rounds]


def _anli_row(row: dict[str, Any], where: str) -> dict[str, Any]:
    # the release's columns (context, label e/n/c) -> the Hub's (premise, label name)
    if "premise" not in row:
        if "context" not in row or "hypothesis" not in row:
            raise DataError(f"{where}: an ANLI row needs \"context\" (or \"premise\") and \"hypothesis\" "
                            f"(found: {', '.join(row)})")
        row = {**row, "premise": row["context"]}
    label = row.get("label")
    return {**row, "label": ANLI_LETTERS.get(label, label)} if isinstance(label, str) else row


def anli_reader(rounds: tuple[str, ...] = ANLI_ROUNDS) -> Callable[..., list[dict[str, Any]]]:
    """A reader for ANLI's jsonl (uid, context, hypothesis, label e/n/c) over `rounds`."""

    def read(path: Path, task: Task, language: str) -> list[dict[str, Any]]:
        rows = []
        for file in _anli_files(path, rounds):
            if not file.is_file():
                raise DataError(f"{file} is missing: task {task.name!r} reads rounds {', '.join(rounds)}, "
                                f"the same split of each ({Path(path).name} beside {Path(path).parent})")
            rows.extend(_anli_row(row, f"{file}:{i}") for i, row in enumerate(read_jsonl(file), start=1))
        return rows

    return read


def anli_locator(rounds: tuple[str, ...] = ANLI_ROUNDS) -> Callable[..., Path | None]:
    def locate(directory: Path, task: Task, language: str, split: str) -> Path | None:
        """ANLI's release: `<dir>/R1/<split>.jsonl[.gz]` (and R2, R3)."""
        return find(Path(directory) / rounds[0], f"{split}.jsonl")

    return locate


def anli_companions(rounds: tuple[str, ...] = ANLI_ROUNDS) -> Callable[..., list[Path]]:
    def companions(path: Path, task: Task, language: str) -> list[Path]:
        return [f for f in _anli_files(path, rounds) if f != Path(path)]

    return companions


def anli_sources(rounds: tuple[str, ...] = ANLI_ROUNDS) -> dict[str, Any]:
    """`readers`, `locate` and `companions` of a task over ANLI `rounds` (e.g. ("R2",) for one round)."""
    reader = anli_reader(rounds)
    return {"readers": {"jsonl": reader, "jsonl.gz": reader}, "locate": anli_locator(rounds),
            "companions": anli_companions(rounds)}


_ANLI = anli_sources()

register(Task(
    name="mnli", format="classification", metric="accuracy",
    description="MultiNLI: 3-way entailment over ten genres",
    labels=NLI_LABELS, source_labels=NLI_LABELS, columns=_PAIR,
    hub=HubSource("nyu-mll/glue", "mnli", splits={"train": "train", "dev": "validation_matched",
                                                   "test": "validation_mismatched"}),
    published_train_size=392_702,  # GLUE's MNLI train
    licence="OANC / CC BY-SA 3.0 and others (see GLUE)", citation="Williams et al. 2018",
))

register(Task(
    name="snli", format="classification", metric="accuracy",
    description="SNLI: 3-way entailment over image captions (part of ANLI+)",
    labels=NLI_LABELS, source_labels=NLI_LABELS, columns=_PAIR,
    hub=HubSource("stanfordnlp/snli", None, splits={"train": "train", "dev": "validation", "test": "test"}),
    published_train_size=549_367,  # Bowman et al. 2015: 550,152 pairs less the 785 without a gold label
    licence="CC BY-SA 4.0", citation="Bowman et al. 2015",
))

register(Task(
    name="anli", format="classification", metric="accuracy",
    description="Adversarial NLI, rounds 1-3 concatenated",
    labels=NLI_LABELS, source_labels=NLI_LABELS, columns=_PAIR,
    hub=HubSource("facebook/anli", None, splits={"train": "train_r1+train_r2+train_r3",
                                                  "dev": "dev_r1+dev_r2+dev_r3",
                                                  "test": "test_r1+test_r2+test_r3"}),
    published_train_size=162_865,  # Nie et al. 2020: r1-r3 train, 16,946 + 45,460 + 100,459
    readers=_ANLI["readers"], locate=_ANLI["locate"], companions=_ANLI["companions"],
    licence="CC BY-NC 4.0", citation="Nie et al. 2020",
))

register(Task(
    name="anli_plus", format="classification", metric="accuracy",
    description="ANLI+ (Phang et al. 2020): ANLI r1-r3 + MNLI + SNLI training data, ANLI dev/test",
    labels=NLI_LABELS, source_labels=NLI_LABELS, columns=_PAIR,
    union_of=("anli", "mnli", "snli"), eval_from="anli",
    published_train_size=1_104_934,  # the sum of ANLI's, MNLI's and SNLI's (Phang et al. 2020)
    licence="see anli, mnli, snli", citation="Phang et al. 2020",
))

XNLI_LANGS = {
    "eng": "en", "ara": "ar", "bul": "bg", "deu": "de", "ell": "el", "spa": "es", "fra": "fr",
    "hin": "hi", "rus": "ru", "swa": "sw", "tha": "th", "tur": "tr", "urd": "ur", "vie": "vi", "zho": "zh",
}

register(Task(
    name="xnli", format="classification", metric="accuracy", role="target",
    description="XNLI: MNLI-style NLI test sets in 15 languages; trained on English MNLI",
    languages=tuple(XNLI_LANGS), lang_codes=XNLI_LANGS,
    labels=NLI_LABELS, source_labels=NLI_LABELS,
    columns={"text_a": "sentence1", "text_b": "sentence2", "label": "gold_label"},
    hub=HubSource("google/xtreme", "XNLI", splits={"dev": "validation", "test": "test"},
                  language_column="language"),
    train_task="mnli", splits=("dev", "test"),
    published_test_size=5_010,  # per language (Hu et al. 2020, Table 1)
    readers={"tsv": pair_tsv_reader(quoted=False), "tsv.gz": pair_tsv_reader(quoted=False)},
    locate=locate_xtreme_tsv, open_languages="iso1",
    licence="CC BY-NC 4.0", citation="Conneau et al. 2018",
))
