"""Per-example predictions of evaluation stages: the records, their files, and re-scoring.

This module owns the predictions files of a run: every evaluation stage keeps,
per task and language, one JSON object per evaluated example in
`stages/<hash>/predictions/<task>/<language>.jsonl` (example id, gold,
prediction and the inputs of the score; the fields per format are listed in
docs/results.md). A format builds the records (`fmt.records`) and recomputes
its metrics from them alone (`fmt.score_records`), so a stage's scores can be
checked, or re-computed under a fixed metric, with no model: `rescore_stage`
here, `stopover rescore RUN` on the command line.

`Predictions` is the list a format's `predict` returns: a plain list of one
prediction per example (every existing caller keeps working) that may carry
side data for the records (class probabilities, answer scores, the retrieval
layer used) in its `side` dict.

Torch-free: reading, writing and re-scoring never load a model.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stopover.errors import DataError
from stopover.store import atomic_write_text

PREDICTIONS_DIR = "predictions"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]*$")


class Predictions(list):
    """One prediction per example, in example order, plus optional side data for the records.

    `side` maps a name to a list aligned with the predictions (e.g.
    "probabilities") or to one value for the whole set (e.g. "layer").
    """

    def __init__(self, items: Iterable[Any] = (), **side: Any) -> None:
        super().__init__(items)
        self.side: dict[str, Any] = dict(side)


def side(predictions: Any, name: str) -> Any:
    """Side data `name` attached by `predict`, or None (plain lists have none)."""
    return getattr(predictions, "side", {}).get(name)


def finite_or_none(value: Any) -> float | None:
    """A float for JSON: None for None, NaN and infinities (JSON has no such numbers)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def label_records(task: Any, examples: list[dict[str, Any]], predictions: list[Any]) -> list[dict[str, Any]]:
    """Records of a one-label-per-example format (classification, multiple choice)."""
    if len(predictions) != len(examples):
        raise DataError(f"task {task.name!r}: {len(predictions)} predictions for {len(examples)} examples; "
                        "predict one label per example")
    probabilities = side(predictions, "probabilities")
    names = tuple(task.labels)

    def name(index: int) -> Any:  # the label name; an index the task has no name for stays an index
        return names[index] if 0 <= index < len(names) else index

    out = []
    for i, (ex, pred) in enumerate(zip(examples, predictions)):
        gold, pred = int(ex["label"]), int(pred)
        record = {"id": str(ex.get("id") or i), "gold": name(gold), "prediction": name(pred),
                  "gold_label": gold, "label": pred}
        if probabilities is not None:
            record["probabilities"] = [float(p) for p in probabilities[i]]
        out.append(record)
    return out


# ------------------------------------------------------------------ files


def _check_name(what: str, name: str) -> str:
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name:
        raise DataError(f"predictions: {what} {name!r} cannot name a file; use letters, digits, '_', '-', "
                        "'+' and '.' only")
    return name


def predictions_path(stage_dir: str | Path, task_name: str, language: str) -> Path:
    """`<stage_dir>/predictions/<task>/<language>.jsonl`."""
    return (Path(stage_dir) / PREDICTIONS_DIR / _check_name("task name", task_name)
            / f"{_check_name('language', language)}.jsonl")


def write_predictions(stage_dir: str | Path, task_name: str, language: str,
                      records: list[dict[str, Any]]) -> Path:
    """Write one language's records atomically (temp file + rename); returns the file's path.

    Readers see the old file or the whole new one, never a part; the file gets
    the mode a plain `open()` would give it under the process's umask.
    """
    path = predictions_path(stage_dir, task_name, language)
    lines = []
    for n, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(f"predictions for {task_name}/{language}: record {n} is a "
                            f"{type(record).__name__}, not a dict; a format's records() returns dicts")
        try:
            lines.append(json.dumps(record, ensure_ascii=False, sort_keys=True, allow_nan=False))
        except (TypeError, ValueError) as err:
            raise DataError(f"predictions for {task_name}/{language}: record {n} is not JSON ({err}); "
                            "records hold str, int, float, bool, None, lists and dicts only") from None
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path


def read_predictions(stage_dir: str | Path, task_name: str, language: str) -> list[dict[str, Any]]:
    """The records of one task and language of an evaluation stage."""
    path = predictions_path(stage_dir, task_name, language)
    if not path.exists():
        raise DataError(f"{path}: no predictions file; the stage was evaluated before stopover kept "
                        "predictions, or not at all (delete the stage directory and run again)")
    records = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"{path}:{i}: not valid JSON; a predictions file holds one object per line") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{i}: a {type(record).__name__}, not an object")
        records.append(record)
    return records


