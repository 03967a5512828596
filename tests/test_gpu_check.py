"""benchmarks/gpu_check.py runs on the CPU as a smoke test (its real figures need a GPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_smoke_on_cpu(tmp_path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--models", "tiny",
                           "--steps", "10", "--seq", "32", "--batch", "8", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, env={"STOPOVER_DEVICE": "cpu",
                                                                             "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["model"] == "tiny" and rows[0]["train_examples_per_s"] > 0
    assert rows[0]["train_mfu"] is None  # no peak is known for a CPU
    assert "data-parallel: skipped" in proc.stdout


def test_flops_accounting() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check

    class Cfg:
        num_hidden_layers, hidden_size = 2, 4

    class Model:
        config = Cfg()

        def named_parameters(self):
            import torch

            return [("embeddings.word", torch.zeros(10, 4)), ("layer.w", torch.zeros(5, 4))]

        def parameters(self):
            return [p for _, p in self.named_parameters()]

    # 6 x 20 non-embedding parameters + 12 x 2 layers x 4 hidden x 8 positions
    assert gpu_check.flops_per_token(Model(), 8, train=True) == 6 * 20 + 12 * 2 * 4 * 8
    assert gpu_check.peak_flops("NVIDIA H200") == 989.4e12 and gpu_check.peak_flops("cpu") is None
