"""Grid expansion: cells from strategies x seeds x targets, placeholders when planning, the oracle's cells."""

from __future__ import annotations

import pytest

from stopover.config import RunConfig, from_dict
from stopover.errors import TaskError
from stopover.grid import Cell, cells, intermediate_sets, oracle_cells
from stopover.store import ResultRow, append_results


def _cfg(tmp_path, **over) -> RunConfig:
    base = {"name": "g", "model": "xlm-roberta-large", "output_dir": str(tmp_path), "pool": ["mnli", "qqp", "snli"],
            "targets": ["xnli", "pawsx"], "seeds": [0, 1], "strategies": ["none", "single"]}
    base.update(over)
    return from_dict(RunConfig, base)


def test_cells_are_sets_by_seeds_by_targets(tmp_path):
    cfg = _cfg(tmp_path)
    sets = intermediate_sets(cfg)
    assert [s.name for s in sets] == ["none", "mnli", "qqp", "snli"]
    grid = cells(cfg, sets)
    assert len(grid) == 4 * 2 * 2
    assert grid[0] == Cell("none", "none", (), None, 0, "xnli") and grid[-1].target == "pawsx"


def test_diversity_sets_are_placeholders_while_planning(tmp_path):
    cfg = _cfg(tmp_path, strategies=["diversity-topk"], selection={"k": 2})
    (s,) = intermediate_sets(cfg, profiles=False)
    assert s.name == "diversity-topk (chosen at run time)" and len(s.tasks) == 2


def test_a_misspelt_tasks_entry_is_an_error(tmp_path):
    with pytest.raises(TaskError, match="tasks.mnlii: unknown task 'mnlii'"):
        cells(_cfg(tmp_path, tasks={"mnlii": {}}), [])


def test_the_oracle_picks_each_targets_best_finished_set(tmp_path):
    cfg = _cfg(tmp_path, strategies=["single", "oracle"], targets=["xnli"], seeds=[0])
    assert [s.strategy for s in intermediate_sets(cfg)] == ["single"] * 3  # nothing to choose from yet
    assert oracle_cells(cfg, tmp_path) == []

    def dev(set_name: str, value: float) -> ResultRow:  # a target stage's English dev row
        return ResultRow(run="g", stage="target", stage_hash=set_name, task="xnli", language="eng", split="dev",
                         metric="accuracy", value=value, seed=0, strategy="", intermediate=set_name, target="xnli")

    append_results(tmp_path, [dev("mnli", 70.0), dev("qqp", 55.0), dev("snli", 72.5)])
    (cell,) = oracle_cells(cfg, tmp_path)
    assert (cell.strategy, cell.intermediate, cell.tasks, cell.reference) == ("oracle", "snli", ("snli",), True)
