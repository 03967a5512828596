"""The masked_lm format (continued MLM) and the mlm task: masking statistics, tying that survives the
multi-task encoder swap, a loss that falls on a tiny model, and mlm mixed into an intermediate stage."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from stopover.formats import get_format
from stopover.formats.masked_lm import build_mlm_model
from stopover.models import build_tiny_model, load_tokenizer
from stopover.tasks import get_task
from tests.fixtures import WORDS, nli_rows

FMT = get_format("masked_lm")
MLM = get_task("mlm")


def sentences(lang: str, n: int, seed: int = 0) -> list[str]:
    return [r["premise"] + " and " + r["hypothesis"] for r in nli_rows(lang, n, seed)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    corpus = [s for lang in WORDS for s in sentences(lang, 200)]
    path = build_tiny_model(tmp_path_factory.mktemp("mlm-model"), corpus, vocab_size=300, hidden=64, layers=2,
                            heads=2)
    return str(path), load_tokenizer(str(path))


def test_masking_statistics(tiny):
    _, tok = tiny
    examples = [{"text": s} for lang in WORDS for s in sentences(lang, 300, 7)]
    feats = FMT.featurize(examples, tok, MLM, 64, train=True)
    torch.manual_seed(0)
    batch = FMT.collate(feats, tok)
    original = torch.full_like(batch["input_ids"], tok.pad_token_id)
    for row, f in enumerate(feats):
        original[row, :len(f["input_ids"])] = torch.tensor(f["input_ids"])
    special = torch.zeros_like(original, dtype=torch.bool)
    for row, f in enumerate(feats):
        special[row, :len(f["input_ids"])] = torch.tensor(f["special_tokens_mask"], dtype=torch.bool)
    real = (batch["attention_mask"] == 1) & ~special
    chosen = batch["labels"] != -100
    assert not (chosen & ~real).any()  # never <s>, </s> or padding
    assert torch.equal(batch["labels"][chosen], original[chosen])  # labels are the original tokens
    assert abs(chosen.sum().item() / real.sum().item() - 0.15) < 0.01  # ~20,000 tokens
    n = chosen.sum().item()
    masked = (batch["input_ids"] == tok.mask_token_id) & chosen
    unchanged = (batch["input_ids"] == original) & chosen
    replaced = chosen & ~masked & ~unchanged
    assert abs(masked.sum().item() / n - 0.8) < 0.03
    # 10% random tokens, some of which draw the original token by chance (~1/300 here)
    assert abs(replaced.sum().item() / n - 0.1) < 0.02
    assert abs(unchanged.sum().item() / n - 0.1) < 0.02
    assert torch.equal(batch["input_ids"][~chosen & real], original[~chosen & real])  # the rest untouched
    # dynamic masking: the next draw differs
    assert not torch.equal(FMT.collate(feats, tok)["labels"], batch["labels"])


def test_evaluation_masking_is_fixed_and_scores_every_example(tiny):
    _, tok = tiny
    examples = [{"text": "der Hund"}, *({"text": s} for s in sentences("deu", 30, 3))]
    first = FMT.featurize(examples, tok, MLM, 64, train=False)
    again = FMT.featurize(examples, tok, MLM, 64, train=False)
    assert [f["input_ids"] for f in first] == [f["input_ids"] for f in again]
    assert [f["labels"] for f in first] == [f["labels"] for f in again]
    for f in first:
        chosen = [i for i, l in enumerate(f["labels"]) if l != -100]
        assert chosen and 0 not in chosen and len(f["input_ids"]) - 1 not in chosen  # never <s> / </s>


def test_tied_projection_follows_a_swapped_encoder(tiny):
    path, _ = tiny
    model = build_mlm_model(path)
    vocab = model.config.vocab_size
    big = [n for n, p in model.named_parameters() if p.shape[0] == vocab and p.ndim == 2]
    assert big == ["roberta.embeddings.word_embeddings.weight"]  # one matrix: input = output embeddings
    other = build_mlm_model(path)
    with torch.no_grad():
        other.roberta.embeddings.word_embeddings.weight.mul_(2.0)
    model.roberta = other.roberta  # what a multi-task stage does to every task model
    hidden = torch.randn(1, 3, model.config.hidden_size)
    logits = model.lm_head.decoder(hidden)
    expected = hidden @ other.roberta.embeddings.word_embeddings.weight.T + model.lm_head.bias
    assert torch.allclose(logits, expected, atol=1e-5)


@pytest.mark.slow  # ~30 s on an idle machine: trains a tiny MLM for several epochs
def test_loss_falls_and_masked_accuracy_rises_on_a_tiny_model(tiny):
    from stopover.config import TrainConfig
    from stopover.train import train

    path, tok = tiny
    examples = [{"text": s} for s in sentences("eng", 160, 11)]
    held_out = [{"text": s} for s in sentences("eng", 60, 12)]
    model = build_mlm_model(path)
    feats = FMT.featurize(examples, tok, MLM, 32, train=True)
    dev = FMT.featurize(held_out, tok, MLM, 32, train=False)

    def dev_loss(m):
        m.eval()
        with torch.no_grad():
            return m(**FMT.collate(dev, tok)).loss.item()

    before_loss = dev_loss(model)
    before = FMT.score(MLM, held_out, FMT.predict(model, dev, held_out, MLM, tok, 32), "eng")["accuracy"]
    cfg = TrainConfig(epochs=4, batch_size=16, lr=3e-3, warmup=0.1, max_length=32, precision="fp32")
    train(model, feats, lambda b: FMT.collate(b, tok), cfg, seed=0)
    after_loss = dev_loss(model)
    after = FMT.score(MLM, held_out, FMT.predict(model, dev, held_out, MLM, tok, 32), "eng")["accuracy"]
    assert after_loss < 0.75 * before_loss, (before_loss, after_loss)
    assert after > before + 20, (before, after)  # templated text: most masked words become predictable


def test_text_reader_and_language_discovery(tmp_path):
    from stopover.tasks.mlm import text_languages

    (tmp_path / "deu").mkdir()
    (tmp_path / "deu" / "train.txt").write_text("der Hund ist groß\n\n  die Katze  \n", encoding="utf-8")
    (tmp_path / "jpn").mkdir()  # no text: not a language of this directory
    import gzip

    (tmp_path / "fra").mkdir()
    with gzip.open(tmp_path / "fra" / "train.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write("le chien\n")
    assert text_languages(tmp_path) == ("deu", "fra")
    assert text_languages(None) == ()
    from stopover.data import load_examples

    assert load_examples(MLM, "train", "deu", data_dir=tmp_path) == [{"text": "der Hund ist groß"},
                                                                     {"text": "die Katze"}]
    assert load_examples(MLM, "train", "fra", data_dir=tmp_path) == [{"text": "le chien"}]


def _grid(tmp_path, **over):
    from stopover.config import RunConfig, from_dict
    from tests.fixtures import write_nli_fixtures

    data = write_nli_fixtures(tmp_path / "data")
    for lang in ("deu", "fra"):
        (data / "mlm" / lang).mkdir(parents=True)
        (data / "mlm" / lang / "train.txt").write_text("\n".join(sentences(lang, 40, 5)) + "\n", encoding="utf-8")
    base = {"name": "mlm", "model": "tiny:64x2", "output_dir": str(tmp_path / "runs"), "data_dir": str(data),
            "pool": ["mnli"], "targets": ["xnli"], "multitask": {"mode": "mixed"},
            "tasks": {"xnli": {"languages": sorted(WORDS)}},
            "intermediate": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32},
            "target": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32},
            "evaluation": {"batch_size": 32, "max_length": 32}}
    base.update(over)
    return from_dict(RunConfig, base)


def sets(*tasks):
    return [SimpleNamespace(strategy="explicit", name="+".join(t), tasks=t, budget=None, reference=False)
            for t in tasks]


def test_mlm_mixed_into_an_intermediate_stage_end_to_end(tmp_path):
    from stopover.grid import run_grid
    from stopover.store import read_results

    cfg = _grid(tmp_path)
    run_dir, pipe = run_grid(cfg, sets=sets(("mnli", "mlm")))
    assert pipe.train_languages(MLM) == ("deu", "fra")  # every language with text, found in data_dir/mlm
    assert len(pipe.trained) == 3  # intermediate (mnli + mlm, mixed), target, evaluation
    info = [json.loads(p.read_text()) for p in (run_dir / "stages").glob("*/stage.json")]
    mixed = next(i for i in info if "mixed" in i)
    # one epoch of both tasks: ceil(96/16) MNLI batches + ceil(80/16) MLM batches
    assert mixed["mixed"]["steps"] == 6 + 5
    config = next(p for p in (run_dir / "stages").glob("*/config.yaml") if "mlm" in p.read_text())
    assert "deu/train" in config.read_text() and "fra/train" in config.read_text()  # text is in the hash
    rows = [r for r in read_results(run_dir) if r.stage == "eval" and r.primary]
    assert {r.language for r in rows} == set(WORDS)
    assert all(r.intermediate == "mnli+mlm" and 0 <= r.value <= 100 for r in rows)


def test_mlm_refuses_sequential_multitask(tmp_path):
    from stopover.errors import ConfigError
    from stopover.grid import run_grid

    cfg = _grid(tmp_path, multitask={"mode": "sequential"})
    with pytest.raises(ConfigError, match="multitask.mode=mixed"):
        run_grid(cfg, sets=sets(("mnli", "mlm")))
