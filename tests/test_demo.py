"""`stopover demo --lab --quick` and the real-data `stopover demo --quick` end to end, tiny settings:
lab data, real data, strategies, report.html."""

from __future__ import annotations

import json

from stopover.cli import main
from stopover.store import read_results

TINY = ["model=tiny:64x2", "lab.train=48", "lab.dev=16", "lab.test=12", "selection.budget=48",
        "selection.diversity_sample=40", "target.max_examples=48", "evaluation.max_examples=12",
        "lab.variants=[lab-jpn,lab-deu,lab-ara]", "intermediate.max_dev_examples=16",
        "target.max_dev_examples=16"]


def test_demo_quick_end_to_end(tmp_path, capsys):
    assert main(["demo", "--lab", "--quick", f"output_dir={tmp_path}", *TINY]) == 0
    out = capsys.readouterr().out
    assert "0 stage(s) run" not in out
    run_dir = tmp_path / "demo-quick"
    report = run_dir / "report.html"
    assert f"report: {report}" in out.replace("\n", "")
    html = report.read_text(encoding="utf-8")
    assert 'src="data:image/png;base64,' in html
    rows = [r for r in read_results(run_dir) if r.stage == "eval" and r.primary]
    assert {r.strategy for r in rows} == {"none", "diversity-topk", "random-k", "all"}
    assert {r.task for r in rows} == {"lab-pos", "lab-nli"}
    assert {r.language for r in rows} == {"eng", "lab-jpn", "lab-deu", "lab-ara"}
    # the lab's own distances sit beside the results for the analysis
    typology = (run_dir / "typology.csv").read_text()
    assert "lab-jpn" in typology and "syntactic" in typology
    manifest = json.loads((run_dir / "lab-data" / "manifest.json").read_text())
    assert set(manifest["languages"]) == {"eng", "lab-jpn", "lab-deu", "lab-ara"}
    # a second run re-uses every stage
    assert main(["demo", "--lab", "--quick", f"output_dir={tmp_path}", *TINY]) == 0
    assert "\n0 stage(s) run, the rest re-used" in capsys.readouterr().out


def test_real_data_demo_quick_end_to_end(tmp_path, capsys, shared_data, monkeypatch):
    """The README's main command on real data (quick, tiny model, 4 UD languages): real English
    intermediate tasks, real languages with URIEL+ distances, and the run's note in report.html.
    """
    monkeypatch.setenv("STOPOVER_SHARED_DATA", str(shared_data))
    tiny = ["model=tiny:64x2", "selection.diversity_sample=20", "target.max_examples=16",
            "evaluation.max_examples=4", "tasks.udpos.languages=[en,de,ja,tr]", "selection.budget=32"]
    assert main(["demo", "--quick", f"output_dir={tmp_path}", *tiny]) == 0
    run_dir = tmp_path / "demo-real"
    rows = [r for r in read_results(run_dir) if r.stage == "eval" and r.primary]
    assert {r.task for r in rows} == {"udpos"}
    assert {r.language for r in rows} == {"eng", "deu", "jpn", "tur"}
    assert {r.strategy for r in rows} == {"none", "diversity-topk", "all"}
    assert {r.intermediate for r in rows if r.strategy == "all"} == {"anli+squad+commonsenseqa+ccg"}
    typology = (run_dir / "typology.csv").read_text()
    assert "jpn" in typology and "syntactic" in typology
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "About this run." in html and "not a study" in html


def test_the_real_demo_says_where_the_samples_are_missing(tmp_path, monkeypatch):
    import pytest

    from stopover.demo import real_data_overrides
    from stopover.errors import DataError

    monkeypatch.setenv("STOPOVER_SHARED_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="STOPOVER_SHARED_DATA=.*nowhere: no such directory"):
        real_data_overrides()
    monkeypatch.setenv("STOPOVER_SHARED_DATA", str(tmp_path))
    moved = real_data_overrides()
    assert f"tasks.udpos.data_dir={tmp_path.resolve() / 'ud'}" in moved
    assert any(o.startswith("selection.upos_train=[") and str(tmp_path.resolve()) in o for o in moved)
