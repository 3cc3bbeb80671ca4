#!/usr/bin/env bash
# Pack a speech recipe's corpus for a GPU machine that cannot fetch anything: the clean material,
# the pipeline's noise and room folders and the validation folder of an `rt-data build` folder,
# compressed, into .gpu/pack (with the recipe: its degradation string, dataset arguments and
# config, which scripts/gpu-train.sh then uses); and the wheels of soundfile and soxr (which that
# machine lacks) into .gpu/wheels. The size cap leaves room for the rest of the working tree under
# the 64 MiB that one command may carry. Then: scripts/gpu-train.sh and scripts/gpu-bench.sh (docs/gpu.md).
#   scripts/gpu-pack.sh [CORPUS_DIR] [--recipe speech-erb|speech|speech-restore] [extra pack flags, e.g. --seed 1 --crop 6]
# The recipes (scripts/speech-pipeline.sh):
#   speech-erb (default): scripts/train-speech.sh's: TTS and real voices and music, real and synthetic
#     noise, validation on held-out real speakers; about 6 h of clean audio, so a seeded sample that
#     fits the cap is packed (--subset: Opus 64 kb/s, 4 s of each file, balanced across speech,
#     voices and music). Its corpus: `rt-data build --out DIR --hours 3` (what train-speech.sh builds).
#   speech: the first generation's recipe (speech-spectral.toml), packed whole (FLAC if
#     it fits, else Opus). Its corpus: `rt-data build --out DIR --hours 1.2`.
#   speech-restore: scripts/train-speech-restore.sh's: bandwidth extension of voices, on the full-band
#     voices of a speech-erb corpus (rt-data wide), packed whole. Train it with
#     scripts/gpu-train.sh OUT --resume training/checkpoints/speech-restore.pt (docs/gpu.md).
# CORPUS_DIR defaults to data/corpus; RT_GPU_PACK=DIR writes the pack elsewhere (default .gpu/pack).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/scripts/speech-pipeline.sh"
source "$ROOT/scripts/gpu-env.sh"
PY="$(gpu_python)"
corpus="$ROOT/data/corpus"
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then corpus="$1"; shift; fi
corpus="$(realpath -m "$corpus")"
recipe=speech-erb
rest=()
while [ $# -gt 0 ]; do
    if [ "$1" = --recipe ]; then recipe="${2:-}"; shift 2 || shift $#; else rest+=("$1"); shift; fi
done
case "$recipe" in
    speech-erb) parts=(speech/train voices/train voices/val music/train noise/train realnoise/train rir/train)
                hours=3 ;;
    speech) parts=(speech/train music/train noise/train rir/train); hours=1.2 ;;
    speech-restore) parts=(speech/train voices/train voices/val); hours=3 ;;
    *) echo "gpu-pack: --recipe ${recipe:-(none)}: expected speech-erb, speech or speech-restore" >&2; exit 2 ;;
esac
for part in "${parts[@]}"; do
    [ -d "$corpus/$part" ] || { echo "gpu-pack: $corpus/$part is missing; build the corpus first:" \
        "rt-data build --out $corpus --hours $hours" >&2; exit 2; }
done
limit_mib="${RT_GPU_TREE_MIB:-62}"  # what one command may carry, less a margin

mkdir -p "$ROOT/.gpu/wheels"
if ! compgen -G "$ROOT/.gpu/wheels/soundfile-*.whl" >/dev/null; then
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$ROOT/.gpu/wheels" soundfile==0.14.0 soxr==1.1.0 cffi==2.1.1 pycparser==3.12
fi

# Everything else that travels: tracked files and untracked ones git does not ignore, and the wheels.
tree_bytes=$(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 -r stat -c %s -- 2>/dev/null \
    | awk '{s += $1} END {print s + 0}')
wheel_bytes=$(du -sb "$ROOT/.gpu/wheels" | cut -f1)
max_mib=$(awk -v t="$tree_bytes" -v w="$wheel_bytes" -v l="$limit_mib" 'BEGIN {printf "%.1f", l - (t + w) / 1048576}')
echo "gpu-pack: working tree $((tree_bytes / 1048576)) MiB + wheels $((wheel_bytes / 1048576)) MiB; pack cap $max_mib MiB"

cd "$ROOT"
gpu_package  # the restore recipe's folders are made by rt_enhance (rt-data wide)
if [ "$recipe" = speech-erb ]; then
    speech_erb_noise "$corpus" >/dev/null
    recipe_flags=(--data_root "$(speech_erb_mix "$corpus")" --preprocessing "$(speech_erb_pipeline "$corpus")"
                  --dataset_args "$(speech_erb_dataset_args "$corpus")" --config training/configs/speech-erb.toml
                  --subset)
elif [ "$recipe" = speech-restore ]; then
    recipe_flags=(--data_root "$(PY="$PY" speech_restore_folders "$corpus")" --preprocessing "$(speech_restore_pipeline)"
                  --dataset_args "$(speech_restore_dataset_args "$corpus")" --config training/configs/speech-restore.toml
                  --bitrate 128)  # the targets' top octave is what it learns: Opus at twice the usual rate
else
    recipe_flags=(--data_root "$(speech_mix "$corpus")" --preprocessing "$(speech_pipeline "$corpus" 0.3)"
                  --config training/configs/speech-spectral.toml)
fi
"$PY" -m rt_enhance.training.pack --out "${RT_GPU_PACK:-$ROOT/.gpu/pack}" --max-mib "$max_mib" "${recipe_flags[@]}" \
    "${rest[@]}"
echo "gpu-pack: carry [\".gpu\"] with each run (docs/gpu.md)"
