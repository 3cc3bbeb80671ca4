#!/usr/bin/env bash
# The `speech-restore` model (issue 17): bandwidth extension of voices, from the committed music checkpoint,
# on the corpus's full-band voices (training/configs/speech-restore.toml), then exported into the package.
#   scripts/train-speech-restore.sh [CORPUS_DIR] [RUNS_DIR] [extra rt-train flags, e.g. --continue or -e 30]
set -euo pipefail
source "$(dirname "$0")/setup.sh"
rt_train_setup "$@"
"$VENV/bin/rt-data" build --out "$corpus" --hours 3
source "$(dirname "$0")/speech-pipeline.sh"
train="$(PY="$VENV/bin/python" speech_restore_folders "$corpus")"
rt_default_init "$ROOT/training/checkpoints/music-realmix-last.pt"
"$VENV/bin/rt-train" --config "$ROOT/training/configs/speech-restore.toml" --runs "$runs" \
    --data_root "$train" --dataset_args "$(speech_restore_dataset_args "$corpus")" --preprocessing "$(speech_restore_pipeline)" \
    "${init[@]}" "${TRAIN_ARGS[@]}"
"$VENV/bin/rt-export" "$runs/speech-restore/best.pt" --out "$ROOT/realtime/models/speech-restore.onnx" --name speech-restore \
    --hop 240 --task bandwidth_extension
