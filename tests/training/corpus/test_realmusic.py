"""Real produced music in the corpus: split by piece (never by excerpt), variants of a piece kept together,
the sources reserved for evaluation refused, band-limited recordings left out, and a build from
package-shaped folders of real Ogg Vorbis files (song stems summed), cached and merged into recorded.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rt_enhance.training.corpus import realmusic, recorded

RATE = 48000
NATIVE = 44100


def test_no_source_is_reserved_and_reserved_packages_are_refused(tmp_path: Path) -> None:
    for source in (*realmusic.SOURCES, *recorded.SOURCES):
        recorded.refuse_reserved(source.package)  # raises for a reserved one
    for package in ("wesnoth-1.16-music", "wesnoth-music", "alsa-utils", "python3-pysptk"):
        with pytest.raises(recorded.RecordedError, match=f"^{package} is reserved for independent evaluation"):
            recorded.unpack(package, tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything is fetched
    wesnoth = realmusic.MusicSource("wesnoth-1.16-music", r"\.ogg$", "./usr/*", "GPL-2+", "reserved")
    with pytest.raises(recorded.RecordedError, match="reserved"):
        realmusic.build(tmp_path / "corpus", cache=tmp_path, sources=(wesnoth,))


def test_variants_of_a_piece_are_one_piece() -> None:
    by_name = {s.package: s for s in realmusic.SOURCES}
    tux = by_name["supertux-data"].piece
    assert {tux(n) for n in ("forest", "forest2", "forest3", "forestmap", "new_forest_map", "forest-sprint")} == {"forest"}
    assert tux("cave_old") == tux("cave") == "cave" and tux("airship_remix") == tux("airship_2") == "airship"
    assert tux("voc-daytime2") == tux("voc-night") == "voc" and tux("ghostforest_map") == "ghostforest"
    assert by_name["warzone2100-music"].piece("track3_enhanced") == "track3"
    assert by_name["supertuxkart-data"].piece("ravenbridge_mansion_fast") == "ravenbridge_mansion"
    assert by_name["supertuxkart-data"].piece("farm_f") == "farm"


def test_held_out_pieces_span_several_packages() -> None:
    packages = {s.package for s in realmusic.SOURCES}
    for split in ("val", "test"):
        held = {key.split(":")[0] for key, s in realmusic.SPLITS.items() if s == split}
        assert held <= packages and len(held) >= 5, split
    assert realmusic.split_of("warzone2100-music:track3") == "val" and realmusic.split_of("supertux-data:forest") == "train"


def test_excerpts_are_spread_over_long_recordings() -> None:
    second = NATIVE
    assert realmusic.excerpt_starts(4 * second, NATIVE) == []
    assert realmusic.excerpt_starts(7 * second, NATIVE) == [0]
    assert realmusic.excerpt_starts(35 * second, NATIVE) == [int(2.5 * second), int(12.5 * second), int(22.5 * second)]
    long = realmusic.excerpt_starts(600 * second, NATIVE)
    assert len(long) == realmusic.MAX_EXCERPTS and long[0] == 0 and long[-1] == 590 * second


def test_bandwidth_finds_a_low_pass() -> None:
    noise = 0.1 * np.random.default_rng(0).standard_normal(2 * RATE)
    full, hf = realmusic.bandwidth(noise, RATE)
    assert full == RATE / 2 and abs(hf) < 1.0
    spectrum = np.fft.rfft(noise)
    spectrum[np.fft.rfftfreq(len(noise), 1 / RATE) > 12000] = 0
    cut, hf = realmusic.bandwidth(np.fft.irfft(spectrum, len(noise)), RATE)
    assert 12000 <= cut <= 12500 and hf < -60


def _bright(seconds: float, rng: np.random.Generator, cutoff: float | None = None, rate: int = NATIVE) -> np.ndarray:
    """Stereo ``[n, 2]``: a chord with hi-hat-like bursts of white noise (content up to 20 kHz and beyond)."""
    from scipy import signal

    t = np.arange(int(seconds * rate)) / rate
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    hats = rng.standard_normal(len(t)) * np.exp(-30 * (t % 0.25)) * 0.05
    x = chord + hats
    if cutoff is not None:
        x = signal.sosfiltfilt(signal.butter(10, cutoff, fs=rate, output="sos"), x)
    return np.stack([x, 0.8 * x], axis=1)


def _package(cache: Path, package: str, files: dict[str, np.ndarray]) -> None:
    """Real Ogg files in the package's layout: Opus at 48 kHz for ``.opus``, else Vorbis at 44.1 kHz."""
    for rel, audio in files.items():
        path = cache / package / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        opus = rel.endswith(".opus")
        sf.write(path, audio, RATE if opus else NATIVE, format="OGG", subtype="OPUS" if opus else "VORBIS")
    (cache / package / ".complete").write_text(f"{package}_1_all.deb")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Frets on Fire songs (stems) in test, val and train, Warzone's track3 and its enhanced version (val),
    one train track, and a band-limited track; built, then built again."""
    root = tmp_path_factory.mktemp("realmusic")
    cache, rng = root / "debs", np.random.default_rng(2)
    songs = "usr/share/games/fretsonfire/data/songs/muldjord"
    _package(
        cache,
        "fretsonfire-songs-muldjord",
        {
            f"{songs}/{song}/{stem}.ogg": _bright(22.0, rng, None if stem == "song" else 6000)
            for song in ("armygeddon", "mutilated_mime", "chaos_god")
            for stem in ("song", "guitar")
        },
    )
    albums = "usr/share/games/warzone2100/music/albums"
    _package(
        cache,
        "warzone2100-music",
        {
            f"{albums}/original_soundtrack/track3.opus": _bright(12.0, rng, rate=RATE),
            f"{albums}/aftermath_soundtrack/track3_enhanced.opus": _bright(12.0, rng, rate=RATE),
            f"{albums}/legacy_soundtrack/track5.opus": _bright(12.0, rng, rate=RATE),
            f"{albums}/legacy_soundtrack/track6.opus": _bright(12.0, rng, cutoff=11000, rate=RATE),
        },
    )
    sources = tuple(s for s in realmusic.SOURCES if s.package in ("fretsonfire-songs-muldjord", "warzone2100-music"))
    entries = realmusic.build(root / "corpus", cache=cache, sources=sources)
    mtimes = {e["file"]: (root / "corpus" / e["file"]).stat().st_mtime_ns for e in entries}
    again = realmusic.build(root / "corpus", cache=cache, sources=sources)
    return root / "corpus", entries, again, mtimes


def test_the_split_is_by_piece(built) -> None:
    out, entries, _, _ = built
    splits: dict[str, set[str]] = {}
    for e in entries:
        splits.setdefault(e["group"], set()).add(e["split"])
    assert all(len(s) == 1 for s in splits.values())  # no piece in two splits
    assert {g: s.pop() for g, s in splits.items()} == {
        "fretsonfire-songs-muldjord:armygeddon": "test",
        "fretsonfire-songs-muldjord:mutilated_mime": "val",
        "fretsonfire-songs-muldjord:chaos_god": "train",
        "warzone2100-music:track3": "val",
        "warzone2100-music:track5": "train",
    }  # track6 (content to 11 kHz) is left out
    assert {e["recording"] for e in entries if e["group"] == "warzone2100-music:track3"} == {"track3", "track3_enhanced"}
    for e in entries:
        assert e["file"].startswith(f"realmusic/{e['split']}/") and Path(e["file"]).name.startswith(
            e["source"].removesuffix("-music") + "-"
        )


def test_excerpts_are_full_band_levelled_mono(built) -> None:
    out, entries, _, _ = built
    songs = [e for e in entries if e["source"] == "fretsonfire-songs-muldjord"]
    assert len(songs) == 6 and {e["duration"] for e in songs} == {10.0}  # 22 s songs: two excerpts each
    for e in entries:
        x, rate = sf.read(out / e["file"])
        assert rate == RATE and x.ndim == 1 and len(x) == round(e["duration"] * RATE)
        rms_db = 10 * np.log10(np.mean(x**2))
        assert -45 < rms_db < -13 and np.max(np.abs(x)) <= recorded.PEAK + 1e-4
        assert e["bandwidth_hz"] >= realmusic.MIN_BANDWIDTH_HZ and e["licence"] and e["hf_db"] > -40


def test_a_second_build_is_cached_and_parts_are_merged(built) -> None:
    out, entries, again, mtimes = built
    assert again == entries
    assert all((out / f).stat().st_mtime_ns == t for f, t in mtimes.items())
    doc = json.loads((out / "recorded.json").read_text())
    assert doc["parts"] == ["realmusic"] and doc["rate"] == RATE
    voice = {"file": "voices/test/x-0000.wav", "kind": "voices", "split": "test", "duration": 8.0}
    recorded.save_part(out, "recorded", RATE, [voice])
    assert recorded.built_part(out, "realmusic", RATE) == entries
    assert recorded.built_part(out, "recorded", RATE) == [voice]
    assert recorded.built_part(out, "realmusic", 44100) is None
    recorded.save_part(out, "realmusic", RATE, entries)  # rebuilding one part keeps the other
    assert json.loads((out / "recorded.json").read_text())["parts"] == ["recorded", "realmusic"]
    assert recorded.built_part(out, "recorded", RATE) == [voice]


def test_each_part_is_built_again_when_its_recipe_changes_and_a_manifest_of_the_one_voice_recipe_is_read(built, monkeypatch) -> None:
    out, entries, _, _ = built
    kept = (out / "recorded.json").read_text()  # the module's build, given back at the end
    assert json.loads(kept)["recipes"]["realmusic"] == recorded.RECIPES["realmusic"]
    monkeypatch.setitem(recorded.RECIPES, "realmusic", recorded.RECIPES["realmusic"] + 1)
    assert recorded.built_part(out, "realmusic", RATE) is None  # a newer recipe: this part is built again
    assert recorded.built_part(out, "realmusic", RATE, any_recipe=True) == entries  # what the rebuild replaces
    monkeypatch.undo()
    voice = {"file": "voices/test/x-0000.wav", "kind": "voices", "split": "test", "duration": 8.0}
    legacy = {"rate": RATE, "parts": ["recorded"], "voice_recipe": recorded.RECIPES["recorded"], "files": [voice]}
    (out / "recorded.json").write_text(json.dumps(legacy))  # as session 21 wrote it: the voices' recipe alone
    assert recorded.built_part(out, "recorded", RATE) == [voice]  # read as this recipe's: no rebuild
    recorded.save_part(out, "realmusic", RATE, entries)
    assert json.loads((out / "recorded.json").read_text())["recipes"] == recorded.RECIPES
    (out / "recorded.json").write_text(kept)


def test_a_build_of_an_older_recipe_removes_the_excerpts_it_no_longer_writes(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "corpus"
    stale = out / "realmusic" / "train" / "gone-0000.wav"
    stale.parent.mkdir(parents=True)
    sf.write(stale, np.zeros(100), RATE)
    entry = {"file": "realmusic/train/gone-0000.wav", "kind": "realmusic", "split": "train", "duration": 0.0}
    recorded.save_part(out, "realmusic", RATE, [entry])
    monkeypatch.setitem(recorded.RECIPES, "realmusic", recorded.RECIPES["realmusic"] + 1)
    assert realmusic.build(out, cache=tmp_path, sources=()) == []  # built again (from no sources here)
    assert not stale.exists()  # training reads the folders: what the manifest no longer lists is gone
    assert json.loads((out / "recorded.json").read_text())["recipes"]["realmusic"] == recorded.RECIPES["realmusic"]
