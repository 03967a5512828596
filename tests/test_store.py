"""Stage bookkeeping in the store: run once under a lock, DONE last, FAILED with a reason, idempotent rows,
a full disk as a one-line StorageError."""

from __future__ import annotations

import errno
import json
import os

import pytest
import yaml

from stopover.config import stable_hash
from stopover.errors import StorageError
from stopover.store import (
    DONE_MARKER,
    FAILED_MARKER,
    ResultRow,
    read_results,
    record_rows,
    run_stage,
    stage_at,
    stage_state,
    storage_errors,
)


def _stage(tmp_path, kind="eval"):
    identity = {"kind": kind, "parent": None, "tasks": ["xnli"]}
    return stage_at(tmp_path, kind, stable_hash(identity)), identity


def test_a_stage_runs_once_and_its_config_hashes_to_its_name(tmp_path):
    stage, identity = _stage(tmp_path)
    calls = []
    assert run_stage(stage, identity, lambda: calls.append(1) or {"ok": True}) is True
    assert run_stage(stage, identity, lambda: calls.append(1) or {}) is False
    assert calls == [1] and stage.done and stage_state(stage.dir) == ("done", "")
    assert stable_hash(yaml.safe_load((stage.dir / "config.yaml").read_text())) == stage.hash
    assert json.loads((stage.dir / "stage.json").read_text()) == {"ok": True}
    assert (stage.dir / DONE_MARKER).read_text().strip() == stage.hash


def test_a_failed_stage_says_why_and_runs_again(tmp_path):
    stage, identity = _stage(tmp_path)

    def boom() -> dict:
        raise ValueError("bad batch\nmore detail")

    with pytest.raises(ValueError):
        run_stage(stage, identity, boom)
    assert stage_state(stage.dir) == ("failed", "ValueError: bad batch")
    assert not stage.done and (stage.dir / FAILED_MARKER).exists()
    assert run_stage(stage, identity, lambda: {}) and not (stage.dir / FAILED_MARKER).exists()


def test_training_stages_are_done_only_with_their_outputs(tmp_path):
    stage, identity = _stage(tmp_path, "intermediate")
    run_stage(stage, identity, lambda: {})
    assert not stage.done  # no encoder directory (pruned, or never written)
    stage.encoder_dir.mkdir()
    assert stage.done
    assert stage_state(tmp_path / "stages" / "never") == ("pending", "")


def test_rows_are_recorded_once(tmp_path):
    rows = [ResultRow(run="r", stage="eval", stage_hash="h", task="xnli", language=lang, split="test",
                      metric="accuracy", value=50.0, seed=0, strategy="none", intermediate="none", n=3)
            for lang in ("eng", "deu")]
    assert record_rows(tmp_path, rows) == 2
    assert record_rows(tmp_path, rows + rows) == 0
    assert [r.language for r in read_results(tmp_path)] == ["eng", "deu"]


def test_a_full_disk_is_a_storage_error_naming_the_directory(tmp_path):
    target = tmp_path / "stages" / "abc" / "model"
    with pytest.raises(StorageError, match=f"cannot write {target}: No space left"):
        with storage_errors(tmp_path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
    with pytest.raises(KeyError):  # anything else is a bug and keeps its traceback
        with storage_errors(tmp_path):
            raise KeyError("x")


def test_saving_a_model_on_a_full_disk_names_the_model_directory(tmp_path):
    from stopover.models import save_model

    class Full:
        def save_pretrained(self, directory):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = tmp_path / "stages" / "abc" / "model"
    out.parent.mkdir(parents=True)
    with pytest.raises(StorageError, match=f"cannot write {out}"):
        with storage_errors(tmp_path):
            save_model(Full(), Full(), out)
    assert not out.exists() and not out.with_name("model.tmp").exists()
