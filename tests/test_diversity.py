"""Diversity measures: worked examples, directions, composite, task texts, profiles and the CLI."""

from __future__ import annotations

import csv
import gzip
import json
import math
import sys
import types

import numpy as np
import pytest

from stopover import diversity as dv
from stopover import upos
from stopover.errors import ConfigError, TaskError

_TAGGERS: dict[str, upos.UposTagger] = {}


def ud_tagger(shared_data) -> upos.UposTagger:
    """The perceptron trained on UD English-EWT dev (cached on disk for the session)."""
    key = str(shared_data)
    if key not in _TAGGERS:
        tagger = upos.get_tagger("perceptron", train_files=[shared_data / "ud/en/dev.conllu.gz"])
        tagger.load()
        _TAGGERS[key] = tagger
    return _TAGGERS[key]


# ---------------------------------------------------------------- worked examples


def test_mattr_worked_example() -> None:
    # windows of 3 over a b a c: {a,b} -> 2/3, {b,a,c} -> 3/3; mean 5/6
    assert dv.mattr(list("abac"), window=3) == pytest.approx(5 / 6)
    # window 2: ab, ba, ac all have 2 types -> 1
    assert dv.mattr(list("abac"), window=2) == pytest.approx(1.0)
    # shorter than the window: the plain type-token ratio, 3 types / 4 tokens
    assert dv.mattr(list("abac"), window=50) == pytest.approx(3 / 4)
    assert dv.mattr(["x"] * 100, window=50) == pytest.approx(1 / 50)


def test_mtld_worked_example() -> None:
    tokens = "a b a c d e c".split()
    # forward: a(1/1) b(2/2) a(2/3=.667 <= .72: factor 1, reset) c d e (1) c(3/4=.75): end;
    #   partial factor (1-.75)/(1-.72) = .892857; MTLD_f = 7 / 1.892857 = 3.698113
    # backward: c e d c(3/4) a(4/5) b(5/6) a(5/7=.714 <= .72: factor 1, reset): end with nothing left;
    #   MTLD_b = 7 / 1 = 7
    forward = 7 / (1 + 0.25 / 0.28)
    assert dv.mtld(tokens) == pytest.approx((forward + 7) / 2)
    assert dv.mtld(tokens) == pytest.approx(5.349057, abs=1e-6)
    # no repetition at all: one factor, MTLD = N
    assert dv.mtld(list("abcdef")) == pytest.approx(6.0)


def test_distinct_n_exact() -> None:
    texts = [["a", "b", "a"], ["a", "b"]]
    assert dv.distinct_n(texts, 1) == pytest.approx(2 / 5)  # {a, b} of 5 tokens
    assert dv.distinct_n(texts, 2) == pytest.approx(2 / 3)  # ab, ba, ab: never across texts
    s = dv.Sample(["The cat, the DOG.", "a cat"])
    assert s.words == [["the", "cat", "the", "dog"], ["a", "cat"]]
    assert dv.DistinctN(1).compute(s) == pytest.approx(4 / 6)
    assert dv.DistinctN(2).compute(s) == pytest.approx(4 / 4)


def test_ngram_entropy_and_compression_ratio() -> None:
    assert dv.ngram_entropy([["A", "B", "A", "B"]], 1) == pytest.approx(1.0)
    # bigrams AB, BA, AB: -(2/3 log2 2/3 + 1/3 log2 1/3)
    assert dv.ngram_entropy([["A", "B", "A", "B"]], 2) == pytest.approx(0.918295834)
    raw = b"abc abc"
    assert dv.compression_ratio(["abc", "abc"]) == pytest.approx(len(raw) / len(gzip.compress(raw, 9, mtime=0)))
    assert dv.directions()["compression-ratio"] is False  # higher ratio = LESS diverse


