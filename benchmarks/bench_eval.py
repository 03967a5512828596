"""Zero-shot evaluation throughput over many languages: stopover vs a naive per-language loop.

One fine-tuned-shape classifier (the embedded encoder + a seeded head, saved
once) is evaluated on the typology lab's NLI test set in English and every
default lab language (11 languages, parallel test sets), both ways, in one
process:

- stopover: the model and tokenizer loaded once; per language the format's
  `featurize` then `predict` (length-sorted batches, `torch.inference_mode`,
  padding to the longest sequence of each batch) under the evaluation
  precision (`evaluation.precision: auto`: bf16 autocast where the CPU
  computes in bf16 natively), as `Pipeline._evaluate` does;
- naive: per language the model and tokenizer are loaded again (the
  "one script call per language" pattern), examples go in file order, each
  batch is tokenised on the fly with `padding=True` and run under `torch.no_grad`.

Both include model loading and tokenisation; the predictions are compared,
so the speed-up is not bought with different outputs. Where "auto" resolves
to bf16, stopover's path is also timed in fp32, to separate what batching and
one model load give from what bf16 gives.

    python benchmarks/bench_eval.py [--quick]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import _common as C
from _common import Figure

BENCH = "zero-shot eval"
MAX_LENGTH = 128
BATCH_SIZE = 64  # stopover's EvalConfig default


def test_sets(per_language: int) -> dict[str, list[dict]]:
    """lab-nli test examples per language code (English + the default lab variants)."""
    from stopover.lab.datasets import TASKS, build_split, render
    from stopover.lab.variants import ENGLISH_VARIANT, default_variants

    task = TASKS["lab-nli"]
    items = build_split(task, "test", per_language, seed=0)
    return {v.code: [render(task, it, v) for it in items] for v in [ENGLISH_VARIANT, *default_variants()]}


def save_classifier(encoder: str, out: Path) -> str:
    """The encoder + a seeded 3-way head, saved with its tokenizer: the 'target model' to evaluate."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from stopover.models import load_tokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(encoder, num_labels=3)
    model.save_pretrained(out)
    load_tokenizer(encoder).save_pretrained(out)
    return str(out)


def run_stopover(path: str, data: dict[str, list[dict]], precision: str = "auto") -> dict[str, list[int]]:
    from stopover.formats.classification import FORMAT
    from stopover.models import load_tokenizer
    from stopover.precision import autocast, resolve_precision
    from stopover.tasks import get_task

    task = get_task("lab-nli")
    model = FORMAT.build_model(path, task)
    tokenizer = load_tokenizer(path)
    resolved = resolve_precision(precision)[0]
    preds = {}
    for lang, examples in data.items():
        feats = FORMAT.featurize(examples, tokenizer, task, MAX_LENGTH, train=False)
        with autocast(resolved):  # what Pipeline.predict does with evaluation.precision
            preds[lang] = FORMAT.predict(model, feats, examples, task, tokenizer, BATCH_SIZE)
    return preds


def run_stopover_fp32(path: str, data: dict[str, list[dict]]) -> dict[str, list[int]]:
    return run_stopover(path, data, "fp32")


def run_naive(path: str, data: dict[str, list[dict]]) -> dict[str, list[int]]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    preds = {}
    for lang, examples in data.items():
        model = AutoModelForSequenceClassification.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model.eval()
        out: list[int] = []
        for start in range(0, len(examples), BATCH_SIZE):
            batch = examples[start:start + BATCH_SIZE]
            enc = tokenizer([e["text_a"] for e in batch], [e["text_b"] for e in batch], truncation=True,
                            max_length=MAX_LENGTH, padding=True, return_tensors="pt")
            with torch.no_grad():
                out.extend(model(**enc).logits.argmax(-1).tolist())
        preds[lang] = out
    return preds


