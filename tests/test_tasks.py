"""The task registry: declarations, did-you-mean, every registered task well formed."""

from __future__ import annotations

import json

import pytest

from stopover.data import load_examples
from stopover.errors import DataError, LanguageError, TaskError
from stopover.formats import get_format
from stopover.metrics import METRICS
from stopover.tasks import FORMATS, all_tasks, get_task


def test_backbone_tasks_registered():
    names = {t.name for t in all_tasks()}
    assert {"mnli", "qqp", "anli", "anli_plus", "xnli", "pawsx"} <= names


def test_did_you_mean():
    with pytest.raises(TaskError, match="did you mean xnli"):
        get_task("xnly")


@pytest.mark.parametrize("task", all_tasks(), ids=lambda t: t.name)
def test_every_task_is_well_formed(task):
    assert task.format in FORMATS
    assert task.metric in METRICS
    assert task.languages and len(set(task.languages)) == len(task.languages)
    assert task.hub is not None or task.union_of or task.local_only
    if task.train_task:
        assert get_task(task.train_task).format == task.format
    if task.format == "classification":
        assert task.labels
    get_format(task.format)  # the format module exists


def test_xnli_languages_and_codes():
    xnli = get_task("xnli")
    assert len(xnli.languages) == 15 and xnli.code("deu") == "de"
    assert xnli.check_language("deu") == "deu"
    with pytest.raises(LanguageError, match="has no language"):
        xnli.check_language("jpn")


def _hub_repo(root, repo: str, configs: dict) -> None:
    """{config: {split: rows}} -> a Parquet-only Hub repository under root/repo (the mirror layout)."""
    import pandas as pd

    base = root / repo
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        for split, rows in splits.items():
            (base / name).mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_parquet(base / name / f"{split}-00000-of-00001.parquet")
            lines += [f"  - split: {split}", f"    path: {name}/{split}-00000-of-00001.parquet"]
    (base / "README.md").write_text("\n".join(lines + ["---"]) + "\n")


COPA_ROW = {"premise": "The man broke his toe.", "choice1": "He dropped a hammer on his foot.",
            "choice2": "He got a hole in his sock.", "question": "cause", "label": 0, "idx": 0}


def test_xcopa_trains_on_copa_and_loads_from_hub_shaped_parquet(tmp_path, monkeypatch):
    xcopa, copa = get_task("xcopa"), get_task("copa")
    assert xcopa.train_task == "copa" and xcopa.role == "target" and xcopa.splits == ("test",)
    assert len(xcopa.languages) == 11 and xcopa.check_language("sw") == "swa" and xcopa.code("que") == "qu"
    _hub_repo(tmp_path, "aps/super_glue", {"copa": {
        "train": [COPA_ROW, {**COPA_ROW, "question": "effect", "label": 1}],
        "validation": [COPA_ROW], "test": [{**COPA_ROW, "label": -1}]}})
    _hub_repo(tmp_path, "cambridgeltl/xcopa", {"qu": {"test": [{**COPA_ROW, "changed": False}]}})
    monkeypatch.setenv("STOPOVER_HUB_MIRROR", str(tmp_path))
    train = load_examples(copa, "train")
    assert [ex["label"] for ex in train] == [0, 1]
    assert train[1]["question"] == "What happened as a result?" and train[0]["context"] == COPA_ROW["premise"]
    assert load_examples(copa, "test")[0]["endings"] == [COPA_ROW["choice1"], COPA_ROW["choice2"]]
    [example] = load_examples(xcopa, "test", "que")  # config "{lang}" -> "qu"
    assert example["label"] == 0 and example["question"] == "What was the cause?"


def test_copa_rows_with_an_unknown_relation_are_an_error(tmp_path):
    (tmp_path / "eng").mkdir()
    (tmp_path / "eng" / "train.jsonl").write_text(json.dumps({**COPA_ROW, "question": "reason"}) + "\n")
    with pytest.raises(DataError, match="question is 'reason'; expected 'cause' or 'effect'"):
        load_examples("copa", "train", data_dir=tmp_path)


def test_tasks_command_shows_version_and_local_readers(capsys):
    import argparse
    import csv
    import io

    from stopover.commands import tasks as command

    assert command.run(argparse.Namespace(names=["udpos", "xcopa", "mnli"], format="csv")) == 0
    rows = {row["task"]: row for row in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert {row["version"] for row in rows.values()} == {"1"}
    assert rows["udpos"]["local"] == "conllu, conllu.gz, release layout"
    assert rows["xcopa"]["local"] == "release layout" and "trains on copa" in rows["xcopa"]["source"]
    assert rows["mnli"]["local"] == ""  # flat tables only
def test_local_layouts_name_each_tasks_files():
    from stopover.tasks._local import local_layout

    layouts = {t.name: local_layout(t) for t in all_tasks()}
    assert "<split>-<xx>.tsv[.gz]" in layouts["xnli"] and "<split>-<xx>.tsv[.gz]" in layouts["panx"]
    assert "R1/<split>.jsonl[.gz]" in layouts["anli"] and "dev_rand_split.jsonl[.gz]" in layouts["commonsenseqa"]
    assert "_tydiqa_" in layouts["tydiqa"] and "staggedGold" in layouts["ccg"] and "dev-v1.1" in layouts["squad"]
    assert "tatoeba.<xxx>-eng.<xxx>" in layouts["tatoeba"] and "in all)" in layouts["tatoeba"]
    assert layouts["mnli"].startswith("flat tables only")


def test_open_languages_need_local_files(tmp_path):
    xnli = get_task("xnli")
    with pytest.raises(LanguageError, match=r"has no language 'jpn'.*need local files \(tasks.xnli.data_dir\)"):
        xnli.check_language("jpn")
    (tmp_path / "jpn").mkdir()
    (tmp_path / "jpn" / "test.jsonl").write_text("{}\n", encoding="utf-8")  # the flat layout counts too
    assert xnli.check_language("jpn", tmp_path) == "jpn"
    with pytest.raises(LanguageError, match="unknown language code 'xyz'"):
        xnli.check_language("xyz", tmp_path)
    with pytest.raises(LanguageError, match="has no language 'jpn'; it has: eng"):  # a closed task
        get_task("mnli").check_language("jpn", tmp_path)
