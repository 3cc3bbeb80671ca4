#!/usr/bin/env bash
# Pack the speech recipe's corpus for a GPU machine that cannot fetch anything: the clean speech and
# music, noise and room responses of an `rt-data build` folder, compressed (FLAC, or Opus when FLAC
# does not fit), into .gpu/pack; and the wheels of soundfile and soxr (which that machine lacks)
# into .gpu/wheels. The size cap leaves room for the rest of the working tree under the 64 MiB that
# one command may carry. Then: scripts/gpu-train.sh and scripts/gpu-bench.sh (docs/gpu.md).
#   scripts/gpu-pack.sh [CORPUS_DIR] [extra pack flags, e.g. --codec opus --bitrate 48]
# CORPUS_DIR defaults to data/corpus (what scripts/train-default.sh builds; `rt-data build --out DIR
# --hours 1.2` makes one).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/scripts/speech-pipeline.sh"
source "$ROOT/scripts/gpu-env.sh"
PY="$(gpu_python)"
corpus="$(realpath -m "${1:-$ROOT/data/corpus}")"
shift || true
for part in speech/train music/train noise/train rir/train; do
    [ -d "$corpus/$part" ] || { echo "gpu-pack: $corpus/$part is missing; build the corpus first:" \
        "rt-data build --out $corpus --hours 1.2" >&2; exit 2; }
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

mix="$(speech_mix "$corpus")"
cd "$ROOT"
gpu_package
"$PY" -m rt_enhance.training.pack --out "$ROOT/.gpu/pack" --max-mib "$max_mib" --data_root "$mix" \
    --preprocessing "$(speech_pipeline "$corpus" 0.3)" "$@"
echo "gpu-pack: carry [\".gpu\"] with each run (docs/gpu.md)"
