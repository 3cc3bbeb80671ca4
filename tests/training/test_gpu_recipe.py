"""The GPU recipe on a CPU: a pack of a tiny corpus (whole, and a seeded sample under a cap), the device
degradation steps, and the time-budgeted trainer through scripts/gpu-train.sh (a few seconds) on the
speech-erb recipe, validating on the packed held-out speakers, resumed once."""

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
from rt_enhance.training import degrade
from rt_enhance.training.audiofiles import list_audio
from rt_enhance.training.degrade import device as dd
from rt_enhance.training.degrade import parse_pipeline
from rt_enhance.training.device_data import split_paths
from rt_enhance.training.gpu_train import load_options
from rt_enhance.training.pack import (
    MANIFEST_ROOM,
    MIB,
    SHARES,
    PackError,
    Subset,
    make_pack,
    read_manifest,
    unpacked_dataset_args,
    unpacked_pipeline,
)

ROOT = Path(__file__).resolve().parents[2]
RATE = 48000


def tiny_corpus(root: Path) -> Path:
    """The folders of the speech-erb recipe, a few seconds each (24-bit WAV, as rt-data writes them)."""
    rng = np.random.default_rng(0)
    for kind in ("speech/train", "voices/train", "voices/val", "music/train", "noise/train", "realnoise/train", "rir/train"):
        (root / kind).mkdir(parents=True)
    t = np.arange(int(1.6 * RATE)) / RATE
    for i in range(5):
        tone = 0.2 * np.sin(2 * np.pi * (150 + 40 * i) * t) * (1 + np.sin(2 * np.pi * 3 * t))
        sf.write(root / "speech" / "train" / f"s{i}.wav", tone, RATE, subtype="PCM_24")
    for split, n in (("train", 2), ("val", 2)):
        for i in range(n):
            tone = 0.2 * np.sin(2 * np.pi * (110 + 30 * i) * t) * (1 + np.sin(2 * np.pi * 4 * t))
            sf.write(root / "voices" / split / f"{split}{i}.wav", tone, RATE, subtype="PCM_24")
    sf.write(root / "music" / "train" / "m0.wav", 0.1 * np.sin(2 * np.pi * 440 * t), RATE, subtype="PCM_24")
    sf.write(root / "noise" / "train" / "n0.wav", 0.1 * rng.standard_normal(2 * RATE), RATE, subtype="PCM_24")
    sf.write(root / "realnoise" / "train" / "b0.wav", 0.1 * rng.standard_normal(RATE), RATE, subtype="PCM_24")
    rir = np.zeros(2400)
    rir[10], rir[11:] = 0.5, 0.02 * rng.standard_normal(2389) * np.exp(-np.arange(2389) / 400)
    sf.write(root / "rir" / "train" / "r0.wav", rir, RATE, subtype="PCM_24")
    return root


def recipe(corpus: Path) -> dict[str, str]:
    """The speech-erb recipe's folders and strings, as scripts/speech-pipeline.sh defines them."""
    script = (
        f'source {ROOT}/scripts/speech-pipeline.sh; speech_erb_noise "$1" >/dev/null; speech_erb_mix "$1"; '
        'speech_erb_pipeline "$1"; speech_erb_dataset_args "$1"'
    )
    out = subprocess.run(["bash", "-c", script, "_", str(corpus)], capture_output=True, text=True, check=True)
    mix, pipeline, args = out.stdout.strip().splitlines()
    return {"data_root": mix, "preprocessing": pipeline, "dataset_args": args}


def test_the_voices_lineage_reads_voices_only_every_window_under_noise(tmp_path):
    """speech_voices_mix / speech_voices_pipeline (the blend's second lineage): the voices without the music, and
    the speech recipe's noises and rooms with none of its do-no-harm steps; the rt-train step parser takes it."""
    corpus = tiny_corpus(tmp_path / "corpus")
    script = f'source {ROOT}/scripts/speech-pipeline.sh; speech_erb_noise "$1" >/dev/null; '
    script += 'speech_voices_mix "$1"; speech_voices_pipeline "$1"'
    out = subprocess.run(["bash", "-c", script, "_", str(corpus)], capture_output=True, text=True, check=True)
    mix, pipeline = out.stdout.strip().splitlines()
    assert {p.name: os.readlink(p) for p in Path(mix).iterdir()} == {
        "speech": str(corpus / "speech" / "train"),
        "voices": str(corpus / "voices" / "train"),
    }
    steps = [step.split()[0] if not step.startswith("maybe") else step.split()[2] for step in pipeline.split(",")]
    assert steps == ["rir", "noise", "noise", "gain"] and pipeline.split(",")[1].startswith("noise ")  # every window noisy
    assert "identity" not in pipeline and "music" not in pipeline and "bandlimit" not in pipeline
    assert len(parse_pipeline(pipeline).steps) == 4


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Path:
    corpus = tiny_corpus(tmp_path_factory.mktemp("corpus"))
    out = tmp_path_factory.mktemp("gpu") / "pack"
    make_pack(out, **recipe(corpus), config="speech-erb.toml", codec="flac", max_mib=5)
    return out


