"""What one process keeps while it runs a grid's stages: `RunContext`.

The config, the run directory, the `Reader` (each task's resolved `TaskData`
and the examples loaded so far), the base model's path, the tokenizer and
feature caches, the model a target stage just trained (its evaluation takes it
from memory), and which stages this process actually ran. It also builds the
`StageSpec`s of a grid cell (stopover.spec) and runs a stage body under the
store's bookkeeping. The stages themselves are in stopover.pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from stopover.config import RunConfig
from stopover.formats.cache import FeatureCache
from stopover.sources import Reader, TaskData
from stopover.spec import (
    StageSpec,
    code_digest,
    eval_spec,
    format_trains,
    intermediate_spec,
    pretrained_spec,
    target_spec,
)
from stopover.store import STAGES_DIR, ResultRow, Stage, record_rows, run_stage, stage_at
from stopover.tasks import Task, get_task
from stopover.tracking import Tracker


def example_texts(example: dict[str, Any]) -> list[str]:
    """Every piece of text in a canonical example (for training a tiny tokenizer)."""
    texts = []
    for value in example.values():
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list) and value and isinstance(value[0], str):
            texts.append(" ".join(value))
    return texts


class RunContext:
    def __init__(self, cfg: RunConfig, run_dir: Path, *, progress: Any = None,
                 log: Callable[[str], None] = lambda msg: None, resolve_hub: bool = False) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.progress = progress
        self.log = log
        self.reader = Reader(cfg, resolve_hub=resolve_hub)
        self.trained: list[str] = []  # hashes of stages this process actually ran
        self.fresh: tuple[str, Any, Any] | None = None  # (target stage hash, model, tokenizer) just trained
        # the pool's composite diversity per task, once profiled (written for set-level analysis)
        self.pool_diversity: dict[str, float] | None = None
        self._model_path: str | None = None
        self._feature_cache = FeatureCache(code_digest())
        self._tokenizers: Any = None
        self._specs: dict[tuple, StageSpec] = {}

    # ------------------------------------------------------------------ data (see stopover.sources)
    def data(self, task: Task | str) -> TaskData:
        return self.reader.data(task)

    def examples(self, task: Task | str, split: str, language: str = "eng", limit: int | None = None,
                 sample_seed: int | None = None) -> list[dict]:
        return self.reader.examples(task, split, language, limit, sample_seed)

    def train_examples(self, task: Task | str, limit: int | None = None, sample_seed: int | None = None,
                       holdout: bool = False, target: bool = False) -> list[dict]:
        return self.reader.train_examples(task, limit, sample_seed, holdout, target)

    def test_examples(self, task: Task | str, language: str, limit: int | None = None) -> list[dict]:
        return self.reader.test_examples(task, language, limit)

    def train_languages(self, task: Task | str, *, target: bool = False) -> tuple[str, ...]:
        """Languages whose training files a stage reads (a target stage: English)."""
        return ("eng",) if target else self.data(task).intermediate_languages()

    def fingerprint(self, task: Task | str, splits: tuple[str, ...], languages: tuple[str, ...], *,
                    target: bool = False) -> dict:
        return self.data(task).fingerprint(splits, languages, target=target)

    # ------------------------------------------------------------------ model and features
    def model_path(self) -> str:
        if self._model_path is None:
            from stopover.models import resolve_model_path, tiny_model_for_corpus

            source = self.cfg.model
            if source.startswith("tiny:"):  # a model *source* scheme (stopover.models), not a task
                self._model_path = str(tiny_model_for_corpus(source, self._tiny_corpus()))
            else:
                self._model_path = resolve_model_path(source)
        return self._model_path

    def _tiny_corpus(self) -> list[str]:
        texts: list[str] = []
        for name in [*self.cfg.pool, *self.cfg.targets]:
            task = get_task(name)
            if format_trains(task.format):
                for ex in self.train_examples(self.data(task).train_task, limit=2000):
                    texts.extend(example_texts(ex))
            if task.name in self.cfg.targets:
                for lang in self.data(task).languages:
                    for ex in self.examples(task, "test", lang, limit=500):
                        texts.extend(example_texts(ex))
        return texts

    def load_tokenizer(self, path: str) -> Any:
        """The tokenizer of a model directory, loaded once per run (see models.TokenizerCache)."""
        if self._tokenizers is None:
            from stopover.models import TokenizerCache

            self._tokenizers = TokenizerCache(self.run_dir / STAGES_DIR, self.model_path)
        return self._tokenizers.get(path)

    def features(self, fmt: Any, task: Task, examples: list[dict], tokenizer: Any, max_length: int,
                 *, train: bool, data_key: Any) -> list[dict]:
        """Tokenised features, cached on disk by data, tokenizer, format, length and code."""
        return self._feature_cache.features(fmt, task, examples, tokenizer, max_length, train=train,
                                            data_key=data_key)

    def eval_precision(self, model: Any) -> tuple[str, str | None]:
        """(precision, note) for scoring with `model`: `evaluation.precision` resolved on its device."""
        from stopover.device import model_device
        from stopover.precision import resolve_precision

        return resolve_precision(self.cfg.evaluation.precision, model_device(model).type)

    def predict(self, fmt: Any, model: Any, features: list[dict], examples: list[dict], task: Any,
                tokenizer: Any) -> list[Any]:
        """`fmt.predict` in the evaluation precision (test sets and dev sets during training alike)."""
        from stopover.train import predict

        return predict(fmt, model, features, examples, task, tokenizer, self.eval_precision(model)[0],
                       self.cfg.evaluation.batch_size)

    # ------------------------------------------------------------------ stage specs
    def pretrained(self) -> StageSpec:
        model = self.cfg.model
        if model.startswith("tiny:"):  # the tokenizer is trained on the run's data: its digest is the model
            model = f"{model}@{Path(self.model_path()).name}"
        return self._memo(("pretrained",), lambda: pretrained_spec(model))

    def intermediate_spec(self, tasks: tuple[str, ...], seed: int, budget: int | None = None) -> StageSpec:
        return self._memo(("intermediate", tuple(tasks), seed, budget), lambda: intermediate_spec(
            self.cfg, self.reader, self.pretrained(), tuple(tasks), seed, budget))

    def target_spec(self, task: str, parent: StageSpec, seed: int) -> StageSpec:
        return self._memo(("target", task, parent.hash, seed),
                          lambda: target_spec(self.cfg, self.reader, parent, task, seed))

    def eval_spec(self, task: str, parent: StageSpec) -> StageSpec:
        return self._memo(("eval", task, parent.hash), lambda: eval_spec(self.cfg, self.reader, parent, task))

    def _memo(self, key: tuple, build: Callable[[], StageSpec]) -> StageSpec:
        if key not in self._specs:
            self._specs[key] = build()
        return self._specs[key]

    def stage(self, spec: StageSpec) -> Stage:
        """Where `spec`'s stage lives in this run directory."""
        return stage_at(self.run_dir, spec.kind, spec.hash,
                        self.stage(spec.parent) if spec.parent is not None else None)

    # ------------------------------------------------------------------ running and recording
    def _stage(self, kind: str, identity: dict, parent: Stage | None) -> Stage:
        """A stage named by the hash of a hand-built identity (the lock and marker tests use it)."""
        from stopover.config import stable_hash

        return stage_at(self.run_dir, kind, stable_hash({"kind": kind, "parent": parent.hash if parent else None,
                                                         **identity}), parent)

    def run_stage(self, stage: Stage, spec: StageSpec, body: Callable[[], dict | None]) -> Stage:
        """Run `body` for the stage of `spec` once, under the store's lock and markers."""
        return self._run(stage, spec.identity(), body)

    def record_sources(self, stage: Stage, tasks: tuple[str, ...]) -> None:
        """`sources.json`: where each (language, split) a stage may read comes from (file, hub@commit)."""
        import json

        from stopover.store import atomic_write_text

        atomic_write_text(stage.dir / "sources.json", json.dumps(
            {t: self.data(t).sources for t in dict.fromkeys(tasks)}, indent=2, sort_keys=True))

    def _run(self, stage: Stage, identity: dict, body: Callable[[], dict | None]) -> Stage:
        """Run `body` for `stage` once (store.run_stage), counting it in `trained` if it ran here."""
        if "kind" not in identity:  # a hand-built identity: written whole, so config.yaml hashes to the name
            identity = {"kind": stage.kind, "parent": stage.parent.hash if stage.parent else None, **identity}
        if run_stage(stage, identity, body):
            self.trained.append(stage.hash)
        return stage

    def tracker(self, spec: StageSpec) -> Tracker:
        """The experiment tracker of one stage that runs (`tracking:`; a NullTracker for `none`).

        Tracked under the grid's run name, in `tracking.dir` or `<run dir>/tracking`, with the
        stage's resolved config (its identity, plus the model source) as parameters.
        """
        from stopover.tracking import open_tracker

        return open_tracker(self.cfg.tracking, root=self.run_dir / "tracking", run_name=self.cfg.name,
                            stage_kind=spec.kind, stage_hash=spec.hash,
                            config={**spec.identity(), "run_model": self.cfg.model})

    def record(self, stage: Stage, task: str, language: str, split: str, metrics: dict[str, float], *,
               seed: int, strategy: str, intermediate: str, target: str = "", primary_only: bool = False) -> None:
        """Result rows of one (task, language, split): every metric but `n`, which is the row's size."""
        from stopover.metrics import PRIMARY_METRIC

        primary = PRIMARY_METRIC[get_task(task).metric]
        n = int(metrics.get("n", 0))
        rows = [ResultRow(run=self.cfg.name, stage=stage.kind, stage_hash=stage.hash, task=task,
                          language=language, split=split, metric=m, value=float(v), seed=seed, strategy=strategy,
                          intermediate=intermediate, primary=m == primary, target=target or task,
                          model=self.cfg.model, n=n)
                for m, v in metrics.items() if m != "n" and (not primary_only or m == primary)]
        record_rows(self.run_dir, rows)
