"""`stopover report RUN_DIR`: write report.html, tables, plots and analysis CSVs into the run."""

from __future__ import annotations

import argparse

NAME = "report"
HELP = "write report.html, tables (md/tex/csv), plots and statistics into a run directory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from stopover.commands.analyze import add_analysis_arguments

    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory holding results.jsonl")
    add_analysis_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from stopover.commands.analyze import analysis_from_args
    from stopover.report import write_report

    path = write_report(args.run_dir, analysis_from_args(args))
    print(path)
    return 0
