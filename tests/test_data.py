"""Loading splits: local JSONL/TSV/CSV/Parquet with column mappings, labels by name, Hub-shaped Parquet."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from stopover.data import load_examples, read_table
from stopover.errors import DataError

ROWS = [{"premise": "a dog runs", "hypothesis": "an animal moves", "label": "entailment"},
        {"premise": "a cat sleeps", "hypothesis": "a cat runs", "label": "contradiction"}]


def write(path, rows, kind):
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif kind == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)


@pytest.mark.parametrize("kind", ["jsonl", "tsv", "csv", "parquet"])
def test_local_file_types(tmp_path, kind):
    write(tmp_path / "eng" / f"train.{kind}", ROWS, kind)
    examples = load_examples("mnli", "train", "eng", data_dir=tmp_path)
    assert examples == [
        {"text_a": "a dog runs", "text_b": "an animal moves", "label": 0},
        {"text_a": "a cat sleeps", "text_b": "a cat runs", "label": 2},
    ]


def test_dataset_language_code_directory(tmp_path):
    rows = [{"sentence1": "der Hund", "sentence2": "ein Tier", "gold_label": "neutral"}]
    write(tmp_path / "de" / "test.jsonl", rows, "jsonl")  # XNLI's own code, not ISO 639-3
    assert load_examples("xnli", "test", "deu", data_dir=tmp_path)[0]["label"] == 1


def test_integer_labels_map_by_name(tmp_path):
    write(tmp_path / "eng" / "train.jsonl", [{"premise": "p", "hypothesis": "h", "label": 1},
                                             {"premise": "p", "hypothesis": "h", "label": -1}], "jsonl")
    assert [e["label"] for e in load_examples("mnli", "train", data_dir=tmp_path)] == [1]


def test_missing_column_names_file_and_column(tmp_path):
    write(tmp_path / "eng" / "train.tsv", [{"premise": "p", "label": "neutral"}], "tsv")
    with pytest.raises(DataError) as err:
        load_examples("mnli", "train", data_dir=tmp_path)
    msg = str(err.value)
    assert "train.tsv" in msg and "'hypothesis'" in msg and "columns: premise, label" in msg


def test_label_outside_label_set(tmp_path):
    write(tmp_path / "eng" / "train.jsonl", [{"premise": "p", "hypothesis": "h", "label": "maybe"}], "jsonl")
    with pytest.raises(DataError, match="'maybe' is not in the label set"):
        load_examples("mnli", "train", data_dir=tmp_path)
    write(tmp_path / "eng" / "train.jsonl", [{"premise": "p", "hypothesis": "h", "label": 7}], "jsonl")
    with pytest.raises(DataError, match="outside the label set"):
        load_examples("mnli", "train", data_dir=tmp_path)


def test_empty_split_and_malformed_jsonl(tmp_path):
    (tmp_path / "eng").mkdir()
    (tmp_path / "eng" / "train.jsonl").write_text("\n")
    with pytest.raises(DataError, match="is empty"):
        load_examples("mnli", "train", data_dir=tmp_path)
    (tmp_path / "eng" / "train.jsonl").write_text('{"premise": "p"\n')
    with pytest.raises(DataError, match=r"train.jsonl:1: not valid JSON"):
        read_table(tmp_path / "eng" / "train.jsonl")


def test_no_local_file_falls_back_to_hub_and_fails_clearly_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("STOPOVER_HUB_MIRROR", str(tmp_path / "mirror"))
    (tmp_path / "mirror").mkdir()
    with pytest.raises(DataError, match="has no nyu-mll/glue/"):
        load_examples("mnli", "train", data_dir=tmp_path)


# ------------------------------------------------------------------ Hub-shaped Parquet
# A local mirror laid out as the Hub repositories are (README.md with `configs:` YAML and
# Parquet shards), read through the same datasets.load_dataset call users run against the Hub.

def hub_repo(root, repo, configs):
    """configs: {config_name: {split: rows}} -> Hub-style repository under root/repo."""
    base = root / repo
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines.append(f"- config_name: {name}")
        lines.append("  data_files:")
        for split, rows in splits.items():
            rel = f"{name}/{split}-00000-of-00001.parquet"
            (base / name).mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_parquet(base / rel)
            lines += [f"  - split: {split}", f"    path: {rel}"]
    lines.append("---")
    (base / "README.md").write_text("\n".join(lines) + "\n")


GLUE_NLI = [{"premise": "p1", "hypothesis": "h1", "label": 0, "idx": 0},
            {"premise": "p2", "hypothesis": "h2", "label": 2, "idx": 1}]


def test_hub_path_for_every_classification_task(tmp_path, monkeypatch):
    root = tmp_path / "mirror"
    hub_repo(root, "nyu-mll/glue", {
        "mnli": {"train": GLUE_NLI, "validation_matched": GLUE_NLI, "validation_mismatched": GLUE_NLI},
        "qqp": {"train": [{"question1": "q", "question2": "r", "label": 1, "idx": 0}],
                "validation": [{"question1": "q", "question2": "r", "label": 0, "idx": 0}]},
    })
    anli = [{"uid": "u", "premise": "p", "hypothesis": "h", "label": 1, "reason": ""}]
    hub_repo(root, "facebook/anli", {"default": {f"{s}_r{r}": anli for s in ("train", "dev", "test")
                                                 for r in (1, 2, 3)}})
    hub_repo(root, "stanfordnlp/snli", {"default": {s: [{"premise": "p", "hypothesis": "h", "label": 2},
                                                         {"premise": "p", "hypothesis": "h", "label": -1}]
                                                     for s in ("train", "validation", "test")}})
    xnli = [{"language": lang, "sentence1": "s", "sentence2": "t", "gold_label": "contradiction"}
            for lang in ("en", "de", "fr")]
    hub_repo(root, "google/xtreme", {
        "XNLI": {"validation": xnli, "test": xnli},
        **{f"PAWS-X.{c}": {s: [{"sentence1": "a", "sentence2": "b", "label": "1"}]
                           for s in ("train", "validation", "test")} for c in ("en", "de")},
    })
    monkeypatch.setenv("STOPOVER_HUB_MIRROR", str(root))
    assert [e["label"] for e in load_examples("mnli", "train")] == [0, 2]
    assert load_examples("qqp", "dev")[0]["label"] == 0
    assert len(load_examples("anli", "train")) == 3  # rounds 1-3 concatenated
    assert len(load_examples("snli", "train")) == 1  # label -1 dropped
    assert len(load_examples("anli_plus", "train")) == 2 + 3 + 1
    de = load_examples("xnli", "test", "deu")
    assert de == [{"text_a": "s", "text_b": "t", "label": 2}]  # filtered to German by the language column
    assert load_examples("pawsx", "test", "deu")[0]["label"] == 1


# ----------------------------------------------------------------------- field counts, BOMs, offsets

PAWSX = "id\tsentence1\tsentence2\tlabel\n1\ta b\tb a\t1\n2\tc d\tc d\n3\te f\tf e\t0\textra\n4\tg h\tg h\t1\n"


def test_a_tsv_row_with_the_wrong_field_count_names_file_and_line(tmp_path):
    path = tmp_path / "en" / "test.tsv"
    path.parent.mkdir()
    path.write_text(PAWSX, encoding="utf-8")
    with pytest.raises(DataError, match=r"test.tsv:3: 3 field\(s\) where the header has 4 \(id, sentence1, "
                                        r"sentence2, label\); fix the row \(a stray tab or a missing field\?\) "
                                        r"or set tasks.pawsx.skip_bad_rows: true"):
        load_examples("pawsx", "test", "eng", data_dir=tmp_path)


def test_skip_bad_rows_skips_them_and_warns_with_the_count(tmp_path):
    path = tmp_path / "en" / "test.tsv"
    path.parent.mkdir()
    path.write_text(PAWSX, encoding="utf-8")
    with pytest.warns(UserWarning, match=r"test.tsv: skipped 2 row\(s\) with the wrong number of fields "
                                         r"\(lines 3, 4; tasks.pawsx.skip_bad_rows is on\)"):
        examples = load_examples("pawsx", "test", "eng", data_dir=tmp_path, skip_bad_rows=True)
    assert [ex["text_a"] for ex in examples] == ["a b", "g h"]


def test_csv_quoting_and_line_numbers(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('a,b\n"x, y","multi\nline"\n"q",\n1,2,3\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"t.csv:5: 3 field\(s\) where the header has 2"):
        read_table(path)
    with pytest.warns(UserWarning, match=r"skipped 1 row"):
        rows = read_table(path, skip_bad_rows=True)
    assert rows == [{"a": "x, y", "b": "multi\nline"}, {"a": "q", "b": ""}]


def test_duplicate_header_columns_are_an_error(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("label\ttext\tlabel\n1\tx\t2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"t.tsv:1: column\(s\) 'label' appear more than once in the header"):
        read_table(path)


@pytest.mark.parametrize("name", ["train.jsonl", "train.tsv", "train.csv", "train.jsonl.gz", "train.tsv.gz"])
def test_byte_order_marks_and_gzip(tmp_path, name):
    import gzip

    if "jsonl" in name:
        text = "".join(json.dumps(r) + "\n" for r in ROWS)
    else:
        sep = "\t" if ".tsv" in name else ","
        text = sep.join(ROWS[0]) + "\n" + "".join(sep.join(r.values()) + "\n" for r in ROWS)
    data = b"\xef\xbb\xbf" + text.encode("utf-8")
    path = tmp_path / "eng" / name
    path.parent.mkdir()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    examples = load_examples("mnli", "train", "eng", data_dir=tmp_path)
    assert [ex["text_a"] for ex in examples] == ["a dog runs", "a cat sleeps"]


def test_a_bom_on_a_later_jsonl_line_is_ignored(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a": 1}\n\xef\xbb\xbf{"a": 2}\n')  # two files joined with cat
    assert read_table(path) == [{"a": 1}, {"a": 2}]


def qa_rows(start):
    return [{"id": "q1", "title": "t", "context": "The dog runs.", "question": "What runs?",
             "answers": {"text": ["dog"], "answer_start": [start]}}]


def test_answer_start_written_as_a_string_is_an_offset(tmp_path):
    path = tmp_path / "eng" / "train.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in qa_rows("4")), encoding="utf-8")
    (ex,) = load_examples("squad", "train", "eng", data_dir=tmp_path)
    assert ex["answers"]["answer_start"] == [4]
    path.write_text("".join(json.dumps(r) + "\n" for r in qa_rows("four")), encoding="utf-8")
    with pytest.raises(DataError, match=r"train.jsonl: row 1: answers .* every answer needs a text \(a string\) "
                                        r"and an answer_start \(its character offset"):
        load_examples("squad", "train", "eng", data_dir=tmp_path)


def test_tokens_and_tags_must_line_up(tmp_path):
    path = tmp_path / "eng" / "test.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps({"tokens": ["a", "dog"], "pos_tags": ["DET"]}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test.jsonl: row 1: 2 tokens but 1 tags; give one tag per token"):
        load_examples("udpos", "test", "eng", data_dir=tmp_path)
    path.write_text(json.dumps({"tokens": "a dog", "pos_tags": ["DET", "NOUN"]}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"row 1: 'tokens' is 'a dog'; it must be a list of strings"):
        load_examples("udpos", "test", "eng", data_dir=tmp_path)
