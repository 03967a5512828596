"""`stopover analyze RUN_DIR`: compute the robustness statistics and print the key numbers."""

from __future__ import annotations

import argparse

NAME = "analyze"
HELP = "robustness statistics of a run: slopes, correlations, strategy comparisons, mixed model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared with `stopover report` (see add_analysis_arguments)."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory holding results.jsonl")
    add_analysis_arguments(parser)


def add_analysis_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kinds", default=None,
                        help="comma-separated distance kinds (default: all in typology.csv; first = headline)")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap samples (default 2000)")
    parser.add_argument("--n-perm", type=int, default=10000,
                        help="permutation samples when not enumerated exactly (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of bootstrap and permutations")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level after Holm (default 0.05)")
    parser.add_argument("--ci", type=float, default=0.95, help="confidence level of intervals (default 0.95)")
    parser.add_argument("--split", default="test", help="evaluation split to analyse (default test)")
    parser.add_argument("--model", default=None, help="model to analyse when results hold several")
    parser.add_argument("--min-coverage", type=float, default=0.25,
                        help="leave out distances resting on a smaller share of their features (default 0.25)")
    parser.add_argument("--no-adjust", action="store_true",
                        help="do not adjust set slopes for pretraining size, fertility and script")


def analysis_from_args(args: argparse.Namespace):  # -> stopover.analysis.Analysis
    from stopover.analysis import analyze, validate_options

    # Checked before the run directory is read, so a bad option fails at once, naming itself.
    validate_options(n_boot=args.n_boot, n_perm=args.n_perm, seed=args.seed, alpha=args.alpha, ci=args.ci)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else None
    return analyze(args.run_dir, kinds=kinds, n_boot=args.n_boot, seed=args.seed, n_perm=args.n_perm,
                   alpha=args.alpha, ci=args.ci, split=args.split, model=args.model,
                   adjust=not args.no_adjust, min_coverage=args.min_coverage)


def _num(value: object, digits: int = 1) -> str:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    return "" if v != v else f"{v:.{digits}f}"


def _p(value: object) -> str:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    if v != v:
        return ""
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def print_analysis(analysis) -> None:
    """The key statistics as rich tables: robustness, comparisons, mixed-model interactions, summary."""
    import pandas as pd
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()

    def row(*cells: object) -> list[str]:
        # Condition and term names contain brackets, which rich would read as markup.
        return [escape(str(c)) for c in cells]

    rob = analysis.robustness
    t = Table(title="Slope of score on distance (points per unit distance)")
    for col in ("condition", "task", "kind", "langs", "slope [CI]", "r", "rho", "note"):
        t.add_column(col, justify="left" if col in ("condition", "task", "kind", "note") else "right")
    for _, r in rob[rob["measure"] == "score"].iterrows():
        est = bool(r["estimable"])
        t.add_row(*row(r["condition"], r["task"], r["kind"], r["n_languages"] if est else "",
                       f"{_num(r['slope'])} [{_num(r['slope_lo'])}, {_num(r['slope_hi'])}]" if est else "",
                       _num(r["pearson_r"], 2), _num(r["spearman_rho"], 2), r["note"] or ""))
    console.print(t)
    comp = analysis.comparisons
    if not comp.empty:
        t = Table(title="Slope differences A - B (positive: A falls less steeply)")
        for col in ("A", "B", "task", "kind", "diff [CI]", "p", "p Holm", "p draws", "note"):
            t.add_column(col, justify="left" if col in ("A", "B", "task", "kind", "note") else "right")
        for _, r in comp.iterrows():
            est = bool(r["estimable"])
            t.add_row(*row(r["condition_a"], r["condition_b"], r["task"], r["kind"],
                           f"{_num(r['diff'])} [{_num(r['diff_lo'])}, {_num(r['diff_hi'])}]" if est else "",
                           _p(r["p_perm"]), _p(r["p_holm"]), _p(r["p_draws"]), r["note"] or ""))
        console.print(t)
    mixed = analysis.mixed
    if not mixed.empty:
        t = Table(title="Mixed model: distance x condition interactions")
        for col in ("kind", "term", "estimate [CI]", "p", "status"):
            t.add_column(col, justify="left" if col in ("kind", "term", "status") else "right")
        keep = mixed["term"].astype(str).str.startswith("distance") | (mixed["term"] == "(model)")
        for _, r in mixed[keep].iterrows():
            ok = pd.notna(r["estimate"])
            t.add_row(*row(r["kind"], r["term"],
                           f"{_num(r['estimate'], 2)} [{_num(r['ci_lo'], 2)}, {_num(r['ci_hi'], 2)}]" if ok else "",
                           _p(r["p"]), r["status"]))
        console.print(t)
    for note in analysis.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]")
    console.print()
    console.print(analysis.summary, markup=False, highlight=False)


def run(args: argparse.Namespace) -> int:
    print_analysis(analysis_from_args(args))
    return 0
