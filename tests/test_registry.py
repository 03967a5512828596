"""The registry-wide tests: every registered task's declaration, languages and data, at once.

Each task has a fixture of 2-4 rows per file in its own local-file layout under
tests/fixtures/tasks/<task>/ (lab tasks generate theirs). The data test finds
every file the task's real `locate` / flat-table lookup finds there, loads it
through `stopover.data.load_examples` (the task's reader and convert), and
checks the canonical fields of its format, label ranges and that every
language is a key of the language table. The tests are parametrised over the
registry, so a new task is tested as soon as it is declared: without a fixture
it fails, naming the directory to create.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stopover import languages as langtable
from stopover.data import find_local_file, load_examples
from stopover.errors import DataError, TaskError
from stopover.tasks import HubSource, Task, all_tasks, get_task, register

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"

# The canonical example shapes of docs/tasks.md, stated here on their own so that a change in
# stopover.data that drops a field fails this test rather than redefining it.
CANONICAL = {
    "classification": ("text_a", "text_b", "label"),
    "tagging": ("tokens", "tags"),
    "span_qa": ("id", "question", "context", "answers"),
    "multiple_choice": ("context", "question", "endings", "label"),
    "retrieval": ("source", "target", "source_id", "target_id"),
    "masked_lm": ("text",),
}

# Hub commits known to hold a loading script, which datasets >= 4 refuses ("Dataset scripts are no
# longer supported"): no task may load them. (repository, revision); a branch is listed when its
# head is such a commit.
SCRIPT_ONLY = {
    ("Rowan/hellaswag", "9c75cc00ec2e1f93893cbd25ba617ee30eb70d88"),  # hellaswag.py beside the Parquet files
    ("allenai/cosmos_qa", "main"),  # cosmos_qa.py only; the Parquet export is refs/convert/parquet
}

TASKS = all_tasks()
REAL = [t for t in TASKS if not t.lab]


@pytest.fixture(scope="module")
def lab_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab tasks' data, generated as a run would (3 rows per split; English and one variant)."""
    from stopover.lab.datasets import write_lab_data
    from stopover.lab.variants import anchored_variant

    out = tmp_path_factory.mktemp("lab-data")
    write_lab_data(out, [anchored_variant("lab-deu")], sizes={"train": 3, "dev": 3, "test": 3},
                   tasks=[t.name for t in TASKS if t.lab])
    return out


def _located(task: Task, directory: Path) -> dict[Path, list[tuple[str, str]]]:
    """Every file of `directory` the task's lookup finds: path -> the (split, language)s it serves."""
    found: dict[Path, list[tuple[str, str]]] = {}
    for split in task.splits:
        for language in task.languages:
            try:
                path = find_local_file(directory, task, language, split)
            except DataError:  # locate functions that insist on their files (BUCC, CCG): not here
                path = None
            if path is not None:
                found.setdefault(path, []).append((split, language))
    return found


def _check_example(task: Task, ex: dict[str, Any], where: str) -> None:
    missing = [k for k in CANONICAL[task.format] if k not in ex]
    assert not missing, f"{where}: no canonical field(s) {missing} in {sorted(ex)}"
    if task.format == "classification":
        assert isinstance(ex["text_a"], str) and ex["text_a"], where
        assert ex["text_b"] is None or isinstance(ex["text_b"], str), where
        assert 0 <= ex["label"] < len(task.labels), f"{where}: label {ex['label']} outside {task.labels}"
    elif task.format == "multiple_choice":
        assert isinstance(ex["context"], str) and isinstance(ex["question"], str), where
        assert all(isinstance(e, str) and e for e in ex["endings"]), where
        # `stopover plan` counts one sequence per label: endings and labels must agree
        assert len(ex["endings"]) == len(task.labels), f"{where}: {len(ex['endings'])} endings, {task.labels}"
        assert 0 <= ex["label"] < len(ex["endings"]), f"{where}: label {ex['label']}"
    elif task.format == "tagging":
        assert ex["tokens"] and len(ex["tokens"]) == len(ex["tags"]), where
        assert all(isinstance(t, str) and t for t in ex["tokens"] + ex["tags"]), where
        if task.labels:
            assert set(ex["tags"]) <= set(task.labels), f"{where}: tags {set(ex['tags']) - set(task.labels)}"
    elif task.format == "span_qa":
        answers = ex["answers"]
        assert isinstance(ex["question"], str) and isinstance(ex["context"], str) and ex["id"], where
        assert len(answers["text"]) == len(answers["answer_start"]), where
        for text, start in zip(answers["text"], answers["answer_start"], strict=True):
            assert ex["context"][start:start + len(text)] == text, f"{where}: answer {text!r} not at {start}"
    elif task.format == "retrieval":
        assert all(isinstance(ex[k], str) for k in CANONICAL["retrieval"]), where
        assert ex["source"] or ex["target"] or (ex["source_id"] and ex["target_id"]), where
    elif task.format == "masked_lm":
        assert isinstance(ex["text"], str) and ex["text"], where


