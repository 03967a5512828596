"""`stopover tasks`: every registered task with its format, metric, languages, sources and version.

The `local` column names the task's own local-file readers (by file suffix) and
whether it knows a release layout of its own (`locate`); every task also reads
the flat tables `<language>/<split>.{jsonl,tsv,csv,parquet}` (docs/tasks.md).
"""

from __future__ import annotations

import argparse

NAME = "tasks"
HELP = "list every task: format, metric, languages, source, version, local readers"
COLUMNS = ("task", "role", "format", "metric", "languages", "source", "version", "local")


def local_readers(task) -> str:
    """The task's extra local readers by suffix, and `release layout` if it locates its own files."""
    parts = list(task.readers)
    if len(parts) > 6:  # Tatoeba reads one suffix per language
        parts = [f"{len(parts)} suffixes"]
    if task.locate is not None:
        parts.append("release layout")
    return ", ".join(parts)


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
        revision = t.hub.revision if t.hub else ""
        if args.format != "csv" and len(revision) == 40:
            revision = revision[:12]  # the table stays readable; the CSV keeps the full commit
        source = f"{t.hub.path} ({t.hub.name or 'default'}) @ {revision}" if t.hub else "local files"
        if t.train_task:
            source += f"; trains on {t.train_task}"
        langs = ",".join(t.languages)
        shown = langs if args.format == "csv" or len(t.languages) <= 6 else ",".join(t.languages[:6]) + ",..."
        rows.append((t.name, t.role, t.format, t.metric, f"{len(t.languages)}: {shown}", source,
                     str(t.version), local_readers(t)))
    if args.format == "csv":
        import csv
        import sys

        writer = csv.writer(sys.stdout)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        return 0
    table = Table(title=f"stopover tasks ({len(rows)})")
    for col in COLUMNS:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 150)  # piped output: don't fold the table into slivers
    console.print(table)
    return 0
