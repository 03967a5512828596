"""Extractive QA: windows and the stride guard, training labels, n-best decoding with the null
answer, scoring per metric, and SQuAD-format English training -> XQuAD in four languages end to end."""

from __future__ import annotations

import pytest

from stopover.errors import ConfigError, DataError
from stopover.formats.span_qa import FORMAT, Answer, decode_answers, featurize_qa, qa_options, window_stride
from stopover.tasks import get_task

CORPUS = ["the dog is big and the cat is small", "where is the cat?", "who owns the red car",
          "Anna owns the red car since 2010", "nobody knows the answer"] * 40
CONTEXT = "the dog is big and the cat is small. " * 4 + "Anna owns the red car since 2010."


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from stopover.models import build_tiny_model, load_tokenizer

    path = build_tiny_model(tmp_path_factory.mktemp("tok"), CORPUS, vocab_size=120, hidden=32, layers=1, heads=2)
    return load_tokenizer(str(path))


def example(question: str, answer: str | None, qid: str = "q", context: str = CONTEXT) -> dict:
    if answer is None:
        return {"id": qid, "question": question, "context": context, "answers": {"text": [], "answer_start": []}}
    return {"id": qid, "question": question, "context": context,
            "answers": {"text": [answer], "answer_start": [context.index(answer)]}}


def window_offsets(tokenizer, ex: dict, max_length: int) -> list[list[tuple[int, int]]]:
    feats = featurize_qa([ex], tokenizer, max_length, train=False)
    return [[o for o in f["offsets"] if o is not None] for f in feats]


# ----------------------------------------------------------------------------- the stride guard


def test_window_stride_is_clamped_below_the_room():
    assert window_stride(128, 300) == 128  # enough room: as asked
    assert window_stride(128, 40) == 20  # half the room
    assert window_stride(128, 3) == 1
    assert window_stride(0, 40) == 0
    for room in range(2, 200):
        assert window_stride(128, room) < room  # what the fast tokenizer requires (it panics otherwise)
    with pytest.raises(ConfigError, match="raise max_length"):
        window_stride(128, 1)


def test_long_context_with_default_stride_and_tiny_windows_does_not_panic(tokenizer):
    # max_length 22 leaves ~8 context tokens: the default doc_stride 128 would make the
    # tokenizer panic; clamped, the windows overlap by half their context room.
    ex = example("where is the cat?", "the cat")
    windows = window_offsets(tokenizer, ex, 22)
    assert len(windows) > 5
    q_len = len(tokenizer(ex["question"], add_special_tokens=False)["input_ids"])
    assert q_len <= (22 - 4) // 2  # short enough not to be cut
    room = 22 - tokenizer.num_special_tokens_to_add(pair=True) - q_len
    stride = room // 2
    for a, b in zip(windows, windows[1:-1]):
        assert len(a) == room
        assert a[-stride:] == b[:stride]  # consecutive windows share exactly `stride` context tokens
    assert windows[0][0][0] == 0 and windows[-1][-1][1] == len(CONTEXT.rstrip())


def test_overlong_question_is_cut_to_fit(tokenizer):
    ex = example("where is the cat " * 30 + "?", "the cat")
    feats = featurize_qa([ex], tokenizer, 32, train=True, max_query_length=64)
    assert feats and all(len(f["input_ids"]) <= 32 for f in feats)
    n_question = sum(1 for o in featurize_qa([ex], tokenizer, 32, train=False)[0]["offsets"] if o is None)
    assert n_question - tokenizer.num_special_tokens_to_add(pair=True) <= (32 - 4) // 2


def test_max_length_too_short_is_a_config_error(tokenizer):
    with pytest.raises(ConfigError, match="too short"):
        featurize_qa([example("where?", "the cat")], tokenizer, 5, train=True)


# ----------------------------------------------------------------------------- training labels


