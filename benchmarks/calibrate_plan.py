"""Fit `stopover plan`'s time model for this machine from a finished run.

For every stage of the run, the planned sequence positions (`stopover.plan.plan`) and the
wall time it took (its directory's `.lock`, written when the stage starts, to its `DONE`
marker) give, per stage kind, `seconds = overhead + positions / rate` by least squares.
The fitted numbers are what `stopover.plan.MACHINE_TIME` holds for the model the run used.
Stage identities include a digest of stopover's code: the plan is computed under the digest
the run's stages recorded, so a run made before later commits still matches its stages.

    python benchmarks/calibrate_plan.py configs/real-study.yaml [runs/real-study]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def stage_seconds(stage_dir: Path) -> float | None:
    lock, done = stage_dir / ".lock", stage_dir / "DONE"
    if not (lock.exists() and done.exists()):
        return None
    return done.stat().st_mtime - lock.stat().st_mtime


def main(argv: list[str]) -> int:
    import yaml

    import stopover.spec
    from stopover.config import load_config
    from stopover.plan import plan
    from stopover.store import run_dir_for

    cfg = load_config(argv[0])
    run_dir = Path(argv[1]) if len(argv) > 1 else run_dir_for(cfg)
    recorded = next((yaml.safe_load(p.read_text())["code"] for p in sorted((run_dir / "stages").glob("*/config.yaml"))),
                    None)
    if recorded:
        stopover.spec.code_digest = lambda: recorded  # the code that ran the stages
    planned = plan(cfg)
    print(f"run {run_dir}: {len(planned.stages)} planned stages")
    for kind in ("intermediate", "target", "eval"):
        rows = [(s.positions, stage_seconds(run_dir / "stages" / s.hash)) for s in planned.stages
                if s.kind == kind and s.positions is not None]
        rows = [(p, t) for p, t in rows if t is not None]
        if len(rows) < 3:
            print(f"{kind}: {len(rows)} finished stage(s) with a known size; too few to fit")
            continue
        x = np.array([p for p, _ in rows], dtype=float)
        y = np.array([t for _, t in rows], dtype=float)
        # non-negative least squares: neither a stage's fixed cost nor its time per position is negative
        from scipy.optimize import nnls

        (overhead, slope), _ = nnls(np.column_stack([np.ones_like(x), x]), y)
        pred = overhead + slope * x
        r2 = 1 - ((y - pred) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12)
        print(f"{kind}: {len(rows)} stages, {y.sum() / 60:.1f} min in all; overhead {overhead:.1f} s per stage, "
              f"{1 / slope if slope > 0 else float('inf'):,.0f} positions/s (R^2 {r2:.2f}; "
              f"stage times {y.min():.1f}-{y.max():.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
