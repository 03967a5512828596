"""LoRA (`peft:`) wired into the stages: what trains, what is saved and carried, what evaluates."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from safetensors.torch import load_file  # noqa: E402

from stopover.config import from_dict  # noqa: E402
from stopover.errors import ConfigError  # noqa: E402
from stopover.grid import run_grid  # noqa: E402
from stopover.store import read_results  # noqa: E402
from tests.test_pipeline import LANGS, sets, tiny_config  # noqa: E402

TRAIN = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32}


def _stage_json(run_dir, kind: str) -> list[dict]:
    out = []
    for d in (run_dir / "stages").iterdir():
        if (d / "stage.json").exists() and f"kind: {kind}" in (d / "config.yaml").read_text():
            out.append({"dir": d, **json.loads((d / "stage.json").read_text())})
    return out


def _eval_values(run_dir) -> dict[tuple[str, str], float]:
    return {(r.language, r.metric): r.value for r in read_results(run_dir) if r.stage == "eval"}


def _probabilities(run_dir, lang: str) -> list[list[float]]:
    """The evaluated model's class probabilities per test example (its saved predictions)."""
    (path,) = (run_dir / "stages").glob(f"*/predictions/xnli/{lang}.jsonl")
    return [json.loads(line)["probabilities"] for line in path.read_text().splitlines()]


def _weights(model_dir) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def test_target_lora_trains_few_parameters_and_evaluates(tmp_path):
    full_dir, _ = run_grid(tiny_config(tmp_path / "full"), sets=sets(("none", ())))
    cfg = tiny_config(tmp_path / "lora", target={**TRAIN, "peft": {"r": 4}})
    run_dir, pipe = run_grid(cfg, sets=sets(("none", ())))
    assert len(pipe.trained) == 2  # target + eval
    (lora,) = _stage_json(run_dir, "target")
    (full,) = _stage_json(full_dir, "target")
    assert lora["trainable_params"] < lora["total_params"]
    assert 0 < lora["trainable_share"] < 0.1 < full["trainable_share"]
    assert full["trainable_params"] == full["total_params"]  # a full fine-tune trains everything
    assert "peak_memory_mb" not in lora  # a measurement, not a result: beside stage.json
    resources = json.loads((lora["dir"] / "resources.json").read_text())
    assert resources["peak_memory_mb"] > 0 and resources["memory"] in ("process max RSS", "cuda max allocated")
    assert lora["steps"] == full["steps"] == 6
    # evaluated in every language, with scores of its own
    assert {lang for lang, _ in _eval_values(run_dir)} == LANGS
    # (accuracy alone cannot tell them apart: on 24 examples both tiny models pick one class)
    import numpy as np

    for lang in LANGS:
        gap = np.abs(np.array(_probabilities(run_dir, lang)) - np.array(_probabilities(full_dir, lang))).max()
        assert gap > 1e-3, (lang, gap)
    # the saved model is plain (merged): no LoRA tensors; the weights LoRA did not adapt are the
    # pretrained ones, while the full fine-tune moved them
    lora_w, full_w = _weights(lora["dir"] / "model"), _weights(full["dir"] / "model")
    assert not any("lora_" in k or "base_layer" in k for k in lora_w)
    assert set(lora_w) == set(full_w)
    from stopover.models import load_encoder

    base = load_encoder(pipe.model_path()).state_dict()
    frozen, adapted = "encoder.layer.0.output.dense.weight", "encoder.layer.0.attention.self.query.weight"
    assert torch.equal(lora_w[f"roberta.{frozen}"], base[frozen])
    assert not torch.equal(full_w[f"roberta.{frozen}"], base[frozen])
    assert not torch.equal(lora_w[f"roberta.{adapted}"], base[adapted])  # LoRA's update, merged in


