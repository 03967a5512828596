"""Multiple-choice intermediate tasks: HellaSwag, CommonsenseQA, CosmosQA.

Each source row is converted to the canonical multiple-choice shape
(`context`, `question`, `endings`, `label`); labels are names ("0".."3",
"A".."E") mapped to choice indices by stopover.data, so a row without a gold
label (the hidden test sets: label "" or -1) is dropped. The official test
labels of all three are hidden, so their validation split serves as both dev
and test here.

Hub sources: Rowan/hellaswag and allenai/cosmos_qa are loading-script
datasets on their main branches, which datasets >= 4 no longer runs; they are
pinned to Parquet commits of the same data (see each declaration).
tau/commonsense_qa is Parquet on main.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stopover.errors import DataError
from stopover.tasks import HubSource, Task, register


def _hellaswag(row: dict[str, Any]) -> dict[str, Any]:
    # `ctx` is ctx_a + " " + ctx_b: the sentence the ending must continue.
    return {"context": row["ctx"], "question": "", "endings": list(row["endings"]), "label": row["label"]}


register(Task(
    name="hellaswag", format="multiple_choice", metric="accuracy",
    description="HellaSwag: pick the plausible continuation of an event description (4 endings)",
    labels=("0", "1", "2", "3"), convert=_hellaswag,
    # main holds only hellaswag.py; 9c75cc0 (refs/pr/7, "Convert dataset to Parquet") holds the
    # same splits as data/{train,validation,test}-00000-of-00001.parquet.
    hub=HubSource("Rowan/hellaswag", None, revision="9c75cc00ec2e1f93893cbd25ba617ee30eb70d88",
                  splits={"train": "train", "dev": "validation", "test": "validation"}),
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


register(Task(
    name="commonsenseqa", format="multiple_choice", metric="accuracy",
    description="CommonsenseQA: 5-way questions on ConceptNet relations needing commonsense",
    labels=CSQA_KEYS, convert=_commonsenseqa,
    hub=HubSource("tau/commonsense_qa", None, revision="94630fe30dad47192a8546eb75f094926d47e155",
                  splits={"train": "train", "dev": "validation", "test": "validation"}),
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
    licence="CC BY 4.0", citation="Huang et al. 2019",
))
