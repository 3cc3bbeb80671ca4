#!/usr/bin/env bash
# The `speech-restore` model (issue 17): bandwidth extension of voices, from the committed music checkpoint,
# on the corpus's full-band voices (training/configs/speech-restore.toml), then exported into the package.
#   scripts/train-speech-restore.sh [CORPUS_DIR] [RUNS_DIR] [extra rt-train flags, e.g. --continue or -e 30]
set -euo pipefail
source "$(dirname "$0")/setup.sh"
rt_train_setup "$@"
"$VENV/bin/rt-data" build --out "$corpus" --hours 3
"$VENV/bin/rt-data" wide "$corpus" --into "$corpus/restore/train" --split train --kinds voices,speech
"$VENV/bin/rt-data" wide "$corpus" --into "$corpus/restore/val" --split val --kinds voices
pipeline="identity 0.1,maybe 0.9 bandlimit 3500 12000,maybe 0.3 noise synth 20 40,gain -12 3"
init=()
case " ${TRAIN_ARGS[*]} " in *" --continue "* | *" --init_from "*) ;; *) init=(--init_from "$ROOT/training/checkpoints/music-realmix-last.pt") ;; esac
"$VENV/bin/rt-train" --config "$ROOT/training/configs/speech-restore.toml" --runs "$runs" \
    --data_root "$corpus/restore/train" --dataset_args "val_dir=$corpus/restore/val" --preprocessing "$pipeline" \
    "${init[@]}" "${TRAIN_ARGS[@]}"
"$VENV/bin/rt-export" "$runs/speech-restore/best.pt" --out "$ROOT/realtime/models/speech-restore.onnx" --name speech-restore \
    --hop 240 --task bandwidth_extension
