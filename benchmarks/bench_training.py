"""Training throughput: stopover's loop vs a plain `transformers.Trainer` script and fixed padding.

Same model (freshly loaded from one checkpoint, same seed), same examples,
same batch size, same number of optimizer steps; one process, one machine,
the methods interleaved round by round so a change in the machine's load
hits all of them alike. Methods:

- stopover: `stopover.train.train` with TrainConfig(group_by_length=True,
  precision="auto" (bf16 autocast where the CPU computes bf16 natively),
  freeze_embeddings=True) over features padded per batch by the format's collate;
- bare: a bare forward + backward + optimizer.step loop over the *same*
  batches, pre-collated, with the same precision and frozen embeddings:
  the floor for stopover's loop (its overhead is the difference);
- trainer-dynamic (a): `transformers.Trainer`, fp32, every weight trained,
  random batches padded per batch by `DataCollatorWithPadding`;
- trainer-fixed128 (b): the same Trainer with every example padded to 128
  tokens (the jiant and XTREME scripts' scheme).

Throughput is examples per second over the steps after `warmup` steps
(first-step allocations and kernel set-up excluded alike for every method),
best of the rounds (the least disturbed measurement on a shared machine).
The loop overhead (bare / stopover - 1) compares, step by step, each loop's
fastest time for that step over all rounds (the two run the same batches in
the same order), with extra rounds of those two cheap methods alone: a
scheduler hiccup then spoils one step, not a whole round.

    python benchmarks/bench_training.py [--quick] [--threads N] [--models tiny,embedded] [--ablation]

`--ablation` also times stopover with one switch off at a time, to show
where its speed comes from.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import _common as C
from _common import Figure

BENCH = "training"
MAX_LENGTH = 128
BATCH_SIZE = 16
LR = 5e-5

# (steps, warm-up steps, rounds, extra rounds of stopover and bare alone) per model and mode.
# The loop-overhead figure compares two runs of a few seconds each, so one scheduler hiccup
# moves it by tens of percent: the two cheap methods get extra alternating rounds for it,
# while the Trainer ratios use only the rounds all methods share.
PLANS = {
    ("tiny", False): (40, 4, 3, 2), ("tiny", True): (16, 3, 2, 1),
    ("embedded", False): (12, 2, 2, 4), ("embedded", True): (8, 2, 1, 1),
}


def build_models(workdir: Path, corpus: list[str], which: list[str]) -> dict[str, str]:
    """Model name -> encoder directory (tiny: built here; embedded: the converted e5-small)."""
    from stopover.models import build_tiny_model

    paths = {}
    if "tiny" in which:
        paths["tiny"] = str(build_tiny_model(workdir / "tiny", corpus, vocab_size=8000, hidden=128, layers=4))
    if "embedded" in which:
        paths["embedded"] = str(C.embedded_model_dir())
    return paths


def load_classifier(path: str):
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)  # the same head for every method
    return AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)


# --------------------------------------------------------------------------- methods


def run_stopover(path: str, feats: list[dict], tokenizer: Any, steps: int, **switches: Any) -> C.StepClock:
    """Stopover's loop; `switches` override TrainConfig fields (the ablations)."""
    from stopover.config import TrainConfig
    from stopover.formats.classification import FORMAT
    from stopover.train import train

    model = load_classifier(path)
    settings = {"precision": "auto", "freeze_embeddings": True, "group_by_length": True, **switches}
    cfg = TrainConfig(epochs=1.0, batch_size=BATCH_SIZE, lr=LR, max_length=MAX_LENGTH, **settings)
    clock = C.ProgressClock()
    result = train(model, feats, lambda b: FORMAT.collate(b, tokenizer), cfg, seed=0, progress=clock)
    if result.steps != steps:
        raise RuntimeError(f"stopover trained {result.steps} steps, expected {steps}")
    return clock