def _check_directory(task: Task, directory: Path, hint: str) -> None:
    located = _located(task, directory)
    assert located, (f"task {task.name!r} has no data fixture: add 2-4 rows per split in its local "
                     f"layout under {hint} (see docs/tasks.md, 'Adding a target task')")
    covered: set[tuple[str, str]] = set()
    for path, served in sorted(located.items()):
        loaded = 0
        for split, language in served:
            try:
                examples = load_examples(task, split, language, data_dir=directory)
            except DataError as err:
                # one file serving several languages (TyDi QA's release mixes them) need not hold
                # every one; a file of its own must load
                if len(served) > 1 and " is empty" in str(err):
                    continue
                raise
            # 2-4 rows per file; BUCC reads six files for its test split (sample + test: source, English, gold)
            assert 1 <= len(examples) <= 16, f"{path}: {len(examples)} examples; keep fixtures to 2-4 rows"
            for i, ex in enumerate(examples):
                _check_example(task, ex, f"{path.relative_to(directory)} ({split}, {language}) example {i + 1}")
            covered.add((split, language))
            loaded += 1
        assert loaded, f"{path}: found for {served} but no language has examples in it"
    splits = {split for split, _ in covered}
    assert splits == set(task.splits), (f"task {task.name!r}: the fixture covers splits {sorted(splits)}; "
                                        f"add files for {sorted(set(task.splits) - splits)} under {hint}")
    others = {lang for _, lang in covered if lang != "eng"}
    if task.role == "target" and set(task.languages) - {"eng"}:
        assert others, f"task {task.name!r}: the fixture has only English; add one other language under {hint}"


@pytest.mark.parametrize("task", [t for t in REAL if not t.union_of], ids=lambda t: t.name)
def test_every_task_loads_its_fixture(task: Task) -> None:
    _check_directory(task, FIXTURES / task.name, f"tests/fixtures/tasks/{task.name}/")


@pytest.mark.parametrize("task", [t for t in TASKS if t.lab], ids=lambda t: t.name)
def test_every_lab_task_loads_its_generated_data(task: Task, lab_data: Path) -> None:
    # a lab task's data is generated, not shipped: the generator's output is its fixture
    _check_directory(task, lab_data / task.name, "stopover.lab.datasets (generated)")


@pytest.mark.parametrize("task", [t for t in REAL if t.union_of], ids=lambda t: t.name)
def test_union_tasks_are_covered_by_their_parts(task: Task) -> None:
    # ANLI+ reads its parts' training data and its eval_from task's dev/test: their fixtures are its
    assert task.eval_from, f"{task.name}: a union task needs eval_from for its dev/test splits"
    parts = [get_task(name) for name in (*task.union_of, task.eval_from)]
    for part in parts:
        assert (FIXTURES / part.name).is_dir(), f"{task.name}: part {part.name!r} has no fixture"
        assert (part.format, part.labels) == (task.format, task.labels), f"{task.name}: {part.name} differs"


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_every_language_is_a_table_key(task: Task) -> None:
    for language in task.languages:
        assert langtable.is_key(language), (f"task {task.name!r}: {language!r} is not a key of the language "
                                            f"table; declare {langtable.normalize(language)!r}")
        # and the dataset's own code for it names the same language
        assert langtable.normalize(task.code(language)) == language, (task.name, language, task.code(language))


def test_one_code_per_language_across_tasks() -> None:
    # Swahili was `swh` in XNLI and `swa` elsewhere, so XNLI's Swahili never joined the typology
    assert get_task("xnli").check_language("sw") == get_task("panx").check_language("sw") == "swa"
    assert get_task("xnli").check_language("swh") == get_task("tatoeba").check_language("swh") == "swa"
    assert get_task("tydiqa").check_language("swahili") == "swa"
    assert "swa" in get_task("mlm").languages and "swh" not in get_task("mlm").languages
    assert get_task("tatoeba").check_language("cmn") == get_task("xnli").check_language("zh") == "zho"


def test_register_refuses_a_language_that_is_not_a_table_key() -> None:
    bad = Task(name="bad_langs", format="classification", metric="accuracy", description="test",
               languages=("eng", "swh"), labels=("a", "b"))
    with pytest.raises(TaskError, match=r"'swh' is not a key of the language table; declare 'swa'"):
        register(bad)
    with pytest.raises(TaskError, match=r"unknown language code 'qqq'"):
        register(replace(bad, languages=("qqq",)))
    with pytest.raises(TaskError, match="lang_codes names deu"):
        register(replace(bad, languages=("eng",), lang_codes={"deu": "de"}))
    with pytest.raises(TaskError, match="version 0"):
        register(replace(bad, languages=("eng",), version=0))
    with pytest.raises(TaskError, match="unknown task 'bad_langs'"):
        get_task("bad_langs")  # nothing half-registered


def test_no_hub_revision_is_a_known_script_commit() -> None:
    for task in TASKS:
        if task.hub is None:
            continue
        assert (task.hub.path, task.hub.revision) not in SCRIPT_ONLY, (
            f"task {task.name!r} loads {task.hub.path}@{task.hub.revision}, which holds a loading script")
        if task.hub.revision != "main":
            assert len(task.hub.revision) == 40, f"{task.name}: pin the full commit, not {task.hub.revision!r}"
    with pytest.raises(TaskError, match="abbreviated commit"):
        register(Task(name="short_pin", format="multiple_choice", metric="accuracy", description="test",
                      hub=HubSource("Rowan/hellaswag", revision="049e808")))


def test_tasks_carry_their_published_sizes_and_versions() -> None:
    for task in TASKS:
        assert isinstance(task.version, int) and task.version >= 1, task.name
        trains_own = "train" in task.splits and not task.lab and not task.mixed_only
        if trains_own:  # `stopover plan` counts these when the data is not on this machine
            assert task.published_train_size and task.published_train_size > 0, task.name
    assert get_task("mnli").published_train_size == 392_702
    assert get_task("xnli").published_test_size == 5_010
    assert get_task("xcopa").published_test_size == 500 and get_task("copa").published_train_size == 400


def test_every_fixture_directory_belongs_to_a_task() -> None:
    names = {t.name for t in TASKS}
    orphans = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and p.name not in names)
    assert not orphans, f"tests/fixtures/tasks/ has directories of no registered task: {orphans}"
