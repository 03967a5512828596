"""Multiple-choice intermediate tasks: HellaSwag, CommonsenseQA, CosmosQA.

Each source row is converted to the canonical multiple-choice shape
(`context`, `question`, `endings`, `label`); labels are names ("0".."3",
"A".."E") mapped to choice indices by stopover.data, so a row without a gold
label (the hidden test sets: label "" or -1) is dropped. The official test
labels of all three are hidden, so their validation split serves as both dev
and test here.

Local files, beside the flat tables: each release's own names (HellaSwag's
`hellaswag_{train,val}.jsonl[.gz]`, CommonsenseQA's `{train,dev}_rand_split.jsonl[.gz]`
in its original nested shape, CosmosQA's `{train,valid}.csv[.gz]`); the
validation file plays dev and test, as on the Hub.

Hub sources: datasets >= 4 no longer runs loading scripts, so each is pinned
to a commit that holds only Parquet files: Rowan/hellaswag's history held
hellaswag.py until 049e808; allenai/cosmos_qa's main still holds only its
script, and the pin is the Hub's own Parquet export; tau/commonsense_qa is
Parquet throughout (see each declaration).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stopover.errors import DataError
from stopover.tasks import HubSource, Task, register
from stopover.tasks._local import find, read_jsonl


def release_locator(names: dict[str, str]):
    """Locate a release's files by split (`names`: split -> file name without .gz), in the data
    directory or its `eng/` folder.
    """

    def locate(directory: Path, task: Task, language: str, split: str) -> Path | None:
        name = names.get(split)
        if name is None:
            return None
        return find(Path(directory), name) or find(Path(directory) / language, name)

    locate.__doc__ = "The release's files: " + ", ".join(f"{s}: {n}[.gz]" for s, n in names.items())
    return locate


_JSONL_READERS = {"jsonl": read_jsonl, "jsonl.gz": read_jsonl}


def _hellaswag(row: dict[str, Any]) -> dict[str, Any]:
    # `ctx` is ctx_a + " " + ctx_b: the sentence the ending must continue.
    return {"context": row["ctx"], "question": "", "endings": list(row["endings"]), "label": row["label"]}


register(Task(
    name="hellaswag", format="multiple_choice", metric="accuracy",
    description="HellaSwag: pick the plausible continuation of an event description (4 endings)",
    labels=("0", "1", "2", "3"), convert=_hellaswag,
    # 9c75cc0 (the earlier pin) still holds hellaswag.py beside the Parquet files, so datasets >= 4
    # refuses it ("Dataset scripts are no longer supported"); the commits from 049e808 on hold only
    # data/{train,validation,test}-00000-of-00001.parquet. 218ec52 is main's head as served in
    # 2026-09 (validation: 10,042 rows), loaded without a script by other projects on datasets 4.5.
    hub=HubSource("Rowan/hellaswag", None, revision="218ec52e09a7e7462a5400043bb9a69a41d06b76",
                  splits={"train": "train", "dev": "validation", "test": "validation"}),
    published_train_size=39_905,  # Zellers et al. 2019
    readers=_JSONL_READERS,
    locate=release_locator({"train": "hellaswag_train.jsonl", "dev": "hellaswag_val.jsonl",
                            "test": "hellaswag_val.jsonl"}),
    licence="MIT", citation="Zellers et al. 2019",
))

CSQA_KEYS = ("A", "B", "C", "D", "E")


def _commonsenseqa(row: dict[str, Any]) -> dict[str, Any]:
    choices = row["choices"]
    keys, texts = list(choices["label"]), list(choices["text"])
    if sorted(keys) != list(CSQA_KEYS[:len(keys)]) or len(texts) != len(keys):
        raise DataError(f"commonsenseqa: question {row.get('id', '?')!r} has choice labels {keys}; "
                        f"expected {', '.join(CSQA_KEYS)} with one text each")
    order = sorted(range(len(keys)), key=keys.__getitem__)  # endings in A..E order: index = label
    return {"context": "", "question": row["question"], "endings": [texts[i] for i in order],
            "label": row["answerKey"]}


def _csqa_release_row(row: dict[str, Any]) -> dict[str, Any]:
    """The original release's row ({"answerKey", "id", "question": {"stem", "choices": [{"label",
    "text"}]}}) in the Hub's shape ({"question": stem, "choices": {"label": [...], "text": [...]}}).
    """
    question = row["question"]
    choices = question.get("choices")
    if not isinstance(question.get("stem"), str) or not isinstance(choices, list) \
            or not all(isinstance(c, dict) and "label" in c and "text" in c for c in choices):
        raise DataError(f"commonsenseqa: question {row.get('id', '?')!r} is not in the release's shape "
                        '{"question": {"stem": ..., "choices": [{"label": ..., "text": ...}]}}')
    return {"id": row.get("id", ""), "question": question["stem"],
            "question_concept": question.get("question_concept", ""),
            "choices": {"label": [c["label"] for c in choices], "text": [c["text"] for c in choices]},
            "answerKey": row.get("answerKey", "")}


def read_csqa_jsonl(path: Path, task: Task, language: str) -> list[dict[str, Any]]:
    """CommonsenseQA's release jsonl (plain or .gz) as Hub-shaped rows; Hub-shaped rows pass as is."""
    return [_csqa_release_row(row) if isinstance(row.get("question"), dict) else row
            for row in read_jsonl(path)]