def labelled_texts(tokenizer, ex: dict, max_length: int) -> list[str | None]:
    """The context text each training window's label points at (None: the CLS / no-answer label)."""
    train = featurize_qa([ex], tokenizer, max_length, train=True)
    evals = featurize_qa([ex], tokenizer, max_length, train=False)
    assert len(train) == len(evals)
    out = []
    for t, e in zip(train, evals):
        if (t["start_positions"], t["end_positions"]) == (0, 0):
            out.append(None)
            continue
        start, end = e["offsets"][t["start_positions"]], e["offsets"][t["end_positions"]]
        out.append(ex["context"][start[0]:end[1]].strip())
    return out


def test_answer_labels_point_at_the_answer_in_one_window(tokenizer):
    ex = example("who owns the red car", "Anna")
    feats = featurize_qa([ex], tokenizer, 512, train=True)
    assert len(feats) == 1 and feats[0]["example_index"] == 0
    assert labelled_texts(tokenizer, ex, 512) == ["Anna"]
    # the label tokens are context tokens (offsets None marks question and special tokens)
    offsets = featurize_qa([ex], tokenizer, 512, train=False)[0]["offsets"]
    assert offsets[feats[0]["start_positions"]] is not None and offsets[feats[0]["end_positions"]] is not None


def test_answer_spanning_windows_labels_only_windows_that_hold_it_whole(tokenizer):
    answer = "Anna owns the red car"
    ex = example("when", answer)
    texts = labelled_texts(tokenizer, ex, 28)
    assert len(texts) > 3
    assert set(texts) == {None, answer}  # the right span where the window holds it, CLS elsewhere
    # the windows that hold only part of the answer get the CLS label too
    windows = window_offsets(tokenizer, ex, 28)
    start = CONTEXT.index(answer)
    end = start + len(answer)
    for offsets, text in zip(windows, texts):
        whole = offsets[0][0] <= start and offsets[-1][1] >= end
        assert (text is not None) == whole
    assert any(offsets[0][0] <= start < offsets[-1][1] < end for offsets in windows)  # a cut-off window exists


def test_unanswerable_question_labels_cls_everywhere(tokenizer):
    feats = featurize_qa([example("what is the answer", None)], tokenizer, 24, train=True)
    assert len(feats) > 1
    assert all((f["start_positions"], f["end_positions"]) == (0, 0) for f in feats)


def test_wrong_answer_start_in_training_data_is_an_error(tokenizer):
    ex = example("who", "Anna")
    ex["answers"]["answer_start"] = [3]
    with pytest.raises(DataError, match=r"question 'q'.*set answer_start to"):
        featurize_qa([ex], tokenizer, 64, train=True)


def test_collate_pads_and_carries_positions(tokenizer):
    feats = featurize_qa([example("who", "Anna", "a"), example("where is the cat?", "the cat", "b")],
                         tokenizer, 40, train=True)
    batch = FORMAT.collate(feats[:3], tokenizer)
    assert set(batch) == {"input_ids", "attention_mask", "start_positions", "end_positions"}
    assert batch["input_ids"].shape[0] == 3 and batch["start_positions"].tolist() == [f["start_positions"]
                                                                                     for f in feats[:3]]
    assert "start_positions" not in FORMAT.collate(featurize_qa([example("who", "Anna")], tokenizer, 40,
                                                                train=False), tokenizer)


# ----------------------------------------------------------------------------- decoding


def manual_feature(example_index: int, offsets: list) -> dict:
    return {"input_ids": [0] * len(offsets), "offsets": offsets, "cls_index": 0, "example_index": example_index}


CTX = "Paris is the capital of France."
# tokens: <s> q </s> | Paris(0,5) is(5,8) the(8,12) capital(12,20) of(20,23) France(23,30) .(30,31) | </s>
OFFSETS = [None, None, None, (0, 5), (5, 8), (8, 12), (12, 20), (20, 23), (23, 30), (30, 31), None]


def logits_at(n: int, start: dict[int, float], end: dict[int, float]) -> tuple[list[float], list[float]]:
    s, e = [0.0] * n, [0.0] * n
    for k, v in start.items():
        s[k] = v
    for k, v in end.items():
        e[k] = v
    return s, e


