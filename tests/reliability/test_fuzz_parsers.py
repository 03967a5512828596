"""Fuzzing the parsers: whatever bytes a data file or config holds, the answer is rows / a config
or the project's own error (DataError, ConfigError) - never another exception, which the CLI
would show as an internal error.
"""

from __future__ import annotations

import gzip as _gzip
import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stopover.config import RunConfig, from_dict, load_config, parse_overrides
from stopover.data import _CANONICAL_KEYS, canonicalize, load_examples, read_table
from stopover.errors import ConfigError, DataError, StopoverError
from stopover.tasks import get_task

FUZZ = settings(max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", "80")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

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


# --------------------------------------------------------------------------- mutations of valid files
#
# Every local reader (the tables, CoNLL-U, SQuAD JSON and each task's own readers) and the config
# loader, fed a valid file with random edits: bytes deleted, inserted (tabs, newlines, quotes, BOMs,
# invalid UTF-8, YAML anchors and tags...), replaced, lines duplicated, the file truncated, and for
# gzipped files the compressed bytes themselves damaged. The answer is rows (which canonicalize
# into the task's format, or fail with a DataError) or a one-line StopoverError; never another
# exception. `FUZZ_EXAMPLES` raises the count of the fast tests; the `_long` variants are slow.


FAST = settings(max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", "25")), deadline=None)
LONG = settings(max_examples=400, deadline=None)

TOKENS = [b"\t", b"\n", b"\r\n", b"\r", b'"', b"'", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\x00", b"{", b"}", b"[",
          b"]", b":", b",", b"-1", b"1e999", b"NaN", b"#", b"1-2", b"1.1", b"  ", b"\\", b"&a ", b"*a", b"<<: ",
          b"!!python/object:os.system ", b"- ", b"? ", b"null", b"true", b"99999999999999999999", b"_", b"=",
          b"\xe2\x80\xa8", b"\xf0\x9f\x98\x80"]
POSITION = st.integers(0, 1 << 20)
OPS = st.lists(st.one_of(
    st.tuples(st.just("delete"), POSITION, st.integers(1, 12)),
    st.tuples(st.just("insert"), POSITION, st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("replace"), POSITION, st.binary(min_size=1, max_size=1)),
    st.tuples(st.just("duplicate-line"), POSITION, st.just(b"")),
    st.tuples(st.just("drop-line"), POSITION, st.just(b"")),
    st.tuples(st.just("truncate"), POSITION, st.just(b"")),
), min_size=1, max_size=6)


def mutate(data: bytes, ops: list[tuple[str, int, object]]) -> bytes:
    for op, pos, arg in ops:
        at = pos % (len(data) + 1)
        if op == "delete":
            data = data[:at] + data[at + int(arg):]
        elif op == "insert":
            data = data[:at] + bytes(arg) + data[at:]
        elif op == "replace" and data:
            at %= len(data)
            data = data[:at] + bytes(arg) + data[at + 1:]
        elif op in ("duplicate-line", "drop-line"):
            lines = data.split(b"\n")
            i = pos % len(lines)
            lines[i:i + 1] = [lines[i]] * 2 if op == "duplicate-line" else []
            data = b"\n".join(lines)
        elif op == "truncate":
            data = data[:at]
    return data


def clean(call: Callable[[], object]) -> object:
    """call(), or None for a clean one-line StopoverError; any other exception fails the test."""
    try:
        return call()
    except StopoverError as err:
        assert str(err) and "\n" not in str(err), repr(str(err))
        return None


def canonical(rows: object, task_name: str, where: str) -> None:
    """Rows a reader returned canonicalize into the task format's shape, or fail with a DataError."""
    check_rows(rows)
    task = get_task(task_name)
    examples = clean(lambda: canonicalize(rows, task, where))
    if examples is None:
        return
    keys = set(_CANONICAL_KEYS[task.format])
    for ex in examples:
        assert set(ex) == keys
        for key in ("text_a", "question", "context", "source", "target", "text"):
            if key in ex:
                assert isinstance(ex[key], str)
        if "tokens" in ex:
            assert all(isinstance(t, str) for t in ex["tokens"]) and len(ex["tokens"]) == len(ex["tags"])
        if "label" in ex:
            assert isinstance(ex["label"], int) and 0 <= ex["label"] < len(task.labels)
        if "answers" in ex:
            starts = ex["answers"]["answer_start"]
            assert all(isinstance(s, int) and s >= 0 for s in starts)
            assert len(starts) == len(ex["answers"]["text"])


def write(root: Path, rel: str, data: bytes, gz: bool = False) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_gzip.compress(data, mtime=0) if gz else data)
    return path


def damaged_gzip(data: bytes, ops: list, damage_compressed: bool) -> bytes:
    """A .gz file's bytes: the mutated text compressed, or valid text compressed and then damaged."""
    return mutate(_gzip.compress(data, mtime=0), ops) if damage_compressed else _gzip.compress(mutate(data, ops),
                                                                                               mtime=0)


CONLLU_TEXT = ("# sent_id = s1\n1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n2-3\tdogs'\t_\t_\t_\t_\t_\t_\t_\t_\n"
               "2\tdogs\tdog\tNOUN\t_\t_\t4\tnsubj\t_\t_\n3\t'\t'\tPART\t_\t_\t2\tcase\t_\t_\n"
               "3.1\trun\trun\tVERB\t_\t_\t_\t_\t0:root\t_\n4\trun\trun\tVERB\t_\t_\t0\troot\t_\t_\n\n"
               "# sent_id = s2\n1\tYes\tyes\tINTJ\t_\t_\t0\troot\t_\t_\n\n").encode()
SQUAD_TEXT = json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": [
    {"context": "The dog runs in the park.", "qas": [
        {"id": "arabic-1-0", "question": "What runs?", "answers": [{"text": "dog", "answer_start": 4}]},
        {"id": "arabic-1-1", "question": "Where?", "answers": [{"text": "the park", "answer_start": 16}],
         "is_impossible": False}]}]}]}).encode()
