"""The fit measurement: a fixed set of real-shaped windows under noise at the SNR asked for, free band gains that fit it
and remove the noise, a network that starts from a checkpoint with added layers, and a short corpus refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from rt_enhance.benchmarks import fit
from rt_enhance.benchmarks.clips import noisy_voice

RATE = 48000


def _corpus(root: Path, files: int = 3) -> Path:
    folder = root / "voices" / "train"
    folder.mkdir(parents=True)
    for i in range(files):
        sf.write(folder / f"v-{i}.wav", (0.2 * noisy_voice(1.0, RATE, snr_db=60, seed=i)).astype(np.float32), RATE)
    return root


def test_the_set_puts_each_voice_under_its_own_noise_at_the_snr_asked_for(tmp_path: Path) -> None:
    noisy, clean = fit.fixed_set(_corpus(tmp_path), 3, 0.5, "pink", 5.0)
    assert noisy.shape == clean.shape == (3, RATE // 2)
    noise = noisy - clean
    snr = 10 * np.log10(np.mean(clean**2, axis=1) / np.mean(noise**2, axis=1))
    np.testing.assert_allclose(snr, 5.0, atol=0.01)
    assert abs(np.corrcoef(noise[0], noise[1])[0, 1]) < 0.5  # a stretch of its own, not one noise repeated
    spectrum = np.abs(np.fft.rfft(noise[0])) ** 2  # pink: the octave 1-2 kHz carries as much as 8-16 kHz
    octave = [spectrum[int(f * 0.5) : int(2 * f * 0.5)].sum() for f in (1000, 8000)]
    assert 0.5 < octave[0] / octave[1] < 2


def test_free_band_gains_fit_the_set_and_take_the_noise_down(tmp_path: Path, capsys) -> None:
    noisy, clean = fit.fixed_set(_corpus(tmp_path), 2, 0.5, "white", 0.0)
    model = fit.network(None, "spec-erb", {})
    out, rows = fit.fit(model, noisy, clean, steps=30, lr=0.2, batch=2, every=10, oracle=True)
    terms = [line for line in capsys.readouterr().out.splitlines() if line.startswith("terms:")]
    assert len(terms) == 2  # at the start and at the end
    # at the identity, under noise at 0 dB, both terms want every gain down: their gradients agree
    assert float(terms[0].rsplit(" ", 1)[1]) > 0.5
    assert rows[0][0] == 0 and rows[-1][0] == 30 and rows[-1][1] < rows[0][1] - 0.3
    look = model.lookahead
    error_in = np.mean((noisy[:, : out.shape[1]] - clean[:, : out.shape[1]]) ** 2)
    error_out = np.mean((out - clean[:, : out.shape[1]]) ** 2)
    assert error_out < 0.5 * error_in and out.shape[1] == noisy.shape[1] - look


def test_a_network_starts_from_a_checkpoint_with_its_added_layers_and_a_short_corpus_is_one_line(tmp_path: Path, capsys) -> None:
    import torch

    from rt_enhance.model import save_checkpoint
    from rt_enhance.model.spectral import SpectralUNet

    small = SpectralUNet(hop=240, channels=[4, 8], kernel=3, gru_hidden=8, bands=24, log_features=True)
    save_checkpoint(tmp_path / "m.pt", small)
    grown = fit.network(str(tmp_path / "m.pt"), "spec-erb", {"band_gru": 4})
    assert grown.band_context is not None
    assert torch.equal(grown.encoders[0][0].weight, small.encoders[0][0].weight)
    corpus = _corpus(tmp_path / "c", files=1)
    assert fit.main([str(corpus), "--windows", "4", "--seconds", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "asked for 4" in err
