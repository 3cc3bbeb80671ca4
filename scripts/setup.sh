#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh and scripts/test.sh: system packages (as root on Debian),
# then a virtual environment in .venv with the project installed (editable) and the extras asked for.
# Usage: source scripts/setup.sh EXTRAS SYSTEM_PACKAGES...
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RT_ENHANCE_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

install_system_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing system packages: ${missing[*]}"
        # jackd2 asks whether to enable real-time limits; answer no, non-interactively.
        echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections 2>/dev/null || true
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup: please install these system packages first (Debian/Ubuntu names): ${missing[*]}" >&2
        return 1
    fi
}

quiet_pip() {
    # pip's own output goes to a log; on failure, its tail is shown and set-up stops.
    local log="$VENV/pip.log"
    if ! "$VENV/bin/pip" "$@" >"$log" 2>&1; then
        tail -20 "$log" >&2
        echo "setup: pip $* failed (full log: $log)" >&2
        return 1
    fi
}

make_venv() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "setup: creating $VENV"
        "$PY" -m venv "$VENV"
    fi
    if [[ "$extras" == *train* ]] && ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
        # The CPU build of torch 2.13.0; any torch in the train extra's range works elsewhere.
        quiet_pip install torch==2.13.0
    fi
    local target="$ROOT"
    [ -n "$extras" ] && target="$ROOT[$extras]"
    echo "setup: installing rt-enhance${extras:+[$extras]} into $VENV"
    quiet_pip install -e "$target"
    "$VENV/bin/python" -c "import rt_enhance.realtime.cli" || { echo "setup: install failed" >&2; return 1; }
}

rt_setup() {
    local extras="$1"; shift
    if command -v dpkg >/dev/null; then
        install_system_packages "$@"
    fi
    make_venv "$extras"
}

# The training scripts' common start: the venv with the train, corpus and dev extras and the corpus
# builder's system packages; CORPUS_DIR and RUNS_DIR from the first two arguments (defaults data/corpus
# and runs) into $corpus and $runs, the rest into the array TRAIN_ARGS (flags for rt-train).
rt_train_setup() {
    rt_setup "train,corpus,dev" espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
        fluidsynth fluid-soundfont-gm wamerican
    corpus="$(realpath -m "${1:-data/corpus}")"
    runs="$(realpath -m "${2:-runs}")"
    shift 2 || shift $# || true
    TRAIN_ARGS=("$@")
}

# The committed checkpoint a training script starts from unless its flags say where (--continue, --init_from):
# sets the array `init` to (--init_from PATH), or to nothing.
rt_default_init() {
    init=()
    case " ${TRAIN_ARGS[*]} " in *" --continue "* | *" --init_from "*) ;; *) init=(--init_from "$1") ;; esac
}
