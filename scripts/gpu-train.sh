#!/usr/bin/env bash
# Train the speech recipe (or --config FILE) on a GPU for a fixed wall-clock budget, from the pack
# scripts/gpu-pack.sh made; writes last.pt, best.pt, train.log and summary.json to OUT_DIR.
#   scripts/gpu-train.sh OUT_DIR [--seconds 500] [--resume CKPT] [--config FILE] [--precision bf16]
#                        [--pack .gpu/pack] [rt-train flags, e.g. --lr_g 5e-4]
# Runs where rt-enhance is not installed (see scripts/gpu-env.sh), and on a CPU (then in float32).
# Every option: python -m rt_enhance.training.gpu_train --help; the procedure: docs/gpu.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/scripts/gpu-env.sh"
gpu_start "scripts/gpu-train.sh OUT_DIR [options]" "$@"
out="$1"; shift
pack=()
[[ " $* " == *" --pack "* ]] || pack=(--pack "$ROOT/.gpu/pack")
exec "$PY" -m rt_enhance.training.gpu_train --out "$out" "${pack[@]}" "$@"
