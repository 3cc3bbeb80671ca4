"""Collaborative sampling: the split generator is the generator, refinement is bounded and moves towards what
the discriminator calls clean, shaping trains the discriminator, and --collab adds an offline row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import train_argv

from rt_enhance.model import Generator, build_size
from rt_enhance.realtime.metadata import ModelInfo
from rt_enhance.training import cli, collab, models
from rt_enhance.training.evaluate import engine_geometry, stream_file

# torch on one thread in every test here.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny() -> Generator:
    torch.manual_seed(0)
    return build_size("tiny", sample_rate=16000).eval()


def _batches(n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(1024) / 16000
    out = []
    for _ in range(n):
        f = 200 + 400 * torch.rand(4, 1, 1, generator=g)
        clean = 0.3 * torch.sin(2 * torch.pi * f * t)
        out.append((clean + 0.05 * torch.randn(clean.shape, generator=g), clean))
    return out


def test_encode_decode_is_the_generator() -> None:
    generator, (x, _) = _tiny(), _batches(1)[0]
    with torch.no_grad():
        assert torch.allclose(collab.decode(generator, *collab.encode(generator, x), x), generator(x), atol=1e-6)


def test_refinement_is_bounded_and_raises_the_discriminator_score() -> None:
    generator = _tiny()
    disc = models.build_discriminator(generator, window=1024, conditional=False)
    torch.manual_seed(1)
    collab.train_discriminator(generator, disc, _batches(15), count=15, lr=1e-3, device="cpu", settings=None)
    x, _ = _batches(1, seed=9)[0]
    settings = collab.CollabSettings(steps=5, rate=0.1)
    before = {k: v.clone() for k, v in {**disc.state_dict(), **generator.state_dict()}.items()}
    refined, taken = collab.refine(generator, disc, x, settings)
    assert refined.shape == x.shape and 0 <= taken <= 5
    with torch.no_grad():
        plain = generator(x)
        assert disc.logits(refined).mean() > disc.logits(plain).mean()
    unchanged, none = collab.refine(generator, disc, x, collab.CollabSettings(steps=0))
    assert none == 0 and torch.allclose(unchanged, plain, atol=1e-6)
    after = {**disc.state_dict(), **generator.state_dict()}
    assert all(torch.equal(before[k], after[k]) for k in before)  # refinement changes no weight


def test_processor_runs_through_the_engine_windowing() -> None:
    generator = _tiny()
    disc = models.build_discriminator(generator, window=1024, conditional=True).eval()
    info = ModelInfo(sample_rate=16000, window=1024, hop=160, lookahead=160, crossfade=80)
    proc = collab.CollabProcessor(info, generator, disc, collab.CollabSettings(steps=2))
    x = 0.1 * torch.randn(4000, generator=torch.Generator().manual_seed(0)).numpy()
    y = stream_file(proc, engine_geometry(info), x)
    assert y.shape == x.shape and proc.steps and max(proc.steps) <= 2


def test_only_the_windowed_generator_can_be_split() -> None:
    with pytest.raises(collab.CollabError):
        collab.check_generator(models.build_autoencoder(_tiny()))


def test_collab_run_adds_an_offline_row(tmp_path: Path, tiny_corpus: Path) -> None:
    flags = "-s 256 --size tiny -e 1 -c 6 -b 4 --val_count 1 --gan 0.05 --collab True --collab_shape 4 --collab_steps 5"
    argv = train_argv(
        tmp_path,
        tiny_corpus,
        "c",
        f"{flags} --speech false --engine_eval false --tensorboard false",
        "--preprocessing",
        "whitenoise 0 0.05",
    )
    assert cli.main(argv) == 0
    result = json.loads((tmp_path / "c" / "eval" / "metrics.json").read_text())
    rows = result["systems"]
    assert {"model (offline)", "model + collab (offline)"} <= set(rows)
    assert (tmp_path / "c" / "collab_discriminator.pt").is_file()
    print("collab vs plain:", rows["model + collab (offline)"], rows["model (offline)"])
