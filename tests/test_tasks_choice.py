"""Multiple-choice task declarations and their data: CosmosQA's CSV release, Hub-shaped Parquet."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from stopover.data import load_examples
from stopover.errors import DataError
from stopover.tasks import get_task
from tests.test_data import hub_repo

FIRST_COSMOS = {
    "question": "Why is this person asking about divorce ?",
    "endings": ["If he gets married in the church he wo nt have to get a divorce .",
                "He wants to get married to a different person .",
                "He wants to know if he does nt like this girl can he divorce her ?",
                "None of the above choices ."],
    "label": 1,
}


def test_declarations():
    for name in ("hellaswag", "commonsenseqa", "cosmosqa"):
        task = get_task(name)
        assert (task.format, task.metric, task.role) == ("multiple_choice", "accuracy", "intermediate")
        assert task.hub.splits == {"train": "train", "dev": "validation", "test": "validation"}
        assert task.hub.revision != "main"  # pinned: main of hellaswag/cosmos_qa is a loading script
    assert get_task("commonsenseqa").labels == ("A", "B", "C", "D", "E")


def test_cosmosqa_release_csv_from_shared_data(shared_data):
    examples = load_examples("cosmosqa", "dev", data_dir=shared_data / "cosmosqa")
    assert len(examples) == 2985
    first = examples[0]
    assert {k: first[k] for k in ("question", "endings", "label")} == FIRST_COSMOS
    assert first["context"].startswith("Do i need to go for a legal divorce ?")
    assert all(len(e["endings"]) == 4 and 0 <= e["label"] < 4 for e in examples)
    counts = pd.Series([e["label"] for e in examples]).value_counts()
    assert set(counts.index) == {0, 1, 2, 3}  # every answer position is used
    # the test split of an intermediate task reads the same validation file
    assert load_examples("cosmosqa", "test", data_dir=shared_data / "cosmosqa", limit=3) == examples[:3]


def test_cosmosqa_plain_csv_train_and_bad_rows(tmp_path, shared_data):
    with gzip.open(shared_data / "cosmosqa" / "valid.csv.gz", "rt", encoding="utf-8") as fh:
        frame = pd.read_csv(fh, dtype=str, keep_default_na=False)
    frame.head(5).to_csv(tmp_path / "train.csv", index=False)
    examples = load_examples("cosmosqa", "train", data_dir=tmp_path)
    assert len(examples) == 5 and {k: examples[0][k] for k in FIRST_COSMOS} == FIRST_COSMOS
    frame.head(2).drop(columns=["answer3"]).to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(DataError, match="no column 'answer3'"):
        load_examples("cosmosqa", "train", data_dir=tmp_path)


HELLASWAG = [
    {"ind": 4, "activity_label": "Removing ice from car", "ctx_a": "Then, the man writes over the snow.",
     "ctx_b": "then", "ctx": "Then, the man writes over the snow. then",
     "endings": [", the man adds wax.", ", the man puts on a christmas coat.", ", the man continues removing snow.",
                 ", the man stops."], "source_id": "x", "split": "train", "split_type": "indomain", "label": "2"},
]


def test_hellaswag_from_hub_shaped_parquet(tmp_path, monkeypatch):
    unlabeled = [{**HELLASWAG[0], "label": ""}]  # the hidden test labels
    hub_repo(tmp_path, "Rowan/hellaswag", {"default": {"train": HELLASWAG, "validation": HELLASWAG * 2,
                                                       "test": unlabeled}})
    monkeypatch.setenv("STOPOVER_HUB_MIRROR", str(tmp_path))
    [example] = load_examples("hellaswag", "train")
    assert example == {"context": "Then, the man writes over the snow. then", "question": "",
                       "endings": HELLASWAG[0]["endings"], "label": 2}
    assert len(load_examples("hellaswag", "test")) == 2  # test -> validation (labels hidden)


CSQA = {"id": "075e483d21c29a511267ef62bedc0461", "question": "The sanctions against the school were a "
        "punishing blow, and they seemed to what the efforts the school had made to change?",
        "question_concept": "punishing",
        # choices stored out of order: endings must follow A..E so the answer key indexes them
        "choices": {"label": ["B", "A", "C", "D", "E"],
                    "text": ["enforce", "ignore", "authoritarian", "yell at", "avoid"]},
        "answerKey": "A"}


def test_commonsenseqa_from_hub_shaped_parquet(tmp_path, monkeypatch):
    hub_repo(tmp_path, "tau/commonsense_qa", {"default": {
        "train": [CSQA], "validation": [CSQA], "test": [{**CSQA, "answerKey": ""}]}})
    monkeypatch.setenv("STOPOVER_HUB_MIRROR", str(tmp_path))
    [example] = load_examples("commonsenseqa", "train")
    assert example == {"context": "", "question": CSQA["question"],
                       "endings": ["ignore", "enforce", "authoritarian", "yell at", "avoid"], "label": 0}
    assert len(load_examples("commonsenseqa", "test")) == 1  # the unlabeled test rows are not used
    bad = {**CSQA, "choices": {"label": ["A", "B", "X", "D", "E"], "text": CSQA["choices"]["text"]}}
    hub_repo(tmp_path, "tau/commonsense_qa", {"default": {"train": [bad]}})
    with pytest.raises(DataError, match="expected A, B, C, D, E"):
        load_examples("commonsenseqa", "train")


def test_cosmosqa_from_the_hubs_parquet_export_layout(tmp_path, monkeypatch):
    # refs/convert/parquet: <config>/<split>/0000.parquet, no README configs
    row = {"id": "r1", "context": "I missed the bus.", "question": "Why was I late?",
           "answer0": "I missed the bus.", "answer1": "I was early.", "answer2": "No bus.", "answer3": "None",
           "label": 0}
    base = tmp_path / "allenai" / "cosmos_qa" / "default"
    for split, rows in (("train", [row]), ("validation", [row, {**row, "label": 3}]),
                        ("test", [{**row, "label": -1}])):
        (base / split).mkdir(parents=True)
        pd.DataFrame(rows).to_parquet(base / split / "0000.parquet")
    monkeypatch.setenv("STOPOVER_HUB_MIRROR", str(tmp_path))
    assert load_examples("cosmosqa", "train") == [{"context": "I missed the bus.", "question": "Why was I late?",
                                                  "endings": ["I missed the bus.", "I was early.", "No bus.",
                                                              "None"], "label": 0}]
    assert [e["label"] for e in load_examples("cosmosqa", "dev")] == [0, 3]


def test_commonsenseqa_release_jsonl_gz(tmp_path):
    import json

    row = {"answerKey": "B", "id": "q1", "question": {"question_concept": "door", "stem": "Where is a door?",
                                                      "choices": [{"label": "B", "text": "house"},
                                                                  {"label": "A", "text": "sky"},
                                                                  {"label": "C", "text": "sea"},
                                                                  {"label": "D", "text": "moon"},
                                                                  {"label": "E", "text": "sun"}]}}
    with gzip.open(tmp_path / "dev_rand_split.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
    expected = [{"context": "", "question": "Where is a door?", "endings": ["sky", "house", "sea", "moon", "sun"],
                 "label": 1}]
    assert load_examples("commonsenseqa", "dev", "eng", data_dir=tmp_path) == expected
    assert load_examples("commonsenseqa", "test", "eng", data_dir=tmp_path) == expected  # as on the Hub
    with gzip.open(tmp_path / "dev_rand_split.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({**row, "question": {"stem": "x"}}) + "\n")
    with pytest.raises(DataError, match="question 'q1' is not in the release's shape"):
        load_examples("commonsenseqa", "dev", "eng", data_dir=tmp_path)


def test_hellaswag_release_jsonl(tmp_path):
    import json

    row = {"ind": 0, "activity_label": "Roofing", "ctx": "A man is on a roof. he", "label": 2,
           "endings": ["flies.", "sings.", "removes shingles.", "sleeps."], "split": "val"}
    with gzip.open(tmp_path / "hellaswag_val.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n\n")
    assert load_examples("hellaswag", "dev", "eng", data_dir=tmp_path) == [
        {"context": "A man is on a roof. he", "question": "", "endings": row["endings"], "label": 2}]
    (tmp_path / "hellaswag_train.jsonl").write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"hellaswag_train.jsonl:1: expected a JSON object"):
        load_examples("hellaswag", "train", "eng", data_dir=tmp_path)