def test_decode_maps_best_span_back_through_offsets():
    ex = {"id": "x", "context": CTX}
    feats = [manual_feature(0, OFFSETS)]
    # the question token 1 has the highest start logit but is not context: ignored
    logits = [logits_at(11, {1: 9.0, 3: 5.0, 8: 1.0}, {3: 4.0, 8: 3.0})]
    [answer] = decode_answers([ex], feats, logits)
    assert answer == Answer("Paris", 9.0, 0.0)
    # end before start is never chosen; an end after the start is
    logits = [logits_at(11, {8: 6.0, 3: -5.0}, {3: 9.0, 8: 2.0})]  # (8, 3) would score 15
    assert decode_answers([ex], feats, logits)[0].text == "France"
    logits = [logits_at(11, {5: 3.0}, {8: 3.0})]
    assert decode_answers([ex], feats, logits)[0].text == "the capital of France"


def test_decode_respects_max_answer_length():
    ex = {"id": "x", "context": CTX}
    logits = [logits_at(11, {3: 5.0, 8: 1.0}, {8: 5.0, 3: 0.5})]
    feats = [manual_feature(0, OFFSETS)]
    assert decode_answers([ex], feats, logits)[0].text == "Paris is the capital of France"
    assert decode_answers([ex], feats, logits, max_answer_length=3)[0].text == "France"  # 6 tokens too long
    assert decode_answers([ex], feats, logits, max_answer_length=1)[0].text == "France"  # 1+5 > 5+0.5
    # only the n-best starts and ends are paired: the top start and top end are 6 tokens apart
    assert decode_answers([ex], feats, logits, max_answer_length=1, n_best=1)[0] == Answer("", None, 0.0)


def test_decode_aggregates_windows_of_an_example():
    ctx = "one two three four"
    ex = {"id": "x", "context": ctx}
    w1 = manual_feature(0, [None, None, (0, 3), (3, 7), (7, 13), None])  # one two three
    w2 = manual_feature(0, [None, None, (7, 13), (13, 18), None])  # three four (overlap)
    logits = [logits_at(6, {0: 1.0, 2: 2.0}, {0: 1.0, 3: 2.0}), logits_at(5, {0: 0.5, 3: 3.0}, {0: 0.5, 3: 3.0})]
    [answer] = decode_answers([ex], [w1, w2], logits)
    assert answer.text == "four" and answer.score == 6.0
    assert answer.null_score == 1.0  # the lowest CLS score over the windows


def test_null_answer_against_best_span_with_threshold():
    ex = {"id": "x", "context": CTX}
    feats = [manual_feature(0, OFFSETS)]
    logits = [logits_at(11, {0: 4.0, 3: 2.0}, {0: 3.0, 3: 2.5})]  # null 7.0, best span 4.5
    assert decode_answers([ex], feats, logits)[0].text == "Paris"  # SQuAD v1: never abstains
    assert decode_answers([ex], feats, logits, unanswerable=True)[0].text == ""  # 7.0 - 4.5 > 0
    assert decode_answers([ex], feats, logits, unanswerable=True, null_threshold=2.5)[0].text == "Paris"
    assert decode_answers([ex], feats, logits, unanswerable=True, null_threshold=2.4)[0].text == ""


def test_qa_options_defaults_and_overrides():
    squad, squad2 = qa_options(get_task("squad")), qa_options(get_task("squad_v2"))
    assert (squad.n_best, squad.max_answer_length, squad.doc_stride, squad.null_threshold) == (20, 30, 128, 0.0)
    assert not squad.unanswerable and squad2.unanswerable


# ----------------------------------------------------------------------------- scoring


def qa_examples(golds: list[list[str]]) -> list[dict]:
    return [{"id": f"q{i}", "question": "?", "context": "c", "answers": {"text": g, "answer_start": [0] * len(g)}}
            for i, g in enumerate(golds)]


