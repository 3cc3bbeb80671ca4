"""The streaming U-Net: a causal variant of the generator whose every layer runs chunk by chunk
with explicit state, for the engine's ``stateful`` ONNX contract (see :mod:`rt_enhance.realtime.metadata`).

Layout (``depth`` = number of halvings, total stride ``2^depth``)::

    x ─┬─ down0 ─ down1 ─ ... ─ down{D-1} ─ [GRU] ─ up{D-2} ⊕skip ─ ... ─ up0 ⊕skip ─ final ─┐
       └─────────────────────── delay line (lookahead L samples) ────────────────────────── + ── y

Every convolution is *causal*: offline it sees ``k - 1`` zeros on the left instead of centred
padding; in streaming mode it sees the last ``k - 1`` input frames of the previous chunk (its
state) instead. The offline :meth:`CausalUNet.forward` *is* :meth:`CausalUNet.step` from the zero
state, so streaming equals offline by construction, up to float rounding. Stride-2 convolutions
keep their phase as long as every chunk is a multiple of the total stride (the engine's hop
always is). Sub-pixel and superpixel shuffles are pointwise in frames and need no state; with
causal convolutions the skip connections stay aligned without any extra delay.

Causality: with ``downsample="strided"`` output sample ``t`` depends on input samples ``<= t``
only. With ``downsample="superpixel"`` the model is causal per block of ``total_stride`` samples
(output ``t`` may see the rest of its block, up to ``total_stride - 1`` samples ahead): a streaming
engine waits for a whole hop anyway, so that costs no latency.

Lookahead ``L``: the network body is causal; the model is trained to output, at time ``t``, the
enhancement of input time ``t - L``, and its residual path adds the input delayed by ``L``. So
``forward(x)[..., t]`` estimates ``clean[..., t - L]``: a training loss compares
``y[..., L:]`` with ``target[..., :T - L]`` (``L = getattr(model, "lookahead", 0)``; windowed
models have no such attribute). The engine drops the first ``L`` output samples to align its output.

An optional GRU at the bottleneck frame rate (``gru_hidden > 0``) gives unbounded past context
(noise statistics, reverberation tails) for little cost; its hidden state is one more state
tensor. ``receptive_field`` then reports the convolutional part only (``recurrent`` is True).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from rt_enhance.model.base import StreamingModel, count_macs
from rt_enhance.model.layers import Span, make_activation
from rt_enhance.model.shuffle import SubPixel, SuperPixel
from rt_enhance.model.spec import check_unet_args, level_channels, level_kernels
from rt_enhance.model.unet import hull, through_downs

logger = logging.getLogger(__name__)

State = list[torch.Tensor]


class CausalConv(nn.Module):
    """A Conv1d that sees only the past: ``[batch, in_ch, n]`` + state ``[batch, in_ch, k-1]`` ->
    ``[batch, out_ch, n / stride]`` + new state (the last ``k - 1`` input frames).

    Output frame ``j`` of a chunk starting at input frame ``t0`` reads input frames
    ``t0 + stride*j - (k-1) .. t0 + stride*j``; ``n`` must be a multiple of ``stride``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        if kernel < 2:
            raise ValueError(f"causal convolutions need a kernel of at least 2 (they carry k-1 frames), got {kernel}")
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, stride=stride)
        self.context = kernel - 1

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        full = torch.cat([state, x], dim=-1)
        return self.conv(full), full[..., -self.context :]

    def state_shape(self) -> tuple[int, ...]:
        return (-1, self.conv.in_channels, self.context)


