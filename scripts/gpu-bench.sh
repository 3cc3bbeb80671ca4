#!/usr/bin/env bash
# Latency of the shipped models and an untrained `base` on the GPU (torch twins, with and without I/O
# binding and CUDA graphs) beside onnxruntime on the CPU, 1/2/8 channels, 2/5/10 ms hops, in one run:
# OUT_DIR/gpu-bench.json (rt-bench JSON) and OUT_DIR/gpu-bench.md. Without CUDA the GPU rows say so
# and the CPU rows are measured all the same.
#   scripts/gpu-bench.sh OUT_DIR [rt-bench gpu flags, e.g. --budget 120 --channels 1,8]
# Runs where rt-enhance is not installed (see scripts/gpu-env.sh). How to read it: docs/gpu.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/scripts/gpu-env.sh"
gpu_start "scripts/gpu-bench.sh OUT_DIR [rt-bench gpu flags]" "$@"
out="$1"; shift
cd "$ROOT"
exec "$PY" -m rt_enhance.benchmarks.cli gpu --out "$out" -v "$@"