def test_score_uses_the_tasks_metric_and_language():
    examples = qa_examples([["Hund"], ["el perro"]])
    preds = ["der Hund", "perro"]
    # SQuAD normalisation removes only English articles; MLQA removes the German ones for German
    assert FORMAT.score(get_task("xquad"), examples, preds, "deu") == {"exact_match": 0.0,
                                                                      "f1": pytest.approx(200 / 3)}
    mlqa_de = FORMAT.score(get_task("mlqa"), examples, preds, "deu")
    assert mlqa_de["exact_match"] == 50.0  # "der Hund" == "Hund" in German; "el perro" keeps "el"
    mlqa_es = FORMAT.score(get_task("mlqa"), examples, preds, "spa")
    assert mlqa_es["exact_match"] == 50.0  # now "el" goes, "der" stays
    v2 = FORMAT.score(get_task("squad_v2"), qa_examples([[], ["Hund"]]), ["", "Hund"], "eng")
    assert v2["exact_match"] == 100.0 and v2["no_ans_exact_match"] == 100.0


def test_score_rejects_duplicate_ids_and_misaligned_predictions():
    examples = qa_examples([["a"], ["b"]])
    examples[1]["id"] = "q0"
    with pytest.raises(DataError, match="occurs twice"):
        FORMAT.score(get_task("squad"), examples, ["a", "b"], "eng")
    with pytest.raises(DataError, match="1 predictions for 2 questions"):
        FORMAT.score(get_task("squad"), qa_examples([["a"], ["b"]]), ["a"], "eng")


# ----------------------------------------------------------------------------- end to end

def test_squad_format_english_training_to_xquad_in_four_languages(tmp_path, shared_data):
    from types import SimpleNamespace

    from stopover.config import RunConfig, from_dict
    from stopover.grid import run_grid
    from stopover.squad import read_squad, write_squad
    from stopover.store import read_results

    # English training data: SQuAD-format JSON made from XQuAD's English questions (a subset of
    # SQuAD v1.1 dev). Test data: the first questions of the real XQuAD files, in XQuAD's own
    # layout; few of them, so the tiny model's tokenizer trains on little text.
    english = read_squad(shared_data / "xquad" / "xquad.en.json.gz")
    write_squad(english[:16], tmp_path / "data" / "squad" / "eng" / "train.json.gz")
    write_squad(english[16:22], tmp_path / "data" / "squad" / "eng" / "dev.json")
    codes = {"ara": "ar", "deu": "de", "eng": "en", "zho": "zh"}
    for code in codes.values():
        rows = read_squad(shared_data / "xquad" / f"xquad.{code}.json.gz")
        write_squad(rows[:6], tmp_path / "xquad" / f"xquad.{code}.json.gz")
    small = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 96, "max_dev_examples": 6,
             "precision": "fp32"}
    cfg = from_dict(RunConfig, {
        "name": "qa", "model": "tiny:32x1", "output_dir": str(tmp_path / "runs"),
        "data_dir": str(tmp_path / "data"), "targets": ["xquad"],
        "tasks": {"xquad": {"data_dir": str(tmp_path / "xquad"), "languages": sorted(codes)}},
        "target": small, "evaluation": {"batch_size": 64, "max_length": 96, "max_examples": 5}})
    run_dir, pipe = run_grid(cfg, sets=[SimpleNamespace(strategy="none", name="none", tasks=(), budget=None,
                                                        reference=False)])
    rows = [r for r in read_results(run_dir) if r.stage == "eval"]
    assert {(r.language, r.metric) for r in rows} == {(lang, m) for lang in codes for m in ("exact_match", "f1")}
    assert all(r.task == "xquad" and r.split == "test" and r.n == 5 and 0 <= r.value <= 100 for r in rows)
    assert {r.language for r in rows if r.primary and r.metric == "f1"} == set(codes)
    assert len(pipe.trained) == 2  # target (trained on squad-format JSON) + evaluation


def test_qa_options_typed_overrides():
    from dataclasses import replace as dc_replace

    from stopover.formats.options import SpanQAOptions

    opts = qa_options(dc_replace(get_task("squad"), format_options=SpanQAOptions(n_best=5, doc_stride=64)))
    assert (opts.n_best, opts.doc_stride, opts.max_answer_length) == (5, 64, 30)
    with pytest.raises(ConfigError):
        qa_options(dc_replace(get_task("squad"), format_options=SpanQAOptions(n_best=0)))
