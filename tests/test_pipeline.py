"""The three stages end to end on classification with a tiny model, and the cache-hit second run."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from stopover.config import RunConfig, from_dict
from stopover.grid import run_grid
from stopover.store import read_results
from tests.fixtures import write_nli_fixtures

LANGS = {"eng", "deu", "fra", "spa"}


def tiny_config(tmp_path, **over) -> RunConfig:
    data = write_nli_fixtures(tmp_path / "data")
    base = {"name": "t", "model": "tiny:64x2", "output_dir": str(tmp_path / "runs"), "data_dir": str(data),
            "pool": ["mnli"], "targets": ["xnli"],
            "tasks": {"xnli": {"languages": sorted(LANGS)}},
            "intermediate": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32},
            "target": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32},
            "evaluation": {"batch_size": 32, "max_length": 32}}
    base.update(over)
    return from_dict(RunConfig, base)


def sets(*specs):
    return [SimpleNamespace(strategy=s, name="+".join(t) or "none", tasks=t, budget=None, reference=False)
            for s, t in specs]


def test_three_stages_and_reuse(tmp_path):
    cfg = tiny_config(tmp_path)
    grid = sets(("none", ()), ("explicit", ("mnli",)))
    run_dir, pipe = run_grid(cfg, sets=grid)
    # 1 intermediate + 2 targets (one per set) + 2 evaluations
    assert len(pipe.trained) == 5
    rows = read_results(run_dir)
    evals = [r for r in rows if r.stage == "eval" and r.primary]
    assert {(r.intermediate, r.language) for r in evals} == {(i, l) for i in ("none", "mnli") for l in LANGS}
    assert all(r.metric == "accuracy" and 0 <= r.value <= 100 and r.n == 24 for r in evals)
    assert all(r.split == "test" and r.task == "xnli" and r.seed == 0 for r in evals)
    # intermediate stage recorded its English dev score; resolved configs sit beside the outputs
    assert any(r.stage == "intermediate" and r.task == "mnli" and r.split == "dev" for r in rows)
    stage_dirs = list((run_dir / "stages").iterdir())
    assert len(stage_dirs) == 5 and all((d / "config.yaml").exists() and (d / "DONE").exists()
                                            for d in stage_dirs)
    assert (run_dir / "config.yaml").exists()
    # the run's tables for the analysis: distances, covariates and tokenizer fertility per language
    import pandas as pd

    fert = pd.read_csv(run_dir / "fertility.csv").set_index("language")
    assert set(fert.index) == set(LANGS) and (fert.fertility >= 1).all() and (fert.n_words > 0).all()
    assert set(pd.read_csv(run_dir / "typology.csv").language) == set(LANGS) - {"eng"}
    # every language's per-example predictions, written with the stage
    (ev,) = {r.stage_hash for r in evals if r.intermediate == "none"}
    preds = run_dir / "stages" / ev / "predictions" / "xnli"
    assert sorted(p.stem for p in preds.glob("*.jsonl")) == sorted(LANGS)
    assert all(len(p.read_text().splitlines()) == 24 for p in preds.glob("*.jsonl"))
    from stopover.predictions import rescore_run

    rescored, problems = rescore_run(run_dir)  # the recorded figures, from the saved predictions alone
    assert problems == [] and len(rescored) == len([r for r in rows if r.stage == "eval"])

    # second identical invocation: nothing trained, same rows, no duplicates
    before = (run_dir / "results.jsonl").read_text()
    _, pipe2 = run_grid(cfg, sets=grid)
    assert pipe2.trained == []
    assert (run_dir / "results.jsonl").read_text() == before


def test_intermediate_stage_shared_across_targets_and_strategies(tmp_path):
    cfg = tiny_config(tmp_path, targets=["xnli"], seeds=[0])
    grid = sets(("explicit", ("mnli",)), ("single", ("mnli",)))  # two strategies, the same set
    run_dir, pipe = run_grid(cfg, sets=grid)
    assert len(pipe.trained) == 3  # one intermediate, one target, one eval: shared by both strategies
    rows = [r for r in read_results(run_dir) if r.stage == "eval" and r.primary]
    assert {r.strategy for r in rows} == {"explicit", "single"}
    assert len(rows) == 2 * len(LANGS)


def test_config_change_invalidates_only_downstream(tmp_path):
    cfg = tiny_config(tmp_path)
    grid = sets(("explicit", ("mnli",)))
    run_grid(cfg, sets=grid)
    changed = tiny_config(tmp_path, target={"epochs": 2, "batch_size": 16, "lr": 1e-3, "max_length": 32})
    _, pipe = run_grid(changed, sets=grid)
    assert len(pipe.trained) == 2  # new target + eval; the intermediate stage is re-used


def test_mixed_multitask_intermediate(tmp_path):
    # two intermediate tasks mixed in one stage; QQP-format data built from the NLI fixture
    from tests.fixtures import nli_rows, write_jsonl

    cfg = tiny_config(tmp_path, multitask={"mode": "mixed", "sampling": "temperature", "temperature": 2.0})
    qqp = [{"question1": r["premise"], "question2": r["hypothesis"], "label": int(r["label"] == "entailment")}
           for r in nli_rows("eng", 64, 5)]
    write_jsonl(tmp_path / "data" / "qqp" / "eng" / "train.jsonl", qqp)
    write_jsonl(tmp_path / "data" / "qqp" / "eng" / "dev.jsonl", qqp[:16])
    run_dir, pipe = run_grid(cfg, sets=sets(("all", ("mnli", "qqp"))))
    info = json.loads(next(p for p in (run_dir / "stages").glob("*/stage.json")
                           if "mixed" in p.read_text()).read_text())
    assert info["mixed"]["steps"] == 6 + 4  # ceil(96/16) + ceil(64/16) batches, one epoch
    assert {r.language for r in read_results(run_dir) if r.stage == "eval"} == LANGS


def test_pruned_models_are_not_retrained_when_evaluations_are_done(tmp_path):
    cfg = tiny_config(tmp_path, keep_models=False)
    grid = sets(("explicit", ("mnli",)))
    run_dir, pipe = run_grid(cfg, sets=grid)
    assert len(pipe.trained) == 3
    stage_dirs = list((run_dir / "stages").iterdir())
    assert not any((d / "model").exists() or (d / "encoder").exists() for d in stage_dirs)  # pruned
    before = (run_dir / "results.jsonl").read_text()
    _, again = run_grid(cfg, sets=grid)
    assert again.trained == [] and (run_dir / "results.jsonl").read_text() == before


@pytest.mark.parametrize("requested,supported,autocast_on", [
    ("auto", True, True), ("bf16", True, True), ("fp32", True, False), ("auto", False, False)])
def test_predictions_run_in_the_evaluation_precision(tmp_path, monkeypatch, requested, supported, autocast_on):
    import torch

    from stopover import precision
    from stopover.pipeline import Pipeline

    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": supported)
    seen = []

    class SpyFormat:  # records the autocast state and batch size predict() runs under
        def predict(self, model, features, examples, task, tokenizer, batch_size):
            seen.append((torch.is_autocast_enabled("cpu"), batch_size))
            return ["p"]

    cfg = tiny_config(tmp_path, evaluation={"batch_size": 7, "max_length": 32, "precision": requested})
    pipe = Pipeline(cfg, tmp_path / "runs")
    assert pipe.predict(SpyFormat(), torch.nn.Linear(2, 2), [], [], None, None) == ["p"]
    assert seen == [(autocast_on, 7)]
    assert pipe.eval_precision(torch.nn.Linear(2, 2))[0] == ("bf16" if autocast_on else "fp32")


def test_the_oracle_is_reachable_from_a_config(tmp_path):
    cfg = tiny_config(tmp_path, strategies=["none", {"explicit": ["mnli"]}, "oracle"])
    run_dir, pipe = run_grid(cfg)
    rows = read_results(run_dir)
    dev = {r.intermediate: r for r in rows if r.stage == "target" and r.split == "dev"}
    assert set(dev) == {"none", "mnli"} and all(r.n == 24 for r in dev.values())  # the English dev size
    best = min(dev.values(), key=lambda r: (-r.value, r.intermediate)).intermediate  # ties: first name
    oracle = [r for r in rows if r.strategy == "oracle" and r.primary]
    assert {(r.intermediate, r.language) for r in oracle} == {(best, lang) for lang in LANGS}
    assert len(pipe.trained) == 5  # the oracle re-uses the stages of the set it chose

    from stopover.plan import planned_status  # what `stopover status` shows: the saved config, expanded

    status = planned_status(run_dir)
    assert len(status) == 5 and {r["state"] for r in status} == {"done"}
    evals = {r["intermediate"]: r for r in status if r["kind"] == "eval"}
    assert "oracle" in evals[best]["strategy"] and evals[best]["target"] == "xnli" and evals[best]["seed"] == 0


# The first target-training losses of the tiny grid below (fixed seed, generated data), pinned so that
# a refactor of the stages, the training glue or the data path cannot change training unnoticed.
# Re-pinned once, when the tiny model's tokenizer became a deterministic BPE (stopover.models
# TINY_MODEL_VERSION 2); the redesign itself reproduced the earlier values to 1e-4.
PINNED_LOSSES = [1.1230814, 1.1102936, 1.1208918, 1.0511386]


def test_end_to_end_loss_curve_is_pinned(tmp_path, monkeypatch):
    import stopover.train as train_module

    losses: list[float] = []
    real_train = train_module.train

    def recording_train(model, *args, **kwargs):
        def hook(module, inputs, output):
            if module.training and getattr(output, "loss", None) is not None:
                losses.append(float(output.loss))
        handle = model.register_forward_hook(hook)
        try:
            return real_train(model, *args, **kwargs)
        finally:
            handle.remove()

    monkeypatch.setattr(train_module, "train", recording_train)
    run_grid(tiny_config(tmp_path, seeds=[3]), sets=sets(("none", ())))
    assert len(losses) == 6  # ceil(96 / 16) batches, one epoch
    assert losses[:4] == pytest.approx(PINNED_LOSSES, abs=1e-4)
