"""Damage that must be recovered from, not reported: a torn last line in results.jsonl, corrupt
cache entries (tokenised features, the embedded-model conversion), a disk that fills while the
feature cache is written."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from stopover.cli import main
from stopover.pipeline import Pipeline
from stopover.store import ResultRow, append_results, read_results
from tests.reliability.harness import result_lines


def row(language: str, value: float = 50.0) -> ResultRow:
    return ResultRow(run="r", stage="eval", stage_hash="h", task="xnli", language=language, split="test",
                     metric="accuracy", value=value, seed=0, strategy="none", intermediate="none", target="xnli")


def torn(run_dir: Path, rows: list[ResultRow], tail: str) -> Path:
    append_results(run_dir, rows)
    with open(run_dir / "results.jsonl", "a", encoding="utf-8") as fh:
        fh.write(tail)
    return run_dir / "results.jsonl"


def test_read_results_skips_a_torn_last_line(tmp_path):
    torn(tmp_path, [row("deu"), row("fra")], row("spa").to_json()[:40])
    with pytest.warns(UserWarning, match="torn last line"):
        rows = read_results(tmp_path)
    assert [r.language for r in rows] == ["deu", "fra"]


def test_torn_line_in_the_middle_is_an_error(tmp_path):
    path = torn(tmp_path, [row("deu")], row("spa").to_json()[:40] + "\n")
    path.write_text(path.read_text() + row("fra").to_json() + "\n")
    from stopover.errors import DataError

    with pytest.raises(DataError, match=r"results.jsonl:2: not valid JSON"):
        read_results(tmp_path)


def test_appending_after_a_torn_line_drops_the_fragment(tmp_path):
    torn(tmp_path, [row("deu")], row("spa").to_json()[:40])
    with pytest.warns(UserWarning, match="dropped a torn last line"):
        append_results(tmp_path, [row("spa"), row("fra")])
    assert [r["language"] for r in result_lines(tmp_path)] == ["deu", "spa", "fra"]  # strict: no fragment left
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing torn any more
        assert len(read_results(tmp_path)) == 3


def test_appending_keeps_a_whole_row_that_lacks_its_newline(tmp_path):
    torn(tmp_path, [row("deu")], row("spa").to_json())  # complete JSON, only the newline missing
    append_results(tmp_path, [row("fra")])
    assert [r["language"] for r in result_lines(tmp_path)] == ["deu", "spa", "fra"]


def test_status_and_report_survive_a_torn_last_line(tmp_path, capsys):
    from tests.test_analysis import make_run

    run = make_run(tmp_path / "run", n_draws=3, seeds=(0, 1))
    (run / "stages" / "abc").mkdir(parents=True)
    (run / "stages" / "abc" / "DONE").write_text("abc\n")
    with open(run / "results.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"run": "synthetic", "stage": "ev')
    assert main(["status", str(run)]) == 0
    assert "1 done" in capsys.readouterr().out
    assert main(["report", str(run), "--n-boot", "20", "--n-perm", "50"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "torn last line" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: ")  # one line, shown once (cli.py)
    assert (run / "report.html").stat().st_size > 0


# --------------------------------------------------------------------------- caches


class CountingFormat:
    """A format whose features are a function of the examples; counts how often it tokenises."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def featurize(self, examples, tokenizer, task, max_length, *, train):
        self.calls += 1
        return [{"input_ids": [len(ex["text_a"])], "example_index": i} for i, ex in enumerate(examples)]


class Tok:
    name_or_path = "tok"

    def __len__(self) -> int:
        return 10


def features(pipe: Pipeline, fmt: CountingFormat) -> list[dict]:
    from stopover.tasks import get_task

    examples = [{"text_a": "ab" * i, "text_b": None, "label": 0} for i in range(5)]
    return pipe.features(fmt, get_task("mnli"), examples, Tok(), 32, train=True, data_key=["k"])


# The feature cache (damaged entries rebuilt, a full disk leaving no partial file, planted pickles
# never run) is tested in tests/test_formats_cache.py.


@pytest.fixture
def fake_conversion(tmp_path, monkeypatch):
    """stopover.embedded with a tiny stand-in for the 470 MB conversion; counts conversions."""
    import stopover.embedded as embedded

    monkeypatch.setenv("STOPOVER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(embedded, "_VERIFIED", {})
    source = tmp_path / "e5-small-q4.bin"
    source.write_bytes(b"model")
    monkeypatch.setattr(embedded, "locate_model_file", lambda name="multilingual-e5-small": source)
    calls = []

    def convert(model_file, out_dir, name="multilingual-e5-small"):
        calls.append(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps({"model_type": "xlm-roberta"}))
        (out_dir / "model.safetensors").write_bytes(bytes(range(200)) * 10)
        (out_dir / "tokenizer.json").write_text(json.dumps({"version": "1.0"}))
        embedded._write_manifest(out_dir, name, embedded._entry(name)[1])
        return {}

    monkeypatch.setattr(embedded, "convert", convert)
    return embedded, calls


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # as a later write would


CONVERSION_DAMAGE = {
    "weights-truncated": lambda d: (d / "model.safetensors").write_bytes(b"\x00" * 10),
    "weights-same-size-other-bytes": lambda d: _flip_one_byte(d / "model.safetensors"),
    "tokenizer-missing": lambda d: (d / "tokenizer.json").unlink(),
    "manifest-garbled": lambda d: (d / "manifest.json").write_text("{not json"),
    "manifest-missing": lambda d: (d / "manifest.json").unlink(),
}


@pytest.mark.parametrize("damage", CONVERSION_DAMAGE, ids=list(CONVERSION_DAMAGE))
def test_corrupt_conversion_cache_is_rebuilt(fake_conversion, damage):
    embedded, calls = fake_conversion
    model_dir = embedded.materialize()
    assert embedded.materialize() == model_dir and len(calls) == 1  # cached
    CONVERSION_DAMAGE[damage](model_dir)
    assert embedded.cache_problem(model_dir, "multilingual-e5-small", embedded.EMBEDDED_SHA256) is not None
    assert embedded.materialize() == model_dir and len(calls) == 2  # rebuilt, not fatal, not used as is
    assert embedded.cache_problem(model_dir, "multilingual-e5-small", embedded.EMBEDDED_SHA256) is None
    assert (model_dir / "model.safetensors").read_bytes() == bytes(range(200)) * 10
