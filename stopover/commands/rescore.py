"""`stopover rescore RUN`: recompute every evaluation stage's metrics from its saved predictions.

No model is loaded: each format re-scores its own records (stopover.predictions).
Any disagreement with results.jsonl is an error, with its count.
"""

from __future__ import annotations

import argparse

NAME = "rescore"
HELP = "recompute evaluation metrics from saved predictions (no model) and check results.jsonl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory (runs/<name>)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from stopover.errors import DataError
    from stopover.predictions import rescore_run

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run directory")
    rows, problems = rescore_run(run_dir)
    if not rows and not problems:
        raise DataError(f"{run_dir}: no finished evaluation stage has predictions to re-score")
    table = Table(title=f"rescore: {run_dir}")
    for col in ("stage", "task", "language", "metric", "results.jsonl", "rescored", "status"):
        table.add_column(col, overflow="fold")
    colours = {"ok": "green"}
    for r in rows:
        recorded = ", ".join(f"{v:.4f}" for v in r["recorded"]) or "-"
        rescored = "-" if r["rescored"] is None else f"{r['rescored']:.4f}"
        table.add_row(r["stage"][:12], r["task"], r["language"], r["metric"], recorded, rescored,
                      f"[{colours.get(r['status'], 'red')}]{r['status']}[/]")
    console = Console()
    console.print(table)
    if problems:
        for line in problems[:20]:
            console.print(f"[red]{line}[/]")
        raise DataError(f"{run_dir}: {len(problems)} disagreement(s) between saved predictions and "
                        f"results.jsonl (first: {problems[0]})")
    console.print(f"{len(rows)} values re-scored from predictions; all agree with results.jsonl")
    return 0
