"""The task registry: declarations, did-you-mean, every registered task well formed."""

from __future__ import annotations

import pytest

from stopover.errors import LanguageError, TaskError
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
