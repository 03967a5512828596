"""Fixtures for the reliability tests: one uninterrupted reference run of the tiny grid."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.harness import grid_config, run_dir_of, stages_run, stopover_run


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny crash grid run once, uninterrupted, in a subprocess with its own cache."""
    root = tmp_path_factory.mktemp("reference")
    config = grid_config(root, name="crash")
    done = stopover_run(config, root / "cache")
    assert done.returncode == 0, done.stderr
    assert stages_run(done.stdout) == 3
    return run_dir_of(config)
