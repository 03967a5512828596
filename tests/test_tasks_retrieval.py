"""tatoeba and bucc: declarations, loaders (real LASER files, Hub-shaped Parquet, raw BUCC), end to end."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from stopover.config import RunConfig, from_dict
from stopover.data import load_examples
from stopover.errors import DataError, LanguageError
from stopover.grid import run_grid
from stopover.store import read_results
from stopover.tasks import get_task
from tests.test_data import hub_repo


def sets(*specs):
    return [SimpleNamespace(strategy=s, name="+".join(t) or "none", tasks=t, budget=None, reference=False)
            for s, t in specs]


def config(tmp_path, **over) -> RunConfig:
    base = {"name": "t", "model": "tiny:64x2", "output_dir": str(tmp_path / "runs"),
            "evaluation": {"batch_size": 32, "max_length": 32}}
    base.update(over)
    return from_dict(RunConfig, base)


def test_declarations():
    tatoeba, bucc = get_task("tatoeba"), get_task("bucc")
    assert len(tatoeba.languages) == 36 and "eng" not in tatoeba.languages
    assert tatoeba.code("zho") == "cmn" and tatoeba.code("fas") == "pes" and tatoeba.code("swa") == "swh"
    assert bucc.languages == ("deu", "fra", "rus", "zho") and bucc.code("zho") == "zh"
    assert (tatoeba.metric, bucc.metric) == ("tatoeba", "bucc") and tatoeba.splits == ("test",)


# ------------------------------------------------------------------ Tatoeba files


def test_laser_files_from_shared_data(shared_data):
    directory = shared_data / "tatoeba"
    de = load_examples("tatoeba", "test", "deu", data_dir=directory)
    assert len(de) == 1000
    assert de[0] == {"source": "Maria sagte, sie wisse nicht, wo Tom sei.",
                     "target": "Mary said she didn't know where Tom was.", "source_id": "", "target_id": ""}
    assert len(load_examples("tatoeba", "test", "jav", data_dir=directory)) == 205  # PROVENANCE.md
    assert len(load_examples("tatoeba", "test", "zho", data_dir=directory)) == 1000  # file code cmn


def test_laser_sides_must_be_parallel(tmp_path):
    (tmp_path / "tatoeba.deu-eng.deu").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(DataError, match="English side tatoeba.deu-eng.eng is missing"):
        load_examples("tatoeba", "test", "deu", data_dir=tmp_path)
    (tmp_path / "tatoeba.deu-eng.eng").write_text("a\n", encoding="utf-8")
    with pytest.raises(DataError, match="has 2 lines but tatoeba.deu-eng.eng has 1"):
        load_examples("tatoeba", "test", "deu", data_dir=tmp_path)


def test_tatoeba_hub_parquet(tmp_path, monkeypatch):
    rows = [{"source_sentence": "Ich bin müde.\n", "target_sentence": "I am tired.\n",
             "source_lang": "deu", "target_lang": "eng"}]
    hub_repo(tmp_path / "mirror", "google/xtreme", {"tatoeba.deu": {"validation": rows}})
    monkeypatch.setenv("STOPOVER_HUB_MIRROR", str(tmp_path / "mirror"))
    assert load_examples("tatoeba", "test", "deu") == [
        {"source": "Ich bin müde.", "target": "I am tired.", "source_id": "", "target_id": ""}]


def test_tatoeba_end_to_end_on_real_files(tmp_path, shared_data):
    data = tmp_path / "tatoeba"
    data.mkdir()
    for code in ("deu", "cmn", "kat"):
        for side in (code, "eng"):
            lines = (shared_data / "tatoeba" / f"tatoeba.{code}-eng.{side}").read_text(encoding="utf-8")
            (data / f"tatoeba.{code}-eng.{side}").write_text("\n".join(lines.splitlines()[:24]) + "\n",
                                                              encoding="utf-8")
    langs = ["deu", "kat", "zho"]
    cfg = config(tmp_path, targets=["tatoeba"], tasks={"tatoeba": {"data_dir": str(data), "languages": langs}})
    run_dir, pipe = run_grid(cfg, sets=sets(("none", ())))
    rows = [r for r in read_results(run_dir) if r.stage == "eval"]
    assert sorted(r.language for r in rows) == langs
    assert all(r.metric == "accuracy" and r.primary and r.n == 24 and 0 <= r.value <= 100 for r in rows)
    assert len(pipe.trained) == 1  # evaluation only: retrieval trains nothing


# ------------------------------------------------------------------ BUCC files


def write_bucc(directory, code: str, name: str, sentences: list[tuple[str, str]], gold: bool = True) -> None:
    """sentences: (source text, English text) pairs; pair i is gold, plus one unpaired each side."""
    directory.mkdir(parents=True, exist_ok=True)
    src = [f"{code}-{i:06d}\t{s}" for i, (s, _) in enumerate(sentences, 1)] + [f"{code}-999999\tNur hier."]
    trg = [f"en-{i:06d}\t{t}" for i, (_, t) in enumerate(sentences, 1)] + ["en-999999\tOnly here."]
    (directory / f"{code}-en.{name}.{code}").write_text("\n".join(src) + "\n", encoding="utf-8")
    (directory / f"{code}-en.{name}.en").write_text("\n".join(trg) + "\n", encoding="utf-8")
    if gold:
        (directory / f"{code}-en.{name}.gold").write_text(
            "".join(f"{code}-{i:06d}\ten-{i:06d}\n" for i in range(1, len(sentences) + 1)), encoding="utf-8")


PAIRS = [("Der Hund schläft.", "The dog sleeps."), ("Die Katze isst.", "The cat eats."),
         ("Ein Haus ist rot.", "A house is red."), ("Wir gehen heim.", "We go home.")]


def test_bucc_raw_files_with_bucc_and_xtreme_names(tmp_path):
    write_bucc(tmp_path / "de-en", "de", "sample", PAIRS[:2])
    write_bucc(tmp_path / "de-en", "de", "training", PAIRS[2:])  # BUCC's own name for XTREME's test
    rows = load_examples("bucc", "test", "deu", data_dir=tmp_path)
    sample = [r for r in rows if (r["source_id"] or r["target_id"]).startswith("sample/")]
    test = [r for r in rows if (r["source_id"] or r["target_id"]).startswith("test/")]
    assert len(sample) == len(test) == 3 + 3 + 2  # 3 source, 3 English sentences, 2 gold pairs each
    assert {"source": "Ein Haus ist rot.", "target": "", "source_id": "test/de-000001", "target_id": ""} in test
    assert {"source": "", "target": "", "source_id": "test/de-000002", "target_id": "test/en-000002"} in test
    dev = load_examples("bucc", "dev", "deu", data_dir=tmp_path)
    assert dev == sample


def test_missing_bucc_files_say_what_is_needed(tmp_path):
    with pytest.raises(DataError) as err:
        load_examples("bucc", "test", "fra", data_dir=tmp_path)
    assert "raw BUCC 2018 files" in str(err.value) and "fr-en.sample" in str(err.value)
    write_bucc(tmp_path, "fr", "test", PAIRS[:2])  # XTREME's renamed test files, but no sample
    with pytest.raises(DataError, match="mining threshold is tuned on the sample"):
        load_examples("bucc", "test", "fra", data_dir=tmp_path)
    write_bucc(tmp_path, "fr", "sample", PAIRS[2:], gold=False)
    with pytest.raises(DataError, match=r"fr-en.sample is incomplete .*lacks fr-en.sample.gold"):
        load_examples("bucc", "test", "fra", data_dir=tmp_path)


def test_bucc_end_to_end(tmp_path):
    data = tmp_path / "bucc"
    write_bucc(data, "de", "sample", PAIRS[:2])
    write_bucc(data, "de", "test", PAIRS[2:])
    cfg = config(tmp_path, targets=["bucc"], tasks={"bucc": {"data_dir": str(data), "languages": ["deu"]}})
    run_dir, _ = run_grid(cfg, sets=sets(("none", ())))
    rows = {r.metric: r for r in read_results(run_dir) if r.stage == "eval"}
    assert set(rows) == {"precision", "recall", "f1"} and rows["f1"].primary
    assert all(r.language == "deu" and 0 <= r.value <= 100 for r in rows.values())


def test_fingerprints_cover_every_file_the_readers_read(tmp_path):
    """Editing Tatoeba's .eng side or BUCC's .en/.gold files changes the stage's data identity."""
    from stopover.pipeline import Pipeline

    tatoeba, bucc = tmp_path / "tatoeba", tmp_path / "bucc"
    tatoeba.mkdir()
    (tatoeba / "tatoeba.deu-eng.deu").write_text("Der Hund.\nDie Katze.\n", encoding="utf-8")
    (tatoeba / "tatoeba.deu-eng.eng").write_text("The dog.\nThe cat.\n", encoding="utf-8")
    write_bucc(bucc, "de", "sample", PAIRS[:2])
    write_bucc(bucc, "de", "test", PAIRS[2:])
    cfg = config(tmp_path, targets=["tatoeba", "bucc"],
                 tasks={"tatoeba": {"data_dir": str(tatoeba)}, "bucc": {"data_dir": str(bucc)}})
    pipe = Pipeline(cfg, tmp_path / "runs")

    def files(name: str) -> dict:
        return pipe.fingerprint(get_task(name), ("test",), ("deu",))["files"]

    before = files("tatoeba")
    assert set(before) == {"deu/test", "deu/test/tatoeba.deu-eng.eng"}
    (tatoeba / "tatoeba.deu-eng.eng").write_text("The dog.\nThe mouse.\n", encoding="utf-8")
    after = files("tatoeba")
    assert after["deu/test"] == before["deu/test"] and after != before

    before = files("bucc")
    assert set(before) == {"deu/test"} | {f"deu/test/de-en.{part}.{suffix}" for part in ("sample", "test")
                                          for suffix in ("de", "en", "gold")} - {"deu/test/de-en.test.de"}
    (bucc / "de-en.sample.gold").write_text("de-000001\ten-000002\n", encoding="utf-8")
    assert files("bucc") != before


