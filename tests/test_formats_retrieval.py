"""The retrieval format: blocked k-NN, margin mining, Tatoeba direction, BUCC threshold transfer."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from stopover.errors import DataError, TaskError
from stopover.formats import retrieval
from stopover.formats.options import RetrievalOptions
from stopover.formats.retrieval import FORMAT, bucc_sides, knn, margin_mine, mine_candidates, retrieval_layer
from stopover.tasks import get_task

TATOEBA, BUCC = get_task("tatoeba"), get_task("bucc")


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def fake_model(layers: int = 12):
    return SimpleNamespace(config=SimpleNamespace(num_hidden_layers=layers))


@pytest.fixture
def vectors(monkeypatch):
    """Replace the encoder by a table text -> vector (the tests state every vector by hand)."""
    table: dict[str, np.ndarray] = {}

    def embed(texts, model, tokenizer, layer, batch_size, max_length):
        return unit(np.stack([table[t] for t in texts])) if texts else np.zeros((0, 32), np.float32)

    monkeypatch.setattr(retrieval, "_embed", embed)
    return table


# ------------------------------------------------------------------ pieces


def test_knn_matches_brute_force_across_blocks():
    rng = np.random.default_rng(0)
    q, d = unit(rng.normal(size=(37, 8))), unit(rng.normal(size=(53, 8)))
    sims, inds = knn(q, d, 4, block=5, db_block=7)
    full = q @ d.T
    expect = np.argsort(-full, axis=1, kind="stable")[:, :4]
    assert (inds == expect).all()
    assert np.allclose(sims, np.take_along_axis(full, expect, 1), atol=1e-6)
    assert knn(q, d[:2], 4)[1].shape == (37, 2)  # k is capped by the database size


def test_layer_choice():
    assert retrieval_layer(fake_model(24), TATOEBA) == 14  # XTREME's XLM-R large setting
    assert retrieval_layer(fake_model(12), TATOEBA) == 7
    assert retrieval_layer(fake_model(24), BUCC) == 8 and retrieval_layer(fake_model(12), BUCC) == 4
    assert retrieval_layer(fake_model(2), TATOEBA) == 1  # never the embedding layer
    assert retrieval_layer(fake_model(12), replace(TATOEBA, format_options=RetrievalOptions(layer=8))) == 8
    with pytest.raises(TaskError, match="layer_fraction"):
        retrieval_layer(fake_model(12), replace(TATOEBA, format_options=RetrievalOptions(layer_fraction=1.5)))
    with pytest.raises(TaskError, match="outside 0..12"):
        retrieval_layer(fake_model(12), replace(TATOEBA, format_options=RetrievalOptions(layer=13)))


def named_model(layers: int, name: str = "", **hint):
    return SimpleNamespace(config=SimpleNamespace(num_hidden_layers=layers, name_or_path=name, **hint))


def test_sentence_embedders_use_their_last_layer():
    e5 = named_model(12, "/home/u/.cache/stopover/embedded/multilingual-e5-small/1571fc982750/model")
    assert retrieval_layer(e5, TATOEBA) == 12 and retrieval_layer(e5, BUCC) == 12
    assert retrieval_layer(named_model(24, "xlm-roberta-large"), TATOEBA) == 14  # MLM encoder: XTREME's
    stage = named_model(12, "runs/x/stages/abc/encoder")  # fine-tuned from e5: the run's base model says so
    assert retrieval_layer(stage, TATOEBA) == 7
    assert retrieval_layer(stage, TATOEBA, model_source="embedded:multilingual-e5-small") == 12
    assert retrieval_layer(stage, TATOEBA, model_source="intfloat/multilingual-e5-base") == 12
    assert retrieval_layer(named_model(12, "x", sentence_embedder=True), TATOEBA) == 12  # a config hint
    assert retrieval_layer(named_model(12, "intfloat/multilingual-e5-small", sentence_embedder=False),
                           TATOEBA) == 7  # the hint wins over the name
    assert retrieval_layer(named_model(12).config, TATOEBA) == 7  # a config alone will do


def test_the_config_override_wins_and_is_checked():
    e5 = named_model(12, "multilingual-e5-small")
    assert retrieval_layer(e5, TATOEBA, 7) == 7
    assert retrieval_layer(named_model(12), TATOEBA, -1) == 12  # recorded as its non-negative index
    assert retrieval_layer(named_model(12), replace(TATOEBA, format_options=RetrievalOptions(layer=3)), 5) == 5
    with pytest.raises(TaskError, match="outside 0..12"):
        retrieval_layer(e5, TATOEBA, 13)
    with pytest.raises(TaskError, match="must be an integer"):
        retrieval_layer(e5, TATOEBA, "8")


def test_search_runs_in_fp32_under_bf16_autocast():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    q, d = unit(rng.normal(size=(20, 64))), unit(rng.normal(size=(30, 64)))
    exact = q @ d.T
    # English query e0; the right sentence (index 1) beats index 0 by 2e-5 in cosine, which bf16
    # (about 3 significant digits) rounds to a tie, and ties go to the lower index.
    near_q, near_d = unit([[1.0, 0.0]]), unit([[1.0, 0.021], [1.0, 0.02]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sims, inds = knn(q, d, 3)
        assert retrieval.nearest(near_q, near_d) == [1]
        pairs = margin_mine(q, d, k=4)
    assert sims.dtype == np.float32
    assert np.allclose(sims, np.take_along_axis(exact, inds, 1), atol=1e-6)
    assert pairs == margin_mine(q, d, k=4)  # the same mining with autocast off


def test_predict_records_the_layer_it_used(vectors):
    e = np.eye(32)
    vectors.update({"s0": e[0], "s1": e[1], "t0": e[0], "t1": e[1] + 0.5 * e[0]})
    examples = [{"source": "s0", "target": "t0"}, {"source": "s1", "target": "t1"}]
    feats = FORMAT.featurize(examples, None, TATOEBA, 32, train=False)
    preds = FORMAT.predict(named_model(12, "multilingual-e5-small"), feats, examples, TATOEBA, None, 8)
    assert preds == [0, 1] and preds.side["layer"] == 12
    assert preds.side["similarity"][0] == pytest.approx(1.0)
    preds = FORMAT.predict(fake_model(12), feats, examples, TATOEBA, None, 8)
    assert preds.side["layer"] == 7
    # the pipeline resolves the layer (override, base model) once and hands it over in the task
    layer = retrieval_layer(fake_model(12), TATOEBA, model_source="embedded:multilingual-e5-small")
    preds = FORMAT.predict(fake_model(12), feats, examples, retrieval.with_layer(TATOEBA, layer), None, 8)
    assert preds.side["layer"] == 12 and retrieval.with_layer(BUCC, 3).format_options.neighbourhood == 4


def test_no_training():
    with pytest.raises(TaskError, match="no training"):
        FORMAT.featurize([{"source": "a", "target": "b"}], None, TATOEBA, 32, train=True)
    feats = FORMAT.featurize([{"source": "a", "target": "b"}] * 2, None, TATOEBA, 48, train=False)
    assert feats == [{"example_index": 0, "max_length": 48}, {"example_index": 1, "max_length": 48}]


# ------------------------------------------------------------------ Tatoeba


def test_tatoeba_queries_with_english_by_default(vectors):
    e = np.eye(32)
    # source (non-English) i and English j: English 0 and 1 both lie nearest source 0;
    # source 1 lies nearest English 1. So English->source gets 1 of 2, source->English 2 of 2.
    vectors.update({"s0": e[0], "s1": e[1] + 0.9 * e[0], "t0": e[0] + 0.1 * e[2], "t1": e[0] + 0.2 * e[1]})
    examples = [{"source": "s0", "target": "t0"}, {"source": "s1", "target": "t1"}]
    feats = FORMAT.featurize(examples, None, TATOEBA, 32, train=False)
    preds = FORMAT.predict(fake_model(), feats, examples, TATOEBA, None, 8)
    assert preds == [0, 0]  # English sentence j -> index of the nearest source sentence
    assert FORMAT.score(TATOEBA, examples, preds, "deu") == {"accuracy": 50.0}
    reverse = replace(TATOEBA, format_options=replace(TATOEBA.format_options, queries="source"))
    preds = FORMAT.predict(fake_model(), feats, examples, reverse, None, 8)
    assert preds == [0, 1] and FORMAT.score(reverse, examples, preds, "deu") == {"accuracy": 100.0}


# ------------------------------------------------------------------ margin mining


def test_margin_mine_prefers_isolated_pairs_over_hubs():
    e = np.eye(32)
    x = unit([e[0], e[1], e[2]])  # x2 is a hub: close to three targets at once
    y = unit([e[0] + 0.1 * e[10], e[1] + 0.1 * e[11], e[2] + e[5], e[2] + e[6], e[2] + e[7]])
    pairs = margin_mine(x, y, k=4)
    assert [(i, j) for i, j, _ in pairs] == [(0, 0), (1, 1), (2, 2)]
    # ratio margin: cos / mean of the two k-NN averages (k = 4 over y, but only 3 sources exist)
    cos = float(x[0] @ y[0])
    assert pairs[0][2] == pytest.approx(cos / ((cos / 4 + cos / 3) / 2), rel=1e-5)
    hub = float(x[2] @ y[2])  # x2's 4-NN: three targets at `hub`, one at 0; y2's 3-NN: x2 only
    assert pairs[2][2] == pytest.approx(hub / ((3 * hub / 4 + hub / 3) / 2), rel=1e-5)
    # each sentence at most once
    assert len({i for i, _, _ in pairs}) == len({j for _, j, _ in pairs}) == len(pairs)


def test_repeated_sentences_never_pair():
    e = np.eye(32)
    table = {"a": e[0], "b": e[1], "A": e[0], "B": e[1] + 0.01 * e[3]}
    embed = lambda texts: unit(np.stack([table[t] for t in texts]))  # noqa: E731
    source = {"s1": "a", "s2": "b"}
    assert sorted((s, t) for s, t, _ in mine_candidates(source, {"t1": "A", "t2": "B"}, embed)) == \
        [("s1", "t1"), ("s2", "t2")]
    # "B" twice on the target side: embedded once, but no pair may use it (as XTREME's read_sent2id)
    cands = mine_candidates(source, {"t1": "A", "t2": "B", "t3": "B"}, embed)
    assert [(s, t) for s, t, _ in cands] == [("s1", "t1")]


# ------------------------------------------------------------------ BUCC


def bucc_rows(part: str, sources: dict, targets: dict, gold: list) -> list[dict]:
    rows = [{"source": t, "target": "", "source_id": f"{part}/{i}", "target_id": ""} for i, t in sources.items()]
    rows += [{"source": "", "target": t, "source_id": "", "target_id": f"{part}/{i}"} for i, t in targets.items()]
    rows += [{"source": "", "target": "", "source_id": f"{part}/{s}", "target_id": f"{part}/{t}"} for s, t in gold]
    return rows


def test_bucc_threshold_from_sample_applied_to_test(vectors):
    e = np.eye(32)
    vectors.update({
        # sample: two true pairs, one hub sentence with no translation
        "sa": e[0], "sb": e[1], "sc": e[2],
        "ta": e[0] + 0.1 * e[10], "tb": e[1] + 0.1 * e[11],
        "tc": e[2] + e[5], "td": e[2] + e[6], "te": e[2] + e[7],
        # test: two true pairs, a hub, and a gold pair the embeddings cannot find
        "xa": e[12], "xb": e[13], "xc": e[14], "xd": e[20],
        "ya": e[12] + 0.1 * e[22], "yb": e[13] + 0.1 * e[23],
        "yc": e[14] + e[15], "yd": e[14] + e[16], "ye": e[14] + e[17], "yf": e[21],
    })
    examples = (bucc_rows("sample", {"de-1": "sa", "de-2": "sb", "de-3": "sc"},
                          {"en-1": "ta", "en-2": "tb", "en-3": "tc", "en-4": "td", "en-5": "te"},
                          [("de-1", "en-1"), ("de-2", "en-2")])
                + bucc_rows("test", {"de-1": "xa", "de-2": "xb", "de-3": "xc", "de-4": "xd"},
                            {"en-1": "yb", "en-2": "ya", "en-3": "yc", "en-4": "yd", "en-5": "ye", "en-6": "yf"},
                            [("de-1", "en-2"), ("de-2", "en-1"), ("de-4", "en-6")]))
    feats = FORMAT.featurize(examples, None, BUCC, 32, train=False)
    preds = FORMAT.predict(fake_model(), feats, examples, BUCC, None, 8)
    by_id = {ex["source_id"]: p for ex, p in zip(examples, preds) if ex["source"]}
    # the threshold (between ~4 and ~2) keeps the true pairs and drops the hub's
    assert by_id == {"sample/de-1": None, "sample/de-2": None, "sample/de-3": None,  # sample rows: no prediction
                     "test/de-1": "test/en-2", "test/de-2": "test/en-1", "test/de-3": None, "test/de-4": None}
    assert len(preds) == len(examples)
    scores = FORMAT.score(BUCC, examples, preds, "deu")
    assert scores["precision"] == 100.0 and scores["recall"] == pytest.approx(200 / 3)
    assert scores["f1"] == pytest.approx(80.0)


def test_bucc_needs_raw_rows_and_a_sample():
    hub_like = [{"source": "Hallo", "target": "Hello", "source_id": "", "target_id": ""}]
    with pytest.raises(DataError, match="raw BUCC 2018 files"):
        bucc_sides(hub_like)
    only_test = bucc_rows("test", {"de-1": "a"}, {"en-1": "b"}, [("de-1", "en-1")])
    with pytest.raises(DataError, match="sample"):
        FORMAT.predict(fake_model(), [], only_test, BUCC, None, 8)
