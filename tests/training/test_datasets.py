"""Dataset layouts on tiny fabricated trees: splits, determinism, laziness, window contents."""

from __future__ import annotations

import csv
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from rt_enhance.training import datasets
from rt_enhance.training.audiofiles import load_audio
from rt_enhance.training.datasets import DatasetError, make_dataset, parse_dataset_args
from rt_enhance.training.degrade import parse_pipeline

RATE = 16000
WINDOW, STRIDE = 512, 256


def _tone(path: Path, freq: float, seconds: float = 0.25, rate: int = RATE) -> np.ndarray:
    """Write a sine (or, for freq < 0, a chirp) as 16-bit WAV/FLAC; return what the file holds (float)."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (freq * t if freq > 0 else 200 * t + 4000 * t**2)
    x = 0.5 * np.sin(phase)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, rate, subtype="PCM_16")
    return sf.read(path, dtype="float32")[0]


def _files(ds: datasets.WindowDataset) -> set[str]:
    return {Path(s.clean.path).name for s in ds.sources}


def _all_splits(kind: str, root: Path, **kwargs) -> dict[str, set[str]]:
    return {
        split: _files(make_dataset(kind, root, rate=RATE, window=WINDOW, stride=STRIDE, split=split, **kwargs))
        for split in ("train", "val", "test")
    }


def _assert_partition(splits: dict[str, set[str]], everything: set[str]) -> None:
    train, val, test = splits["train"], splits["val"], splits["test"]
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == everything
    assert train and val and test


@pytest.fixture
def simple_root(tmp_path: Path) -> Path:
    root = tmp_path / "simple"
    for i in range(10):
        _tone(root / ("sub" if i % 2 else "") / f"song{i}.wav", 220 + 50 * i, seconds=0.1 + 0.02 * i)
    return root


# --- simple -----------------------------------------------------------------------------------------------------


def test_simple_split_by_file_is_a_partition(simple_root: Path) -> None:
    splits = _all_splits("simple", simple_root, args={"val": "0.2", "test": "0.2"}, seed=1)
    _assert_partition(splits, {f"song{i}.wav" for i in range(10)})
    assert len(splits["val"]) == len(splits["test"]) == 2


def test_simple_val_dir_holds_out_a_folder_not_files(simple_root: Path, tmp_path: Path) -> None:
    held_out = tmp_path / "speakers-val"
    for i in range(3):
        _tone(held_out / f"voice{i}.wav", 300 + 40 * i, seconds=0.1)

    def make(split: str) -> set[str]:
        return _files(
            make_dataset("simple", simple_root, rate=RATE, window=WINDOW, stride=STRIDE, split=split, args={"val_dir": str(held_out)})
        )

    assert make("train") == {f"song{i}.wav" for i in range(10)}
    assert make("val") == {f"voice{i}.wav" for i in range(3)}
    with pytest.raises(datasets.DatasetError, match="val_dir replaces"):
        make_dataset("simple", simple_root, rate=RATE, window=WINDOW, stride=STRIDE, args={"val_dir": str(held_out), "val": "0.1"})


def test_simple_split_is_seeded(simple_root: Path) -> None:
    assert _all_splits("simple", simple_root, seed=3) == _all_splits("simple", simple_root, seed=3)
    others = [_all_splits("simple", simple_root, seed=s)["test"] for s in range(4, 9)]
    assert any(o != _all_splits("simple", simple_root, seed=3)["test"] for o in others)


def test_windows_are_the_file_content(simple_root: Path) -> None:
    ds = make_dataset("simple", simple_root, rate=RATE, window=WINDOW, stride=STRIDE, split="all")
    expected = sum(datasets.window_count(s.clean.frames, WINDOW, STRIDE) for s in ds.sources)
    assert len(ds) == expected
    source, start = ds.locate(3)
    degraded, clean = ds[3]
    assert degraded.shape == clean.shape == (1, WINDOW) and degraded.dtype == torch.float32
    data = sf.read(source.clean.path, dtype="float32")[0]
    np.testing.assert_array_equal(clean[0].numpy(), data[start : start + WINDOW])
    np.testing.assert_array_equal(degraded.numpy(), clean.numpy())


def test_short_file_gives_one_padded_window(tmp_path: Path) -> None:
    data = _tone(tmp_path / "short" / "a.wav", 300, seconds=0.01)
    ds = make_dataset("simple", tmp_path / "short", rate=RATE, window=WINDOW, stride=STRIDE, split="all")
    assert len(ds) == 1
    clean = ds[0][1][0].numpy()
    np.testing.assert_array_equal(clean[: len(data)], data)
    assert not np.any(clean[len(data) :])


def test_construction_reads_headers_only(simple_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_read(*args, **kwargs):
        raise AssertionError("sample data read at construction")

    monkeypatch.setattr(sf, "read", no_read)
    monkeypatch.setattr(sf.SoundFile, "read", no_read)
    ds = make_dataset(
        "simple", simple_root, rate=RATE, window=WINDOW, stride=STRIDE, pipeline=parse_pipeline("noise synth 0 10,reverb 16000")
    )
    assert len(ds) > 0
    monkeypatch.undo()
    assert ds[0][0].shape == (1, WINDOW)


def test_resampled_window_matches_whole_file_resampled(tmp_path: Path) -> None:
    _tone(tmp_path / "hi" / "chirp.wav", -1, seconds=0.5, rate=22050)
    ds = make_dataset("simple", tmp_path / "hi", rate=RATE, window=WINDOW, stride=STRIDE, split="all")
    whole = load_audio(ds.sources[0].clean.path, RATE)
    assert ds.sources[0].frames_at(RATE) == len(whole)
    for index in (0, 5, len(ds) - 1):
        _, start = ds.locate(index)
        window = ds[index][1][0].numpy()
        reference = whole[start : start + WINDOW]
        assert np.max(np.abs(window[: len(reference)] - reference)) < 2e-3


def test_pipeline_applied_per_window_seeded_by_epoch(simple_root: Path) -> None:
    ds = make_dataset(
        "simple", simple_root, rate=RATE, window=WINDOW, stride=STRIDE, pipeline=parse_pipeline("noise synth 10 10 white"), seed=4
    )
    degraded, clean = ds[2]
    noise = (degraded - clean).double()
    assert abs(10 * math.log10(clean.double().pow(2).mean() / noise.pow(2).mean()) - 10) < 0.1
    assert torch.equal(ds[2][0], degraded)
    ds.set_epoch(1)
    assert not torch.equal(ds[2][0], degraded)
    assert torch.equal(ds[2][1], clean)
    ds.set_epoch(0)
    assert torch.equal(ds[2][0], degraded)


def test_reverb_context_reaches_into_the_window(tmp_path: Path) -> None:
    """With context the tail of earlier audio is in the window: degraded differs from clean right at its start."""
    _tone(tmp_path / "r" / "a.wav", 440, seconds=1.0)
    ds = make_dataset(
        "simple",
        tmp_path / "r",
        rate=RATE,
        window=WINDOW,
        stride=WINDOW,
        split="all",
        pipeline=parse_pipeline("reverb 16000 0 50 50 50 50 0 0"),
    )
    degraded, clean = ds[10]
    assert not torch.allclose(degraded[0, :32], clean[0, :32], atol=1e-3)


def test_dataloader_batches(simple_root: Path) -> None:
    ds = make_dataset("simple", simple_root, rate=RATE, window=WINDOW, stride=STRIDE, pipeline=parse_pipeline("sample 8000 16000"))
    degraded, clean = next(iter(DataLoader(ds, batch_size=4, shuffle=True)))
    assert degraded.shape == clean.shape == (4, 1, WINDOW)


def test_dataset_pickles_for_spawned_workers(simple_root: Path, tmp_path: Path) -> None:
    (tmp_path / "noise").mkdir()
    sf.write(tmp_path / "noise" / "n.wav", 0.1 * np.random.default_rng(0).standard_normal(4000), RATE)
    ds = make_dataset(
        "simple",
        simple_root,
        rate=RATE,
        window=WINDOW,
        stride=STRIDE,
        seed=2,
        pipeline=parse_pipeline(f"noise {tmp_path / 'noise'} 0 10,rir simulate 0.2 0.4,gain -3 3"),
    )
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[1][0], ds[1][0])


def test_n_files_keeps_a_seeded_subset(simple_root: Path) -> None:
    pick = [
        _files(make_dataset("simple", simple_root, rate=RATE, window=WINDOW, stride=STRIDE, split="all", n_files=3, seed=s))
        for s in (0, 0, 1)
    ]
    assert len(pick[0]) == 3 and pick[0] == pick[1]


# --- pairs ------------------------------------------------------------------------------------------------------


def _voicebank(root: Path) -> None:
    for speaker in ("p226", "p227", "p228", "p229", "p230"):
        for utt in (1, 2):
            name = f"{speaker}_{utt:03d}.wav"
            _tone(root / "clean_trainset_28spk_wav" / name, 300 + utt * 10)
            _tone(root / "noisy_trainset_28spk_wav" / name, 300 + utt * 10 + 1)
    for name in ("p232_001.wav", "p257_001.wav"):
        _tone(root / "clean_testset_wav" / name, 500)
        _tone(root / "noisy_testset_wav" / name, 501)


def test_pairs_voicebank_layout(tmp_path: Path) -> None:
    _voicebank(tmp_path / "vb")
    splits = {
        split: make_dataset("pairs", tmp_path / "vb", rate=RATE, window=WINDOW, stride=STRIDE, split=split, args={"val": "0.2"}, seed=0)
        for split in ("train", "val", "test")
    }
    assert _files(splits["test"]) == {"p232_001.wav", "p257_001.wav"}
    speakers = {k: {n[:4] for n in _files(d)} for k, d in splits.items()}
    assert len(speakers["val"]) == 1 and not speakers["val"] & speakers["train"]  # split by speaker
    for ds in splits.values():
        for source in ds.sources:
            assert "clean_" in source.clean.path and "noisy_" in source.degraded.path
            assert Path(source.clean.path).name == Path(source.degraded.path).name
    degraded, clean = splits["train"][0]
    assert not torch.allclose(degraded, clean)  # the input is the noisy file, the target the clean one


def test_pairs_clean_degraded_layout(tmp_path: Path) -> None:
    root = tmp_path / "pp"
    for i in range(6):
        _tone(root / "clean" / f"take{i}.flac", 200 + 10 * i)
        _tone(root / "degraded" / f"take{i}.flac", 205 + 10 * i)
    _tone(root / "clean" / "orphan.flac", 100)
    splits = _all_splits("pairs", root, args={"val": "0.2", "test": "0.2"}, seed=2)
    _assert_partition(splits, {f"take{i}.flac" for i in range(6)})


def test_pairs_pipeline_degrades_the_degraded_file(tmp_path: Path) -> None:
    _voicebank(tmp_path / "vb")
    ds = make_dataset("pairs", tmp_path / "vb", rate=RATE, window=WINDOW, stride=STRIDE, split="test", pipeline=parse_pipeline("gain 6 6"))
    plain = make_dataset("pairs", tmp_path / "vb", rate=RATE, window=WINDOW, stride=STRIDE, split="test")
    factor = 10 ** (6 / 20)
    torch.testing.assert_close(ds[0][0], plain[0][0] * factor)
    torch.testing.assert_close(ds[0][1], plain[0][1] * factor)


# --- vctk -------------------------------------------------------------------------------------------------------


def test_vctk_split_by_speaker(tmp_path: Path) -> None:
    root = tmp_path / "VCTK-Corpus"
    speakers = [f"p{225 + i}" for i in range(8)]
    for i, speaker in enumerate(speakers):
        for utt in (1, 2, 3):
            _tone(root / "wav48" / speaker / f"{speaker}_{utt:03d}.wav", 200 + 20 * i + utt, seconds=0.05)
            (root / "txt" / speaker).mkdir(parents=True, exist_ok=True)
            (root / "txt" / speaker / f"{speaker}_{utt:03d}.txt").write_text("Please call Stella.")
    splits = {k: {n[:4] for n in v} for k, v in _all_splits("vctk", root, seed=5).items()}
    _assert_partition(splits, set(speakers))
    assert _all_splits("vctk", root, seed=5) == _all_splits("vctk", root, seed=5)


def test_vctk_092_keeps_mic1(tmp_path: Path) -> None:
    root = tmp_path / "vctk092"
    for speaker in ("p225", "p226", "p227"):
        for mic in ("mic1", "mic2"):
            _tone(root / "wav48_silence_trimmed" / speaker / f"{speaker}_001_{mic}.flac", 300, seconds=0.05)
    names = _files(make_dataset("vctk", root, rate=RATE, window=WINDOW, stride=STRIDE, split="all"))
    assert names == {f"{s}_001_mic1.flac" for s in ("p225", "p226", "p227")}
    both = make_dataset("vctk", root, rate=RATE, window=WINDOW, stride=STRIDE, split="all", args={"mic": "all"})
    assert len(both.sources) == 6


# --- maestro ----------------------------------------------------------------------------------------------------

_MAESTRO = [
    ("2004/a.wav", "train", "2004"),
    ("2004/b.wav", "train", "2004"),
    ("2006/c.wav", "train", "2006"),
    ("2006/d.wav", "validation", "2006"),
    ("2004/e.wav", "test", "2004"),
    ("2006/f.wav", "test", "2006"),
]


def _maestro(root: Path, fmt: str) -> None:
    for i, (name, _, _) in enumerate(_MAESTRO):
        _tone(root / name, 200 + 30 * i, seconds=0.05)
    rows = [{"canonical_composer": "X", "split": s, "year": y, "audio_filename": n, "duration": 0.05} for n, s, y in _MAESTRO]
    if fmt == "csv":
        with (root / "maestro-v3.0.0.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "json-v2":
        (root / "maestro-v2.0.0.json").write_text(json.dumps([{**r, "year": int(r["year"])} for r in rows]))
    else:
        columns = {k: {str(i): r[k] for i, r in enumerate(rows)} for k in rows[0]}
        (root / "maestro-v3.0.0.json").write_text(json.dumps(columns))


@pytest.mark.parametrize("fmt", ["csv", "json-v2", "json-v3"])
def test_maestro_uses_its_split_column(tmp_path: Path, fmt: str) -> None:
    _maestro(tmp_path, fmt)
    splits = _all_splits("maestro", tmp_path)
    assert splits == {"train": {"a.wav", "b.wav", "c.wav"}, "val": {"d.wav"}, "test": {"e.wav", "f.wav"}}


def test_maestro_year_filter(tmp_path: Path) -> None:
    _maestro(tmp_path, "csv")
    ds = make_dataset(
        "maestro", tmp_path, rate=RATE, window=WINDOW, stride=STRIDE, split="train", args=parse_dataset_args("2004", "maestro")
    )
    assert _files(ds) == {"a.wav", "b.wav"}
    with pytest.raises(DatasetError, match="no validation rows for year 2004"):
        make_dataset("maestro", tmp_path, rate=RATE, window=WINDOW, stride=STRIDE, split="val", args={"year": "2004"})


# --- arguments and errors ---------------------------------------------------------------------------------------


def test_parse_dataset_args() -> None:
    assert parse_dataset_args("year=2017, val=0.05") == {"year": "2017", "val": "0.05"}
    assert parse_dataset_args("2017", "maestro") == {"year": "2017"}
    assert parse_dataset_args(None) == {} == parse_dataset_args("")
    with pytest.raises(DatasetError, match="expected key=value, got '2017'"):
        parse_dataset_args("2017", "simple")
    with pytest.raises(DatasetError, match="expected key=value"):
        parse_dataset_args("year=")


@pytest.mark.parametrize(
    ("kind", "root", "kwargs", "message"),
    [
        ("simple", "missing", {}, "does not exist"),
        ("simple", "empty", {}, "no audio files"),
        ("vctk", "empty", {}, "no speaker folders"),
        ("pairs", "empty", {}, "neither clean_trainset"),
        ("maestro", "empty", {}, "no maestro-v"),
        ("mp3s", "empty", {}, "unknown dataset type 'mp3s'"),
        ("simple", "ok", {"args": {"year": "2004"}}, "simple does not take year"),
        ("simple", "ok", {"args": {"val": "2"}}, "val must be a fraction"),
        ("simple", "ok", {"split": "holdout"}, "unknown split 'holdout'"),
        ("simple", "ok", {"pipeline": parse_pipeline("sample 4000 8000")}, "ends at 8000 Hz"),
        ("simple", "two", {}, "cannot be split"),
    ],
)
def test_clear_errors(tmp_path: Path, kind: str, root: str, kwargs: dict, message: str) -> None:
    (tmp_path / "empty").mkdir()
    for i in range(4):
        _tone(tmp_path / "ok" / f"{i}.wav", 300, seconds=0.05)
    for i in range(2):
        _tone(tmp_path / "two" / f"{i}.wav", 300, seconds=0.05)
    with pytest.raises(DatasetError, match=message):
        make_dataset(kind, tmp_path / root, rate=RATE, window=WINDOW, stride=STRIDE, **kwargs)


def test_voices_label_the_files_of_the_voice_folders(tmp_path: Path) -> None:
    for folder, files in (("speech", 2), ("music", 3)):
        (tmp_path / folder).mkdir()
        for i in range(files):
            sf.write(tmp_path / folder / f"{folder}{i}.wav", np.full(8000, 0.1 * (i + 1), np.float32), 16000)
    ds = make_dataset("simple", tmp_path, rate=16000, window=4000, stride=4000, args={"voices": "speech", "val": "0", "test": "0"})
    flags = {Path(s.clean.path).parent.name: s.voice for s in ds.sources}
    assert flags == {"speech": True, "music": False}
    items = [ds[i] for i in range(len(ds))]
    assert all(len(item) == 3 for item in items) and sorted({float(item[2]) for item in items}) == [0.0, 1.0]
    assert len(make_dataset("simple", tmp_path, rate=16000, window=4000, stride=4000, args={"val": "0", "test": "0"})[0]) == 2
    with pytest.raises(DatasetError, match="voices"):
        make_dataset("simple", tmp_path, rate=16000, window=4000, stride=4000, args={"voices": "a/b"})
