"""LoRA stages: only adapters and heads train; merge and carry hand the encoder on exactly."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification, XLMRobertaForTokenClassification  # noqa: E402

from stopover.adapters import (  # noqa: E402
    LoraSpec,
    apply_lora,
    encoder_adapter_state,
    encoder_for_next_stage,
    load_encoder_adapter,
    save_encoder_adapter,
    trainable_parameters,
)
from stopover.errors import ConfigError  # noqa: E402

CONFIG = XLMRobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=40, pad_token_id=1)


def _model(cls=XLMRobertaForSequenceClassification, labels=3):
    torch.manual_seed(0)
    config = XLMRobertaConfig(**{**CONFIG.to_dict(), "id2label": {i: str(i) for i in range(labels)}})
    return cls(config)


def _step(model, steps: int = 3) -> None:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.randint(3, 100, (4, 7), generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 1])
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()


def test_only_lora_and_head_train() -> None:
    plain = _model()
    total_plain = trainable_parameters(plain)[1]
    lora = apply_lora(plain, LoraSpec(r=4))
    trainable, _ = trainable_parameters(lora)
    names = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert all("lora_" in n or "classifier" in n for n in names)
    # 2 layers x (query, value) x (A: 4x32 + B: 32x4) = 1,024 LoRA weights, plus the head
    head = sum(p.numel() for n, p in _model().named_parameters() if n.startswith("classifier"))
    assert trainable == 1024 + head
    assert trainable < total_plain / 10


def test_merge_gives_the_same_outputs() -> None:
    lora = apply_lora(_model(), LoraSpec(r=4, dropout=0.0))
    _step(lora)
    lora.eval()
    ids = torch.randint(3, 100, (2, 5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = lora(input_ids=ids).logits
        after = encoder_for_next_stage(lora, LoraSpec(r=4, dropout=0.0))(input_ids=ids).logits
    assert torch.allclose(before, after, atol=1e-5)


def test_carried_adapter_reloads_into_a_new_head(tmp_path) -> None:
    spec = LoraSpec(r=4, dropout=0.0, carry="adapter")
    first = apply_lora(_model(), spec)
    _step(first)
    save_encoder_adapter(first, tmp_path)
    saved = encoder_adapter_state(first)
    assert saved and all("lora_" in k for k in saved)
    assert encoder_for_next_stage(first, spec) is None  # the encoder itself did not change
    frozen = {n: p for n, p in first.named_parameters() if "roberta" in n and "lora_" not in n}
    assert frozen and not any(p.requires_grad for p in frozen.values())
    second = apply_lora(_model(XLMRobertaForTokenClassification, labels=5), spec)
    load_encoder_adapter(second, tmp_path)
    again = encoder_adapter_state(second)
    assert set(again) == set(saved)
    assert all(torch.equal(again[k], saved[k]) for k in saved)


def test_bad_specs_are_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="peft.r"):
        LoraSpec(r=0).validate()
    with pytest.raises(ConfigError, match="peft.carry"):
        LoraSpec(carry="copy").validate()
    with pytest.raises(ConfigError, match="target_modules: qkv not found"):
        apply_lora(_model(), LoraSpec(target_modules=("qkv",)))
    with pytest.raises(ConfigError, match="no encoder adapter"):
        load_encoder_adapter(apply_lora(_model(), LoraSpec()), tmp_path)
