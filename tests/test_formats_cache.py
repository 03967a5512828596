"""stopover.formats.cache: every format's real features come back from disk exactly as they were
tokenised (types included: span QA's offset tuples and None entries, tagging's word ids, multiple
choice's nested lists), a damaged entry is a visible rebuild, and max_length beyond the model is
an error naming the key."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from stopover.errors import ConfigError
from stopover.formats import get_format
from stopover.formats.cache import FeatureCache, decode_features, encode_features
from stopover.tasks import get_task
from tests.conftest import shared_data_dir


def real_sentences() -> list[list[str]]:
    """Tokenised English sentences: UD English EWT dev from ../shared/data, or the NLI fixtures."""
    path = shared_data_dir() / "ud" / "en" / "dev.conllu.gz"
    if path.is_file():
        from stopover.conllu import read_sentences

        return [s.forms for s in read_sentences(path)[:120]]
    from tests.fixtures import nli_rows

    return [row["premise"].split() for row in nli_rows("eng", 120, 0)]


SENTENCES = real_sentences()
TEXTS = [" ".join(words) for words in SENTENCES]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from stopover.models import load_tokenizer, tiny_model_for_corpus

    with pytest.MonkeyPatch.context() as mp:  # module fixtures run before conftest's cache redirect
        mp.setenv("STOPOVER_CACHE", str(tmp_path_factory.mktemp("tiny-cache")))
        return load_tokenizer(str(tiny_model_for_corpus("tiny:32x1", TEXTS)))


def qa_examples() -> list[dict[str, Any]]:
    out = []
    for i in range(0, 60, 3):
        context = " ".join(TEXTS[i:i + 8])  # long enough for several windows at max_length 48
        answer = SENTENCES[i + 1][0]
        out.append({"id": f"q{i}", "context": context, "question": f"what about {SENTENCES[i][0]}?",
                    "answers": {"text": [answer], "answer_start": [context.index(answer, len(TEXTS[i]))]}})
    return out


EXAMPLES = {
    "xnli": lambda: [{"text_a": TEXTS[i], "text_b": TEXTS[i + 1], "label": i % 3} for i in range(40)],
    "cosmosqa": lambda: [{"context": TEXTS[i], "question": "what happens next?",
                          "endings": [TEXTS[i + 1], TEXTS[i + 2], TEXTS[i + 3]], "label": i % 3} for i in range(30)],
    "squad": qa_examples,
    "udpos": lambda: [{"tokens": words, "tags": ["NOUN"] * len(words)} for words in SENTENCES[:60]],
    "tatoeba": lambda: [{"source": TEXTS[i], "target": TEXTS[i + 1]} for i in range(10)],
    "mlm": lambda: [{"text": t} for t in TEXTS[:40]],
}
CASES = [("xnli", True, 64), ("xnli", False, 64), ("cosmosqa", True, 48), ("squad", True, 48),
         ("squad", False, 48), ("udpos", True, 16), ("udpos", False, 16), ("tatoeba", False, 32),
         ("mlm", True, 32), ("mlm", False, 32)]


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (a tuple is not a list, True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)  # NaN equals NaN here


class Counting:
    """A real format that counts how often it tokenises."""

    def __init__(self, name: str) -> None:
        self.fmt, self.name, self.calls = get_format(name), name, 0

    def featurize(self, *args: Any, **kwargs: Any) -> list[dict]:
        self.calls += 1
        return self.fmt.featurize(*args, **kwargs)


def test_the_signature_ignores_call_settings_left_in_the_tokenizer(tokenizer):
    before = FeatureCache("t").signature(tokenizer)
    tokenizer(["a b c"], truncation=True, max_length=7, padding="max_length")
    assert FeatureCache("t").signature(tokenizer) == before


def test_all_formats_are_covered():
    from stopover.tasks import all_tasks

    assert {get_task(name).format for name, _, _ in CASES} == {t.format for t in all_tasks()}


@pytest.mark.parametrize("task_name,train,max_length", CASES,
                         ids=[f"{t}-{'train' if tr else 'eval'}" for t, tr, _ in CASES])
def test_real_features_round_trip_exactly(tmp_path, monkeypatch, tokenizer, task_name, train, max_length):
    monkeypatch.setenv("STOPOVER_CACHE", str(tmp_path))
    task = get_task(task_name)
    fmt = Counting(task.format)
    cache = FeatureCache("test")
    built = cache.features(fmt, task, EXAMPLES[task_name](), tokenizer, max_length, train=train, data_key=["k"])
    assert built and fmt.calls == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean read: no damage warning
        again = FeatureCache("test").features(fmt, task, EXAMPLES[task_name](), tokenizer, max_length,
                                              train=train, data_key=["k"])
    assert fmt.calls == 1  # read from disk, not tokenised again
    assert same(again, built)
    (entry,) = (tmp_path / "features").iterdir()
    assert entry.suffix == ".safetensors"


def test_format_specific_values_survive(tmp_path, tokenizer):
    squad = get_format("span_qa").featurize(qa_examples(), tokenizer, get_task("squad"), 48, train=False)
    assert len(squad) > len(qa_examples())  # contexts were cut into several windows
    offsets = [o for f in squad for o in f["offsets"]]
    assert None in offsets and any(isinstance(o, tuple) for o in offsets)
    tags = get_format("tagging").featurize(EXAMPLES["udpos"](), tokenizer, get_task("udpos"), 16, train=True)
    assert any(-1 in f["word_ids"] for f in tags)
    for feats in (squad, tags):
        path = tmp_path / "entry.safetensors"
        path.write_bytes(encode_features(feats))
        assert same(decode_features(path), feats)


def test_mixed_and_missing_values_round_trip(tmp_path):
    feats = [{"input_ids": [0, 7, 2], "example_index": 0, "task": "mnli", "weight": 0.5, "pair": (1, "a"),
              "flag": True, "big": 1 << 70, "nested": {"k": [(1, 2), None]}},
             {"input_ids": [], "example_index": 1, "weight": float("nan"), "pair": (2, "b"), "flag": False,
              "big": 3, "nested": {}, "choices": [[1, 2], [3]]}]
    path = tmp_path / "entry.safetensors"
    path.write_bytes(encode_features(feats))
    assert same(decode_features(path), feats)
    path.write_bytes(encode_features([]))
    assert decode_features(path) == []


DAMAGE = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[:len(data) // 2],
    "garbage": lambda data: bytes(range(256)) * 4,
    "tail-cut": lambda data: data[:-3],
    "another-key": lambda data: encode_features([{"x": 1}], key="another"),
    "wrong-count": lambda data: with_header(data, n=99),
    "wrong-version": lambda data: with_header(data, version=0),
    "bad-offsets": lambda data: with_array(data, "0.offsets", lambda a: a[::-1].copy()),
}


def with_header(data: bytes, **change: Any) -> bytes:
    """The entry `data` with its header fields changed (arrays kept)."""
    import json

    from safetensors.numpy import load, save

    header = json.loads(_metadata(data)["stopover-features"])
    header.update(change)
    return save(load(data), metadata={"stopover-features": json.dumps(header)})


def with_array(data: bytes, name: str, change: Any) -> bytes:
    from safetensors.numpy import load, save

    arrays = load(data)
    arrays[name] = change(arrays[name])
    return save(arrays, metadata=_metadata(data))


def _metadata(data: bytes) -> dict[str, str]:
    import json
    import struct

    size = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + size])["__metadata__"]


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damaged_entry_is_a_visible_rebuild(tmp_path, monkeypatch, tokenizer, damage):
    monkeypatch.setenv("STOPOVER_CACHE", str(tmp_path))
    task, fmt = get_task("xnli"), Counting("classification")
    first = FeatureCache("t").features(fmt, task, EXAMPLES["xnli"](), tokenizer, 64, train=True, data_key=["k"])
    (entry,) = (tmp_path / "features").iterdir()
    entry.write_bytes(DAMAGE[damage](entry.read_bytes()))
    with pytest.warns(UserWarning, match=rf"feature cache entry {entry}.* is damaged .*rebuilding it"):
        rebuilt = FeatureCache("t").features(fmt, task, EXAMPLES["xnli"](), tokenizer, 64, train=True,
                                             data_key=["k"])
    assert fmt.calls == 2 and same(rebuilt, first)
    assert same(decode_features(entry), first)  # whole again


def test_max_length_beyond_the_model_names_the_key(tmp_path, monkeypatch, tokenizer):
    monkeypatch.setenv("STOPOVER_CACHE", str(tmp_path))
    for train, key in ((True, "tasks.xnli.train.max_length"), (False, "evaluation.max_length")):
        with pytest.raises(ConfigError, match=rf"max_length .*{key}.* = 600: .* at most 512 tokens"):
            FeatureCache("t").features(Counting("classification"), get_task("xnli"), EXAMPLES["xnli"](), tokenizer,
                                       600, train=train, data_key=["k"])
    assert not (tmp_path / "features").exists() or not list((tmp_path / "features").iterdir())


def test_full_disk_while_writing_an_entry_is_a_storage_error_and_leaves_no_file(tmp_path, monkeypatch, tokenizer):
    import errno
    import os

    import stopover.formats.cache as cache_mod
    from stopover.errors import StorageError

    monkeypatch.setenv("STOPOVER_CACHE", str(tmp_path))

    class FullDisk:
        """A file that takes the first bytes, then reports a full disk (as write(2) does)."""

        def __init__(self, path, mode):
            self.fh = open(path, mode)

        def write(self, data):
            self.fh.write(data[:10])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(cache_mod, "open", FullDisk, raising=False)  # the module's name `open`, not builtins
    with pytest.raises(StorageError, match=r"cannot write .*\.safetensors: No space left on device; free disk space"):
        FeatureCache("t").features(Counting("classification"), get_task("xnli"), EXAMPLES["xnli"](), tokenizer, 64,
                                   train=True, data_key=["k"])
    assert list((tmp_path / "features").iterdir()) == []
