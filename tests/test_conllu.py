"""The CoNLL-U reader on real UD test sets and on hand-written edge cases."""

from __future__ import annotations

import gzip

import pytest

from stopover.conllu import read_conllu, read_sentences
from stopover.errors import DataError


def test_sentence_counts_match_provenance(shared_data):
    # Counts as PROVENANCE.md lists them for these files.
    expected = {"fr/test": 416, "bg/test": 1116, "ar/test": 1000, "hi/test": 1000, "en/dev": 2001,
                "en/test": 2077}
    for name, count in expected.items():
        assert len(read_sentences(shared_data / "ud" / f"{name}.conllu.gz")) == count, name


def test_sentence_count_equals_sent_id_lines(shared_data):
    # Afrikaans AfriBooms test has 425 sentences (425 `# sent_id` lines and 425 blank
    # lines); PROVENANCE.md says 424, one too few (as for de, es, et, eu, ...).
    path = shared_data / "ud" / "af" / "test.conllu.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        ids = sum(1 for line in fh if line.startswith("# sent_id"))
    sentences = read_sentences(path)
    assert len(sentences) == ids == 425
    assert sentences[0].sent_id == "test-s1" and sentences[0].forms[:2] == ["Verlede", "jaar"]


@pytest.mark.parametrize("lang, fused, words", [
    ("es", "del", ("de", "el")),
    ("de", "zum", ("zu", "dem")),
])
def test_multiword_tokens_keep_the_syntactic_words(shared_data, lang, fused, words):
    path = shared_data / "ud" / lang / "test.conllu.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        ids = [line.split("\t", 1)[0] for line in fh if line[:1].isdigit()]
    word_lines = sum(1 for i in ids if i.isdigit())
    ranges = sum(1 for i in ids if "-" in i)
    sentences = read_sentences(path)
    forms = [f for s in sentences for f in s.forms]
    assert ranges > 200 and len(forms) == word_lines  # every word line read, no range line
    assert fused not in forms  # always split in these treebanks
    pairs = {tuple(s.forms[i:i + 2]) for s in sentences for i in range(len(s.forms) - 1)}
    assert words in pairs
    assert all(len(s.forms) == len(s.upos) == len(s.lines) for s in sentences)
    assert "_" not in {t for s in sentences for t in s.upos}  # range lines carry "_" tags


def test_spanish_first_sentence_exact(shared_data):
    first = read_sentences(shared_data / "ud" / "es" / "test.conllu.gz")[0]
    assert first.forms[4:8] == ["familia", "de", "el", "escritor"]  # "del" split into its words
    assert first.upos[4:8] == ["NOUN", "ADP", "DET", "NOUN"]
    assert len(first.forms) == 23


def test_empty_nodes_and_ranges_skipped(tmp_path):
    path = tmp_path / "x.conllu"
    cols = "\t_\t{}\t_\t_\t0\troot\t_\t_"
    path.write_text("\n".join([
        "# sent_id = s1",
        "1-2\tvámonos" + "\t_" * 8,
        "1\tvamos" + cols.format("VERB"),
        "2\tnos" + cols.format("PRON"),
        "2.1\tgo" + cols.format("VERB"),
        "3\t!" + cols.format("PUNCT"),
        "",
        "# a sentence without words is not a sentence",
        "",
        "1\tsí" + cols.format("INTJ"),  # no trailing blank line at the end of the file
    ]), encoding="utf-8")
    sentences = read_sentences(path)
    assert [s.forms for s in sentences] == [["vamos", "nos", "!"], ["sí"]]
    assert sentences[0].upos == ["VERB", "PRON", "PUNCT"] and sentences[0].lines == [3, 4, 6]
    assert sentences[0].sent_id == "s1" and sentences[1].sent_id is None


def test_malformed_lines_name_file_and_line(tmp_path):
    path = tmp_path / "bad.conllu"
    path.write_text("1\tword\tword\tNOUN\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.conllu:1: expected 10 tab-separated"):
        list(read_conllu(path))
    with pytest.raises(DataError, match="does not exist"):
        list(read_conllu(tmp_path / "missing.conllu"))
