#!/usr/bin/env bash
# Reproduce the default models, `speech` and `speech-monitor`: build the corpus, train, export into
# the package. Each run takes one core; on a 2-core machine run them at the same time by hand.
#   scripts/train-default.sh [CORPUS_DIR] [RUNS_DIR] [extra rt-train flags, e.g. --continue or -e 600]
# Resumable: run it again with --continue to go on from RUNS_DIR/speech/last.pt. The shipped weights came
# from a chain of warm starts (docs/models.md); from scratch the result will differ.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
rt_train_setup "$@"
# speech: the second generation's recipe with the deep filter (scripts/train-speech.sh --df: ERB bands, TTS and real
# voices, music kept), from scratch, then the voices-and-music lineage from it, and the two joined as the shipped
# speech is: the first's weights with the GRU's input projection moved 70 % to the second's (docs/training.md)
"$ROOT/scripts/train-speech.sh" --df "$corpus" "$runs" --name speech "${TRAIN_ARGS[@]}"
"$ROOT/scripts/train-speech.sh" --df --voices-music "$corpus" "$runs" --name speech-voices-music \
    --init_from "$runs/speech/best.pt" "${TRAIN_ARGS[@]}"
"$VENV/bin/python" -m rt_enhance.training.average "$runs/speech-blend.pt" "$runs/speech-voices-music/best.pt" \
    "$runs/speech/best.pt" --weights 0,1 --layer gru_in.=7,3
"$VENV/bin/rt-export" "$runs/speech-blend.pt" --out "$ROOT/realtime/models/speech.onnx" --name speech --hop 240
# speech-monitor: the same network and weights at a 2.5 ms hop (frames of 480 samples, asymmetric windows)
"$VENV/bin/rt-export" "$runs/speech-blend.pt" --vary 'hop=120 frame=480' --hop 120 \
    --out "$ROOT/realtime/models/speech-monitor.onnx" --name speech-monitor
