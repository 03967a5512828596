"""Which device models run on: the GPU when there is one, else the CPU.

`$STOPOVER_DEVICE` (e.g. `cpu`, `cuda:1`) overrides the choice. Models are
moved there when built; batches follow the model's own device, so the
training loop and inference never assume the CPU.
"""

from __future__ import annotations

import os
from typing import Any


def default_device() -> str:
    env = os.environ.get("STOPOVER_DEVICE")
    if env:
        return env
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_device(model: Any) -> Any:
    import torch

    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def to_device(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    """Tensors of a batch onto `device`; other values (e.g. a task name) unchanged."""
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
