"""Named model sizes: ``tiny`` (tests), ``small`` (real-time default candidate), ``base`` (the
original work's defaults), and the streaming ``stream-tiny`` / ``stream-small`` / ``stream-base``
(:class:`~rt_enhance.model.causal.CausalUNet`). ``rt-export --init NAME`` exports one untrained,
with its metadata.

Figures (params, MACs per second, receptive field, measured ORT time) are in docs/model-sizes.md;
``python -m rt_enhance.model`` prints the analytic ones.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from rt_enhance.model.base import AudioModel, StreamingModel
from rt_enhance.model.registry import build_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NamedSize:
    """A model class, its constructor arguments and the engine defaults it is exported with."""

    name: str
    description: str
    kwargs: dict[str, Any]
    family: str = "Generator"
    window: int = 2048
    hop: int = 480
    lookahead: int = 480
    crossfade: int = 240
    sample_rate: int = 48000
    extra: dict[str, Any] = field(default_factory=dict)


# spec-erb's network; spec-erb-long and spec-erb-monitor change only its time-frequency grid (every tensor fits)
SPEC_ERB: dict[str, Any] = {
    "hop": 240,
    "channels": [16, 32, 48, 48],
    "kernel": 5,
    "gru_hidden": 128,
    "max_gain": 2.0,
    "bands": 48,
    "log_features": True,
}


def _spectral(name: str, description: str, kwargs: dict[str, Any], hop: int = 240) -> NamedSize:
    """A SpectralUNet size: a streaming step of one hop, with one hop of lookahead and no crossfade."""
    return NamedSize(name, description, kwargs, family="SpectralUNet", window=hop, hop=hop, lookahead=hop, crossfade=0)


SIZES: dict[str, NamedSize] = {
    size.name: size
    for size in (
        NamedSize(
            "tiny",
            "test-sized U-Net (depth 3, 8/16/16 channels, kernels <= 17)",
            {"depth": 3, "width": 0.125, "max_channels": 16, "max_kernel": 17},
            window=1024,
        ),
        NamedSize(
            "small",
            "real-time U-Net (depth 4, 8/16/32/32 channels, kernels <= 17), ~1 ms per 2048 window on 1 thread",
            {"depth": 4, "width": 0.125, "max_channels": 32, "max_kernel": 17},
        ),
        NamedSize(
            "base",
            "the original work's U-Net (depth 4, 64..512 channels, kernels 129..17); far from real time on a CPU",
            {"depth": 4},
        ),
        # Streaming sizes (CausalUNet, exported as stateful ONNX steps): the lookahead is the
        # model's own, crossfade does not apply, and ``window`` is the samples per call (the hop);
        # total stride 2^depth divides 2, 5 and 10 ms hops at 48 kHz (96, 240, 480) for depth <= 4.
        NamedSize(
            "stream-tiny",
            "test-sized streaming U-Net (depth 3, 8/16/16 channels, kernel 9, GRU 16, lookahead 24)",
            {"depth": 3, "width": 0.125, "max_channels": 16, "max_kernel": 9, "lookahead": 24, "gru_hidden": 16},
            family="CausalUNet",
            window=96,
            hop=96,
            lookahead=24,
            crossfade=0,
        ),
        NamedSize(
            "stream-small",
            "causal streaming U-Net (depth 4, 24..192 channels, kernel 9, GRU 128, lookahead 1 ms), ~0.4 ms per 2 ms hop on 1 thread",
            {"depth": 4, "width": 0.375, "max_channels": 192, "max_kernel": 9, "lookahead": 48, "gru_hidden": 128},
            family="CausalUNet",
            window=96,
            hop=96,
            lookahead=48,
            crossfade=0,
        ),
        NamedSize(
            "stream-deep",
            "causal streaming U-Net, 6 levels (stride 64: its GRU runs at 750 frames/s, so it trains ~6x faster "
            "than stream-small on a CPU), 16..192 channels, kernel 9, GRU 128, lookahead 112 (monitor: 128 + 112 "
            "= 5 ms)",
            {"depth": 6, "width": 0.25, "max_channels": 192, "max_kernel": 9, "lookahead": 112, "gru_hidden": 128},
            family="CausalUNet",
            window=128,
            hop=128,
            lookahead=112,
            crossfade=0,
        ),
        _spectral(
            "spec-small",
            "spectral streaming U-Net (gain per bin of 10 ms / 5 ms frames, U-Net over frequency 12..32 "
            "channels, GRU 128 across frames, lookahead 5 ms): the CPU-trainable speech model",
            {"hop": 240, "channels": [12, 24, 32, 32], "kernel": 5, "gru_hidden": 128, "max_gain": 2.0},
        ),
        _spectral(
            "spec-monitor",
            "spectral streaming U-Net for the monitor preset (4 ms frames, 2 ms hop, 97 bins, 12..32 "
            "channels, GRU 96): algorithmic latency 4 ms",
            {"hop": 96, "channels": [12, 24, 32, 32], "kernel": 5, "gru_hidden": 96, "max_gain": 2.0},
            hop=96,
        ),
        _spectral(
            "spec-music",
            "spectral streaming U-Net for music: 10 ms frames, 5 ms hop, 5 frequency levels 12..32 channels, "
            "GRU 128, log-power features, and spectral replication by 2, 4, 6, 9, 12 and 16 kHz for bandwidth "
            "extension",
            {
                "hop": 240,
                "channels": [12, 24, 32, 32, 32],
                "kernel": 5,
                "gru_hidden": 128,
                "max_gain": 2.0,
                "copies": [2000.0, 4000.0, 6000.0, 9000.0, 12000.0, 16000.0],
                "log_features": True,
            },
        ),
        _spectral(
            "spec-erb",
            "spectral streaming U-Net on 48 ERB bands (10 ms / 5 ms frames; bands of one bin below ~1 kHz), "
            "16..48 channels, GRU 128, log-power features: the per-bin network's work at a third of its cost",
            SPEC_ERB,
        ),
        _spectral(
            "spec-erb-norm",
            "spec-erb with batch normalisation after each U-Net convolution (as GTCRN and DeepFilterNet): learns a "
            "fixed set ~2.5x faster from random (benchmarks.fit); folded into the convolutions at inference, so the same "
            "cost per hop; starts at random, not from a trained spec-erb",
            {**SPEC_ERB, "norm": True},
        ),
        _spectral(
            "spec-erb-df",
            "spec-erb with deep filtering of the lowest 48 bins (0-4.7 kHz): a complex filter over each bin's last "
            "3 frames beside the band gains, as DeepFilterNet's; the same latency, every tensor of spec-erb fits",
            {**SPEC_ERB, "df_bins": 48, "df_order": 3},
        ),
        _spectral(
            "spec-erb-df-phase",
            "spec-erb-df whose filter coefficients are corrected per bin by a small network that sees what band "
            "powers cannot: how each bin's phase moved over the filter's frames and its power against its band's; "
            "the same latency, every tensor of spec-erb-df fits",
            {**SPEC_ERB, "df_bins": 48, "df_order": 3, "df_phase": 16},
        ),
        _spectral(
            "spec-erb-comb",
            "spec-erb with a causal pitch comb: two copies of each frame one and two pitch periods back, weighted per "
            "band, that keep a voice's harmonics and lower the noise between them (PercepNet's pitch filter); the same "
            "latency, every tensor of spec-erb fits",
            {**SPEC_ERB, "comb": 2},
        ),
        _spectral(
            "spec-erb-floor",
            "spec-erb that also sees each band's level above its noise floor, the least level of the last 1.5 s "
            "(minimum statistics): the a posteriori SNR a Wiener filter works from; the same latency, every tensor of "
            "spec-erb fits",
            {**SPEC_ERB, "floor": 300},
        ),
        _spectral(
            "spec-erb-band",
            "spec-erb with a GRU of 32 on every band of the first level (weights shared across bands, as GTCRN's "
            "inter-frame RNN): each band's own memory of its noise floor; the same latency, every tensor of spec-erb fits",
            {**SPEC_ERB, "band_gru": 32},
        ),
        _spectral(
            "spec-erb-wide",
            "spec-erb with a bottleneck GRU of 256 instead of 128 (started from spec-erb, it begins as spec-erb: "
            "the new units are unseen until trained); the same latency",
            {**SPEC_ERB, "gru_hidden": 256},
        ),
        _spectral(
            "spec-erb-long",
            "spec-erb on 20 ms frames (481 bins, 50 Hz apart, in 48 ERB bands) at the same 5 ms hop and 10 ms "
            "latency (asymmetric windows): finer frequency resolution for the low harmonics (every tensor fits spec-erb's)",
            {**SPEC_ERB, "frame": 960},
        ),
        _spectral(
            "spec-erb-long-df",
            "spec-erb on 20 ms frames (50 Hz bins) with deep filtering of the lowest 96 bins (0-4.8 kHz) over 5 frames, as "
            "DeepFilterNet's: bins fine enough to part a voice's harmonics, and a filter that can act between them; the "
            "same 10 ms latency, every tensor of spec-erb fits",
            {**SPEC_ERB, "frame": 960, "df_bins": 96, "df_order": 5},
        ),
        _spectral(
            "spec-erb-monitor",
            "spec-erb for the monitor preset: the same network on the same 10 ms frames (48 ERB bands), "
            "2.5 ms hop and asymmetric windows, so the algorithmic latency is 5 ms (every tensor fits spec-erb's)",
            {**SPEC_ERB, "hop": 120, "frame": 480},
            hop=120,
        ),
        _spectral(
            "spec-erb-monitor-long-df",
            "spec-erb-long-df for the monitor preset: 20 ms frames (50 Hz bins) and the deep filter over the last 5 "
            "frames, at a 2.5 ms hop with asymmetric windows (5 ms latency); every tensor of spec-erb-long-df fits",
            {**SPEC_ERB, "hop": 120, "frame": 960, "df_bins": 96, "df_order": 5},
            hop=120,
        ),
        NamedSize(
            "stream-base",
            "causal streaming U-Net (depth 4, 32..256 channels, kernel 17, GRU 256, lookahead 2 ms), ~4 ms per 10 ms hop on 1 thread",
            {"depth": 4, "width": 0.5, "max_channels": 256, "max_kernel": 17, "lookahead": 96, "gru_hidden": 256},
            family="CausalUNet",
            window=480,
            hop=480,
            lookahead=96,
            crossfade=0,
        ),
    )
}


def get_size(name: str) -> NamedSize:
    """The named size ``name``; ``KeyError`` with the known names otherwise."""
    if name not in SIZES:
        raise KeyError(f"unknown model size {name!r}; known sizes: {', '.join(SIZES)}")
    return SIZES[name]


def default_hop(model: StreamingModel, size: NamedSize | None = None) -> int:
    """A streaming model's default hop at its own rate, a multiple of its total stride: a streaming
    size's own hop (in time), else the model's step of at least 2 ms. Both ``rt-export --init`` and
    the checkpoints rt-train writes take it from here, so the two agree."""
    ms = 2.0
    if size is not None and size.family != "Generator":
        ms = 1000.0 * size.hop / size.sample_rate
    return model.valid_length(math.ceil(round(model.sample_rate * ms / 1000.0, 6)))


def build_size(name: str, *, sample_rate: int | None = None) -> AudioModel:
    """An untrained model of the named size (at ``sample_rate`` if given, else the size's own)."""
    size = get_size(name)
    kwargs = {**size.kwargs, "sample_rate": sample_rate or size.sample_rate}
    return build_model(size.family, kwargs)


def size_table() -> list[str]:
    """One markdown row per named size: params, MACs per second, receptive field, stride, window."""
    rows = [
        "| size | params | GMAC/s of audio (1 pass) | receptive field | total stride | window |",
        "|---|---|---|---|---|---|",
    ]
    for name, size in SIZES.items():
        model = build_size(name)
        info = model.describe(size.window)
        rows.append(
            f"| {name} | {info['params']:,} | {info['macs_per_second'] / 1e9:.3f} | "
            f"{info['receptive_field']} | {info['total_stride']} | {size.window} |"
        )
    return rows
