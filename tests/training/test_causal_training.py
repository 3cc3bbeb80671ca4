"""--arch causal: a streaming CausalUNet trains with its lookahead aligned, and is evaluated through the engine's
stateful path; its checkpoint meta carries the model's own lookahead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import train_argv

from rt_enhance.model import load_checkpoint
from rt_enhance.training import cli, losses, runtime
from rt_enhance.training.config import make_config
from rt_enhance.training.trainer import build_parts, new_generator, train_step

# torch on one thread in every test here.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tones_in_noise(n: int, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of two clean tones (300 and 500 Hz at 16 kHz, ``[2, 1, n]``) and the same in seeded white noise."""
    t = torch.arange(n) / 16000
    clean = torch.stack([0.3 * torch.sin(2 * torch.pi * f * t) for f in (300.0, 500.0)])[:, None]
    return clean + noise * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)), clean


def test_lookahead_is_aligned_in_the_loss() -> None:
    cfg = make_config(dict(name="c", rate=16000, window=512, arch="causal", size="stream-tiny", dropout=0.0, lr_g=3e-3, batch=2))
    rt = runtime.Runtime(device=torch.device("cpu"))
    parts = build_parts(cfg, rt, new_generator(cfg), None)
    assert parts.lookahead == 24
    x, clean = _tones_in_noise(512, 0.03)
    first = train_step(parts, x, clean, rt)["loss"]
    for _ in range(60):
        last = train_step(parts, x, clean, rt)["loss"]
    assert last < first / 5
    with torch.no_grad():
        y = parts.generator.eval()(x)
    aligned = losses.waveform_loss(*losses.align(y, clean, 24))
    unaligned = losses.waveform_loss(y, clean)
    assert aligned < unaligned  # it learnt clean[t - L] at output t, not clean[t]


def test_causal_run_evaluates_through_the_stateful_engine(tmp_path: Path, tiny_corpus: Path) -> None:
    flags = "-s 512 --arch causal --size stream-tiny -e 1 -c 2 -b 4 --val_count 1 --speech false --tensorboard false -o 8"
    argv = train_argv(tmp_path, tiny_corpus, "s", flags)
    assert cli.main(argv) == 0
    _, extra = load_checkpoint(tmp_path / "s" / "best.pt")
    # the model's own step: the smallest multiple of its stride (8) of at least 2 ms (32 samples at 16 kHz)
    assert (extra["meta"]["lookahead"], extra["meta"]["crossfade"], extra["meta"]["hop"]) == (24, 0, 32)
    systems = json.loads((tmp_path / "s" / "eval" / "metrics.json").read_text())["systems"]
    assert systems["model (engine)"]["snr"] == pytest.approx(systems["model (offline)"]["snr"], abs=1e-3)


def test_spectral_model_learns_to_suppress_noise_with_the_spec_loss() -> None:
    """--arch spectral with --loss SPEC: the identity-initialised gain model learns a noisy tone
    (its output beats the input against the clean tone) with its one-hop lookahead aligned."""
    cfg = make_config(
        dict(name="s", rate=16000, window=1920, arch="spectral", size="spec-monitor", dropout=0.0, lr_g=3e-3, batch=2, loss="SPEC")
    )
    rt = runtime.Runtime(device=torch.device("cpu"))
    parts = build_parts(cfg, rt, new_generator(cfg), None)
    assert parts.lookahead == 96
    x, clean = _tones_in_noise(1920, 0.05)
    with torch.no_grad():
        before = losses.batch_snr(*losses.align(parts.generator.eval()(x), clean, 96)).mean()
    parts.generator.train()
    for _ in range(40):
        train_step(parts, x, clean, rt)
    with torch.no_grad():
        after = losses.batch_snr(*losses.align(parts.generator.eval()(x), clean, 96)).mean()
    assert after > before + 3.0, (before, after)
