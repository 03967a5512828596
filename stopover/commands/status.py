"""`stopover status RUN_DIR`: every stage the run's saved config plans - strategy, intermediate set,
target, seed - and whether it is done, running, pending or failed (with the failure's reason).
"""

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

    from stopover.errors import DataError, StopoverError
    from stopover.store import stage_status

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run directory")
    console = Console()
    try:
        from stopover.plan import planned_status

        rows = planned_status(run_dir)
        columns = ("stage", "kind", "strategy", "intermediate", "target", "seed", "state", "reason")
    except (StopoverError, OSError) as err:  # no readable config or data: what the directories say
        console.print(f"(the saved config cannot be expanded: {err}; listing stage directories only)")
        rows = [{**r, "target": r["task"]} for r in stage_status(run_dir)]
        columns = ("stage", "kind", "target", "seed", "state", "reason")
    table = Table(title=f"status: {run_dir}")
    for col in columns:
        table.add_column(col, overflow="fold")
    colours = {"done": "green", "running": "cyan", "failed": "red", "pending": "yellow"}
    for r in rows:
        table.add_row(*(f"[{colours[r['state']]}]{r['state']}[/]" if c == "state" else str(r[c]) for c in columns))
    console.print(table)
    counts = Counter(r["state"] for r in rows)
    console.print(", ".join(f"{counts[s]} {s}" for s in ("done", "running", "pending", "failed")))
    return 1 if counts["failed"] else 0
