"""stopover.train resumes bit-exactly: a crash at any step, resumed from its checkpoint, ends
with the same weights, dev history and best dev score as an uninterrupted run (dropout on)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from stopover.config import TrainConfig
from stopover.train import train


class TinyNet(torch.nn.Module):
    """Embedding -> dropout -> linear: small, but it uses the RNG on every step (dropout)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(30, 16)
        self.drop = torch.nn.Dropout(0.3)
        self.out = torch.nn.Linear(16, 3)

    def forward(self, input_ids, attention_mask, labels):
        h = (self.emb(input_ids) * attention_mask[..., None]).sum(1) / attention_mask.sum(1, keepdim=True)
        logits = self.out(self.drop(h))
        return SimpleNamespace(loss=torch.nn.functional.cross_entropy(logits, labels), logits=logits)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.emb


def features(n: int = 40) -> list[dict]:
    g = torch.Generator().manual_seed(7)
    out = []
    for i in range(n):
        length = 2 + i % 5
        ids = torch.randint(1, 30, (length,), generator=g).tolist()
        out.append({"input_ids": ids, "label": ids[0] % 3})
    return out


def collate(batch: list[dict]) -> dict:
    width = max(len(f["input_ids"]) for f in batch)
    ids = torch.tensor([f["input_ids"] + [0] * (width - len(f["input_ids"])) for f in batch])
    mask = torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in batch])
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([f["label"] for f in batch])}


DEV = collate(features(12))


def dev_score(model: torch.nn.Module) -> float:
    model.eval()
    with torch.no_grad():
        logits = model(**DEV).logits
    return float((logits.argmax(-1) == DEV["labels"]).float().mean() * 100 - logits.abs().mean())


class Crash(Exception):
    pass


def run(cfg: TrainConfig, seed: int, ckpt_dir, *, crash_at: tuple[str, int] | None = None):
    """Train a fresh TinyNet; `crash_at=("collate"|"dev", n)` raises at the n-th such call."""
    torch.manual_seed(123)
    model = TinyNet()
    calls = {"collate": 0, "dev": 0}

    def counted_collate(batch):
        calls["collate"] += 1
        if crash_at == ("collate", calls["collate"]):
            raise Crash
        return collate(batch)

    def counted_dev(m):
        calls["dev"] += 1
        if crash_at == ("dev", calls["dev"]):
            raise Crash
        return dev_score(m)

    result = train(model, features(), counted_collate, cfg, seed=seed, dev_score=counted_dev,
                   checkpoint_dir=ckpt_dir, checkpoint_every=1 if ckpt_dir else 0)
    return model, result


CFG = TrainConfig(epochs=2, batch_size=8, lr=5e-2, warmup=0.2, eval_per_epoch=2, precision="fp32")
# 40 features / 8 = 5 batches per epoch, 10 in all; dev after batches 2, 4, 6, 8 and 10 (5 evals).
# ("dev", 5) is the last evaluation, at the last step; with grad_accum 2 a crash can fall
# between the two batches of one optimizer step (collate 7).
CASES = [(("collate", 1), 1), (("collate", 4), 1), (("collate", 10), 1), (("dev", 1), 1), (("dev", 3), 1),
         (("dev", 5), 1), (("collate", 7), 2), (("dev", 5), 2)]
_REFERENCE: dict[int, tuple] = {}


def reference(cfg: TrainConfig):
    if cfg.grad_accum not in _REFERENCE:
        _REFERENCE[cfg.grad_accum] = run(cfg, 3, None)
    return _REFERENCE[cfg.grad_accum]


@pytest.mark.parametrize("crash_at,grad_accum", CASES, ids=[f"{c}{n}-accum{a}" for (c, n), a in CASES])
def test_resume_after_crash_is_bit_exact(tmp_path, crash_at, grad_accum):
    cfg = TrainConfig(**{**CFG.__dict__, "grad_accum": grad_accum})
    ref_model, ref = reference(cfg)
    with pytest.raises(Crash):
        run(cfg, 3, tmp_path, crash_at=crash_at)
    # checkpoint_every=1: every crash but one before the first step leaves a checkpoint to resume
    assert (tmp_path / "checkpoint.pt").exists() == (crash_at != ("collate", 1))
    model, result = run(cfg, 3, tmp_path)  # a new process would do exactly this
    assert result.steps == ref.steps
    assert result.history == ref.history
    assert result.best_dev == ref.best_dev
    for name, tensor in ref_model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    assert not (tmp_path / "checkpoint.pt").exists()  # the finished stage drops its checkpoint


def test_seed_changes_order_and_weights(tmp_path):
    a_model, a = run(CFG, 0, None)
    b_model, b = run(CFG, 0, None)
    c_model, c = run(CFG, 1, None)
    assert a.history == b.history
    assert all(torch.equal(x, y) for x, y in zip(a_model.state_dict().values(), b_model.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a_model.state_dict().values(), c_model.state_dict().values()))
