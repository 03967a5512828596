"""`stopover demo [--lab] [--quick]`: the offline study end to end, ending with report.html."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = ("run the whole study offline on real data (embedded encoder, real tasks and languages; --lab: the "
        "typology lab) and write report.html")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lab", action="store_true",
                        help="the typology lab (synthetic languages with controlled typology) instead of real data")
    parser.add_argument("--quick", action="store_true", help="a smaller version (fewer cells or examples)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the demo config, "
                        "e.g. output_dir=/tmp/runs seeds=[0]")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from stopover.demo import run_demo
    from stopover.progress import make_progress, quiet_libraries
    from stopover.summary import print_summary

    quiet_libraries()
    console = Console(stderr=True)
    with make_progress(console) as progress:
        run_dir, report, seconds, trained = run_demo(quick=args.quick, lab=args.lab, overrides=args.overrides, progress=progress,
                                            log=lambda m: progress.console.log(m))
    print_summary(run_dir)
    out = Console()
    try:
        from stopover.analysis import analyze

        out.print(analyze(run_dir).summary)
    except Exception as err:  # the report exists; a summary failure must not hide it
        out.print(f"(summary unavailable: {err})")
    out.print(f"{trained} stage(s) run, the rest re-used")
    out.print(f"demo finished in {seconds / 60:.1f} min; report: {report}")
    return 0
