"""`stopover export --format xtreme`: the files land in XTREME's layout, and scoring the exported
files with stopover's own metric functions (read as XTREME's evaluate.py reads them) gives back
the reported figures for XQuAD, MLQA, PAN-X, UD POS, XNLI, PAWS-X, Tatoeba and BUCC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stopover import metrics
from stopover.errors import DataError
from stopover.export import export, xtreme_language
from stopover.formats import get_format
from stopover.tasks import get_task
from tests.test_predictions import build_run, evaluation

EXPORTED = ("xquad", "mlqa", "panx", "udpos", "xnli", "pawsx", "tatoeba", "bucc", "hellaswag")


# Readers with the semantics of XTREME's evaluate.py (one label per line; tags with a blank
# line closing each sentence, an empty sentence included; QA as {id: answer} and SQuAD json).
def read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]


def read_tags(path: Path) -> list[list[str]]:
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            current.append(line.strip())
        else:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def read_squad_refs(path: Path) -> dict[str, list[str]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return {qa["id"]: [a["text"] for a in qa["answers"]]
            for article in data for paragraph in article["paragraphs"] for qa in paragraph["qas"]}


def rescore_exported(name: str, pred: Path, gold: Path, lang: str) -> dict[str, float]:
    if name in ("xquad", "mlqa"):
        answers = json.loads(pred.read_text(encoding="utf-8"))
        refs = read_squad_refs(gold)
        return metrics.mlqa(answers, refs, lang) if name == "mlqa" else metrics.squad_v1(answers, refs)
    if name == "panx":
        return metrics.seqeval_f1(read_tags(pred), read_tags(gold))
    if name == "udpos":
        return metrics.pos_scores(read_tags(pred), read_tags(gold))
    if name in ("xnli", "pawsx"):
        return metrics.accuracy(read_lines(pred), read_lines(gold))
    if name == "tatoeba":
        return metrics.tatoeba_accuracy([int(x) for x in read_lines(pred)], [int(x) for x in read_lines(gold)])
    if name == "bucc":
        return metrics.bucc_f1([tuple(x.split("\t")) for x in read_lines(pred)],
                               [tuple(x.split("\t")) for x in read_lines(gold)])
    if name == "hellaswag":
        return metrics.accuracy([json.loads(x)["label"] for x in read_lines(pred)],
                                [json.loads(x)["label"] for x in read_lines(gold)])
    raise AssertionError(name)


FOLDER = {"bucc": "bucc2018"}
SUFFIX = {"xquad": "json", "mlqa": "json", "hellaswag": "jsonl"}


def test_exported_predictions_reproduce_the_reported_figures(tmp_path):
    run = build_run(tmp_path, EXPORTED)
    out, result = export(run, "xtreme")
    assert out == run / "export" / "xtreme" and result.skipped == []
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert sorted(manifest["cells"]) == ["none_none_seed0", "single_mnli_seed0"]
    for name in EXPORTED:
        task = get_task(name)
        language, examples, preds = evaluation(name)
        reported = get_format(task.format).score(task, examples, preds, language)
        lang = xtreme_language(language)
        for cell in manifest["cells"]:
            file = f"{FOLDER.get(name, name)}/test-{lang}.{SUFFIX.get(name, 'tsv')}"
            scores = rescore_exported(name, out / cell / "predictions" / file, out / cell / "labels" / file, lang)
            assert scores == {k: v for k, v in reported.items() if k in scores}, name
            assert scores.keys() & reported.keys()


def test_layout_details(tmp_path):
    run = build_run(tmp_path, ("pawsx", "bucc", "panx"))
    out, _ = export(run, "xtreme", tmp_path / "out")
    cell = out / "none_none_seed0"
    assert read_lines(cell / "labels" / "pawsx" / "test-fr.tsv") == ["0", "1", "0", "1", "0"]  # indices, as XTREME
    pairs = read_lines(cell / "predictions" / "bucc2018" / "test-de.tsv")
    assert pairs == ["de-000000\ten-000000", "de-000001\ten-000002", "de-000003\ten-000003"]  # no part prefix
    assert (cell / "predictions" / "panx" / "test-de.tsv").read_text(encoding="utf-8").startswith("B-PER\nO\nO\nB-ORG\n\n")


def test_export_command(tmp_path, capsys):
    from stopover.cli import main

    run = build_run(tmp_path, ("xnli",))
    assert main(["export", str(run), "--format", "xtreme", "--out", str(tmp_path / "x")]) == 0
    assert "--prediction_folder" in capsys.readouterr().out
    assert (tmp_path / "x" / "none_none_seed0" / "predictions" / "xnli" / "test-de.tsv").exists()
    empty = tmp_path / "empty"
    (empty / "stages").mkdir(parents=True)
    assert main(["export", str(empty)]) == 2
    assert "no finished evaluation stage" in capsys.readouterr().err
    with pytest.raises(DataError, match="unknown export format"):
        export(run, "csv")
