"""configs/real-offline.yaml on the real samples in ../shared/data: the file mapping that turns the UD
samples into English train/dev/test, the XQuAD holdout that keeps translations of training paragraphs
out of the test sets, and (slow, run in CI) a reduced run of the whole thing: zero-shot POS with the
embedded encoder, far above a majority-tag baseline, worse the further a language is from English."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import pytest

from stopover.config import RunConfig, load_config
from stopover.errors import DataError
from stopover.pipeline import Pipeline, holdout_half
from stopover.tasks import get_task
from stopover.tasks.tagging import UDPOS_LANGS

CONFIG = Path(__file__).resolve().parents[1] / "stopover" / "configs" / "real-offline.yaml"


def real_config(tmp_path: Path, shared: Path, *overrides: str) -> RunConfig:
    """The shipped config with its data directories made absolute (tests may run from anywhere)."""
    return load_config(CONFIG, [f"output_dir={tmp_path / 'runs'}",
                                f"tasks.udpos.data_dir={shared / 'ud'}", f"tasks.squad.data_dir={shared / 'xquad'}",
                                f"tasks.xquad.data_dir={shared / 'xquad'}",
                                f"tasks.tatoeba.data_dir={shared / 'tatoeba'}", *overrides])


def test_ud_samples_become_english_train_dev_and_test(tmp_path, shared_data):
    pipe = Pipeline(real_config(tmp_path, shared_data), tmp_path / "run")
    udpos = get_task("udpos")
    train = pipe.train_examples(udpos)
    dev = pipe.examples(udpos, "dev", "eng")
    test = pipe.test_examples(udpos, "eng")
    assert (len(train), len(dev), len(test)) == (2001, 2077, 1000)  # EWT dev, EWT test, PUD test
    assert train[0]["tokens"][:3] == ["From", "the", "AP"]  # en_ewt-ud-dev.conllu's first sentence
    assert {" ".join(ex["tokens"]) for ex in train}.isdisjoint(" ".join(ex["tokens"]) for ex in test)
    # other languages: ud/<iso639-1>/test.conllu.gz through the task's own layout rules
    assert len(pipe.test_examples(udpos, "jpn")) == 543
    # the mapped files are what the stage hashes see
    fp = pipe.fingerprint(udpos, ("train", "dev"), ("eng",))["files"]
    assert set(fp) == {"eng/train", "eng/dev"} and fp["eng/train"] != fp["eng/dev"]


def test_xquad_holdout_keeps_training_paragraphs_out_of_every_test_language(tmp_path, shared_data):
    pipe = Pipeline(real_config(tmp_path, shared_data), tmp_path / "run")
    squad, xquad = get_task("squad"), get_task("xquad")
    with pytest.raises(DataError, match="maps it to null"):
        pipe.examples(squad, "dev", "eng")  # no English dev: the last checkpoint is kept, no Hub download
    train = pipe.train_examples(squad, holdout=True)
    english = pipe.test_examples(xquad, "eng")
    assert len(train) + len(english) == 1190 and 400 < len(train) < 800  # the two halves of xquad.en
    seen = {ex["context"] for ex in train}
    assert not seen & {ex["context"] for ex in english}  # whole paragraphs on one side
    held_out_ids = {ex["id"] for ex in english}
    for lang in ("deu", "zho", "tha"):
        test = pipe.test_examples(xquad, lang)
        assert {ex["id"] for ex in test} == held_out_ids  # the same items in every language
    assert all(holdout_half(ex) == 0 for ex in train)


def majority_baseline(examples: list[dict]) -> float:
    tags = Counter(t for ex in examples for t in ex["tags"])
    return 100.0 * tags.most_common(1)[0][1] / sum(tags.values())


@pytest.mark.slow
def test_reduced_real_offline_run(tmp_path, shared_data, capsys):
    """udpos only: 400 English training sentences (3 epochs), 50 test sentences in each of the 33
    languages; a few minutes on 2 cores. Then the report."""
    from scipy.stats import spearmanr

    from stopover.grid import run_grid
    from stopover.report import write_report
    from stopover.store import read_results
    from stopover.typology import distances_from

    cfg = real_config(tmp_path, shared_data, "targets=[udpos]", "target.max_examples=400", "target.epochs=3",
                      "target.lr=1.0e-4", "target.max_dev_examples=100", "evaluation.max_examples=50")
    run_dir, pipe = run_grid(cfg)
    udpos = get_task("udpos")
    acc = {r.language: r.value for r in read_results(run_dir)
           if r.stage == "eval" and r.metric == "token_accuracy"}
    assert set(acc) == set(UDPOS_LANGS)
    base = {lang: majority_baseline(pipe.test_examples(udpos, lang, limit=50)) for lang in acc}
    with capsys.disabled():
        print("\nlanguage  token_accuracy  majority_tag")
        for lang in sorted(acc, key=acc.get, reverse=True):
            print(f"{lang}  {acc[lang]:5.1f}  {base[lang]:5.1f}")
    assert acc["eng"] > 75
    # Japanese and Chinese UD words are pre-segmented: the tokenizer gives each word a bare "▁" as its
    # first piece, the piece that carries the word's label (stopover.formats.tagging), so the model
    # tags them from context alone and lands near or below the majority tag (see docs/real-offline.md;
    # Thai and Korean are partly affected and are the closest of the rest: +10 and +12 points)
    segmented = {"jpn", "zho"}
    margins = {lang: acc[lang] - base[lang] for lang in set(acc) - segmented}
    assert min(margins.values()) > 5, margins
    assert sum(m > 40 for m in margins.values()) >= 20  # far above it for most languages
    assert sorted(margins.values())[len(margins) // 2] > 35  # the median language

    langs = sorted(set(acc) - {"eng"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dist = distances_from("eng", langs, ["syntactic"]).dropna(subset=["distance"])
    assert len(dist) >= 30
    rho, p = spearmanr([acc[lang] for lang in dist.language], dist.distance)
    with capsys.disabled():
        print(f"Spearman(token_accuracy, syntactic distance from English) over {len(dist)} languages: "
              f"rho = {rho:.3f}, p = {p:.4f}")
    assert rho < -0.2 and p < 0.05

    report = write_report(run_dir)
    assert Path(report).is_file() and (run_dir / "typology.csv").is_file()