register(Task(
    name="commonsenseqa", format="multiple_choice", metric="accuracy",
    description="CommonsenseQA: 5-way questions on ConceptNet relations needing commonsense",
    labels=CSQA_KEYS, convert=_commonsenseqa,
    hub=HubSource("tau/commonsense_qa", None, revision="94630fe30dad47192a8546eb75f094926d47e155",
                  splits={"train": "train", "dev": "validation", "test": "validation"}),
    published_train_size=9_741,  # Talmor et al. 2019 (random split)
    readers={"jsonl": read_csqa_jsonl, "jsonl.gz": read_csqa_jsonl},
    locate=release_locator({"train": "train_rand_split.jsonl", "dev": "dev_rand_split.jsonl",
                            "test": "dev_rand_split.jsonl"}),
    licence="MIT", citation="Talmor et al. 2019",
))


def _cosmosqa(row: dict[str, Any]) -> dict[str, Any]:
    try:
        endings = [row[f"answer{i}"] for i in range(4)]
    except KeyError as err:
        raise DataError(f"cosmosqa: row {row.get('id', '?')!r} has no column {err.args[0]!r}; "
                        "CosmosQA rows need context, question, answer0..answer3, label") from None
    return {"context": row["context"], "question": row["question"], "endings": endings, "label": row["label"]}


def _read_csv_gz(path: Path, task: Task, language: str) -> list[dict[str, Any]]:
    """Rows of a gzipped CSV (CosmosQA's release ships train.csv / valid.csv; often kept compressed)."""
    from stopover.data import read_table  # the one CSV reader: field counts checked, damaged .gz a DataError

    return read_table(path, option=None)


def _locate_cosmosqa(directory: Path, task: Task, language: str, split: str) -> Path | None:
    """wilburOne/cosmosqa's layout: train.csv and valid.csv (the dev set; also our test split)."""
    name = "train" if split == "train" else "valid"
    for where in (Path(directory), Path(directory) / language):
        for candidate in (where / f"{name}.csv.gz", where / f"{name}.csv"):
            if candidate.is_file():
                return candidate
    return None


register(Task(
    name="cosmosqa", format="multiple_choice", metric="accuracy",
    description="Cosmos QA: commonsense reading comprehension over personal narratives (4 answers)",
    labels=("0", "1", "2", "3"), convert=_cosmosqa,
    # main holds only cosmos_qa.py; ed50fe8 is the Hub's own Parquet export of it
    # (refs/convert/parquet: default/{train,validation,test}/0000.parquet).
    hub=HubSource("allenai/cosmos_qa", None, revision="ed50fe83db62b355759053b1cd5eef344ee371e0",
                  splits={"train": "train", "dev": "validation", "test": "validation"}),
    readers={"csv.gz": _read_csv_gz}, locate=_locate_cosmosqa,
    published_train_size=25_262,  # Huang et al. 2019
    licence="CC BY 4.0", citation="Huang et al. 2019",
))
