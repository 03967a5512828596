"""Crash and resume: `stopover run` SIGKILLed at many points, then resumed, ends exactly as an
uninterrupted run: same result rows and values, same stage records, bit-identical weights,
no duplicate or torn rows.

The kills are deterministic (see hooks/sitecustomize.py): the process kills itself at an
exact event, so each step of the chain below always leaves the same state on disk. One more
test kills from outside, the moment the first training checkpoint appears.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import torch

from tests.reliability.harness import (
    SIGKILLED,
    assert_same_outputs,
    done_stages,
    grid_config,
    result_lines,
    run_dir_of,
    stage_kinds,
    stages_run,
    stopover_run,
    stopover_start,
)

pytestmark = pytest.mark.slow


def kinds_done(run_dir: Path) -> set[str]:
    kinds = stage_kinds(run_dir) if (run_dir / "stages").is_dir() else {}
    return {kinds[h] for h in done_stages(run_dir)}


def only_stage(run_dir: Path, kind: str) -> Path:
    (h,) = [h for h, k in stage_kinds(run_dir).items() if k == kind]
    return run_dir / "stages" / h


def checkpoint_step(path: Path) -> int:
    return torch.load(path, weights_only=True)["state"]["step"]


# (kill spec, what the run directory holds afterwards)
CHAIN = [
    # while the tiny model's weights are written (its config.json is already on disk)
    ("tiny-weights:*:1", lambda run, cache: kinds_done(run) == set()),
    # during tokenisation of the first training set, before the feature cache is written
    ("featurize:*:1", lambda run, cache: kinds_done(run) == set()),
    # mid-training: after the 3rd of 6 optimizer steps of the intermediate stage
    ("after:*/checkpoint/mnli/checkpoint.pt:3",
     lambda run, cache: checkpoint_step(only_stage(run, "intermediate") / "checkpoint/mnli/checkpoint.pt") == 3),
    # the intermediate stage wrote everything (encoder, dev row, stage.json) except its DONE marker
    ("before:*/DONE:1", lambda run, cache: kinds_done(run) == set()
     and (only_stage(run, "intermediate") / "stage.json").exists()),
    # target training's last step: its checkpoint is written, the stage is not finished
    ("after:*/checkpoint/checkpoint.pt:6", lambda run, cache: kinds_done(run) == {"intermediate"}
     and checkpoint_step(only_stage(run, "target") / "checkpoint/checkpoint.pt") == 6),
    # mid-evaluation: 2 of 4 languages scored
    ("after:*/languages/*.json:2", lambda run, cache: kinds_done(run) == {"intermediate", "target"}
     and len(list((only_stage(run, "eval") / "languages").glob("*.json"))) == 2),
    # while appending the evaluation's rows to results.jsonl: a torn last line
    ("torn-results:*:1", lambda run, cache: kinds_done(run) == {"intermediate", "target", "eval"}
     and not (run / "results.jsonl").read_text().endswith("\n")),
]


def test_killed_at_every_point_then_resumed_matches_uninterrupted(tmp_path, reference_run):
    config = grid_config(tmp_path, name="crash")
    run_dir, cache = run_dir_of(config), tmp_path / "cache"
    for spec, check in CHAIN:
        killed = stopover_run(config, cache, kill=spec)
        assert killed.returncode == SIGKILLED, f"{spec}: not killed (rc {killed.returncode}):\n{killed.stderr}"
        assert check(run_dir, cache), f"unexpected state after kill {spec}"
    final = stopover_run(config, cache)
    assert final.returncode == 0, final.stderr
    assert stages_run(final.stdout) == 0  # every stage finished before the last kill
    assert_same_outputs(run_dir, reference_run)
    assert len(result_lines(run_dir)) == len(result_lines(reference_run))


def test_killed_from_outside_when_first_checkpoint_appears(tmp_path, reference_run):
    config = grid_config(tmp_path, name="crash")
    run_dir, cache = run_dir_of(config), tmp_path / "cache"
    proc = stopover_start(config, cache)
    deadline = time.monotonic() + 300
    try:
        while not list(run_dir.glob("stages/*/checkpoint/**/checkpoint.pt")):
            assert proc.poll() is None, f"finished before any checkpoint:\n{proc.communicate()[1]}"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == SIGKILLED
    assert "intermediate" not in kinds_done(run_dir)
    resumed = stopover_run(config, cache)
    assert resumed.returncode == 0, resumed.stderr
    assert stages_run(resumed.stdout) == 3
    assert_same_outputs(run_dir, reference_run)
