"""How fast a spectral network fits a small fixed set, against what free band gains on its grid reach there.

    python -m rt_enhance.benchmarks.fit CORPUS --start training/checkpoints/speech-erb.pt
    python -m rt_enhance.benchmarks.fit CORPUS --start training/checkpoints/speech-erb.pt --vary 'band_gru=32'
    python -m rt_enhance.benchmarks.fit CORPUS --size spec-erb --lr 1e-3
    python -m rt_enhance.benchmarks.fit CORPUS --oracle --lr 0.05 --batch 32

The set: ``--windows`` windows of ``--seconds`` s of the corpus's training voices (one per file, each at the same
level), each under its own stretch of one of ``rt-data``'s generated noises or textures (``--noise``, pink by
default) at ``--snr`` dB: one kind of noise at one level and nothing to keep, the easiest task this model family is
given (pink, white and brown are stationary), and few enough windows to memorise. Adam
on shuffled batches of ``--batch`` windows, the loss ``rt-train``'s SPEC (the compressed spectral loss with its
clamped SDR term); every ``--every`` steps the loss over the whole set, at the end PESQ-wb of input and output. At the
start and at the end, how the loss's two terms pull: each one's gradient norm and the cosine between them (near +1 at
the identity under noise, where both want the gains down; negative at a trained network, which sits where the SDR
term's waveform accuracy and the spectral distance trade against each other).

The network is a checkpoint (``--start``), a checkpoint with other constructor arguments whose tensors all fit
(``--vary``: the added layers as the constructor makes them, zero-initialised ways in), or a named size at random
(``--size``). ``--oracle`` fits free band gains per window and frame on the size's grid instead: not causal, it
knows every window whole, so it bounds what any network of that grid could reach on the set. A network that stays
far from it on a set it could memorise is held back by its form or its optimisation, not by the data it lacks.
A measurement, printed; nothing asserts it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from rt_enhance.training.corpus.noise_textures import KINDS, generate

RATE = 48000
LEVEL = 0.05  # each clean window's RMS (-26 dBFS)


def fixed_set(corpus: Path, windows: int, seconds: float, noise: str, snr_db: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) ``[windows, n]`` float32: one window from each of the first voices (in a seeded order) of
    ``corpus/voices/train`` long and loud enough, under its own stretch of ``noise`` at ``snr_db``."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    files = sorted((corpus / "voices" / "train").glob("*.wav"))
    clean = []
    for index in rng.permutation(len(files)):
        x, rate = sf.read(files[index], dtype="float32", always_2d=True)
        x = x.mean(axis=1)
        if rate != RATE or len(x) < n:
            continue
        start = int(rng.integers(0, len(x) - n + 1))
        x = x[start : start + n]
        rms = float(np.sqrt(np.mean(x**2)))
        if rms < 3e-3:  # mostly silence
            continue
        clean.append(x * (LEVEL / rms))
        if len(clean) == windows:
            break
    if len(clean) < windows:
        raise ValueError(f"{corpus}/voices/train holds {len(clean)} files of at least {seconds} s at {RATE} Hz; asked for {windows}")
    noisy = [c + generate(noise, n, RATE, rng) * (LEVEL * 10 ** (-snr_db / 20)) for c in clean]
    return np.stack(noisy).astype(np.float32), np.stack(clean).astype(np.float32)


def network(start: str | None, size: str, vary: dict[str, object]):
    """The spectral network to fit: ``start``'s (with ``vary``'s arguments changed, every stored tensor loaded), or
    ``size`` at random."""
    import torch

    from rt_enhance.model.checkpoint import load_checkpoint
    from rt_enhance.model.sizes import get_size
    from rt_enhance.model.spectral import SpectralUNet

    if start is None:
        torch.manual_seed(0)
        return SpectralUNet(**{**get_size(size).kwargs, **vary})
    source, _ = load_checkpoint(start)
    if not isinstance(source, SpectralUNet):
        raise ValueError(f"{start}: needs a spectral model (SpectralUNet)")
    if "norm" in vary:  # the blocks' layers move: a PReLU's slopes would load into a normalisation's scales
        raise ValueError("--vary norm: a batch-normalised network starts at random (use --size spec-erb-norm)")
    model = SpectralUNet(**{**source.init_kwargs, **vary})
    missing = model.load_state_dict(source.state_dict(), strict=False).missing_keys
    print(f"started from {start}" + (f"; new: {', '.join(sorted({k.split('.')[0] for k in missing}))}" if missing else ""))
    return model


class FreeGains:
    """Free band gains per window and frame on ``model``'s grid, through the model's own gain map (``max_gain *
    sigmoid``, 1 at zero), in place of its network: :meth:`apply` before each forward names the windows."""

    def __init__(self, model, windows: int, frames: int) -> None:
        import torch

        self.model, self.rows = model, torch.arange(0)
        self.logits = torch.nn.Parameter(torch.zeros(windows, frames, model.bands or model.bins))
        base = model.heads

        def heads(power, h, *rest, **named):
            gain, *outputs = base(power, h, *rest, **named)
            z = self.logits[self.rows][:, : gain.shape[1]]
            return (model.to_bins(model.max_gain * torch.sigmoid(z + model._gain_bias)), *outputs)

        model.heads = heads

    def apply(self, rows) -> None:
        self.rows = rows


def fit(
    model, noisy: np.ndarray, clean: np.ndarray, *, steps: int, lr: float, batch: int, every: int, oracle: bool
) -> tuple[np.ndarray, list[tuple[int, float, float]]]:
    """Train, printing the whole set's loss every ``every`` steps; the outputs ``[windows, n - lookahead]`` and the
    rows (step, loss, CPU seconds so far)."""
    import torch

    from rt_enhance.training.losses import SPEC_SDR_WEIGHT, clamped_sdr, compressed_spectral_loss

    x, s = torch.from_numpy(noisy)[:, None], torch.from_numpy(clean)[:, None]
    look = model.lookahead
    free = FreeGains(model, len(x), x.shape[-1] // model.hop + 1) if oracle else None
    params = [free.logits] if free is not None else list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(0)

    def loss_of(rows: torch.Tensor) -> torch.Tensor:
        if free is not None:
            free.apply(rows)
        y = model(x[rows])
        return compressed_spectral_loss(y[..., look:], s[rows][..., : s.shape[-1] - look])

    def whole() -> float:
        model.eval()
        with torch.no_grad():
            value = float(np.mean([loss_of(torch.arange(i, min(i + batch, len(x)))).item() for i in range(0, len(x), batch)]))
        model.train()
        return value

    def terms() -> None:
        """How the loss's two terms pull on the whole set: each one's gradient norm and the cosine between them."""
        if free is not None:
            free.apply(torch.arange(len(x)))
        y = model(x)[..., look:]
        target = s[..., : s.shape[-1] - look]
        spectral = compressed_spectral_loss(y, target, sdr_weight=0.0)
        sdr = -SPEC_SDR_WEIGHT * clamped_sdr(y, target).mean()
        pulls = []
        for term in (spectral, sdr):
            grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
            pulls.append(torch.cat([g.flatten() for g in grads if g is not None]))
        cosine = torch.nn.functional.cosine_similarity(pulls[0], pulls[1], dim=0).item()
        print(
            f"terms: spectral {spectral.item():+.4f} (gradient norm {pulls[0].norm().item():.3f}), SDR term {sdr.item():+.4f} "
            f"(gradient norm {pulls[1].norm().item():.3f}); cosine of the two gradients {cosine:+.2f}",
            flush=True,
        )

    rows_out, cpu = [], time.process_time()
    model.train()
    terms()
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            rows_out.append((step, whole(), time.process_time() - cpu))
            print(f"step {step:5d}  loss {rows_out[-1][1]:+.4f}  {rows_out[-1][2]:7.0f} CPU s", flush=True)
        if step == steps:
            break
        rows = torch.randperm(len(x), generator=generator)[:batch]
        loss = loss_of(rows)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)  # rt-train's --clip
        optimizer.step()
    terms()
    model.eval()
    with torch.no_grad():
        outputs = []
        for i in range(0, len(x), batch):
            rows = torch.arange(i, min(i + batch, len(x)))
            if free is not None:
                free.apply(rows)
            outputs.append(model(x[rows])[:, 0, look:].numpy())
    return np.concatenate(outputs), rows_out


def main(argv: list[str] | None = None) -> int:
    from rt_enhance.model.registry import parse_vary

    p = argparse.ArgumentParser(prog="python -m rt_enhance.benchmarks.fit", description=__doc__.splitlines()[0])
    p.add_argument("corpus", type=Path, help="an rt-data build folder (its voices/train)")
    p.add_argument("--start", help="a spectral checkpoint to start from (default: --size at random)")
    p.add_argument("--size", default="spec-erb", help="the named size to build when there is no --start, and the grid of --oracle")
    p.add_argument("--vary", default="", help="constructor arguments to change, NAME=VALUE ...")
    p.add_argument("--oracle", action="store_true", help="fit free band gains per window and frame instead of a network")
    p.add_argument("--noise", default="pink", choices=tuple(KINDS))
    p.add_argument("--snr", type=float, default=5.0)
    p.add_argument("--windows", type=int, default=32)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--every", type=int, default=50)
    args = p.parse_args(argv)
    import torch

    from rt_enhance.training import metrics

    torch.set_num_threads(1)
    try:
        vary = parse_vary(args.vary)
        noisy, clean = fixed_set(args.corpus, args.windows, args.seconds, args.noise, args.snr)
        model = network(None if args.oracle else args.start, args.size, vary)
    except (OSError, KeyError, ValueError) as exc:
        print(f"fit: {exc}", file=sys.stderr)
        return 2
    print(f"{args.windows} windows of {args.seconds} s, {args.noise} noise at {args.snr:g} dB; batches of {args.batch}, lr {args.lr:g}")
    out, _ = fit(model, noisy, clean, steps=args.steps, lr=args.lr, batch=args.batch, every=args.every, oracle=args.oracle)
    look = model.lookahead
    scores = [
        (metrics.pesq_wb(c[: len(c) - look], x[: len(x) - look], RATE), metrics.pesq_wb(c[: len(c) - look], y, RATE))
        for c, x, y in zip(clean, noisy, out)
    ]
    pin, pout = np.nanmean(np.array(scores, dtype=float), axis=0)
    print(f"PESQ-wb: input {pin:.3f}, output {pout:.3f} (mean over the windows PESQ could score)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
