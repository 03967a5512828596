"""Planning: the same stages a run would make, counted without running or writing anything."""

from __future__ import annotations

import dataclasses

import pytest

from stopover import tasks as task_registry
from stopover.config import RunConfig, from_dict
from stopover.plan import plan, published_train_size
from tests.fixtures import write_nli_fixtures


def test_plan_writes_no_run_directory(tmp_path):
    data = write_nli_fixtures(tmp_path / "data", train=8, test=4)
    cfg = from_dict(RunConfig, {"name": "p", "model": "xlm-roberta-large", "output_dir": str(tmp_path / "runs"),
                                "data_dir": str(data), "pool": ["mnli"], "targets": ["xnli"],
                                "strategies": ["none", "single"], "tasks": {"xnli": {"languages": ["eng", "deu"]}}})
    planned = plan(cfg)
    assert sorted(s.kind for s in planned.stages) == ["eval", "eval", "intermediate", "target", "target"]
    assert {s.examples for s in planned.stages if s.kind == "eval"} == {8}  # 2 languages x 4
    assert not (tmp_path / "runs").exists()


def test_plan_of_a_lab_config_generates_its_data_elsewhere(tmp_path):
    cfg = from_dict(RunConfig, {"name": "lab", "model": "xlm-roberta-large", "output_dir": str(tmp_path / "runs"),
                                "pool": ["lab-nli"], "targets": ["lab-pos"], "strategies": ["none"],
                                "lab": {"train": 12, "dev": 4, "test": 4, "variants": ["lab-deu"]}})
    planned = plan(cfg)
    assert {s.examples for s in planned.stages if s.kind == "eval"} == {8}  # eng + lab-deu, 4 each
    assert not (tmp_path / "runs").exists()


def test_published_sizes_come_from_the_task_first(monkeypatch):
    assert published_train_size(task_registry.get_task("mnli")) == 392_702  # the published table
    monkeypatch.setitem(task_registry._REGISTRY, "mnli",
                        dataclasses.replace(task_registry.get_task("mnli"), published_train_size=1234))
    assert published_train_size(task_registry.get_task("mnli")) == 1234


def test_plan_states_each_tests_floor_before_running(tmp_path):
    from stopover.analysis.power import draw_rank_floor, sign_flip_floor

    data = write_nli_fixtures(tmp_path / "data", train=8, test=4)
    cfg = from_dict(RunConfig, {"name": "p", "model": "xlm-roberta-large", "output_dir": str(tmp_path / "runs"),
                                "data_dir": str(data), "pool": ["mnli", "snli", "anli"], "targets": ["xnli"],
                                "strategies": ["none", "random-k"], "selection": {"k": 1, "draws": 3},
                                "seeds": [0, 1], "tasks": {"xnli": {"languages": ["eng", "deu", "hin", "tur"]}}})
    tests = {t.test.split(" (")[0]: t for t in plan(cfg).power["xnli"]}
    # 3 distinct random sets (k = 1 of 3 tasks); 3 languages besides English
    assert tests["draw-rank"].floor == draw_rank_floor(3) == 0.5 and not tests["draw-rank"].reachable
    assert tests["sign-flip"].floor == sign_flip_floor(3) == 0.25 and not tests["sign-flip"].reachable
    assert "at least" in tests["draw-rank"].fix and "more languages" in tests["sign-flip"].fix
    assert not (tmp_path / "runs").exists()


def test_machine_minutes_follow_the_calibration():
    from stopover.plan import MACHINE_TIME, PlannedStage, machine_minutes

    model = "embedded:multilingual-e5-small"
    stages = [PlannedStage("target", "a", "t", False, 10, positions=60_000),
              PlannedStage("target", "b", "t", True, 10, positions=60_000),  # done: costs nothing
              PlannedStage("eval", "c", "e", False, None, positions=None)]   # unknown size: counted apart
    out = machine_minutes(stages, model)
    assert out is not None
    overhead, rate = MACHINE_TIME[model]["target"]
    assert out["target"] == (pytest.approx((overhead + 60_000 / rate) / 60), 0)
    assert out["eval"] == (0.0, 1) and out["intermediate"] == (0.0, 0)
    assert machine_minutes(stages, "xlm-roberta-large") is None  # not calibrated: no number
