#!/usr/bin/env bash
# Reproduce the default models, `speech` and `speech-monitor`: build the corpus, train, export into
# the package. Each run takes one core; on a 2-core machine run them at the same time by hand.
#   scripts/train-default.sh [CORPUS_DIR] [RUNS_DIR] [extra rt-train flags, e.g. --continue or -e 600]
# Resumable: run it again with --continue to go on from RUNS_DIR/speech/last.pt. The shipped weights came
# from a chain of warm starts (docs/models.md); from scratch the result will differ.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
rt_train_setup "$@"
# speech: the second generation's recipe (scripts/train-speech.sh: ERB bands, TTS and real voices), from scratch
"$ROOT/scripts/train-speech.sh" "$corpus" "$runs" --name speech "${TRAIN_ARGS[@]}"
"$VENV/bin/rt-export" "$runs/speech/best.pt" --out "$ROOT/realtime/models/speech.onnx" --name speech --hop 240
# speech-monitor: the first generation's recipe (its successor trains with scripts/train-speech.sh --monitor)
source "$(dirname "$0")/speech-pipeline.sh"
mix="$(speech_mix "$corpus")"
"$VENV/bin/rt-train" --config "$ROOT/training/configs/speech-monitor.toml" --runs "$runs" --data_root "$mix" \
    --preprocessing "$(speech_pipeline "$corpus" 0.15)" "${TRAIN_ARGS[@]}"
"$VENV/bin/rt-export" "$runs/speech-monitor/best.pt" --out "$ROOT/realtime/models/speech-monitor.onnx" \
    --name speech-monitor --hop 96