# ----------------------------------------------------------------------------- the pack


def test_pack_holds_the_recipes_folders_compressed(pack):
    manifest = read_manifest(pack)
    assert set(manifest["folders"]) == {"clean", "dir-1", "dir-2", "dir-3", "val"}  # rooms, noises, music as noise
    assert manifest["folders"]["clean"]["files"] == 10 and manifest["folders"]["val"]["files"] == 2
    # music three times: its weight in the mix
    assert set(manifest["folders"]["clean"]["subfolders"]) == {"speech", "voices", "music", "music-again", "music-thrice"}
    assert set(manifest["folders"]["dir-2"]["subfolders"]) == {"synthetic", "recorded"}
    assert set(manifest["folders"]["dir-3"]["subfolders"]) == {"rendered"}  # the sample corpus has no real music
    assert sorted(p.suffix for p in (pack / "clean").rglob("*.*")) == [".flac"] * 10
    spec = unpacked_pipeline(pack)
    assert "{pack}" not in spec and str(pack.resolve() / "dir-2") in spec
    steps = parse_pipeline(spec).steps  # the folders exist and hold audio
    assert len(steps) == 7
    assert unpacked_dataset_args(pack) == f"val_dir={pack.resolve() / 'val'}"
    clean = sf.read(pack / "clean" / "speech" / "s0.flac")[0]
    assert clean.shape == (int(1.6 * RATE),)


def test_the_trainer_validates_on_the_packed_held_out_speakers(pack):
    _, cfg = load_options(["--pack", str(pack), "--out", "unused"])
    assert cfg.size == "spec-erb" and cfg.dataset_args == {"val_dir": str(pack.resolve() / "val")}
    train, val = split_paths(pack / "clean", cfg, "train"), split_paths(pack / "clean", cfg, "val")
    assert sorted(Path(p).name for p in val) == ["val0.flac", "val1.flac"]
    assert len(train) == 10 and not set(train) & set(val)  # no training file is held out
    _, given = load_options(["--pack", str(pack), "--out", "unused", "--dataset_args", "val=0.2,test=0"])
    assert given.dataset_args == {"val": "0.2", "test": "0"}  # a flag given here wins over the pack's
    plain, _ = load_options(["--pack", str(pack), "--out", "unused"])
    rated, cfg = load_options(["--pack", str(pack), "--out", "unused", "--lr_g", "3e-4"])
    assert plain.new_lr == () and rated.new_lr == ("lr_g",) and cfg.lr_g == 3e-4  # a resumed last.pt takes it


def _sample_corpus(root: Path) -> Path:
    """A mix whose subfolders differ in size: 12, 12 and 2 files of 2 s of noise-like audio."""
    rng = np.random.default_rng(3)
    for name, count in (("speech", 12), ("voices", 12), ("music", 2)):
        (root / "mix" / name).mkdir(parents=True)
        for i in range(count):
            sf.write(root / "mix" / name / f"{name}{i}.wav", 0.1 * rng.standard_normal(2 * RATE), RATE, subtype="PCM_24")
    return root / "mix"


def _sample(manifest: dict) -> dict[str, dict]:
    return manifest["folders"]["clean"]["subfolders"]


