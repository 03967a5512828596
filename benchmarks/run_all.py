"""Run every stopover benchmark and print one table of figures and ratios.

    python benchmarks/run_all.py [--quick] [--threads N] [--only training,eval,grid,demo,demo-lab,tokenize]

Writes benchmarks/results/latest.md and latest.json (date, CPU model, cores,
load average, torch and transformers versions, every figure). Each benchmark
measures stopover and its baseline side by side in this one run; see
benchmarks/README.md for what is compared and how.
"""

from __future__ import annotations

import argparse
import time
import traceback

import _common as C
import bench_demo
import bench_eval
import bench_grid
import bench_tokenize
import bench_training
from _common import Figure

# Cheapest first, the demo (the longest) last.
BENCHES = {
    "tokenize": ("tokenisation cache", bench_tokenize.run),
    "grid": ("grid cost", bench_grid.run),
    "eval": ("zero-shot evaluation throughput", bench_eval.run),
    "training": ("training throughput", bench_training.run),
    "demo": ("demo (real data, the README's main command)", bench_demo.run),
    "demo-lab": ("demo (typology lab)", lambda quick: bench_demo.run(quick, lab=True)),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    C.add_common_arguments(parser)
    parser.add_argument("--only", default=",".join(BENCHES),
                        help=f"comma-separated subset of: {', '.join(BENCHES)}")
    args = parser.parse_args()
    chosen = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHES)}")

    C.apply_threads(args.threads)
    info = C.machine_info()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    start = time.perf_counter()
    figures: list[Figure] = []
    failed = []
    for name in chosen:
        title, fn = BENCHES[name]
        C.print_header(title)
        t0 = time.perf_counter()
        try:
            figs = fn(args.quick)
        except Exception as err:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
            figs = [Figure(title, "FAILED", float("nan"), "", display=f"{type(err).__name__}: {err}"[:120])]
        C.print_figures(figs)
        print(f"({time.perf_counter() - t0:.0f} s)", flush=True)
        figures.extend(figs)
    seconds = time.perf_counter() - start
    info["load_average_1m_end"] = C.machine_info()["load_average_1m"]
    C.print_header(f"all benchmarks ({'quick' if args.quick else 'full'}, {seconds / 60:.1f} min)")
    C.print_figures(figures)
    md, js = C.write_results(figures, info, quick=args.quick, seconds=seconds)
    missed = [f for f in figures if f.met is False]
    print(f"\n{len(missed)} target(s) not met; written {md} and {js}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
