"""The tagging format on hand-worked cases: first-sub-token labels, chunking, re-joining, scores."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from stopover.errors import DataError, TaskError
from stopover.formats.tagging import FORMAT, IGNORE, chunk_words, tag_names
from stopover.tasks import get_task

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
WORDS = ["the", "cat", "sat", "un", "##believ", "##able", "dog"]


def wordpiece_tokenizer():
    """A fast tokenizer with a fixed vocabulary: 'unbelievable' -> un ##believ ##able."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, cls_token="<s>", sep_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", bos_token="<s>", eos_token="</s>")


ID = {tok: i for i, tok in enumerate(SPECIALS + WORDS)}
UDPOS = get_task("udpos")
UPOS = UDPOS.labels


def up(tag: str) -> int:
    return UPOS.index(tag)


def test_first_subtoken_labelled_rest_ignored():
    tok = wordpiece_tokenizer()
    ex = {"tokens": ["the", "unbelievable", "cat"], "tags": ["DET", "ADJ", "NOUN"]}
    (feat,) = FORMAT.featurize([ex], tok, UDPOS, 32, train=True)
    assert feat["input_ids"] == [ID["<s>"], ID["the"], ID["un"], ID["##believ"], ID["##able"], ID["cat"], ID["</s>"]]
    assert feat["labels"] == [IGNORE, up("DET"), up("ADJ"), IGNORE, IGNORE, up("NOUN"), IGNORE]
    assert feat["word_ids"] == [-1, 0, 1, -1, -1, 2, -1]
    assert feat["attention_mask"] == [1] * 7 and feat["example_index"] == 0
    # evaluation features carry no labels
    (ev,) = FORMAT.featurize([ex], tok, UDPOS, 32, train=False)
    assert "labels" not in ev and ev["input_ids"] == feat["input_ids"]


def test_word_without_subtokens_becomes_unk():
    tok = wordpiece_tokenizer()
    ex = {"tokens": ["the", "\u00a0", "zebra"], "tags": ["DET", "SYM", "NOUN"]}  # NBSP: no sub-tokens
    (feat,) = FORMAT.featurize([ex], tok, UDPOS, 32, train=True)
    assert feat["input_ids"] == [ID["<s>"], ID["the"], ID["<unk>"], ID["<unk>"], ID["</s>"]]
    assert feat["labels"] == [IGNORE, up("DET"), up("SYM"), up("NOUN"), IGNORE]


def test_chunk_words_by_budget():
    assert chunk_words([1, 3, 1], 4) == [(0, 2), (2, 3)]
    assert chunk_words([2, 2, 2, 2], 4) == [(0, 2), (2, 4)]
    assert chunk_words([5, 1], 4) == [(0, 1), (1, 2)]  # a long word alone (cut later)
    assert chunk_words([], 4) == []


def test_long_sentence_split_between_words():
    tok = wordpiece_tokenizer()
    ex = {"tokens": ["the", "unbelievable", "cat", "sat"], "tags": ["DET", "ADJ", "NOUN", "VERB"]}
    feats = FORMAT.featurize([ex], tok, UDPOS, 6, train=True)  # room for 4 sub-tokens per chunk
    assert [f["input_ids"] for f in feats] == [
        [ID["<s>"], ID["the"], ID["un"], ID["##believ"], ID["##able"], ID["</s>"]],
        [ID["<s>"], ID["cat"], ID["sat"], ID["</s>"]],
    ]
    assert [f["word_ids"] for f in feats] == [[-1, 0, 1, -1, -1, -1], [-1, 2, 3, -1]]
    assert feats[1]["labels"] == [IGNORE, up("NOUN"), up("VERB"), IGNORE]
    assert all(f["example_index"] == 0 for f in feats)
    # a word longer than the window keeps its first sub-tokens; its label stays on the first
    (one, two) = FORMAT.featurize([{"tokens": ["unbelievable", "cat"], "tags": ["ADJ", "NOUN"]}],
                                  tok, UDPOS, 4, train=True)
    assert one["input_ids"] == [ID["<s>"], ID["un"], ID["##believ"], ID["</s>"]]
    assert one["labels"] == [IGNORE, up("ADJ"), IGNORE, IGNORE]
    assert two["word_ids"] == [-1, 1, -1]