def stage_predictions(stage_dir: str | Path) -> list[tuple[str, str]]:
    """(task, language) of every predictions file of a stage, sorted."""
    root = Path(stage_dir) / PREDICTIONS_DIR
    if not root.is_dir():
        return []
    return sorted((task_dir.name, f.name[:-len(".jsonl")])
                  for task_dir in root.iterdir() if task_dir.is_dir()
                  for f in task_dir.iterdir() if f.name.endswith(".jsonl") and not f.name.startswith("."))


# ------------------------------------------------------------------ scoring


def score_records(task: Any, records: list[dict[str, Any]], language: str) -> dict[str, float]:
    """The metrics of `task` recomputed from its records alone (no model, no data files)."""
    from stopover.formats import get_format

    fmt = get_format(task.format)
    if not records:
        raise DataError(f"task {task.name!r} language {language!r}: no prediction records to score")
    return fmt.score_records(task, records, language)


def rescore_stage(stage_dir: str | Path) -> dict[tuple[str, str], dict[str, float]]:
    """{(task, language): metrics} recomputed from every predictions file of one stage."""
    from stopover.tasks import get_task

    out: dict[tuple[str, str], dict[str, float]] = {}
    for task_name, language in stage_predictions(stage_dir):
        task = get_task(task_name)
        records = read_predictions(stage_dir, task_name, language)
        try:
            out[(task_name, language)] = score_records(task, records, language)
        except (KeyError, TypeError, AttributeError) as err:
            # a hand-edited or foreign file: say which, rather than a traceback from a format
            field = f"field {err}" if isinstance(err, KeyError) else f"a value ({err})"
            raise DataError(f"{predictions_path(stage_dir, task_name, language)}: a record lacks or has a bad "
                            f"{field} for a {task.format} task; see docs/results.md for the record fields") from None
    return out


def agrees(recorded: float, recomputed: float) -> bool:
    """Equal up to float noise: both sides come from the same arithmetic on the same records."""
    return math.isclose(recorded, recomputed, rel_tol=1e-9, abs_tol=1e-9)


def rescore_run(run_dir: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Re-score every evaluation stage of a run and compare with its results.jsonl.

    Returns (rows, problems): one row per (stage, task, language, metric) with
    the recorded and the recomputed value, and one line per disagreement: a
    value that differs, a metric on one side only, an `eval` result with no
    predictions file.
    """
    from stopover.store import DONE_MARKER, RESULTS_FILE, STAGES_DIR, read_results

    run_dir = Path(run_dir)
    results = read_results(run_dir) if (run_dir / RESULTS_FILE).exists() else []
    recorded: dict[tuple[str, str, str, str], set[float]] = {}
    for r in results:
        if r.stage == "eval":
            recorded.setdefault((r.stage_hash, r.task, r.language, r.metric), set()).add(float(r.value))
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    rescored: set[tuple[str, str, str]] = set()
    stages = run_dir / STAGES_DIR
    # finished stages only: an interrupted one may hold some languages and no rows yet
    done = sorted(p for p in stages.iterdir() if (p / DONE_MARKER).exists()) if stages.is_dir() else []
    for stage_dir in done:
        for (task_name, language), metrics in rescore_stage(stage_dir).items():
            rescored.add((stage_dir.name, task_name, language))
            names = sorted(set(metrics) | {m for (h, t, lang, m) in recorded
                                           if (h, t, lang) == (stage_dir.name, task_name, language)})
            for metric in names:
                values = recorded.get((stage_dir.name, task_name, language, metric), set())
                new = metrics.get(metric)
                if new is None:
                    status = "not recomputed"
                elif not values:
                    status = "no result row"
                elif all(agrees(v, new) for v in values):
                    status = "ok"
                else:
                    status = "differs"
                rows.append({"stage": stage_dir.name, "task": task_name, "language": language, "metric": metric,
                             "recorded": sorted(values), "rescored": new, "status": status})
                if status != "ok":
                    problems.append(f"{stage_dir.name} {task_name}/{language} {metric}: {status} "
                                    f"(results.jsonl {sorted(values) or '-'}, rescored {new})")
    for (stage_hash, task_name, language, metric) in sorted(recorded):
        if (stage_hash, task_name, language) not in rescored:
            problems.append(f"{stage_hash} {task_name}/{language} {metric}: no predictions file to re-score")
    return rows, problems
