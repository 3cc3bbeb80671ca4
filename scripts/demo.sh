#!/usr/bin/env bash
# The main job on a fresh machine: set up, then enhance the bundled demo clip with the bundled model.
#   scripts/demo.sh [OUT.wav] [more rt-enhance flags]
set -euo pipefail
source "$(dirname "$0")/setup.sh"
rt_setup "" libportaudio2
out="${1:-demo-enhanced.wav}"
shift || true
"$VENV/bin/rt-enhance" --in demo --out "$out" "$@"
echo "demo: wrote $out (input: realtime/assets/demo.wav)"
