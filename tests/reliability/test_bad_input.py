"""Bad input through the command line: every case is one line on stderr ("error: ..."), naming
the file / field / value and the fix, exit code 2, and nothing marked complete.

Each case builds a small grid (tiny model, generated NLI fixtures) in a temporary directory,
breaks one thing, and calls `stopover.cli.main` in-process. After the error, no stage has a
DONE marker and results.jsonl holds no evaluation rows.
"""

from __future__ import annotations

import errno
import gzip
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import yaml

from stopover.cli import main
from tests.fixtures import nli_rows, write_jsonl, write_nli_fixtures

LANGS = ["eng", "deu", "fra", "spa"]


def grid(tmp: Path, **over) -> Path:
    """The tiny NLI grid (mnli -> xnli in 4 languages) as tmp/grid.yaml, writing into tmp/runs."""
    data = tmp / "data"
    if not data.exists():
        write_nli_fixtures(data)
    cfg = {"name": "bad", "model": "tiny:64x2", "output_dir": str(tmp / "runs"), "data_dir": str(data),
           "pool": ["mnli"], "strategies": [{"explicit": ["mnli"]}], "targets": ["xnli"],
           "tasks": {"xnli": {"languages": LANGS}},
           "intermediate": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32},
           "target": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32},
           "evaluation": {"batch_size": 32, "max_length": 32}}
    cfg.update(over)
    path = tmp / "grid.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def run(tmp: Path, *overrides: str, **over) -> list[str]:
    return ["run", str(grid(tmp, **over)), *overrides]


def override(*items: str) -> Callable[[Path, pytest.MonkeyPatch], list[str]]:
    return lambda tmp, mp: run(tmp, *items)


# --------------------------------------------------------------------------- data breakers

def with_data(change: Callable[[Path], None], **over) -> Callable[[Path, pytest.MonkeyPatch], list[str]]:
    def setup(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
        write_nli_fixtures(tmp / "data")
        change(tmp / "data")
        return run(tmp, **over)
    return setup


def tsv_missing_column(data: Path) -> None:
    (data / "xnli" / "deu" / "test.jsonl").unlink()
    rows = nli_rows("deu", 8, 3)
    (data / "xnli" / "deu" / "test.tsv").write_text(
        "sentence1\tgold_label\n" + "".join(f"{r['premise']}\t{r['label']}\n" for r in rows), encoding="utf-8")


def label_named(value) -> Callable[[Path], None]:
    def change(data: Path) -> None:
        rows = nli_rows("eng", 20, 1)
        rows[4]["label"] = value
        write_jsonl(data / "mnli" / "eng" / "train.jsonl", rows)
    return change


def write_text(rel: str, text: str) -> Callable[[Path], None]:
    def change(data: Path) -> None:
        (data / rel).write_text(text, encoding="utf-8")
    return change


def no_file(rel: str) -> Callable[[Path], None]:
    return lambda data: (data / rel).unlink()


# --------------------------------------------------------------------------- CoNLL-U (udpos)

CONLLU = ("# sent_id = s{n}\n1\tthe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n2\tdog\tdog\tNOUN\t_\t_\t3\tnsubj\t_\t_\n"
          "3\truns\trun\tVERB\t_\t_\t0\troot\t_\t_\n\n")


def udpos(change: Callable[[Path], None]) -> Callable[[Path, pytest.MonkeyPatch], list[str]]:
    def setup(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
        data = tmp / "data"
        for lang in ("eng", "deu"):
            for split in ("train", "dev", "test"):
                path = data / "udpos" / lang / f"{split}.conllu"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(CONLLU.format(n=i) for i in range(6)), encoding="utf-8")
        change(data / "udpos")
        return run(tmp, pool=[], strategies=["none"], targets=["udpos"], tasks={"udpos": {"languages": ["eng", "deu"]}})
    return setup


def conllu_truncated(udpos_dir: Path) -> None:
    path = udpos_dir / "deu" / "test.conllu"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.rindex("\t3\tnsubj")], encoding="utf-8")  # cut inside the last word line