def test_vendi_and_cosine_distance_known_values() -> None:
    same = np.tile([[1.0, 2.0, 3.0]], (6, 1))
    assert dv.vendi_score(same) == pytest.approx(1.0)
    assert dv.mean_cosine_distance(same) == pytest.approx(0.0, abs=1e-12)
    ortho = np.eye(5) * np.array([[1.0], [2.0], [0.5], [3.0], [1.0]])  # cosine ignores length
    assert dv.vendi_score(ortho) == pytest.approx(5.0)
    assert dv.mean_cosine_distance(ortho) == pytest.approx(1.0)
    # two clusters of identical vectors, orthogonal to each other: 2 effective items
    assert dv.vendi_score(np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=float)) == pytest.approx(2.0)
    x = np.random.default_rng(0).normal(size=(7, 4))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    k = u @ u.T
    lam = np.linalg.eigvalsh(k / 7)
    lam = lam[lam > 1e-12]
    assert dv.vendi_score(x) == pytest.approx(math.exp(-np.sum(lam * np.log(lam))))
    assert dv.mean_cosine_distance(x) == pytest.approx(1 - (k.sum() - 7) / 42)
    score = dv.union_vendi({"a": same[:3], "b": same[3:], "c": np.array([[0.0, 0.0, 1.0], [3.0, -1.0, -1 / 3]])})
    assert score(["a", "b"]) == pytest.approx(1.0)
    assert score(["a", "c"]) > score(["a", "b"])
    with pytest.raises(ConfigError, match="zzz"):
        score(["zzz"])


# ---------------------------------------------------------------- repetition vs variety

VARIED = [
    "The committee approved the new budget after a long debate.",
    "Could you send me the photos from last summer?",
    "Heavy rain flooded several roads near the old harbour.",
    "She quietly finished her third novel in Lisbon.",
    "Why do cats always land on their feet?",
    "Our team lost the final match by two goals.",
    "The recipe needs fresh basil, garlic and olive oil.",
    "Astronomers discovered a distant planet orbiting two suns.",
    "I haven't seen him since the conference in March.",
    "Prices rose sharply because of the drought.",
    "Please turn off the lights before leaving.",
    "Ancient Greek theatres were built into hillsides.",
    "My grandmother grows tomatoes on her balcony.",
    "The software update fixed a serious security flaw.",
    "They argued loudly about politics during dinner.",
    "Volcanic ash grounded hundreds of flights across Europe.",
]
REPEATED = ["The cat sat on the mat."] * len(VARIED)


def test_repetition_is_less_diverse_by_every_measure(shared_data, tmp_path) -> None:
    from stopover.models import build_tiny_model, load_encoder, load_tokenizer

    path = build_tiny_model(tmp_path / "tiny", VARIED + REPEATED, vocab_size=150, hidden=32, layers=2, heads=2)
    model, tok = load_encoder(str(path)), load_tokenizer(str(path))
    tagger = ud_tagger(shared_data)
    kwargs = dict(model=model, tokenizer=tok, tagger=tagger, sample=100, seed=0)
    varied = dv.profile_texts(VARIED, **kwargs)
    repeated = dv.profile_texts(REPEATED, **kwargs)
    assert set(varied) == set(dv.MEASURES)
    for m in dv.MEASURES.values():
        if m.higher_is_more_diverse:
            assert varied[m.name] > repeated[m.name], m.name
        else:
            assert varied[m.name] < repeated[m.name], m.name
    assert repeated["vendi"] == pytest.approx(1.0, abs=1e-4)
    assert repeated["mattr"] == pytest.approx(5 / 50)  # the, cat, sat, on, mat in every window
    assert repeated["distinct-1"] == pytest.approx(5 / (6 * len(REPEATED)))
    comp = dv.composite({"varied": varied, "repeated": repeated})
    assert comp["varied"] == pytest.approx(1.0) and comp["repeated"] == pytest.approx(-1.0)


def test_profile_texts_without_model_skips_semantic_measures_and_checks_names(shared_data) -> None:
    prof = dv.profile_texts(VARIED, tagger=ud_tagger(shared_data), sample=5, seed=1)
    assert "vendi" not in prof and "upos-entropy-1" in prof and "mattr" in prof
    lexical = dv.profile_texts(VARIED, measures=["mattr", "distinct-2"])  # no tagger needed
    assert list(lexical) == ["mattr", "distinct-2"]
    with pytest.raises(ConfigError, match="did you mean mattr"):
        dv.profile_texts(VARIED, measures=["matr"])
    with pytest.raises(ConfigError, match="sentence embeddings"):
        dv.profile_texts(VARIED, measures=["vendi"])


def test_a_user_measure_is_one_function(monkeypatch) -> None:
    monkeypatch.setattr(dv.measures, "MEASURES", dict(dv.MEASURES))

    @dv.measure("mean-words", higher_is_more_diverse=True)
    def mean_words(sample: dv.Sample) -> float:
        return sum(map(len, sample.words)) / len(sample.words)

    assert dv.profile_texts(["a b", "c d e f"], measures=["mean-words"]) == {"mean-words": 3.0}
    assert dv.directions()["mean-words"] is True


