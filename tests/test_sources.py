"""TaskData: one resolution of what a run reads per task, shared by the pipeline, plan and diversity."""

from __future__ import annotations

import pytest

from stopover.config import RunConfig, from_dict
from stopover.errors import DataError
from stopover.sources import Reader, english_train_examples, holdout_half, subset, task_data
from tests.fixtures import nli_rows, write_jsonl, write_nli_fixtures


def _cfg(tmp_path, **over) -> RunConfig:
    base = {"name": "s", "model": "xlm-roberta-large", "output_dir": str(tmp_path / "runs"), "targets": ["xnli"]}
    base.update(over)
    return from_dict(RunConfig, base)


def test_train_and_dev_tasks_are_resolved_once(tmp_path):
    cfg = _cfg(tmp_path, tasks={"xquad": {"train": {"max_length": 48}}})
    xnli, xquad = task_data(cfg, "xnli"), task_data(cfg, "xquad")
    assert (xnli.train_task, xnli.dev_task) == ("mnli", "xnli")  # XNLI has its own English dev split
    assert (xquad.train_task, xquad.dev_task) == ("squad", "squad")  # XQuAD has only test: SQuAD's dev
    assert xquad.eval_length == 48 and xnli.eval_length == cfg.evaluation.max_length


def test_an_explicit_data_dir_is_never_completed_from_the_hub(tmp_path):
    write_jsonl(tmp_path / "mnli" / "eng" / "train.jsonl", nli_rows("eng", 6, 1))
    reader = Reader(_cfg(tmp_path, tasks={"mnli": {"data_dir": str(tmp_path / "mnli")}}))
    assert len(reader.examples("mnli", "train")) == 6
    assert reader.data("mnli").where("eng", "train").endswith("train.jsonl")
    with pytest.raises(DataError, match=r"no dev file for task 'mnli'.*never completed from the Hub"):
        reader.examples("mnli", "dev")


def test_a_missing_data_dir_names_itself(tmp_path):
    with pytest.raises(DataError, match="tasks.mnli.data_dir = .*nowhere: no such directory"):
        task_data(_cfg(tmp_path, tasks={"mnli": {"data_dir": str(tmp_path / "nowhere")}}), "mnli")
    with pytest.raises(DataError, match="data_dir = .*nowhere: no such directory"):
        task_data(_cfg(tmp_path, data_dir=str(tmp_path / "nowhere")), "mnli")


def test_anli_plus_reads_its_parts_from_their_data_dirs(tmp_path):
    root = write_nli_fixtures(tmp_path / "data", train=8, test=4)
    write_jsonl(root / "snli" / "eng" / "train.jsonl", nli_rows("eng", 5, 7))
    write_jsonl(root / "anli" / "eng" / "train.jsonl", nli_rows("eng", 3, 8))
    write_jsonl(root / "anli" / "eng" / "test.jsonl", nli_rows("eng", 2, 9))
    reader = Reader(_cfg(tmp_path, data_dir=str(root)))
    assert len(reader.train_examples("anli_plus")) == 3 + 8 + 5
    assert len(reader.examples("anli_plus", "test")) == 2  # dev/test come from ANLI's own files
    fingerprint = reader.data("anli_plus").fingerprint(("train",), ("eng",))
    assert [part["task"] for part in fingerprint["union"]] == ["anli", "mnli", "snli"]
    assert all(part["files"]["eng/train"] for part in fingerprint["union"])


def test_diversity_profiling_reads_what_the_run_reads(tmp_path):
    root = write_nli_fixtures(tmp_path / "data", train=8, test=4)
    cfg = _cfg(tmp_path, data_dir=str(root))
    assert english_train_examples(cfg, "mnli") == Reader(cfg).train_examples("mnli")


def _mirror(tmp_path, commit: str | None):
    repo = tmp_path / "mirror" / "Rowan" / "hellaswag"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "train.parquet").write_bytes(b"rows v1")
    if commit:
        meta = repo / ".cache" / "huggingface" / "download" / "data"
        meta.mkdir(parents=True)
        (meta / "train.parquet.metadata").write_text(f"{commit}\netag\n1700000000.0\n")
    return repo


def test_a_hub_mirror_is_hashed_and_its_commit_checked(tmp_path, monkeypatch):
    from stopover.tasks import get_task

    pinned = get_task("hellaswag").hub.revision
    repo = _mirror(tmp_path, pinned)
    monkeypatch.setenv("STOPOVER_HUB_MIRROR", str(tmp_path / "mirror"))
    cfg = _cfg(tmp_path, targets=["xnli"], pool=["hellaswag"])
    hub = task_data(cfg, "hellaswag").hub
    assert hub.commit == pinned and hub.mirror_digest
    first = task_data(cfg, "hellaswag").fingerprint(("train",), ("eng",))
    (repo / "data" / "train.parquet").write_bytes(b"rows v2")  # a newer copy in the same place
    assert task_data(cfg, "hellaswag").fingerprint(("train",), ("eng",)) != first
    other = "f" * 40
    (repo / ".cache" / "huggingface" / "download" / "data" / "train.parquet.metadata").write_text(f"{other}\n")
    with pytest.raises(DataError, match=r"is commit ffffffffffff, but task 'hellaswag' is pinned to .*hf download"):
        task_data(cfg, "hellaswag")
    assert task_data(_cfg(tmp_path, tasks={"hellaswag": {"revision": other}}), "hellaswag").hub.commit == other


