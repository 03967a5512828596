"""Sentence-pair local files: XTREME's headerless TSVs (XNLI, PAWS-X) and ANLI's release jsonl."""

from __future__ import annotations

import gzip
import json

import pytest

from stopover.data import load_examples
from stopover.errors import DataError, LanguageError
from stopover.tasks import get_task


def write_gz(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(text)


# ------------------------------------------------------------------ XNLI / PAWS-X


def test_xnli_xtreme_tsv_without_header(tmp_path):
    write_gz(tmp_path / "dev-de.tsv.gz", 'Er sagt "ja".\tEr stimmt zu.\tentailment\nA\tB\tcontradiction\n')
    (tmp_path / "dev-en.tsv").write_text("He left.\tHe stayed.\tcontradiction\n", encoding="utf-8")
    german = load_examples("xnli", "dev", "deu", data_dir=tmp_path)
    # XNLI's quotes are ordinary characters; labels mapped by name
    assert german == [{"text_a": 'Er sagt "ja".', "text_b": "Er stimmt zu.", "label": 0},
                      {"text_a": "A", "text_b": "B", "label": 2}]
    assert load_examples("xnli", "dev", "eng", data_dir=tmp_path)[0]["label"] == 2


def test_xnli_bad_rows_and_unlabelled_test_files(tmp_path):
    (tmp_path / "dev-fr.tsv").write_text("only one field\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dev-fr.tsv:1: expected 3 tab-separated fields"):
        load_examples("xnli", "dev", "fra", data_dir=tmp_path)
    (tmp_path / "test-fr.tsv").write_text("a\tb\nc\td\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test-fr.tsv: no labels .*tasks.xnli.files"):
        load_examples("xnli", "test", "fra", data_dir=tmp_path)


def test_flat_tsv_with_header_still_reads(tmp_path):
    (tmp_path / "deu").mkdir()
    (tmp_path / "deu" / "test.tsv").write_text("sentence1\tsentence2\tgold_label\nA\tB\tneutral\n",
                                               encoding="utf-8")
    assert load_examples("xnli", "test", "deu", data_dir=tmp_path) == [{"text_a": "A", "text_b": "B", "label": 1}]


def test_pawsx_csv_quoting_is_undone(tmp_path):
    write_gz(tmp_path / "dev-de.tsv.gz",
             '"Die ""IPA"" hat 500 Symbole."\tDas „IPA” hat 500 Symbole.\t1\n'
             'Er sagt ""\tEr sagt nichts.\t0\n')
    rows = load_examples("pawsx", "dev", "deu", data_dir=tmp_path)
    assert rows == [{"text_a": 'Die "IPA" hat 500 Symbole.', "text_b": "Das „IPA” hat 500 Symbole.", "label": 1},
                    {"text_a": 'Er sagt ""', "text_b": "Er sagt nichts.", "label": 0}]


def test_any_table_language_with_xtreme_files(tmp_path):
    (tmp_path / "dev-ja.tsv").write_text("猫だ。\t動物だ。\tentailment\n", encoding="utf-8")
    xnli = get_task("xnli")
    with pytest.raises(LanguageError, match=r"has no language 'jpn'.*none for jpn"):
        xnli.check_language("jpn", tmp_path / "elsewhere")
    assert xnli.check_language("ja", tmp_path) == "jpn" and xnli.code("jpn") == "ja"
    assert load_examples("xnli", "dev", "jpn", data_dir=tmp_path)[0]["label"] == 0
    with pytest.raises(DataError, match=r"no test file for language 'jpn' .*expected test-ja.tsv"):
        load_examples("xnli", "test", "jpn", data_dir=tmp_path)


# ------------------------------------------------------------------ ANLI


def anli_row(uid: str, label: str) -> str:
    return json.dumps({"uid": uid, "context": f"premise {uid}", "hypothesis": f"hypothesis {uid}",
                       "label": label, "model_label": "n", "tag": "r?_dev"}) + "\n"


def test_anli_release_rounds_and_letter_labels(tmp_path):
    write_gz(tmp_path / "R1" / "dev.jsonl.gz", anli_row("a", "e") + anli_row("b", "c"))
    (tmp_path / "R2").mkdir()
    (tmp_path / "R2" / "dev.jsonl").write_text(anli_row("c", "n"), encoding="utf-8")  # plain or .gz per round
    with pytest.raises(DataError, match=r"R3/dev.jsonl.gz is missing: task 'anli' reads rounds R1, R2, R3"):
        load_examples("anli", "dev", "eng", data_dir=tmp_path)
    write_gz(tmp_path / "R3" / "dev.jsonl.gz", anli_row("d", "c"))
    rows = load_examples("anli", "dev", "eng", data_dir=tmp_path)
    assert [(r["text_a"], r["label"]) for r in rows] == [("premise a", 0), ("premise b", 2), ("premise c", 1),
                                                         ("premise d", 2)]
    anli = get_task("anli")
    path = tmp_path / "R1" / "dev.jsonl.gz"
    assert anli.companions(path, anli, "eng") == [tmp_path / "R2" / "dev.jsonl", tmp_path / "R3" / "dev.jsonl.gz"]


def test_anli_flat_hub_shaped_file_and_bad_row(tmp_path):
    flat = tmp_path / "eng" / "test.jsonl.gz"
    write_gz(flat, json.dumps({"premise": "p", "hypothesis": "h", "label": 1}) + "\n")
    assert load_examples("anli", "test", "eng", data_dir=tmp_path) == [{"text_a": "p", "text_b": "h", "label": 1}]
    write_gz(flat, json.dumps({"premise_text": "p", "label": "e"}) + "\n")
    with pytest.raises(DataError, match=r"test.jsonl.gz:1: an ANLI row needs \"context\""):
        load_examples("anli", "test", "eng", data_dir=tmp_path)


def test_a_config_can_name_the_file_that_plays_a_split(tmp_path):
    """Only dev exists (XNLI here): `tasks.<name>.files` maps a language's test split to its dev file,
    and the task's reader reads it by its name, as the layout would."""
    from stopover.config import RunConfig, from_dict
    from stopover.pipeline import Pipeline

    write_gz(tmp_path / "dev-de.tsv.gz", "A\tB\tneutral\n")
    cfg = from_dict(RunConfig, {"name": "t", "model": "tiny:64x2", "output_dir": str(tmp_path / "runs"),
                                "targets": ["xnli"],
                                "tasks": {"xnli": {"data_dir": str(tmp_path), "files": {"deu/test": "dev-de.tsv.gz"}}}})
    pipe = Pipeline(cfg, tmp_path / "runs" / "t")
    assert pipe.examples(get_task("xnli"), "test", "deu") == [{"text_a": "A", "text_b": "B", "label": 1}]


def test_gzipped_flat_tsv_has_a_header(tmp_path):
    write_gz(tmp_path / "deu" / "test.tsv.gz", "sentence1\tsentence2\tgold_label\nA\tB\tentailment\nC\n")
    with pytest.raises(DataError, match=r"test.tsv.gz:3: 1 fields but the header has 3"):
        load_examples("xnli", "test", "deu", data_dir=tmp_path)
    write_gz(tmp_path / "deu" / "test.tsv.gz", "sentence1\tsentence2\tgold_label\nA\tB\tentailment\n")
    assert load_examples("xnli", "test", "deu", data_dir=tmp_path) == [{"text_a": "A", "text_b": "B", "label": 0}]


def test_one_anli_round_as_its_own_task(tmp_path):
    import dataclasses

    from stopover.tasks.nli import anli_sources

    for r, label in (("R1", "e"), ("R2", "n")):
        write_gz(tmp_path / r / "test.jsonl.gz", anli_row(r, label))
    round2 = dataclasses.replace(get_task("anli"), name="anli_r2", **anli_sources(("R2",)))
    assert [(row["text_a"], row["label"]) for row in load_examples(round2, "test", "eng", data_dir=tmp_path)] == [
        ("premise R2", 1)]
    assert round2.companions(tmp_path / "R2" / "test.jsonl.gz", round2, "eng") == []