PANX_TEXT = b"en:Paris\tB-LOC\nen:is\tO\nen:big\tO\n\nen:Ada\tB-PER\nen:Lovelace\tI-PER\n"
CCG_TEXT = b"The\tNP/N\ndog\tN\nruns\tS\\NP\n\nYes\tS\n"
MNLI_JSONL = b'{"premise": "a dog", "hypothesis": "an animal", "label": "entailment"}\n' \
             b'{"premise": "a cat", "hypothesis": "a dog", "label": 2}\n'
PAWSX_TSV = b"id\tsentence1\tsentence2\tlabel\n1\ta b\tb a\t1\n2\tc d\tc d\t0\n"
COSMOS_CSV = (b"id,context,question,answer0,answer1,answer2,answer3,label\n"
              b'1,"I left, then ""rain"".",Why?,a,b,c,d,2\n2,ctx,q,a,b,c,d,0\n')


def _readers(root: Path, ops: list, gz: bool, which: int) -> list[tuple[str, str, Callable[[], object]]]:
    """(name, task, call) of every reader on its mutated file under `root` (built lazily by each call)."""
    from stopover.conllu import read_sentences
    from stopover.squad import read_squad
    from stopover.tasks import choice, mlm, qa, retrieval, tagging

    def conllu():
        path = write(root, "ud/eng/test.conllu" + (".gz" if gz else ""),
                     damaged_gzip(CONLLU_TEXT, ops, which % 2 == 0) if gz else mutate(CONLLU_TEXT, ops))
        clean(lambda: read_sentences(path))
        return tagging.read_ud(path, get_task("udpos"), "eng")

    def squad():
        path = write(root, "xquad/xquad.de.json" + (".gz" if gz else ""),
                     damaged_gzip(SQUAD_TEXT, ops, which % 2 == 0) if gz else mutate(SQUAD_TEXT, ops))
        return read_squad(path, get_task("xquad"), "deu")

    def tydiqa():
        path = write(root, "tydiqa/tydiqa-goldp-v1.1-dev.json", mutate(SQUAD_TEXT, ops))
        return qa._read_tydiqa(path, get_task("tydiqa"), "ara")

    def panx():
        path = write(root, "panx/en/test.iob" + (".gz" if gz else ""),
                     damaged_gzip(PANX_TEXT, ops, which % 2 == 0) if gz else mutate(PANX_TEXT, ops))
        return tagging.read_panx(path, get_task("panx"), "eng")

    def ccg():
        train = write(root, "ccg/eng/train.ccg", mutate(CCG_TEXT, ops) if which % 2 else CCG_TEXT)
        dev = write(root, "ccg/eng/dev.ccg", CCG_TEXT if which % 2 else mutate(CCG_TEXT, ops))
        return tagging.read_ccg(dev if which % 3 else train, get_task("ccg"), "eng")

    def tatoeba():
        sides = [b"Hallo Welt\nGuten Tag\n", b"Hello world\nGood day\n"]
        sides[which % 2] = mutate(sides[which % 2], ops)
        path = write(root, "tatoeba/tatoeba.deu-eng.deu", sides[0])
        write(root, "tatoeba/tatoeba.deu-eng.eng", sides[1])
        return retrieval.read_laser(path, get_task("tatoeba"), "deu")

    def bucc():
        files = {"de": b"de-1\tHallo Welt\nde-2\tGuten Tag\n", "en": b"en-1\tHello world\nen-2\tGood day\n",
                 "gold": b"de-1\ten-1\n"}
        side = ("de", "en", "gold")[which % 3]
        files[side] = mutate(files[side], ops)
        for suffix, data in files.items():
            write(root, f"bucc/de-en.sample.{suffix}", data)
        return retrieval.read_bucc(root / "bucc" / "de-en.sample.de", get_task("bucc"), "deu")

    def cosmosqa():
        path = write(root, "cosmosqa/valid.csv.gz", damaged_gzip(COSMOS_CSV, ops, which % 2 == 0))
        return choice._read_csv_gz(path, get_task("cosmosqa"), "eng")

    def text():
        path = write(root, "mlm/deu/train.txt" + (".gz" if gz else ""),
                     damaged_gzip(b"ein Satz\nnoch einer\n", ops, which % 2 == 0) if gz
                     else mutate(b"ein Satz\nnoch einer\n", ops))
        return mlm.read_text(path, get_task("mlm"), "deu")

    def jsonl():
        path = write(root, "mnli/eng/train.jsonl" + (".gz" if gz else ""),
                     damaged_gzip(MNLI_JSONL, ops, which % 2 == 0) if gz else mutate(MNLI_JSONL, ops))
        return read_table(path)

    def tsv():
        path = write(root, "pawsx/en/test.tsv" + (".gz" if gz else ""),
                     damaged_gzip(PAWSX_TSV, ops, which % 2 == 0) if gz else mutate(PAWSX_TSV, ops))
        return read_table(path, skip_bad_rows=which % 2 == 0)

    def csv_table():
        path = write(root, "cosmosqa/eng/test.csv", mutate(COSMOS_CSV, ops))
        return read_table(path, skip_bad_rows=which % 2 == 0)

    return [("conllu", "udpos", conllu), ("squad", "xquad", squad), ("tydiqa", "tydiqa", tydiqa),
            ("panx", "panx", panx), ("ccg", "ccg", ccg), ("tatoeba", "tatoeba", tatoeba), ("bucc", "bucc", bucc),
            ("cosmosqa", "cosmosqa", cosmosqa), ("text", "mlm", text), ("jsonl", "mnli", jsonl),
            ("tsv", "pawsx", tsv), ("csv", "cosmosqa", csv_table)]


