"""Selection strategies: each built-in, random-k draws, the oracle, expansion and dedup."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stopover import selection as sel
from stopover.diversity import union_vendi
from stopover.errors import ConfigError
from stopover.store import ResultRow

POOL = ("mnli", "squad", "hellaswag", "cosmosqa", "pos")
COMPOSITE = {"mnli": 0.1, "squad": 0.9, "hellaswag": -0.5, "cosmosqa": 0.4, "pos": -0.9}
COUNTS = {"mnli": 392_702, "squad": 87_599, "hellaswag": 39_905, "cosmosqa": 25_262, "pos": 12_543}


def ctx(**kw) -> sel.SelectionContext:
    base = dict(pool=POOL, k=2, seed=0, draws=4, composite=COMPOSITE, example_counts=COUNTS)
    base.update(kw)
    return sel.SelectionContext(**base)


def test_none_single_all() -> None:
    sets = sel.expand(["none", "single", "all"], ctx())
    assert [s.name for s in sets] == ["none", *POOL, "+".join(POOL)]
    assert sets[0] == sel.IntermediateSet("none", (), "none")
    assert {s.strategy for s in sets[1:6]} == {"single"} and sets[-1].strategy == "all"
    assert all(s.budget is None and not s.reference for s in sets)
    assert sel.expand(["single"], ctx(budget=1000))[0].budget == 1000


def test_diversity_topk_by_composite_and_by_measure() -> None:
    (top,) = sel.expand(["diversity-topk"], ctx())
    # squad (.9) and cosmosqa (.4), listed in pool order; budget = the two smallest counts
    assert top.tasks == ("squad", "cosmosqa") and top.name == "squad+cosmosqa"
    assert top.budget == COUNTS["pos"] + COUNTS["cosmosqa"]
    (top3,) = sel.expand([{"name": "diversity-topk", "k": 3}], ctx())
    assert top3.tasks == ("mnli", "squad", "cosmosqa")
    profiles = {t: {"mattr": v, "compression-ratio": v} for t, v in
                {"mnli": 0.5, "squad": 0.7, "hellaswag": 0.6, "cosmosqa": 0.2, "pos": 0.9}.items()}
    (by_mattr,) = sel.expand([{"diversity-topk": {"measure": "mattr"}}], ctx(profiles=profiles))
    assert by_mattr.tasks == ("squad", "pos")
    # compression ratio: lower = more diverse
    (by_cr,) = sel.expand([{"diversity-topk": {"measure": "compression-ratio"}}], ctx(profiles=profiles))
    assert by_cr.tasks == ("mnli", "cosmosqa")
    with pytest.raises(ConfigError, match="did you mean mattr"):
        sel.expand([{"diversity-topk": {"measure": "matr"}}], ctx(profiles=profiles))
    with pytest.raises(ConfigError, match="composite"):
        sel.expand(["diversity-topk"], ctx(composite=None))
    with pytest.raises(ConfigError, match="k=9"):
        sel.expand([{"diversity-topk": {"k": 9}}], ctx())


def test_diversity_cover_greedy_union_vendi() -> None:
    e = np.eye(3)
    emb = {  # mnli and squad cover the same direction; hellaswag and pos two others
        "mnli": np.array([e[0], e[0]]), "squad": np.array([e[0], e[0] + 0.01 * e[1]]),
        "hellaswag": np.array([e[1], e[1]]), "cosmosqa": np.array([e[0], e[1]]), "pos": np.array([e[2], e[2]]),
    }
    score = union_vendi(emb)
    (cover,) = sel.expand(["diversity-cover"], ctx(union_vendi=score))
    # step 1: cosmosqa (two directions alone, Vendi 2); step 2: pos adds the third direction
    assert cover.tasks == ("cosmosqa", "pos") and cover.strategy == "diversity-cover"
    assert cover.budget == sel.expand(["diversity-topk"], ctx())[0].budget
    with pytest.raises(ConfigError, match="union-sample Vendi"):
        sel.expand(["diversity-cover"], ctx())


def test_random_k_draws_are_distinct_reproducible_and_budget_matched() -> None:
    draws = sel.expand(["random-k"], ctx(draws=6))
    assert len(draws) == 6 and [d.draw for d in draws] == list(range(6))
    assert len({d.tasks for d in draws}) == 6
    assert all(len(d.tasks) == 2 and set(d.tasks) <= set(POOL) for d in draws)
    assert all(d.tasks == tuple(t for t in POOL if t in d.tasks) for d in draws)  # pool order
    assert sel.expand(["random-k"], ctx(draws=6)) == draws
    assert [d.tasks for d in sel.expand(["random-k"], ctx(draws=6, seed=1))] != [d.tasks for d in draws]
    topk = sel.expand(["diversity-topk"], ctx())[0]
    assert {d.budget for d in draws} == {topk.budget}
    assert {d.budget for d in sel.expand(["random-k"], ctx(budget=5000))} == {5000}
    assert all(d.budget is None for d in sel.expand(["random-k"], ctx(example_counts=None)))
    with pytest.warns(UserWarning, match="only 10 distinct"):
        every = sel.expand([{"random-k": {"draws": 50}}], ctx())
    assert len({d.tasks for d in every}) == 10 == math.comb(5, 2)
    (k3,) = sel.expand([{"random-k": {"k": 3, "draws": 1}}], ctx())
    assert len(k3.tasks) == 3 and k3.budget == COUNTS["pos"] + COUNTS["cosmosqa"] + COUNTS["hellaswag"]


def test_random_k_large_pool_uses_rejection_sampling() -> None:
    pool = tuple(f"t{i}" for i in range(40))
    draws = sel.expand([{"random-k": {"k": 10, "draws": 20}}], sel.SelectionContext(pool=pool, k=10))
    assert len({d.tasks for d in draws}) == 20 and all(len(d.tasks) == 10 for d in draws)
    again = sel.expand([{"random-k": {"k": 10, "draws": 20}}], sel.SelectionContext(pool=pool, k=10))
    assert again == draws


def test_oracle_is_a_reference_chosen_on_dev_scores() -> None:
    assert sel.expand(["oracle"], ctx()) == []  # post hoc: nothing before results exist
    scores = {"none": 70.0, "mnli": 74.5, "squad+cosmosqa": 74.5, "pos": 60.0}
    (best,) = sel.expand(["oracle"], ctx(dev_scores=scores))
    assert best.tasks == ("mnli",) and best.reference and best.strategy == "oracle"  # tie: sorted name
    rows = [ResultRow(run="r", stage="target", stage_hash="h", task="xnli", language="eng", split="dev",
                      metric="accuracy", value=v, seed=s, strategy="single", intermediate=i)
            for i, v, s in [("mnli", 80.0, 0), ("mnli", 82.0, 1), ("squad", 85.0, 0), ("squad", 77.0, 1)]]
    rows.append(ResultRow(run="r", stage="eval", stage_hash="h", task="xnli", language="deu", split="dev",
                          metric="accuracy", value=99.0, seed=0, strategy="single", intermediate="pos"))
    rows.append(ResultRow(run="r", stage="intermediate", stage_hash="h", task="xnli", language="eng",
                          split="dev", metric="accuracy", value=99.0, seed=0, strategy="single",
                          intermediate="pos"))
    dev = sel.dev_scores_from_results(rows, "xnli")
    assert dev == {"mnli": 81.0, "squad": 81.0}
    assert sel.select_oracle(dev).name == "mnli"
    assert sel.select_oracle({"none": 1.0, "a+b": 2.0}) == sel.IntermediateSet("a+b", ("a", "b"), "oracle",
                                                                                 reference=True)


def test_explicit_sets_and_dedup() -> None:
    sets = sel.expand([{"explicit": ["squad", "mnli"]}, "single", {"explicit": ["squad", "mnli"]},
                       {"name": "explicit", "tasks": ["pos"]}, "single", "none", "none"], ctx())
    names = [(s.strategy, s.name) for s in sets]
    # exact repeats removed; the user's order kept; the same tasks under another strategy kept
    assert names == [("explicit", "squad+mnli"), *[("single", t) for t in POOL], ("explicit", "pos"),
                     ("none", "none")]
    assert sel.expand([{"explicit": "squad+mnli"}], ctx())[0].tasks == ("squad", "mnli")
    with pytest.raises(ConfigError, match="twice"):
        sel.expand([{"explicit": ["pos", "pos"]}], ctx())
    # a union of strategies: random draws that hit the top-k subset stay, as random-k's own
    mixed = sel.expand(["diversity-topk", {"random-k": {"draws": 10}}], ctx())
    assert len(mixed) == 11 and sum(s.name == "squad+cosmosqa" for s in mixed) == 2


def test_unknown_strategy_option_and_spec_errors() -> None:
    with pytest.raises(ConfigError, match="did you mean diversity-topk"):
        sel.expand(["diversty-topk"], ctx())
    with pytest.raises(ConfigError, match="no option\\(s\\) size"):
        sel.expand([{"name": "random-k", "size": 3}], ctx())
    with pytest.raises(ConfigError, match="a name or a mapping"):
        sel.expand([42], ctx())
    with pytest.raises(ConfigError, match="twice"):
        sel.SelectionContext(pool=("a", "a"))


def test_a_user_strategy_is_one_function(monkeypatch) -> None:
    monkeypatch.setattr(sel, "STRATEGIES", dict(sel.STRATEGIES))

    @sel.strategy("least-diverse")
    def least_diverse(c: sel.SelectionContext, k: int | None = None) -> list[sel.IntermediateSet]:
        k = c.check_k(c.k if k is None else k)
        ranked = sorted(c.pool, key=lambda t: c.composite[t])[:k]
        return [sel.IntermediateSet.of(c.in_pool_order(ranked), "least-diverse", budget=c.subset_budget(k))]

    (s,) = sel.expand([{"least-diverse": {"k": 2}}], ctx())
    assert s.tasks == ("hellaswag", "pos") and s.budget == COUNTS["pos"] + COUNTS["cosmosqa"]


# ---------------------------------------------------------------- validation before anything runs


def grid(**kw):
    from stopover.config import RunConfig, from_dict

    return from_dict(RunConfig, {"name": "v", "targets": ["xnli"], "pool": ["mnli", "qqp"], **kw})


@pytest.mark.parametrize("spec, selection, fragment", [
    (["random-k"], {"k": 3}, r"strategies\[0\]: selection.k = 3 is larger than the pool of 2 task\(s\) \(mnli, qqp\); "
                             r"strategy 'random-k' picks k of them: lower selection.k to at most 2"),
    ([{"name": "diversity-topk", "k": 5}], {}, r"strategies\[0\]: k = 5 is larger than the pool"),
    ([{"diversity-cover": {"k": 0}}], {}, r"k = 0 must be >= 1"),
    ([{"name": "random-k", "k": "two"}], {}, r"k = 'two' must be an integer"),
    ([{"name": "random-k", "draws": 0}], {}, r"draws = 0 must be >= 1"),
    (["none", {"explicit": []}], {}, r"strategies\[1\]: strategy 'explicit' lists no tasks; for the "
                                     r"no-intermediate baseline use the strategy `none`"),
    ([{"explicit": ["mnlx"]}], {}, r"strategies\[0\]: unknown task 'mnlx'; did you mean mnli"),
    (["diversity-foo"], {}, r"unknown selection strategy 'diversity-foo'; did you mean diversity-topk, "
                            r"diversity-cover(, every-k)?\? valid: none, single, all"),
    ([{"name": "diversity-topk", "measure": "mtdl"}], {}, r"strategies\[0\].measure = 'mtdl': unknown diversity "
                                                           r"measure; did you mean mtld"),
    (["diversity-topk"], {"diversity_measure": "vendy"}, r"selection.diversity_measure = 'vendy'"),
    ([{"name": "random-k", "budget": 5}], {}, r"strategy 'random-k' has no option\(s\) budget; its options: k, draws"),
])
def test_strategies_are_validated_with_the_config(spec, selection, fragment):
    with pytest.raises(ConfigError, match=fragment):
        grid(strategies=spec, selection=selection)


def test_pool_strategies_need_a_pool_and_pool_free_ones_do_not():
    with pytest.raises(ConfigError, match=r"strategy 'single' chooses from the task pool, but the pool is empty"):
        grid(pool=[], strategies=["single"])
    with pytest.raises(ConfigError, match=r"pool lists mnli more than once"):
        grid(pool=["mnli", "mnli"], strategies=["none"])
    cfg = grid(pool=[], strategies=["none", {"explicit": ["mnli", "qqp"]}])  # valid: no pool needed
    assert len(cfg.strategies) == 2
    assert grid(strategies=[{"name": "random-k", "k": 2, "draws": 1}]).selection.k == 2  # k == pool size is fine


def test_explicit_with_no_tasks_is_refused_at_expansion_too():
    with pytest.raises(ConfigError, match="use the strategy `none`"):
        sel.expand([{"explicit": []}], ctx())


def test_a_bad_strategy_stops_plan_before_any_data_is_read(tmp_path, monkeypatch, capsys):
    """An unknown diversity* name used to surface as a network error from computing profiles."""
    from stopover.cli import main

    def no_data(*args, **kwargs):
        raise AssertionError("data was read before the config was validated")

    monkeypatch.setattr("stopover.data.load_examples", no_data)
    monkeypatch.setattr("stopover.data._hub_rows", no_data)
    path = tmp_path / "grid.yaml"
    path.write_text("targets: [xnli]\npool: [mnli, qqp]\nstrategies: [diversity-topkk]\n")
    for command in ("plan", "run"):
        assert main([command, str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "unknown selection strategy 'diversity-topkk'" in err, err


def test_every_k_enumerates_each_subset_once_as_the_random_family() -> None:
    sets = sel.expand(["every-k"], ctx())
    assert len(sets) == math.comb(5, 2) and len({s.tasks for s in sets}) == len(sets)
    assert [s.draw for s in sets] == list(range(len(sets)))
    assert sets[0].tasks == ("mnli", "squad") and sets[-1].tasks == ("cosmosqa", "pos")  # pool order
    assert sel.family_of("every-k") == "random"
    topk = sel.expand(["diversity-topk"], ctx())[0]
    assert {s.budget for s in sets} == {topk.budget}
    # the diversity set is one of the enumerated sets: the same name, hence the same stage
    assert topk.name in {s.name for s in sets}
    assert len(sel.expand([{"every-k": {"k": 3}}], ctx())) == math.comb(5, 3)
    with pytest.raises(ConfigError, match="no option"):
        sel.validate_strategies(type("C", (), {"strategies": [{"every-k": {"draws": 3}}], "pool": POOL,
                                              "selection": type("S", (), {"k": 2, "diversity_measure": "composite"})()})())