def test_subset_and_holdout_rules():
    rows = [{"text_a": f"s{i}"} for i in range(10)]
    assert subset(rows, 3, None) == rows[:3]
    sampled = subset(rows, 4, 0)
    assert len(sampled) == 4 and sampled == sorted(sampled, key=rows.index) and subset(rows, 4, 0) == sampled
    assert {holdout_half(r) for r in rows} == {0, 1}
    assert holdout_half({"context": "p", "question": "a"}) == holdout_half({"context": "p", "question": "b"})


def test_hub_commits_are_resolved_only_online(monkeypatch):
    from stopover.sources import resolve_commit

    assert resolve_commit("google/xtreme", "c" * 40) == "c" * 40  # a commit is what it says
    assert resolve_commit("google/xtreme", "main") is None  # offline (the tests): never asked


def _xtreme_pairs(directory, code: str, premises: list[str]) -> None:
    """XTREME-layout XNLI file dev-<code>.tsv: no header, no ids, parallel across languages by line."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"{p} ({code})\thypothesis {i} ({code})\t{['entailment', 'neutral', 'contradiction'][i % 3]}"
             for i, p in enumerate(premises)]
    (directory / f"dev-{code}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_files_placeholders_train_from_and_an_id_less_holdout(tmp_path):
    root = tmp_path / "xnli"
    premises = [f"premise number {i // 2}" for i in range(40)]  # two hypotheses per premise
    for code in ("en", "de"):
        _xtreme_pairs(root, code, premises)
    cfg = _cfg(tmp_path, tasks={"xnli": {
        "data_dir": str(root), "train_from": "xnli", "holdout": True, "languages": ["en", "de"],
        # the language's own key wins over the split's key, whatever their order in the mapping
        "files": {"test": "dev-{code}.tsv", "eng/train": "dev-en.tsv", "dev": None}}})
    data = task_data(cfg, "xnli")
    assert (data.train_task, data.dev_task) == ("xnli", "xnli")
    assert data.local_file("deu", "test") == root / "dev-de.tsv"
    assert data.local_file("eng", "train") == root / "dev-en.tsv"
    reader = Reader(cfg)
    train = reader.train_examples("xnli", holdout=True, target=True)
    test_en, test_de = reader.test_examples("xnli", "eng"), reader.test_examples("xnli", "deu")
    assert len(train) + len(test_en) == 40 and train and test_en
    # the halves split premises, never the items of one premise; German follows English by position
    assert not {ex["text_a"] for ex in train} & {ex["text_a"] for ex in test_en}
    assert [ex["text_a"].replace("(de)", "(en)") for ex in test_de] == [ex["text_a"] for ex in test_en]
    # unequal files without ids cannot be matched: an error, never a silent mismatch
    _xtreme_pairs(root, "de", premises[:-2])
    with pytest.raises(DataError, match="no ids and 38 rows against English's 40"):
        Reader(cfg).test_examples("xnli", "deu")


def test_a_files_value_with_an_unknown_placeholder_names_the_key(tmp_path):
    _xtreme_pairs(tmp_path / "xnli", "en", ["a", "b"])
    cfg = _cfg(tmp_path, tasks={"xnli": {"data_dir": str(tmp_path / "xnli"), "files": {"test": "dev-{lang}.tsv"}}})
    with pytest.raises(DataError, match=r"tasks.xnli.files.test = dev-\{lang\}.tsv: only the placeholders"):
        task_data(cfg, "xnli").local_file("eng", "test")


def test_train_from_must_name_a_task(tmp_path):
    from stopover.errors import ConfigError

    with pytest.raises(ConfigError, match="train_from: unknown task 'mnlii'"):
        _cfg(tmp_path, tasks={"xnli": {"train_from": "mnlii"}})


def _squad_json(path, contexts: list[str]) -> None:
    import json

    paragraphs = [{"context": c, "qas": [{"id": f"q{i}", "question": "what?",
                                          "answers": [{"text": c.split()[0], "answer_start": 0}]}]}
                  for i, c in enumerate(contexts)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}),
                    encoding="utf-8")


def test_a_run_that_tests_on_xquad_never_trains_on_its_squad_paragraphs(tmp_path):
    _squad_json(tmp_path / "squad" / "train.json", ["alpha paragraph one", "beta paragraph two", "gamma three"])
    _squad_json(tmp_path / "xquad" / "xquad.en.json", ["beta paragraph two"])
    tasks = {"squad": {"data_dir": str(tmp_path / "squad"), "files": {"train": "train.json", "dev": None}},
             "xquad": {"data_dir": str(tmp_path / "xquad"), "languages": ["en"]}}
    with_xquad = _cfg(tmp_path, pool=["squad"], targets=["xquad"], tasks=tasks)
    without = _cfg(tmp_path, pool=["squad"], targets=["tydiqa"], tasks=tasks)
    with pytest.warns(UserWarning, match=r"squad: 1 training example\(s\) dropped: .*xquad's English test items"):
        kept = Reader(with_xquad).train_examples("squad")
    assert [ex["context"] for ex in kept] == ["alpha paragraph one", "gamma three"]
    assert len(Reader(without).train_examples("squad")) == 3
    # other training data, another stage: the exclusion is part of the data fingerprint
    assert task_data(with_xquad, "squad").fingerprint(("train",), ("eng",))["excluded_by"] == ["xquad"]
    assert "excluded_by" not in task_data(without, "squad").fingerprint(("train",), ("eng",))
