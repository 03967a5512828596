"""The end-of-run table: primary test score per target x intermediate set x language."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import mean

from rich.console import Console
from rich.table import Table

from stopover.store import read_results


def summary_table(run_dir: Path) -> Table:
    rows = [r for r in read_results(run_dir) if r.stage == "eval" and r.primary]
    by_cell: dict[tuple[str, str, str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    languages: list[str] = []
    for r in rows:
        by_cell[(r.task, r.metric, r.strategy, r.intermediate)][r.language].append(r.value)
        if r.language not in languages:
            languages.append(r.language)
    languages.sort(key=lambda l: (l != "eng", l))
    table = Table(title=f"zero-shot test scores ({run_dir.name}; mean over seeds)")
    for col in ("target", "metric", "strategy", "intermediate", *languages, "avg"):
        table.add_column(col, justify="right" if col in languages or col == "avg" else "left")
    for (task, metric, strategy, inter), per_lang in sorted(by_cell.items()):
        values = {l: mean(v) for l, v in per_lang.items()}
        cells = [f"{values[l]:.1f}" if l in values else "-" for l in languages]
        table.add_row(task, metric, strategy, inter, *cells, f"{mean(values.values()):.1f}")
    return table


def print_summary(run_dir: Path) -> None:
    Console().print(summary_table(run_dir))