def padded_tokens(path: str, data: dict[str, list[dict]]) -> tuple[int, int]:
    """Token positions the model processes (batch size x longest in batch, summed): (sorted, file order)."""
    from stopover.formats.batching import sorted_batches
    from stopover.formats.classification import FORMAT
    from stopover.models import load_tokenizer

    tokenizer = load_tokenizer(path)
    ours = theirs = 0
    for examples in data.values():
        lengths = [len(f["input_ids"]) for f in FORMAT.featurize(examples, tokenizer, None, MAX_LENGTH, train=False)]
        ours += sum(len(idx) * max(lengths[i] for i in idx)
                    for idx in sorted_batches([{"input_ids": [0] * n} for n in lengths], BATCH_SIZE))
        theirs += sum(len(lengths[s:s + BATCH_SIZE]) * max(lengths[s:s + BATCH_SIZE])
                      for s in range(0, len(lengths), BATCH_SIZE))
    return ours, theirs


def run(quick: bool = False) -> list[Figure]:
    from stopover.precision import resolve_precision

    C.quiet_transformers()
    per_language = 96 if quick else 128
    rounds = 1
    data = test_sets(per_language)
    total = sum(len(v) for v in data.values())
    methods = {"naive": run_naive, "stopover": run_stopover}
    bf16 = resolve_precision("auto")[0] == "bf16"
    if bf16:
        methods["stopover-fp32"] = run_stopover_fp32
    print(f"  {len(data)} languages x {per_language} lab-nli test pairs, batch {BATCH_SIZE}, "
          f"{rounds} round(s)", flush=True)
    best = {m: float("inf") for m in methods}
    preds: dict[str, dict[str, list[int]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        path = save_classifier(str(C.embedded_model_dir()), Path(tmp) / "model")
        for r in range(rounds):
            for name, fn in methods.items():
                start = time.perf_counter()
                preds[name] = fn(path, data)
                best[name] = min(best[name], time.perf_counter() - start)
            print(f"    round {r + 1}: " + ", ".join(f"{m} {best[m]:.1f} s" for m in methods) + " (best so far)",
                  flush=True)

        ours, theirs = padded_tokens(path, data)
        start = time.perf_counter()
        run_naive(path, {"eng": data["eng"][:1]})  # one load of model + tokenizer, one tiny batch
        reload = time.perf_counter() - start

    def agreement(a: str, b: str) -> float:
        same = sum(x == y for lang in data for x, y in zip(preds[a][lang], preds[b][lang]))
        return 100.0 * same / total

    ratio = best["naive"] / best["stopover"]
    tgt, met = C.target(ratio, ">=", 2.0, "x")
    precision = "bf16" if bf16 else "fp32"
    figures = [
        Figure(BENCH, f"stopover (one load, sorted batches, {precision})", total / best["stopover"], "ex/s",
               note=f"{total} examples in {len(data)} languages; wall {best['stopover']:.1f} s incl. load"),
        Figure(BENCH, "naive (reload per language, unsorted, fp32)", total / best["naive"], "ex/s",
               note=f"wall {best['naive']:.1f} s"),
        Figure(BENCH, "stopover / naive", ratio, "x", tgt, met, note=f"evaluation.precision auto -> {precision}"),
        Figure(BENCH, "padded tokens run: naive / stopover", theirs / ours, "x",
               note=f"{theirs:,} vs {ours:,} token positions; plus {len(data) - 1} extra model loads "
                    f"of about {reload:.1f} s each in the naive loop"),
        Figure(BENCH, "prediction agreement stopover vs naive", agreement("stopover", "naive"), "%",
               note="same model; padding differs" + ("; bf16 vs fp32" if bf16 else "")),
    ]
    if bf16:
        figures += [
            Figure(BENCH, "stopover in fp32 / naive", best["naive"] / best["stopover-fp32"], "x",
                   note=f"{total / best['stopover-fp32']:.1f} ex/s; evaluation.precision: fp32"),
            Figure(BENCH, "prediction agreement stopover fp32 vs naive", agreement("stopover-fp32", "naive"), "%"),
        ]
    return figures


def main() -> None:
    C.bench_main(__doc__, "zero-shot evaluation throughput", run)


if __name__ == "__main__":
    main()
