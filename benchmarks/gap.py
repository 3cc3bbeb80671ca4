"""Where a denoiser's distance to the ideal band gains lies: in the pauses between words, or while the voice sounds.

For the real-voice noise tasks of a corpus's validation split, PESQ-wb of the model's output (its whole-file pass),
of the ideal band gains of `speech`'s grid (`rt-bench quality --systems oracle-bands`), and of the two mixed by the
clean voice's activity: the ideal gains in the pauses (20 ms frames more than 35 dB under the loudest, the pause
metric's frames, 5 ms cross-fades) and the model's elsewhere, the reverse, and the model with its pauses taken 30 dB
down (a perfect voice-activity gate). What each mix gains over the model is what perfect estimates there are worth::

    python -m rt_enhance.benchmarks.gap CORPUS [MODEL.onnx] [ITEMS]
"""

from __future__ import annotations

import sys
import tempfile

import numpy as np
import soundfile as sf

from rt_enhance.benchmarks import testset
from rt_enhance.benchmarks.oracle import ideal_band_gains
from rt_enhance.benchmarks.systems import OursOffline
from rt_enhance.training import metrics

TASKS = ("real-noise-0db", "real-noise-5db", "real-noise-10db")
RATE = 48000
FADE_SECONDS = 0.005
GATE_DB = -30.0


def pause_weight(clean: np.ndarray) -> np.ndarray:
    """Per sample, 1 in the clean voice's pause frames and 0 in its active ones, with FADE_SECONDS cross-fades."""
    n = round(metrics.PAUSE_FRAME_SECONDS * RATE)
    frames = len(clean) // n
    energy = np.square(clean[: frames * n].astype(np.float64).reshape(frames, n)).sum(axis=1)
    weight = np.repeat((~metrics._voiced(energy)).astype(np.float64), n)
    weight = np.pad(weight, (0, len(clean) - len(weight)), mode="edge")
    half = round(FADE_SECONDS * RATE)
    fade = np.hanning(2 * half + 1)
    return np.convolve(np.pad(weight, half, mode="edge"), fade / fade.sum(), mode="valid")


def mixes(model_out: np.ndarray, ideal: np.ndarray, pause: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "the model": model_out,
        "ideal band gains": ideal,
        "ideal in the pauses, the model elsewhere": model_out * (1 - pause) + ideal * pause,
        "the model in the pauses, ideal elsewhere": ideal * (1 - pause) + model_out * pause,
        f"the model, its pauses gated {GATE_DB:.0f} dB": model_out * (1 - pause * (1 - 10 ** (GATE_DB / 20))),
    }


def main(argv: list[str]) -> int:
    corpus = argv[0]
    model = argv[1] if len(argv) > 1 else "realtime/models/speech.onnx"
    items = int(argv[2]) if len(argv) > 2 else 12
    ours = OursOffline(model, threads=1)
    scores: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as out:
        for item in testset.build(corpus, out, tasks=TASKS, items=items, seconds=4.0, recorded_split="val"):
            x, _ = sf.read(item.degraded, dtype="float32")
            clean, _ = sf.read(item.clean, dtype="float32")
            outputs = mixes(ours(x, item)[: len(x)], ideal_band_gains(x, clean), pause_weight(clean))
            for name, y in outputs.items():
                scores.setdefault((item.task, name), []).append(metrics.pesq_wb(clean, y.astype(np.float32), RATE))
    print("| PESQ-wb | " + " | ".join(TASKS) + " |")
    print("|---" * (len(TASKS) + 1) + "|")
    for name in dict.fromkeys(name for _, name in scores):
        print(f"| {name} | " + " | ".join(f"{np.mean(scores[(task, name)]):.2f}" for task in TASKS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
