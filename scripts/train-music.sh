#!/usr/bin/env bash
# Reproduce the `music` model: build the corpus, train, export into the package.
#   scripts/train-music.sh [CORPUS_DIR] [RUNS_DIR] [extra rt-train flags, e.g. --continue or -e 600]
set -euo pipefail
source "$(dirname "$0")/setup.sh"
rt_train_setup "$@"
"$VENV/bin/rt-data" build --out "$corpus" --hours 1.2
pipeline="identity 0.1,maybe 0.85 bandlimit 4500 14000,maybe 0.3 noise synth 15 40,maybe 0.3 noise $corpus/noise/train 15 35,gain -12 3"
"$VENV/bin/rt-train" --config "$ROOT/training/configs/music.toml" --runs "$runs" \
    --data_root "$corpus/music/train" --preprocessing "$pipeline" "${TRAIN_ARGS[@]}"
"$VENV/bin/rt-export" "$runs/music/best.pt" --out "$ROOT/realtime/models/music.onnx" --name music --hop 240 --task bandwidth_extension
