"""What every model of the family reports: geometry (total stride, ``valid_length``, receptive
field) and cost (parameters, MACs per second of audio at the model's sample rate).

Streaming, export and benchmarks read these instead of re-deriving them.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from rt_enhance.realtime.errors import GeometryError

logger = logging.getLogger(__name__)


class AudioModel(nn.Module):
    """Base of the model family. Subclasses set ``sample_rate``, ``init_kwargs`` (their constructor
    arguments, plain types only: checkpoints store them) and implement ``total_stride`` and
    ``input_span``.
    """

    sample_rate: int
    init_kwargs: dict[str, Any]

    @property
    def total_stride(self) -> int:
        """Input lengths must be multiples of this (the product of all downsampling)."""
        raise NotImplementedError

    def input_span(self, t: int) -> tuple[int, int]:
        """Input samples ``(lo, hi)`` (inclusive) that output sample ``t`` depends on, away from the edges."""
        raise NotImplementedError

    @property
    def receptive_field(self) -> int:
        """The widest input span of one output sample, in samples (over the ``total_stride`` phases)."""
        widths = [hi - lo + 1 for lo, hi in map(self.input_span, range(self.total_stride))]
        return max(widths)

    def valid_length(self, n: int) -> int:
        """The smallest length ``>= n`` (and ``>= total_stride``) the model accepts."""
        stride = self.total_stride
        return max(1, -(-n // stride)) * stride

    def check_window(self, window: int) -> None:
        """Raise :class:`GeometryError` unless ``window`` is a positive multiple of the total stride."""
        if window <= 0 or window % self.total_stride:
            raise GeometryError(
                f"window {window} is not a multiple of the model's total stride {self.total_stride}; "
                f"use {self.valid_length(max(window, 1))}"
            )

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`GeometryError` for an input that is not ``[batch, in_channels, valid length]``.

        Skipped while tracing for export (the exporter checks the window itself).
        """
        if torch.jit.is_tracing():
            return
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise GeometryError(f"expected input [batch, {self.in_channels}, samples], got {list(x.shape)}")
        self.check_window(x.shape[-1])

    def param_count(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def macs(self, window: int) -> int:
        """Multiply-accumulates of one forward pass over ``[1, channels, window]`` (conv and linear layers)."""
        self.check_window(window)
        return count_macs(self, torch.zeros(1, self.in_channels, window))

    def macs_per_second(self, window: int | None = None) -> int:
        """MACs for one full pass over one second of audio at ``sample_rate`` (one channel).

        A windowed engine that advances by ``hop`` runs ``window / hop`` times this.
        """
        window = window or self.example_window
        return round(self.macs(window) * self.sample_rate / window)

    @property
    def example_window(self) -> int:
        """A window the model accepts, used for cost figures when none is given."""
        return self.valid_length(4096)

    @property
    def in_channels(self) -> int:
        """Channels of the input tensor (1, or 2 for conditional discriminators)."""
        return 1

    def describe(self, window: int | None = None) -> dict[str, Any]:
        """The figures the CLIs print and the exporter writes: family, params, MACs/s, RF, stride."""
        return {
            "family": type(self).__name__,
            "params": self.param_count(),
            "macs_per_second": self.macs_per_second(window),
            "receptive_field": self.receptive_field,
            "total_stride": self.total_stride,
            "sample_rate": self.sample_rate,
        }


def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    """MACs of Conv1d and Linear layers in one forward pass of ``example`` (eval mode, no grad)."""
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv1d):
            per_output = module.in_channels // module.groups * module.kernel_size[0]
            total += output.numel() * per_output
        elif isinstance(module, nn.Linear):  # the only other kind hooked below
            total += output.numel() * module.in_features

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in layers]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


class StreamingModel(AudioModel):
    """A model that runs chunk by chunk with explicit state (exported as a stateful ONNX step).

    Subclasses implement ``state_names``, ``state_shapes`` (``-1`` marks the batch axis) and
    ``step(x, states) -> (y, new_states)``; ``forward`` is ``step`` from the zero state, so
    streaming equals offline by construction. ``lookahead`` is how many samples the output lags.
    """

    lookahead: int = 0

    def state_names(self) -> list[str]:
        raise NotImplementedError

    def state_shapes(self) -> list[tuple[int, ...]]:
        raise NotImplementedError

    def step(self, x: torch.Tensor, states) -> tuple[torch.Tensor, list[torch.Tensor]]:
        raise NotImplementedError

    def initial_state(self, batch: int, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> list[torch.Tensor]:
        """Zero state for ``batch`` independent streams (a fresh start, or a reset)."""
        return [torch.zeros([batch if d == -1 else d for d in shape], dtype=dtype, device=device) for shape in self.state_shapes()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Offline: ``[batch, 1, T]`` (``T`` a multiple of ``total_stride``) -> ``[batch, 1, T]``,
        ``y[..., t]`` estimating ``clean[..., t - lookahead]``; the zero-state :meth:`step`."""
        self.check_input(x)
        return self.step(x, self.initial_state(x.shape[0], dtype=x.dtype, device=x.device))[0]

    def _check_step(self, x: torch.Tensor, states) -> None:
        """Raise :class:`GeometryError` for a chunk or a state set that does not fit (skipped while tracing)."""
        if torch.jit.is_tracing():
            return
        self.check_input(x)
        shapes = self.state_shapes()
        if len(states) != len(shapes):
            raise GeometryError(f"expected {len(shapes)} state tensors ({', '.join(self.state_names())}), got {len(states)}")
        for name, shape, state in zip(self.state_names(), shapes, states):
            want = [x.shape[0] if d == -1 else d for d in shape]
            if list(state.shape) != want:
                raise GeometryError(f"state '{name}' has shape {list(state.shape)}, expected {want}")
