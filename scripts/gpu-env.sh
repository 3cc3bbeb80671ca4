# Make rt_enhance importable where it is not installed (the lent GPU machine, or any machine with
# PyTorch but without `pip install .`); sourced by scripts/gpu-train.sh and scripts/gpu-bench.sh.
# After `gpu_env`, "$PY" runs Python with rt_enhance.* importable:
#   - the Python: $PYTHON if set, else .venv/bin/python if this checkout has one, else python3;
#   - missing soundfile/soxr: the wheels in .gpu/wheels (scripts/gpu-pack.sh downloads them) are
#     installed into a temporary folder (pip --no-index: no network needed);
#   - rt_enhance not installed: a folder of links rt_enhance/{realtime,model,...} -> this checkout
#     goes on PYTHONPATH (rt_enhance is a namespace package, so links are all it needs; nothing
#     is built and setuptools is not needed).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACKAGES=(realtime model export training benchmarks)

gpu_python() {
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"
    elif [ -x "$ROOT/.venv/bin/python" ]; then echo "$ROOT/.venv/bin/python"
    else echo python3; fi
}

gpu_wheels() {
    "$PY" -c "import soundfile, soxr" 2>/dev/null && return 0
    local site="${TMPDIR:-/tmp}/rt-enhance-site"
    if compgen -G "$ROOT/.gpu/wheels/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
            "$ROOT"/.gpu/wheels/*.whl || return 1
        export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    "$PY" -c "import soundfile, soxr" 2>/dev/null && return 0
    echo "gpu-env: soundfile and soxr are missing for $PY; run scripts/gpu-pack.sh where pip works (it puts" \
         "their wheels in .gpu/wheels) or pip install soundfile soxr" >&2
    return 1
}

gpu_package() {
    "$PY" -c "import rt_enhance.training, rt_enhance.benchmarks" 2>/dev/null && return 0
    local tree="${TMPDIR:-/tmp}/rt-enhance-path"
    mkdir -p "$tree/rt_enhance"
    local name
    for name in "${PACKAGES[@]}"; do ln -sfn "$ROOT/$name" "$tree/rt_enhance/$name"; done
    export PYTHONPATH="$tree${PYTHONPATH:+:$PYTHONPATH}"
    "$PY" -c "import rt_enhance.training, rt_enhance.benchmarks" || {
        echo "gpu-env: cannot import rt_enhance from $ROOT with $PY" >&2; return 1; }
}

gpu_env() {
    PY="$(gpu_python)"
    "$PY" -c "import torch" 2>/dev/null || { echo "gpu-env: $PY has no torch; set PYTHON to a Python with PyTorch" >&2; return 1; }
    gpu_wheels && gpu_package
}

# The common start of gpu-train.sh and gpu-bench.sh: OUT_DIR must come first (else their usage line
# and exit 2), then gpu_env, and Python's output unbuffered (progress shows as it happens).
#   gpu_start USAGE "$@"
gpu_start() {
    local usage="$1"
    shift
    [ $# -ge 1 ] && [[ "$1" != -* ]] || { echo "usage: $usage" >&2; exit 2; }
    gpu_env
    export PYTHONUNBUFFERED=1
}