def test_intermediate_adapter_is_carried_into_the_target(tmp_path):
    cfg = tiny_config(tmp_path, intermediate={**TRAIN, "peft": {"r": 4, "carry": "adapter"}},
                      target={**TRAIN, "peft": {"r": 4}})
    run_dir, pipe = run_grid(cfg, sets=sets(("explicit", ("mnli",))))
    assert len(pipe.trained) == 3
    (inter,) = _stage_json(run_dir, "intermediate")
    encoder = inter["dir"] / "encoder"
    # base encoder (LoRA froze it: the pretrained weights, unchanged) + the adapter and its spec
    spec = json.loads((encoder / "adapter" / "adapter.json").read_text())
    assert spec["r"] == 4 and spec["carry"] == "adapter"
    adapter = load_file(str(encoder / "adapter" / "adapter.safetensors"))
    assert adapter and all("lora_" in k for k in adapter)
    assert any(float(v.abs().sum()) > 0 for k, v in adapter.items() if "lora_B" in k)  # it trained
    from stopover.models import load_encoder

    saved, base = load_encoder(str(encoder)).state_dict(), load_encoder(pipe.model_path()).state_dict()
    assert set(saved) == set(base) and all(torch.equal(saved[k], base[k]) for k in base)
    assert inter["tasks"]["mnli"]["trainable_share"] < 0.1
    (target,) = _stage_json(run_dir, "target")
    assert target["carried_adapter"] == "continued"
    assert {lang for lang, _ in _eval_values(run_dir)} == LANGS

    # a target without peft folds the carried adapter into its encoder first (never drops it)
    full = tiny_config(tmp_path, intermediate={**TRAIN, "peft": {"r": 4, "carry": "adapter"}})
    run_dir, pipe = run_grid(full, sets=sets(("explicit", ("mnli",))))
    assert len(pipe.trained) == 2  # the intermediate stage is re-used
    folded = [t for t in _stage_json(run_dir, "target") if t.get("carried_adapter") == "folded"]
    assert len(folded) == 1 and folded[0]["trainable_params"] == folded[0]["total_params"]


def test_fold_equals_peft_merge_on_a_bare_encoder(tmp_path):
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification, XLMRobertaModel

    from stopover.adapters import LoraSpec, apply_lora, carried_adapter, fold_adapter, merged, save_encoder_adapter

    config = XLMRobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=40, pad_token_id=1)
    torch.manual_seed(0)
    task_model = XLMRobertaForSequenceClassification(config)
    bare = XLMRobertaModel(config, add_pooling_layer=False)
    bare.load_state_dict({k.removeprefix("roberta."): v for k, v in task_model.state_dict().items()
                          if k.startswith("roberta.")})
    spec = LoraSpec(r=4, alpha=8.0, carry="adapter")
    lora = apply_lora(task_model, spec)
    with torch.no_grad():  # a non-zero update (B starts at zero)
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_()
    save_encoder_adapter(lora, tmp_path / "adapter", spec)
    folder, read = carried_adapter(tmp_path)
    assert read == spec
    fold_adapter(bare, folder, read)
    ids = torch.randint(3, 100, (2, 6), generator=torch.Generator().manual_seed(1))
    expected = merged(lora).eval().roberta(input_ids=ids).last_hidden_state
    assert torch.allclose(bare.eval()(input_ids=ids).last_hidden_state, expected, atol=1e-5)


def test_peft_is_refused_in_a_mixed_multitask_stage(tmp_path):
    with pytest.raises(ConfigError, match="intermediate.peft is not supported with multitask.mode: mixed; "
                                          "use mode: sequential"):
        tiny_config(tmp_path, multitask={"mode": "mixed"}, intermediate={**TRAIN, "peft": {"r": 4}})
    with pytest.raises(ConfigError, match="peft.carry = 'copy'"):
        tiny_config(tmp_path, target={**TRAIN, "peft": {"r": 4, "carry": "copy"}})


def test_peft_settings_are_part_of_the_stage_identity(tmp_path):
    from stopover.config import RunConfig
    from stopover.context import RunContext
    from tests.fixtures import write_nli_fixtures

    data = write_nli_fixtures(tmp_path / "data", train=8, test=4)

    def hashes(**over):
        base = {"name": "s", "model": "xlm-roberta-large", "output_dir": str(tmp_path / "runs"),
                "data_dir": str(data), "pool": ["mnli"], "targets": ["xnli"], **over}
        run = RunContext(from_dict(RunConfig, base), tmp_path / "runs" / "s")
        inter = run.intermediate_spec(("mnli",), 0, None)
        target = run.target_spec("xnli", inter, 0)
        return inter.hash, target.hash, run.eval_spec("xnli", target).hash

    plain = hashes()
    r4 = hashes(target={"peft": {"r": 4}})
    r8 = hashes(target={"peft": {"r": 8}})
    assert r4[0] == r8[0] == plain[0]  # the intermediate stage is untouched by target.peft
    assert len({plain[1], r4[1], r8[1]}) == 3 and len({plain[2], r4[2], r8[2]}) == 3
    assert hashes(intermediate={"peft": {"r": 4}})[0] != plain[0]
    carry = hashes(intermediate={"peft": {"r": 4, "carry": "adapter"}})
    assert carry[0] != hashes(intermediate={"peft": {"r": 4}})[0]
    # per-task overrides in a mixed stage are refused when its spec is built
    with pytest.raises(ConfigError, match="tasks.mnli.train.peft is not supported in a mixed"):
        base = {"name": "s", "model": "xlm-roberta-large", "output_dir": str(tmp_path / "runs"),
                "data_dir": str(data), "pool": ["mnli", "qqp"], "targets": ["xnli"],
                "multitask": {"mode": "mixed"}, "tasks": {"mnli": {"train": {"peft": {"r": 4}}}}}
        RunContext(from_dict(RunConfig, base), tmp_path / "runs" / "s").intermediate_spec(("mnli", "qqp"), 0, None)


