"""SQuAD-format JSON: the real XQuAD files, answer_start validation, v2 no-answers, writing back."""

from __future__ import annotations

import gzip
import json

import pytest

from stopover.errors import DataError
from stopover.squad import read_squad, squad_rows, write_squad

XQUAD_CODES = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")


@pytest.mark.parametrize("code", XQUAD_CODES)
def test_real_xquad_files(shared_data, code):
    rows = read_squad(shared_data / "xquad" / f"xquad.{code}.json.gz")
    assert len(rows) == 1190
    assert len({r["id"] for r in rows}) == 1190
    assert len({r["context"] for r in rows}) == 240  # XQuAD: 240 paragraphs
    for row in rows:
        texts, starts = row["answers"]["text"], row["answers"]["answer_start"]
        assert texts and len(texts) == len(starts)
        for text, start in zip(texts, starts):
            assert row["context"][start:start + len(text)] == text
        assert row["question"].strip()


def test_xquad_languages_are_parallel_by_id(shared_data):
    english = read_squad(shared_data / "xquad" / "xquad.en.json.gz")
    german = read_squad(shared_data / "xquad" / "xquad.de.json.gz")
    assert [r["id"] for r in english] == [r["id"] for r in german]
    assert english[0]["id"] == german[0]["id"] == "56beb4343aeaaa14008c925b"
    assert english[0]["answers"] == {"text": ["308"], "answer_start": [34]}
    assert german[0]["answers"] == {"text": ["308"], "answer_start": [38]}
    assert german[0]["question"] == "Wie viele Punkte gab die Verteidigung der Panthers ab?"


def squad_doc(answers: list[dict], **qa_extra) -> dict:
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": [{
        "context": "Anna owns a red car.", "qas": [{"id": "q1", "question": "What does Anna own?",
                                                   "answers": answers, **qa_extra}]}]}]}


def write_json(path, document) -> None:
    path.write_text(json.dumps(document), encoding="utf-8")


def test_wrong_answer_start_names_file_question_and_fix(tmp_path):
    path = tmp_path / "train.json"
    write_json(path, squad_doc([{"text": "a red car", "answer_start": 12}]))
    with pytest.raises(DataError) as err:
        read_squad(path)
    message = str(err.value)
    assert str(path) in message and "'q1'" in message and "set answer_start to 10" in message
    assert "\n" not in message
    write_json(path, squad_doc([{"text": "a blue car", "answer_start": 10}]))
    with pytest.raises(DataError, match="does not occur in the context"):
        read_squad(path)


def test_v2_unanswerable_questions_have_no_answers(tmp_path):
    path = tmp_path / "dev.json"
    write_json(path, squad_doc([], is_impossible=True,
                               plausible_answers=[{"text": "a red car", "answer_start": 10}]))
    [row] = read_squad(path)
    assert row["answers"] == {"text": [], "answer_start": []}
    assert row == {"id": "q1", "title": "T", "context": "Anna owns a red car.", "question": "What does Anna own?",
                   "answers": {"text": [], "answer_start": []}}


def test_malformed_files(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        read_squad(path)
    write_json(path, [{"context": "c"}])
    with pytest.raises(DataError, match='no top-level "data" list'):
        read_squad(path)
    write_json(path, {"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": [{"question": "q"}]}]}]})
    with pytest.raises(DataError, match=r'qas\[0\] needs "id"'):
        read_squad(path)
    doc = squad_doc([{"text": "Anna", "answer_start": 0}])
    doc["data"][0]["paragraphs"][0]["qas"] *= 2
    write_json(path, doc)
    with pytest.raises(DataError, match="occurs twice"):
        read_squad(path)


def test_id_prefix_keeps_one_language():
    doc = {"data": [{"title": "", "paragraphs": [{"context": "Helsinki on kaupunki.", "qas": [
        {"id": "finnish-1-0", "question": "Mikä?", "answers": [{"text": "Helsinki", "answer_start": 0}]},
        {"id": "english-2-0", "question": "What?", "answers": [{"text": "kaupunki", "answer_start": 12}]}]}]}]}
    assert [r["id"] for r in squad_rows(doc, "mem", id_prefix="finnish-")] == ["finnish-1-0"]
    assert len(squad_rows(doc, "mem")) == 2


def test_write_then_read_round_trips_gzipped(tmp_path, shared_data):
    rows = read_squad(shared_data / "xquad" / "xquad.zh.json.gz")[:30]
    path = write_squad(rows, tmp_path / "zh.json.gz")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        document = json.load(fh)
    assert document["version"] == "1.1" and len(document["data"]) == 1
    assert sum(len(p["qas"]) for p in document["data"][0]["paragraphs"]) == 30
    assert read_squad(path) == rows


def test_write_v2_marks_impossible_and_checks_answers(tmp_path):
    rows = [{"id": "a", "question": "q", "context": "xyz", "answers": {"text": [], "answer_start": []}}]
    path = write_squad(rows, tmp_path / "v2.json", version="2.0")
    assert json.loads(path.read_text())["data"][0]["paragraphs"][0]["qas"][0]["is_impossible"] is True
    assert read_squad(path)[0]["answers"]["text"] == []
    bad = [{"id": "b", "question": "q", "context": "xyz", "answers": {"text": ["y"], "answer_start": [0]}}]
    with pytest.raises(DataError, match="set answer_start to 1"):
        write_squad(bad, tmp_path / "bad.json")