def test_sample_is_seeded_fixed_size_and_drops_empty_texts() -> None:
    texts = [f"text {i}" for i in range(50)] + ["", "  "]
    a = dv.sample_texts(texts, 10, seed=4)
    assert a == dv.sample_texts(texts, 10, seed=4)
    assert len(a) == len(set(a)) == 10 and a != dv.sample_texts(texts, 10, seed=5)
    assert sorted(dv.sample_texts(texts, 500, seed=0)) == sorted(texts[:50])


# ---------------------------------------------------------------- composite


def test_composite_aligns_signs_and_drops_constant_measures() -> None:
    profiles = {"a": {"mattr": 1.0, "compression-ratio": 3.0, "upos-distinct-1": 17.0},
                "b": {"mattr": 3.0, "compression-ratio": 1.0, "upos-distinct-1": 17.0},
                "c": {"mattr": 2.0, "compression-ratio": 2.0, "upos-distinct-1": 17.0}}
    z = dv.zscores(profiles)
    sd = math.sqrt(2 / 3)
    assert z["a"] == pytest.approx({"mattr": -1 / sd, "compression-ratio": -1 / sd})  # constant one dropped
    assert dv.composite(profiles) == pytest.approx({"a": -1 / sd, "b": 1 / sd, "c": 0.0})
    assert dv.composite({"only": {"mattr": 0.5}}) == {"only": 0.0}
    with pytest.raises(ConfigError, match="mystery"):
        dv.composite({"a": {"mystery": 1.0}, "b": {"mystery": 2.0}})
    assert dv.composite({"a": {"mystery": 1.0}, "b": {"mystery": 2.0}},
                        higher_is_more_diverse={"mystery": False}) == {"a": 1.0, "b": -1.0}


def _real_samples(shared_data) -> dict[str, list[str]]:
    ud = [" ".join(forms) for forms, _ in upos.read_conllu(shared_data / "ud/en/dev.conllu.gz")]
    with gzip.open(shared_data / "cosmosqa/valid.csv.gz", "rt", encoding="utf-8") as f:
        cosmos = [row["context"] for row in csv.DictReader(f)]
    with gzip.open(shared_data / "xquad/xquad.en.json.gz", "rt", encoding="utf-8") as f:
        squad = json.load(f)
    questions = [qa["question"] for art in squad["data"] for p in art["paragraphs"] for qa in p["qas"]]
    return {"ud-ewt": ud, "cosmosqa-contexts": cosmos, "xquad-questions": questions}


def test_composite_ranking_is_stable_across_sample_seeds(shared_data) -> None:
    samples = _real_samples(shared_data)
    tagger = ud_tagger(shared_data)
    rankings = []
    for seed in (0, 1, 2):
        profiles = {name: dv.profile_texts(texts, tagger=tagger, sample=200, seed=seed)
                    for name, texts in samples.items()}
        comp = dv.composite(profiles)
        rankings.append(sorted(comp, key=comp.get, reverse=True))
    # measured: UD (~+0.8) > Cosmos QA contexts (~0.0) > XQuAD questions (~-0.8) for every seed
    assert rankings == [["ud-ewt", "cosmosqa-contexts", "xquad-questions"]] * 3


# ---------------------------------------------------------------- task texts, profile_task, CLI


def test_task_texts_per_format() -> None:
    assert dv.task_texts("classification", [{"text_a": "A b.", "text_b": "C d.", "label": 0},
                                            {"text_a": "Solo.", "text_b": None, "label": 1}]) == ["A b. C d.", "Solo."]
    assert dv.task_texts("tagging", [{"tokens": ["I", "ran", "."], "tags": ["PRON", "VERB", "PUNCT"]}]) == ["I ran ."]
    assert dv.task_texts("span_qa", [{"id": "1", "question": "Who?", "context": "Ann did.",
                                      "answers": {"text": [], "answer_start": []}}]) == ["Who? Ann did."]
    assert dv.task_texts("multiple_choice", [{"context": "Ctx.", "question": "Q?", "endings": ["x", "y"],
                                              "label": 0}]) == ["Ctx. Q? x y"]
    assert dv.task_texts("retrieval", [{"source": "Hallo.", "target": "Hello."}]) == ["Hello."]
    with pytest.raises(TaskError, match="nonsense"):
        dv.task_texts("nonsense", [])


