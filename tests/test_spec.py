"""Stage identity: a StageSpec's hash follows the config, the data, task/format versions and the code."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from stopover import spec as spec_module
from stopover import tasks as task_registry
from stopover.config import RunConfig, from_dict, stable_hash, to_yaml
from stopover.context import RunContext
from stopover.spec import StageSpec, code_digest
from tests.fixtures import write_nli_fixtures


def _cfg(tmp_path, **over) -> RunConfig:
    data = write_nli_fixtures(tmp_path / "data", train=8, test=4)
    base = {"name": "s", "model": "xlm-roberta-large", "output_dir": str(tmp_path / "runs"), "data_dir": str(data),
            "pool": ["mnli"], "targets": ["xnli"], "tasks": {"xnli": {"languages": ["eng", "deu"]}}}
    base.update(over)
    return from_dict(RunConfig, base)


def _eval_hash(cfg: RunConfig, tmp_path) -> str:
    run = RunContext(cfg, tmp_path / "runs" / "s")
    inter = run.intermediate_spec(("mnli",), 0, None)
    return run.eval_spec("xnli", run.target_spec("xnli", inter, 0)).hash


@pytest.fixture
def fresh_digest():
    code_digest.cache_clear()
    yield
    code_digest.cache_clear()  # the next test sees the package's own digest again


def test_identity_round_trips_through_config_yaml(tmp_path):
    run = RunContext(_cfg(tmp_path), tmp_path / "runs" / "s")
    spec = run.target_spec("xnli", run.intermediate_spec(("mnli",), 0, None), 0)
    assert stable_hash(yaml.safe_load(to_yaml(spec.identity()))) == spec.hash
    assert spec.identity()["versions"] == {"xnli": 1, "mnli": 1}
    assert spec.identity()["formats"] == {"classification": 1}
    assert spec.set_name == "mnli" and spec.train_task == "mnli" and spec.dev_task == "xnli"
    assert spec.train_config().epochs == run.cfg.target.epochs  # the stage runs from the spec alone


def test_a_format_version_bump_is_a_new_stage(tmp_path, monkeypatch):
    from stopover.formats.classification import FORMAT

    cfg = _cfg(tmp_path)
    before = _eval_hash(cfg, tmp_path)
    assert _eval_hash(cfg, tmp_path) == before
    monkeypatch.setattr(type(FORMAT), "version", FORMAT.version + 1)
    assert _eval_hash(cfg, tmp_path) != before


def test_a_task_version_bump_is_a_new_stage(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    before = _eval_hash(cfg, tmp_path)
    bumped = dataclasses.replace(task_registry.get_task("mnli"), version=2)
    monkeypatch.setitem(task_registry._REGISTRY, "mnli", bumped)
    assert _eval_hash(cfg, tmp_path) != before


def test_one_changed_source_byte_is_a_new_stage(tmp_path, monkeypatch, fresh_digest):
    source = tmp_path / "module.py"
    source.write_text("x = 1\n")
    monkeypatch.setattr(spec_module, "source_files", lambda: [source])
    cfg = _cfg(tmp_path)
    first, first_hash = code_digest(), _eval_hash(cfg, tmp_path)
    source.write_text("x = 2\n")
    assert code_digest() == first  # computed once per process
    code_digest.cache_clear()
    assert code_digest() != first and _eval_hash(cfg, tmp_path) != first_hash


def test_the_package_version_alone_keys_nothing():
    spec = StageSpec("eval", tasks=("xnli",), code=code_digest())
    assert "stopover" not in spec.identity() and spec.identity()["code"] == code_digest()


def test_the_hub_commit_served_enters_the_identity(tmp_path, monkeypatch):
    from stopover import sources

    cfg = from_dict(RunConfig, {"name": "h", "model": "xlm-roberta-large", "output_dir": str(tmp_path),
                                "targets": ["xnli"]})
    hashes = []
    for commit in ("a" * 40, "b" * 40):
        monkeypatch.setattr(sources, "resolve_commit", lambda repo, revision, c=commit: c)
        run = RunContext(cfg, tmp_path / "h", resolve_hub=True)
        ev = run.eval_spec("xnli", run.pretrained())
        assert ev.identity()["data"][0]["hub"] == ["google/xtreme", "XNLI", "main", commit]
        hashes.append(ev.hash)
    assert hashes[0] != hashes[1]
