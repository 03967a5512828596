"""The command line end to end: run (three stages), second run re-uses, plan, status, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
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
    from stopover.plan import plan_grid

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


def test_warnings_are_one_line_each_and_shown_once(monkeypatch, capsys):
    import warnings

    import stopover.commands.tasks as tasks_command

    def noisy(args):
        for _ in range(3):
            warnings.warn("the same thing\n  again")  # one source line, three times
        warnings.warn("the same thing\n  again")  # another source line, the same message
        warnings.warn("something else", FutureWarning)
        return 0

    monkeypatch.setattr(tasks_command, "run", noisy)
    before = warnings.showwarning
    assert main(["tasks"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: the same thing again", "warning: something else"]
    assert warnings.showwarning is before  # restored for whoever calls main next


def test_an_error_quoting_a_line_break_stays_one_line(monkeypatch, capsys):
    import stopover.commands.tasks as tasks_command
    from stopover.errors import DataError

    def fail(args):
        raise DataError("t.csv:3: column 'a\nb' is odd")

    monkeypatch.setattr(tasks_command, "run", fail)
    assert main(["tasks"]) == 2
    assert capsys.readouterr().err == "error: t.csv:3: column 'a\\nb' is odd\n"


def starter_path():
    from pathlib import Path

    from stopover.cli import build_parser

    run = build_parser()._subparsers._group_actions[0].choices["run"]
    help_text = run.format_help()
    named = next(word for word in help_text.split() if word.startswith("configs/") and word.endswith(".yaml"))
    return Path(__file__).resolve().parents[1] / named


def test_the_config_named_in_run_help_exists_and_validates(tmp_path):
    from stopover.config import load_config
    from stopover.grid import cells, intermediate_sets

    path = starter_path()
    assert path.name == "starter.yaml" and path.is_file()
    cfg = load_config(path, [f"output_dir={tmp_path}"])
    assert cfg.model.startswith("tiny:") and cfg.lab is not None  # offline: generated data, tiny model
    sets = intermediate_sets(cfg, profiles=False)  # (`stopover plan` would also generate the lab data)
    assert [s.name for s in sets] == ["none", "lab-int-small-nli", "lab-int-full-nli"]
    assert len(cells(cfg, sets)) == 6


@pytest.mark.slow
def test_the_starter_config_runs_offline(tmp_path, capsys):
    """The config `stopover run --help` names runs end to end offline (about a minute on a CPU)."""
    assert main(["run", str(starter_path()), f"output_dir={tmp_path}"]) == 0
    rows = read_results(tmp_path / "starter")
    english = [r.value for r in rows if r.stage == "eval" and r.language == "eng" and r.task == "lab-pos"]
    assert english and min(english) > 50  # the tiny model does learn English POS tags