class StreamBlock(nn.Module):
    """Causal conv, [dropout], [activation], [shuffle]: one stateful stage of the U-Net.

    ``resample``: ``"down"`` (stride-2 conv), ``"superpixel"`` (conv to half the channels, then
    space-to-depth), ``"up"`` (conv to twice the channels, then sub-pixel) or ``None``.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        *,
        resample: str | None,
        activation: str | None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        conv_out = {"superpixel": out_ch // 2, "up": 2 * out_ch}.get(resample or "", out_ch)
        self.conv = CausalConv(in_ch, conv_out, kernel, stride=2 if resample == "down" else 1)
        post: list[nn.Module] = [nn.Dropout(dropout)] if dropout > 0 else []
        post += [make_activation(activation, conv_out)] if activation else []
        resamplers: dict[str, list[nn.Module]] = {"superpixel": [SuperPixel()], "up": [SubPixel()]}
        post += resamplers.get(resample or "", [])
        self.post = nn.Sequential(*post)
        self.resample = resample

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, state = self.conv(x, state)
        return self.post(y), state

    def span(self, lo: int, hi: int) -> Span:
        """Input interval of output frames ``lo..hi`` (in this block's input and output rates)."""
        back = self.conv.context
        if self.resample == "down":
            return 2 * lo - back, 2 * hi
        if self.resample == "superpixel":
            return 2 * lo - back, 2 * hi + 1
        if self.resample == "up":
            return lo // 2 - back, hi // 2
        return lo - back, hi


class DelayLine(nn.Module):
    """``y[t] = x[t - delay]``: ``[batch, 1, n]`` + state ``[batch, 1, delay]`` -> same + new state."""

    def __init__(self, delay: int) -> None:
        super().__init__()
        self.delay = delay

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        full = torch.cat([state, x], dim=-1)
        return full[..., : -self.delay], full[..., -self.delay :]


class CausalUNet(StreamingModel):
    """Streaming U-Net: ``[batch, 1, n]`` -> ``[batch, 1, n]`` lagging by ``lookahead`` samples.

    Arguments (plain types; checkpoints store them):

    - ``depth``: number of stride-2 levels; total stride ``2^depth`` (the hop must be a multiple).
      The deepest level is the bottleneck; levels ``0 .. depth-2`` have skip connections.
    - ``width``, ``max_channels``: channels per level ``min(2^(6+b), 512) * width`` rounded to 8,
      capped (as the generator); ``max_kernel`` / ``min_kernel``: kernels per level
      ``2^(7-b) + 1`` clamped (modest kernels, 9..33, keep the cost per hop low);
      ``final_kernel``: kernel of the last conv (full rate / 2).
    - ``downsample``: ``"strided"`` (strictly causal) or ``"superpixel"`` (causal per stride block).
    - ``prelu``: PReLU everywhere instead of LeakyReLU 0.2 (down) / ReLU (up).
    - ``dropout``: after the bottleneck and up convolutions, training only (default 0).
    - ``lookahead``: samples ``L`` the output lags the input (see the module docs).
    - ``gru_hidden``: hidden size of a unidirectional GRU at the bottleneck (0 = none).

    Streaming API: :meth:`initial_state`, :meth:`state_shapes`, :meth:`state_names`,
    :meth:`step`; ``step`` over consecutive chunks equals ``forward`` over their concatenation.
    """

    def __init__(
        self,
        *,
        depth: int = 4,
        width: float = 0.375,
        max_channels: int = 192,
        max_kernel: int = 9,
        min_kernel: int = 9,
        final_kernel: int = 9,
        downsample: str = "strided",
        prelu: bool = False,
        dropout: float = 0.0,
        lookahead: int = 48,
        gru_hidden: int = 0,
        sample_rate: int = 48000,
    ) -> None:
        super().__init__()
        _check_args(depth, width, max_channels, max_kernel, min_kernel, final_kernel, downsample, dropout, lookahead, gru_hidden)
        self.init_kwargs = {
            "depth": depth,
            "width": float(width),
            "max_channels": max_channels,
            "max_kernel": max_kernel,
            "min_kernel": min_kernel,
            "final_kernel": final_kernel,
            "downsample": downsample,
            "prelu": prelu,
            "dropout": float(dropout),
            "lookahead": lookahead,
            "gru_hidden": gru_hidden,
            "sample_rate": sample_rate,
        }
        self.sample_rate = sample_rate
        self.depth = depth
        self.lookahead = lookahead
        self.gru_hidden = gru_hidden
        self.channels = level_channels(depth, width, max_channels)
        self.kernels = level_kernels(depth, max_kernel, min_kernel)
        self._build(downsample, prelu, dropout, final_kernel)

    def _build(self, downsample: str, prelu: bool, dropout: float, final_kernel: int) -> None:
        down_act, up_act = ("prelu", "prelu") if prelu else ("leaky", "relu")
        ch, ks, resample = self.channels, self.kernels, "down" if downsample == "strided" else downsample
        bottleneck = self.depth - 1  # dropout there, as the generator's bottleneck
        self.downs = nn.ModuleList(
            StreamBlock(i, o, k, resample=resample, activation=down_act, dropout=dropout if b == bottleneck else 0.0)
            for b, (i, o, k) in enumerate(zip([1, *ch[:-1]], ch, ks))
        )
        self.gru = nn.GRU(ch[-1], self.gru_hidden, batch_first=True) if self.gru_hidden else None
        self.gru_out = nn.Conv1d(self.gru_hidden, ch[-1], 1) if self.gru_hidden else None
        # ups[b] brings level b+1 to level b (deepest first in execution), kernel ks[b] as the
        # generator's; its input is the bottleneck, or the level below concatenated with its skip.
        self.ups = nn.ModuleList(
            StreamBlock(ch[-1] if b == self.depth - 2 else 2 * ch[b + 1], ch[b], ks[b], resample="up", activation=up_act, dropout=dropout)
            for b in range(self.depth - 1)
        )
        final_in = 2 * ch[0] if self.depth > 1 else ch[0]
        self.final = StreamBlock(final_in, 1, final_kernel, resample="up", activation=None)
        self.delay = DelayLine(self.lookahead) if self.lookahead else None

    # ------------------------------------------------------------------ streaming

    def _stateful(self) -> list[tuple[str, nn.Module]]:
        """The state-carrying parts in execution (and state) order."""
        parts: list[tuple[str, nn.Module]] = [(f"down{b}", block) for b, block in enumerate(self.downs)]
        parts += [("gru", self.gru)] if self.gru is not None else []
        parts += [(f"up{b}", self.ups[b]) for b in reversed(range(self.depth - 1))]
        parts += [("final", self.final)]
        parts += [("delay", self.delay)] if self.delay is not None else []
        return parts

    def state_names(self) -> list[str]:
        """One name per state tensor, in :meth:`step` order: ``down0``.., ``gru``, ``up{b}``.., ``final``, ``delay``."""
        return [name for name, _ in self._stateful()]

    def state_shapes(self) -> list[tuple[int, ...]]:
        """Shape of each state tensor, ``-1`` marking the batch axis (axis 1 for the GRU's ``[1, batch, H]``)."""
        shapes: list[tuple[int, ...]] = []
        for name, part in self._stateful():
            if name == "gru":
                shapes.append((1, -1, self.gru_hidden))
            elif name == "delay":
                shapes.append((-1, 1, self.lookahead))
            else:
                shapes.append(part.conv.state_shape())  # type: ignore[union-attr,operator]  # a CausalBlock's conv
        return shapes

    def step(self, x: torch.Tensor, states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, State]:
        """Enhance the next chunk: float32 ``[batch, 1, n]`` (``n`` a multiple of ``total_stride``)
        and the state after the previous chunk -> ``[batch, 1, n]`` (lagging by ``lookahead``) and
        the new state (same order and shapes as :meth:`state_shapes`)."""
        self._check_step(x, states)
        it, new = iter(states), []

        def run(part: nn.Module, h: torch.Tensor) -> torch.Tensor:
            h, state = part(h, next(it))
            new.append(state)
            return h

        h, skips = x, []
        for down in self.downs:
            h = run(down, h)
            skips.append(h)
        if self.gru is not None:
            g = run(self.gru, h.transpose(1, 2)).transpose(1, 2)
            assert self.gru_out is not None  # made with the GRU
            h = h + self.gru_out(g)
        for b in reversed(range(self.depth - 1)):
            h = torch.cat([run(self.ups[b], h), skips[b]], dim=1)
        h = run(self.final, h)
        dry = run(self.delay, x) if self.delay is not None else x
        return dry + h, new

    # ------------------------------------------------------------------ geometry and cost

    @property
    def total_stride(self) -> int:
        return 2**self.depth

    @property
    def recurrent(self) -> bool:
        """True with a GRU: the context is unbounded and ``receptive_field`` is the convolutional part."""
        return self.gru is not None

    def input_span(self, t: int) -> Span:
        """Input samples ``(lo, hi)`` output ``t`` depends on through the convolutions and the delay line
        (the GRU adds unbounded past). ``hi <= t`` for strided models (causal)."""
        spans = [(t - self.lookahead, t - self.lookahead)]
        span = self.final.span(t, t)  # at level 0
        for b in range(self.depth - 1):
            spans.append(through_downs(self.downs, b, span))  # the skip of level b
            span = self.ups[b].span(*span)  # type: ignore[operator]  # at level b + 1 (a block's span())
        spans.append(through_downs(self.downs, self.depth - 1, span))
        return hull(spans)

    def macs(self, window: int) -> int:
        """MACs of one pass over ``window`` samples: the convolutions plus the GRU (3 gates per frame)."""
        self.check_window(window)
        convs = count_macs(self, torch.zeros(1, 1, window))
        gru = 3 * self.gru_hidden * (self.channels[-1] + self.gru_hidden) * (window // self.total_stride)
        return convs + gru

    def describe(self, window: int | None = None) -> dict[str, Any]:
        """The base figures plus ``lookahead``, ``gru_hidden`` and the number of state tensors."""
        return {**super().describe(window), "lookahead": self.lookahead, "gru_hidden": self.gru_hidden, "states": len(self.state_shapes())}


def _check_args(
    depth: int,
    width: float,
    max_channels: int,
    max_kernel: int,
    min_kernel: int,
    final_kernel: int,
    downsample: str,
    dropout: float,
    lookahead: int,
    gru_hidden: int,
) -> None:
    """Raise ``ValueError`` (one line) for arguments that cannot build a :class:`CausalUNet`."""
    check_unet_args(
        depth=depth,
        width=width,
        max_channels=max_channels,
        max_kernel=max_kernel,
        min_kernel=min_kernel,
        downsample=downsample,
        multiscale_kernels=(3,),
        dropout=dropout,
    )
    if min_kernel < 2 or final_kernel < 2:
        raise ValueError(f"causal kernels must be at least 2, got min_kernel {min_kernel}, final_kernel {final_kernel}")
    if lookahead < 0 or gru_hidden < 0:
        raise ValueError(f"lookahead and gru_hidden must not be negative, got {lookahead} and {gru_hidden}")
