"""Diversity across a pool of tasks: sign-aligned z-scores, the composite score, union Vendi."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from stopover.diversity.measures import directions, vendi_score
from stopover.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np


def union_vendi(embeddings: Mapping[str, "np.ndarray"]) -> Callable[[Sequence[str]], float]:
    """A function tasks -> Vendi score of the union of their embedded samples (for diversity-cover).

    `embeddings` maps each task to its sample's embeddings (e.g. loaded from
    a profile's "embeddings_file"); equal sample sizes keep tasks equally weighted.
    """
    import numpy as np

    def score(tasks: Sequence[str]) -> float:
        missing = [t for t in tasks if t not in embeddings]
        if missing:
            raise ConfigError(f"no sample embeddings for task(s) {', '.join(missing)}; "
                              "profile them with a model first")
        if not tasks:
            raise ConfigError("the Vendi score of an empty set of tasks is undefined")
        return vendi_score(np.concatenate([embeddings[t] for t in tasks], axis=0))

    return score


# ---------------------------------------------------------------- composite


def zscores(profiles: Mapping[str, Mapping[str, float]], *,
            higher_is_more_diverse: Mapping[str, bool] | None = None) -> dict[str, dict[str, float]]:
    """Sign-aligned z-scores {task: {measure: z}} across the pool of tasks.

    z = s * (x - mean) / sd over the tasks (population sd), s = +1 if higher
    is more diverse, -1 otherwise (the compression ratio), so that higher z
    always means more diverse. Only measures present and finite for every
    task are used; measures with zero variance across the pool carry no
    ranking information and are dropped.
    """
    import numpy as np

    tasks = list(profiles)
    if not tasks:
        return {}
    direction = dict(directions())
    direction.update(higher_is_more_diverse or {})
    common = [m for m in profiles[tasks[0]]
              if all(m in profiles[t] and math.isfinite(float(profiles[t][m])) for t in tasks)]
    unknown = [m for m in common if m not in direction]
    if unknown:
        raise ConfigError(f"no direction known for diversity measure(s) {', '.join(unknown)}; "
                          "pass higher_is_more_diverse={name: bool}")
    out: dict[str, dict[str, float]] = {t: {} for t in tasks}
    for m in common:
        x = np.array([float(profiles[t][m]) for t in tasks])
        sd = float(x.std())
        if not sd > 1e-12 * max(1.0, float(np.abs(x).max())):
            continue
        z = (x - x.mean()) / sd * (1.0 if direction[m] else -1.0)
        for t, v in zip(tasks, z):
            out[t][m] = float(v)
    return out


def composite(profiles: Mapping[str, Mapping[str, float]], *,
              higher_is_more_diverse: Mapping[str, bool] | None = None) -> dict[str, float]:
    """One diversity score per task: the mean of its sign-aligned z-scores (`zscores`).

    Higher = more diverse relative to the rest of the pool; the scores of a
    pool average 0. It is relative: adding a task to the pool changes the
    others' scores. A pool with no varying measure (e.g. one task) scores 0.
    """
    z = zscores(profiles, higher_is_more_diverse=higher_is_more_diverse)
    return {t: (sum(v.values()) / len(v) if v else 0.0) for t, v in z.items()}


def load_profile_embeddings(profiles: Mapping[str, Mapping[str, Any]]) -> dict[str, "np.ndarray"]:
    """{task: sample embeddings} from profiles made by `profile_task` with a model."""
    import numpy as np

    out = {}
    for task, prof in profiles.items():
        f = prof.get("embeddings_file")
        if not f or not Path(f).is_file():
            raise DataError(f"diversity profile of {task!r} has no saved sample embeddings; "
                            "re-run profile_task with a model")
        out[task] = np.load(f)
    return out

