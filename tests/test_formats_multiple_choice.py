"""Multiple choice: choice pairs, left truncation, collation, prediction and accuracy, and CosmosQA's
real CSV as an intermediate task end to end."""

from __future__ import annotations

import gzip
from types import SimpleNamespace

import pandas as pd
import pytest

from stopover.errors import DataError
from stopover.formats.multiple_choice import FORMAT, choice_pairs
from stopover.tasks import get_task

CORPUS = ["the man walks to the shop", "what does the man buy", "he buys bread", "he buys a car",
          "he sells his house", "she reads a book about birds"] * 30


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from stopover.models import build_tiny_model, load_tokenizer

    path = build_tiny_model(tmp_path_factory.mktemp("mc"), CORPUS, vocab_size=150, hidden=32, layers=1, heads=2)
    return path, load_tokenizer(str(path))


def mc(context: str, question: str, endings: list[str], label: int) -> dict:
    return {"context": context, "question": question, "endings": endings, "label": label}


def test_choice_pairs_join_context_and_question():
    assert choice_pairs(mc("the man walks.", "what does he buy?", ["bread", "a car"], 0)) == [
        ("the man walks. what does he buy?", "bread"), ("the man walks. what does he buy?", "a car")]
    assert choice_pairs(mc("", "what does he buy?", ["bread"], 0)) == [("what does he buy?", "bread")]  # CSQA
    assert choice_pairs(mc("the man walks to", "", ["the shop"], 0)) == [("the man walks to", "the shop")]


def test_featurize_one_feature_per_example_with_every_choice(tiny):
    _, tok = tiny
    examples = [mc("the man walks to the shop", "what does the man buy", ["bread", "a car", "a house"], 2),
                mc("", "she reads", ["a book", "a bird", "a car"], 0)]
    feats = FORMAT.featurize(examples, tok, get_task("cosmosqa"), 64, train=True)
    assert [(len(f["input_ids"]), f["labels"], f["example_index"]) for f in feats] == [(3, 2, 0), (3, 0, 1)]
    decoded = [tok.decode(ids, skip_special_tokens=True) for ids in feats[0]["input_ids"]]
    assert [d.replace(" ", "") for d in decoded] == [
        "themanwalkstotheshopwhatdoesthemanbuy" + e.replace(" ", "") for e in ("bread", "a car", "a house")]
    assert all(ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id for ids in feats[0]["input_ids"])


def test_truncation_drops_the_start_of_the_context(tiny):
    _, tok = tiny
    long_context = " ".join(["the man walks to the shop"] * 20)
    [feat] = FORMAT.featurize([mc(long_context, "what does the man buy", ["bread", "a car"], 1)], tok,
                              get_task("cosmosqa"), 32, train=False)
    for ids, ending in zip(feat["input_ids"], ["bread", "a car"]):
        assert len(ids) == 32
        sep = ids.index(tok.sep_token_id)  # <s> first </s></s> second </s>
        first, second = ids[1:sep], ids[sep + 2:-1]
        kept = tok.decode(first).replace(" ", "")
        full = (long_context + " what does the man buy").replace(" ", "")
        assert full.endswith(kept) and kept.endswith("shopwhatdoesthemanbuy")  # the question survives
        assert len(kept) < len(full) / 4  # the context's start went
        assert tok.decode(second).replace(" ", "") == ending.replace(" ", "")


def test_inconsistent_choices_and_labels_are_errors(tiny):
    _, tok = tiny
    task = get_task("hellaswag")
    with pytest.raises(DataError, match="example 2 has 2 endings, example 1 has 3"):
        FORMAT.featurize([mc("a", "", ["x", "y", "z"], 0), mc("b", "", ["x", "y"], 0)], tok, task, 32, train=True)
    with pytest.raises(DataError, match="label 5 but only 2 endings"):
        FORMAT.featurize([mc("a", "", ["x", "y"], 5)], tok, task, 32, train=True)


def test_collate_pads_every_choice_to_the_batch_width(tiny):
    _, tok = tiny
    examples = [mc("the man", "", ["walks to the shop", "buys"], 0), mc("she", "", ["reads a book about birds",
                                                                                   "sells"], 1)]
    feats = FORMAT.featurize(examples, tok, get_task("hellaswag"), 64, train=True)
    batch = FORMAT.collate(feats, tok)
    width = max(len(ids) for f in feats for ids in f["input_ids"])
    assert batch["input_ids"].shape == (2, 2, width) and batch["attention_mask"].shape == (2, 2, width)
    assert batch["labels"].tolist() == [0, 1]
    assert batch["attention_mask"].sum().item() == sum(len(ids) for f in feats for ids in f["input_ids"])
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tok.pad_token_id).all()


