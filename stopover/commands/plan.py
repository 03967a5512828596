"""`stopover plan CONFIG`: the expanded grid - distinct stages, which are done, examples to process,
and an estimate of the GPU-hours still to spend (offline: nothing is downloaded or run).
"""

from __future__ import annotations

import argparse

NAME = "plan"
HELP = "print a grid's distinct stages without running anything"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    parser.add_argument("--stages", action="store_true", help="list every stage, not only the totals")
    parser.add_argument("--gpu-throughput", type=float, default=None, metavar="POSITIONS_PER_S",
                        help="training throughput of one GPU in sequence positions per second, for the "
                             "GPU-hours estimate (default: an assumption for XLM-R large on one A100, "
                             "see stopover.plan.GPU_TRAIN_TOKENS_PER_S); inference counts 3x faster")
    parser.add_argument("--hub", action="store_true",
                        help="count data that is not on this machine by loading it from the Hub "
                             "(downloads); by default such data counts at its published size or as unknown")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from stopover.config import load_config
    from stopover.errors import ConfigError
    from stopover.plan import GPU_INFERENCE_SPEEDUP, GPU_TRAIN_TOKENS_PER_S, MACHINE, gpu_hours, machine_minutes, plan

    throughput = GPU_TRAIN_TOKENS_PER_S if args.gpu_throughput is None else args.gpu_throughput
    if throughput <= 0:
        raise ConfigError(f"--gpu-throughput {args.gpu_throughput:g}: must be > 0 positions per second")
    cfg = load_config(args.config, args.overrides)
    planned = plan(cfg, hub=args.hub)
    stages = planned.stages
    hours = gpu_hours(stages, throughput)
    here = machine_minutes(stages, cfg.model)
    console = Console()
    table = Table(title=f"plan: {cfg.name} ({planned.cells} grid cells, {len(stages)} distinct stages, "
                        f"model {cfg.model})")
    for col in ("stage", "distinct", "done", "to run", "examples to process", "GPU-hours",
                *(["minutes here"] if here else [])):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for kind in ("intermediate", "target", "eval"):
        group = [s for s in stages if s.kind == kind]
        todo = [s for s in group if not s.done]
        known = [s.examples for s in todo if s.examples is not None]
        unknown = len(todo) - len(known)
        ex = f"{sum(known):,}" + (f" (+{unknown} unknown)" if unknown else "")
        h, missing = hours[kind]
        table.add_row(kind, str(len(group)), str(len(group) - len(todo)), str(len(todo)), ex,
                      f"{h:,.1f}" + (f" (+{missing} unknown)" if missing else ""),
                      *([f"{here[kind][0]:,.0f}"] if here else []))
    console.print(table)
    if here:
        console.print(f"On a {MACHINE}: about {sum(m for m, _ in here.values()):,.0f} min to run "
                      "(fitted on configs/real-study.yaml's run; stopover.plan.MACHINE_TIME)")
    else:
        console.print(f"Time on this machine: no calibration for {cfg.model} (benchmarks/calibrate_plan.py fits "
                      "one from a finished run)")
    total = sum(h for h, _ in hours.values())
    console.print(f"GPU-hours to run: {total:,.1f}, assuming one GPU trains {throughput:,.0f} sequence positions/s "
                  f"and infers {throughput * GPU_INFERENCE_SPEEDUP:,.0f}/s, every sequence padded to its max_length"
                  + ("" if args.gpu_throughput is not None else
                     " (default: XLM-R large on one A100, an estimate; --gpu-throughput to change)"
                     if cfg.model == "xlm-roberta-large" else
                     f" (default: an estimate for XLM-R large on one A100, not for {cfg.model}: measure it "
                     "and pass --gpu-throughput)"))
    published = sum(1 for s in stages if s.published and not s.done)
    unknown = sum(missing for _, missing in hours.values())
    if published:
        console.print(f"{published} stage(s) counted at published dataset sizes (the data is not on this machine)")
    if unknown:
        console.print(f"{unknown} stage(s) of unknown size are not in the estimate (no local data, no published "
                      "size; --hub loads it)")
    if planned.placeholder_sets:
        console.print(f"{planned.placeholder_sets} diversity set(s) are chosen at run time: ranking the pool needs "
                      "its English training data")
    _print_power(console, planned.power)
    if args.stages:
        detail = Table(title="stages")
        for col in ("kind", "hash", "stage", "cells", "done", "examples"):
            detail.add_column(col)
        for s in stages:
            detail.add_row(s.kind, s.hash, s.label, str(s.cells), "yes" if s.done else "no",
                           "?" if s.examples is None else f"{s.examples:,}" + (" (published)" if s.published else ""))
        console.print(detail)
    return 0


def _print_power(console, power: dict) -> None:
    """Each planned test's smallest attainable p-value (its floor, Holm-adjusted across its family)
    and minimum detectable effect at 80% power, per target; a warning for tests that can never
    reach p < 0.05 as planned, with what would fix it.
    """
    import math

    from rich.table import Table

    if not power:
        return
    table = Table(title="power before running (alpha 0.05, 80% power; noise: stopover.analysis.power.Noise)")
    for col in ("target", "test", "floor", "Holm", "ok", "MDE"):
        table.add_column(col, justify="left" if col in ("target", "test") else "right")
    never, legend = [], {}
    for target, tests in power.items():
        for t in tests:
            mde = "n/a" if math.isnan(t.mde) else ("never" if math.isinf(t.mde) else f"{t.mde:.2f}")
            table.add_row(target, t.test.split(" (")[0], f"{t.floor:.3g}", f"{t.floor_adjusted:.3g}",
                          "yes" if t.reachable else "NO", mde)
            legend[t.test.split(" (")[0]] = f"{t.test}; unit: {t.unit}; MDE in {t.effect}"
            if not t.reachable:
                never.append(f"{target}: {t.test} - {t.fix}")
    console.print(table)
    console.print("floor: the smallest attainable p-value; Holm: the floor adjusted across the test's family; "
                  "MDE: minimum detectable effect at 80% power")
    for name, text in legend.items():
        console.print(f"  {name}: {text}")
    for line in never:
        console.print(f"warning: cannot reach p < 0.05 as planned: {line}")