READER_NAMES = [name for name, _, _ in _readers(Path("."), [], False, 0)]


def _reader_body(name: str) -> Callable[..., None]:
    def body(ops, gz, which):
        import warnings

        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skip_bad_rows warns by design
            (_, task, call), = [r for r in _readers(Path(tmp), ops, gz, which) if r[0] == name]
            rows = clean(call)
            if rows is not None:
                canonical(rows, task, name)
    return body


@pytest.mark.parametrize("name", READER_NAMES)
def test_every_reader_survives_mutated_files(name):
    FAST(given(ops=OPS, gz=st.booleans(), which=st.integers(0, 5))(_reader_body(name)))()


@pytest.mark.slow
@pytest.mark.parametrize("name", READER_NAMES)
def test_every_reader_survives_mutated_files_long(name):
    LONG(given(ops=OPS, gz=st.booleans(), which=st.integers(0, 5))(_reader_body(name)))()


VALID_CONFIG = b"""# a grid
name: fuzz
model: tiny:64x2
data_dir: data
output_dir: runs
pool: [mnli, qqp]
strategies: [none, single, {explicit: [mnli]}, {name: random-k, k: 1, draws: 2}]
targets: [xnli, pawsx]
seeds: [0, 1]
tasks:
  xnli: {languages: [eng, deu], data_dir: xnli-data, skip_bad_rows: true}
  pawsx:
    files: {eng/train: en/train.tsv, dev: null}
    train: {epochs: 2}
target: &base {epochs: 1, batch_size: 16, lr: 1.0e-3, max_length: 32}
intermediate: {<<: *base, epochs: 2}
selection: {k: 2, draws: 3, budget: 100}
"""


def _config_body(ops, overrides):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grid.yaml"
        path.write_bytes(mutate(VALID_CONFIG, ops))
        cfg = clean(lambda: load_config(path, overrides))
        if cfg is not None:
            check_config(cfg)


def test_valid_config_is_valid(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_bytes(VALID_CONFIG)
    cfg = load_config(path)
    assert cfg.intermediate.epochs == 2 and cfg.intermediate.lr == 1e-3  # the merge key and its override
    assert cfg.data_dir == str(tmp_path / "data") and cfg.tasks["xnli"].data_dir == str(tmp_path / "xnli-data")


CONFIG_OVERRIDES = st.lists(st.sampled_from(["seeds=[2]", "selection.k=3", "strategies=[{explicit: []}]",
                                             "model=''", "targets=[]", "tasks.xnli.skip_bad_rows=maybe"]),
                            max_size=2, unique=True)


@FAST
@given(ops=OPS, overrides=CONFIG_OVERRIDES)
def test_config_loader_survives_mutated_files(ops, overrides):
    _config_body(ops, overrides)


@pytest.mark.slow
@LONG
@given(ops=OPS, overrides=CONFIG_OVERRIDES)
def test_config_loader_survives_mutated_files_long(ops, overrides):
    _config_body(ops, overrides)
