"""`tracking:` wired into the stages: tiny runs write real TensorBoard events and an MLflow file store."""

from __future__ import annotations

import json

import pytest

from stopover.grid import run_grid
from tests.test_pipeline import LANGS, sets, tiny_config


def _stages(run_dir) -> dict[str, str]:
    """{stage kind: stage hash} of a one-cell run."""
    out = {}
    for d in (run_dir / "stages").iterdir():
        kind = next(line.split(": ", 1)[1] for line in (d / "config.yaml").read_text().splitlines()
                    if line.startswith("kind: "))
        out[kind] = d.name
    return out


def test_tensorboard_events_of_every_stage(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_config(tmp_path, tracking={"backend": "tensorboard"})
    run_dir, pipe = run_grid(cfg, sets=sets(("explicit", ("mnli",))))
    stages = _stages(run_dir)
    root = run_dir / "tracking" / cfg.name
    assert sorted(p.name for p in root.iterdir()) == sorted(f"{k}-{h[:12]}" for k, h in stages.items())

    def events(kind: str) -> EventAccumulator:
        acc = EventAccumulator(str(root / f"{kind}-{stages[kind][:12]}"))
        acc.Reload()
        return acc

    target = events("target")
    losses = target.Scalars("train/loss")
    info = json.loads((run_dir / "stages" / stages["target"] / "stage.json").read_text())
    assert [e.step for e in losses] == list(range(1, info["steps"] + 1)) and info["steps"] == 6
    assert all(0 < e.value < 10 for e in losses)
    lrs = [e.value for e in target.Scalars("train/lr")]
    # the rate each step used: no warmup step (int(0.1 * 6) = 0), then linear decay from lr = 1e-3
    assert lrs == pytest.approx([1e-3 * (6 - k) / 6 for k in range(6)], rel=1e-5)
    (dev,) = target.Scalars("dev/xnli/accuracy")
    assert dev.step == 6 and dev.value == pytest.approx(info["best_dev"])
    assert target.Scalars("final/best_dev")[0].value == pytest.approx(info["best_dev"])
    assert target.Scalars("final/trainable_params")[0].value == info["trainable_params"]
    assert "config/text_summary" in target.Tags()["tensors"]
    assert events("intermediate").Scalars("train/loss") and events("intermediate").Scalars("dev/mnli/accuracy")
    scores = json.loads((run_dir / "stages" / stages["eval"] / "scores.json").read_text())
    evaluation = events("eval")
    for lang in LANGS:
        assert evaluation.Scalars(f"test/{lang}/accuracy")[0].value == pytest.approx(scores[lang]["accuracy"])


def test_mlflow_file_store_of_a_run(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    cfg = tiny_config(tmp_path, tracking={"backend": "mlflow", "dir": str(store)})
    run_dir, _ = run_grid(cfg, sets=sets(("none", ())))
    stages = _stages(run_dir)
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    experiment = client.get_experiment_by_name(cfg.name)
    assert experiment is not None
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {f"{k}-{h[:12]}" for k, h in stages.items()}
    target = runs[f"target-{stages['target'][:12]}"]
    assert target.info.status == "FINISHED"
    assert target.data.tags["stopover.stage_hash"] == stages["target"]
    assert target.data.tags["stopover.stage_kind"] == "target" and target.data.tags["stopover.run"] == cfg.name
    params = target.data.params
    assert params["kind"] == "target" and params["train.xnli.lr"] == "0.001" and params["train.xnli.peft"] == "None"
    assert params["run_model"] == "tiny:64x2"
    losses = client.get_metric_history(target.info.run_id, "train_loss")
    assert [m.step for m in losses] == list(range(1, 7))
    info = json.loads((run_dir / "stages" / stages["target"] / "stage.json").read_text())
    assert target.data.metrics["final_best_dev"] == pytest.approx(info["best_dev"])
    assert target.data.metrics["final_steps"] == 6
    evaluation = runs[f"eval-{stages['eval'][:12]}"]
    assert {k for k in evaluation.data.metrics} == {f"test_{lang}_accuracy" for lang in LANGS}


def test_tracking_is_no_part_of_stage_identities(tmp_path):
    pytest.importorskip("tensorboard")
    grid = sets(("none", ()))
    run_dir, first = run_grid(tiny_config(tmp_path), sets=grid)
    before = (run_dir / "results.jsonl").read_text()
    _, again = run_grid(tiny_config(tmp_path, tracking={"backend": "tensorboard"}), sets=grid)
    assert len(first.trained) == 2 and again.trained == []  # same stages: nothing runs, nothing is tracked
    assert (run_dir / "results.jsonl").read_text() == before
    assert not (run_dir / "tracking").exists()


def test_a_missing_tracking_library_is_a_config_error_before_training(tmp_path, monkeypatch):
    import importlib.util

    from stopover.errors import ConfigError
    from stopover.grid import check_extras

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("mlflow", "peft")
                        else real(name, *a))
    with pytest.raises(ConfigError, match="tracking.backend = mlflow needs the mlflow package"):
        check_extras(tiny_config(tmp_path, tracking={"backend": "mlflow"}))
    with pytest.raises(ConfigError, match="peft: LoRA needs the peft package"):
        check_extras(tiny_config(tmp_path, tasks={"xnli": {"train": {"peft": {"r": 4}}}}))
    check_extras(tiny_config(tmp_path))  # nothing optional asked for: nothing needed
