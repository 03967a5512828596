"""Task formats: how a task is tokenised, which head it trains, how outputs decode.

A format is an object with the `Format` protocol below; each lives in its own
module and registers itself under the name tasks declare (`Task.format`).
The pipeline and the training loop only talk to this protocol, so adding a
format adds a module and touches nothing else.

Every format also turns its predictions into per-example records and scores them again from
those records alone (`records`, `score_records`), and most write XTREME's prediction files
(`xtreme_files(task, records, *, label_names) -> (suffix, predictions text, labels text)`,
optional: masked-LM has none), so saved predictions can be re-scored and exported.

Features are plain dicts of lists (input_ids, attention_mask, labels, ...)
plus `example_index`, the index of the example they came from (QA windows and
long tagging sentences yield several features per example).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

from stopover.errors import TaskError

if TYPE_CHECKING:  # keep `import stopover.formats` free of torch
    import torch

    from stopover.tasks import Task


class Format(Protocol):
    name: str
    version: int  # bumped when featurising, the head or decoding changes (part of stage identities)
    trains: bool  # False: nothing is fine-tuned (retrieval embeds with the bare encoder)

    def build_model(self, encoder_path: str, task: "Task") -> "torch.nn.Module":
        """A transformers model with a fresh head for `task` on the encoder at `encoder_path`."""
        ...

    def featurize(self, examples: list[dict[str, Any]], tokenizer: Any, task: "Task", max_length: int,
                  *, train: bool) -> list[dict[str, Any]]:
        """Tokenise canonical examples into features (with `example_index`)."""
        ...

    def collate(self, features: list[dict[str, Any]], tokenizer: Any) -> dict[str, "torch.Tensor"]:
        """Pad a batch of features into tensors the model accepts (labels included when present)."""
        ...

    def predict(self, model: "torch.nn.Module", features: list[dict[str, Any]],
                examples: list[dict[str, Any]], task: "Task", tokenizer: Any,
                batch_size: int) -> list[Any]:
        """One prediction per example."""
        ...

    def score(self, task: "Task", examples: list[dict[str, Any]], predictions: list[Any],
              language: str) -> dict[str, float]:
        """Metric name -> value (0-100) for the task's metric."""
        ...

    def records(self, task: "Task", examples: list[dict[str, Any]], predictions: list[Any],
                language: str) -> list[dict[str, Any]]:
        """One JSON-able record per example: id, gold, prediction and the score inputs
        (stopover.predictions writes them to `stages/<hash>/predictions/<task>/<lang>.jsonl`).
        """
        ...

    def score_records(self, task: "Task", records: list[dict[str, Any]], language: str) -> dict[str, float]:
        """The metrics of `score`, recomputed from saved records alone (no model)."""
        ...


_MODULES = {
    "classification": "stopover.formats.classification",
    "tagging": "stopover.formats.tagging",
    "span_qa": "stopover.formats.span_qa",
    "multiple_choice": "stopover.formats.multiple_choice",
    "retrieval": "stopover.formats.retrieval",
    "masked_lm": "stopover.formats.masked_lm",
}


def get_format(name: str) -> Format:
    if name not in _MODULES:
        raise TaskError(f"unknown format {name!r}; valid: {', '.join(_MODULES)}")
    try:
        module = importlib.import_module(_MODULES[name])
    except ModuleNotFoundError as err:
        if err.name == _MODULES[name]:
            raise TaskError(f"format {name!r} is not available in this version of stopover") from None
        raise
    return module.FORMAT
