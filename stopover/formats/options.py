"""Per-format settings a task may declare (`Task.format_options`), as typed frozen dataclasses.

Torch-free on purpose: task declarations import these at `import stopover.tasks` time.
A task leaves `format_options` as None to take the format's defaults; a format reads
its own dataclass through `options_for(task, Cls)` and never looks at another's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from stopover.errors import TaskError


@dataclass(frozen=True)
class TaggingOptions:
    """Open tag sets (CCG supertags): the inventory is built from the training file."""

    tag_set: Callable[[Any], tuple[str, ...]] | None = None  # task -> inventory in index order
    max_tags: int = 425  # the most frequent supertags kept (CCGbank convention)
    unknown_tag: str | None = None  # class rare tags are mapped to in training


@dataclass(frozen=True)
class RetrievalOptions:
    """Which encoder layer embeds sentences and how neighbours are searched.

    The layer rule (stopover.formats.retrieval.retrieval_layer): the run config's
    per-task layer, else `layer`, else the last layer for encoders trained as
    sentence embedders (e5, LaBSE), else `round(layer_fraction * num_layers)`.
    """

    layer: int | None = None  # an index into hidden_states (0 = embeddings); overrides the rest
    layer_fraction: float = 14 / 24  # XTREME's layer 14 of 24 (XLM-R large, Tatoeba); MLM-pretrained encoders
    queries: str = "target"  # Tatoeba: search with the English side, as XTREME does
    neighbourhood: int = 4  # k of LASER/XTREME margin mining (BUCC)


@dataclass(frozen=True)
class SpanQAOptions:
    """Overrides of the span-QA defaults (None = the format's default)."""

    doc_stride: int | None = None
    max_query_length: int | None = None
    n_best: int | None = None
    max_answer_length: int | None = None
    null_threshold: float | None = None


T = TypeVar("T")


def options_for(task: Any, cls: type[T]) -> T:
    """The task's options of type `cls`, or the defaults when it declares none."""
    opts = getattr(task, "format_options", None)
    if opts is None:
        return cls()
    if not isinstance(opts, cls):
        raise TaskError(f"task {task.name!r}: format_options is a {type(opts).__name__}; "
                        f"format {task.format!r} takes {cls.__name__}")
    return opts
