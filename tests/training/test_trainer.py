"""The training step: overfitting one batch drives the loss down; GAN and feature-loss steps train what they
should; the checkpoint meta is what rt-export needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import train_argv

from rt_enhance.model import Generator, load_checkpoint
from rt_enhance.training import models, runtime
from rt_enhance.training.config import make_config
from rt_enhance.training.degrade import parse_pipeline
from rt_enhance.training.trainer import build_parts, new_generator, train_step

CPU = runtime.Runtime(device=torch.device("cpu"))


# torch on one thread in every test here.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(1024) / 16000
    clean = torch.stack([0.3 * torch.sin(2 * torch.pi * f * t) for f in (220.0, 330.0, 440.0, 550.0)])[:, None]
    return clean + 0.05 * torch.randn(clean.shape, generator=g), clean


def _cfg(**overrides):
    base = dict(name="t", rate=16000, window=1024, size="tiny", dropout=0.0, lr_g=3e-3, batch=4, clip=1.0)
    return make_config({**base, **overrides})


def test_overfitting_one_batch_drives_the_loss_down() -> None:
    cfg = _cfg()
    parts = build_parts(cfg, CPU, new_generator(cfg), None)
    x, clean = _batch()
    first = train_step(parts, x, clean, CPU)["loss"]
    for _ in range(120):
        last = train_step(parts, x, clean, CPU)["loss"]
    assert last < first / 20, (first, last)


def test_gan_and_feature_steps_train_their_parts(tmp_path: Path) -> None:
    cfg = _cfg(gan=0.1, conditional=True, ae=0.5, stft=1.0)
    generator = new_generator(cfg)
    autoencoder = models.build_autoencoder(generator).eval().requires_grad_(False)
    parts = build_parts(cfg, CPU, generator, autoencoder)
    d_before = [p.detach().clone() for p in parts.discriminator.parameters()]
    ae_before = [p.detach().clone() for p in autoencoder.parameters()]
    g_before = [p.detach().clone() for p in generator.parameters()]
    stats = train_step(parts, *_batch(), CPU)
    assert {"loss", "recon", "stft", "adv", "feat", "d_loss", "d_real", "d_fake"} <= set(stats)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(d_before, parts.discriminator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g_before, generator.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(ae_before, autoencoder.parameters()))  # frozen


def test_discriminator_and_autoencoder_follow_the_generator_shape() -> None:
    generator = new_generator(_cfg())
    disc = models.build_discriminator(generator, window=1024, conditional=True)
    assert disc.channels == generator.channels and disc.in_channels == 2
    ae = models.build_autoencoder(generator)
    assert ae.channels == generator.channels and ae.init_kwargs["dropout"] == 0.0


@pytest.mark.parametrize(
    "spec, task",
    [
        ("sample 4000 16000", "bandwidth_extension"),
        ("lowpass 3000", "bandwidth_extension"),
        ("whitenoise 0 0.01", "denoise"),
        ("noise synth 0 10", "denoise"),
        ("", "denoise"),
        ("rir simulate 0.3 0.6", "dereverb"),
        ("sample 8000 16000,noise synth 0 10", "joint"),
        ("gain -3 3", "denoise"),
    ],
)
def test_task_follows_the_preprocessing(spec: str, task: str) -> None:
    assert models.task_of(parse_pipeline(spec)) == task


def test_engine_defaults_fit_the_window() -> None:
    generator = new_generator(_cfg())
    at_16k = models.engine_defaults(generator, rate=16000, window=1024)
    assert at_16k == {"hop": 160, "lookahead": 160, "crossfade": 80}
    at_48k = models.engine_defaults(generator, rate=48000, window=2048)
    assert at_48k == {"hop": 480, "lookahead": 480, "crossfade": 240}
    small = models.engine_defaults(generator, rate=48000, window=512)
    assert small["hop"] + small["lookahead"] <= 512


def test_size_depth_and_model_args_build_the_generator() -> None:
    assert models.generator_kwargs(size="", depth=3, dropout=0.1, rate=8000, model_args={"prelu": True}) == {
        "depth": 3,
        "dropout": 0.1,
        "sample_rate": 8000,
        "prelu": True,
    }
    g = models.build_generator(
        "windowed", models.generator_kwargs(size="tiny", depth=9, dropout=0.0, rate=16000, model_args={"max_channels": 8})
    )
    assert isinstance(g, Generator) and g.depth == 3 and max(g.channels) == 8
    with pytest.raises(models.ModelSetupError, match="unknown model size"):
        models.generator_kwargs(size="huge", depth=4, dropout=0.0, rate=16000, model_args={})


def test_causal_arch_builds_the_streaming_model() -> None:
    kwargs = models.generator_kwargs(size="stream-tiny", depth=4, dropout=0.0, rate=16000, model_args={}, arch="causal")
    model = models.build_generator("causal", kwargs)
    assert type(model).__name__ == "CausalUNet" and models.lookahead_of(model) == 24
    with pytest.raises(models.ModelSetupError, match="add --arch causal"):
        models.generator_kwargs(size="stream-tiny", depth=4, dropout=0.0, rate=16000, model_args={})


def test_best_checkpoint_meta_is_what_rt_export_reads(tmp_path: Path, tiny_corpus: Path) -> None:
    from rt_enhance.training import cli

    flags = "-s 1024 --size tiny -e 1 -c 1 -b 4 --eval false --tensorboard false"
    argv = train_argv(tmp_path, tiny_corpus, "m", flags, "--preprocessing", "sample 4000 16000")
    assert cli.main(argv) == 0
    _, extra = load_checkpoint(tmp_path / "m" / "best.pt")
    meta = extra["meta"]
    assert {k: meta[k] for k in ("sample_rate", "window", "hop", "lookahead", "crossfade", "task", "name")} == {
        "sample_rate": 16000,
        "window": 1024,
        "hop": 160,
        "lookahead": 160,
        "crossfade": 80,
        "task": "bandwidth_extension",
        "name": "m",
    }
    assert meta["training"]["dataset"] == "simple" and meta["training"]["epochs"] == 1
    assert meta["training"]["hours_seen"] == pytest.approx(4 * 1024 / 16000 / 3600, rel=1e-3)
    assert set(meta["metrics"]["val"]) == {"loss", "si_sdr", "snr"}
    assert meta["training"]["config"]["size"] == "tiny"


def test_init_from_copies_the_weights_and_lets_a_model_gain_copies(tmp_path: Path) -> None:
    from rt_enhance.model import save_checkpoint
    from rt_enhance.model.checkpoint import CheckpointError
    from rt_enhance.model.spectral import SpectralUNet

    torch.manual_seed(0)
    source = SpectralUNet(hop=48, channels=[4, 8], kernel=3, gru_hidden=8)
    with torch.no_grad():
        source.final.bias.fill_(0.7)
    save_checkpoint(tmp_path / "gains.pt", source)
    cfg = dict(arch="spectral", size="spec-small", rate=48000, window=480, init_from=str(tmp_path / "gains.pt"))
    args = {"hop": 48, "channels": [4, 8], "kernel": 3, "gru_hidden": 8}
    same = new_generator(_cfg(**cfg, model_args=args))
    torch.testing.assert_close(same.state_dict(), source.state_dict())
    grown = new_generator(_cfg(**cfg, model_args={**args, "copies": [2000.0]}))
    assert float(grown.final.bias.detach()) == pytest.approx(0.7) and grown.copy_head is not None
    filtered = new_generator(_cfg(**cfg, model_args={**args, "df_bins": 12, "df_order": 3}))  # a deep filter, at zero
    assert float(filtered.final.bias.detach()) == pytest.approx(0.7) and filtered.df_head is not None
    assert not filtered.df_head.weight.any() and not filtered.df_head.bias.any()
    banded = new_generator(_cfg(**cfg, model_args={**args, "band_gru": 4}))  # a band GRU whose output starts at zero
    assert banded.band_context is not None and not banded.band_context.out.weight.any()
    x = torch.randn(1, 1, 480)
    with torch.no_grad():  # so it begins as the model it grew from
        torch.testing.assert_close(banded(x), source(x))
    with pytest.raises(CheckpointError, match="init_from"):  # other channels: another network
        new_generator(_cfg(**cfg, model_args={**args, "channels": [4, 16]}))


def test_init_from_a_narrower_gru_starts_as_that_model(tmp_path: Path) -> None:
    from rt_enhance.model import save_checkpoint
    from rt_enhance.model.spectral import SpectralUNet

    torch.manual_seed(0)
    source = SpectralUNet(hop=48, channels=[4, 8], kernel=3, gru_hidden=8)
    with torch.no_grad():
        source.final.weight.normal_(0, 0.5)  # gains away from 1, so the GRU's part shows in the output
        source.gru_out.weight.normal_(0, 0.5)
    save_checkpoint(tmp_path / "narrow.pt", source)
    cfg = dict(arch="spectral", size="spec-small", rate=48000, window=480, init_from=str(tmp_path / "narrow.pt"))
    wide = new_generator(_cfg(**cfg, model_args={"hop": 48, "channels": [4, 8], "kernel": 3, "gru_hidden": 20}))
    assert wide.gru is not None and wide.gru.hidden_size == 20
    assert wide.gru.weight_hh_l0[8:20].abs().sum() > 0 and not wide.gru.weight_hh_l0[:8, 8:].any()  # new units unseen
    x = torch.randn(2, 1, 48 * 30)
    with torch.no_grad():
        torch.testing.assert_close(wide(x), source(x))


def test_init_from_a_model_on_another_grid_shares_the_tensors_that_fit(tmp_path: Path) -> None:
    from rt_enhance.model import save_checkpoint
    from rt_enhance.model.spectral import SpectralUNet

    torch.manual_seed(0)
    source = SpectralUNet(hop=240, channels=[4, 8], kernel=3, gru_hidden=16, bands=24)
    save_checkpoint(tmp_path / "speech.pt", source)
    args = {"hop": 96, "channels": [4, 8], "kernel": 3, "gru_hidden": 8, "bands": 16}  # a monitor's grid
    monitor = new_generator(
        _cfg(arch="spectral", size="spec-small", rate=48000, window=96, init_from=str(tmp_path / "speech.pt"), model_args=args)
    )
    theirs, ours = source.state_dict(), monitor.state_dict()
    shared = [k for k in ours if k in theirs and ours[k].shape == theirs[k].shape]
    assert shared and all(torch.equal(ours[k], theirs[k]) for k in shared)
    assert any(k.startswith("gru.") for k in ours if k not in shared)  # the recurrent core is new


def test_the_voice_head_learns_where_a_voice_is_and_leaves_the_output_alone(tmp_path: Path) -> None:
    from rt_enhance.model import save_checkpoint
    from rt_enhance.model.spectral import SpectralUNet
    from rt_enhance.training import losses

    torch.manual_seed(0)
    source = SpectralUNet(hop=48, channels=[4, 8], kernel=3, gru_hidden=8)
    with torch.no_grad():
        source.final.weight.normal_(0, 0.5)
    save_checkpoint(tmp_path / "plain.pt", source)
    args = {"hop": 48, "channels": [4, 8], "kernel": 3, "gru_hidden": 8}
    cfg = _cfg(arch="spectral", size="spec-small", rate=48000, window=4800, init_from=str(tmp_path / "plain.pt"), model_args=args,
               voice=1.0, dataset_args={"voices": "speech"}, lr_g=1e-2)  # fmt: skip
    model = new_generator(cfg)  # a plain model's every tensor fits; the head is new
    assert isinstance(model, SpectralUNet) and model.voice is not None and model.init_kwargs["voice_head"] is True
    x = torch.randn(2, 1, 4800)
    with torch.no_grad():  # the same output as the model without the head, and no read-out outside training
        torch.testing.assert_close(model.eval()(x), source(x))
    assert model.voice_logits is None
    # a voice in the second half of one window, nothing of a voice in the other (its file is music)
    target = torch.zeros(2, 1, 4800)
    target[:, :, 2400:] = 0.1 * torch.sin(torch.arange(2400) * 0.3)
    flags = torch.tensor([[1.0], [0.0]])
    labels = losses.voice_activity(target, flags, 48, 100, 48000)
    assert labels[0, :49].sum() == 0 and labels[0, 50:].min() == 1 and labels[1].sum() == 0
    quiet_after = target.clone()
    quiet_after[:, :, 3600:] = 0
    held = losses.voice_activity(quiet_after, flags, 48, 100, 48000)[0]  # the 300 ms hangover holds 10 ms hops of silence
    assert held[75:].min() == 1
    parts = build_parts(cfg, CPU, model.train(), None)
    target[1] = 0  # trained on a voice that starts half-way and on a window of noise only, it learns which is which
    first = train_step(parts, target + 0.05 * torch.randn(target.shape), target, CPU, flags)["voice"]
    for _ in range(100):
        last = train_step(parts, target + 0.05 * torch.randn(target.shape), target, CPU, flags)["voice"]
    assert last < 0.3 * first


def test_voice_labels_and_the_voice_loss_come_together() -> None:
    from rt_enhance.training.config import ConfigError

    with pytest.raises(ConfigError, match="voices="):
        _cfg(arch="spectral", size="spec-small", voice=0.1)
    with pytest.raises(ConfigError, match="--voice"):
        _cfg(arch="spectral", size="spec-small", dataset_args={"voices": "speech"})


def test_train_only_moves_the_named_weights_and_freezes_the_rest() -> None:
    from rt_enhance.training.config import ConfigError

    args = {"hop": 48, "channels": [4, 8], "kernel": 3, "gru_hidden": 8, "bands": 12, "comb": 2}
    cfg = _cfg(arch="spectral", size="spec-small", rate=48000, window=4800, model_args=args, train_only="comb_", lr_g=1e-2)
    model = new_generator(cfg)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    parts = build_parts(cfg, CPU, model.train(), None)
    t = torch.arange(4800) / 48000
    clean = 0.3 * sum(torch.sin(2 * torch.pi * 150.0 * h * t) / h for h in range(1, 12))  # voiced: the comb has work
    for _ in range(3):
        train_step(parts, (clean + 0.1 * torch.randn(2, 1, 4800)), clean.expand(2, 1, 4800), CPU)
    moved = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert moved and all(name.startswith("comb_") for name in moved), moved
    assert {"comb_head.weight", "comb_in.weight"} <= moved
    with pytest.raises(ConfigError, match="no weight"):
        build_parts(_cfg(arch="spectral", size="spec-small", rate=48000, window=4800, model_args=args, train_only="nothing."), CPU,
                    new_generator(cfg), None)  # fmt: skip
