#!/usr/bin/env bash
# Reproduce the default models, `speech` and `speech-monitor`: build the corpus, train, export into
# the package. Each run takes one core; on a 2-core machine run them at the same time by hand.
#   scripts/train-default.sh [CORPUS_DIR] [RUNS_DIR] [extra rt-train flags, e.g. --continue or -e 600]
# Resumable: run it again with --continue to go on from RUNS_DIR/speech/last.pt.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
rt_setup "train,corpus,dev" espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
    fluidsynth fluid-soundfont-gm wamerican
corpus="$(realpath -m "${1:-data/corpus}")"
runs="$(realpath -m "${2:-runs}")"
shift 2 || shift $# || true
"$VENV/bin/rt-data" build --out "$corpus" --hours 1.2
source "$(dirname "$0")/speech-pipeline.sh"
mix="$(speech_mix "$corpus")"
pipeline() { speech_pipeline "$corpus" "$1"; }
"$VENV/bin/rt-train" --config "$ROOT/training/configs/speech-spectral.toml" --runs "$runs" --data_root "$mix" \
    --preprocessing "$(pipeline 0.3)" "$@"
"$VENV/bin/rt-export" "$runs/speech/best.pt" --out "$ROOT/realtime/models/speech.onnx" --name speech --hop 240
"$VENV/bin/rt-train" --config "$ROOT/training/configs/speech-monitor.toml" --runs "$runs" --data_root "$mix" \
    --preprocessing "$(pipeline 0.15)" "$@"
"$VENV/bin/rt-export" "$runs/speech-monitor/best.pt" --out "$ROOT/realtime/models/speech-monitor.onnx" \
    --name speech-monitor --hop 96
