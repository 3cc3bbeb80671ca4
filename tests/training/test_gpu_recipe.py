"""The GPU recipe on a CPU: a pack of a tiny corpus, the device degradation steps, and the time-budgeted
trainer through scripts/gpu-train.sh (a few seconds), resumed once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import signal

from rt_enhance.model.checkpoint import load_checkpoint
from rt_enhance.training import device_degrade as dd
from rt_enhance.training.degrade import parse_pipeline
from rt_enhance.training.pack import PackError, make_pack, read_manifest, unpacked_pipeline

ROOT = Path(__file__).resolve().parents[2]
RATE = 48000


def tiny_corpus(root: Path) -> Path:
    """speech/music/noise/rir train folders of a few seconds (24-bit WAV, as rt-data writes them)."""
    rng = np.random.default_rng(0)
    for kind in ("speech", "music", "noise", "rir"):
        (root / kind / "train").mkdir(parents=True)
    t = np.arange(int(1.6 * RATE)) / RATE
    for i in range(5):
        tone = 0.2 * np.sin(2 * np.pi * (150 + 40 * i) * t) * (1 + np.sin(2 * np.pi * 3 * t))
        sf.write(root / "speech" / "train" / f"s{i}.wav", tone, RATE, subtype="PCM_24")
    sf.write(root / "music" / "train" / "m0.wav", 0.1 * np.sin(2 * np.pi * 440 * t), RATE, subtype="PCM_24")
    sf.write(root / "noise" / "train" / "n0.wav", 0.1 * rng.standard_normal(2 * RATE), RATE, subtype="PCM_24")
    rir = np.zeros(2400)
    rir[10], rir[11:] = 0.5, 0.02 * rng.standard_normal(2389) * np.exp(-np.arange(2389) / 400)
    sf.write(root / "rir" / "train" / "r0.wav", rir, RATE, subtype="PCM_24")
    return root


def speech_pipeline(corpus: Path) -> str:
    out = subprocess.run(["bash", "-c", f'source {ROOT}/scripts/speech-pipeline.sh; speech_pipeline "$1" 0.3', "_",
                          str(corpus)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Path:
    corpus = tiny_corpus(tmp_path_factory.mktemp("corpus"))
    (corpus / "mix").mkdir()
    for kind in ("speech", "music"):
        (corpus / "mix" / kind).symlink_to(corpus / kind / "train")
    out = tmp_path_factory.mktemp("gpu") / "pack"
    make_pack(out, data_root=str(corpus / "mix"), preprocessing=speech_pipeline(corpus), codec="flac", max_mib=5)
    return out


# ----------------------------------------------------------------------------- the pack


def test_pack_holds_the_recipes_folders_compressed(pack):
    manifest = read_manifest(pack)
    assert set(manifest["folders"]) == {"clean", "dir-1", "dir-2"}
    assert manifest["folders"]["clean"]["files"] == 6
    assert sorted(p.suffix for p in (pack / "clean").rglob("*.*")) == [".flac"] * 6
    spec = unpacked_pipeline(pack)
    assert "{pack}" not in spec and str(pack.resolve() / "dir-2") in spec
    steps = parse_pipeline(spec).steps  # the folders exist and hold audio
    assert len(steps) == 6
    clean = sf.read(pack / "clean" / "speech" / "s0.flac")[0]
    assert clean.shape == (int(1.6 * RATE),)


def test_pack_over_the_cap_is_one_clear_error(pack, tmp_path):
    corpus = tmp_path / "c"
    tiny_corpus(corpus)
    with pytest.raises(PackError, match="over --max-mib"):
        make_pack(tmp_path / "p", data_root=str(corpus / "speech" / "train"), preprocessing="", codec="flac",
                  max_mib=0.01)
    assert not (tmp_path / "p" / "pack.json").exists()


def test_opus_pack_decodes_to_the_same_length(tmp_path):
    corpus = tiny_corpus(tmp_path / "c")
    manifest = make_pack(tmp_path / "p", data_root=str(corpus / "speech" / "train"), preprocessing="",
                         codec="opus", max_mib=5)
    assert manifest["codec"] == "opus"
    decoded, rate = sf.read(tmp_path / "p" / "clean" / "s1.ogg")
    original = sf.read(corpus / "speech" / "train" / "s1.wav")[0]
    assert rate == RATE and decoded.shape == original.shape


def test_packing_refuses_a_folder_that_is_not_a_pack(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("user data")
    corpus = tiny_corpus(tmp_path / "c")
    with pytest.raises(PackError, match="not a training pack"):
        make_pack(tmp_path / "mine", data_root=str(corpus / "speech" / "train"), preprocessing="")
    assert (tmp_path / "mine" / "keep.txt").is_file()


# ----------------------------------------------------------------------------- device steps


def _batch(n: int = 4, length: int = 9600) -> torch.Tensor:
    t = torch.arange(length) / RATE
    return torch.stack([0.1 * (k + 1) * torch.sin(2 * np.pi * (200 + 50 * k) * t) for k in range(n)])


def test_noise_is_added_at_the_drawn_snr():
    bank = dd.Bank.from_arrays([np.random.default_rng(1).standard_normal(20000).astype(np.float32)], torch.device("cpu"))
    clean = _batch()
    batch = dd.Batch(clean.clone(), clean, torch.ones(4, dtype=torch.bool))
    dd.Noise(bank, 7.0, 7.0).apply(batch, batch.active, torch.Generator().manual_seed(0))
    noise = batch.degraded - clean
    snr = 10 * torch.log10(clean.square().mean(1) / noise.square().mean(1))
    assert torch.allclose(snr, torch.full((4,), 7.0), atol=1e-3)
    assert torch.equal(batch.target, clean)


def test_identity_stops_the_later_steps_and_maybe_never_runs_at_zero():
    clean = _batch()
    steps = (dd.Maybe(0.0, dd.Clip(0.01)), dd.Identity(1.0), dd.Gain(-20.0, -20.0), dd.Clip(0.01))
    degraded, target = dd.DevicePipeline(steps, 0)(clean, torch.Generator().manual_seed(0))
    assert torch.equal(degraded, clean) and torch.equal(target, clean)


def test_gain_scales_both_signals_alike():
    clean = _batch()
    degraded, target = dd.DevicePipeline((dd.Gain(-6.0, 6.0),), 0)(clean, torch.Generator().manual_seed(0))
    ratio = degraded.abs().amax(1) / clean.abs().amax(1)
    assert torch.allclose(degraded, target) and not torch.allclose(ratio, ratio[0].expand(4))


def test_a_room_is_aligned_on_its_direct_path_and_the_target_keeps_only_that():
    rir = np.zeros(300, np.float32)
    rir[40], rir[240] = 0.5, 0.25  # the direct path, and one reflection 200 taps (4.2 ms) later
    step = dd.Rir(dd.RirBank.from_arrays([rir], torch.device("cpu")), RATE)
    clean = _batch()
    batch = dd.Batch(clean.clone(), clean, torch.ones(4, dtype=torch.bool))
    step.apply(batch, batch.active, torch.Generator().manual_seed(0))
    echo = 0.5 * torch.nn.functional.pad(clean, (200, 0))[:, : clean.shape[1]]
    assert torch.allclose(batch.degraded, clean + echo, atol=1e-5)
    assert torch.allclose(batch.target, clean, atol=1e-5)


@pytest.mark.parametrize("kind,order", [("butter", 6), ("cheby1", 8)])
def test_lowpass_response_is_scipys_forward_backward_filter(kind, order):
    hz, size = 5000.0, 4096
    sos = (signal.butter(order, hz, fs=RATE, output="sos") if kind == "butter"
           else signal.cheby1(order, 0.05, hz, fs=RATE, output="sos"))
    freqs = np.fft.rfftfreq(size, 1.0 / RATE)[:-1]  # up to (not at) Nyquist, where tan() is infinite
    _, h = signal.freqz_sos(sos, worN=freqs, fs=RATE)
    ours = dd.zero_phase_response(torch.tensor([hz]), torch.tensor([int(kind == "cheby1")]), torch.tensor([order]),
                                  RATE, size)[0].numpy()[:-1]
    assert np.max(np.abs(ours - np.abs(h) ** 2)) < 1e-3


def test_rate_changing_steps_have_no_device_version():
    assert dd.unsupported(parse_pipeline("gain -3 3,sample 8000 48000")) == "'sample' has no device version"
    assert dd.unsupported(parse_pipeline("identity 0.1,maybe 0.5 bandlimit 3000 9000,noise synth 0 10")) is None


# ----------------------------------------------------------------------------- the trainer, end to end


def _train(pack: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    small = ["--window", "4800", "--stride", "2400", "--batch", "4", "--val_count", "2", "--synth-bank", "1",
             "--val-every", "2", "--log-every", "1"]
    return subprocess.run(["bash", str(ROOT / "scripts" / "gpu-train.sh"), str(out), "--pack", str(pack), *small,
                           *extra], capture_output=True, text=True, env=env, timeout=300)


def test_gpu_train_on_cpu_writes_a_loadable_checkpoint_and_its_throughput(pack, tmp_path):
    done = _train(pack, tmp_path / "run", "--seconds", "4")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["degrade"] == "device" and summary["precision"] == "float32"
    assert summary["steps"] > 0 and summary["audio_per_second"] > 0
    assert summary["audio_seconds"] == pytest.approx(summary["steps"] * 4 * 0.1, rel=1e-6)
    assert "s of audio per s" in (tmp_path / "run" / "train.log").read_text()
    model, extra = load_checkpoint(tmp_path / "run" / "last.pt")
    assert type(model).__name__ == "SpectralUNet" and extra["resume"]["opt_g"] is not None
    assert (tmp_path / "run" / "best.pt").is_file()

    again = _train(pack, tmp_path / "more", "--seconds", "2", "--resume", str(tmp_path / "run" / "last.pt"))
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = json.loads((tmp_path / "more" / "summary.json").read_text())
    assert resumed["total_steps"] == summary["total_steps"] + resumed["steps"]


def test_gpu_train_with_cpu_workers(pack, tmp_path):
    done = _train(pack, tmp_path / "run", "--seconds", "2", "--degrade", "cpu", "--workers", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["degrade"] == "cpu"


@pytest.mark.parametrize("flags,message", [
    (["--epochs", "3"], "--epochs is not used by the GPU trainer; use --seconds"),
    (["--gan", "0.1"], "--gan 0.1: the GPU trainer trains without it"),
    (["--seconds", "0"], "--seconds must be a positive number"),
    (["--resume", "nowhere.pt"], "--resume nowhere.pt: no such checkpoint"),
])
def test_gpu_train_mistakes_are_one_line(pack, tmp_path, flags, message, capsys):
    from rt_enhance.training.gpu_train import main

    assert main(["--pack", str(pack), "--out", str(tmp_path / "run"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpu-train: ") and message in err and len(err.strip().splitlines()) == 1


def test_without_the_package_installed_links_make_it_importable(tmp_path):
    """scripts/gpu-env.sh on a Python that cannot see the installed package (``-S``: no site-packages)."""
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    wrapper.chmod(0o755)
    script = (f'source {ROOT}/scripts/gpu-env.sh; PY={wrapper}; gpu_package && '
              f'"$PY" -c "import rt_enhance.training as t; print(t.__path__[0])"')
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "rt-enhance-path" / "rt_enhance" / "training")
