"""`stopover typology`: each language's distance from English (or another source), by kind.

Prints a table (languages x kinds, sorted by syntactic distance) or CSV, and
writes `typology.csv` (long: language, name, kind, distance, backend, note) and
a heatmap `typology.png` to --out.
"""

from __future__ import annotations

import argparse

NAME = "typology"
HELP = "typological distance of each language from English, by kind (URIEL+ or lang2vec)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--langs", default="xtreme",
                        help="xtreme, xtreme-r, a dataset (xnli, pawsx, ...) or codes such as de,ja,sw "
                             "(default: xtreme)")
    parser.add_argument("--kind", default=None,
                        help="comma-separated kinds (default: syntactic,phonological,inventory,featural,"
                             "genetic,geographic; urielplus also has morphological,script)")
    parser.add_argument("--backend", choices=("urielplus", "lang2vec"), default="urielplus")
    parser.add_argument("--source", default="en", help="the language distances are measured from (default: en)")
    parser.add_argument("--format", choices=("table", "csv"), default="table",
                        help="print a table or wide CSV to stdout (files are written either way)")
    parser.add_argument("--out", default="typology", help="directory for typology.csv and typology.png "
                                                          "(default: ./typology/)")


def _heatmap(wide, source: str, backend: str, path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt
    import numpy as np

    values = wide.to_numpy(dtype=float)
    height = max(3.0, 0.28 * len(wide) + 1.5)
    fig, ax = plt.subplots(figsize=(1.1 * len(wide.columns) + 2.5, height))
    # missing distances are grey, never a colour of the scale
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap=cmap, vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(wide.columns)), list(wide.columns), rotation=45, ha="right")
    ax.set_yticks(range(len(wide)), list(wide.index), fontsize=8)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            text = "n/a" if np.isnan(values[i, j]) else f"{values[i, j]:.2f}"
            colour = "black" if np.isnan(values[i, j]) or values[i, j] > 0.6 else "white"
            ax.text(j, i, text, ha="center", va="center", fontsize=6, color=colour)
    fig.colorbar(image, ax=ax, label="distance")
    ax.set_title(f"Typological distance from {source} ({backend})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings
    from pathlib import Path

    from stopover import languages as langtable
    from stopover import typology
    from stopover.store import atomic_write_text

    source = langtable.get(args.source)
    # The source stays in the table when the set has it (its distances are 0): a reference row.
    targets = langtable.language_set(args.langs)
    kinds = [k.strip() for k in args.kind.split(",") if k.strip()] if args.kind else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", typology.MissingDistanceWarning)  # reported below instead
        long = typology.distances_from(source.iso3, targets, kinds, args.backend)
    names = {code: langtable.get(code).name for code in targets}
    long.insert(1, "name", long["language"].map(names))
    kind_order = list(dict.fromkeys(long["kind"]))
    wide = long.pivot(index="language", columns="kind", values="distance")[kind_order]
    sort_kind = "syntactic" if "syntactic" in kind_order else kind_order[0]
    wide = wide.sort_values(sort_kind, na_position="last")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out / "typology.csv", out / "typology.png"
    atomic_write_text(csv_path, long.to_csv(index=False))
    _heatmap(wide.rename(index=lambda c: f"{c} {names[c]}"), source.name, args.backend, png_path)

    missing = long[long["distance"].isna()]
    if args.format == "csv":
        sys.stdout.write(wide.reset_index().to_csv(index=False, float_format="%.4f"))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Distance from {source.name} ({source.iso3}), {args.backend}, "
                            f"{len(wide)} languages, sorted by {sort_kind}")
        table.add_column("language", no_wrap=True)
        table.add_column("name")
        for kind in kind_order:
            table.add_column(kind, justify="right")
        low = long[long["coverage"] < typology.MIN_COVERAGE]
        flagged = set(zip(low["language"], low["kind"]))
        for code, row in wide.iterrows():
            # A star marks a distance resting on under MIN_COVERAGE of its features: analysis leaves it out.
            cells = ["—" if row[k] != row[k] else f"{row[k]:.4f}{'*' if (code, k) in flagged else ''}"
                     for k in kind_order]
            table.add_row(code, names[code], *cells)
        console = Console()
        if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
            console = Console(width=max(console.width, 30 + 11 * len(kind_order)))
        console.print(table)
        if len(missing):
            console.print(f"— = missing ({len(missing)}): " + "; ".join(missing["note"].head(5))
                          + (" ..." if len(missing) > 5 else ""))
        shown = low[low["distance"].notna()]
        if len(shown):
            console.print(f"* = computed from under {typology.MIN_COVERAGE:.0%} of the kind's features "
                          f"({len(shown)}; coverage column of {csv_path.name}): the analysis excludes these")
        console.print(f"wrote {csv_path} and {png_path}")
    return 0
