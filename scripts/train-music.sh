#!/usr/bin/env bash
# Reproduce the `music` model (issue 17): the restoration network (`spec-music`, training/configs/speech-restore.toml)
# on full-band voices, every full-band real music excerpt and the FluidSynth renders, from the committed state
# of the stage before it (training/checkpoints/music-restore-r.pt; the stages behind that one: docs/models.md), the
# mean of its last 8 epochs exported into the package.
#   scripts/train-music.sh [CORPUS_DIR] [RUNS_DIR] [extra rt-train flags, e.g. --continue or -e 40]
set -euo pipefail
source "$(dirname "$0")/setup.sh"
rt_train_setup "$@"
"$VENV/bin/rt-data" build --out "$corpus" --hours 3
source "$(dirname "$0")/speech-pipeline.sh"
train="$(PY="$VENV/bin/python" restore_music_folders "$corpus" all)"
rt_default_init "$ROOT/training/checkpoints/music-restore-r.pt"
"$VENV/bin/rt-train" --config "$ROOT/training/configs/speech-restore.toml" --runs "$runs" --name music \
    --data_root "$train" --dataset_args "$(speech_restore_dataset_args "$corpus")" --preprocessing "$(restore_music_pipeline)" \
    --lr_g 3e-4 --average 8 -e 36 "${init[@]}" "${TRAIN_ARGS[@]}"
"$VENV/bin/rt-export" "$runs/music/average.pt" --out "$ROOT/realtime/models/music.onnx" --name music --hop 240 --task bandwidth_extension
