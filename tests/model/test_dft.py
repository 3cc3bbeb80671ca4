"""The factored DFTs of model/dft.py against numpy's FFT: the same numbers to float rounding, for every
frame the spectral model uses, a frame whose split leaves a partial last block of bins, and a prime one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rt_enhance.model.dft import InverseRealDFT, RealDFT, split


@pytest.mark.parametrize("n", [480, 960, 240, 96, 62, 31])
def test_the_forward_dft_equals_numpy_rfft_of_the_windowed_frame(n):
    rng = np.random.default_rng(n)
    window = torch.from_numpy(rng.uniform(0.1, 1.0, n))
    frames = rng.standard_normal((3, 5, n))
    re, im = RealDFT(n, window)(torch.from_numpy(frames).float())
    want = np.fft.rfft(frames * window.numpy(), axis=-1)
    assert re.shape == im.shape == (3, 5, n // 2 + 1)
    scale = np.abs(want).max()
    assert np.abs(re.numpy() - want.real).max() < 1e-5 * scale and np.abs(im.numpy() - want.imag).max() < 1e-5 * scale


# (960, 240): the cheapest split of 960 (32-sample rows) does not divide 240; the inverse takes one that does
# (480, 17): no split's rows divide 17; the direct product does
@pytest.mark.parametrize(("n", "tail"), [(480, 480), (480, 240), (960, 480), (960, 240), (62, 62), (480, 17)])
def test_the_inverse_gives_the_last_samples_of_numpy_irfft_times_the_window(n, tail):
    rng = np.random.default_rng(n + tail)
    window = torch.from_numpy(rng.uniform(0.1, 1.0, n))
    spectrum = rng.standard_normal((4, n // 2 + 1)) + 1j * rng.standard_normal((4, n // 2 + 1))
    spectrum[:, 0] = spectrum[:, 0].real  # a real signal's DC and Nyquist bins are real
    spectrum[:, -1] = spectrum[:, -1].real
    got = InverseRealDFT(n, window, tail)(torch.from_numpy(spectrum.real).float(), torch.from_numpy(spectrum.imag).float())
    want = (np.fft.irfft(spectrum, n, axis=-1) * window.numpy())[:, n - tail :]
    assert got.shape == (4, tail) and np.abs(got.numpy() - want).max() < 1e-5 * np.abs(want).max()


def test_the_split_costs_less_than_the_direct_product_and_a_prime_frame_falls_back_to_it():
    assert split(480) not in (1, 480) and RealDFT(480, torch.ones(480)).macs < 2 * 480 * 241 / 4
    assert split(31) == 31


def test_the_inverse_takes_the_cheapest_split_whose_rows_divide_its_tail():
    assert 960 // split(960) == 32 and 240 % 32  # the forward's split would not do
    q = 960 // InverseRealDFT(960, torch.ones(960), 240).p
    assert 240 % q == 0 and InverseRealDFT(960, torch.ones(960), 480).p == split(960)  # unchanged where it divides


@pytest.mark.parametrize("tail", [0, -16, 481])
def test_a_tail_outside_the_frame_is_refused(tail):
    with pytest.raises(ValueError, match="multiple"):
        InverseRealDFT(480, torch.ones(480), tail)
