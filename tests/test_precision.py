"""Tests for stopover.precision: bf16 detection, precision resolution, frozen embeddings."""

from __future__ import annotations

import platform

import pytest

from stopover import precision
from stopover.errors import ConfigError
from stopover.precision import bf16_supported, cpu_flags, freeze_word_embeddings, resolve_precision


def _tiny_xlmr(vocab: int = 50, hidden: int = 16):
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification

    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=2 * hidden, max_position_embeddings=34, pad_token_id=1,
                              num_labels=3)
    return XLMRobertaForTokenClassification(config)


@pytest.fixture
def no_bf16(monkeypatch):
    bf16_supported.cache_clear()
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": False)
    yield
    bf16_supported.cache_clear()


@pytest.fixture
def with_bf16(monkeypatch):
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": True)


def test_fp32_is_always_honoured(no_bf16):
    assert resolve_precision("fp32") == ("fp32", None)


def test_bf16_falls_back_to_fp32_with_a_note(no_bf16):
    for requested in ("bf16", "auto"):
        used, note = resolve_precision(requested)
        assert used == "fp32"
        assert note is not None and "\n" not in note and requested in note and "fp32" in note


def test_bf16_is_used_where_supported(with_bf16):
    assert resolve_precision("auto") == ("bf16", None)
    assert resolve_precision("bf16") == ("bf16", None)
    assert resolve_precision("fp32") == ("fp32", None)


def test_unknown_precision_is_a_config_error():
    with pytest.raises(ConfigError, match=r"'fp16'.*auto, bf16, fp32"):
        resolve_precision("fp16")


def test_bf16_detection_follows_the_documented_rule():
    import torch

    bf16_supported.cache_clear()
    supported = bf16_supported()
    flags = cpu_flags()
    if platform.machine().lower() in ("x86_64", "amd64"):
        hardware = bool(flags & {"avx512_bf16", "amx_bf16"}) and "AVX512" in torch.backends.cpu.get_cpu_capability()
        assert supported == hardware
    if supported:  # and then autocast really computes in bf16
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = torch.ones(4, 8) @ torch.ones(8, 2)
        assert out.dtype == torch.bfloat16 and float(out[0, 0]) == 8.0
    assert bf16_supported("no-such-device") is False


def test_freezing_word_embeddings_stops_their_gradient_only():
    import torch

    model = _tiny_xlmr(vocab=50, hidden=16)
    total_before = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = freeze_word_embeddings(model)
    assert frozen == 50 * 16
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == total_before - frozen
    ids = torch.tensor([[0, 5, 6, 7, 2]])
    out = model(input_ids=ids, labels=torch.tensor([[0, 1, 2, 1, 0]]))
    out.loss.backward()
    assert model.roberta.embeddings.word_embeddings.weight.grad is None
    assert model.roberta.embeddings.position_embeddings.weight.grad is not None
    assert model.classifier.weight.grad is not None
    assert freeze_word_embeddings(model) == frozen  # idempotent


def test_autocast_runs_bf16_only_when_resolved_to_bf16():
    import torch

    a, b = torch.ones(4, 8), torch.ones(8, 2)
    with precision.autocast("bf16"):
        assert torch.is_autocast_enabled("cpu")
        assert (a @ b).dtype == torch.bfloat16
    with precision.autocast("fp32"):
        assert not torch.is_autocast_enabled("cpu")
        assert (a @ b).dtype == torch.float32
