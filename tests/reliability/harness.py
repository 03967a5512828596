"""Helpers for the reliability tests: tiny grid configs, `stopover run` subprocesses, result checks.

Grids use the tiny random XLM-R (`tiny:64x2`) on the generated NLI fixtures of
tests/fixtures.py, so a whole grid (intermediate -> target -> evaluation in 4
languages) runs in seconds on a CPU. Subprocesses get tests/reliability/hooks on
their PYTHONPATH: its sitecustomize kills them at exact points on request
(`STOPOVER_TEST_KILL`) and logs every stage body that runs (`STOPOVER_TEST_LOG`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures import write_nli_fixtures

REPO = Path(__file__).resolve().parents[2]
HOOKS = Path(__file__).resolve().parent / "hooks"
SIGKILLED = -signal.SIGKILL
ROW_KEY = ("stage", "stage_hash", "task", "language", "split", "metric", "seed", "strategy", "intermediate")


def grid_config(root: Path, *, name: str = "grid", **over: Any) -> Path:
    """Write NLI fixtures under root/data and a grid config root/<name>.yaml writing to root/runs."""
    data = write_nli_fixtures(root / "data")
    cfg = {"name": name, "model": "tiny:64x2", "output_dir": str(root / "runs"), "data_dir": str(data),
           "pool": ["mnli"], "strategies": [{"explicit": ["mnli"]}], "targets": ["xnli"],
           "tasks": {"xnli": {"languages": ["eng", "deu", "fra", "spa"]}}, "checkpoint_every": 1,
           "intermediate": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32},
           "target": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32},
           "evaluation": {"batch_size": 32, "max_length": 32}}
    cfg.update(over)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def run_dir_of(config: Path) -> Path:
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    return Path(cfg["output_dir"]) / cfg["name"]


def subprocess_env(cache: Path, *, kill: str | None = None, log: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HOOKS), str(REPO)])
    env["STOPOVER_CACHE"] = str(cache)
    env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    env.pop("STOPOVER_TEST_KILL", None)
    env.pop("STOPOVER_TEST_LOG", None)
    if kill:
        env["STOPOVER_TEST_KILL"] = kill
    if log:
        env["STOPOVER_TEST_LOG"] = str(log)
    return env


def stopover_cmd(config: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "stopover", "run", str(config), *overrides]


def stopover_run(config: Path, cache: Path, *, kill: str | None = None, log: Path | None = None,
                 timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m stopover run CONFIG` in a subprocess (cwd: the config's folder)."""
    return subprocess.run(stopover_cmd(config), cwd=config.parent, env=subprocess_env(cache, kill=kill, log=log),
                          capture_output=True, text=True, timeout=timeout)


def stopover_start(config: Path, cache: Path, *, log: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(stopover_cmd(config), cwd=config.parent, env=subprocess_env(cache, log=log),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stages_run(stdout: str) -> int:
    """The `N stage(s) run` count `stopover run` prints."""
    for line in stdout.splitlines():
        if "stage(s) run" in line:
            return int(line.split("stage(s) run")[0].split()[-1])
    raise AssertionError(f"no 'stage(s) run' line in:\n{stdout}")


def result_lines(run_dir: Path) -> list[dict]:
    """Every line of results.jsonl parsed strictly: a torn or duplicate row fails the test."""
    text = (run_dir / "results.jsonl").read_text(encoding="utf-8")
    assert text.endswith("\n"), "results.jsonl ends in a torn line"
    rows = [json.loads(line) for line in text.splitlines()]
    keys = Counter(tuple(r[k] for k in ROW_KEY) for r in rows)
    dupes = [k for k, n in keys.items() if n > 1]
    assert not dupes, f"duplicate result rows: {dupes[:3]}"
    return rows


def result_map(run_dir: Path) -> dict[tuple, float]:
    return {tuple(r[k] for k in ROW_KEY): r["value"] for r in result_lines(run_dir)}


def stage_dirs(run_dir: Path) -> dict[str, Path]:
    return {d.name: d for d in sorted((run_dir / "stages").iterdir()) if d.is_dir()}


def done_stages(run_dir: Path) -> set[str]:
    stages = run_dir / "stages"
    return {d.name for d in stages.iterdir() if (d / "DONE").exists()} if stages.is_dir() else set()


def stage_kinds(run_dir: Path) -> dict[str, str]:
    """stage hash -> kind, from each stage's resolved config."""
    return {h: yaml.safe_load((d / "config.yaml").read_text(encoding="utf-8"))["kind"]
            for h, d in stage_dirs(run_dir).items()}


def weights(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(path))


def assert_same_outputs(run_dir: Path, reference: Path) -> None:
    """Same stages, same rows and values, same stage.json/scores.json, bit-identical weights."""
    import torch

    ours_rows, ref_rows = result_map(run_dir), result_map(reference)
    assert ours_rows == ref_rows, {"missing": sorted(ref_rows.keys() - ours_rows.keys()),
                                   "extra": sorted(ours_rows.keys() - ref_rows.keys()),
                                   "different": sorted(k for k in ref_rows.keys() & ours_rows.keys()
                                                       if ref_rows[k] != ours_rows[k])}
    assert_stage_configs_match_names(run_dir)
    ours, theirs = stage_dirs(run_dir), stage_dirs(reference)
    assert set(ours) == set(theirs)
    for h, d in theirs.items():
        assert (ours[h] / "DONE").exists(), h
        for name in ("stage.json", "scores.json"):
            if (d / name).exists():
                assert json.loads((ours[h] / name).read_text()) == json.loads((d / name).read_text()), (h, name)
        for sub in ("encoder", "model"):
            if (d / sub / "model.safetensors").exists():
                a, b = weights(ours[h] / sub / "model.safetensors"), weights(d / sub / "model.safetensors")
                assert a.keys() == b.keys()
                assert all(torch.equal(a[k], b[k]) for k in b), (h, sub)


def assert_stage_configs_match_names(run_dir: Path) -> None:
    """Each stage's config.yaml is the identity its directory name is the hash of."""
    from stopover.config import stable_hash

    for h, d in stage_dirs(run_dir).items():
        assert stable_hash(yaml.safe_load((d / "config.yaml").read_text(encoding="utf-8"))) == h


def stage_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
