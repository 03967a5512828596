"""The command line end to end: run (three stages), second run re-uses, plan, status, errors."""

from __future__ import annotations

import subprocess
import sys

import yaml

from stopover.cli import main
from stopover.store import read_results
from tests.fixtures import write_nli_fixtures


def grid_file(tmp_path):
    data = write_nli_fixtures(tmp_path / "data")
    cfg = {"name": "cli", "model": "tiny:64x2", "output_dir": str(tmp_path / "runs"), "data_dir": str(data),
           "pool": ["mnli"], "strategies": ["none", {"explicit": ["mnli"]}], "targets": ["xnli"],
           "tasks": {"xnli": {"languages": ["eng", "deu", "fra", "spa"]}},
           "intermediate": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32},
           "target": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32}}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_run_twice_plan_status(tmp_path, capsys):
    path = grid_file(tmp_path)
    assert main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "intermediate" in out and "2 grid cells" in out
    assert (tmp_path / "runs" / "cli" / "stages").exists() is False  # plan runs nothing

    assert main(["run", str(path)]) == 0
    first = capsys.readouterr().out
    assert "5 stage(s) run" in first
    for lang in ("eng", "deu", "fra", "spa"):
        assert lang in first  # the per-language summary table
    run_dir = tmp_path / "runs" / "cli"
    rows = [r for r in read_results(run_dir) if r.stage == "eval"]
    assert {(r.strategy, r.intermediate) for r in rows} == {("none", "none"), ("explicit", "mnli")}

    assert main(["run", str(path)]) == 0
    second = capsys.readouterr().out
    assert "0 stage(s) run" in second
    # the same table is printed again
    assert first.split("stage(s) run")[0].splitlines()[:-1] == second.split("stage(s) run")[0].splitlines()[:-1]

    from stopover.config import load_config
    from stopover.grid import plan_grid

    planned = plan_grid(load_config(path))
    assert sorted(s.kind for s in planned) == ["eval", "eval", "intermediate", "target", "target"]
    assert all(s.done for s in planned)
    assert {s.examples for s in planned if s.kind == "intermediate"} == {96}  # 96 examples x 1 epoch
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "5 done, 0 running, 0 pending, 0 failed" in out


def test_errors_are_one_line(tmp_path, capsys):
    path = grid_file(tmp_path)
    assert main(["run", str(path), "targets=[xnlii]"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "did you mean xnli" in err and "\n" not in err
    assert main(["run", str(path), "strategies=[randomk]"]) == 2
    assert "did you mean random-k" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_python_dash_m_lists_tasks():
    out = subprocess.run([sys.executable, "-m", "stopover", "tasks", "--format", "csv"], capture_output=True,
                         text=True, check=True).stdout
    assert out.splitlines()[0] == "task,role,format,metric,languages,source,version,local"
    assert any(line.startswith('xnli,target,classification,accuracy,"15:') for line in out.splitlines())
