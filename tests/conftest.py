"""Shared test fixtures: where the real data samples live, tiny-model settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """../shared/data beside the repository (or $STOPOVER_SHARED_DATA)."""
    env = os.environ.get("STOPOVER_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data samples not found at {path} (set STOPOVER_SHARED_DATA)")
    return path


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Tests never touch the network, and never write into the user's real cache.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    if "STOPOVER_CACHE" not in os.environ:
        monkeypatch.setenv("STOPOVER_CACHE", str(tmp_path_factory.getbasetemp() / "stopover-cache"))
