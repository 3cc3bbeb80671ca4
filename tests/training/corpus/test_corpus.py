"""The corpus recipe (``rt-data build``): held-out rules, determinism, layout, manifest, caching.

A tiny corpus (a few seconds of each kind) is built once per session with the sources installed here; a source whose
program is missing is skipped on a developer machine (CI's set-up installs them all, see docs/corpus.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rt_enhance.training.corpus import build as corpus
from rt_enhance.training.corpus import items as corpus_items
from rt_enhance.training.corpus import music, texts, tts
from rt_enhance.training.corpus.build import Recipe

RATE = 48000
TINY = Recipe(hours=0.003, rate=RATE, seed=7, ranges={"speech": (1.0, 2.0), "music": (2.0, 3.0), "noise": (1.0, 2.0), "rir": (0.2, 0.4)})


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, corpus.BuildReport]:
    out = tmp_path_factory.mktemp("corpus") / "c"
    return out, corpus.build(out, TINY, workers=2)


@pytest.fixture(scope="module")
def manifest(tiny) -> dict:
    return json.loads((tiny[0] / "manifest.json").read_text())


# ---------------------------------------------------------------------------------------------------------------
# Held-out rules, by construction
# ---------------------------------------------------------------------------------------------------------------


def test_voices_speakers_are_disjoint_between_splits():
    train = {v.speaker for v in tts.voices("train")}
    test = {v.speaker for v in tts.voices("test")}
    assert train and test and not train & test
    assert {v.engine for v in tts.voices("test")} >= {"flite", "festival", "espeak"}


def test_text_vocabularies_are_disjoint_and_texts_use_only_their_split():
    train, test = texts.vocabulary("train"), texts.vocabulary("test")
    for field in ("nouns", "adjectives", "verbs", "adverbs", "names"):
        assert not set(getattr(train, field)) & set(getattr(test, field)), field
    rng = np.random.default_rng(0)
    train_words = {
        w.lower()
        for f in ("nouns", "adjectives", "verbs", "adverbs", "names", "abstract", "intransitive", "places")
        for w in getattr(train, f)
    }
    for _ in range(50):
        words = {w.strip(".,?!").lower() for w in texts.paragraph(test, rng, 5).split()}
        assert not words & train_words


def test_paragraph_is_deterministic_and_sized():
    v = texts.vocabulary("train")
    a = texts.paragraph(v, np.random.default_rng(3), 10)
    assert a == texts.paragraph(v, np.random.default_rng(3), 10)
    assert 20 <= len(a.split()) <= 60


def test_item_seeds_of_train_and_test_never_meet():
    train = [corpus_items.item_seed("train", i) for i in range(1000)]
    test = [corpus_items.item_seed("test", i) for i in range(1000)]
    assert max(train) < min(test)


def test_pieces_are_disjoint_between_splits():
    pytest.importorskip("music21")
    train = {p for ps in music.pieces("train").values() for p in ps}
    test = {p for ps in music.pieces("test").values() for p in ps}
    assert len(train) > 500 and len(test) > 50 and not train & test


def test_plan_is_a_prefix_when_the_corpus_grows():
    small = corpus.plan(replace(TINY, hours=0.01))
    large = corpus.plan(replace(TINY, hours=0.03))
    by_name = {i.name: i for i in large}
    assert len(large) > len(small)
    for item in small:
        assert by_name[item.name].params == item.params


# ---------------------------------------------------------------------------------------------------------------
# Sources, one by one
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", tts.ENGINES)
def test_each_engine_speaks_deterministically(engine):
    if tts.missing(engine):
        pytest.skip(tts.missing(engine))
    voice = tts.voices("train", engine)[0] if engine != "piper" else tts.voice_by_id("piper:joe")
    prosody = tts.Prosody(rate=1.1, pitch=1.0, expressiveness=1.0)
    a, rate_a = tts.synthesize("A quiet harbour at noon.", voice, prosody, np.random.default_rng(1))
    b, rate_b = tts.synthesize("A quiet harbour at noon.", voice, prosody, np.random.default_rng(1))
    assert rate_a == rate_b >= 16000 and np.array_equal(a, b)
    assert 0.5 < len(a) / rate_a < 5 and np.sqrt(np.mean(a**2)) > 0.01


@pytest.mark.parametrize("voice", [v for v in tts.VOICES if v.engine in ("flite", "festival")], ids=lambda v: v.id)
def test_every_flite_and_festival_voice_speaks(voice):
    if tts.missing(voice.engine):
        pytest.skip(tts.missing(voice.engine))
    audio, rate = tts.synthesize("Seven kettles.", voice, tts.Prosody(rate=0.9, pitch=-1), np.random.default_rng(0))
    assert len(audio) / rate > 0.3 and np.sqrt(np.mean(audio**2)) > 0.01


def test_espeak_variants_change_every_accent():
    """``en-gb+f3`` once ignored its variant silently; every accent must honour one."""
    if tts.missing("espeak"):
        pytest.skip(tts.missing("espeak"))
    for accent in tts.ESPEAK_TRAIN_ACCENTS + tts.ESPEAK_TEST_ACCENTS:
        variants = tts.ESPEAK_TEST_VARIANTS if accent in tts.ESPEAK_TEST_ACCENTS else tts.ESPEAK_TRAIN_VARIANTS
        plain = tts.Voice("espeak", accent, accent, "train")
        varied = tts.Voice("espeak", f"{accent}+{[v for v in variants if v][0]}", accent, "train")
        a, _ = tts.synthesize("Seven kettles.", plain, tts.Prosody(), np.random.default_rng(0))
        b, _ = tts.synthesize("Seven kettles.", varied, tts.Prosody(), np.random.default_rng(0))
        assert len(a) != len(b) or not np.array_equal(a, b), accent


def test_piper_noise_follows_the_seed():
    if tts.missing("piper"):
        pytest.skip(tts.missing("piper"))
    voice = tts.voice_by_id("piper:joe")
    a, _ = tts.synthesize("Seven kettles.", voice, tts.Prosody(), np.random.default_rng(1))
    b, _ = tts.synthesize("Seven kettles.", voice, tts.Prosody(), np.random.default_rng(2))
    assert len(a) != len(b) or not np.array_equal(a, b)


def test_midi_writer_makes_a_valid_file_that_fluidsynth_renders():
    if music.missing():
        pytest.skip(music.missing())
    score = {"parts": [[(0.0, 1.0, 60), (1.0, 1.0, 64), (2.0, 2.0, 67)], [(0.0, 4.0, 48)]], "qpm": 120.0}
    rng = np.random.default_rng(0)
    perf = music.perform(score, 2.0, rng)
    midi = music.midi_bytes(perf, rng)
    assert midi[:4] == b"MThd" and midi.count(b"MTrk") == 3
    audio = music.render(midi, RATE)
    assert 1.5 < len(audio) / RATE < 6 and np.max(np.abs(audio)) > 0.01


# ---------------------------------------------------------------------------------------------------------------
# A tiny build
# ---------------------------------------------------------------------------------------------------------------


def test_tiny_build_layout_and_manifest(tiny, manifest):
    out, report = tiny
    assert report.built > 0 and not report.failed
    assert manifest["rate"] == RATE and manifest["seed"] == TINY.seed and manifest["recipe_version"] >= 1
    assert set(manifest["tools"]) >= set(tts.ENGINES) | {"music", "pyroomacoustics"}
    wavs = sorted(p.relative_to(out).as_posix() for p in out.glob("*/*/*.wav"))
    assert wavs == sorted(manifest["files"])
    for name, entry in manifest["files"].items():
        kind, split = name.split("/")[:2]
        assert (entry["kind"], entry["split"]) == (kind, split)
        assert {"source", "seed", "duration", "params", "key"} <= set(entry)


def test_tiny_build_audio_is_48k_mono_unclipped_and_not_silent(tiny, manifest):
    out = tiny[0]
    for name, entry in manifest["files"].items():
        info = sf.info(str(out / name))
        assert (info.samplerate, info.channels, info.subtype) == (RATE, 1, "PCM_24"), name
        audio, _ = sf.read(str(out / name))
        assert info.frames / RATE == pytest.approx(entry["duration"], abs=1e-3)
        assert np.max(np.abs(audio)) <= corpus_items.PEAK_MAX + 1e-4, name
        assert np.sqrt(np.mean(audio**2)) > 1e-3, name


def test_tiny_build_made_every_runnable_item(manifest):
    """Every planned item whose engines are installed was built (CI installs all: nothing is skipped there)."""
    absent = corpus.missing_tools()
    runnable = {i.name for i in corpus.plan(TINY) if not set(i.needs) & set(absent)}
    assert runnable == set(manifest["files"])
    assert {e["kind"] for e in manifest["files"].values()} >= {"noise", "rir"}


def test_tiny_build_held_out(manifest):
    def values(split: str, key: str) -> set:
        return {
            json.dumps(e.get(key) or e["params"].get(key))
            for e in manifest["files"].values()
            if e["split"] == split and (e.get(key) or e["params"].get(key))
        }

    for key in ("speaker", "voice", "text", "piece"):
        assert not values("train", key) & values("test", key), key
    seeds = {s: {e["seed"] for e in manifest["files"].values() if e["split"] == s} for s in ("train", "test", "val")}
    assert not seeds["train"] & seeds["test"] and not seeds["val"] & (seeds["train"] | seeds["test"])
    # the validation split holds generated noises and rooms only (the real voices are scored in them)
    assert {e["kind"] for e in manifest["files"].values() if e["split"] == "val"} == set(corpus.VAL_KINDS)


def test_rir_sidecars_name_the_direct_path(tiny, manifest):
    out = tiny[0]
    for name, entry in manifest["files"].items():
        if entry["kind"] != "rir":
            continue
        side = json.loads((out / name.replace(".wav", ".json")).read_text())
        rir, _ = sf.read(str(out / name))
        assert int(np.argmax(np.abs(rir))) == side["direct_index"] == entry["info"]["direct_index"]


def test_rebuild_is_cached_and_growing_adds_files(tiny, manifest):
    out = tiny[0]
    before = {n: _sha(out / n) for n in manifest["files"]}
    again = corpus.build(out, TINY, workers=1)
    assert again.built == 0 and again.cached == len(before)
    grown = corpus.build(out, replace(TINY, hours=0.004, kinds=("noise",)), workers=2)
    assert grown.built >= 1 and grown.cached >= 2
    assert all(_sha(out / n) == h for n, h in before.items())


def test_same_seed_same_files(tiny, manifest, tmp_path):
    out = tiny[0]
    again = corpus.build(tmp_path / "again", TINY, workers=2)
    assert again.built == len(manifest["files"])
    for name in manifest["files"]:
        assert _sha(out / name) == _sha(tmp_path / "again" / name), name


def test_items_needing_a_missing_tool_are_skipped(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(corpus, "missing_tools", lambda: {"pyroomacoustics": "rooms: pip install pyroomacoustics"})
    report = corpus.build(tmp_path / "c", replace(TINY, kinds=("rir",)), workers=1)
    assert report.built == 0 and report.skipped == 3 and not report.failed  # one room per split: train, test, val
    assert "pip install pyroomacoustics" in caplog.text


def test_cli_rejects_a_bad_kind_and_another_seed(tiny, capsys):
    assert corpus.main(["build", "--out", str(tiny[0]), "--only", "speech,bogus"]) == 2
    assert "bogus" in capsys.readouterr().err
    assert corpus.main(["build", "--out", str(tiny[0]), "--only", "speech,music", "--split", "val"]) == 2
    assert "--split val: speech,music have no validation split" in capsys.readouterr().err
    assert corpus.main(["build", "--out", str(tiny[0]), "--seed", "8", "--hours", "0.001"]) == 2
    assert "seed 7" in capsys.readouterr().err
    assert corpus.main(["summary", str(tiny[0])]) == 0
    assert "noise   train" in capsys.readouterr().out


def test_cli_says_in_one_line_when_the_corpus_folder_cannot_be_made(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert corpus.main(["build", "--out", str(blocker / "corpus"), "--hours", "0.001"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot create this folder: a file stands in its path" in err and "Traceback" not in err
    assert blocker.read_text() == "not a folder"


def test_wide_links_exactly_the_full_band_files_of_a_split(tmp_path, capsys):
    root = tmp_path / "c"
    files = {}
    for split, index, width in (("train", 0, 16000.0), ("train", 1, 8000.0), ("test", 0, 20000.0)):
        name = f"speech/{split}/speech-{split}-{index:06d}.wav"
        files[name] = {"kind": "speech", "split": split, "info": {"bandwidth_hz": width}}
    recorded = [
        {"file": "voices/train/pack-a-0000.wav", "kind": "voices", "split": "train", "bandwidth_hz": 15000},
        {"file": "voices/train/pack-b-0000.wav", "kind": "voices", "split": "train", "bandwidth_hz": 7000},
        {"file": "voices/val/pack-c-0000.wav", "kind": "voices", "split": "val", "bandwidth_hz": 18000},
    ]
    for name in [*files, *(e["file"] for e in recorded)]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / name, np.zeros(480, np.float32), 48000)
    (root / "manifest.json").write_text(json.dumps({"files": files}))
    (root / "recorded.json").write_text(json.dumps({"rate": 48000, "files": recorded}))
    into = tmp_path / "wide"
    (into).mkdir()
    (into / "stale.wav").symlink_to(root / "speech/train/speech-train-000001.wav")  # a narrow file left by an old call
    assert corpus.main(["wide", str(root), "--into", str(into), "--split", "train"]) == 0
    assert "2 file(s)" in capsys.readouterr().out
    assert sorted(p.name for p in into.iterdir()) == ["speech-speech-train-000000.wav", "voices-pack-a-0000.wav"]
    assert (into / "voices-pack-a-0000.wav").resolve() == (root / "voices/train/pack-a-0000.wav").resolve()
    assert corpus.main(["wide", str(root), "--into", str(tmp_path / "v"), "--split", "val", "--kinds", "voices"]) == 0
    assert [p.name for p in (tmp_path / "v").iterdir()] == ["voices-pack-c-0000.wav"]
    assert corpus.main(["wide", str(root), "--into", str(tmp_path / "n"), "--min-bandwidth", "30000"]) == 2
    assert "no voices/speech file of the train split reaches 30000 Hz" in capsys.readouterr().err
