"""CPU speed switches: bf16 autocast (training and inference) and frozen word embeddings.

This module owns two decisions the training loop makes before it starts (the
first one is also made for zero-shot evaluation, `EvalConfig.precision`):

- *Precision.* bf16 autocast is used only where the hardware computes in bf16
  natively. The rule (`bf16_supported`): on CPU, the processor must advertise
  native bf16 arithmetic (x86: the `avx512_bf16` or `amx_bf16` flag; ARM: the
  `bf16` feature / FEAT_BF16), PyTorch's CPU kernels must be built for at least
  AVX-512 on x86 (`torch.backends.cpu.get_cpu_capability()`; AMX builds report
  `AVX512` too), and a tiny autocast matmul must run and return a bf16 result
  close to the fp32 one. Without native support PyTorch emulates bf16 and runs
  slower than fp32, so "auto" then means fp32. On CUDA the rule is
  `torch.cuda.is_bf16_supported()` plus the same smoke test.
- *Frozen word embeddings.* For XLM-R-style encoders the 250k x H word
  embedding matrix is most of the parameters; its gradient and optimizer
  update dominate a CPU training step, and freezing it costs little transfer
  quality (the multilingual lexical alignment is kept intact).

Torch is imported inside the functions so that importing stopover stays cheap.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

from stopover.errors import ConfigError

PRECISIONS = ("auto", "bf16", "fp32")

# /proc/cpuinfo flags that mean native bf16 arithmetic.
_X86_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
_ARM_BF16_FLAGS = ("bf16",)


def cpu_flags() -> frozenset[str]:
    """Feature flags this CPU advertises (Linux /proc/cpuinfo; macOS sysctl for ARM bf16)."""
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() in ("flags", "features"):
                flags.update(value.split())
    elif platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True,
                                 text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out == "1":
            flags.add("bf16")
    return frozenset(flags)


def _hardware_bf16_cpu() -> bool:
    import torch

    flags = cpu_flags()
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i386", "i686"):
        # Without an AVX-512 (or AMX) kernel build PyTorch will not use the
        # bf16 instructions even when the CPU has them.
        capability = torch.backends.cpu.get_cpu_capability().upper()
        return any(f in flags for f in _X86_BF16_FLAGS) and ("AVX512" in capability or "AMX" in capability)
    if machine in ("arm64", "aarch64"):
        return any(f in flags for f in _ARM_BF16_FLAGS)
    return False


def _autocast_smoke_test(device: str) -> bool:
    """A tiny autocast matmul runs, yields bf16, and agrees with fp32."""
    import torch

    try:
        gen = torch.Generator().manual_seed(0)
        a = torch.randn(16, 32, generator=gen).to(device)
        b = torch.randn(32, 8, generator=gen).to(device)
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            out = a @ b
        return out.dtype == torch.bfloat16 and bool(torch.allclose(out.float(), a @ b, rtol=0.05, atol=0.2))
    except (RuntimeError, TypeError, ValueError):
        return False


@functools.lru_cache(maxsize=None)
def bf16_supported(device: str = "cpu") -> bool:
    """Whether bf16 autocast on `device` ("cpu" or "cuda") is native and works (see module docstring)."""
    import torch

    if device == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported()) and _autocast_smoke_test("cuda")
    if device != "cpu":
        return False
    return _hardware_bf16_cpu() and _autocast_smoke_test("cpu")


def resolve_precision(requested: str, device: str = "cpu") -> tuple[str, str | None]:
    """("bf16" | "fp32", note): the precision to train in, and why it differs from the request.

    "fp32" is always honoured. "bf16" and "auto" give bf16 where
    `bf16_supported(device)`; otherwise fp32 with a one-line note saying why.
    """
    if requested not in PRECISIONS:
        raise ConfigError(f"precision = {requested!r}: valid values are {', '.join(PRECISIONS)}")
    if requested == "fp32":
        return "fp32", None
    if bf16_supported(device):
        return "bf16", None
    why = (f"this {device.upper()} has no native bf16 arithmetic (CPU flags {'/'.join(_X86_BF16_FLAGS)} "
           f"or ARM bf16; emulated bf16 is slower than fp32)" if device == "cpu"
           else f"bf16 autocast is not supported on {device}")
    return "fp32", f"precision {requested}: {why}; training in fp32"


def autocast(precision: str, device_type: str = "cpu"):
    """A context that runs the model's forward in `precision` ("bf16": bf16 autocast; "fp32": nothing).

    `precision` is a resolved one (from `resolve_precision`), so "bf16" here is native.
    Outputs may come back in bf16: callers take argmax or call `.float()` before numpy.
    """
    import contextlib

    import torch

    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def freeze_word_embeddings(model) -> int:
    """Stop training the input word-embedding matrix; returns how many parameters were frozen.

    Positions, token types and the embedding LayerNorm stay trainable: they are
    small and adapt the encoder to the task at almost no cost.
    """
    weight = model.get_input_embeddings().weight
    weight.requires_grad_(False)
    return weight.numel()
