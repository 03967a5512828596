"""Fuzzing the parsers: whatever bytes a data file or config holds, the answer is rows / a config
or the project's own error (DataError, ConfigError) - never another exception, which the CLI
would show as an internal error.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stopover.config import RunConfig, from_dict, load_config, parse_overrides
from stopover.data import load_examples, read_table
from stopover.errors import ConfigError, DataError
from stopover.tasks import get_task

FUZZ = settings(max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", "80")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
NLI_KEYS = ["premise", "hypothesis", "label", "idx", "sentence1"]
LABELS = st.sampled_from(["entailment", "neutral", "contradiction", "maybe", "", "-1", 0, 1, 2, 3, -1, 1.0, True, None])
nli_rows = st.lists(st.fixed_dictionaries(
    {}, optional={"premise": st.text(max_size=20) | json_values, "hypothesis": st.text(max_size=20) | json_values,
                  "label": LABELS | json_values, "idx": st.integers()}), max_size=6)


def lines_of(draw_line) -> st.SearchStrategy[str]:
    return st.lists(draw_line, max_size=8).map("\n".join)


jsonl_line = st.one_of(
    json_values.map(lambda v: json.dumps(v, allow_nan=True)),
    st.dictionaries(st.sampled_from(NLI_KEYS), json_values, max_size=4).map(json.dumps),
    st.text(max_size=30),
    json_values.map(lambda v: json.dumps(v)[: max(1, len(json.dumps(v)) // 2)]),  # torn lines
)
table_line = st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8), max_size=5)


def check_rows(rows: object) -> None:
    assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)


@FUZZ
@given(text=lines_of(jsonl_line), raw=st.binary(max_size=64), use_raw=st.booleans())
@example(text="[" * 100_000, raw=b"", use_raw=False)  # nesting deeper than the recursion limit
@example(text='{"a": ' + "9" * 5000 + "}", raw=b"", use_raw=False)  # an int too long to convert
@example(text="", raw=b'{"premise": "\xff\xfe"}\n', use_raw=True)  # not UTF-8
def test_read_table_jsonl(tmp_path_factory, text, raw, use_raw):
    path = tmp_path_factory.mktemp("jsonl") / "train.jsonl"
    path.write_bytes(raw if use_raw else text.encode("utf-8", "surrogatepass"))
    try:
        check_rows(read_table(path))
    except DataError as err:
        assert str(err).startswith(str(path)) and "\n" not in str(err)


@FUZZ
@given(rows=st.lists(table_line, max_size=6), sep=st.sampled_from(["\t", ","]), raw=st.binary(max_size=64),
       use_raw=st.booleans())
@example(rows=[['"open quote', "x"]], sep=",", raw=b"", use_raw=False)
def test_read_table_tsv_csv(tmp_path_factory, rows, sep, raw, use_raw):
    path = tmp_path_factory.mktemp("table") / ("test.tsv" if sep == "\t" else "test.csv")
    text = "\n".join(sep.join(cells) for cells in rows)
    path.write_bytes(raw if use_raw else text.encode("utf-8", "surrogatepass"))
    try:
        rows_read = read_table(path)
    except DataError as err:
        assert str(err).startswith(str(path)) and "\n" not in str(err)
    else:
        check_rows(rows_read)
        assert all(isinstance(v, str) for r in rows_read for v in r.values())  # dtype=str: no NaN, no numbers


@FUZZ
@given(raw=st.binary(max_size=200))
@example(raw=b"PAR1" + b"\x00" * 20 + b"PAR1")
def test_read_table_parquet(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("parquet") / "test.parquet"
    path.write_bytes(raw)
    try:
        check_rows(read_table(path))
    except DataError as err:
        assert str(path) in str(err)


@FUZZ
@given(rows=nli_rows)
def test_load_examples_gives_canonical_examples_or_data_error(tmp_path_factory, rows):
    """Random MNLI-shaped rows: canonical classification examples, or a DataError naming the file."""
    root = tmp_path_factory.mktemp("mnli")
    path = root / "eng" / "train.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in rows), encoding="utf-8")
    task = get_task("mnli")
    try:
        examples = load_examples(task, "train", "eng", data_dir=root)
    except DataError as err:
        assert str(path) in str(err) and "\n" not in str(err)
        return
    assert examples
    for ex in examples:
        assert set(ex) == {"text_a", "text_b", "label"}
        assert isinstance(ex["text_a"], str) and (ex["text_b"] is None or isinstance(ex["text_b"], str))
        assert isinstance(ex["label"], int) and 0 <= ex["label"] < len(task.labels)


override_items = st.lists(st.one_of(
    st.text(max_size=20),
    st.tuples(st.sampled_from(["target.epochs", "seeds", "name", "tasks.xnli.languages", "target", "a..b", "",
                               "selection.budget", "jobs"]),
              st.text(max_size=15) | st.sampled_from(["[1,2]", "{a: 1}", "2001-13-45", "!!float x", "[", ".nan",
                                                      "null", "-3"])).map(lambda kv: f"{kv[0]}={kv[1]}"),
), max_size=5)

KEYS = ["name", "model", "output_dir", "data_dir", "pool", "strategies", "targets", "seeds", "tasks",
        "intermediate", "target", "evaluation", "selection", "multitask", "executor", "jobs",
        "checkpoint_every", "slurm", "lab"]
SECTION_KEYS = ["epochs", "batch_size", "lr", "warmup", "max_examples", "precision", "mode", "k", "budget",
                "languages", "data_dir", "train", "seed"]
section = st.dictionaries(st.sampled_from(SECTION_KEYS) | st.text(max_size=6), json_values, max_size=4)
config_data = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8),
                              json_values | section | st.dictionaries(st.sampled_from(["xnli", "mnli", "../x"]),
                                                                      section, max_size=2),
                              max_size=6)


def check_config(cfg: object) -> None:
    assert isinstance(cfg, RunConfig)
    for train in (cfg.intermediate, cfg.target):
        for value in (train.epochs, train.lr, train.warmup, train.weight_decay):
            assert math.isfinite(value)
    assert all(0 <= s < 2**32 for s in cfg.seeds) and cfg.checkpoint_every >= 0


@FUZZ
@given(items=override_items)
def test_parse_overrides(items):
    try:
        out = parse_overrides(items)
    except ConfigError as err:
        assert "\n" not in str(err)
        return
    assert isinstance(out, dict)


@FUZZ
@given(data=config_data, base=st.booleans())
@example(data={"target": {"lr": float("nan")}}, base=True)
@example(data={"seeds": [2**40]}, base=True)
@example(data={"name": "a\x00b"}, base=True)
def test_from_dict(data, base):
    if base:
        data = {"name": "fuzz", "targets": ["xnli"], **data}
    try:
        check_config(from_dict(RunConfig, data))
    except ConfigError as err:
        assert "\n" not in str(err)


@FUZZ
@given(text=st.text(max_size=80) | config_data.map(lambda d: json.dumps(d, allow_nan=True)),
       items=override_items)
@example(text="name: x\ntargets: [xnli]\nseeds: 2001-13-45\n", items=[])
@example(text="targets: !!float abc\n", items=[])
def test_load_config(tmp_path_factory, text, items):
    path = tmp_path_factory.mktemp("cfg") / "grid.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        check_config(load_config(path, items))
    except ConfigError as err:
        assert "\n" not in str(err)


def test_deep_nesting_is_a_data_error(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"deep.jsonl:1: not valid JSON"):
        read_table(path)
