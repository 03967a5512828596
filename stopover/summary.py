"""The end-of-run tables: per target task, the primary test score per language x strategy.

One table per target task so that it fits a terminal: a row per language
(English first, then by syntactic distance from English where the run has a
typology table), a column per selection strategy (the mean over seeds; for
random strategies also over their draws), and an average row. The full
per-intermediate-set tables are in the report's tables/ directory.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from statistics import mean

from rich.console import Console
from rich.table import Table

from stopover.store import read_results

_STRATEGY_ORDER = ("none", "single", "diversity", "random", "all", "oracle")


def _strategy_key(strategy: str) -> tuple[int, str]:
    rank = next((i for i, prefix in enumerate(_STRATEGY_ORDER) if strategy.startswith(prefix)),
                len(_STRATEGY_ORDER))
    return rank, strategy


def syntactic_distances(run_dir: Path) -> dict[str, float]:
    """Language -> syntactic distance from English, from the run's typology.csv (empty if absent)."""
    path = run_dir / "typology.csv"
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as f:
        return {row["language"]: float(row["distance"]) for row in csv.DictReader(f)
                if row.get("kind") == "syntactic" and row.get("distance") not in (None, "")}


def summary_tables(run_dir: Path) -> list[Table]:
    rows = [r for r in read_results(run_dir) if r.stage == "eval" and r.primary and r.split == "test"]
    # (task, metric) -> strategy -> language -> scores (seeds and, for random strategies, draws)
    cells: dict[tuple[str, str], dict[str, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    draws: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        cells[(r.task, r.metric)][r.strategy][r.language].append(r.value)
        draws[r.strategy].add(r.intermediate)
    distance = syntactic_distances(run_dir)
    tables = []
    for (task, metric), by_strategy in sorted(cells.items()):
        strategies = sorted(by_strategy, key=_strategy_key)
        languages = sorted({lang for per_lang in by_strategy.values() for lang in per_lang},
                           key=lambda l: (l != "eng", distance.get(l, float("inf")), l))
        table = Table(title=f"{task}: zero-shot test {metric} ({run_dir.name}; mean over seeds)")
        table.add_column("language")
        if distance:
            table.add_column("syntactic distance", justify="right")
        for s in strategies:
            label = f"{s} (mean of {len(draws[s])})" if len(draws[s]) > 1 else s
            table.add_column(label, justify="right")
        for lang in languages:
            dist = [f"{distance[lang]:.3f}" if lang in distance else "-"] if distance else []
            table.add_row(lang, *dist, *(f"{mean(by_strategy[s][lang]):.1f}" if by_strategy[s].get(lang)
                                          else "-" for s in strategies))
        table.add_section()
        averages = []
        for s in strategies:
            per_lang = [mean(v) for v in by_strategy[s].values() if v]
            averages.append(f"{mean(per_lang):.1f}" if per_lang else "-")
        table.add_row("avg", *([""] if distance else []), *averages)
        tables.append(table)
    return tables


def print_summary(run_dir: Path) -> None:
    console = Console()
    for table in summary_tables(run_dir):
        console.print(table)
