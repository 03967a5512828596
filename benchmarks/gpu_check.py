"""GPU figures in one short run: throughput, memory and model-FLOPs utilisation (MFU).

Trains and runs inference with the tiny random XLM-R and the embedded encoder
(multilingual-e5-small, XLM-R architecture) on the first CUDA device in bf16 autocast
(fp32 where bf16 is not native), and, when more than one device is visible, repeats the
tiny model's training as a 2-process data-parallel run (torchrun, NCCL). Without a GPU it
runs the same code on the CPU as a smoke test (MFU then reads n/a: no peak is known).

MFU = achieved model FLOPs / the device's peak dense bf16 FLOPs. Model FLOPs per token
follow Kaplan et al. / PaLM's accounting: 6 x (non-embedding parameters) for a training
step (forward + backward) plus the attention term 12 x layers x hidden x sequence length;
a third of that for inference. Peaks are the vendors' dense bf16 figures (no sparsity).

    python benchmarks/gpu_check.py [--steps 30] [--seq 128] [--batch 32] [--models tiny,embedded]
    bash benchmarks/gpu_check.sh        # the same with a time limit (8 minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Dense bf16 peak FLOP/s by device-name substring (vendor data sheets, SXM parts).
PEAK_BF16 = {"H200": 989.4e12, "H100": 989.4e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12,
             "A10G": 70e12, "A10": 125e12, "V100": 125e12, "T4": 65e12, "RTX 4090": 165e12}


def peak_flops(name: str) -> float | None:
    for key, value in PEAK_BF16.items():
        if key in name:
            return value
    return None


def flops_per_token(model, seq: int, *, train: bool) -> float:
    cfg = model.config
    embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    params = sum(p.numel() for p in model.parameters()) - embedding
    per_token = 6 * params + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq
    return per_token if train else per_token / 3


def model_dir(kind: str, tmp: Path) -> Path:
    if kind == "embedded":
        from stopover.embedded import materialize

        return materialize()
    from stopover.models import build_tiny_model

    corpus = [f"sentence number {i} with some words {i % 7} and more {i % 13}" for i in range(400)]
    return build_tiny_model(tmp / "tiny", corpus, vocab_size=500, hidden=128, layers=4, heads=4)


def measure(kind: str, args: argparse.Namespace, tmp: Path) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification

    from stopover.precision import resolve_precision

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision, _ = resolve_precision("auto", device.type)
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir(kind, tmp)), num_labels=3).to(device)
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    batch = args.batch if device.type == "cuda" else max(2, args.batch // 4)
    ids = torch.randint(5, vocab, (batch, args.seq), generator=gen).to(device)
    labels = torch.randint(0, 3, (batch,), generator=gen).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    steps = args.steps if device.type == "cuda" else max(3, args.steps // 10)
    model.train()
    for i in range(steps + 3):  # 3 warm-up steps
        if i == 3:
            sync()
            start = time.perf_counter()
        with autocast:
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync()
    train_s = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        for i in range(steps + 3):
            if i == 3:
                sync()
                start = time.perf_counter()
            with autocast:
                model(input_ids=ids)
    sync()
    infer_s = time.perf_counter() - start
    tokens = steps * batch * args.seq
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_flops(name)
    train_flops = flops_per_token(model, args.seq, train=True) * tokens / train_s
    infer_flops = flops_per_token(model, args.seq, train=False) * tokens / infer_s
    memory = (torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None)
    return {"model": kind, "device": name, "precision": precision, "batch": batch, "seq": args.seq,
            "train_examples_per_s": steps * batch / train_s, "infer_examples_per_s": steps * batch / infer_s,
            "train_tflops": train_flops / 1e12, "infer_tflops": infer_flops / 1e12,
            "train_mfu": train_flops / peak if peak else None, "infer_mfu": infer_flops / peak if peak else None,
            "peak_memory_gib": memory}


DDP_SCRIPT = r'''
import os, sys, time, json, torch, torch.distributed as dist
sys.path.insert(0, os.environ["STOPOVER_ROOT"])
from transformers import AutoModelForSequenceClassification
dist.init_process_group("nccl")
rank = dist.get_rank(); torch.cuda.set_device(rank)
model = AutoModelForSequenceClassification.from_pretrained(os.environ["MODEL_DIR"], num_labels=3).cuda()
model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank])
opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
g = torch.Generator().manual_seed(rank)
batch, seq, steps = int(os.environ["BATCH"]), int(os.environ["SEQ"]), int(os.environ["STEPS"])
ids = torch.randint(5, model.module.config.vocab_size, (batch, seq), generator=g).cuda()
labels = torch.randint(0, 3, (batch,), generator=g).cuda()
for i in range(steps + 3):
    if i == 3:
        torch.cuda.synchronize(); start = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=labels).loss
    loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
torch.cuda.synchronize(); elapsed = time.perf_counter() - start
if rank == 0:
    print(json.dumps({"processes": dist.get_world_size(),
                      "train_examples_per_s": steps * batch * dist.get_world_size() / elapsed}))
dist.destroy_process_group()
'''


def ddp_run(args: argparse.Namespace, tmp: Path) -> dict | None:
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return None
    script = tmp / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = dict(os.environ, STOPOVER_ROOT=str(ROOT), MODEL_DIR=str(model_dir("tiny", tmp)), BATCH=str(args.batch),
               SEQ=str(args.seq), STEPS=str(args.steps))
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script)],
                         env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr or out.stdout).strip().splitlines()[-1:]}
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--models", default="tiny,embedded")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.models.split(","):
            rows.append(measure(kind.strip(), args, Path(tmp)))
        ddp = ddp_run(args, Path(tmp))

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    print(f"device: {rows[0]['device']}  precision: {rows[0]['precision']}  seq {args.seq}")
    print(f"{'model':9} {'batch':>5} {'train ex/s':>11} {'TFLOP/s':>8} {'MFU':>6} "
          f"{'infer ex/s':>11} {'TFLOP/s':>8} {'MFU':>6} {'peak GiB':>8}")
    for r in rows:
        mem = "n/a" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.2f}"
        print(f"{r['model']:9} {r['batch']:>5} {r['train_examples_per_s']:>11.1f} {r['train_tflops']:>8.2f} "
              f"{pct(r['train_mfu']):>6} {r['infer_examples_per_s']:>11.1f} {r['infer_tflops']:>8.2f} "
              f"{pct(r['infer_mfu']):>6} {mem:>8}")
    if ddp is None:
        print("data-parallel: skipped (fewer than 2 CUDA devices visible)")
    else:
        print(f"data-parallel (tiny, 2 processes): {json.dumps(ddp)}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "ddp": ddp}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
