"""Export a run's saved predictions in the layout of the XTREME benchmark's prediction files.

This module owns `stopover export RUN --format xtreme`: it reads the
predictions files of every finished evaluation stage (stopover.predictions)
and writes, per grid cell (one model: strategy, intermediate set, seed),

    <out>/<cell>/predictions/<task>/test-<lang>.<suffix>
    <out>/<cell>/labels/<task>/test-<lang>.<suffix>

the layout google-research/xtreme's `evaluate.py` walks
(`--prediction_folder <out>/<cell>/predictions --label_folder <out>/<cell>/labels`):
task folders under XTREME's names (xnli, pawsx, panx, udpos, bucc2018,
tatoeba, xquad, mlqa, tydiqa), files named by the languages' two-letter codes,
each in the format its reader expects: one label per line (classification,
Tatoeba indices), CoNLL-style tags with a blank line after each sentence
(tagging), `source<TAB>target` pairs (BUCC), {question id: answer} JSON with
a SQuAD-format label file (QA, also what `third_party/evaluate_squad.py` and
`evaluate_mlqa.py` read), one {"label": i} per line (multiple choice, as
XTREME-R's XCOPA). Each format writes its own files (`fmt.xtreme_files`);
tasks outside XTREME keep their stopover name and language code. The label
files are the gold answers stopover scored, so the official scripts
reproduce stopover's figures on them.

`manifest.json` at the top maps each cell to its stages. Torch-free.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from stopover.errors import DataError, LanguageError

#: stopover task -> (XTREME's task folder, labels as names (True) or as indices (False))
XTREME_TASKS: dict[str, tuple[str, bool]] = {
    "xnli": ("xnli", True),  # entailment / neutral / contradiction
    "pawsx": ("pawsx", False),  # XTREME's PAW-X labels are 0 / 1
    "panx": ("panx", True),
    "udpos": ("udpos", True),
    "bucc": ("bucc2018", True),
    "tatoeba": ("tatoeba", True),
    "xquad": ("xquad", True),
    "mlqa": ("mlqa", True),
    "tydiqa": ("tydiqa", True),
}
FORMATS = ("xtreme",)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+\-]+")


@dataclass(frozen=True)
class Exported:
    files: list[Path]  # every file written
    skipped: list[str]  # one line per (stage, task) that has no XTREME layout


def xtreme_language(code: str) -> str:
    """XTREME's file code for a language: its ISO 639-1 code, else the code as it is (lab variants)."""
    from stopover import languages

    try:
        lang = languages.get(code)
    except LanguageError:  # outside the table: a typology-lab variant such as lab-jpn
        return code
    return lang.iso1 or lang.iso3


def _cell_name(strategy: str, intermediate: str, seed: int) -> str:
    return _UNSAFE.sub("_", f"{strategy or 'none'}_{intermediate or 'none'}_seed{seed}")


def stage_cells(run_dir: Path) -> dict[str, list[str]]:
    """Stage hash -> the cells (strategy, intermediate, seed) whose evaluation it is, from results.jsonl."""
    from stopover.store import RESULTS_FILE, read_results

    if not (run_dir / RESULTS_FILE).exists():
        return {}
    cells: dict[str, set[str]] = {}
    for row in read_results(run_dir):
        if row.stage == "eval":
            cells.setdefault(row.stage_hash, set()).add(_cell_name(row.strategy, row.intermediate, row.seed))
    return {h: sorted(c) for h, c in cells.items()}


def export_xtreme(run_dir: str | Path, out_dir: str | Path) -> Exported:
    """Write every finished evaluation stage's predictions (and gold labels) in XTREME's layout."""
    from stopover.formats import get_format
    from stopover.predictions import read_predictions, stage_predictions
    from stopover.store import DONE_MARKER, STAGES_DIR
    from stopover.store import atomic_write_text as atomic_write
    from stopover.tasks import get_task

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    stages = run_dir / STAGES_DIR
    if not stages.is_dir():
        raise DataError(f"{run_dir}: no stages directory; is this a run directory (runs/<name>)?")
    cells = stage_cells(run_dir)
    files: list[Path] = []
    skipped: list[str] = []
    owner: dict[Path, str] = {}
    manifest: dict[str, dict[str, str]] = {}
    for stage_dir in sorted(p for p in stages.iterdir() if (p / DONE_MARKER).exists()):
        for task_name, language in stage_predictions(stage_dir):
            task = get_task(task_name)
            fmt = get_format(task.format)
            xtreme_files = getattr(fmt, "xtreme_files", None)  # optional: not in the Format protocol
            if xtreme_files is None:
                skipped.append(f"{stage_dir.name} {task_name}: format {task.format!r} has no XTREME layout")
                continue
            folder, label_names = XTREME_TASKS.get(task_name, (task_name, True))
            written = xtreme_files(task, read_predictions(stage_dir, task_name, language),
                                   label_names=label_names)
            name = f"test-{xtreme_language(language)}.{written['suffix']}"
            for cell in cells.get(stage_dir.name, [f"stage-{stage_dir.name}"]):
                manifest.setdefault(cell, {})[folder] = stage_dir.name
                for kind in ("predictions", "labels"):
                    path = out_dir / cell / kind / folder / name
                    if owner.get(path, stage_dir.name) != stage_dir.name:
                        raise DataError(f"{path}: stages {owner[path]} and {stage_dir.name} both export here; "
                                        "one cell has two evaluations of one task (results.jsonl is "
                                        "inconsistent: check it with `stopover rescore`)")
                    owner[path] = stage_dir.name
                    atomic_write(path, written[kind])
                    files.append(path)
    if files:
        atomic_write(out_dir / "manifest.json", json.dumps(
            {"format": "xtreme", "run": str(run_dir), "cells": manifest}, indent=2, sort_keys=True) + "\n")
    return Exported(files, skipped)


def export(run_dir: str | Path, fmt: str, out_dir: str | Path | None = None) -> tuple[Path, Exported]:
    """Export in `fmt` (only "xtreme") to `out_dir` (default <run>/export/<fmt>)."""
    if fmt not in FORMATS:
        raise DataError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "export" / fmt
    return out, export_xtreme(run_dir, out)
