"""Selection strategies: how a pool of English intermediate tasks becomes intermediate sets.

A strategy is one function `fn(ctx: SelectionContext, **options) ->
list[IntermediateSet]`, registered with `@strategy("name")`; its keyword
options are what a config may set for it. Built in:

- `none`: no intermediate training (the baseline);
- `single`: each pool task alone;
- `all`: every pool task together (multi-task);
- `diversity-topk`: the k most diverse tasks, by the composite diversity
  score or one named measure (`measure=`);
- `diversity-cover`: greedily the k tasks whose samples, pooled, have the
  highest Vendi score (needs `ctx.union_vendi`, see
  `stopover.diversity.union_vendi`);
- `random-k`: R distinct random k-subsets (seeded): the control for the
  diversity strategies, with the same k and the same example budget;
- `every-k`: every k-subset of the pool, each once (the random control
  enumerated, where the pool is small: exact draw-rank p-values);
- `explicit`: a set the user lists (`tasks=[...]`);
- `oracle`: post hoc, the set with the best English dev score for a target
  task (`ctx.dev_scores`); `reference=True`, a ceiling to report, never a
  method. Without dev scores it yields nothing (it needs finished runs).

Sets built by a strategy list their tasks in pool order, so the same subset
reached by two strategies has one name (and trains once: stages are cached
by config); `explicit` keeps the user's order (it may be the training order).

Budget: k-task sets (diversity-topk, diversity-cover, random-k, every-k) all get
`ctx.subset_budget()` total training examples: `ctx.budget` when set, else
the sum of the k smallest pool example counts (the largest budget that every
k-subset can meet without repeating examples), else None (each set uses all
its data; the sets are then not budget-matched). Other non-empty sets get
`ctx.budget` (None = all their data). How a budget is split across a set's
tasks is the training stage's business.

Size: one concept (how intermediate sets are chosen): each strategy is a short
registered function, and validation sits beside the strategies it checks.
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import math
import random
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from stopover.errors import ConfigError


@dataclass(frozen=True)
class IntermediateSet:
    """The English tasks of one intermediate stage, and where they came from.

    `name` is the tasks joined by "+" ("none" for no task), the value of
    `ResultRow.intermediate`; `draw` numbers random-k draws (0..R-1);
    `budget` is the total number of training examples (None = all);
    `reference` marks sets that are not methods (the oracle).
    """

    name: str
    tasks: tuple[str, ...]
    strategy: str
    draw: int | None = None
    budget: int | None = None
    reference: bool = False

    @classmethod
    def of(cls, tasks: Iterable[str], strategy: str, *, draw: int | None = None, budget: int | None = None,
           reference: bool = False) -> "IntermediateSet":
        tasks = tuple(tasks)
        return cls(set_name(tasks), tasks, strategy, draw, budget if tasks else None, reference)


def set_name(tasks: Sequence[str]) -> str:
    """"none" for no task, else the task names joined by "+"."""
    return "+".join(tasks) if tasks else "none"


def parse_set_name(name: str) -> tuple[str, ...]:
    """The inverse of `set_name`."""
    return () if name == "none" else tuple(name.split("+"))


@dataclass(frozen=True)
class SelectionContext:
    """What strategies may use.

    pool: the candidate English intermediate tasks (in a fixed order);
    k: the subset size of the k-task strategies; seed and draws (R): the
    random-k draws; budget: total training examples per set (see the module
    docstring); composite: {task: composite diversity} (higher = more
    diverse); profiles: {task: {measure: value}}; directions: {measure:
    higher_is_more_diverse} for `profiles` (default: the registered
    measures'); example_counts: {task: training examples}; union_vendi:
    tasks -> Vendi score of their pooled samples; dev_scores: {set name:
    English dev score} of one target task, for the oracle.
    """

    pool: tuple[str, ...]
    k: int = 2
    seed: int = 0
    draws: int = 10
    budget: int | None = None
    composite: Mapping[str, float] | None = None
    profiles: Mapping[str, Mapping[str, float]] | None = None
    directions: Mapping[str, bool] | None = None
    example_counts: Mapping[str, int] | None = None
    union_vendi: Callable[[Sequence[str]], float] | None = field(default=None, compare=False)
    dev_scores: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "pool", tuple(self.pool))
        dupes = sorted({t for t in self.pool if self.pool.count(t) > 1})
        if dupes:
            raise ConfigError(f"selection pool lists task(s) twice: {', '.join(dupes)}")
        if self.draws < 1:
            raise ConfigError(f"selection draws must be >= 1, got {self.draws}")
        if self.budget is not None and self.budget < 1:
            raise ConfigError(f"selection budget must be >= 1 examples, got {self.budget}")

    def check_k(self, k: int) -> int:
        if not 1 <= k <= len(self.pool):
            raise ConfigError(f"selection k={k} must be between 1 and the pool size {len(self.pool)} "
                              f"(pool: {', '.join(self.pool) or 'empty'})")
        return k

    def subset_budget(self, k: int | None = None) -> int | None:
        """The shared example budget of k-task sets (see the module docstring)."""
        k = self.k if k is None else k
        if self.budget is not None:
            return self.budget
        counts = self.example_counts or {}
        if self.pool and all(t in counts for t in self.pool):
            return int(sum(sorted(int(counts[t]) for t in self.pool)[:k]))
        return None

    def in_pool_order(self, tasks: Iterable[str]) -> tuple[str, ...]:
        chosen = set(tasks)
        return tuple(t for t in self.pool if t in chosen)


Strategy = Callable[..., list[IntermediateSet]]
STRATEGIES: dict[str, Strategy] = {}
POOL_FREE: set[str] = set()  # strategies that never read the pool (validation needs no pool for them)
POST_HOC: set[str] = set()  # strategies chosen after the other cells have run (the oracle)
# strategy -> family: what the analysis compares ("diversity" sets against "random" draws); a
# family is a fact the strategy declares, never read off its name
FAMILIES: dict[str, str] = {}


def strategy(name: str, *, needs_pool: bool = True, post_hoc: bool = False,
             family: str | None = None) -> Callable[[Strategy], Strategy]:
    """Register `fn(ctx, **options) -> list[IntermediateSet]` as the strategy `name`.

    `family`: "diversity" (chosen for linguistic diversity), "random" (a control draw),
    "baseline", "single", "all", "explicit", "oracle"; default: the name itself.

    `needs_pool=False`: the strategy works without a task pool (`none`, `explicit`);
    `post_hoc=True`: it is chosen from the other cells' finished English dev scores (`oracle`), so the
    grid expands it after those cells have run (stopover.grid).
    """
    def wrap(fn: Strategy) -> Strategy:
        STRATEGIES[name] = fn
        (POOL_FREE.add if not needs_pool else POOL_FREE.discard)(name)
        (POST_HOC.add if post_hoc else POST_HOC.discard)(name)
        FAMILIES[name] = family or name
        return fn
    return wrap


def family_of(strategy_name: str) -> str:
    """The family a strategy declared (`strategy(..., family=)`); "" for a name not registered here
    (results written by a strategy this process does not know).
    """
    return FAMILIES.get(strategy_name, "")


# ---------------------------------------------------------------- built-in strategies


@strategy("none", needs_pool=False, family="baseline")
def _none(ctx: SelectionContext) -> list[IntermediateSet]:
    return [IntermediateSet.of((), "none")]


@strategy("single")
def _single(ctx: SelectionContext) -> list[IntermediateSet]:
    return [IntermediateSet.of((t,), "single", budget=ctx.budget) for t in ctx.pool]


@strategy("all")
def _all(ctx: SelectionContext) -> list[IntermediateSet]:
    if not ctx.pool:
        raise ConfigError("strategy 'all' needs a non-empty task pool")
    return [IntermediateSet.of(ctx.pool, "all", budget=ctx.budget)]


def _diversity_scores(ctx: SelectionContext, measure: str | None) -> dict[str, float]:
    """{task: score}, higher = more diverse, from the composite or one measure."""
    if measure is None:
        if ctx.composite is None:
            raise ConfigError("diversity strategies need composite diversity scores "
                              "(run `stopover diversity` on the pool, or give measure=NAME with profiles)")
        scores = dict(ctx.composite)
    else:
        if ctx.profiles is None:
            raise ConfigError(f"diversity measure {measure!r} needs per-task diversity profiles")
        from stopover.diversity import directions as registered

        direction = dict(registered())
        direction.update(ctx.directions or {})
        lacking = [t for t in ctx.pool if measure not in ctx.profiles.get(t, {})]
        if lacking:
            known = sorted({m for p in ctx.profiles.values() for m in p})
            close = difflib.get_close_matches(measure, known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; measures: {', '.join(known)}"
            raise ConfigError(f"diversity measure {measure!r} missing for task(s) {', '.join(lacking)}{hint}")
        if measure not in direction:
            raise ConfigError(f"no direction known for diversity measure {measure!r}; set directions")
        sign = 1.0 if direction[measure] else -1.0
        scores = {t: sign * float(ctx.profiles[t][measure]) for t in ctx.pool}
    lacking = [t for t in ctx.pool if t not in scores]
    if lacking:
        raise ConfigError(f"no diversity score for pool task(s) {', '.join(lacking)}")
    return scores


@strategy("diversity-topk", family="diversity")
def _diversity_topk(ctx: SelectionContext, k: int | None = None, measure: str | None = None) -> list[IntermediateSet]:
    k = ctx.check_k(ctx.k if k is None else k)
    scores = _diversity_scores(ctx, measure)
    # ties go to the earlier pool task: the ranking is deterministic
    ranked = sorted(ctx.pool, key=lambda t: (-scores[t], ctx.pool.index(t)))
    return [IntermediateSet.of(ctx.in_pool_order(ranked[:k]), "diversity-topk", budget=ctx.subset_budget(k))]


@strategy("diversity-cover", family="diversity")
def _diversity_cover(ctx: SelectionContext, k: int | None = None) -> list[IntermediateSet]:
    k = ctx.check_k(ctx.k if k is None else k)
    if ctx.union_vendi is None:
        raise ConfigError("strategy 'diversity-cover' needs a union-sample Vendi function "
                          "(SelectionContext.union_vendi; see stopover.diversity.union_vendi)")
    chosen: list[str] = []
    for _ in range(k):
        best, best_score = None, -math.inf
        for t in ctx.pool:
            if t in chosen:
                continue
            score = float(ctx.union_vendi(tuple(chosen) + (t,)))
            if score > best_score:  # strict: ties keep the earlier pool task
                best, best_score = t, score
        assert best is not None
        chosen.append(best)
    return [IntermediateSet.of(ctx.in_pool_order(chosen), "diversity-cover", budget=ctx.subset_budget(k))]


@strategy("random-k", family="random")
def _random_k(ctx: SelectionContext, k: int | None = None, draws: int | None = None,
              seed: int | None = None) -> list[IntermediateSet]:
    k = ctx.check_k(ctx.k if k is None else k)
    r = ctx.draws if draws is None else draws
    if r < 1:
        raise ConfigError(f"random-k draws must be >= 1, got {r}")
    rng = random.Random(ctx.seed if seed is None else seed)
    n = len(ctx.pool)
    possible = math.comb(n, k)
    if r > possible:
        warnings.warn(f"random-k: only {possible} distinct {k}-subsets of a pool of {n}; "
                      f"drawing all of them instead of {r}", stacklevel=2)
        r = possible
    if possible <= 100_000:
        # sample from the enumerated subsets: distinct by construction, no rejection loop
        subsets = [tuple(c) for c in rng.sample(list(itertools.combinations(range(n), k)), r)]
    else:
        seen: set[tuple[int, ...]] = set()
        subsets = []
        while len(subsets) < r:
            c = tuple(sorted(rng.sample(range(n), k)))
            if c not in seen:
                seen.add(c)
                subsets.append(c)
    budget = ctx.subset_budget(k)
    return [IntermediateSet.of(tuple(ctx.pool[i] for i in c), "random-k", draw=d, budget=budget)
            for d, c in enumerate(subsets)]


@strategy("every-k", family="random")
def _every_k(ctx: SelectionContext, k: int | None = None) -> list[IntermediateSet]:
    """Every k-subset of the pool, each once, as the random-control family: the exact reference
    distribution for the draw-rank test (a diversity set's rank among *all* sets of its size, with
    its floor 2 / C(n, k)), where a pool is small enough to enumerate. A subset equal to a diversity
    set is the same stage; the analysis counts it once, as the diversity set, not as a draw.
    """
    k = ctx.check_k(ctx.k if k is None else k)
    budget = ctx.subset_budget(k)
    return [IntermediateSet.of(tuple(ctx.pool[i] for i in c), "every-k", draw=d, budget=budget)
            for d, c in enumerate(itertools.combinations(range(len(ctx.pool)), k))]


_EMPTY_EXPLICIT = ("strategy 'explicit' lists no tasks; for the no-intermediate baseline use the strategy `none` "
                   "(an empty explicit set would be recorded under the name 'explicit')")


@strategy("explicit", needs_pool=False)
def _explicit(ctx: SelectionContext, tasks: Sequence[str] = ()) -> list[IntermediateSet]:
    if isinstance(tasks, str):
        tasks = parse_set_name(tasks)
    tasks = tuple(tasks)
    if not tasks:
        raise ConfigError(_EMPTY_EXPLICIT)
    if any(not isinstance(t, str) or not t or "+" in t for t in tasks):
        raise ConfigError(f"strategy 'explicit': tasks must be task names, got {list(tasks)}")
    if len(set(tasks)) != len(tasks):
        raise ConfigError(f"strategy 'explicit' lists a task twice: {list(tasks)}")
    return [IntermediateSet.of(tasks, "explicit", budget=ctx.budget)]


@strategy("oracle", needs_pool=False, post_hoc=True)
def _oracle(ctx: SelectionContext) -> list[IntermediateSet]:
    if not ctx.dev_scores:
        return []  # post hoc: chosen after the runs, by `select_oracle`
    return [select_oracle(ctx.dev_scores)]


def select_oracle(dev_scores: Mapping[str, float]) -> IntermediateSet:
    """The intermediate set with the best English dev score (ties: the first name in sorted order).

    A reference point (reference=True): it uses the evaluation data's
    language's dev scores to choose, so it is a ceiling, never a method.
    """
    finite = {name: float(v) for name, v in dev_scores.items() if math.isfinite(float(v))}
    if not finite:
        raise ConfigError("oracle: no finite English dev scores to choose from")
    best = min(finite, key=lambda name: (-finite[name], name))
    return IntermediateSet.of(parse_set_name(best), "oracle", reference=True)


def dev_scores_from_results(rows: Iterable[Any], target: str, *, language: str = "eng",
                            split: str = "dev") -> dict[str, float]:
    """{intermediate set name: mean primary English dev score over seeds} of one target task.

    Reads tidy result rows (`stopover.store.ResultRow`) from the target and
    evaluation stages; the intermediate stage's own scores are ignored.
    """
    sums: dict[str, list[float]] = {}
    for row in rows:
        task = getattr(row, "target", "") or row.task
        if (row.stage != "intermediate" and task == target and row.language == language
                and row.split == split and row.primary):
            sums.setdefault(row.intermediate, []).append(float(row.value))
    return {name: sum(v) / len(v) for name, v in sums.items()}


# ---------------------------------------------------------------- expansion


def parse_spec(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(strategy name, options) of one config entry.

    Accepted: "name", {"name": NAME, **options}, {NAME: {options}}, {"explicit": [tasks]}.
    """
    if isinstance(spec, str):
        return spec, {}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"a selection strategy is a name or a mapping, got {spec!r}")
    if "name" in spec:
        options = {k: v for k, v in spec.items() if k != "name"}
        return str(spec["name"]), options
    if len(spec) == 1:
        (name, value), = spec.items()
        if isinstance(value, Mapping):
            return str(name), dict(value)
        if name == "explicit" and isinstance(value, (list, tuple, str)):
            return "explicit", {"tasks": value}
        if value is None:
            return str(name), {}
    raise ConfigError(f"selection strategy {dict(spec)!r}: write a name, {{name: NAME, option: value}}, "
                      "or {NAME: {option: value}}")


