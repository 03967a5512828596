"""`stopover plan CONFIG`: the expanded grid - distinct stages, which are done, examples to process."""

from __future__ import annotations

import argparse

NAME = "plan"
HELP = "print a grid's distinct stages without running anything"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    parser.add_argument("--stages", action="store_true", help="list every stage, not only the totals")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from stopover.config import load_config
    from stopover.grid import cells, intermediate_sets, plan_grid

    cfg = load_config(args.config, args.overrides)
    stages = plan_grid(cfg)
    console = Console()
    n_cells = len(cells(cfg, intermediate_sets(cfg)))
    table = Table(title=f"plan: {cfg.name} ({n_cells} grid cells, model {cfg.model})")
    for col in ("stage", "distinct", "done", "to run", "examples to process"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for kind in ("intermediate", "target", "eval"):
        group = [s for s in stages if s.kind == kind]
        todo = [s for s in group if not s.done]
        known = [s.examples for s in todo if s.examples is not None]
        unknown = len(todo) - len(known)
        ex = f"{sum(known):,}" + (f" (+{unknown} unknown)" if unknown else "")
        table.add_row(kind, str(len(group)), str(len(group) - len(todo)), str(len(todo)), ex)
    console.print(table)
    if args.stages:
        detail = Table(title="stages")
        for col in ("kind", "hash", "stage", "cells", "done", "examples"):
            detail.add_column(col)
        for s in stages:
            detail.add_row(s.kind, s.hash, s.label, str(s.cells), "yes" if s.done else "no",
                           "?" if s.examples is None else f"{s.examples:,}")
        console.print(detail)
    return 0
