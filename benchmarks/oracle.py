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
    (the model's one hop of delay removed)."""
    import torch

    from rt_enhance.model.spectral import SpectralUNet

    grid = SpectralUNet(hop=hop, frame=frame, channels=[4, 4], bands=bands)  # only its transforms are used
    n = len(x)
    pad = (-n) % hop + hop  # one hop more: the lookahead to remove

    def spectra(signal: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        audio = torch.from_numpy(np.concatenate([np.zeros(frame - hop, np.float32), signal, np.zeros(pad, np.float32)]))
        hops = audio.reshape(1, -1, hop)
        m = hops.shape[1] - frame // hop + 1
        return grid.analysis(torch.cat([hops[:, j : j + m] for j in range(frame // hop)], dim=2))

    with torch.no_grad():
        re, im = spectra(np.asarray(x, np.float32))
        clean_re, clean_im = spectra(np.asarray(clean, np.float32))
        weights = grid.band_weights / grid.band_weights.sum(dim=1, keepdim=True)
        ratio = ((clean_re.square() + clean_im.square()) @ weights.T) / ((re.square() + im.square()) @ weights.T + 1e-12)
        gain = ratio.sqrt().clamp(0.0, MAX_GAIN) @ grid.band_weights
        out = grid.synthesis(gain * re, gain * im)  # [1, m, 2 hop]
        first, second = out[..., :hop], out[..., hop:]
        y = (first + torch.cat([torch.zeros(1, 1, hop), second[:, :-1]], dim=1)).reshape(-1).numpy()
    return y[hop : hop + n].astype(np.float32)


def oracle_system(x: np.ndarray, item: TestItem) -> np.ndarray:
    clean, _ = sf.read(item.clean, dtype="float32")
    return ideal_band_gains(x, clean)