def test_a_subset_fits_the_cap_balanced_across_subfolders_and_seeded(tmp_path):
    mix = _sample_corpus(tmp_path)
    one = make_pack(tmp_path / "a", data_root=str(mix), preprocessing="", max_mib=0.2, subset=Subset(crop=1.0))
    assert one["codec"] == "opus" and one["bytes"] <= 0.2 * MIB
    got = _sample(one)
    assert got["music"]["files"] == got["music"]["of_files"] == 2  # smaller than its share: whole
    assert 4 <= got["speech"]["files"] < 12 and abs(got["speech"]["files"] - got["voices"]["files"]) <= 1
    assert all(sf.info(str(p)).duration <= 1.0 + 1e-3 for p in (tmp_path / "a" / "clean").rglob("*.ogg"))
    make_pack(tmp_path / "b", data_root=str(mix), preprocessing="", max_mib=0.2, subset=Subset(crop=1.0))
    make_pack(tmp_path / "c", data_root=str(mix), preprocessing="", max_mib=0.2, subset=Subset(crop=1.0, seed=1))

    def names(folder: str) -> list[str]:
        return sorted(str(p.relative_to(tmp_path / folder)) for p in (tmp_path / folder / "clean").rglob("*.ogg"))

    assert names("a") == names("b") and names("a") != names("c")
    first = sf.read(tmp_path / "a" / "clean" / "music" / "music0.ogg")[0]
    assert np.array_equal(first, sf.read(tmp_path / "b" / "clean" / "music" / "music0.ogg")[0])


def test_a_subset_gives_each_kind_of_folder_its_share(tmp_path):
    corpus = tiny_corpus(tmp_path / "c")
    manifest = make_pack(tmp_path / "p", **recipe(corpus), max_mib=0.3, subset=Subset(crop=1.0))
    folders = manifest["folders"]
    assert manifest["bytes"] <= 0.3 * MIB and manifest["subset"] == {"crop": 1.0, "seed": 0}
    assert folders["dir-1"]["kind"] == "rir" and folders["dir-1"]["crop"] is None  # rooms whole
    assert sf.info(str(next((tmp_path / "p" / "dir-1").rglob("*.flac")))).frames == 2400
    room = 0.3 * MIB - MANIFEST_ROOM
    for name, share in (("val", SHARES["val"]), ("dir-1", SHARES["rir"]), ("dir-2", SHARES["noise"])):
        assert 0 < folders[name]["bytes"] <= share * room
    assert folders["clean"]["files"] == 10  # the clean audio fills what the others left: here all of it
    assert unpacked_dataset_args(tmp_path / "p").endswith("/val")


def test_pack_over_the_cap_is_one_clear_error(pack, tmp_path):
    corpus = tmp_path / "c"
    tiny_corpus(corpus)
    with pytest.raises(PackError, match="over --max-mib.*--subset"):
        make_pack(tmp_path / "p", data_root=str(corpus / "speech" / "train"), preprocessing="", codec="flac", max_mib=0.01)
    assert not (tmp_path / "p" / "pack.json").exists()


def test_opus_pack_decodes_to_the_same_length(tmp_path):
    corpus = tiny_corpus(tmp_path / "c")
    manifest = make_pack(tmp_path / "p", data_root=str(corpus / "speech" / "train"), preprocessing="", codec="opus", max_mib=5)
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


def test_varied_noise_plays_at_drawn_speeds_at_the_drawn_snr():
    tone = (0.3 * np.sin(2 * np.pi * 1000 * np.arange(RATE) / RATE)).astype(np.float32)
    bank = dd.Bank.from_arrays([tone], torch.device("cpu"))
    clean = _batch(8)
    batch = dd.Batch(clean.clone(), clean, torch.ones(8, dtype=torch.bool))
    dd.Noise(bank, 7.0, 7.0, vary=True).apply(batch, batch.active, torch.Generator().manual_seed(0))
    noise = batch.degraded - clean
    snr = 10 * torch.log10(clean.square().mean(1) / noise.square().mean(1))
    assert torch.allclose(snr, torch.full((8,), 7.0), atol=1e-3)
    peaks = torch.fft.rfft(noise, dim=1).abs().argmax(1).double() * RATE / noise.shape[1]
    assert bool(((peaks >= 495) & (peaks <= 2005)).all()) and float(peaks.max() - peaks.min()) > 200


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


def test_both_low_passes_the_target_with_the_same_draws_and_later_steps_draw_as_without_it():
    clean = _batch()
    step = dd.device_step(parse_pipeline("both bandlimit 3000 6000").steps[0], RATE, None)
    gen = torch.Generator().manual_seed(0)
    degraded, target = dd.DevicePipeline((step, dd.Gain(-6.0, 6.0)), 0)(clean, gen)
    assert torch.allclose(degraded, target) and not torch.allclose(target, clean, atol=1e-3)
    alone = torch.Generator().manual_seed(0)
    dd.DevicePipeline((dd.Lowpass(RATE, 3000, 6000), dd.Gain(-6.0, 6.0)), 0)(clean, alone)
    assert torch.equal(gen.get_state(), alone.get_state())  # the twin's draws are not consumed twice


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


