"""Tests for stopover.report, stopover.plots and the `analyze`/`report` commands."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# make_run lives beside this file; pytest puts tests/ on sys.path (rootdir-relative import mode).
from test_analysis import make_run

from stopover import analysis as an
from stopover import report as rp
from stopover.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def planted_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run = make_run(tmp_path_factory.mktemp("report"), n_draws=4)
    (run / "config.yaml").write_text("name: synthetic\nseeds: [0, 1, 2]\n", encoding="utf-8")
    analysis = an.analyze(run, n_boot=60, seed=2)
    path = rp.write_report(run, analysis)
    return run, path.read_text(encoding="utf-8")


def test_report_is_self_contained_html_with_images_and_tables(planted_report: tuple[Path, str]) -> None:
    run, page = planted_report
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4  # score vs distance for 2 kinds, heatmap, forest
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)
    assert page.count("<table>") >= 8
    assert 'src="http' not in page and "<script" not in page  # nothing fetched from elsewhere
    for heading in ("Summary", "XTREME-style tables", "Robustness to distance", "Primary: set-level tests",
                    "Secondary: strategy comparisons (this set vs the mean of these draws)",
                    "Mixed-effects model", "Figures", "Resolved config", "Environment"):
        assert f"<h2>{heading}</h2>" in page
    assert "name: synthetic" in page  # the config
    assert "statsmodels" in page and "matplotlib" in page


def test_report_summary_states_the_planted_direction(planted_report: tuple[Path, str]) -> None:
    run, page = planted_report
    summary = page.split("<div class='summary'>")[1].split("</div>")[0]
    assert "Answer (primary, set-level; syntactic distance)" in summary
    assert "diversity-topk&#x27;s set is more robust to distance than the mean of these draws" in summary \
        or "diversity-topk's set is more robust to distance than the mean of these draws" in summary
    assert (run / "analysis" / "summary.txt").read_text().startswith("Does choosing intermediate tasks")


def test_report_writes_tables_plots_and_statistics(planted_report: tuple[Path, str]) -> None:
    run, _ = planted_report
    for name in ("tasks", "paper", "languages_xnli", "languages_pawsx", "slopes_syntactic"):
        for ext in ("md", "tex", "csv"):
            assert (run / "tables" / f"{name}.{ext}").stat().st_size > 0
    paper = pd.read_csv(run / "tables" / "paper.csv")
    assert list(paper["task"]) == ["pawsx", "xnli", "avg"]
    md = (run / "tables" / "paper.md").read_text()
    assert md.splitlines()[0] == "| task | none | mnli+qqp | random-k (mean of draws) |"
    tex = (run / "tables" / "paper.tex").read_text()
    assert r"\begin{tabular}{lrrr}" in tex and r"\toprule" in tex and "mnli+qqp" in tex
    for name in ("score_vs_distance_syntactic", "score_vs_distance_genetic", "heatmap", "slope_forest"):
        assert (run / "plots" / f"{name}.png").read_bytes().startswith(PNG_MAGIC)
    rob = pd.read_csv(run / "analysis" / "robustness.csv")
    assert {"slope", "slope_lo", "slope_hi", "pearson_r", "spearman_rho"} <= set(rob.columns)
    comp = pd.read_csv(run / "analysis" / "comparisons.csv")
    assert {"diff", "p_perm", "p_holm"} <= set(comp.columns)
    assert not list(run.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_null_report_says_inconclusive(tmp_path: Path) -> None:
    run = make_run(tmp_path, div_slope=-30.0, data_seed=4, n_draws=3, seeds=(0, 1))
    page = rp.write_report(run, an.analyze(run, n_boot=40, kinds=["syntactic"])).read_text()
    assert "inconclusive: none of the" in page
    assert "no difference between diversity-topk" in page


def test_report_without_estimable_regressions_still_renders(tmp_path: Path) -> None:
    run = make_run(tmp_path, langs=["deu", "jpn"], seeds=(0,), n_draws=2)
    page = rp.write_report(run, an.analyze(run, n_boot=20)).read_text()
    assert "not estimable" in page
    assert "No config.yaml in the run directory" in page
    assert 'src="data:image/png;base64,' in page  # the heatmap needs no regression


def test_markdown_and_latex_escape_their_special_characters() -> None:
    df = pd.DataFrame({"name": ["a|b", "x_y & 50%"], "value": [1.234, float("nan")]})
    assert rp.to_markdown(df).splitlines() == ["| name | value |", "|:---|---:|", "| a\\|b | 1.23 |",
                                               "| x_y & 50% |  |"]
    tex = rp.to_latex(df, caption="A_B", label="t")
    assert r"x\_y \& 50\% &  \\" in tex and r"\caption{A\_B}" in tex and r"\label{tab:t}" in tex


def test_cli_report_and_analyze(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps captured output at 80 columns otherwise
    run = make_run(tmp_path / "run", n_draws=2, seeds=(0, 1))
    assert main(["analyze", str(run), "--n-boot", "20", "--kinds", "syntactic"]) == 0
    out = capsys.readouterr().out
    assert "Slope of score on distance" in out and "diversity-topk" in out
    assert "distance:[diversity-topk]" in out  # brackets survive rich's markup
    assert "Answer (primary, set-level" in out
    assert main(["report", str(run), "--n-boot", "20", "--kinds", "syntactic"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(run / "report.html") and Path(printed).exists()


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no results file" in err and err.count("\n") == 1
    run = make_run(tmp_path / "run", n_draws=2, seeds=(0,))
    assert main(["analyze", str(run), "--kinds", "lexical"]) == 2
    assert "no distance kind(s) lexical" in capsys.readouterr().err


def test_plot_bands_are_clipped_to_the_metric_range() -> None:
    from stopover.plots import clip_band

    lo, hi = clip_band(np.array([-5.0, 20.0]), np.array([60.0, 140.0]), "score")
    assert lo.tolist() == [0.0, 20.0] and hi.tolist() == [60.0, 100.0]
    lo, hi = clip_band(np.array([-150.0]), np.array([30.0]), "gap")
    assert lo.tolist() == [-100.0] and hi.tolist() == [30.0]


def test_report_writes_set_level_tables(planted_report: tuple[Path, str]) -> None:
    run, page = planted_report
    tests = pd.read_csv(run / "analysis" / "set_tests.csv")
    assert set(tests["test"]) >= {"draw-rank", "dose-response"}
    power = pd.read_csv(run / "analysis" / "power.csv")
    assert {"floor", "floor_adjusted", "reachable", "mde"} <= set(power.columns)
    assert "2.5-97.5% quantiles" in page and "[range]" not in page
