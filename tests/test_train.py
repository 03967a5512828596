"""stopover.train: the best English-dev weights are restored at the end, frozen embeddings untouched."""

from __future__ import annotations

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
