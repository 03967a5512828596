"""Concurrency: workers sharing one run directory train every stage once and never tear results.

- two `stopover run` processes started together on the same config (slow);
- several processes racing on one stage through `Pipeline._run` (the stage lock) and on
  `record_rows` (the results lock), with overlapping rows (fast).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from stopover.config import RunConfig, from_dict
from stopover.pipeline import Pipeline, record_rows
from stopover.store import ResultRow, read_results
from tests.reliability.harness import (
    ROW_KEY,
    assert_stage_configs_match_names,
    done_stages,
    grid_config,
    result_lines,
    result_map,
    run_dir_of,
    stage_dirs,
    stage_log,
    stages_run,
    stopover_start,
)


@pytest.mark.slow
def test_two_workers_on_one_run_directory(tmp_path, reference_run):
    config = grid_config(tmp_path, name="conc", strategies=["none", {"explicit": ["mnli"]}])
    run_dir, cache, log = run_dir_of(config), tmp_path / "cache", tmp_path / "stages.log"
    workers = [stopover_start(config, cache, log=log) for _ in range(2)]  # same fresh cache: the tiny model races too
    outputs = [w.communicate(timeout=900) for w in workers]
    for w, (out, err) in zip(workers, outputs):
        assert w.returncode == 0, err
    stages = stage_dirs(run_dir)
    assert len(stages) == 5  # 1 intermediate, 2 targets, 2 evaluations
    assert done_stages(run_dir) == set(stages)
    assert not any((d / "FAILED").exists() for d in stages.values())
    # each stage body ran exactly once over both processes, and the processes' own counts agree
    runs = Counter(e["hash"] for e in stage_log(log) if e["event"] == "start")
    assert runs == Counter({h: 1 for h in stages})
    assert sum(stages_run(out) for out, _ in outputs) == 5
    assert_stage_configs_match_names(run_dir)
    # results: valid line by line, no duplicate keys, every (strategy, language) row, and the
    # stages shared with the uninterrupted single-process reference give the same values
    rows = result_lines(run_dir)
    evals = {(r["strategy"], r["language"]) for r in rows if r["stage"] == "eval" and r["primary"]}
    assert evals == {(s, lang) for s in ("none", "explicit") for lang in ("eng", "deu", "fra", "spa")}
    ours, ref = result_map(run_dir), result_map(reference_run)
    assert {k: v for k, v in ours.items() if k in ref} == ref


# --------------------------------------------------------------------------- fast: the locks


def _tiny_cfg(root: Path) -> RunConfig:
    return from_dict(RunConfig, {"name": "locks", "output_dir": str(root), "targets": ["xnli"]})


def _race_stage(root: str, counter: str, start_at: float) -> str:
    pipe = Pipeline(_tiny_cfg(Path(root)), Path(root) / "locks")
    stage = pipe._stage("eval", {"task": "xnli", "seed": 0}, None)  # done = its DONE marker

    def body() -> dict:
        with open(counter, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(0.3)  # long enough for the other workers to arrive at the lock
        return {"ran_in": os.getpid()}

    while time.time() < start_at:
        time.sleep(0.005)
    pipe._run(stage, {"task": "xnli", "seed": 0}, body)
    return stage.hash


def _race_rows(run_dir: str, worker: int, start_at: float) -> int:
    while time.time() < start_at:
        time.sleep(0.005)
    added = 0
    for i in range(20):  # workers write overlapping keys: (worker + i) % 25
        key = (worker * 7 + i) % 25
        rows = [ResultRow(run="r", stage="eval", stage_hash="h", task="xnli", language=f"l{key}", split="test",
                          metric=m, value=float(key), seed=0, strategy="s", intermediate="none")
                for m in ("accuracy", "f1")]
        added += record_rows(Path(run_dir), rows)
    return added


def _spawn_all(fn, args_list):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(args_list)) as pool:
        return pool.starmap(fn, args_list)


def test_stage_lock_runs_a_stage_once(tmp_path):
    counter = tmp_path / "bodies.txt"
    start_at = time.time() + 2  # every worker is imported and waiting before the first one starts
    hashes = _spawn_all(_race_stage, [(str(tmp_path), str(counter), start_at)] * 3)
    assert len(set(hashes)) == 1
    assert len(counter.read_text().splitlines()) == 1
    stage = tmp_path / "locks" / "stages" / hashes[0]
    assert (stage / "DONE").read_text().strip() == hashes[0]
    assert json.loads((stage / "stage.json").read_text())["ran_in"] == int(counter.read_text())


def test_concurrent_record_rows_never_duplicate_or_tear(tmp_path):
    start_at = time.time() + 2
    added = _spawn_all(_race_rows, [(str(tmp_path), w, start_at) for w in range(3)])
    rows = result_lines(tmp_path)  # strict: every line whole, no duplicate keys
    assert sum(added) == len(rows) == len({r["language"] for r in rows}) * 2
    assert {r["language"] for r in rows} == {f"l{(w * 7 + i) % 25}" for w in range(3) for i in range(20)}
    assert len(read_results(tmp_path)) == len(rows)
    assert all(r["value"] == float(r["language"][1:]) for r in rows)
    assert ROW_KEY[0] == "stage"
