"""Experiment tracking: one tracked run per stage, grouped by the grid's run name.

Owns the `tracking:` settings and the three backends researchers use, all of which work
offline to a local directory:

- `tensorboard`: event files under `<dir>/<run name>/<stage kind>-<stage hash>/`
  (torch's SummaryWriter; read them with `tensorboard --logdir <dir>`);
- `mlflow`: a local file store at `<dir>` (MLflow 3 keeps it in maintenance mode: stopover sets
  MLFLOW_ALLOW_FILE_STORE=true unless you set it; experiment = the run name, one MLflow run per
  stage, tagged with the stage identity); `mlflow ui --backend-store-uri <dir>`;
- `wandb`: offline mode (`WANDB_MODE=offline`), group = the run name; `wandb sync` later.

A tracker receives the stage's resolved config (flattened to `a.b.c` keys), its identity,
the training losses and learning rate per optimizer step, English dev scores, and the
stage's final scores. The stages open one each (stopover.context.RunContext.tracker, used by
stopover.pipeline) and hand `stopover.train.train` a `log(metrics, step)` callback: the
training loop itself never imports this module. `none` (the default) tracks nothing and imports nothing. The libraries
are imported only when their backend is chosen, so `import stopover` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

from stopover.errors import ConfigError

BACKENDS = ("none", "tensorboard", "mlflow", "wandb")
# MLflow refuses parameter values longer than this (its documented limit).
_MLFLOW_PARAM_LIMIT = 6000


@dataclass(frozen=True)
class TrackingConfig:
    """`tracking:` in a run config."""

    backend: str = "none"  # none | tensorboard | mlflow | wandb
    dir: str | None = None  # where tracking data goes (default: <run dir>/tracking)
    project: str = "stopover"  # W&B project

    def validate(self, where: str = "tracking") -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"{where}.backend = {self.backend!r}: use one of {', '.join(BACKENDS)}")


class Tracker(Protocol):
    """What the training loop and the stages talk to."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def finish(self, final: Mapping[str, float] | None = None, *, failed: bool = False) -> None: ...


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of `a.b.c` keys (lists and other values kept as they are)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


class NullTracker:
    """Tracks nothing (backend `none`)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        return None

    def finish(self, final: Mapping[str, float] | None = None, *, failed: bool = False) -> None:
        return None


class TensorBoardTracker:
    def __init__(self, root: Path, run_name: str, stage: str, params: Mapping[str, Any]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # torch's writer needs the tensorboard package
            raise ConfigError("tracking.backend = tensorboard needs the tensorboard package: "
                              "pip install 'stopover[tracking]'") from err
        self.log_dir = root / run_name / stage
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        # the resolved config as a text summary: hparams plugins drop non-scalar values
        table = "\n".join(f"| {k} | {v} |" for k, v in sorted(params.items()))
        self.writer.add_text("config", "| key | value |\n|---|---|\n" + table, 0)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, float(value), step)

    def finish(self, final: Mapping[str, float] | None = None, *, failed: bool = False) -> None:
        for name, value in (final or {}).items():
            self.writer.add_scalar(f"final/{name}", float(value), 0)
        if failed:
            self.writer.add_text("status", "FAILED", 0)
        self.writer.close()


class MLflowTracker:
    def __init__(self, root: Path, run_name: str, stage: str, params: Mapping[str, Any],
                 tags: Mapping[str, str]) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as err:
            raise ConfigError("tracking.backend = mlflow needs mlflow: pip install 'stopover[tracking]'") from err
        root.mkdir(parents=True, exist_ok=True)
        # MLflow 3 keeps the local file store in maintenance mode and refuses it unless asked:
        # it is the store that needs no server and no database, which is what offline runs want.
        import os

        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        # A client bound to this store (not the global mlflow.set_tracking_uri): concurrent
        # stages and other code in the process keep their own tracking URIs.
        self.client = MlflowClient(tracking_uri=root.resolve().as_uri())
        experiment = self.client.get_experiment_by_name(run_name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            try:
                experiment_id = self.client.create_experiment(run_name)
            except Exception:  # noqa: BLE001 - another stage's process created it first (local workers)
                again = self.client.get_experiment_by_name(run_name)
                if again is None:
                    raise
                experiment_id = again.experiment_id
        run = self.client.create_run(experiment_id, run_name=stage, tags=dict(tags))
        self.run_id = run.info.run_id
        for key, value in params.items():
            self.client.log_param(self.run_id, key, str(value)[:_MLFLOW_PARAM_LIMIT])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for name, value in metrics.items():
            self.client.log_metric(self.run_id, name.replace("/", "_"), float(value), step=step)

    def finish(self, final: Mapping[str, float] | None = None, *, failed: bool = False) -> None:
        for name, value in (final or {}).items():
            self.client.log_metric(self.run_id, f"final_{name}".replace("/", "_"), float(value))
        self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")


class WandbTracker:
    def __init__(self, root: Path, run_name: str, stage: str, params: Mapping[str, Any],
                 tags: Mapping[str, str], project: str) -> None:
        try:
            import wandb
        except ImportError as err:
            raise ConfigError("tracking.backend = wandb needs wandb: pip install wandb") from err
        root.mkdir(parents=True, exist_ok=True)
        # offline unless the user has configured otherwise (WANDB_MODE wins when set)
        import os

        mode = os.environ.get("WANDB_MODE", "offline")
        self.run = wandb.init(project=project, group=run_name, name=stage, dir=str(root), mode=mode,
                              config=dict(params), tags=[f"{k}={v}" for k, v in tags.items()], reinit=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def finish(self, final: Mapping[str, float] | None = None, *, failed: bool = False) -> None:
        if final:
            self.run.summary.update({f"final/{k}": v for k, v in final.items()})
        self.run.finish(exit_code=1 if failed else 0)


def open_tracker(cfg: TrackingConfig, *, root: Path, run_name: str, stage_kind: str, stage_hash: str,
                 config: Mapping[str, Any]) -> Tracker:
    """A tracker for one stage; `root` is where tracking data goes when `cfg.dir` is unset."""
    cfg.validate()
    if cfg.backend == "none":
        return NullTracker()
    base = Path(cfg.dir) if cfg.dir else root
    stage = f"{stage_kind}-{stage_hash[:12]}"
    params = flatten(config)
    tags = {"stopover.stage_hash": stage_hash, "stopover.stage_kind": stage_kind, "stopover.run": run_name}
    if cfg.backend == "tensorboard":
        return TensorBoardTracker(base, run_name, stage, params)
    if cfg.backend == "mlflow":
        return MLflowTracker(base, run_name, stage, params, tags)
    return WandbTracker(base, run_name, stage, params, tags, cfg.project)
