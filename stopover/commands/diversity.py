"""`stopover diversity`: the linguistic diversity profile of English datasets.

Profiles each task's English training split (`stopover.diversity.profile_task`,
cached), prints measures x tasks with the composite score, and writes
`diversity.csv` (one row per task) and `diversity.png` (composite and
per-measure z-scores as bars) into `--out`.
"""

from __future__ import annotations

import argparse

NAME = "diversity"
HELP = "linguistic diversity (lexical, syntactic, semantic) of English datasets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tasks", nargs="+", metavar="TASK", help="task names (see `stopover tasks`)")
    parser.add_argument("--sample", type=int, default=2000, help="texts sampled per task (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--split", default="train", help="split to profile (default train)")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="local task files instead of the Hub: DIR/<task>/<language>/<split>.<jsonl|tsv|csv|"
                             "parquet> (as a run config's data_dir), or DIR/<language>/<split>.* for one task")
    parser.add_argument("--model", default=None, metavar="SOURCE",
                        help="sentence encoder for the semantic measures (default: the embedded "
                             "multilingual-e5-small; a Hub id or model directory; 'none' skips them)")
    parser.add_argument("--out", default="diversity", help="output directory (default ./diversity)")


def run(args: argparse.Namespace) -> int:
    import csv
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from stopover.diversity import composite, profile_task, zscores
    from stopover.errors import ConfigError

    if args.sample < 1:
        raise ConfigError(f"--sample must be >= 1, got {args.sample}")
    tasks = list(dict.fromkeys(args.tasks))
    console = Console()
    profiles = {}
    for name in tasks:
        data_dir = None
        if args.data_dir:
            root = Path(args.data_dir)
            if not root.is_dir():
                raise ConfigError(f"--data-dir {root} is not a directory")
            data_dir = root / name if (root / name).is_dir() else root
        with console.status(f"profiling {name} ..."):
            profiles[name] = profile_task(name, data_dir=data_dir, model_source=args.model,
                                          sample=args.sample, seed=args.seed, split=args.split)
    values = {t: p["measures"] for t, p in profiles.items()}
    direction: dict[str, bool] = {}
    for p in profiles.values():
        direction.update(p.get("directions", {}))
    comp = composite(values, higher_is_more_diverse=direction)
    z = zscores(values, higher_is_more_diverse=direction)
    measures = list(dict.fromkeys(m for v in values.values() for m in v))

    first = next(iter(profiles.values()))
    table = Table(title=f"Diversity of English {args.split} sets ({first['n_sample']} texts sampled, seed {args.seed})",
                  caption=f"tagger: {first.get('tagger') or '-'}; encoder: {first.get('model') or '-'}; "
                          "↑ higher = more diverse, ↓ higher = less diverse")
    table.add_column("measure")
    table.add_column("", justify="center")
    for t in tasks:
        table.add_column(t, justify="right")
    for m in measures:
        table.add_row(m, "↑" if direction.get(m, True) else "↓",
                      *(f"{values[t][m]:.4g}" if m in values[t] else "-" for t in tasks))
    table.add_row("[bold]composite (mean z)[/bold]", "↑", *(f"[bold]{comp[t]:+.2f}[/bold]" for t in tasks),
                  end_section=True)
    table.add_row("examples in split", "", *(str(profiles[t]["n_examples"]) for t in tasks))
    console.print(table)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "diversity.csv"
    meta = ["format", "n_examples", "n_sample", "seed", "split", "tagger", "model", "source", "revision"]
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["task", *measures, "composite", *meta])
        for t in tasks:
            writer.writerow([t, *(values[t].get(m, "") for m in measures), comp[t],
                             *(profiles[t].get(k, "") for k in meta)])
    png_path = out / "diversity.png"
    _plot(png_path, tasks, comp, z)
    console.print(f"wrote {csv_path} and {png_path}")
    return 0


def _plot(path, tasks: list[str], comp: dict[str, float], z: dict[str, dict[str, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    measures = list(dict.fromkeys(m for t in tasks for m in z[t]))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(6 + 0.4 * len(tasks) * max(1, len(measures)) / 4, 4.5),
                                   gridspec_kw={"width_ratios": [1, 2.5]})
    x = np.arange(len(tasks))
    ax1.bar(x, [comp[t] for t in tasks], color="tab:blue")
    ax1.axhline(0, color="black", linewidth=0.8)
    ax1.set_xticks(x, tasks, rotation=45, ha="right")
    ax1.set_ylabel("composite diversity (mean z)")
    ax1.set_title("composite")
    if measures:
        width = 0.8 / len(tasks)
        xm = np.arange(len(measures))
        for i, t in enumerate(tasks):
            ax2.bar(xm + (i - (len(tasks) - 1) / 2) * width, [z[t].get(m, 0.0) for m in measures], width, label=t)
        ax2.set_xticks(xm, measures, rotation=60, ha="right", fontsize=8)
        ax2.legend(fontsize=8)
    ax2.axhline(0, color="black", linewidth=0.8)
    ax2.set_ylabel("z-score (higher = more diverse)")
    ax2.set_title("per measure")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
