"""Per-example predictions: records -> file -> score_records reproduces fmt.score for every format;
files are atomic and follow the umask; `stopover rescore` checks results.jsonl against them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from stopover.errors import DataError
from stopover.formats import get_format
from stopover.metrics import PRIMARY_METRIC
from stopover.predictions import (
    Predictions,
    predictions_path,
    read_predictions,
    rescore_run,
    rescore_stage,
    score_records,
    write_predictions,
)
from stopover.store import DONE_MARKER, ResultRow, append_results
from stopover.tasks import get_task

# ------------------------------------------------------------------ tiny synthetic evaluations


def qa(qid: str, context: str, answers: list[str]) -> dict:
    return {"id": qid, "question": f"question {qid}?", "context": context,
            "answers": {"text": answers, "answer_start": [context.index(a) for a in answers]}}


CTX = "Anna owns the red car since 2010 and the blue bike."


def evaluation(name: str) -> tuple[str, list[dict], list]:
    """(language, examples, predictions) of a small evaluation of task `name`, with mistakes."""
    if name == "xnli":
        examples = [{"text_a": f"a{i}", "text_b": f"b{i}", "label": i % 3} for i in range(7)]
        labels = [0, 1, 1, 0, 1, 2, 2]
        probs = [[0.9 if c == label else 0.05 for c in range(3)] for label in labels]
        return "deu", examples, Predictions(labels, probabilities=probs)
    if name == "pawsx":
        examples = [{"text_a": "x", "text_b": "y", "label": i % 2} for i in range(5)]
        return "fra", examples, [0, 0, 0, 1, 1]  # a plain list: no probabilities
    if name == "hellaswag":
        examples = [{"context": "c", "question": "", "endings": ["a", "b", "c", "d"], "label": i % 4}
                    for i in range(6)]
        return "eng", examples, Predictions([0, 1, 3, 3, 0, 2], probabilities=[[0.25] * 4] * 6)
    if name == "panx":
        examples = [{"tokens": ["Anna", "lives", "in", "Berlin"], "tags": ["B-PER", "O", "O", "B-LOC"]},
                    {"tokens": ["New", "York", "Times"], "tags": ["B-ORG", "I-ORG", "I-ORG"]},
                    {"tokens": [], "tags": []}]
        preds = [["B-PER", "O", "O", "B-ORG"], ["B-LOC", "I-LOC", "I-ORG"], []]
        return "deu", examples, preds
    if name == "udpos":
        examples = [{"tokens": ["the", "dog", "runs"], "tags": ["DET", "NOUN", "VERB"]},
                    {"tokens": ["big", "cats", "sleep", "now"], "tags": ["ADJ", "NOUN", "VERB", "ADV"]}]
        return "deu", examples, [["DET", "NOUN", "NOUN"], ["ADJ", "NOUN", "VERB", "SCONJ"]]
    if name == "ccg":
        examples = [{"tokens": ["a", "b"], "tags": ["NP", "S\\NP"]}, {"tokens": ["c"], "tags": ["N"]}]
        return "eng", examples, [["NP", "NP"], ["N"]]
    if name in ("xquad", "mlqa", "tydiqa"):
        examples = [qa("q1", CTX, ["Anna"]), qa("q2", CTX, ["the red car", "red car"]),
                    qa("q3", CTX, ["2010"]), qa("q4", CTX, ["the blue bike"])]
        preds = Predictions(["Anna", "red car", "since 2010", ""], scores=[3.0, 2.5, 1.0, None],
                            null_scores=[-1.0, 0.0, 0.5, float("inf")])
        return ("deu" if name != "tydiqa" else "fin"), examples, preds
    if name == "squad_v2":
        examples = [qa("q1", CTX, ["Anna"]), qa("q2", CTX, []), qa("q3", CTX, ["2010"])]
        return "eng", examples, ["Anna", "", ""]
    if name == "tatoeba":
        examples = [{"source": f"s{i}", "target": f"t{i}", "source_id": "", "target_id": ""} for i in range(5)]
        return "afr", examples, Predictions([0, 2, 2, 3, 1], similarity=[0.9, 0.8, 0.7, 0.95, 0.5], layer=7)
    if name == "bucc":
        rows = []
        for part, n in (("sample", 3), ("test", 4)):
            for i in range(n):
                rows.append({"source": f"{part} de {i}", "source_id": f"{part}/de-{i:06d}", "target": "",
                             "target_id": ""})
                rows.append({"source": "", "source_id": "", "target": f"{part} en {i}",
                             "target_id": f"{part}/en-{i:06d}"})
            rows += [{"source": "", "target": "", "source_id": f"{part}/de-{i:06d}",
                      "target_id": f"{part}/en-{i:06d}"} for i in range(n - 1)]
        preds = [None] * len(rows)
        scores: list = [None] * len(rows)
        mined = {"test/de-000000": "test/en-000000", "test/de-000001": "test/en-000002",
                 "test/de-000003": "test/en-000003"}
        for n, row in enumerate(rows):
            if row["source"] and row["source_id"] in mined:
                preds[n], scores[n] = mined[row["source_id"]], 1.2
        return "deu", rows, Predictions(preds, scores=scores, threshold=1.05, layer=4)
    if name == "mlm":
        return "eng", [{"text": "a b c"}, {"text": "d e"}], [([5, 6, 7], [5, 9, 7]), ([1], [1])]
    raise AssertionError(name)


TASKS = ["xnli", "pawsx", "hellaswag", "panx", "udpos", "ccg", "xquad", "mlqa", "tydiqa", "squad_v2",
         "tatoeba", "bucc", "mlm"]


@pytest.mark.parametrize("name", TASKS)
def test_records_rescore_to_the_formats_own_score(tmp_path, name):
    task = get_task(name)
    fmt = get_format(task.format)
    language, examples, predictions = evaluation(name)
    expected = fmt.score(task, examples, predictions, language)
    write_predictions(tmp_path, task.name, language, fmt.records(task, examples, predictions, language))
    records = read_predictions(tmp_path, task.name, language)  # through JSON, as rescore reads them
    assert len(records) == len(examples)
    assert all({"id", "gold", "prediction"} <= r.keys() or r.get("kind") in ("gold", "target") for r in records)
    assert len({r["id"] for r in records}) == len(records)
    assert score_records(task, records, language) == expected
    assert rescore_stage(tmp_path) == {(task.name, language): expected}
    assert 0 < expected[PRIMARY_METRIC[task.metric]] < 100  # the examples hold right and wrong answers


def test_records_carry_the_score_inputs():
    task = get_task("xnli")
    _, examples, preds = evaluation("xnli")
    first = get_format("classification").records(task, examples, preds, "deu")[1]
    assert first == {"id": "1", "gold": "neutral", "prediction": "neutral", "gold_label": 1, "label": 1,
                     "probabilities": [0.05, 0.9, 0.05]}
    qa_records = get_format("span_qa").records(get_task("xquad"), *evaluation("xquad")[1:], "deu")
    assert qa_records[3]["prediction"] == "" and qa_records[3]["score"] is None
    assert qa_records[3]["null_score"] is None  # an infinite score is no JSON number
    assert qa_records[1]["gold"] == ["the red car", "red car"] and qa_records[1]["score"] == 2.5
    _, rows, preds = evaluation("bucc")
    bucc = get_format("retrieval").records(get_task("bucc"), rows, preds, "deu")
    mined = [r for r in bucc if r.get("prediction")]
    assert len(mined) == 3 and all(r["threshold"] == 1.05 and r["score"] == 1.2 for r in mined)
    assert {r["kind"] for r in bucc} == {"source", "target", "gold"}
    tatoeba = get_format("retrieval").records(get_task("tatoeba"), *evaluation("tatoeba")[1:], "afr")
    assert tatoeba[1] == {"id": "1", "gold": 1, "prediction": 2, "similarity": 0.8}


def test_a_record_count_that_does_not_match_is_an_error():
    task = get_task("panx")
    _, examples, preds = evaluation("panx")
    with pytest.raises(DataError, match="2 predictions for 3 sentences"):
        get_format("tagging").records(task, examples, preds[:2], "deu")


# ------------------------------------------------------------------ files


def test_write_is_atomic_and_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = write_predictions(tmp_path, "xnli", "deu", [{"id": "0", "gold": 1, "prediction": 1}])
    finally:
        os.umask(old)
    assert path == tmp_path / "predictions" / "xnli" / "deu.jsonl" == predictions_path(tmp_path, "xnli", "deu")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    write_predictions(tmp_path, "xnli", "deu", [{"id": "0", "gold": 1, "prediction": 2}])  # replaced whole
    assert read_predictions(tmp_path, "xnli", "deu") == [{"id": "0", "gold": 1, "prediction": 2}]
    assert [p.name for p in path.parent.iterdir()] == ["deu.jsonl"]  # no temp file left behind


def test_bad_records_and_names_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="record 0 is not JSON"):
        write_predictions(tmp_path, "xnli", "deu", [{"id": "0", "prediction": float("nan")}])
    with pytest.raises(DataError, match="cannot name a file"):
        write_predictions(tmp_path, "../x", "deu", [])
    with pytest.raises(DataError, match="no predictions file"):
        read_predictions(tmp_path, "xnli", "fra")
    (tmp_path / "predictions" / "xnli").mkdir(parents=True, exist_ok=True)
    (tmp_path / "predictions" / "xnli" / "fra.jsonl").write_text('{"id": "0"}\nnot json\n', encoding="utf-8")
    with pytest.raises(DataError, match="fra.jsonl:2: not valid JSON"):
        read_predictions(tmp_path, "xnli", "fra")
    write_predictions(tmp_path, "xnli", "fra", [{"id": "0", "gold": "neutral", "prediction": "neutral"}])
    with pytest.raises(DataError, match="fra.jsonl: a record lacks or has a bad field 'label'"):
        rescore_stage(tmp_path)


# ------------------------------------------------------------------ a run directory, by hand


def build_run(root: Path, names: tuple[str, ...] = ("xnli", "panx", "xquad")) -> Path:
    """A run directory as the pipeline leaves it: eval stages with predictions, DONE, results rows."""
    run = root / "run"
    rows = []
    for n, name in enumerate(names):
        task = get_task(name)
        fmt = get_format(task.format)
        language, examples, preds = evaluation(name)
        stage = run / "stages" / f"{n:02d}{name}"
        write_predictions(stage, name, language, fmt.records(task, examples, preds, language))
        (stage / DONE_MARKER).write_text(stage.name + "\n", encoding="utf-8")
        for metric, value in fmt.score(task, examples, preds, language).items():
            for strategy, intermediate in (("none", "none"), ("single", "mnli")):
                rows.append(ResultRow(run="t", stage="eval", stage_hash=stage.name, task=name, language=language,
                                      split="test", metric=metric, value=value, seed=0, strategy=strategy,
                                      intermediate=intermediate, target=name, n=len(examples)))
    append_results(run, rows)
    return run


def test_rescore_run_agrees_with_results(tmp_path):
    run = build_run(tmp_path)
    rows, problems = rescore_run(run)
    assert problems == []
    assert {r["status"] for r in rows} == {"ok"}
    assert {(r["task"], r["metric"]) for r in rows} >= {("xnli", "accuracy"), ("panx", "f1"), ("xquad", "f1")}


def test_rescore_command_reports_disagreements_with_their_count(tmp_path, capsys):
    from stopover.cli import main

    run = build_run(tmp_path)
    assert main(["rescore", str(run)]) == 0
    assert "all agree" in capsys.readouterr().out
    lines = (run / "results.jsonl").read_text(encoding="utf-8").splitlines()
    tampered = []
    for line in lines:
        row = json.loads(line)
        if row["task"] == "panx" and row["metric"] == "f1" and row["strategy"] == "single":
            row["value"] += 0.5
        tampered.append(json.dumps(row))
    # a result row for a stage whose predictions are gone
    ghost = json.loads(lines[0]) | {"stage_hash": "ffffff", "task": "xnli"}
    (run / "results.jsonl").write_text("\n".join(tampered + [json.dumps(ghost)]) + "\n", encoding="utf-8")
    assert main(["rescore", str(run)]) == 2
    err = capsys.readouterr().err
    assert "2 disagreement(s)" in err and "panx/deu f1: differs" in err


def test_classification_predict_attaches_probabilities():
    torch = pytest.importorskip("torch")
    from types import SimpleNamespace

    class Scorer(torch.nn.Module):  # a stand-in sequence classifier: logits from the token ids
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, 3)

        def forward(self, input_ids, attention_mask):
            return SimpleNamespace(logits=(self.embed(input_ids) * attention_mask[..., None]).sum(1))

    torch.manual_seed(0)
    task = get_task("xnli")
    fmt = get_format("classification")
    examples = [{"text_a": "x", "text_b": None, "label": i % 3} for i in range(5)]
    features = [{"input_ids": [0, 4 + i, 2][: 2 + i % 2], "attention_mask": [1] * (2 + i % 2), "labels": i % 3,
                 "example_index": i} for i in range(5)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        preds = fmt.predict(Scorer(), features, examples, task, SimpleNamespace(pad_token_id=1), 2)
    assert isinstance(preds, list) and len(preds) == 5  # still the plain list callers index
    records = fmt.records(task, examples, preds, "deu")
    for record, label in zip(records, preds):
        probs = record["probabilities"]
        assert len(probs) == 3 and sum(probs) == pytest.approx(1.0, abs=1e-6)
        assert max(range(3), key=probs.__getitem__) == label == record["label"]
    assert score_records(task, records, "deu") == fmt.score(task, examples, preds, "deu")


def test_rescoring_needs_no_torch(tmp_path):
    import subprocess
    import sys

    run = build_run(tmp_path, ("xnli", "xquad", "hellaswag"))
    code = ("import sys; from stopover.predictions import rescore_run; rows, problems = rescore_run(sys.argv[1]); "
            "assert rows and not problems; assert 'torch' not in sys.modules, 'torch imported'")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr
