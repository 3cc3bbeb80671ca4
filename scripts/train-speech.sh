#!/usr/bin/env bash
# The speech-quality campaign (issue 16): the `speech` model on ERB bands, trained on TTS and real
# recorded voices (docs/corpus.md) against real and synthetic noise; validation on held-out real
# speakers. Resumable: run it again with --continue to go on from RUNS_DIR/speech-erb/last.pt, or
# --init_from a committed checkpoint (training/checkpoints/speech-erb.pt, with --df: it carries the filter) to
# start a new stage.
#   scripts/train-speech.sh [--monitor|--df] [--voices|--voices-music] [CORPUS_DIR] [RUNS_DIR] [extra rt-train flags]
# --monitor trains speech-monitor's recipe (training/configs/speech-erb-monitor.toml) instead; --df the same
# recipe on spec-erb-df, with deep filtering of the low band (training/configs/speech-erb-df.toml); --voices the
# voices-only lineage (noisy voices only: no music, no untouched pairs; --init_from
# training/checkpoints/speech-erb-voices.pt), whose GRU input projection `speech` takes in at 70 % (docs/training.md);
# `--df --voices` is that lineage with the deep filter (--init_from training/checkpoints/speech-erb-df-voices.pt);
# `--df --voices-music` the voices-and-music lineage (voices and music, mostly under noise; --init_from
# training/checkpoints/speech-erb-df-voicemusic.pt), whose GRU input projection `speech` takes in since session 27.
set -euo pipefail
config=speech-erb
voices=0
while :; do  # --voices or --voices-music combines with either of the others
    case "${1:-}" in
        --monitor | --df)
            if [ "$config" != speech-erb ]; then echo "train-speech.sh: give --monitor or --df, not both" >&2; exit 2; fi
            config=speech-erb-${1#--}; shift ;;
        --voices | --voices-music)
            if [ "$voices" != 0 ]; then echo "train-speech.sh: give --voices or --voices-music, not both" >&2; exit 2; fi
            voices=${1#--}; shift ;;
        *) break ;;
    esac
done
source "$(dirname "$0")/setup.sh"
rt_train_setup "$@"
"$VENV/bin/rt-data" build --out "$corpus" --hours 3
source "$(dirname "$0")/speech-pipeline.sh"
speech_erb_noise "$corpus" >/dev/null  # synthetic textures, TTS babble, real noises, babble of real voices
name=()
if [ "$voices" = voices ]; then  # noisy voices only, in a run folder of its own (a --name given after it still wins)
    mix="$(speech_voices_mix "$corpus")" pipeline="$(speech_voices_pipeline "$corpus")" name=(--name "$config-voices")
elif [ "$voices" = voices-music ]; then  # voices and music, mostly under noise
    mix="$(speech_voices_music_mix "$corpus")" pipeline="$(speech_voices_music_pipeline "$corpus")"
    name=(--name "$config-voices-music")
else  # clean material: TTS and real voices, and music (so music is kept)
    mix="$(speech_erb_mix "$corpus")" pipeline="$(speech_erb_pipeline "$corpus")"
fi
"$VENV/bin/rt-train" --config "$ROOT/training/configs/$config.toml" --runs "$runs" --data_root "$mix" \
    --dataset_args "$(speech_erb_dataset_args "$corpus")" --preprocessing "$pipeline" "${name[@]}" "${TRAIN_ARGS[@]}"
