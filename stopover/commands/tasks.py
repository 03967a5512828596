"""`stopover tasks`: every registered task with its format, metric, languages and sources."""

from __future__ import annotations

import argparse

NAME = "tasks"
HELP = "list every task: format, metric, languages, source"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="show only these tasks")
    parser.add_argument("--format", choices=("table", "csv"), default="table")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from stopover.tasks import all_tasks, get_task

    tasks = [get_task(n) for n in args.names] if args.names else all_tasks()
    rows = []
    for t in tasks:
        source = f"{t.hub.path} ({t.hub.name or 'default'}) @ {t.hub.revision}" if t.hub else "local files"
        if t.train_task:
            source += f"; trains on {t.train_task}"
        langs = ",".join(t.languages)
        shown = langs if args.format == "csv" or len(t.languages) <= 6 else ",".join(t.languages[:6]) + ",..."
        rows.append((t.name, t.role, t.format, t.metric, f"{len(t.languages)}: {shown}", source))
    if args.format == "csv":
        import csv
        import sys

        writer = csv.writer(sys.stdout)
        writer.writerow(["task", "role", "format", "metric", "languages", "source"])
        writer.writerows(rows)
        return 0
    table = Table(title=f"stopover tasks ({len(rows)})")
    for col in ("task", "role", "format", "metric", "languages", "source"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 150)  # piped output: don't fold the table into slivers
    console.print(table)
    return 0
