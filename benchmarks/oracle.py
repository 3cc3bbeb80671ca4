"""The ideal band gains of the speech model's grid: what a gains-only model on that grid could reach at best.

``oracle-bands`` in ``rt-bench quality`` reads the item's clean reference (which no real system has) and applies, in
every 10 ms frame and each of the 48 ERB bands of `speech` (model/spectral.py: the same windows, DFTs and triangular
filters), the gain that makes the band's power that of the clean signal, clipped to the model's range (0, 2), spread
back to the bins as the model spreads its own. It is the ceiling of the model family on its own grid, not a tool: the
distance from it to `speech` is what training can still buy, the distance from it to the clean signal what the grid
costs. torch is needed (the model's own modules do the transforms).
"""

from __future__ import annotations

import numpy as np
import soundfile as sf

from rt_enhance.benchmarks.testset import TestItem

HOP, FRAME, BANDS, MAX_GAIN = 240, 480, 48, 2.0  # `speech`'s grid (spec-erb) at 48 kHz


def ideal_band_gains(x: np.ndarray, clean: np.ndarray, *, hop: int = HOP, frame: int = FRAME, bands: int = BANDS) -> np.ndarray:
    """float32 ``[n]`` -> ``[n]``: ``x`` through the ideal gain per band and frame against ``clean``, aligned with ``x``
    (the model's one hop of delay removed). The model's own ``forward`` does the framing, transforms and overlap-add;
    only its network is replaced: a first pass over ``clean`` records each frame's band powers, a second over ``x``
    returns the gains that bring ``x``'s band powers to those."""
    import torch

    from rt_enhance.model.spectral import SpectralUNet

    class Ideal(SpectralUNet):
        target: torch.Tensor | None = None  # the clean band powers [1, frames, bands]; None: record them

        def heads(self, power, h, band=None):  # the ideal gains in place of the network (power: |X|^2 per bin)
            power = self.band_power(power)
            if self.target is None:
                self.target, gain = power, torch.ones_like(power)
            else:
                gain = (self.target / (power + 1e-12)).sqrt().clamp(0.0, MAX_GAIN)
            return self.to_bins(gain), None, h, None, None

    grid = Ideal(hop=hop, frame=frame, channels=[4, 4], bands=bands, gru_hidden=0)  # only its transforms run
    n = len(x)
    pad = (-n) % hop + hop  # one hop more: the lookahead to remove

    def run(signal: np.ndarray) -> np.ndarray:
        audio = torch.from_numpy(np.concatenate([np.asarray(signal, np.float32), np.zeros(pad, np.float32)]))
        return grid(audio[None, None])[0, 0].numpy()

    with torch.no_grad():
        run(clean)
        y = run(x)
    return y[hop : hop + n].astype(np.float32)


def oracle_system(x: np.ndarray, item: TestItem) -> np.ndarray:
    clean, _ = sf.read(item.clean, dtype="float32")
    return ideal_band_gains(x, clean)