class IdModel(torch.nn.Module):
    """Predicts label (input_id mod n) at each position: outputs are known by hand."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None, **_):
        return SimpleNamespace(logits=torch.nn.functional.one_hot(input_ids % self.n, self.n).float())


def test_predictions_rejoined_per_word_across_chunks():
    tok = wordpiece_tokenizer()
    examples = [{"tokens": ["the", "unbelievable", "cat", "sat"], "tags": ["DET", "ADJ", "NOUN", "VERB"]},
                {"tokens": ["dog"], "tags": ["NOUN"]}]
    feats = FORMAT.featurize(examples, tok, UDPOS, 6, train=False)
    assert len(feats) == 3
    preds = FORMAT.predict(IdModel(len(UPOS)), feats, examples, UDPOS, tok, batch_size=2)
    # each word's tag is UPOS[id of its first sub-token mod 17]
    expect = [[UPOS[ID[w] % 17] for w in ("the", "un", "cat", "sat")], [UPOS[ID["dog"] % 17]]]
    assert preds == expect


def test_unknown_tag_is_a_data_error():
    tok = wordpiece_tokenizer()
    with pytest.raises(DataError, match="tag 'NOUNX'"):
        FORMAT.featurize([{"tokens": ["cat"], "tags": ["NOUNX"]}], tok, UDPOS, 16, train=True)
    with pytest.raises(DataError, match="1 tokens but 2 tags"):
        FORMAT.featurize([{"tokens": ["cat"], "tags": ["NOUN", "X"]}], tok, UDPOS, 16, train=True)


def test_scores_per_metric():
    gold = [{"tokens": ["a", "b", "c"], "tags": ["NOUN", "NOUN", "VERB"]}]
    pos = FORMAT.score(UDPOS, gold, [["NOUN", "VERB", "VERB"]], "eng")
    assert pos["token_accuracy"] == pytest.approx(200 / 3) and pos["f1"] == 0.0  # see metrics.pos_scores
    panx = get_task("panx")
    ner = [{"tokens": ["Ana", "Lima", "lives"], "tags": ["B-PER", "I-PER", "O"]}]
    assert FORMAT.score(panx, ner, [["B-PER", "I-PER", "O"]], "eng")["f1"] == 100.0
    assert FORMAT.score(panx, ner, [["B-PER", "O", "O"]], "eng")["f1"] == 0.0
    ccg = get_task("ccg")
    sents = [{"tokens": ["a", "b"], "tags": ["NP", "S\\NP"]}, {"tokens": ["c"], "tags": ["N"]}]
    assert FORMAT.score(ccg, sents, [["NP", "NP"], ["N"]], "eng") == {"accuracy": pytest.approx(200 / 3)}


def test_open_tag_set_maps_rare_tags_to_unknown_and_never_predicts_it():
    tok = wordpiece_tokenizer()
    inventory = ("NP", "N", "<unk>")
    task = replace(get_task("ccg"), format_options=replace(get_task("ccg").format_options, tag_set=lambda t: inventory))
    assert tag_names(task) == inventory
    ex = {"tokens": ["the", "cat"], "tags": ["NP/N", "N"]}  # NP/N is not in the inventory
    (feat,) = FORMAT.featurize([ex], tok, task, 16, train=True)
    assert feat["labels"] == [IGNORE, 2, 1, IGNORE]

    class AlwaysUnknown(IdModel):
        def forward(self, input_ids, attention_mask=None, **_):
            logits = torch.zeros(*input_ids.shape, 3)
            logits[..., 2] = 5.0  # <unk> is the argmax ...
            logits[..., 1] = 1.0  # ... but N is the best real supertag
            return SimpleNamespace(logits=logits)

    (ev,) = FORMAT.featurize([ex], tok, task, 16, train=False)
    assert FORMAT.predict(AlwaysUnknown(3), [ev], [ex], task, tok, 4) == [["N", "N"]]


def test_open_tag_set_needs_its_data_loaded():
    fresh = replace(get_task("ccg"), name="ccg_not_loaded")
    with pytest.raises(TaskError, match="built from its training file"):
        tag_names(fresh)


def test_collate_pads_labels_with_ignore():
    tok = wordpiece_tokenizer()
    feats = FORMAT.featurize([{"tokens": ["the", "cat"], "tags": ["DET", "NOUN"]},
                              {"tokens": ["unbelievable", "dog", "sat"], "tags": ["ADJ", "NOUN", "VERB"]}],
                             tok, UDPOS, 32, train=True)
    batch = FORMAT.collate(feats, tok)
    assert batch["input_ids"].shape == (2, 7) and batch["labels"].shape == (2, 7)
    assert batch["input_ids"][0].tolist()[-3:] == [tok.pad_token_id] * 3
    assert batch["labels"][0].tolist() == [IGNORE, up("DET"), up("NOUN"), IGNORE, IGNORE, IGNORE, IGNORE]
    assert "word_ids" not in batch and "example_index" not in batch