def test_predict_and_score_on_hub_shaped_hellaswag_and_commonsenseqa(tiny, tmp_path, monkeypatch):
    import torch

    from stopover.data import load_examples
    from tests.test_data import hub_repo
    from tests.test_tasks_choice import CSQA, HELLASWAG

    hub_repo(tmp_path, "Rowan/hellaswag", {"default": {"validation": HELLASWAG * 3}})
    hub_repo(tmp_path, "tau/commonsense_qa", {"default": {"validation": [CSQA, {**CSQA, "answerKey": "E"}]}})
    monkeypatch.setenv("STOPOVER_HUB_MIRROR", str(tmp_path))
    path, tok = tiny
    for name, n_choices in (("hellaswag", 4), ("commonsenseqa", 5)):
        task = get_task(name)
        examples = load_examples(task, "dev")
        torch.manual_seed(0)
        model = FORMAT.build_model(str(path), task)
        feats = FORMAT.featurize(examples, tok, task, 48, train=False)
        with torch.no_grad():
            logits = model(**{k: v for k, v in FORMAT.collate(feats, tok).items() if k != "labels"}).logits
        assert logits.shape == (len(examples), n_choices)
        preds = FORMAT.predict(model, feats, examples, task, tok, batch_size=2)
        assert preds == logits.argmax(-1).tolist()
        expected = 100.0 * sum(p == e["label"] for p, e in zip(preds, examples)) / len(examples)
        assert FORMAT.score(task, examples, preds, "eng") == {"accuracy": expected}
    assert FORMAT.score(get_task("cosmosqa"), [mc("", "", ["a", "b"], 1)] * 4, [1, 0, 1, 1], "eng") == \
        {"accuracy": 75.0}


def test_cosmosqa_csv_as_intermediate_task_end_to_end(tmp_path, shared_data):
    from stopover.config import RunConfig, from_dict
    from stopover.grid import run_grid
    from stopover.store import read_results
    from tests.fixtures import write_nli_fixtures

    # CosmosQA's own layout: train.csv(.gz) and valid.csv(.gz); training rows are the first
    # rows of the real validation file, the dev split is the real file itself.
    cosmos = tmp_path / "cosmosqa"
    cosmos.mkdir()
    (cosmos / "valid.csv.gz").symlink_to(shared_data / "cosmosqa" / "valid.csv.gz")
    with gzip.open(shared_data / "cosmosqa" / "valid.csv.gz", "rt", encoding="utf-8") as fh:
        frame = pd.read_csv(fh, dtype=str, keep_default_na=False)
    frame.iloc[100:132].to_csv(cosmos / "train.csv.gz", index=False, compression="gzip")
    data = write_nli_fixtures(tmp_path / "data", train=32, test=8)
    small = {"epochs": 1, "batch_size": 8, "lr": 1e-3, "max_length": 48, "max_dev_examples": 8,
             "precision": "fp32"}
    cfg = from_dict(RunConfig, {
        "name": "mc", "model": "tiny:32x1", "output_dir": str(tmp_path / "runs"), "data_dir": str(data),
        "pool": ["cosmosqa"], "targets": ["xnli"],
        "tasks": {"cosmosqa": {"data_dir": str(cosmos)}, "xnli": {"languages": ["eng", "deu"]}},
        "intermediate": small, "target": {**small, "max_length": 32},
        "evaluation": {"batch_size": 32, "max_length": 32}})
    grid = [SimpleNamespace(strategy="explicit", name="cosmosqa", tasks=("cosmosqa",), budget=None,
                            reference=False)]
    run_dir, pipe = run_grid(cfg, sets=grid)
    rows = read_results(run_dir)
    [dev] = [r for r in rows if r.stage == "intermediate"]
    assert (dev.task, dev.split, dev.metric, dev.language) == ("cosmosqa", "dev", "accuracy", "eng")
    assert dev.value in {100.0 * k / 8 for k in range(9)}  # accuracy over the 8 dev questions
    evals = [r for r in rows if r.stage == "eval" and r.primary]
    assert {(r.task, r.language, r.intermediate) for r in evals} == {("xnli", "eng", "cosmosqa"),
                                                                     ("xnli", "deu", "cosmosqa")}
    assert len(pipe.trained) == 3  # intermediate (multiple choice) + target + evaluation