def run_bare(path: str, feats: list[dict], tokenizer: Any, steps: int, precision: str) -> C.StepClock:
    """Forward + backward + step over stopover's own batches (same order, same padding), pre-collated,
    with stopover's optimizer (fused AdamW): what is left of stopover's loop without the loop.
    """
    import torch

    from stopover.config import TrainConfig
    from stopover.formats.classification import FORMAT
    from stopover.train import length_grouped_batches, make_optimizer, seed_everything

    seed_everything(0)
    batches = length_grouped_batches([len(f["input_ids"]) for f in feats], BATCH_SIZE, random.Random(0))
    tensors = [FORMAT.collate([feats[i] for i in idx], tokenizer) for idx in batches[:steps]]
    model = load_classifier(path)
    model.get_input_embeddings().weight.requires_grad_(False)
    optimizer = make_optimizer(model, TrainConfig(lr=LR))
    model.train()
    clock = C.StepClock()
    for batch in tensors:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        clock.tick()
    return clock


def run_trainer(path: str, dataset: list[dict], collator: Callable, steps: int) -> C.StepClock:
    """A plain Trainer script: defaults (fp32, all weights trained, random batches)."""
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    clock = C.StepClock()

    class Tick(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            clock.tick()

    model = load_classifier(path)
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as out:
        args = TrainingArguments(output_dir=out, max_steps=steps, per_device_train_batch_size=BATCH_SIZE,
                                 learning_rate=LR, weight_decay=0.01, warmup_steps=0.1, use_cpu=True,
                                 save_strategy="no", logging_strategy="no", eval_strategy="no",
                                 report_to="none", disable_tqdm=True, seed=0, dataloader_num_workers=0)
        trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                          callbacks=[Tick()])
        trainer.remove_callback(PrinterCallback)  # it prints the end-of-training metrics dict
        trainer.train()
    return clock


# --------------------------------------------------------------------------- benchmark


ABLATIONS = {  # method -> the one switch turned off
    "stopover fp32": {"precision": "fp32"},
    "stopover trains embeddings": {"freeze_embeddings": False},
    "stopover random batches": {"group_by_length": False},
}


