"""`stopover status RUN_DIR`: done / running / pending / failed per stage, with failure reasons."""

from __future__ import annotations

import argparse

NAME = "status"
HELP = "show which stages of a run are done, running, pending or failed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir")


def run(args: argparse.Namespace) -> int:
    from collections import Counter
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from stopover.errors import DataError
    from stopover.store import stage_status

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run directory")
    rows = stage_status(run_dir)
    table = Table(title=f"status: {run_dir}")
    for col in ("stage", "kind", "task", "seed", "state", "reason"):
        table.add_column(col, overflow="fold")
    colours = {"done": "green", "running": "cyan", "failed": "red", "pending": "yellow"}
    for r in rows:
        table.add_row(r["stage"], r["kind"], r["task"], str(r["seed"]),
                      f"[{colours[r['state']]}]{r['state']}[/]", r["reason"])
    console = Console()
    console.print(table)
    counts = Counter(r["state"] for r in rows)
    console.print(", ".join(f"{counts[s]} {s}" for s in ("done", "running", "pending", "failed")))
    return 1 if counts["failed"] else 0
