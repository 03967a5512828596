"""LoRA adapters on the encoder (through the peft library), per training stage.

Owns the `peft:` settings of a stage (`intermediate.peft`, `target.peft`) and the three
things a stage does with them: wrap a task model so only the LoRA matrices and the task
head train (`apply_lora`), count what trains (`trainable_parameters`), and hand the encoder
on to the next stage (`encoder_for_next_stage`):

- `carry: merge` (default): the adapter is merged into the encoder's weights, so the next
  stage starts from a plain encoder (and may add an adapter of its own);
- `carry: adapter`: the encoder is saved unmerged with its adapter beside it
  (`adapter/` in peft's format), and the next stage loads base + adapter and keeps training
  the same adapter.

Heads are never carried across stages (as without adapters), so the head always trains in
full. LoRA changes what is trained: results with and without it are different experiments,
and the settings are part of the stage identity (they live in the stage's train config).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from stopover.errors import ConfigError

if TYPE_CHECKING:
    import torch

CARRY = ("merge", "adapter")
ADAPTER_FILE = "adapter.safetensors"
# XLM-R / BERT attention projections: the modules LoRA adapts by default (Hu et al. 2021
# adapt the query and value projections).
DEFAULT_TARGETS = ("query", "value")


@dataclass(frozen=True)
class LoraSpec:
    """`peft:` of a training stage."""

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.1
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    carry: str = "merge"  # merge | adapter: how the encoder adapter reaches the next stage

    def validate(self, where: str = "peft") -> None:
        if not isinstance(self.r, int) or self.r < 1:
            raise ConfigError(f"{where}.r = {self.r!r}: must be an integer >= 1")
        if not self.alpha > 0:
            raise ConfigError(f"{where}.alpha = {self.alpha!r}: must be > 0")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{where}.dropout = {self.dropout!r}: must be in [0, 1)")
        if not self.target_modules:
            raise ConfigError(f"{where}.target_modules is empty: name the modules to adapt, e.g. [query, value]")
        if self.carry not in CARRY:
            raise ConfigError(f"{where}.carry = {self.carry!r}: use one of {', '.join(CARRY)}")


def _encoder_prefix(model: "torch.nn.Module") -> str:
    prefix = getattr(model, "base_model_prefix", "")
    if not prefix or not hasattr(model, prefix):
        raise ConfigError(f"peft: {type(model).__name__} has no encoder attribute (base_model_prefix); "
                          "LoRA wraps transformers task models")
    return prefix


def head_modules(model: "torch.nn.Module") -> list[str]:
    """Top-level modules with weights that are not the encoder: the task head(s).

    Weightless children (a head's `dropout`) are left out: peft matches these names as
    suffixes anywhere in the model, and `dropout` would also hit LoRA's own `lora_dropout`.
    """
    prefix = _encoder_prefix(model)
    return [name for name, child in model.named_children()
            if name != prefix and any(True for _ in child.parameters())]


def apply_lora(model: "torch.nn.Module", spec: LoraSpec) -> "torch.nn.Module":
    """`model` with LoRA on its encoder: only the LoRA matrices and the head stay trainable."""
    spec.validate()
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:
        raise ConfigError("peft: LoRA needs the peft package: pip install 'stopover[peft]'") from err
    prefix = _encoder_prefix(model)
    names = {name.rsplit(".", 1)[-1] for name, _ in getattr(model, prefix).named_modules()}
    missing = [t for t in spec.target_modules if t not in names]
    if missing:
        raise ConfigError(f"peft.target_modules: {', '.join(missing)} not found in the encoder "
                          f"({type(model).__name__}); e.g. query, key, value, dense")
    # peft annotates lora_alpha as int but only divides it by r: a float alpha is used as given
    config = LoraConfig(r=spec.r, lora_alpha=cast(int, spec.alpha), lora_dropout=spec.dropout,
                        # one regex (a string, not a list: peft reads a list as name suffixes),
                        # so that only the encoder's modules are adapted, never a head's `dense`
                        target_modules=rf"{prefix}\..*\.({'|'.join(spec.target_modules)})",
                        modules_to_save=head_modules(model) or None)
    return get_peft_model(model, config)


def trainable_parameters(model: "torch.nn.Module") -> tuple[int, int]:
    """(trainable, total) parameter counts, tied tensors counted once."""
    trainable = total = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total


def merged(model: Any) -> "torch.nn.Module":
    """The plain transformers model with every LoRA update folded into its weights."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def encoder_adapter_state(model: Any) -> dict[str, "torch.Tensor"]:
    """The encoder's LoRA tensors (head weights left out: heads never carry across stages)."""
    prefix = _encoder_prefix(model.get_base_model())
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
            if "lora_" in k and f".{prefix}." in f".{k}"}


def save_encoder_adapter(model: Any, out_dir: Any) -> None:
    """Write the encoder's LoRA tensors to `<out_dir>/adapter.safetensors` (no code, no pickle)."""
    from pathlib import Path

    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(encoder_adapter_state(model), str(out / ADAPTER_FILE))


def load_encoder_adapter(model: Any, adapter_dir: Any) -> None:
    """Load a carried encoder adapter into a LoRA-wrapped model (same spec) in place."""
    from pathlib import Path

    from safetensors.torch import load_file

    path = Path(adapter_dir) / ADAPTER_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: no encoder adapter to carry (the parent stage ran without "
                          "peft.carry: adapter); delete this stage's directory to rebuild it")
    state = load_file(str(path))
    expected = set(encoder_adapter_state(model))
    if set(state) != expected:
        odd = sorted(set(state) ^ expected)
        raise ConfigError(f"{path}: {len(odd)} adapter tensor(s) do not fit this model (e.g. {odd[0]}); "
                          "the stages' peft settings (r, target_modules) differ")
    model.load_state_dict(state, strict=False)


def encoder_for_next_stage(model: Any, spec: LoraSpec | None) -> "torch.nn.Module | None":
    """The task model whose encoder the stage saves, or None when the encoder is unchanged.

    `carry: merge`: the model with LoRA folded in. `carry: adapter`: None, because LoRA froze
    every encoder weight, so the stage's encoder is its parent's, byte for byte; the stage
    saves the parent's encoder and `save_encoder_adapter(model, dir)` beside it.
    """
    if spec is None or not hasattr(model, "merge_and_unload"):
        return model
    if spec.carry == "merge":
        return merged(model)
    return None
