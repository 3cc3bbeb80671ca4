#!/usr/bin/env bash
# The speech-quality campaign (issue 16): the `speech` model on ERB bands, trained on TTS and real
# recorded voices (docs/corpus.md) against real and synthetic noise; validation on held-out real
# speakers. Resumable: run it again with --continue to go on from RUNS_DIR/speech-erb/last.pt, or
# --init_from a committed checkpoint (training/checkpoints/speech-erb.pt) to start a new stage.
#   scripts/train-speech.sh [--monitor] [CORPUS_DIR] [RUNS_DIR] [extra rt-train flags]
# --monitor trains speech-monitor's recipe (training/configs/speech-erb-monitor.toml) instead.
set -euo pipefail
config=speech-erb
if [ "${1:-}" = "--monitor" ]; then config=speech-erb-monitor; shift; fi
source "$(dirname "$0")/setup.sh"
rt_setup "train,corpus,dev" espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
    fluidsynth fluid-soundfont-gm wamerican
corpus="$(realpath -m "${1:-data/corpus}")"
runs="$(realpath -m "${2:-runs}")"
shift 2 || shift $# || true
"$VENV/bin/rt-data" build --out "$corpus" --hours 3
mix="$corpus/mix-train"      # clean material: TTS and real voices, and music (so music is kept)
noise="$corpus/noise-train"  # synthetic textures, TTS babble, real noises, babble of real voices
mkdir -p "$mix" "$noise"
ln -sfn "$corpus/speech/train" "$mix/speech"
ln -sfn "$corpus/voices/train" "$mix/voices"
ln -sfn "$corpus/music/train" "$mix/music"
ln -sfn "$corpus/noise/train" "$noise/synthetic"
ln -sfn "$corpus/realnoise/train" "$noise/recorded"
pipeline="identity 0.1,maybe 0.3 rir $corpus/rir/train 0 20,maybe 0.9 noise $noise -5 20,maybe 0.3 noise synth 0 30,maybe 0.3 bandlimit 3500 16000,gain -18 6"
"$VENV/bin/rt-train" --config "$ROOT/training/configs/$config.toml" --runs "$runs" --data_root "$mix" \
    --dataset_args "val_dir=$corpus/voices/val" --preprocessing "$pipeline" "$@"
