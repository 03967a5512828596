"""Files stopover writes respect the umask: collaborators on a shared cluster can read them.

`tempfile.mkstemp` (behind every atomic write) and safetensors create files 0600 whatever the
umask; `stopover.store.atomic_write_text` and `respect_umask` give them `0o666 & ~umask`, the
mode any other file the user writes gets.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from stopover.store import atomic_write_text, current_umask, file_mode, respect_umask
from tests.fixtures import write_nli_fixtures


@pytest.fixture
def umask():
    """Set the process umask for one test (and put the old one back)."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600), (0o027, 0o640)])
def test_atomic_writes_get_the_umask_mode(tmp_path, umask, mask, expected):
    umask(mask)
    assert current_umask() == mask and file_mode() == expected
    path = tmp_path / "sub" / "report.csv"
    atomic_write_text(path, "a,b\n")
    assert mode(path) == expected and path.read_text() == "a,b\n"
    atomic_write_text(path, "a,b\n1,2\n")  # replacing a file: the new one gets the mode too
    assert mode(path) == expected
    assert not [p for p in path.parent.iterdir() if p.name != "report.csv"]  # no temporary file left


def test_respect_umask_fixes_library_written_files(tmp_path, umask):
    import numpy as np
    from safetensors.numpy import save_file

    umask(0o002)
    model = tmp_path / "model"
    model.mkdir()
    save_file({"w": np.zeros(2, dtype=np.float32)}, str(model / "model.safetensors"))
    (model / "config.json").write_text("{}")
    respect_umask(model)
    assert {p.name: mode(p) for p in model.iterdir()} == {"model.safetensors": 0o664, "config.json": 0o664}


def tiny_grid(tmp_path: Path) -> Path:
    data = write_nli_fixtures(tmp_path / "data")
    cfg = {"name": "u", "model": "tiny:64x2", "output_dir": str(tmp_path / "runs"), "data_dir": str(data),
           "pool": ["mnli"], "strategies": [{"explicit": ["mnli"]}], "targets": ["xnli"],
           "tasks": {"xnli": {"languages": ["eng", "deu"]}}, "checkpoint_every": 2,
           "intermediate": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32},
           "target": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32}}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


# Files whose writers are outside store.py: model weights (safetensors via save_pretrained, in
# pipeline.py and models.py), plots (report.py's own mkstemp). They call `respect_umask` /
# `file_mode` (models._saving, report._atomic_write_bytes).
LIBRARY_WRITTEN = ("model.safetensors", ".png")


@pytest.fixture(scope="module")
def run_and_report(tmp_path_factory):
    from stopover.cli import main

    tmp = tmp_path_factory.mktemp("umask")
    old = os.umask(0o002)
    try:
        assert main(["run", str(tiny_grid(tmp))]) == 0
        assert main(["report", str(tmp / "runs" / "u")]) == 0
    finally:
        os.umask(old)
    return tmp / "runs" / "u"


@pytest.mark.slow
def test_run_directory_files_respect_the_umask(run_and_report):
    files = [p for p in run_and_report.rglob("*") if p.is_file()]
    ours = [p for p in files if not p.name.endswith(LIBRARY_WRITTEN)]
    assert {"config.yaml", "results.jsonl", "DONE", "stage.json", "report.html"} <= {p.name for p in ours}
    assert {str(p.relative_to(run_and_report)): oct(mode(p)) for p in ours if mode(p) != 0o664} == {}


@pytest.mark.slow
def test_model_weights_and_plots_respect_the_umask(run_and_report):
    files = [p for p in run_and_report.rglob("*") if p.is_file() and p.name.endswith(LIBRARY_WRITTEN)]
    assert files and all(mode(p) == 0o664 for p in files)
