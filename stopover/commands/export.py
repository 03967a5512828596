"""`stopover export RUN --format xtreme [--out DIR]`: saved predictions in XTREME's file layout."""

from __future__ import annotations

import argparse

NAME = "export"
HELP = "write a run's saved predictions in the XTREME benchmark's prediction-file layout"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory (runs/<name>)")
    parser.add_argument("--format", default="xtreme", choices=["xtreme"],
                        help="the layout to write (default: xtreme)")
    parser.add_argument("--out", default=None, help="where to write (default: RUN/export/<format>)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stopover.errors import DataError
    from stopover.export import export

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run directory")
    out, result = export(run_dir, args.format, args.out)
    for line in result.skipped:
        print(f"skipped: {line}")
    if not result.files:
        raise DataError(f"{run_dir}: no finished evaluation stage has a predictions file to export; "
                        "run the grid first (stages evaluated before predictions were kept have none)")
    cells = sorted({p.relative_to(out).parts[0] for p in result.files})
    print(f"wrote {len(result.files)} files for {len(cells)} cell(s) to {out}")
    for cell in cells:
        print(f"  python evaluate.py --prediction_folder {out / cell / 'predictions'} "
              f"--label_folder {out / cell / 'labels'} --output_file {cell}.json")
    return 0