def conllu_gz_truncated(udpos_dir: Path) -> None:
    path = udpos_dir / "deu" / "test.conllu"
    blob = gzip.compress(path.read_bytes())
    path.unlink()
    (udpos_dir / "deu" / "test.conllu.gz").write_bytes(blob[: len(blob) // 2])


def conllu_bad_tag(udpos_dir: Path) -> None:
    path = udpos_dir / "eng" / "train.conllu"
    path.write_text(path.read_text(encoding="utf-8").replace("\tNOUN\t", "\tNOPE\t", 1), encoding="utf-8")


def conllu_bad_id(udpos_dir: Path) -> None:
    path = udpos_dir / "eng" / "train.conllu"
    path.write_text(path.read_text(encoding="utf-8").replace("\n2\tdog", "\ntwo\tdog", 1), encoding="utf-8")


# --------------------------------------------------------------------------- SQuAD JSON (xquad <- squad)

def squad_doc(start: int = 4) -> dict:
    context = "The dog runs in the park."
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": [
        {"id": f"q{i}", "question": "What runs?", "answers": [{"text": "dog", "answer_start": start}]}
        for i in range(4)]}]}]}


def xquad(train_text: str) -> Callable[[Path, pytest.MonkeyPatch], list[str]]:
    def setup(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
        data = tmp / "data"
        (data / "squad").mkdir(parents=True)
        (data / "squad" / "train-v1.1.json").write_text(train_text, encoding="utf-8")
        (data / "xquad").mkdir(parents=True)
        for code in ("en", "de"):
            (data / "xquad" / f"xquad.{code}.json").write_text(json.dumps(squad_doc()), encoding="utf-8")
        return run(tmp, pool=[], strategies=["none"], targets=["xquad"], tasks={"xquad": {"languages": ["eng", "deu"]}})
    return setup


def tsv_wrong_field_count(data: Path) -> None:
    (data / "xnli" / "deu" / "test.jsonl").unlink()
    rows = nli_rows("deu", 8, 3)
    lines = [f"{r['premise']}\t{r['hypothesis']}\t{r['label']}\n" for r in rows]
    lines[1] = f"{rows[1]['premise']}\t{rows[1]['label']}\n"  # the hypothesis is missing
    (data / "xnli" / "deu" / "test.tsv").write_text("sentence1\tsentence2\tgold_label\n" + "".join(lines),
                                                    encoding="utf-8")


# --------------------------------------------------------------------------- models, storage

def not_a_model(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    (tmp / "not-a-model").mkdir()
    (tmp / "not-a-model" / "README.md").write_text("weights went elsewhere\n")
    return run(tmp, f"model={tmp / 'not-a-model'}")


def embedded_wrong_hash(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    import stopover.embedded as embedded

    fake = tmp / "e5-small-q4.bin"
    fake.write_bytes(b"not the model file" * 100)
    mp.setenv("STOPOVER_CACHE", str(tmp / "cache"))  # no converted copy to fall back on
    mp.setattr(embedded, "locate_model_file", lambda name="multilingual-e5-small": fake)
    return run(tmp, "model=embedded:multilingual-e5-small")


def ambiguous_language(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    """The shipped language table has no ambiguous code; give it one ("gr": Greek or Gurage?)."""
    import stopover.languages as languages

    index, ambiguous, by_iso3 = languages._index()
    index = {k: v for k, v in index.items() if k != "gr"}
    mp.setattr(languages, "_index", lambda: (index, {**ambiguous, "gr": ("ell", "sgw")}, by_iso3))
    return run(tmp, "tasks.xnli.languages=[deu,gr]")


def output_under_a_file(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
    (tmp / "plain-file").write_text("not a directory\n")
    return run(tmp, f"output_dir={tmp / 'plain-file' / 'runs'}")


def enospc(target: str) -> Callable[[Path, pytest.MonkeyPatch], list[str]]:
    """The disk fills up when the run writes `target` (its config.yaml, a stage's stage.json,
    the tokenised-feature cache)."""
    def setup(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:

        import stopover.fitting as fitting  # writes each stage's stage.json
        import stopover.grid as grid_mod

        full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if target == "features":
            def dump(*a, **k):
                raise full
            mp.setattr("stopover.formats.cache._write_atomic", dump)
        else:
            module = grid_mod if target == "config.yaml" else fitting
            real = module.atomic_write_text

            def write(path, text):
                if Path(path).name == target:
                    raise full
                return real(path, text)
            mp.setattr(module, "atomic_write_text", write)
        return run(tmp, "intermediate.max_examples=16", "target.max_examples=16")
    return setup


# --------------------------------------------------------------------------- the table

@dataclass
class Case:
    id: str
    setup: Callable[[Path, pytest.MonkeyPatch], list[str]]
    says: tuple[str, ...]  # fragments the one-line message must contain
    needs: str | None = None  # a module the case exercises (skipped while it does not exist)


def files(*names: str) -> Callable[[Path, pytest.MonkeyPatch], list[str]]:
    """A config file with this content instead of the grid."""
    def setup(tmp: Path, mp: pytest.MonkeyPatch) -> list[str]:
        (tmp / "grid.yaml").write_text(names[0], encoding="utf-8")
        return ["run", str(tmp / "grid.yaml")]
    return setup


CASES = [
    # config files and overrides
    Case("config-missing", lambda tmp, mp: ["run", str(tmp / "nope.yaml")], ("nope.yaml", "config file not found")),
    Case("config-not-mapping", files("- mnli\n- xnli\n"), ("grid.yaml", "must be a YAML mapping")),
    Case("config-bad-yaml", files("name: [bad\ntargets: xnli\n"), ("grid.yaml", "not valid YAML at line",
                                                                   "indentation and quoting")),
    Case("unknown-key", lambda tmp, mp: run(tmp, lr=0.1), ("unknown key 'lr'", "valid keys:")),
    Case("unknown-key-override", override("taregts=[xnli]"), ("unknown key 'taregts'", "did you mean 'targets'")),
    Case("unknown-nested-key", override("target.epoch=2"), ("target", "unknown key 'epoch'", "did you mean 'epochs'")),
    Case("override-without-value", override("target.epochs"), ("override 'target.epochs'", "key=value")),
    Case("wrong-type-int", override("target.batch_size=big"), ("target.batch_size", "expected an integer", "'big'")),
    Case("wrong-type-bool", override("target.freeze_embeddings=maybe"), ("target.freeze_embeddings",
                                                                          "expected true/false", "'maybe'")),
    Case("wrong-type-list-item", override("seeds=[zero]"), ("seeds[0]", "expected an integer", "'zero'")),
    Case("wrong-type-section", override("tasks=5"), ("tasks", "expected a mapping", "5")),
    Case("negative-budget", override("selection.budget=-5"), ("selection.budget = -5", "must be > 0 or null")),
    Case("negative-max-examples", override("target.max_examples=-1"), ("target.max_examples = -1", "must be > 0")),
    Case("zero-epochs", override("intermediate.epochs=0"), ("intermediate.epochs = 0", "must be > 0")),
    Case("nan-learning-rate", override("target.lr=.nan"), ("target.lr = nan", "finite number > 0")),
    Case("warmup-out-of-range", override("target.warmup=1.5"), ("target.warmup = 1.5", "[0, 1)")),
    Case("negative-seed", override("seeds=[-1]"), ("seeds", "seed -1", "from 0 to 4294967295")),
    Case("negative-checkpoint-every", override("checkpoint_every=-2"), ("checkpoint_every = -2", ">= 0")),
    Case("zero-jobs", override("jobs=0"), ("jobs = 0", "must be > 0")),
    Case("unknown-executor", override("executor=kubernetes"), ("executor = 'kubernetes'", "local, submitit, ray")),
    Case("unknown-precision", override("target.precision=fp8"), ("target.precision = 'fp8'", "auto, bf16, fp32")),
    Case("unknown-multitask-mode", override("multitask.mode=parallel"), ("multitask.mode = 'parallel'",
                                                                          "sequential, mixed")),
    Case("run-name-traversal", override("name=../escape"), ("name = '../escape'", "plain directory name")),
    Case("run-name-absolute", override("name=/tmp/escape"), ("name = '/tmp/escape'", "plain directory name")),
    Case("run-name-dotdot", override("name=.."), ("name = '..'", "plain directory name")),
    # tasks and languages
    Case("unknown-target-task", override("targets=[xnlii]"), ("unknown task 'xnlii'", "did you mean xnli",
                                                              "stopover tasks")),
    Case("unknown-pool-task", override("pool=[mnlx]"), ("unknown task 'mnlx'", "did you mean mnli")),
    Case("task-name-traversal", override("targets=[../../etc]"), ("unknown task '../../etc'",)),
    Case("unknown-task-in-tasks-section", override("tasks.xnl.languages=[deu]"), ("tasks.xnl", "unknown task 'xnl'",
                                                                                  "did you mean xnli")),
    Case("unknown-language", override("tasks.xnli.languages=[xyz]"), ("task 'xnli'", "unknown language code 'xyz'",
                                                                      "ISO 639-3", "eng, ara")),
    Case("ambiguous-language", ambiguous_language, ("task 'xnli'", "ambiguous language code 'gr'",
                                                    "it may mean ell, sgw", "use one of these ISO 639-3 codes")),
    Case("language-task-lacks", override("tasks.xnli.languages=[jpn]"), ("task 'xnli' has no language 'jpn'",
                                                                         "it has: eng")),
    # data files
    Case("tsv-missing-column", with_data(tsv_missing_column), ("xnli/deu/test.tsv", "no column 'sentence2'",
                                                               "rename it or map it")),
    Case("label-outside-set", with_data(label_named("maybe")), ("mnli/eng/train.jsonl", "row 5", "label 'maybe'",
                                                                "entailment, neutral, contradiction")),
    Case("label-index-out-of-range", with_data(label_named(7)), ("mnli/eng/train.jsonl", "label 7",
                                                                 "outside the label set", "3 labels")),
    Case("empty-train-split", with_data(write_text("mnli/eng/train.jsonl", "")), ("mnli/eng/train.jsonl",
                                                                                 "train split of 'mnli'", "is empty")),
    Case("blank-test-split", with_data(write_text("xnli/fra/test.jsonl", "\n \n")), ("xnli/fra/test.jsonl",
                                                                                    "test split of 'xnli' (fra)")),
    Case("unlabelled-split", with_data(write_text("mnli/eng/train.jsonl", '{"premise": "a", "hypothesis": "b", '
                                                  '"label": -1}\n')), ("mnli/eng/train.jsonl", "is empty")),
    Case("jsonl-malformed-line", with_data(write_text("xnli/spa/test.jsonl", '{"sentence1": "x"}\n{"sentence1": \n')),
         ("xnli/spa/test.jsonl:2", "not valid JSON", "one JSON object per line")),
    Case("jsonl-number-as-text", with_data(write_text("mnli/eng/train.jsonl", '{"premise": 1990, "hypothesis": "b", '
                                                      '"label": "neutral"}\n')),
         ("mnli/eng/train.jsonl", "row 1", "'premise' is 1990 (int)", "write it as a string")),
    Case("jsonl-not-an-object", with_data(write_text("xnli/spa/test.jsonl", '["x", "y", "neutral"]\n')),
         ("xnli/spa/test.jsonl:1", "expected a JSON object, got list")),
    Case("conllu-truncated", udpos(conllu_truncated), ("udpos/deu/test.conllu:", "expected 10 tab-separated",
                                                       "found 6"), needs="stopover.conllu"),
    Case("conllu-gz-truncated", udpos(conllu_gz_truncated), ("udpos/deu/test.conllu.gz", "cannot read",
                                                             "UTF-8 CoNLL-U"), needs="stopover.conllu"),
    Case("conllu-unknown-upos", udpos(conllu_bad_tag), ("udpos/eng/train.conllu:", "UPOS tag 'NOPE'",
                                                        "ADJ, ADP"), needs="stopover.conllu"),
    Case("conllu-bad-word-id", udpos(conllu_bad_id), ("udpos/eng/train.conllu:", "word ID 'two'"),
         needs="stopover.conllu"),
    Case("squad-answer-start-mismatch", xquad(json.dumps(squad_doc(start=9))),
         ("squad/train-v1.1.json", "question 'q0'", "answer 'dog' is not at answer_start 9",
          "set answer_start to 4"), needs="stopover.squad"),
    Case("squad-truncated-json", xquad(json.dumps(squad_doc())[:120]), ("squad/train-v1.1.json", "not valid JSON",
                                                                        "SQuAD format is"), needs="stopover.squad"),
    Case("squad-answer-start-not-a-number", xquad(json.dumps(squad_doc()).replace('"answer_start": 4',
                                                                               '"answer_start": "four"')),
         ("squad/train-v1.1.json", "question 'q0'", "answer_start 'four' is not a character offset",
          "whole number >= 0 (4, where the text occurs"), needs="stopover.squad"),
    Case("tsv-wrong-field-count", with_data(tsv_wrong_field_count), ("xnli/deu/test.tsv:3", "2 field(s) where the "
                                                                     "header has 3", "tasks.xnli.skip_bad_rows: true")),
    Case("data-dir-missing", override("tasks.xnli.data_dir=/nonexistent/xnli"),
         ("tasks.xnli.data_dir = /nonexistent/xnli: no such directory", "remove the key")),
    # config values that used to change a result without a word
    Case("duplicate-yaml-key", files("name: x\ntargets: [xnli]\nseeds: [0]\nseeds: [1]\n"),
         ("grid.yaml", "key 'seeds' is given twice (lines 3 and 4)", "keep one")),
    Case("duplicate-override", override("target.epochs=1", "target.epochs=100"),
         ("override 'target.epochs' is given twice",)),
    Case("k-larger-than-pool", override("strategies=[random-k]", "selection.k=3"),
         ("strategies[0]", "selection.k = 3 is larger than the pool of 1 task(s) (mnli)", "at most 1")),
    Case("explicit-empty", override("strategies=[{explicit: []}]"), ("strategies[0]", "lists no tasks",
                                                                     "use the strategy `none`")),
    Case("unknown-diversity-strategy", override("strategies=[diversity-rank]"),
         ("unknown selection strategy 'diversity-rank'", "valid: none, single, all, diversity-topk")),
    Case("unknown-diversity-measure", override("pool=[mnli,qqp]", "strategies=[diversity-topk]",
                                               "selection.diversity_measure=entropy"),
         ("selection.diversity_measure = 'entropy'", "unknown diversity measure", "valid: composite")),
    Case("model-empty", override("model="), ("model is empty", "embedded:multilingual-e5-small")),
    Case("pool-only", override("targets=[]"), ("targets: give at least one target task",
                                               "the pool mnli only supplies intermediate tasks")),
    Case("empty-language-list", override("tasks.xnli.languages=[]"), ("tasks.xnli.languages",
                                                                      "give at least one language")),
    Case("unknown-lab-variant", override("lab={variants: [lab-xyz]}"), ("lab.variants", "'lab-xyz'",
                                                                         "valid: lab-jpn")),
    # models
    Case("model-path-not-a-model", not_a_model, ("not-a-model", "is not a model directory (no config.json)",
                                                 "embedded:multilingual-e5-small")),
    Case("tiny-model-spec", override("model=tiny:big"), ("model 'tiny:big'", "tiny:<hidden>x<layers>")),
    Case("embedded-unknown-name", override("model=embedded:e5-huge"), ("unknown embedded model 'e5-huge'",
                                                                       "multilingual-e5-small")),
    Case("embedded-wrong-hash", embedded_wrong_hash, ("e5-small-q4.bin", "sha256", "is not the expected",
                                                      "reinstall it with pip install")),
    # where results go
    Case("output-dir-under-a-file", output_under_a_file, ("output_dir", "plain-file", "cannot write there",
                                                          "writable output_dir")),
    Case("disk-full-run-config", enospc("config.yaml"), ("output_dir", "No space left on device",
                                                          "writable output_dir")),
    Case("disk-full-feature-cache", enospc("features"), ("No space left on device", "free disk space",
                                                         "re-run the same command")),
    # other commands
    Case("status-no-run-dir", lambda tmp, mp: ["status", str(tmp / "nowhere")], ("nowhere", "no such run directory")),
    Case("report-no-results", lambda tmp, mp: ["report", str(tmp)], ("results.jsonl", "no results file",
                                                                     "stopover run CONFIG")),
]


def assert_nothing_complete(root: Path) -> None:
    assert not list(root.rglob("DONE")), "a stage was marked complete"
    for results in root.rglob("results.jsonl"):
        rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
        assert not [r for r in rows if r.get("stage") == "eval"], "evaluation rows were recorded"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line(case: Case, tmp_path, monkeypatch, capsys):
    if case.needs and importlib.util.find_spec(case.needs) is None:
        pytest.skip(f"{case.needs} is not in this build yet (another issue adds it)")
    argv = case.setup(tmp_path, monkeypatch)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in case.says:
        assert fragment in lines[0], f"{fragment!r} not in: {lines[0]}"
    assert_nothing_complete(tmp_path)


def test_table_is_large_enough():
    assert len(CASES) >= 30


def test_disk_full_when_a_stage_finishes(tmp_path, monkeypatch, capsys):
    """The disk fills up as the first stage writes its record: one clear error, no DONE marker
    (that stage runs again next time), and the next invocation with space finishes the grid."""
    argv = enospc("stage.json")(tmp_path, monkeypatch)
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    errors = [line for line in err if line.startswith("error: ")]
    assert errors == [err[-1]] and "No space left on device" in err[-1] and "re-run the same command" in err[-1]
    assert_nothing_complete(tmp_path)
    (stage,) = [d for d in (tmp_path / "runs" / "bad" / "stages").iterdir()]
    assert "OSError" in (stage / "FAILED").read_text()


def test_unwritable_output_directory(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod does not stop root from writing "
                    "(output-dir-under-a-file covers an output_dir that cannot be created)")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code = main(run(tmp_path, f"output_dir={locked / 'runs'}"))
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err
    assert "cannot write there" in err and "Permission denied" in err
    assert_nothing_complete(tmp_path)
