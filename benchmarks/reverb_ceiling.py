"""How far a gain can take a room out, with the clean signal known: the dereverberation ceilings of issue 17.

For each real-voice room task of a corpus's validation split, the SI-SDR against the dry voice (the reference
`rt-bench quality` scores) of the input through the ideal real gain per STFT bin, computed from the clean
reference in two ways, on frames of 10, 20 and 40 ms (Hann windows, half a frame or a quarter of it apart):

- **magnitude**: ``|S| / |X|`` (clipped to (0, 2)): the best any estimate from the input's magnitudes can aim for;
- **phase-sensitive**: ``Re(S X*) / |X|^2`` (clipped): the least-squares real gain, which knows how the input's
  phase differs from the clean signal's.

A room's reflections are the voice itself, delayed: in a bin they add to the direct sound in or out of phase, and
only the second gain can tell. `rt-bench quality --systems oracle-bands,oracle-phase` gives the same two on
`speech`'s own grid (48 ERB bands); this adds the finer and longer grids, which the shipped model family could grow
into (docs/models.md, session 18)::

    python -m rt_enhance.benchmarks.reverb_ceiling CORPUS [ITEMS]
"""

from __future__ import annotations

import sys
import tempfile

import numpy as np
import soundfile as sf
from scipy.signal import istft, stft

from rt_enhance.benchmarks import testset
from rt_enhance.training.metrics import si_sdr

TASKS = ("real-reverb-0.3", "real-reverb-0.5", "real-reverb-0.8")
GRIDS = ((480, 240), (960, 240), (1920, 480))  # frame, hop in samples at 48 kHz
RATE = 48000


def ideal_gains(x: np.ndarray, clean: np.ndarray, frame: int, hop: int) -> dict[str, np.ndarray]:
    """``x`` through the ideal magnitude and phase-sensitive gains per bin of a ``frame``-sample STFT."""
    opts = dict(fs=RATE, window="hann", nperseg=frame, noverlap=frame - hop)
    spec_x, spec_s = stft(x, **opts)[2], stft(clean, **opts)[2]
    power = np.abs(spec_x) ** 2 + 1e-12
    gains = {
        "magnitude": np.clip(np.abs(spec_s) / np.sqrt(power), 0.0, 2.0),
        "phase-sensitive": np.clip(np.real(spec_s * np.conj(spec_x)) / power, 0.0, 2.0),
    }
    return {name: istft(g * spec_x, **opts)[1][: len(x)] for name, g in gains.items()}


def main(argv: list[str]) -> int:
    corpus, items = argv[0], int(argv[1]) if len(argv) > 1 else 12
    with tempfile.TemporaryDirectory() as out:
        built = testset.build(corpus, out, tasks=TASKS, items=items, seconds=4.0, recorded_split="val")
        scores: dict[tuple[str, str], list[float]] = {}
        for item in built:
            x, _ = sf.read(item.degraded, dtype="float32")
            clean, _ = sf.read(item.clean, dtype="float32")
            scores.setdefault((item.task, "input"), []).append(si_sdr(clean, x))
            for frame, hop in GRIDS:
                for name, y in ideal_gains(x, clean, frame, hop).items():
                    scores.setdefault((item.task, f"{name}, {frame * 1000 // RATE} ms"), []).append(si_sdr(clean, y))
    print("| ideal gain per bin | " + " | ".join(TASKS) + " |")
    print("|---" * (len(TASKS) + 1) + "|")
    base = [np.mean(scores[(task, "input")]) for task in TASKS]
    for row in dict.fromkeys(name for _, name in scores):
        cells = [np.mean(scores[(task, row)]) for task in TASKS]
        print(f"| {row} | " + " | ".join(f"{c:.2f}" + (f" ({c - b:+.1f})" if row != "input" else "") for c, b in zip(cells, base)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