def test_bucc_gzipped_xtreme_dev_files_and_partial_copies(tmp_path):
    import gzip

    write_bucc(tmp_path, "zh", "dev", PAIRS[:2])
    for path in list(tmp_path.iterdir()):
        with gzip.open(path.with_name(path.name + ".gz"), "wt", encoding="utf-8") as fh:
            fh.write(path.read_text(encoding="utf-8").replace("Nur hier.", ""))  # an empty sentence: skipped
        path.unlink()
    rows = load_examples("bucc", "dev", "zho", data_dir=tmp_path)
    assert sum(1 for r in rows if r["source"]) == 2 and sum(1 for r in rows if r["target"]) == 3
    bucc = get_task("bucc")
    source = tmp_path / "zh-en.dev.zh.gz"
    assert sorted(p.name for p in bucc.companions(source, bucc, "zho")) == ["zh-en.dev.en.gz", "zh-en.dev.gold.gz"]
    (tmp_path / "de-en.dev.gold").write_text("de-1\ten-1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"has de-en.dev.gold; lacks de-en.dev.de\[.gz\], de-en.dev.en\[.gz\]"):
        load_examples("bucc", "dev", "deu", data_dir=tmp_path)


def test_tatoeba_any_table_language_with_laser_files(tmp_path):
    (tmp_path / "tatoeba.lvs-eng.lvs").write_text("Labdien.\n", encoding="utf-8")  # LASER's code for Latvian
    (tmp_path / "tatoeba.lvs-eng.eng").write_text("Good day.\n", encoding="utf-8")
    tatoeba = get_task("tatoeba")
    assert "lav" not in tatoeba.languages and tatoeba.check_language("lv", tmp_path) == "lav"
    assert load_examples("tatoeba", "test", "lav", data_dir=tmp_path) == [
        {"source": "Labdien.", "target": "Good day.", "source_id": "", "target_id": ""}]
    with pytest.raises(LanguageError, match="has no language 'lit'"):
        tatoeba.check_language("lit", tmp_path)
