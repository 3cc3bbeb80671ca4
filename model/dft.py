"""The spectral model's DFTs as two small matrix products each (Cooley-Tukey with one split), exportable.

A frame of ``N = P Q`` samples has ``F = N / 2 + 1`` bins. The direct real DFT is one ``[N, F]`` product
for the real part and one for the imaginary part (``2 N F`` multiply-adds, ~231 k for N = 480). Split
``n = Q n1 + n2`` and ``k = k1 + P k2``:

    X[k1 + P k2] = sum_n2 W_Q^(n2 k2) * W_N^(n2 k1) * (sum_n1 x[Q n1 + n2] W_P^(n1 k1)),   W_M = exp(-2 pi i / M)

so a ``P``-point DFT over ``n1`` (real input: ``2 N P`` multiply-adds), a twiddle, and a ``Q``-point complex
DFT over ``n2``, of which only the ``k2 <= (F - 1) / P`` that reach a kept bin are computed. For N = 480
(P = 20, Q = 24) that is ~46 k multiply-adds, a fifth of the direct products; each stage is one large
matrix product over every frame (its contraction index moved last by a transpose), which is what
onnxruntime and torch run fastest. The inverse runs the same stages backwards and computes only the
output samples that are asked for (the synthesis window is zero before the frame's last ``tail``).
Outputs equal the direct products' to float rounding (about 1e-6 of the largest magnitude).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def split(n: int, tail: int = 0) -> int:
    """The factor ``P`` of ``n`` (``1 < P < n``) with the fewest multiply-adds for a real frame of ``n``
    samples and ``n / 2 + 1`` bins; ``n`` itself when ``n`` is prime (the direct product). With ``tail``, only
    factors whose ``n / P`` divides it (an inverse that computes the last ``tail`` samples needs whole rows)."""
    bins = n // 2 + 1
    costs = {p: 2 * n * p + 4 * n * ((bins - 1) // p + 1) for p in range(2, n) if n % p == 0 and (not tail or tail % (n // p) == 0)}
    return min(costs, key=lambda p: costs[p]) if costs else n


def _complex_stage(angle: torch.Tensor) -> torch.Tensor:
    """``[[cos, sin], [-sin, cos]]`` of ``angle`` ``[a, b]``: ``[re, im] (2a) @ it = [re, im] (2b)`` of
    ``(re + i im) exp(i angle)``, as one real matrix ``[2a, 2b]``."""
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.cat([torch.cat([c, s], 1), torch.cat([-s, c], 1)], 0)


class RealDFT(nn.Module):
    """``frames [..., N]`` -> the DFT of ``window * frames``: ``(re, im)``, each ``[..., N / 2 + 1]``."""

    window: torch.Tensor
    first: torch.Tensor
    twiddle_cos: torch.Tensor
    twiddle_sin: torch.Tensor
    second: torch.Tensor

    def __init__(self, n: int, window: torch.Tensor) -> None:
        super().__init__()
        d = torch.float64
        self.n, self.bins, self.p = n, n // 2 + 1, split(n)
        self.q, self.k2 = n // self.p, (self.bins - 1) // self.p + 1
        n1, n2, k2 = torch.arange(self.p, dtype=d), torch.arange(self.q, dtype=d), torch.arange(self.k2, dtype=d)
        first = 2 * math.pi * n1[:, None] * n1[None, :] / self.p  # [n1, k1]
        twiddle = -2 * math.pi * n2[:, None] * n1[None, :] / n  # [n2, k1]
        self.register_buffer("window", window.to(d).float(), persistent=False)
        self.register_buffer("first", torch.cat([torch.cos(first), -torch.sin(first)], 1).float(), persistent=False)
        self.register_buffer("twiddle_cos", torch.cos(twiddle).float(), persistent=False)
        self.register_buffer("twiddle_sin", torch.sin(twiddle).float(), persistent=False)
        self.register_buffer("second", _complex_stage(-2 * math.pi * n2[:, None] * k2[None, :] / self.q).float(), persistent=False)
        self.macs = 2 * n * self.p + 4 * n + 4 * n * self.k2  # per frame: the stages and the twiddle

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lead, p = frames.shape[:-1], self.p
        x = (frames * self.window).reshape(*lead, p, self.q).transpose(-1, -2)  # [..., n2, n1]
        a = x @ self.first  # [..., n2, k1 re | k1 im]
        a_re, a_im = a[..., :p], a[..., p:]
        b_re = a_re * self.twiddle_cos - a_im * self.twiddle_sin
        b_im = a_re * self.twiddle_sin + a_im * self.twiddle_cos
        out = (torch.cat([b_re, b_im], -2).transpose(-1, -2) @ self.second).transpose(-1, -2)  # [..., k2 re | k2 im, k1]
        re = out[..., : self.k2, :].reshape(*lead, -1)[..., : self.bins]  # bin k1 + P k2
        im = out[..., self.k2 :, :].reshape(*lead, -1)[..., : self.bins]
        return re, im


class InverseRealDFT(nn.Module):
    """``(re, im)`` ``[..., N / 2 + 1]`` -> the last ``tail`` samples of the real inverse DFT times ``window``
    (``[N]``; its last ``tail`` values are used): ``[..., tail]``. The split is the cheapest whose ``N / P`` divides ``tail``."""

    scale: torch.Tensor
    window: torch.Tensor
    first: torch.Tensor
    twiddle_cos: torch.Tensor
    twiddle_sin: torch.Tensor
    last: torch.Tensor

    def __init__(self, n: int, window: torch.Tensor, tail: int) -> None:
        super().__init__()
        d = torch.float64
        self.n, self.bins, self.p = n, n // 2 + 1, split(n, tail)
        self.q, self.k2 = n // self.p, (self.bins - 1) // self.p + 1
        if tail % self.q or not 0 < tail <= n:
            raise ValueError(f"tail {tail} must be a positive multiple of {self.q} up to {n}")
        scale = torch.full((self.bins,), 2.0 / n, dtype=d)
        scale[0] = scale[-1] = 1.0 / n  # N even: DC and Nyquist appear once
        k1, n2, k2 = torch.arange(self.p, dtype=d), torch.arange(self.q, dtype=d), torch.arange(self.k2, dtype=d)
        n1 = torch.arange((n - tail) // self.q, self.p, dtype=d)  # only the rows that hold the last `tail` samples
        twiddle = 2 * math.pi * k1[:, None] * n2[None, :] / n  # [k1, n2]
        last = 2 * math.pi * k1[:, None] * n1[None, :] / self.p  # [k1, n1]
        self.register_buffer("scale", scale.float(), persistent=False)
        self.register_buffer("window", window.to(d)[n - tail :].float(), persistent=False)
        self.register_buffer("first", _complex_stage(2 * math.pi * k2[:, None] * n2[None, :] / self.q).float(), persistent=False)
        self.register_buffer("twiddle_cos", torch.cos(twiddle).float(), persistent=False)
        self.register_buffer("twiddle_sin", torch.sin(twiddle).float(), persistent=False)
        self.register_buffer("last", torch.cat([torch.cos(last), -torch.sin(last)], 0).float(), persistent=False)
        self.macs = 4 * n * self.k2 + 4 * n + 2 * tail * self.p  # per frame

    def forward(self, re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
        lead, p, q = re.shape[:-1], self.p, self.q
        pad = (0, self.k2 * p - self.bins)
        z_re = nn.functional.pad(re * self.scale, pad).reshape(*lead, self.k2, p)  # [..., k2, k1]
        z_im = nn.functional.pad(im * self.scale, pad).reshape(*lead, self.k2, p)
        c = torch.cat([z_re, z_im], -2).transpose(-1, -2) @ self.first  # [..., k1, n2 re | n2 im]
        c_re, c_im = c[..., :q], c[..., q:]
        d_re = c_re * self.twiddle_cos - c_im * self.twiddle_sin
        d_im = c_re * self.twiddle_sin + c_im * self.twiddle_cos
        out = torch.cat([d_re, d_im], -2).transpose(-1, -2) @ self.last  # [..., n2, n1]: the real part
        return out.transpose(-1, -2).reshape(*lead, -1) * self.window
