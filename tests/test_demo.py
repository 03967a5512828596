"""`stopover demo --quick` end to end with tiny settings: lab data, strategies, report.html."""

from __future__ import annotations

import json

from stopover.cli import main
from stopover.store import read_results

TINY = ["model=tiny:64x2", "lab.train=48", "lab.dev=16", "lab.test=12", "selection.budget=48",
        "selection.diversity_sample=40", "target.max_examples=48", "evaluation.max_examples=12",
        "lab.variants=[lab-jpn,lab-deu,lab-ara]", "intermediate.max_dev_examples=16",
        "target.max_dev_examples=16"]


def test_demo_quick_end_to_end(tmp_path, capsys):
    assert main(["demo", "--quick", f"output_dir={tmp_path}", *TINY]) == 0
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
    assert main(["demo", "--quick", f"output_dir={tmp_path}", *TINY]) == 0
    assert "\n0 stage(s) run, the rest re-used" in capsys.readouterr().out
