"""Multi-task sampling: probabilities and realised batch proportions."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from stopover.multitask import mixed_batch_plan, task_probabilities


def test_probabilities():
    sizes = {"a": 900, "b": 100}
    assert task_probabilities(sizes, "proportional") == pytest.approx({"a": 0.9, "b": 0.1})
    assert task_probabilities(sizes, "uniform") == pytest.approx({"a": 0.5, "b": 0.5})
    # T = 2: sqrt(900) = 30, sqrt(100) = 10 -> 0.75 / 0.25
    assert task_probabilities(sizes, "temperature", 2.0) == pytest.approx({"a": 0.75, "b": 0.25})


@pytest.mark.parametrize("sampling, expected", [("temperature", 0.75), ("proportional", 0.9), ("uniform", 0.5)])
def test_realised_proportions_match(sampling, expected):
    task_of = ["a"] * 900 + ["b"] * 100
    per_epoch, plan = mixed_batch_plan(task_of, [5] * 1000, 4, sampling, 2.0)
    assert per_epoch == 225 + 25
    rng = random.Random(0)
    counts = Counter()
    for _ in range(20):
        for batch in plan(rng):
            assert len({task_of[i] for i in batch}) == 1  # never mixes tasks inside a batch
            counts[task_of[batch[0]]] += 1
    share = counts["a"] / sum(counts.values())
    assert share == pytest.approx(expected, abs=0.02)
