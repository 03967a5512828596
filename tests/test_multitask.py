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


def test_a_mixed_stage_gives_multiple_choice_the_pooler_a_span_qa_encoder_lacks(tmp_path):
    """SQuAD first, then a multiple-choice task: the MC head reads the pooled output, which the
    shared encoder (built for span QA, without a pooler) must then have (it once raised IndexError).
    """
    from stopover.config import TrainConfig
    from stopover.formats import get_format
    from stopover.models import build_tiny_model, load_tokenizer
    from stopover.multitask import fit_mixed
    from stopover.tasks import get_task

    corpus = ["the man walks to the shop", "what does the man buy", "he buys bread", "he buys a car"] * 20
    path = build_tiny_model(tmp_path / "tiny", corpus, vocab_size=120, hidden=32, layers=1, heads=2)
    tok = load_tokenizer(str(path))
    qa, mc = get_format("span_qa"), get_format("multiple_choice")
    squad, csqa = get_task("squad"), get_task("commonsenseqa")
    context = "the man walks to the shop . he buys bread"
    qa_examples = [{"id": str(i), "question": "what does the man buy", "context": context,
                    "answers": {"text": ["bread"], "answer_start": [context.index("bread")]}} for i in range(4)]
    mc_examples = [{"context": "", "question": "what does the man buy", "label": i % 2,
                    "endings": ["bread", "a car", "the shop", "a man", "he"]} for i in range(4)]
    parts = [("squad", squad, qa, qa.featurize(qa_examples, tok, squad, 32, train=True)),
             ("commonsenseqa", csqa, mc, mc.featurize(mc_examples, tok, csqa, 32, train=True))]
    model, result = fit_mixed(parts, str(path), tok, TrainConfig(epochs=1, batch_size=2, lr=1e-3), "uniform", 2.0,
                              seed=0, dev_score=None)
    encoders = {id(getattr(m, m.base_model_prefix)) for m in model.tasks.values()}
    assert len(encoders) == 1  # one shared encoder, now with a pooler
    shared = getattr(model.tasks["squad"], model.tasks["squad"].base_model_prefix)
    assert shared.pooler is not None and result.steps == 4