def test_retrieval_evaluates_a_carried_adapter_as_its_merge(tmp_path):
    # retrieval trains nothing: its evaluation embeds with the intermediate encoder itself, which
    # with carry: adapter is base + adapter, folded on load; it must equal the carry: merge encoder
    from stopover.fitting import load_for_eval
    from stopover.formats import get_format
    from stopover.models import load_encoder
    from stopover.tasks import get_task
    from tests.test_tasks_retrieval import PAIRS, write_bucc

    write_bucc(tmp_path / "bucc", "de", "sample", PAIRS[:2])
    write_bucc(tmp_path / "bucc", "de", "test", PAIRS[2:])

    def run(carry: str):
        cfg = tiny_config(tmp_path, targets=["bucc"], intermediate={**TRAIN, "peft": {"r": 4, "carry": carry}},
                          tasks={"bucc": {"data_dir": str(tmp_path / "bucc"), "languages": ["deu"]}})
        run_dir, pipe = run_grid(cfg, sets=sets(("explicit", ("mnli",))))
        (inter,) = [s for s in _stage_json(run_dir, "intermediate")
                    if f"carry: {carry}" in (s["dir"] / "config.yaml").read_text()]
        scores = {(r.metric, r.value) for r in read_results(run_dir) if r.stage == "eval"
                  and r.intermediate == "mnli" and r.stage_hash in pipe.trained}
        return pipe, pipe.stage(pipe.intermediate_spec(("mnli",), 0, None)), inter["dir"], scores

    pipe, stage, adapter_dir, adapter_scores = run("adapter")
    assert (adapter_dir / "encoder" / "adapter" / "adapter.safetensors").is_file()
    task = get_task("bucc")
    folded, _ = load_for_eval(pipe, task, get_format(task.format), stage)
    _, _, merge_dir, merge_scores = run("merge")
    assert not (merge_dir / "encoder" / "adapter").exists()
    plain = load_encoder(str(merge_dir / "encoder"))
    base = load_encoder(pipe.model_path())
    ids = torch.randint(5, 200, (2, 9), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = [m.eval()(input_ids=ids).last_hidden_state for m in (folded, plain, base)]
    assert torch.allclose(out[0], out[1], atol=1e-5)
    assert not torch.allclose(out[0], out[2], atol=1e-4)  # the adapter was applied, not dropped
    assert adapter_scores and adapter_scores == merge_scores


class _Crash(Exception):
    pass


def test_a_lora_stage_resumes_from_its_checkpoint_as_if_uninterrupted(tmp_path, monkeypatch):
    import stopover.train as train_module

    over = {"target": {**TRAIN, "eval_per_epoch": 3, "peft": {"r": 4}}, "checkpoint_every": 2}
    grid = sets(("none", ()))
    reference, _ = run_grid(tiny_config(tmp_path / "ref", **over), sets=grid)

    real_write, writes = train_module.write_checkpoint, []

    def crash_after_second(path, payload):
        real_write(path, payload)
        writes.append(path)
        if len(writes) == 2:  # step 4 of 6 is on disk: the process "dies"
            raise _Crash

    monkeypatch.setattr(train_module, "write_checkpoint", crash_after_second)
    cfg = tiny_config(tmp_path / "run", **over)
    with pytest.raises(_Crash):
        run_grid(cfg, sets=grid)
    (checkpoint,) = (tmp_path / "run" / "runs").glob("t/stages/*/checkpoint/checkpoint.pt")
    assert train_module.read_checkpoint(checkpoint)["state"]["step"] == 4  # LoRA + head state, resumable
    monkeypatch.setattr(train_module, "write_checkpoint", real_write)
    run_dir, pipe = run_grid(cfg, sets=grid)
    assert not checkpoint.exists()  # resumed from it, then superseded by the stage's outputs
    assert len(pipe.trained) == 2
    (ours,), (ref,) = _stage_json(run_dir, "target"), _stage_json(reference, "target")
    assert ours["dir"].name == ref["dir"].name
    assert {k: v for k, v in ours.items() if k != "dir"} == {k: v for k, v in ref.items() if k != "dir"}
    a, b = _weights(ours["dir"] / "model"), _weights(ref["dir"] / "model")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in b)
