"""`stopover demo`: the whole study offline - embedded encoder, typology lab, full grid, report.

Runs the packaged demo config (stopover/configs/demo.yaml, or demo-quick.yaml
with --quick): lab data generation, diversity profiles, selection strategies
(none / diversity top-k / random k-subsets / all), intermediate and target
training, zero-shot evaluation in every lab variant, typology tables, then the
analysis and report.html. A second run re-uses every finished stage.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).parent / "configs"


def demo_config_path(quick: bool) -> Path:
    return CONFIG_DIR / ("demo-quick.yaml" if quick else "demo.yaml")


def run_demo(*, quick: bool = False, overrides: list[str] | None = None, progress: Any = None,
             log: Any = lambda m: None) -> tuple[Path, Path, float, int]:
    """Run the demo grid and write the report; returns (run dir, report path, seconds, stages run)."""
    from stopover.config import load_config
    from stopover.grid import run_grid
    from stopover.report import write_report

    start = time.perf_counter()
    cfg = load_config(demo_config_path(quick), overrides)
    run_dir, pipe = run_grid(cfg, progress=progress, log=log)  # ends by writing the typology tables
    report = write_report(run_dir)
    return run_dir, Path(report), time.perf_counter() - start, len(pipe.trained)
