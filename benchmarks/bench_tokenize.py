"""Tokenisation cache: the second tokenisation of a dataset (a `Pipeline.features` hit) vs the first.

`Pipeline.features` keys tokenised features by data, tokenizer, format,
max length and stopover version and keeps them on disk under
`$STOPOVER_CACHE/features`. The benchmark tokenises the same English
sentence pairs with the embedded encoder's tokenizer (250k pieces) three
times in an empty cache:

- first: a miss: the format's `featurize` plus writing the cache file;
- second: a hit in the same `Pipeline`;
- new pipeline: a hit from a fresh `Pipeline` (as the next stage or a
  re-run in a new process gets it: nothing is kept in memory);

and times the bare `featurize` call as well, so the cache's own costs
(key computation, pickling) are visible.

    python benchmarks/bench_tokenize.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common as C
from _common import Figure

BENCH = "tokenisation cache"
MAX_LENGTH = 128


def run(quick: bool = False) -> list[Figure]:
    from stopover.config import RunConfig, from_dict
    from stopover.formats.classification import FORMAT
    from stopover.models import load_tokenizer
    from stopover.pipeline import Pipeline, _tokenizer_digest
    from stopover.tasks import get_task

    C.quiet_transformers()
    n = 2000 if quick else 20000
    rows = C.sentence_pairs(n, seed=2)
    task = get_task("lab-nli")
    tokenizer = load_tokenizer(str(C.embedded_model_dir()))
    key = ["bench-tokenize", n]
    with C.fresh_cache(), tempfile.TemporaryDirectory(prefix="bench-tok-") as tmp:
        cfg = from_dict(RunConfig, {"name": "bench", "targets": ["lab-nli"]})
        pipe = Pipeline(cfg, Path(tmp))

        def timed(p: Pipeline) -> tuple[float, list[dict]]:
            start = time.perf_counter()
            feats = p.features(FORMAT, task, rows, tokenizer, MAX_LENGTH, train=True, data_key=key)
            return time.perf_counter() - start, feats

        start = time.perf_counter()
        bare = FORMAT.featurize(rows, tokenizer, task, MAX_LENGTH, train=True)
        t_bare = time.perf_counter() - start
        t_first, first = timed(pipe)
        t_second, second = timed(pipe)
        t_new, third = timed(Pipeline(cfg, Path(tmp)))
        start = time.perf_counter()
        _tokenizer_digest(tokenizer)
        t_digest = time.perf_counter() - start
    if not (first == second == third == bare):
        raise RuntimeError("cached features differ from freshly tokenised ones")
    return [
        Figure(BENCH, "first tokenisation (miss: featurize + write)", t_first, "s",
               note=f"{n} sentence pairs, embedded tokenizer; bare featurize {t_bare:.2f} s"),
        Figure(BENCH, "second tokenisation (hit, same pipeline)", t_second, "s",
               note=f"of which tokenizer digest for the key {t_digest:.2f} s"),
        Figure(BENCH, "hit from a new pipeline", t_new, "s"),
        Figure(BENCH, "first / second", t_first / t_second, "x"),
        Figure(BENCH, "bare featurize / cache hit", t_bare / t_second, "x"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    C.add_common_arguments(parser)
    args = parser.parse_args()
    C.apply_threads(args.threads)
    C.print_header("tokenisation cache")
    start = time.perf_counter()
    C.print_figures(run(args.quick))
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
