"""LoRA adapters on the encoder (through the peft library), per training stage.

Owns the `peft:` settings of a stage (`intermediate.peft`, `target.peft`) and the three
things a stage does with them: wrap a task model so only the LoRA matrices and the task
head train (`apply_lora`), count what trains (`trainable_parameters`), and hand the encoder
on to the next stage (`encoder_for_next_stage`):

- `carry: merge` (default): the adapter is merged into the encoder's weights, so the next
  stage starts from a plain encoder (and may add an adapter of its own);
- `carry: adapter`: the encoder is saved unmerged with its adapter beside it
  (`<encoder>/adapter/`: `adapter.safetensors`, the LoRA tensors, and `adapter.json`, the
  spec that trained them), and the next stage loads base + adapter and keeps training the
  same adapter (`with_peft`) when its own `peft:` has the same shape (r, alpha,
  target_modules); a stage with another spec, or none, folds the carried adapter into the
  encoder's weights first (`fold_adapter`), so the parent's training is never lost.

The stages (stopover.pipeline, stopover.train.fit, stopover.models.save_encoder/save_model)
call `with_peft` when they build a task model and `for_saving` when they save its encoder;
a target stage's final model is always saved and evaluated merged (a plain transformers
model). A mixed multi-task intermediate stage does not support `peft:` (a ConfigError at
validation, see stopover.config.RunConfig).

Heads are never carried across stages (as without adapters), so the head always trains in
full. LoRA changes what is trained: results with and without it are different experiments,
and the settings are part of the stage identity (they live in the stage's train config).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from stopover.errors import ConfigError

if TYPE_CHECKING:
    import torch

CARRY = ("merge", "adapter")
ADAPTER_FILE = "adapter.safetensors"
SPEC_FILE = "adapter.json"  # the LoraSpec that trained the carried adapter
ADAPTER_DIR = "adapter"  # inside a saved encoder directory (carry: adapter)
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


def save_encoder_adapter(model: Any, out_dir: Any, spec: LoraSpec | None = None,
                         state: "dict[str, torch.Tensor] | None" = None) -> None:
    """Write the encoder's LoRA tensors to `<out_dir>/adapter.safetensors` (no code, no pickle),
    and `spec` (the settings that trained them) to `<out_dir>/adapter.json` when given.
    `state`: the tensors, taken before the model was unloaded (`for_saving`).
    """
    import json
    from dataclasses import asdict

    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(encoder_adapter_state(model) if state is None else state, str(out / ADAPTER_FILE))
    if spec is not None:
        (out / SPEC_FILE).write_text(json.dumps(asdict(spec), indent=1, sort_keys=True), encoding="utf-8")


def load_encoder_adapter(model: Any, adapter_dir: Any) -> None:
    """Load a carried encoder adapter into a LoRA-wrapped model (same spec) in place."""
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


def is_wrapped(model: Any) -> bool:
    """Whether `model` carries LoRA layers (a peft model)."""
    return hasattr(model, "merge_and_unload")


def carried_adapter(encoder_path: Any) -> "tuple[Path, LoraSpec] | None":
    """(adapter directory, its spec) of an encoder saved with `carry: adapter`, or None.

    A Hub id or a plain encoder directory has none.
    """
    import json

    folder = Path(str(encoder_path)) / ADAPTER_DIR
    if not (folder / ADAPTER_FILE).is_file():
        return None
    try:
        raw = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
        spec = LoraSpec(**{**raw, "target_modules": tuple(raw["target_modules"])})
        spec.validate(f"{folder / SPEC_FILE}")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{folder / SPEC_FILE}: unreadable adapter spec ({type(err).__name__}); delete the "
                          "stage directory that holds it and run again") from None
    return folder, spec


def continues(carried: LoraSpec, own: LoraSpec | None) -> bool:
    """Whether a stage with `own` keeps training a carried adapter trained with `carried`:
    the same shape and scale (r, alpha, target_modules); dropout and carry may differ.
    """
    return own is not None and (own.r, own.alpha, tuple(own.target_modules)) == (
        carried.r, carried.alpha, tuple(carried.target_modules))


_LORA_A = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_A(?:\.[^.]+)?\.weight$")


def fold_adapter(model: "torch.nn.Module", adapter_dir: Any, spec: LoraSpec) -> "torch.nn.Module":
    """Add a carried adapter's update, W += (alpha / r) B A, to the weights of `model` in place.

    `model` is a plain task model (with its encoder under `base_model_prefix`) or a bare
    encoder (retrieval evaluates one); the result equals peft's `merge_and_unload`.
    """
    import torch
    from safetensors.torch import load_file

    path = Path(str(adapter_dir)) / ADAPTER_FILE
    state = load_file(str(path))
    prefix = getattr(model, "base_model_prefix", "")
    encoder = getattr(model, prefix) if prefix and hasattr(model, prefix) else model
    scale = spec.alpha / spec.r
    folded = 0
    with torch.no_grad():
        for key, a in state.items():
            found = _LORA_A.match(key)
            if found is None:
                continue
            b = state.get(key.replace(".lora_A", ".lora_B"))
            module_path = found.group("module")
            head, _, rest = module_path.partition(".")
            try:
                target = encoder.get_submodule(rest if head == prefix or not prefix else module_path)
            except AttributeError:
                target = None
            if b is None or not isinstance(target, torch.nn.Linear):
                raise ConfigError(f"{path}: adapter tensor {key} does not fit {type(model).__name__}; delete "
                                  "the stage directory that holds it and run again")
            update = (b.to(torch.float32) @ a.to(torch.float32)) * scale
            target.weight += update.to(target.weight.dtype).to(target.weight.device)
            folded += 1
    if not folded:
        raise ConfigError(f"{path}: no LoRA tensors to fold; delete the stage directory that holds it and run again")
    return model


def with_peft(model: "torch.nn.Module", spec: LoraSpec | None,
              encoder_path: Any) -> "tuple[torch.nn.Module, str | None]":
    """The model a stage trains, built on `encoder_path`, and what became of a carried adapter.

    Without a carried adapter: `model` with LoRA (`spec`) or as it is (no spec). With one
    (the parent saved `carry: adapter`): "continued" when `spec` has its shape (the stage
    trains the same adapter on), else "folded": the adapter is merged into the encoder's
    weights, then the stage's own spec (if any) is applied afresh.
    """
    carried = carried_adapter(encoder_path)
    fate = None
    if carried is not None:
        folder, parent_spec = carried
        if spec is not None and continues(parent_spec, spec):
            wrapped = apply_lora(model, spec)
            load_encoder_adapter(wrapped, folder)
            return wrapped, "continued"
        fold_adapter(model, folder, parent_spec)
        fate = "folded"
    return (apply_lora(model, spec) if spec is not None else model), fate


def for_saving(model: Any, spec: LoraSpec | None) -> "tuple[torch.nn.Module, dict[str, torch.Tensor] | None]":
    """(plain model whose encoder a stage saves, the adapter tensors to save beside it or None).

    A plain model passes through. A LoRA model with `carry: merge` (or no spec) is merged;
    with `carry: adapter` its adapter tensors are taken and LoRA is removed unmerged, leaving
    the encoder weights the stage started from (LoRA froze them). `model` is consumed.
    """
    if not is_wrapped(model):
        return model, None
    if spec is None or spec.carry == "merge":
        return merged(model), None
    state = encoder_adapter_state(model)
    return model.unload(), state
