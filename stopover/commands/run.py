"""`stopover run CONFIG [key=value ...]`: run a grid and print a per-language table."""

from __future__ import annotations

import argparse

NAME = "run"
HELP = "run a grid config (intermediate -> target -> zero-shot evaluation)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML grid config, e.g. configs/starter.yaml (offline, about a minute on a CPU)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. target.epochs=2 seeds=[0,1]")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from stopover.config import load_config
    from stopover.grid import run_grid
    from stopover.progress import make_progress, quiet_libraries
    from stopover.summary import print_summary

    cfg = load_config(args.config, args.overrides)
    quiet_libraries()
    console = Console(stderr=True)
    with make_progress(console) as progress:
        run_dir, pipe = run_grid(cfg, progress=progress, log=lambda m: progress.console.log(m))
    trained = len(pipe.trained)
    print_summary(run_dir)
    Console().print(f"{trained} stage(s) run, the rest re-used; results in {run_dir}/results.jsonl")
    return 0
