"""stopover.train: the best English-dev weights are restored at the end, frozen embeddings untouched."""

from __future__ import annotations

import pytest
import torch

from stopover.config import TrainConfig
from stopover.train import train
from tests.reliability.test_train_resume import TinyNet, collate, features


def test_best_dev_weights_are_restored_and_frozen_embeddings_kept():
    torch.manual_seed(0)
    model = TinyNet()
    embeddings_before = model.emb.weight.detach().clone()
    snapshots, scores = [], iter([5.0, 9.0, 1.0, 2.0])  # the second evaluation is the best

    def dev(m):
        snapshots.append({k: v.detach().clone() for k, v in m.state_dict().items()})
        return next(scores)

    cfg = TrainConfig(epochs=2, batch_size=10, lr=5e-2, eval_per_epoch=2, precision="fp32",
                      freeze_embeddings=True)
    result = train(model, features(40), collate, cfg, seed=0, dev_score=dev)
    assert result.best_dev == 9.0 and len(snapshots) == 4
    final = model.state_dict()
    assert torch.equal(final["out.weight"], snapshots[1]["out.weight"])
    assert not torch.equal(final["out.weight"], snapshots[3]["out.weight"])  # training did move it later
    assert torch.equal(final["emb.weight"], embeddings_before)
    assert not model.emb.weight.requires_grad


def test_the_step_log_sees_losses_rates_and_dev_scores_without_changing_training():
    cfg = TrainConfig(epochs=1, batch_size=10, grad_accum=2, lr=5e-2, eval_per_epoch=1, precision="fp32")
    torch.manual_seed(0)
    plain = TinyNet()
    torch.manual_seed(0)
    logged_model = TinyNet()
    forward: list[float] = []
    logged_model.register_forward_hook(lambda m, i, out: forward.append(float(out.loss)) if m.training else None)
    logged: list[tuple[dict, int]] = []
    a = train(plain, features(40), collate, cfg, seed=0, dev_score=lambda m: 1.0)
    b = train(logged_model, features(40), collate, cfg, seed=0, dev_score=lambda m: 1.0,
              log=lambda metrics, step: logged.append((dict(metrics), step)))
    assert all(torch.equal(v, logged_model.state_dict()[k]) for k, v in plain.state_dict().items())
    assert (a.steps, a.trainable_params, a.total_params) == (b.steps, b.trainable_params, b.total_params) == (
        2, sum(p.numel() for p in plain.parameters()), sum(p.numel() for p in plain.parameters()))
    steps = [(m, s) for m, s in logged if "train/loss" in m]
    assert [s for _, s in steps] == [1, 2]
    # the mean of the step's two batches, and the rate that step used (linear decay, no warmup step)
    assert len(forward) == 4
    assert [m["train/loss"] for m, _ in steps] == pytest.approx([sum(forward[0:2]) / 2, sum(forward[2:4]) / 2])
    assert [m["train/lr"] for m, _ in steps] == pytest.approx([5e-2, 2.5e-2])
    assert [(m, s) for m, s in logged if "dev/score" in m] == [({"dev/score": 1.0}, 2)]