def test_an_early_target_goes_through_the_same_part_of_the_room_as_on_the_cpu():
    rng = np.random.default_rng(0)
    rir = (0.1 * rng.standard_normal(6000) * np.exp(-np.arange(6000) / 1500)).astype(np.float32)
    rir[300] = 1.0  # the direct path
    step = dd.Rir(dd.RirBank.from_arrays([rir], torch.device("cpu")), RATE, early=0.05)
    rows = torch.from_numpy(rir)[None, :]
    direct = torch.tensor([300])
    near = (torch.arange(6000)[None, :] - 300).abs() <= int(degrade.DIRECT_SECONDS * RATE)
    ours = step.kept(rows, near, direct)[0].numpy()
    np.testing.assert_allclose(ours, degrade.early_part(rir.astype(np.float64), 300, RATE, 0.05), atol=1e-6)
    assert np.any(ours[300 + 1000 :]) and not np.any(ours[300 + int(0.05 * RATE) + 1 :])


@pytest.mark.parametrize("kind,order", [("butter", 6), ("cheby1", 8)])
def test_lowpass_response_is_scipys_forward_backward_filter(kind, order):
    hz, size = 5000.0, 4096
    sos = signal.butter(order, hz, fs=RATE, output="sos") if kind == "butter" else signal.cheby1(order, 0.05, hz, fs=RATE, output="sos")
    freqs = np.fft.rfftfreq(size, 1.0 / RATE)[:-1]  # up to (not at) Nyquist, where tan() is infinite
    _, h = signal.freqz_sos(sos, worN=freqs, fs=RATE)
    ours = dd.zero_phase_response(torch.tensor([hz]), torch.tensor([int(kind == "cheby1")]), torch.tensor([order]), RATE, size)[0].numpy()[
        :-1
    ]
    assert np.max(np.abs(ours - np.abs(h) ** 2)) < 1e-3


def test_rate_changing_steps_have_no_device_version():
    assert dd.unsupported(parse_pipeline("gain -3 3,sample 8000 48000")) == "'sample' has no device version"
    assert dd.unsupported(parse_pipeline("identity 0.1,maybe 0.5 bandlimit 3000 9000,noise synth 0 10")) is None


# ----------------------------------------------------------------------------- the trainer, end to end


def _train(pack: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    small = [
        "--window",
        "4800",
        "--stride",
        "2400",
        "--batch",
        "4",
        "--val_count",
        "2",
        "--synth-bank",
        "1",
        "--val-every",
        "2",
        "--log-every",
        "1",
    ]
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu-train.sh"), str(out), "--pack", str(pack), *small, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_gpu_train_on_cpu_writes_a_loadable_checkpoint_and_its_throughput(pack, tmp_path):
    done = _train(pack, tmp_path / "run", "--seconds", "4", "--average", "3")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["degrade"] == "device" and summary["precision"] == "float32"
    assert summary["steps"] > 0 and summary["audio_per_second"] > 0
    assert summary["audio_seconds"] == pytest.approx(summary["steps"] * 4 * 0.1, rel=1e-6)
    assert "s of audio per s" in (tmp_path / "run" / "train.log").read_text()
    assert summary["config"]["size"] == "spec-erb" and set(summary["validation"]) >= {"loss", "si_sdr"}
    model, extra = load_checkpoint(tmp_path / "run" / "last.pt")
    assert type(model).__name__ == "SpectralUNet" and extra["resume"]["opt_g"] is not None
    assert (tmp_path / "run" / "best.pt").is_file()
    kept = list((tmp_path / "run" / "epochs").iterdir())  # --average, an rt-train flag: one file per validation, at most 3
    assert 1 <= len(kept) <= 3 and type(load_checkpoint(tmp_path / "run" / "average.pt")[0]).__name__ == "SpectralUNet"

    again = _train(pack, tmp_path / "more", "--seconds", "2", "--resume", str(tmp_path / "run" / "last.pt"))
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = json.loads((tmp_path / "more" / "summary.json").read_text())
    assert resumed["total_steps"] == summary["total_steps"] + resumed["steps"]


def test_gpu_train_trains_the_period_and_resolution_discriminators(pack, tmp_path):
    done = _train(pack, tmp_path / "run", "--seconds", "2", "--gan", "0.1", "--disc", "mpd-mrd", "--fm", "0.5")
    assert done.returncode == 0, done.stderr[-2000:]
    last = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=True)
    assert last["resume"]["discriminator"]["class"] == "MultiDiscriminator"
    steps = json.loads((tmp_path / "run" / "summary.json").read_text())["steps"]
    moments = last["resume"]["opt_d"]["state"]
    assert steps > 0 and moments and all(int(m["step"]) == steps for m in moments.values())  # a discriminator step per step


