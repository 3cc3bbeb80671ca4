#!/usr/bin/env bash
# Reproduce the default models, `speech` and `speech-monitor`: build the corpus, train, export into
# the package. Each run takes one core; on a 2-core machine run them at the same time by hand.
#   scripts/train-default.sh [CORPUS_DIR] [RUNS_DIR] [extra rt-train flags, e.g. --continue or -e 600]
# Resumable: run it again with --continue to go on from RUNS_DIR/speech/last.pt. The shipped weights came
# from a chain of warm starts (docs/models.md); from scratch the result will differ.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
rt_train_setup "$@"
# speech: the second generation's recipe (scripts/train-speech.sh: ERB bands, TTS and real voices), from scratch,
# then the voices-only lineage from it, and the two blended 85 / 15 as the shipped speech is (docs/training.md)
"$ROOT/scripts/train-speech.sh" "$corpus" "$runs" --name speech "${TRAIN_ARGS[@]}"
"$ROOT/scripts/train-speech.sh" --voices "$corpus" "$runs" --name speech-voices --init_from "$runs/speech/best.pt" "${TRAIN_ARGS[@]}"
"$VENV/bin/python" -m rt_enhance.training.average "$runs/speech-blend.pt" "$runs/speech-voices/best.pt" "$runs/speech/best.pt" \
    --weights 15,85
"$VENV/bin/rt-export" "$runs/speech-blend.pt" --out "$ROOT/realtime/models/speech.onnx" --name speech --hop 240
# speech-monitor: the same recipe and network at a 2.5 ms hop (scripts/train-speech.sh --monitor), from the blend
"$ROOT/scripts/train-speech.sh" --monitor "$corpus" "$runs" --name speech-monitor --init_from "$runs/speech-blend.pt" "${TRAIN_ARGS[@]}"
"$VENV/bin/rt-export" "$runs/speech-monitor/best.pt" --out "$ROOT/realtime/models/speech-monitor.onnx" \
    --name speech-monitor --hop 120
