"""`stopover demo`: the study end to end, offline, ending with report.html.

Two demos, one runner:

- the default, real data (stopover/configs/demo-real.yaml): real English
  intermediate tasks (ANLI, SQuAD, CommonsenseQA, CCG) from the samples in
  ../shared/data, real target languages (UD POS in 33, Tatoeba in 36) placed
  by their URIEL+ distances, the most diverse pair against random pairs -
  a quick version of configs/real-study.yaml that finishes in minutes and
  says in its report what a run this small cannot conclude;
- `--lab`, the typology lab (demo.yaml, or demo-quick.yaml with --quick):
  synthetic languages with controlled typology, generated on the fly.

Both run the whole pipeline: diversity profiles, selection strategies,
intermediate and target training, zero-shot evaluation, typology tables, the
analysis and report.html. A second run re-uses every finished stage.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from stopover.errors import DataError

CONFIG_DIR = Path(__file__).parent / "configs"
REAL_CONFIG = "demo-real.yaml"
SHARED_ENV = "STOPOVER_SHARED_DATA"  # where the real samples are, when not at ../shared/data
REAL_DATA_PREFIX = "../../../shared/data/"  # how demo-real.yaml's paths reach them from CONFIG_DIR
# --quick on real data: the same tasks and languages, fewer cells
REAL_QUICK = ["strategies=[none,diversity-topk,all]", "targets=[udpos]"]


def demo_config_path(quick: bool = False, *, lab: bool = True) -> Path:
    if not lab:
        return CONFIG_DIR / REAL_CONFIG
    return CONFIG_DIR / ("demo-quick.yaml" if quick else "demo.yaml")


def real_data_overrides(config: Path | None = None) -> list[str]:
    """Overrides that point the real demo at $STOPOVER_SHARED_DATA; none when the samples are where
    the config's relative paths lead. A clear error when they are in neither place.
    """
    from stopover.config import load_yaml

    config = config or CONFIG_DIR / REAL_CONFIG
    root = os.environ.get(SHARED_ENV)
    if not root:
        default = (config.parent / REAL_DATA_PREFIX).resolve()
        if not default.is_dir():
            raise DataError(f"the real-data demo reads the samples of ../shared/data, not found at {default}; "
                            f"set {SHARED_ENV}=/path/to/shared/data, or run the typology lab: stopover demo --lab")
        return []
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise DataError(f"${SHARED_ENV}={root}: no such directory (the real data samples: ud/, tatoeba/, ...)")

    def moved(path: str) -> str:
        return str(base / path.removeprefix(REAL_DATA_PREFIX)) if path.startswith(REAL_DATA_PREFIX) else path

    data = load_yaml(config)
    out = [f"tasks.{name}.data_dir={moved(source['data_dir'])}"
           for name, source in (data.get("tasks") or {}).items() if isinstance(source, dict) and "data_dir" in source]
    upos = (data.get("selection") or {}).get("upos_train")
    if upos:
        out.append(f"selection.upos_train=[{','.join(moved(p) for p in upos)}]")
    return out


def run_demo(*, quick: bool = False, lab: bool = False, overrides: list[str] | None = None, progress: Any = None,
             log: Any = lambda m: None) -> tuple[Path, Path, float, int]:
    """Run a demo grid and write the report; returns (run dir, report path, seconds, stages run)."""
    from stopover.config import load_config
    from stopover.grid import run_grid
    from stopover.report import write_report

    start = time.perf_counter()
    path = demo_config_path(quick, lab=lab)
    extra = [] if lab else real_data_overrides(path) + (REAL_QUICK if quick else [])
    cfg = load_config(path, [*extra, *(overrides or [])])
    run_dir, pipe = run_grid(cfg, progress=progress, log=log)  # ends by writing the typology tables
    report = write_report(run_dir)
    return run_dir, Path(report), time.perf_counter() - start, len(pipe.trained)
