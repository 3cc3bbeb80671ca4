"""Evaluation pieces: exact chunked offline enhancement, baselines, test items, the metrics table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from rt_enhance.model import build_size
from rt_enhance.training.degrade import parse_pipeline
from rt_enhance.training.evaluate import (
    EvalResult,
    band_limit,
    baselines,
    enhance_offline,
    make_items,
    markdown_table,
)


def test_chunked_offline_enhancement_equals_one_pass() -> None:
    torch.manual_seed(0)
    model = build_size("tiny", sample_rate=16000).eval()
    x = (0.1 * np.random.default_rng(0).standard_normal(5000)).astype(np.float32)
    chunked = enhance_offline(model, x, chunk=1024)
    n = model.valid_length(len(x))
    with torch.no_grad():
        whole = model(torch.from_numpy(np.pad(x, (0, n - len(x))))[None, None])[0, 0, : len(x)].numpy()
    rf = model.receptive_field
    assert chunked.shape == x.shape
    np.testing.assert_allclose(chunked[rf:-rf], whole[rf:-rf], atol=1e-5)


@pytest.mark.parametrize(
    "spec, low",
    [
        ("sample 4000 16000", 4000),
        ("lowpass 3000", 6000),
        ("whitenoise 0 0.1", None),
        ("sample 4000 16000,lowpass 1500", 3000),
        ("sample 16000 16000", None),
    ],
)
def test_band_limit(spec: str, low: int | None) -> None:
    assert band_limit(parse_pipeline(spec), 16000) == low


def test_baselines_restore_length_and_beat_nothing_on_a_band_limited_tone() -> None:
    t = np.arange(4000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = baselines(x, 16000, 4000)
    assert set(out) == {"spline", "sinc"}
    for y in out.values():
        assert y.shape == x.shape
        assert np.max(np.abs(y[200:-200] - x[200:-200])) < 0.05


def test_test_items_are_seeded_and_cropped(tmp_path: Path) -> None:
    clean = (0.3 * np.sin(np.arange(8000) / 10)).astype(np.float32)
    sf.write(tmp_path / "a.wav", clean, 16000, subtype="FLOAT")
    pipeline = parse_pipeline("whitenoise 0 0.05")
    sources = [("a.wav", str(tmp_path / "a.wav"), None)]
    one = make_items(sources, pipeline, rate=16000, seed=3, max_samples=2048)
    two = make_items(sources, pipeline, rate=16000, seed=3, max_samples=2048)
    assert one[0].clean.shape == (2048,) and np.array_equal(one[0].degraded, two[0].degraded)
    np.testing.assert_allclose(one[0].clean, clean[:2048], atol=1e-7)
    assert not np.array_equal(one[0].degraded, make_items(sources, pipeline, rate=16000, seed=4, max_samples=2048)[0].degraded)


def test_markdown_table_marks_missing_metrics() -> None:
    result = EvalResult({"degraded": {"snr": 1.234, "si_sdr": 2.0, "lsd": 0.5, "pesq": math.nan}}, {}, 1.0, 16000)
    table = markdown_table(result)
    assert table.splitlines()[0].startswith("| system | SNR (dB) | SI-SDR (dB) | LSD | PESQ | STOI |")
    assert "| degraded | 1.23 | 2.00 | 0.500 | - | - |" in table
    assert '"pesq": null' in result.to_json()


def test_parallel_data_uses_the_degraded_partner(tmp_path: Path) -> None:
    t = np.arange(4000) / 16000
    clean, noisy = 0.3 * np.sin(2 * np.pi * 200 * t), 0.3 * np.sin(2 * np.pi * 200 * t) + 0.05 * np.cos(t * 900)
    sf.write(tmp_path / "c.wav", clean.astype(np.float32), 16000, subtype="FLOAT")
    sf.write(tmp_path / "n.wav", noisy[:3000].astype(np.float32), 16000, subtype="FLOAT")  # shorter: padded
    (item,) = make_items(
        [("c.wav", str(tmp_path / "c.wav"), str(tmp_path / "n.wav"))], parse_pipeline(""), rate=16000, seed=0, max_samples=None
    )
    assert item.degraded.shape == item.clean.shape == (4000,)
    np.testing.assert_allclose(item.degraded[:3000], noisy[:3000], atol=1e-6)
    assert not item.degraded[3000:].any()
