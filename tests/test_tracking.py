"""Tracking backends write real local stores that read back (TensorBoard events, an MLflow file store)."""

from __future__ import annotations

import pytest

from stopover.errors import ConfigError
from stopover.tracking import NullTracker, TrackingConfig, flatten, open_tracker

CONFIG = {"kind": "target", "train": {"lr": 3e-4, "epochs": 2}, "task": "udpos"}


def _track(cfg: TrackingConfig, root):
    tracker = open_tracker(cfg, root=root, run_name="grid-a", stage_kind="target", stage_hash="ab" * 32,
                           config=CONFIG)
    for step, loss in enumerate([2.0, 1.5, 1.25], start=1):
        tracker.log_metrics({"train/loss": loss, "train/lr": 1e-4 * step}, step)
    tracker.log_metrics({"dev/score": 61.5}, 3)
    tracker.finish({"dev": 61.5})
    return tracker


def test_flatten_nests_with_dots() -> None:
    assert flatten(CONFIG) == {"kind": "target", "train.lr": 3e-4, "train.epochs": 2, "task": "udpos"}


def test_none_tracks_nothing(tmp_path) -> None:
    assert isinstance(_track(TrackingConfig(), tmp_path), NullTracker)
    assert list(tmp_path.iterdir()) == []


def test_unknown_backend_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="tracking.backend = 'neptune'"):
        _track(TrackingConfig(backend="neptune"), tmp_path)


def test_tensorboard_events_read_back(tmp_path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tracker = _track(TrackingConfig(backend="tensorboard"), tmp_path)
    assert tracker.log_dir == tmp_path / "grid-a" / f"target-{'ab' * 6}"
    events = EventAccumulator(str(tracker.log_dir))
    events.Reload()
    losses = [(e.step, round(e.value, 4)) for e in events.Scalars("train/loss")]
    assert losses == [(1, 2.0), (2, 1.5), (3, 1.25)]
    assert events.Scalars("final/dev")[0].value == pytest.approx(61.5)
    assert "config/text_summary" in events.Tags()["tensors"]


def test_mlflow_file_store_reads_back(tmp_path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    tracker = _track(TrackingConfig(backend="mlflow", dir=str(store)), tmp_path)
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    run = client.get_run(tracker.run_id)
    assert run.info.run_name == f"target-{'ab' * 6}"
    assert run.info.status == "FINISHED"
    assert run.data.params["train.lr"] == "0.0003" and run.data.params["task"] == "udpos"
    assert run.data.tags["stopover.stage_hash"] == "ab" * 32
    history = client.get_metric_history(tracker.run_id, "train_loss")
    assert [(m.step, m.value) for m in history] == [(1, 2.0), (2, 1.5), (3, 1.25)]
    assert run.data.metrics["final_dev"] == pytest.approx(61.5)
    assert client.get_experiment(run.info.experiment_id).name == "grid-a"


def test_wandb_offline_run_is_written(tmp_path, monkeypatch) -> None:
    pytest.importorskip("wandb", reason="wandb is optional (pip install wandb)")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    _track(TrackingConfig(backend="wandb", dir=str(tmp_path / "wb")), tmp_path)
    runs = list((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("*.wandb"))
