"""Inputs that used to change a result without a word: now they are read as meant, or refused.

Each case here exited 0 before and did something the user did not ask for: a repeated YAML key
trained 100 epochs instead of 1, a byte-order mark made a valid file unreadable or misread, a
relative path meant the working directory instead of the config's, a short TSV row vanished.
The refusals are also in test_bad_input.py's table (one error line through the CLI); this file
checks that what should be read is read, and the same as without the oddity.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import yaml

from stopover.cli import main
from stopover.conllu import read_sentences
from stopover.data import load_examples, read_table
from stopover.squad import read_squad
from tests.fixtures import write_nli_fixtures

BOM = b"\xef\xbb\xbf"
CONLLU = b"# sent_id = a\n1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n2\tdog\tdog\tNOUN\t_\t_\t0\troot\t_\t_\n\n"
SQUAD = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "The dog runs.", "qas": [
    {"id": "q1", "question": "What runs?", "answers": [{"text": "dog", "answer_start": 4}]}]}]}]}


@pytest.mark.parametrize("gz", [False, True])
def test_a_byte_order_mark_changes_nothing(tmp_path, gz):
    def both(name: str, data: bytes) -> tuple[Path, Path]:
        pack = (lambda b: gzip.compress(b)) if gz else (lambda b: b)
        plain, marked = tmp_path / f"plain-{name}", tmp_path / f"bom-{name}"
        plain.write_bytes(pack(data))
        marked.write_bytes(pack(BOM + data))
        return plain, marked

    suffix = ".gz" if gz else ""
    plain, marked = both("test.conllu" + suffix, CONLLU)
    assert read_sentences(marked) == read_sentences(plain) and read_sentences(plain)[0].sent_id == "a"
    plain, marked = both("xquad.json" + suffix, json.dumps(SQUAD).encode())
    assert read_squad(marked) == read_squad(plain)
    plain, marked = both("t.jsonl" + suffix, b'{"premise": "a", "hypothesis": "b", "label": 0}\n')
    assert read_table(marked) == read_table(plain) == [{"premise": "a", "hypothesis": "b", "label": 0}]
    plain, marked = both("t.tsv" + suffix, b"sentence1\tlabel\na\t1\n")
    assert read_table(marked) == read_table(plain) == [{"sentence1": "a", "label": "1"}]


def test_answer_start_as_a_string_is_the_same_offset(tmp_path):
    doc = json.loads(json.dumps(SQUAD))
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = "4"
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    (row,) = read_squad(path)
    assert row["answers"] == {"text": ["dog"], "answer_start": [4]}


def test_a_short_tsv_row_is_an_error_or_skipped_with_its_count(tmp_path):
    path = tmp_path / "en" / "test.tsv"
    path.parent.mkdir()
    path.write_text("id\tsentence1\tsentence2\tlabel\n1\ta\tb\t1\n2\tc\t0\n", encoding="utf-8")
    from stopover.errors import DataError

    with pytest.raises(DataError, match=r"test.tsv:3: 3 field\(s\) where the header has 4"):
        load_examples("pawsx", "test", "eng", data_dir=tmp_path)
    with pytest.warns(UserWarning, match=r"skipped 1 row\(s\)"):
        assert len(load_examples("pawsx", "test", "eng", data_dir=tmp_path, skip_bad_rows=True)) == 1


def test_relative_paths_mean_the_config_directory_from_any_working_directory(tmp_path, monkeypatch, capsys):
    """`data_dir: data` beside the config: `stopover plan` counts the local files from anywhere
    (it used to look in the working directory, miss, and count published Hub sizes instead)."""
    study = tmp_path / "study"
    write_nli_fixtures(study / "data")
    cfg = {"name": "rel", "model": "tiny:64x2", "output_dir": "runs", "data_dir": "data", "pool": ["mnli"],
           "strategies": [{"explicit": ["mnli"]}], "targets": ["xnli"], "tasks": {"xnli": {"languages": ["eng"]}}}
    (study / "grid.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr("stopover.data._hub_rows", lambda *a, **k: pytest.fail("plan reached for the Hub"))
    assert main(["plan", str(study / "grid.yaml")]) == 0
    out = capsys.readouterr().out
    assert "published" not in out and "intermediate" in out  # every stage counted from the local files