def bench_model(name: str, path: str, rows: list[dict], quick: bool, ablation: bool = False) -> list[Figure]:
    from transformers import DataCollatorWithPadding, default_data_collator

    from stopover.formats.classification import FORMAT
    from stopover.models import load_tokenizer
    from stopover.precision import resolve_precision

    steps, warmup, rounds, extra = PLANS[(name, quick)]
    n = steps * BATCH_SIZE  # exactly one epoch: every method sees the same examples once
    rows = rows[:n]
    tokenizer = load_tokenizer(path)
    feats = FORMAT.featurize(rows, tokenizer, None, MAX_LENGTH, train=True)
    dynamic = [{"input_ids": f["input_ids"], "attention_mask": f["attention_mask"], "labels": f["labels"]}
               for f in feats]
    enc = tokenizer([r["text_a"] for r in rows], [r["text_b"] for r in rows], truncation=True,
                    max_length=MAX_LENGTH, padding="max_length")
    fixed = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
              "labels": r["label"]} for i, r in enumerate(rows)]
    lengths = [len(f["input_ids"]) for f in feats]
    print(f"  {name}: {n} examples, {steps} steps of {BATCH_SIZE}, {rounds} round(s); "
          f"{C.length_summary(lengths)}", flush=True)

    methods: dict[str, Callable[[], C.StepClock]] = {
        "stopover": lambda: run_stopover(path, feats, tokenizer, steps),
        "bare": lambda: run_bare(path, feats, tokenizer, steps, precision),
        "trainer-dynamic": lambda: run_trainer(path, dynamic, DataCollatorWithPadding(tokenizer), steps),
        "trainer-fixed128": lambda: run_trainer(path, fixed, default_data_collator, steps),
    }
    if ablation:
        for method, switch in ABLATIONS.items():
            methods[method] = lambda switch=switch: run_stopover(path, feats, tokenizer, steps, **switch)
    precision = resolve_precision("auto")[0]
    order = list(methods)
    best: dict[str, float] = {}
    step_times: dict[str, list[list[float]]] = {}
    for r in range(rounds):
        for method in order[r % len(order):] + order[:r % len(order)]:  # rotate: no method always first
            clock = methods[method]()
            step_times.setdefault(method, []).append(clock.durations(warmup))
            eps = (steps - warmup) * BATCH_SIZE / clock.window(warmup)
            best[method] = max(best.get(method, 0.0), eps)
        print(f"    round {r + 1}: " + ", ".join(f"{m} {best[m]:.1f}/s" for m in order) + " (best so far)",
              flush=True)
    # Loop overhead: both loops run the same batches in the same order, so each step's fastest
    # time over all rounds is compared (a hiccup spoils one step, not a whole round).
    for r in range(extra):
        for method in (("stopover", "bare") if r % 2 else ("bare", "stopover")):
            step_times[method].append(methods[method]().durations(warmup))
    fastest = {m: [min(col) for col in zip(*step_times[m])] for m in ("stopover", "bare")}
    paired = {m: (steps - warmup) * BATCH_SIZE / sum(fastest[m]) for m in fastest}
    print(f"    fastest step times over {rounds + extra} round(s): " +
          ", ".join(f"{m} {v:.1f}/s" for m, v in paired.items()), flush=True)

    label = f"{name} ({'e5-small 12x384' if name == 'embedded' else 'hidden 128, 4 layers'})"
    figs = [Figure(BENCH, f"{label}: stopover", best["stopover"], "ex/s",
                   note=f"precision {precision}, frozen word embeddings, length-grouped batches"),
            Figure(BENCH, f"{label}: bare fwd+bwd+step", best["bare"], "ex/s"),
            Figure(BENCH, f"{label}: (a) Trainer dynamic pad", best["trainer-dynamic"], "ex/s"),
            Figure(BENCH, f"{label}: (b) Trainer fixed 128", best["trainer-fixed128"], "ex/s")]
    for base, bound in (("trainer-dynamic", 1.3), ("trainer-fixed128", 2.0)):
        ratio = best["stopover"] / best[base]
        tgt, met = C.target(ratio, ">=", bound, "x")
        figs.append(Figure(BENCH, f"{label}: stopover / ({'a' if base == 'trainer-dynamic' else 'b'})",
                           ratio, "x", tgt, met))
    for method in ABLATIONS:
        if method in best:
            figs.append(Figure(BENCH, f"{label}: ablation: {method}", best[method], "ex/s",
                               note=f"stopover / this = {best['stopover'] / best[method]:.2f}x"))
    overhead = 100.0 * (paired["bare"] / paired["stopover"] - 1.0)
    tgt, met = C.target(overhead, "<=", 10.0, "%")
    figs.append(Figure(BENCH, f"{label}: loop overhead vs bare", overhead, "%", tgt, met,
                       note=f"(bare / stopover - 1) from each step's fastest time over {rounds + extra} rounds "
                            f"({paired['bare']:.1f} vs {paired['stopover']:.1f} ex/s); stopover also collates, "
                            "clips gradients, steps the LR schedule"))
    return figs


def run(quick: bool = False, models: list[str] | None = None, ablation: bool = False) -> list[Figure]:
    C.quiet_transformers()
    which = models or ["tiny", "embedded"]
    rows = C.sentence_pairs(max(PLANS[(m, quick)][0] for m in which) * BATCH_SIZE, seed=0)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        corpus = [t for r in C.sentence_pairs(2000, seed=1) for t in (r["text_a"], r["text_b"])]
        paths = build_models(Path(tmp), corpus, which)
        for name in which:
            figures.extend(bench_model(name, paths[name], rows, quick, ablation))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    C.add_common_arguments(parser)
    parser.add_argument("--models", default="tiny,embedded", help="comma-separated: tiny, embedded")
    parser.add_argument("--ablation", action="store_true",
                        help="also time stopover with one switch off at a time (bf16, frozen embeddings, grouping)")
    args = parser.parse_args()
    C.apply_threads(args.threads)
    C.print_header("training throughput")
    start = time.perf_counter()
    figures = run(args.quick, [m.strip() for m in args.models.split(",") if m.strip()], args.ablation)
    C.print_figures(figures)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