PAIRS = {
    "alpha": [{"text_a": f"The {w} waited by the river for {n} hours.", "text_b": f"Someone waited {n} hours.",
               "label": 0} for w in ("farmer", "child", "doctor", "pilot", "singer") for n in ("two", "six")],
    "beta": [{"text_a": "It is good.", "text_b": "It is good.", "label": 1}] * 10,
}


def _fake_data(monkeypatch) -> dict[str, int]:
    """Replace task lookup and loading with two in-memory classification tasks."""
    calls: dict = {"load": 0, "data_dir": []}
    fake_tasks = types.ModuleType("stopover.tasks")
    fake_tasks.get_task = lambda name: types.SimpleNamespace(name=name, format="classification",
                                                             languages=("eng",), hub=None)
    fake_data = types.ModuleType("stopover.data")

    def load_examples(task, split="train", language="eng", data_dir=None):
        calls["load"] += 1
        calls["data_dir"].append(data_dir)
        return PAIRS[task.name]

    fake_data.load_examples = load_examples
    monkeypatch.setitem(sys.modules, "stopover.tasks", fake_tasks)
    monkeypatch.setitem(sys.modules, "stopover.data", fake_data)
    return calls


def test_profile_task_is_cached_by_settings_and_data(monkeypatch) -> None:
    _fake_data(monkeypatch)
    monkeypatch.setattr(dv.measures, "MEASURES", dict(dv.MEASURES))
    computed = []

    @dv.measure("counted")
    def counted(sample: dv.Sample) -> float:
        computed.append(len(sample.texts))
        return float(len(sample.texts))

    args = dict(model_source="none", sample=4, seed=0, measures=["mattr", "counted"])
    first = dv.profile_task("alpha", **args)
    assert first["measures"]["counted"] == 4.0 and first["n_examples"] == 10 and first["n_sample"] == 4
    assert first["tagger"] is None and first["model"] is None
    assert dv.profile_task("alpha", **args) == first and computed == [4]  # from the cache
    dv.profile_task("alpha", **dict(args, seed=1))
    dv.profile_task("alpha", **dict(args, sample=3))
    assert computed == [4, 4, 3]
    PAIRS["alpha"].append({"text_a": "A new sentence arrived.", "text_b": None, "label": 0})
    try:
        dv.profile_task("alpha", **dict(args, sample=100))
        dv.profile_task("alpha", **dict(args, sample=100))
        PAIRS["alpha"][-1] = {"text_a": "Changed data is never served stale.", "text_b": None, "label": 0}
        dv.profile_task("alpha", **dict(args, sample=100))
    finally:
        PAIRS["alpha"].pop()
    assert computed == [4, 4, 3, 11, 11]
    with pytest.raises(ConfigError, match="tiny models"):
        dv.profile_task("alpha", model_source="tiny:32x2", sample=4, measures=["vendi"])


def test_cli_writes_table_csv_and_plot(shared_data, monkeypatch, tmp_path, capsys) -> None:
    from stopover.cli import main

    calls = _fake_data(monkeypatch)
    monkeypatch.setenv(upos.TRAIN_ENV, str(shared_data / "ud/en/dev.conllu.gz"))
    out = tmp_path / "div"
    root = tmp_path / "data"
    (root / "alpha").mkdir(parents=True)
    rc = main(["diversity", "alpha", "beta", "--model", "none", "--sample", "50", "--out", str(out),
               "--data-dir", str(root)])
    assert rc == 0
    # DIR/<task> when it exists (a run config's data_dir layout), else DIR itself
    assert calls["data_dir"] == [str(root / "alpha"), str(root)]
    printed = capsys.readouterr().out
    assert "composite" in printed and "alpha" in printed and "upos-entropy-2" in printed
    with open(out / "diversity.csv", encoding="utf-8") as f:
        rows = {r["task"]: r for r in csv.DictReader(f)}
    assert float(rows["alpha"]["composite"]) > 0 > float(rows["beta"]["composite"])
    assert float(rows["alpha"]["mattr"]) > float(rows["beta"]["mattr"])
    assert rows["beta"]["tagger"].startswith("perceptron(ud:") and rows["beta"]["n_sample"] == "10"
    assert (out / "diversity.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["diversity", "alpha", "--sample", "0", "--model", "none", "--out", str(out)]) == 2