def test_gpu_train_with_cpu_workers(pack, tmp_path):
    done = _train(pack, tmp_path / "run", "--seconds", "2", "--degrade", "cpu", "--workers", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["degrade"] == "cpu"


@pytest.mark.parametrize("degrade", ["device", "cpu"])
def test_gpu_train_learns_voice_activity_from_the_packed_folders(pack, tmp_path, degrade):
    args = f"val_dir={pack.resolve() / 'val'},voices=speech+voices"
    flags = ["--seconds", "2", "--degrade", degrade, "--workers", "0", "--voice", "0.1", "--dataset_args", args]
    done = _train(pack, tmp_path / "run", *flags)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(voice activity " in (tmp_path / "run" / "train.log").read_text()
    model, _ = load_checkpoint(tmp_path / "run" / "last.pt")
    assert model.init_kwargs["voice_head"] is True and model.voice is not None


def test_a_device_bank_draws_each_window_with_its_files_label():
    files = [np.full(4000, 0.1, np.float32), np.zeros(0, np.float32), np.full(6000, 0.2, np.float32)]
    bank = dd.Bank.from_arrays(files, torch.device("cpu"), labels=[1.0, 1.0, 0.0])  # the empty file is dropped with its label
    assert bank.labels is not None and bank.labels.tolist() == [1.0, 0.0]
    windows, drawn = bank.windows(64, 1000, 0, torch.Generator().manual_seed(0))
    level = windows.abs().amax(dim=1)
    assert torch.equal(bank.labels[drawn] == 1.0, level < 0.15) and 0 < int(bank.labels[drawn].sum()) < 64


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--epochs", "3"], "--epochs is not used by the GPU trainer; use --seconds"),
        (["--ae", "0.1"], "--ae 0.1: the GPU trainer trains without it"),
        (["--seconds", "0"], "--seconds must be a positive number"),
        (["--resume", "nowhere.pt"], "--resume nowhere.pt: no such checkpoint"),
    ],
)
def test_gpu_train_mistakes_are_one_line(pack, tmp_path, flags, message, capsys):
    from rt_enhance.training.gpu_train import main

    assert main(["--pack", str(pack), "--out", str(tmp_path / "run"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpu-train: ") and message in err and len(err.strip().splitlines()) == 1


def test_gpu_pack_names_an_unknown_recipe_or_a_missing_folder(tmp_path):
    corpus = tiny_corpus(tmp_path / "c")
    bad = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-pack.sh"), str(corpus), "--recipe", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == "gpu-pack: --recipe nope: expected speech-erb, speech or speech-restore"
    (corpus / "voices" / "val" / "val0.wav").unlink()
    (corpus / "voices" / "val" / "val1.wav").unlink()
    (corpus / "voices" / "val").rmdir()
    missing = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-pack.sh"), str(corpus)], capture_output=True, text=True)
    assert missing.returncode == 2 and f"{corpus}/voices/val is missing" in missing.stderr


def test_the_restore_recipe_packs_only_full_band_voices(tmp_path):
    """speech-restore (scripts/speech-pipeline.sh): the voices and TTS files whose measured content reaches 14 kHz,
    validation on the held-out speakers' full-band voices; packed, its pipeline low-passes them."""
    corpus = tiny_corpus(tmp_path / "c")
    widths = {"speech/train/s0.wav": 16000, "speech/train/s1.wav": 8000}
    manifest = {name: {"kind": "speech", "split": "train", "info": {"bandwidth_hz": w}} for name, w in widths.items()}
    (corpus / "manifest.json").write_text(json.dumps({"files": manifest}))
    recorded = [
        {"file": f"voices/{split}/{split}{i}.wav", "kind": "voices", "split": split, "bandwidth_hz": 15000 if i == 0 else 7000}
        for split in ("train", "val")
        for i in range(2)
    ]
    (corpus / "recorded.json").write_text(json.dumps({"rate": RATE, "files": recorded}))
    script = (
        f'source {ROOT}/scripts/speech-pipeline.sh; PY={sys.executable} speech_restore_folders "$1"; '
        'speech_restore_pipeline; speech_restore_dataset_args "$1"'
    )
    out = subprocess.run(["bash", "-c", script, "_", str(corpus)], capture_output=True, text=True, check=True)
    train, pipeline, args = out.stdout.strip().splitlines()
    assert sorted(p.name for p in Path(train).iterdir()) == ["speech-s0.wav", "voices-train0.wav"]
    assert args == f"val_dir={corpus}/restore/val" and [p.name for p in (corpus / "restore" / "val").iterdir()] == ["voices-val0.wav"]
    packed = tmp_path / "pack"
    make_pack(packed, data_root=train, preprocessing=pipeline, dataset_args=args, config="speech-restore.toml", codec="flac", max_mib=5)
    manifest = read_manifest(packed)
    assert set(manifest["folders"]) == {"clean", "val"} and manifest["folders"]["clean"]["files"] == 2
    assert manifest["folders"]["val"]["files"] == 1 and manifest["config"] == "speech-restore.toml"
    assert unpacked_pipeline(packed) == pipeline and len(parse_pipeline(pipeline).steps) == 4
    assert unpacked_dataset_args(packed) == f"val_dir={packed.resolve() / 'val'}"


def test_without_the_package_installed_links_make_it_importable(tmp_path):
    """scripts/gpu-env.sh on a Python that cannot see the installed package (``-S``: no site-packages)."""
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    wrapper.chmod(0o755)
    script = (
        f'source {ROOT}/scripts/gpu-env.sh; PY={wrapper}; gpu_package && "$PY" -c "import rt_enhance.training as t; print(t.__path__[0])"'
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "rt-enhance-path" / "rt_enhance" / "training")


def test_the_music_recipe_mixes_every_full_band_piece_with_the_voices_and_renders_three_times(tmp_path):
    """`music` (scripts/train-music.sh, restore_music_folders CORPUS all): every real music excerpt of the training
    pieces whose content reaches 16 kHz (never a narrower one, never one of the held-out pieces), beside the full-band
    voices and the renders three times each, so that the shares stay those of session 16's trial (every third piece)."""
    corpus = tiny_corpus(tmp_path / "c")
    (corpus / "manifest.json").write_text(json.dumps({"files": {}}))
    music = [("train", 0, 18000), ("train", 1, 17000), ("train", 2, 12000), ("train", 3, 16500), ("val", 0, 20000), ("test", 0, 20000)]
    for split, i, _ in music:
        (corpus / "realmusic" / split).mkdir(parents=True, exist_ok=True)
        sf.write(corpus / "realmusic" / split / f"p{i}.wav", 0.1 * np.ones(RATE), RATE, subtype="PCM_24")
    recorded = [{"file": f"voices/{s}/{s}0.wav", "kind": "voices", "split": s, "bandwidth_hz": 15000} for s in ("train", "val")]
    recorded += [{"file": f"realmusic/{s}/p{i}.wav", "kind": "realmusic", "split": s, "bandwidth_hz": w} for s, i, w in music]
    (corpus / "recorded.json").write_text(json.dumps({"rate": RATE, "files": recorded}))
    lines = {}
    for layout in ("all", ""):
        script = f'source {ROOT}/scripts/speech-pipeline.sh; PY={sys.executable} restore_music_folders "$1" {layout}'
        out = subprocess.run(["bash", "-c", script, "_", str(corpus)], capture_output=True, text=True, check=True)
        lines[layout] = Path(out.stdout.strip())
    files = [p.relative_to(lines["all"]).as_posix() for p in list_audio(lines["all"])]
    voices = [f"voices{n}/voices-train0.wav" for n in (1, 2, 3)]
    renders = [f"renders{n}/m0.wav" for n in (1, 2, 3)]
    assert sorted(files) == sorted(["music/realmusic-p0.wav", "music/realmusic-p1.wav", "music/realmusic-p3.wav", *voices, *renders])
    third = [p.relative_to(lines[""]).as_posix() for p in list_audio(lines[""])]
    assert sorted(third) == ["music3/realmusic-p0.wav", "renders/m0.wav", "voices/voices-train0.wav"]
