"""The UPOS tagger: tokenizer, CoNLL-U reading, perceptron accuracy and caching, tagger choice."""

from __future__ import annotations

import json

import pytest

from stopover import upos
from stopover.errors import ConfigError, DataError


def test_tokenize_splits_clitics_and_punctuation() -> None:
    assert upos.tokenize("I don't think John's e-mail costs $3.50, really!") == [
        "I", "do", "n't", "think", "John", "'s", "e-mail", "costs", "$", "3.50", ",", "really", "!"]
    assert upos.tokenize("They'll CAN'T") == ["They", "'ll", "CA", "N'T"]
    assert upos.tokenize("  ") == []


def test_read_conllu_skips_comments_ranges_and_empty_nodes(tmp_path) -> None:
    text = (
        "# sent_id = 1\n# text = Don't go.\n"
        "1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
        "1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_\n"
        "2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_\n"
        "3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_\n"
        "3.1\tgone\tgo\tVERB\tVBN\t_\t_\t_\t3:conj\t_\n"
        "4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_\n"
        "\n"
        "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n"
    )
    path = tmp_path / "x.conllu"
    path.write_text(text, encoding="utf-8")
    assert list(upos.read_conllu(path)) == [
        (["Do", "n't", "go", "."], ["AUX", "PART", "VERB", "PUNCT"]),
        (["Hi"], ["INTJ"]),
    ]
    bad = tmp_path / "bad.conllu"
    bad.write_text("1\tonly\tthree\n", encoding="utf-8")
    with pytest.raises(DataError, match="bad.conllu:1"):
        list(upos.read_conllu(bad))


def test_perceptron_learns_a_toy_language_and_is_seeded() -> None:
    sents = [(["the", "dog", "runs"], ["DET", "NOUN", "VERB"]),
             (["a", "cat", "sleeps"], ["DET", "NOUN", "VERB"]),
             (["the", "cat", "runs"], ["DET", "NOUN", "VERB"])] * 5
    a = upos.PerceptronTagger.train(sents, iterations=5, seed=3)
    b = upos.PerceptronTagger.train(sents, iterations=5, seed=3)
    assert a.weights == b.weights
    assert a.tag(["a", "dog", "sleeps"]) == ["DET", "NOUN", "VERB"]
    assert a.tag([]) == []
    # JSON round trip gives the same tagger
    c = upos.PerceptronTagger.from_dict(json.loads(json.dumps(a.to_dict())))
    assert c.tag(["the", "dog", "sleeps"]) == a.tag(["the", "dog", "sleeps"])


def test_perceptron_accuracy_on_ud_english_ewt_test(shared_data) -> None:
    # Trained on EWT dev (2,001 sentences), scored on EWT test (2,077): measured 0.911.
    tagger = upos.get_tagger("perceptron", train_files=[shared_data / "ud/en/dev.conllu.gz"])
    test = list(upos.read_conllu(shared_data / "ud/en/test.conllu.gz"))
    acc = upos.accuracy(tagger, test)
    assert acc >= 0.90, acc
    assert tagger.name.startswith("perceptron(ud:")
    # the weights were cached as JSON; a fresh tagger with the same data loads them, same tags
    assert tagger.cache_path.is_file()
    again = upos.get_tagger("perceptron", train_files=[shared_data / "ud/en/dev.conllu.gz"])
    assert again.name == tagger.name
    words = test[0][0]
    assert again.tag(words) == tagger.tag(words)


def test_training_files_from_environment(tmp_path, monkeypatch) -> None:
    f = tmp_path / "tiny.conllu"
    f.write_text("1\tHello\thello\tINTJ\tUH\t_\t0\troot\t_\t_\n2\t!\t!\tPUNCT\t.\t_\t1\tpunct\t_\t_\n\n",
                 encoding="utf-8")
    monkeypatch.setenv(upos.TRAIN_ENV, str(f))
    tagger = upos.get_tagger("perceptron", iterations=2)
    assert tagger.files == [f]
    assert tagger.tag(["Hello", "!"]) == ["INTJ", "PUNCT"]
    monkeypatch.setenv(upos.TRAIN_ENV, str(tmp_path / "missing.conllu"))
    with pytest.raises(DataError, match="missing.conllu"):
        upos.get_tagger("perceptron")


def test_tagger_choice_errors() -> None:
    with pytest.raises(ConfigError, match="'auto', 'spacy', 'perceptron'|auto, spacy, perceptron"):
        upos.get_tagger("nltk")
    if not upos.spacy_available():
        with pytest.raises(ConfigError, match="en_core_web_sm"):
            upos.get_tagger("spacy")
