#!/usr/bin/env bash
# GPU figures (throughput, memory, MFU; 2-process data-parallel when 2+ GPUs are visible) in at
# most 8 minutes. On a machine without a GPU the same script runs on the CPU as a smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."
timeout 480 python benchmarks/gpu_check.py "$@"
