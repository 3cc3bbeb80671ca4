#!/usr/bin/env bash
# Re-measure every table of benchmarks/RESULTS.md on this machine (about 20 minutes; quality with CORPUS=DIR).
#   benchmarks/run-all.sh [OUT_DIR]        (default: benchmarks/results)
# Needs the venv with the dev and train extras (rt-export needs torch), jackd2 for loopback and
# stress (a private dummy server is started for them), and optionally the peers extra.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-benchmarks/results}"
BIN="${BIN:-.venv/bin}"
MODELS="${MODELS:-${TMPDIR:-/tmp}/rt-bench-models}"
mkdir -p "$OUT" "$MODELS"

"$BIN/rt-export" --init small --out "$MODELS/small.onnx" --fp16 --int8 >/dev/null
"$BIN/rt-export" --init stream-deep --out "$MODELS/stream-deep.onnx" >/dev/null
M="$MODELS/small.onnx"
S="$MODELS/stream-deep.onnx"
run() {  # name, then the rt-bench arguments
    local name="$1"; shift
    echo "== rt-bench $* (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    "$BIN/rt-bench" "$@" --json "$OUT/$name.json" | tee "$OUT/$name.md"
}
run latency-small latency --model "$M" --provider cpu,cuda,tensorrt --threads 1,2 --latency low,balanced --plot "$OUT/latency-small.png"
run latency-passthrough latency --model passthrough --latency low,balanced --sections engine
run throughput-small throughput --model "$M" --threads 1,2 --batch 64,1 --seconds 30
run throughput-small-quality throughput --model "$M" --threads 1,2 --batch 64 --seconds 30 --latency quality
run loopback-small loopback --model "$M" --latency low --seconds 60 --own-server
run stress-small stress --model "$M" --latency low --seconds 20 --own-server
run peers peers --model "$M" --threads 1 --seconds 10
# The streaming (stateful) default recipe's architecture, untrained.
run latency-stream-deep latency --model "$S" --threads 1,2 --latency monitor,low --sections engine
run throughput-stream-deep throughput --model "$S" --threads 1,2 --seconds 30
run loopback-stream-deep loopback --model "$S" --latency monitor --seconds 60 --own-server
run peers-stream-deep peers --model "$S" --threads 1 --seconds 10 --only ours
# The shipped speech models (spectral, stateful), bundled in the package.
run latency-speech latency --model speech --threads 1 --latency low,balanced --sections engine
run latency-speech-monitor latency --model speech-monitor --threads 1 --latency monitor,low --sections engine
run throughput-speech throughput --model speech --threads 1 --seconds 30
run loopback-speech-monitor loopback --model speech-monitor --latency monitor --seconds 60 --own-server --period 128
run loopback-speech loopback --model speech --latency low --seconds 60 --own-server
run peers-speech peers --model speech --threads 1 --seconds 10
# Quality needs a corpus (rt-data build --out DIR --hours 1.2); CORPUS=DIR benchmarks/run-all.sh
if [ -n "${CORPUS:-}" ]; then
    run quality-speech quality --corpus "$CORPUS" --model speech --items 3 --seconds 4
    run quality-speech-monitor quality --corpus "$CORPUS" --model speech-monitor --systems degraded,ours-engine,ours-offline --items 3 --seconds 4
fi
