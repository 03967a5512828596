"""Grid cost: stages and examples stopover runs for an S x T grid vs a naive per-cell pipeline,
and the wall cost of re-running a finished grid.

The grid: 3 strategies (none, single, all over a pool of 2 lab intermediate
tasks: 4 intermediate sets) x 3 targets of three formats (lab-nli
classification, lab-pos tagging, lab-qa span QA) x seeds, the tiny model
(`tiny:64x2`, the unit tests' size), tiny typology-lab data, evaluation in
English and 3 lab languages (German-, Japanese- and Turkish-like).

- Stopover: the distinct stages `stopover.plan.plan_grid` lists (an
  intermediate stage is shared by every target of its set and seed), checked
  against the stages `run_grid` actually ran.
- Naive per-cell pipeline: every cell trains its own intermediate stage (if
  any) and target and evaluates, sharing nothing. It is *counted* from the
  same plan (each stage's examples x the cells that use it), not run.
- Re-run: `run_grid` again on the finished run directory, in-process (what
  stopover itself spends) and as `python -m stopover run` in a new process
  (what a user waits for, interpreter and library imports included).

    python benchmarks/bench_grid.py [--quick]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C
from _common import Figure

BENCH = "grid"
TARGETS = ("lab-nli", "lab-pos", "lab-qa")
LANGUAGES = ("eng", "lab-deu", "lab-jpn", "lab-tur")


def grid_config(out: Path, quick: bool):
    from stopover.config import RunConfig, from_dict

    train = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 64, "max_dev_examples": 16}
    languages = {"languages": list(LANGUAGES)}
    return from_dict(RunConfig, {
        "name": "bench-grid", "model": "tiny:64x2", "output_dir": str(out),
        "tasks": {t: languages for t in TARGETS},
        "pool": ["lab-int-narrow-nli", "lab-int-small-nli"],
        "strategies": ["none", "single", "all"],
        "targets": list(TARGETS),
        "seeds": [0] if quick else [0, 1],
        "lab": {"seed": 0, "train": 48 if quick else 96, "dev": 16, "test": 16, "variants": list(LANGUAGES[1:])},
        "intermediate": train, "target": train,
        "evaluation": {"batch_size": 64, "max_length": 64},
    })


def run(quick: bool = False) -> list[Figure]:
    from stopover.grid import run_grid
    from stopover.plan import plan_grid

    C.quiet_transformers()
    figures: list[Figure] = []
    with C.fresh_cache(link_embedded=False), tempfile.TemporaryDirectory(prefix="bench-grid-") as tmp:
        cfg = grid_config(Path(tmp) / "runs", quick)
        plan = plan_grid(cfg)
        n_cells = len(cfg.targets) * len(cfg.seeds) * 4  # 4 intermediate sets: none, 2 x single, all
        kinds = ("intermediate", "target", "eval")
        ours = {k: [s for s in plan if s.kind == k] for k in kinds}
        stages_ours = {k: len(v) for k, v in ours.items()}
        stages_naive = {k: sum(s.cells for s in v) for k, v in ours.items()}
        ex_ours = {k: sum(s.examples or 0 for s in v) for k, v in ours.items()}
        ex_naive = {k: sum((s.examples or 0) * s.cells for s in v) for k, v in ours.items()}
        print(f"  {len(cfg.strategies)} strategies x {len(cfg.targets)} targets x {len(cfg.seeds)} seed(s) "
              f"= {n_cells} cells over 4 intermediate sets", flush=True)

        start = time.perf_counter()
        run_dir, pipe = run_grid(cfg)
        first = time.perf_counter() - start
        trained_first = len(pipe.trained)
        start = time.perf_counter()
        _, pipe2 = run_grid(cfg)
        again = time.perf_counter() - start
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(C.ROOT), os.environ.get("PYTHONPATH", "")])}
        # As on a user's machine, Python caches compiled bytecode (some sandboxes turn that off
        # with PYTHONDONTWRITEBYTECODE, making every command recompile stopover's sources):
        # a throwaway cache directory, filled by a first call, then the timed one.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        cli_again = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "stopover", "run", str(run_dir / "config.yaml")],
                                  cwd=tmp, env=env, capture_output=True, text=True)
            cli_again = min(cli_again, time.perf_counter() - start)
            if proc.returncode != 0:
                raise RuntimeError(f"stopover run (re-run) failed: {proc.stderr.strip().splitlines()[-1:]}")
        # the CLI says "0 stage(s) run, the rest re-used; results in <dir>/results.jsonl" (maybe wrapped)
        said = [line.strip() for line in proc.stdout.splitlines() if "stage(s) run" in line]
        cli_note = said[-1].split(";")[0] if said else ""

    planned = sum(stages_ours.values())
    figures.append(Figure(BENCH, "cells", n_cells, "", note=f"{cfg.strategies} x {cfg.targets} x seeds {cfg.seeds}"))
    for k in kinds:
        figures.append(Figure(BENCH, f"{k} stages: stopover vs naive", stages_ours[k], "",
                              display=f"{stages_ours[k]} vs {stages_naive[k]}"))
        figures.append(Figure(BENCH, f"{k} examples: stopover vs naive", ex_ours[k], "ex",
                              display=f"{ex_ours[k]:,} vs {ex_naive[k]:,}",
                              note="" if k == "eval" else "training examples x epochs"))
    total_ours, total_naive = sum(ex_ours.values()), sum(ex_naive.values())
    figures.append(Figure(BENCH, "examples processed, naive / stopover", total_naive / total_ours, "x",
                          note=f"{total_naive} vs {total_ours} (train x epochs + test)"))
    train_ours = ex_ours["intermediate"] + ex_ours["target"]
    train_naive = ex_naive["intermediate"] + ex_naive["target"]
    figures.append(Figure(BENCH, "training examples, naive / stopover", train_naive / train_ours, "x"))
    figures.append(Figure(BENCH, "stages run by run_grid == planned", float(trained_first), "",
                          "== planned", trained_first == planned, note=f"planned {planned}"))
    figures.append(Figure(BENCH, "first run wall", first, "s"))
    figures.append(Figure(BENCH, "re-run: stages run", float(len(pipe2.trained)), "", "== 0",
                          len(pipe2.trained) == 0))
    pct = 100.0 * again / first
    tgt, met = C.target(pct, "<", 5.0, "%")
    figures.append(Figure(BENCH, "re-run wall / first run (in-process)", pct, "%", tgt, met,
                          note=f"{again:.2f} s"))
    pct_cli = 100.0 * cli_again / first
    tgt, met = C.target(pct_cli, "<", 5.0, "%")
    figures.append(Figure(BENCH, "re-run wall / first run (stopover run CLI)", pct_cli, "%", tgt, met,
                          note=f"{cli_again:.2f} s (best of 2, bytecode cached), mostly interpreter start and imports "
                               f"({cli_note})"))
    return figures


def main() -> None:
    C.bench_main(__doc__, "grid cost", run)


if __name__ == "__main__":
    main()
