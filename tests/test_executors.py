"""Executors: one job per distinct stage per wave, and true counts of the stages the jobs ran."""

from __future__ import annotations

from stopover import executors
from stopover.config import RunConfig, from_dict
from stopover.grid import Cell


def _cells() -> list[Cell]:
    return [Cell("none", "none", (), None, 0, "xnli"), Cell("single", "mnli", ("mnli",), None, 0, "xnli"),
            Cell("explicit", "mnli", ("mnli",), None, 0, "xnli"), Cell("single", "mnli", ("mnli",), None, 0, "pawsx")]


def test_one_job_per_distinct_stage_of_a_wave():
    grid = _cells()
    assert [c.tasks for c in executors.wave_jobs(grid, "intermediate")] == [("mnli",)]
    assert [(c.tasks, c.target) for c in executors.wave_jobs(grid, "target")] == [
        ((), "xnli"), (("mnli",), "xnli"), (("mnli",), "pawsx")]


def test_waves_report_the_stages_the_jobs_ran(tmp_path, monkeypatch):
    ran = {"intermediate": [["i1"]], "target": [["t1"], [], ["t2"]], "eval": [["e1"], ["e1"], ["e2"]]}

    def pool(workers: int):
        def submit(config, jobs, upto, done):
            assert config["jobs"] == 2 and len(jobs) == len(ran[upto])
            for hashes in ran[upto]:  # in-process stand-in for the worker processes
                done(hashes)
        return submit

    monkeypatch.setattr(executors, "_local_pool", pool)
    log: list[str] = []
    cfg = from_dict(RunConfig, {"name": "w", "output_dir": str(tmp_path), "targets": ["xnli"], "jobs": 2})
    assert executors.run_waves(cfg, tmp_path, _cells(), log=log.append) == ["i1", "t1", "t2", "e1", "e2"]
    assert "target: 3/3 job(s) finished" in log
    assert "target: 2 stage(s) run, 1 re-used" in log and "eval: 2 stage(s) run, 1 re-used" in log