_parse_spec = parse_spec  # the name stopover.grid first used


def _unknown(name: str) -> ConfigError:
    close = difflib.get_close_matches(name, list(STRATEGIES), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return ConfigError(f"unknown selection strategy {name!r}; {hint}valid: {', '.join(STRATEGIES)}")


def expand(strategies: Sequence[str | Mapping[str, Any]], ctx: SelectionContext) -> list[IntermediateSet]:
    """The intermediate sets of every strategy, in order, without repeats.

    A set repeated exactly (same strategy, tasks, draw, budget, e.g. a
    strategy listed twice or an explicit set listed twice) is kept once. The
    same tasks under two strategies stay as two sets, since results are
    reported per strategy; the pipeline's stage cache trains them once.
    """
    out: list[IntermediateSet] = []
    seen: set[IntermediateSet] = set()
    for spec in strategies:
        name, options = parse_spec(spec)
        fn = STRATEGIES.get(name)
        if fn is None:
            raise _unknown(name)
        params = list(inspect.signature(fn).parameters)[1:]
        bad = sorted(set(options) - set(params))
        if bad:
            raise ConfigError(f"selection strategy {name!r} has no option(s) {', '.join(bad)}; "
                              f"its options: {', '.join(params) or 'none'}")
        for s in fn(ctx, **options):
            if s not in seen:
                seen.add(s)
                out.append(s)
    return out


# ---------------------------------------------------------------- validation


def _strategy_options(fn: Strategy) -> list[str]:
    return list(inspect.signature(fn).parameters)[1:]


def _check_int(value: Any, at: str, option: str, low: int, high: int | None = None, why: str = "") -> int:
    """`value` as an integer in [low, high], else a ConfigError naming `<at>: <option>` and saying `why`."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{at}: {option} = {value!r} must be an integer")
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{at}: {option} = {value} {why}")
    return value


def validate_strategies(cfg: Any, where: str = "config") -> None:
    """Check every strategy of a grid config and its options, before anything runs.

    `cfg` is a `stopover.config.RunConfig` (read: `pool`, `strategies`, `selection`). Errors are
    one-line `ConfigError`s naming `<where>.strategies[i]`: an unknown name (listing the valid
    ones), an unknown option, `k` outside 1..pool size (a k larger than the pool was once cut to
    the pool size without a word), an empty `explicit` set (the baseline is `none`), an unknown
    task in an explicit set, a pool strategy without a pool, a post-hoc strategy (`oracle`) in a
    grid, an unknown diversity measure. The strategies themselves re-check at expansion; this
    runs when the config is built, so `stopover plan` and `stopover run` stop before any stage
    and before diversity profiles are computed.
    """
    pool = tuple(cfg.pool)
    dupes = sorted({t for t in pool if pool.count(t) > 1})
    if dupes:
        raise ConfigError(f"{where}.pool lists {', '.join(dupes)} more than once; list each task once")
    if not cfg.strategies:
        raise ConfigError(f"{where}.strategies is empty; give at least one, e.g. strategies: [none]")
    sel = cfg.selection
    measures: list[tuple[str, Any]] = []  # (where, measure name) to check against the registry
    if sel.diversity_measure != "composite":
        measures.append((f"{where}.selection.diversity_measure", sel.diversity_measure))
    for i, spec in enumerate(cfg.strategies):
        at = f"{where}.strategies[{i}]"
        try:
            name, options = parse_spec(spec)
        except ConfigError as err:
            raise ConfigError(f"{at}: {err}") from None
        fn = STRATEGIES.get(name)
        if fn is None:
            raise ConfigError(f"{at}: {_unknown(name)}")
        params = _strategy_options(fn)
        bad = sorted(map(str, set(options) - set(params)))
        if bad:
            raise ConfigError(f"{at}: strategy {name!r} has no option(s) {', '.join(bad)}; "
                              f"its options: {', '.join(params) or 'none'}")
        if name not in POOL_FREE and not pool:
            raise ConfigError(f"{at}: strategy {name!r} chooses from the task pool, but the pool is empty; "
                              "list intermediate tasks in pool: [...] (or use none / explicit)")
        if "k" in params:
            source = "k" if "k" in options else "selection.k"
            k = _check_int(options.get("k", sel.k), at, source, 1, why="must be >= 1")
            if k > len(pool):
                raise ConfigError(f"{at}: {source} = {k} is larger than the pool of {len(pool)} task(s) "
                                  f"({', '.join(pool)}); strategy {name!r} picks k of them: lower {source} "
                                  f"to at most {len(pool)} or add tasks to the pool")
        if "draws" in options:
            _check_int(options["draws"], at, "draws", 1, why="must be >= 1")
        if "seed" in options:
            _check_int(options["seed"], at, "seed", 0, 2**32 - 1, why=f"must be between 0 and {2**32 - 1}")
        if options.get("measure") is not None:
            measures.append((f"{at}.measure", options["measure"]))
        if name == "explicit":
            _check_explicit(options.get("tasks", ()), at)
    if measures:
        from stopover.diversity import MEASURES  # torch-free; only when a measure is named

        for at, measure in measures:
            if not isinstance(measure, str) or measure not in MEASURES:
                close = difflib.get_close_matches(str(measure), list(MEASURES), n=3, cutoff=0.5)
                hint = f"did you mean {', '.join(close)}? " if close else ""
                raise ConfigError(f"{at} = {measure!r}: unknown diversity measure; {hint}valid: composite, "
                                  f"{', '.join(MEASURES)}")


def _check_explicit(tasks: Any, at: str) -> None:
    from stopover.errors import StopoverError
    from stopover.tasks import get_task

    if isinstance(tasks, str):
        tasks = parse_set_name(tasks) if tasks else ()
    if not isinstance(tasks, (list, tuple)):
        raise ConfigError(f"{at}: explicit tasks must be a list of task names, got {tasks!r}")
    if not tasks:
        raise ConfigError(f"{at}: {_EMPTY_EXPLICIT}")
    for task in tasks:
        if not isinstance(task, str) or not task or "+" in task:
            raise ConfigError(f"{at}: explicit tasks must be task names, got {list(tasks)}")
        try:
            get_task(task)
        except StopoverError as err:
            raise ConfigError(f"{at}: {err}") from None
    if len(set(tasks)) != len(tasks):
        raise ConfigError(f"{at}: strategy 'explicit' lists a task twice: {list(tasks)}")
