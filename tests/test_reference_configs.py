"""The packaged study configs (xstilts, diversity-vs-random, real-offline): they validate, and
`stopover plan` expands them offline, without touching the Hub, into the stages we expect; the
per-task training overrides (TaskSource.train) reach exactly the stages they should."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from stopover.cli import main
from stopover.config import RunConfig, TaskSource, TrainConfig, from_dict, load_config
from stopover.errors import ConfigError
from stopover.plan import GPU_INFERENCE_SPEEDUP, PlannedStage, gpu_hours, plan
from stopover.tasks import get_task

CONFIGS = Path(__file__).resolve().parents[1] / "stopover" / "configs"
REPO = CONFIGS.parents[1]
NINE_INTERMEDIATE = ["anli_plus", "mnli", "qqp", "squad_v2", "squad", "hellaswag", "commonsenseqa", "cosmosqa",
                     "ccg"]
XTREME = ["xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc", "tatoeba"]


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    """Planning must never reach for the Hub: fail loudly if it tries."""
    def refuse(*args, **kwargs):
        raise AssertionError("stopover plan tried to load data from the Hub")

    monkeypatch.setattr("stopover.data._hub_rows", refuse)


def config(name: str, tmp_path: Path, *overrides: str) -> RunConfig:
    return load_config(CONFIGS / f"{name}.yaml", [f"output_dir={tmp_path / 'runs'}", *overrides])


def kinds(stages: list[PlannedStage]) -> Counter:
    return Counter(s.kind for s in stages)


def by_label(stages: list[PlannedStage], kind: str) -> dict[str, PlannedStage]:
    return {s.label: s for s in stages if s.kind == kind}


def test_xstilts_is_the_reference_grid(tmp_path):
    cfg = config("xstilts", tmp_path)
    assert cfg.model == "xlm-roberta-large"
    assert list(cfg.pool) == NINE_INTERMEDIATE and list(cfg.targets) == XTREME
    assert list(cfg.strategies) == ["none", "single", "all"] and cfg.multitask.mode == "mixed"
    assert (cfg.target.lr, cfg.target.warmup, cfg.target.batch_size * cfg.target.grad_accum) == (1e-5, 0.1, 32)
    qa = cfg.tasks["xquad"].train_config(cfg.target)
    assert (qa.batch_size * qa.grad_accum, qa.max_length, qa.epochs) == (16, 384, 2)
    epochs = {t: cfg.tasks[t].train_config(cfg.target).epochs for t in XTREME[:7]}
    assert epochs == {"xnli": 2, "pawsx": 5, "udpos": 10, "panx": 10, "xquad": 2, "mlqa": 2, "tydiqa": 2}

    planned = plan(cfg)
    # 9 single + 1 all + none = 11 intermediate sets, x 1 seed x 9 targets
    assert planned.cells == 11 * 9
    # 10 trained intermediate stages; 7 trained targets x 11 sets; 9 evaluations x 11 sets
    assert kinds(planned.stages) == {"intermediate": 10, "target": 77, "eval": 99}
    inter = by_label(planned.stages, "intermediate")
    assert inter["mnli (seed 0)"].examples == 392_702  # one epoch, counted at the published size
    assert inter["+".join(NINE_INTERMEDIATE) + " (seed 0)"].examples == sum(
        get_task(t).published_train_size for t in NINE_INTERMEDIATE)
    # multiple choice: one sequence per choice; SQuAD alone at its own 384 tokens
    assert inter["hellaswag (seed 0)"].positions == 39_905 * 4 * 256
    assert inter["squad (seed 0)"].positions == 87_599 * 384
    target = by_label(planned.stages, "target")
    assert target["xnli <- none (seed 0)"].examples == 392_702 * 2  # trained on MNLI, 2 epochs
    assert target["pawsx <- mnli (seed 0)"].examples == 49_401 * 5
    assert target["udpos <- none (seed 0)"].examples == 21_253 * 10
    assert target["xquad <- none (seed 0)"].positions == 87_599 * 2 * 384
    evals = by_label(planned.stages, "eval")
    assert evals["xnli x 15 languages <- none (seed 0)"].examples == 15 * 5_010
    assert evals["xquad x 11 languages <- none (seed 0)"].positions == 11 * 1_190 * 384  # QA evaluates at 384
    assert evals["tatoeba x 36 languages <- none (seed 0)"].examples is None  # sizes vary: unknown offline
    assert all(s.published for s in planned.stages if s.kind == "target")


def test_diversity_vs_random_plans_offline_with_a_placeholder_set(tmp_path):
    cfg = config("diversity-vs-random", tmp_path)
    assert cfg.selection.k == 3 and cfg.selection.draws >= 10 and len(cfg.seeds) >= 3
    assert {"none", "all", "diversity-topk", "random-k"} == set(cfg.strategies)
    assert list(cfg.targets) == XTREME
    planned = plan(cfg)
    assert planned.placeholder_sets == 1  # the diversity ranking needs the pool's data
    sets = 1 + 1 + 1 + cfg.selection.draws  # none, all, diversity-topk, 20 random 3-subsets
    assert planned.cells == sets * 3 * 9
    counts = kinds(planned.stages)
    # every non-empty set is distinct here (the placeholder is no random draw) and trains once per seed
    assert counts["intermediate"] == (sets - 1) * 3
    assert counts["target"] == sets * 3 * 7
    # BUCC and Tatoeba after `none` read the pretrained encoder: one evaluation serves all 3 seeds
    assert counts["eval"] == sets * 3 * 9 - 2 * 2
    # the same example budget for every non-empty set: 3 x 9,741 (CommonsenseQA's size)
    inter = [s for s in planned.stages if s.kind == "intermediate"]
    assert {s.examples for s in inter} == {29_223 * 2}  # 2 epochs
    assert any(s.label.startswith("diversity-topk (chosen at run time)") for s in inter)


def test_train_overrides_reach_only_their_stages(tmp_path):
    base = {s.label: s.hash for s in plan(config("xstilts", tmp_path)).stages}
    changed = {s.label: s.hash for s in plan(config("xstilts", tmp_path, "tasks.xnli.train.epochs=3")).stages}
    differ = {label for label in base if base[label] != changed[label]}
    assert differ and all(label.startswith("xnli") for label in differ)
    assert len(differ) == 2 * 11  # the xnli target and its evaluation after each of the 11 sets


def test_plan_command_prints_stage_count_and_gpu_hours(tmp_path, capsys):
    assert main(["plan", str(CONFIGS / "xstilts.yaml"), f"output_dir={tmp_path}"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps lines
    assert "99 grid cells, 186 distinct stages" in out
    assert "GPU-hours to run:" in out and "45,000 sequence positions/s" in out
    assert "counted at published dataset sizes" in out and "of unknown size" in out
    assert main(["plan", str(CONFIGS / "xstilts.yaml"), f"output_dir={tmp_path}", "--gpu-throughput", "90000"]) == 0
    faster = " ".join(capsys.readouterr().out.split())
    hours = float(out.split("GPU-hours to run: ")[1].split(",")[0].replace(",", ""))
    assert float(faster.split("GPU-hours to run: ")[1].split(",")[0]) == pytest.approx(hours / 2, abs=0.1)
    assert not (tmp_path / "xstilts").exists()  # plan runs and writes nothing


def test_gpu_hours_arithmetic():
    stages = [PlannedStage("intermediate", "a", "a", False, 10, positions=45_000 * 3600),
              PlannedStage("target", "b", "b", False, None),
              PlannedStage("target", "c", "c", True, 10, positions=10**12),  # done: not counted
              PlannedStage("eval", "d", "d", False, 10, positions=45_000 * 3600)]
    hours = gpu_hours(stages, 45_000)
    assert hours["intermediate"] == (1.0, 0)
    assert hours["target"] == (0.0, 1)
    assert hours["eval"] == (pytest.approx(1 / GPU_INFERENCE_SPEEDUP), 0)


def test_real_offline_validates_and_plans_from_the_shared_samples(tmp_path, shared_data, monkeypatch):
    monkeypatch.chdir(REPO)  # its data_dir paths are relative to the repository root
    if (REPO.parent / "shared" / "data").resolve() != shared_data.resolve():
        pytest.skip("the config's ../shared/data is not the samples directory here")
    cfg = config("real-offline", tmp_path)
    assert cfg.model == "embedded:multilingual-e5-small"
    planned = plan(cfg)
    assert planned.cells == 3 and kinds(planned.stages) == {"target": 2, "eval": 3}
    assert not any(s.published for s in planned.stages)  # everything counted from the local files
    target = by_label(planned.stages, "target")
    assert target["udpos <- none (seed 0)"].examples == 2000 * 2  # EWT dev (2,001), capped at 2,000
    from stopover.conllu import read_sentences
    from stopover.tasks.tagging import UDPOS_ISO1

    sizes = {lang: len(read_sentences(shared_data / "ud" / ("en-pud" if lang == "eng" else code) / "test.conllu.gz"))
             for lang, code in UDPOS_ISO1.items()}
    assert sizes["eng"] == 1000 and sizes["mar"] < 500  # English PUD is the English test set
    evals = by_label(planned.stages, "eval")
    assert evals["udpos x 33 languages <- none (seed 0)"].examples == sum(min(n, 500) for n in sizes.values())
    assert evals["tatoeba x 36 languages <- none (seed 0)"].examples is not None


def test_task_source_options_are_checked():
    good = from_dict(TaskSource, {"files": {"eng/train": "en/dev.conllu.gz", "dev": None},
                                  "train": {"epochs": 3, "max_length": 384}, "train_languages": ["deu"]})
    merged = good.train_config(TrainConfig(epochs=1, lr=1e-5))
    assert (merged.epochs, merged.max_length, merged.lr) == (3.0, 384, 1e-5)
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        from_dict(TaskSource, {"train": {"epoch": 3}}, "tasks.xnli")
    with pytest.raises(ConfigError, match="must be > 0"):
        from_dict(TaskSource, {"train": {"lr": 0}}, "tasks.xnli")
    with pytest.raises(ConfigError, match="<split> or <language>/<split>"):
        from_dict(TaskSource, {"files": {"eng/validation": "x"}}, "tasks.udpos")
    with pytest.raises(ConfigError, match="tasks.mnli.train_languages"):
        from_dict(TaskSource, {"train_languages": []}, "tasks.mnli")
    cfg = from_dict(RunConfig, {"name": "x", "targets": ["xnli"], "tasks": {"xnli": {"holdout": True}}})
    assert cfg.tasks["xnli"].holdout is True


def test_translated_training_data_and_per_task_overrides_run(tmp_path):
    """tasks.mnli.train_languages reads translated training files (documented in
    docs/reference-study.md); tasks.xnli.train.epochs changes the XNLI target stage only."""
    import json
    import shutil

    from stopover.grid import run_grid
    from stopover.pipeline import Pipeline
    from stopover.tasks import get_task
    from tests.fixtures import nli_rows, write_jsonl, write_nli_fixtures

    data = write_nli_fixtures(tmp_path / "data")
    translated = tmp_path / "mnli-translated"
    for lang, seed in (("deu", 7), ("fra", 8)):
        write_jsonl(translated / lang / "train.jsonl", nli_rows(lang, 40, seed))
    shutil.copytree(data / "mnli" / "eng", translated / "eng")  # English train (targets) and dev (checkpoints)
    base = {"name": "tr", "model": "tiny:64x2", "output_dir": str(tmp_path / "runs"), "data_dir": str(data),
            "pool": ["mnli"], "targets": ["xnli"], "strategies": [{"explicit": ["mnli"]}],
            "intermediate": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32},
            "target": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32},
            "evaluation": {"batch_size": 32, "max_length": 32}}
    tasks = {"xnli": {"languages": ["eng", "deu"], "train": {"epochs": 2}},
             "mnli": {"data_dir": str(translated), "train_languages": ["deu", "fra"]}}
    cfg = from_dict(RunConfig, {**base, "tasks": tasks})
    pipe = Pipeline(cfg, tmp_path / "runs" / "tr")
    mnli = get_task("mnli")
    rows = pipe.train_examples(mnli)
    assert len(rows) == 80 and rows[0]["text_a"].split()[0] == "der" and rows[-1]["text_a"].split()[0] == "le"
    assert set(pipe.fingerprint(mnli, ("train", "dev"), ("eng",))["files"]) == {"deu/train", "fra/train", "eng/dev"}

    # the XNLI target still trains on English MNLI (<dir>/eng/train.jsonl): translated data is for
    # intermediate stages only
    assert len(pipe.train_examples(mnli, target=True)) == 96
    assert set(pipe.fingerprint(mnli, ("train",), ("eng",), target=True)["files"]) == {"eng/train"}

    run_dir, pipe = run_grid(cfg)
    records = [json.loads(p.read_text()) for p in (run_dir / "stages").glob("*/stage.json")]
    inter = next(r for r in records if "tasks" in r)
    assert inter["tasks"]["mnli"]["steps"] == 5  # 80 translated examples / batch 16, one epoch
    target = next(r for r in records if "history" in r)
    assert target["steps"] == 2 * 6  # tasks.xnli.train.epochs = 2 over 96 English examples
