"""Where a band-gain denoiser's distance to the ideal band gains lies: in the pauses between words or while the voice
sounds, in noise left or in voice taken down.

For the real-voice noise tasks of a corpus's validation split, PESQ-wb / SI-SDR of a spectral checkpoint's output (its
whole-file pass in torch, which the engine equals within float rounding), of the ideal band gains of its grid
(`rt-bench quality --systems oracle-bands`), and of mixes of the two:

- by the clean voice's activity: the ideal gains in the pauses (20 ms frames more than 35 dB under the loudest, the
  pause metric's frames, 5 ms cross-fades) and the model's elsewhere; the reverse; the model with its pauses taken
  30 dB down (a perfect voice-activity gate);
- by the direction of the model's error, per bin and frame: the ideal gain where it is lower than the model's (the
  noise the model leaves in), or where it is higher (the voice it takes down);
- the model's own gains raised to a power (:data:`POWERS`): softer (``g ** 0.7``, nearer one) or harder (``g ** 1.4``):
  which way its errors lean at each SNR, where an estimator that cannot tell the SNR well regresses to an average
  suppression (too soft at low SNR, too hard at high).

What each mix gains over the model is what perfect estimates there are worth::

    python -m rt_enhance.benchmarks.gap CORPUS [CHECKPOINT] [ITEMS]
"""

from __future__ import annotations

import sys
import tempfile

import numpy as np
import soundfile as sf

from rt_enhance.benchmarks import testset
from rt_enhance.benchmarks.oracle import aligned, band_gain
from rt_enhance.training import metrics

TASKS = ("real-noise-0db", "real-noise-5db", "real-noise-10db")
RATE = 48000
FADE_SECONDS = 0.005
GATE_DB = -30.0
POWERS = {"softer": 0.7, "harder": 1.4}  # the model's gains raised to these powers


def pause_weight(clean: np.ndarray) -> np.ndarray:
    """Per sample, 1 in the clean voice's pause frames and 0 in its active ones, with FADE_SECONDS cross-fades."""
    n = round(metrics.PAUSE_FRAME_SECONDS * RATE)
    frames = len(clean) // n
    energy = np.square(metrics._frames(clean, n, frames)).sum(axis=1)
    weight = np.repeat((~metrics._voiced(energy)).astype(np.float64), n)
    weight = np.pad(weight, (0, len(clean) - len(weight)), mode="edge")
    half = round(FADE_SECONDS * RATE)
    fade = np.hanning(2 * half + 1)
    return np.convolve(np.pad(weight, half, mode="edge"), fade / fade.sum(), mode="valid")


def mixing_model(checkpoint: str):
    """The spectral model of ``checkpoint`` whose band gains :func:`gain_mixes` can replace by the ideal ones."""
    import torch

    from rt_enhance.model.checkpoint import load_checkpoint
    from rt_enhance.model.spectral import SpectralUNet

    source, _ = load_checkpoint(checkpoint)
    if not isinstance(source, SpectralUNet) or source.df_bins or source.shifts:
        raise SystemExit(f"{checkpoint}: needs a spectral model of band gains only (no deep filter or copies)")

    class Mixed(SpectralUNet):
        target: torch.Tensor | None = None  # the clean band powers, recorded by a first pass
        mode = "model"

        def heads(self, power, h, band=None, likeness=None, above=None):
            if self.target is None:
                self.target = self.band_power(power)
                return self.to_bins(torch.ones_like(self.target)), None, h, None, None, None
            gain, copy, h, coef, band, _ = super().heads(power, h, band, likeness, above)
            ideal = self.to_bins(band_gain(self, self.target, power, self.max_gain))
            chosen = {"ideal": ideal, "lower": torch.minimum(gain, ideal), "higher": torch.maximum(gain, ideal)}
            chosen.update({name: gain.clamp_min(1e-12) ** power for name, power in POWERS.items()})
            return chosen.get(self.mode, gain), copy, h, coef, band, None

    model = Mixed(**source.init_kwargs)
    model.load_state_dict(source.state_dict())
    return model.eval()


def gain_mixes(model, x: np.ndarray, clean: np.ndarray) -> dict[str, np.ndarray]:
    """``x`` through ``model``'s band gains (:func:`mixing_model`), the ideal ones (the clean band powers over ``x``'s,
    clipped to the model's range), the model's with the ideal where it is lower or higher (per bin and frame), and the
    model's raised to each of :data:`POWERS`."""
    out = {}
    for mode in ("model", "ideal", "lower", "higher", *POWERS):
        model.target, model.mode = None, mode
        aligned(model, clean)  # the first pass records the clean band powers
        out[mode] = aligned(model, x)
    return out


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
    checkpoint = argv[1] if len(argv) > 1 else "training/checkpoints/speech-erb.pt"
    items = int(argv[2]) if len(argv) > 2 else 12
    model = mixing_model(checkpoint)
    scores: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as out:
        for item in testset.build(corpus, out, tasks=TASKS, items=items, seconds=4.0, recorded_split="val"):
            x, _ = sf.read(item.degraded, dtype="float32")
            clean, _ = sf.read(item.clean, dtype="float32")
            gains = gain_mixes(model, x, clean)
            outputs = mixes(gains["model"], gains["ideal"], pause_weight(clean))
            outputs["ideal where lower than the model's (the noise it leaves)"] = gains["lower"]
            outputs["ideal where higher than the model's (the voice it takes down)"] = gains["higher"]
            for name, power in POWERS.items():
                outputs[f"the model's gains to the power {power} ({name})"] = gains[name]
            for name, y in outputs.items():
                y = y.astype(np.float32)
                scores.setdefault((item.task, name), []).append((metrics.pesq_wb(clean, y, RATE), metrics.si_sdr(clean, y)))
    print("| PESQ-wb / SI-SDR dB | " + " | ".join(TASKS) + " |")
    print("|---" * (len(TASKS) + 1) + "|")
    for name in dict.fromkeys(name for _, name in scores):
        cells = [np.mean(scores[(task, name)], axis=0) for task in TASKS]
        print(f"| {name} | " + " | ".join(f"{p:.2f} / {d:.1f}" for p, d in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
