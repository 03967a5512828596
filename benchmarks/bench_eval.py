"""Zero-shot evaluation throughput over many languages: stopover vs a naive per-language loop.

One fine-tuned-shape classifier (the embedded encoder + a seeded head, saved
once) is evaluated on the typology lab's NLI test set in English and every
default lab language (11 languages, parallel test sets), both ways, in one
process:

- stopover: the model and tokenizer loaded once; per language the format's
  `featurize` then `predict` (length-sorted batches, `torch.inference_mode`,
  padding to the longest sequence of each batch), as `Pipeline._evaluate` does;
- naive: per language the model and tokenizer are loaded again (the
  "one script call per language" pattern), examples go in file order, each
  batch is tokenised on the fly with `padding=True` and run under `torch.no_grad`.

Both include model loading and tokenisation; the predictions are compared,
so the speed-up is not bought with different outputs.

    python benchmarks/bench_eval.py [--quick]
"""

from __future__ import annotations

import argparse
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


def run_stopover(path: str, data: dict[str, list[dict]]) -> dict[str, list[int]]:
    from stopover.formats.classification import FORMAT
    from stopover.models import load_tokenizer
    from stopover.tasks import get_task

    task = get_task("lab-nli")
    model = FORMAT.build_model(path, task)
    tokenizer = load_tokenizer(path)
    preds = {}
    for lang, examples in data.items():
        feats = FORMAT.featurize(examples, tokenizer, task, MAX_LENGTH, train=False)
        preds[lang] = FORMAT.predict(model, feats, examples, task, tokenizer, BATCH_SIZE)
    return preds


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


def run(quick: bool = False) -> list[Figure]:
    C.quiet_transformers()
    per_language = 48 if quick else 200
    rounds = 1 if quick else 2
    data = test_sets(per_language)
    total = sum(len(v) for v in data.values())
    print(f"  {len(data)} languages x {per_language} lab-nli test pairs, batch {BATCH_SIZE}, "
          f"{rounds} round(s)", flush=True)
    best = {"stopover": float("inf"), "naive": float("inf")}
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        path = save_classifier(str(C.embedded_model_dir()), Path(tmp) / "model")
        for r in range(rounds):
            results = {}
            for name, fn in (("naive", run_naive), ("stopover", run_stopover)):
                start = time.perf_counter()
                results[name] = fn(path, data)
                best[name] = min(best[name], time.perf_counter() - start)
            print(f"    round {r + 1}: stopover {best['stopover']:.1f} s, naive {best['naive']:.1f} s "
                  "(best so far)", flush=True)
    same = sum(a == b for lang in data for a, b in zip(results["stopover"][lang], results["naive"][lang]))
    ratio = best["naive"] / best["stopover"]
    tgt, met = C.target(ratio, ">=", 2.0, "x")
    return [
        Figure(BENCH, "stopover (one load, sorted batches)", total / best["stopover"], "ex/s",
               note=f"{total} examples in {len(data)} languages; wall {best['stopover']:.1f} s incl. load"),
        Figure(BENCH, "naive (reload per language, unsorted)", total / best["naive"], "ex/s",
               note=f"wall {best['naive']:.1f} s"),
        Figure(BENCH, "stopover / naive", ratio, "x", tgt, met),
        Figure(BENCH, "prediction agreement", 100.0 * same / total, "%", "", None,
               note="bucket padding changes fp32 rounding only"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer examples per language, one round")
    args = parser.parse_args()
    C.print_header("zero-shot evaluation throughput")
    start = time.perf_counter()
    C.print_figures(run(args.quick))
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
