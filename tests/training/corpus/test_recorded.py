"""The recorded sources of the corpus: splits by speaker or family (never by file), the reserved
evaluation sources never read, G.722 prompts decoded, short clips joined into utterances, and a
build from a package-shaped folder of real files."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rt_enhance.training.corpus import recorded

RATE = 48000
RESERVED = ("alsa-utils", "pyannote", "pysptk", "amfm", "wesnoth", "music21")


def test_no_source_is_reserved_for_evaluation() -> None:
    for source in recorded.SOURCES:
        assert not any(name in source.package for name in RESERVED)


def test_one_speaker_in_two_packages_is_one_group_in_one_split() -> None:
    english = next(s for s in recorded.SOURCES if s.package == "asterisk-core-sounds-en-g722")
    spanish = next(s for s in recorded.SOURCES if s.package == "asterisk-core-sounds-es-g722")
    key_en = recorded.group_key(english, english.group("usr/share/asterisk/sounds/en_US_f_Allison/a.g722"))
    key_es = recorded.group_key(spanish, spanish.group("usr/share/asterisk/sounds/es_MX_f_Allison/b.g722"))
    assert key_en == key_es == "asterisk:allison"
    assert recorded.split_of(key_en) == "test"


def test_every_held_out_split_has_voices_of_several_sources() -> None:
    for split in ("val", "test"):
        sources = {key.split(":")[0] for key, s in recorded.SPLITS.items() if s == split}
        assert {"asterisk", "klettres-data", "hedgewars-data"} <= sources
    assert recorded.split_of("klettres-data:da") == "train"


def test_g722_prompts_are_decoded_at_the_asked_rate(tmp_path: Path) -> None:
    G722 = pytest.importorskip("G722", reason="the corpus extra's G.722 codec")
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    path = tmp_path / "tone.g722"
    path.write_bytes(bytes(G722.G722(16000, 64000).encode(tone)))
    x = recorded.read_mono(path, RATE)
    assert abs(len(x) - RATE) < 100
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    assert abs(np.argmax(spectrum) * RATE / len(x) - 440) < 3


def test_clips_are_joined_into_utterances_with_silence_between() -> None:
    rng = np.random.default_rng(0)
    clips = [np.ones(RATE // 2) * 0.1 for _ in range(40)]
    pieces = recorded.utterances(clips, RATE, rng, seconds=4.0)
    assert len(pieces) >= 4 and all(3.9 * RATE <= len(p) <= 6 * RATE for p in pieces)
    assert all(p[0] == 0 and p[-1] == 0 for p in pieces)
    assert sum(np.count_nonzero(p) for p in pieces) <= 40 * RATE // 2


def test_a_package_folder_builds_voices_by_speaker_and_babble(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "debs"
    rng = np.random.default_rng(1)
    for lang in ("de", "da", "it", "es", "nb", "nn"):  # de: test, it: val, the rest: train
        for i in range(6):
            path = cache / "klettres-data" / "usr/share/klettres" / lang / "alpha" / f"{i}.ogg"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, 0.1 * rng.standard_normal(44100), 44100)
    (cache / "klettres-data" / ".complete").write_text("test")
    source = next(s for s in recorded.SOURCES if s.package == "klettres-data")
    monkeypatch.setattr(recorded, "SOURCES", (source,))
    entries = recorded.build(tmp_path / "corpus", cache=cache, babble=10)
    by_split = {}
    for e in entries:
        by_split.setdefault(e["split"], set()).add(e["group"])
    assert by_split["test"] >= {"klettres-data:de"} and "klettres-data:de" not in by_split["train"]
    assert "klettres-data:it" in by_split["val"]
    assert {"klettres-data:da", "klettres-data:es", "klettres-data:nb"} <= by_split["train"]
    manifest = json.loads((tmp_path / "corpus" / "recorded.json").read_text())
    assert manifest["rate"] == RATE and len(manifest["files"]) == len(entries)
    for e in entries:
        x, rate = sf.read(tmp_path / "corpus" / e["file"])
        assert rate == RATE and x.ndim == 1 and 0 < np.max(np.abs(x)) <= recorded.PEAK + 1e-4
    assert any(e["source"].startswith("babble") and e["split"] == "train" for e in entries)


def _unpacked_packages(tmp_path: Path, languages: tuple[str, ...], sounds: tuple[str, ...], seed: int) -> Path:
    """A package cache holding klettres' letters in ``languages`` and SuperTuxKart's ``sounds``, as unpacked."""
    cache = tmp_path / "debs"
    rng = np.random.default_rng(seed)
    for lang in languages:
        for i in range(6):
            path = cache / "klettres-data" / "usr/share/klettres" / lang / "alpha" / f"{i}.ogg"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, 0.1 * rng.standard_normal(44100), 44100)
    (cache / "klettres-data" / ".complete").write_text("test")
    sfx = cache / "supertuxkart-data" / "usr/share/games/supertuxkart/data/sfx"
    sfx.mkdir(parents=True)
    for name in sounds:
        sf.write(sfx / f"{name}.ogg", 0.1 * rng.standard_normal(2 * 44100), 44100)
    (cache / "supertuxkart-data" / ".complete").write_text("deb\n./usr/share/games/supertuxkart/data/sfx/*")
    return cache


def test_a_built_corpus_gains_only_the_sources_added_since(tmp_path: Path, monkeypatch) -> None:
    cache = _unpacked_packages(tmp_path, ("da", "es", "nb", "de"), ("rain", "crash", "crash3", "waterfall_loop_2"), seed=2)
    klettres = next(s for s in recorded.SOURCES if s.package == "klettres-data")
    karts = next(s for s in recorded.SOURCES if s.package == "supertuxkart-data")
    assert karts.key not in recorded.FIRST_SOURCES and klettres.key in recorded.FIRST_SOURCES
    out = tmp_path / "corpus"
    monkeypatch.setattr(recorded, "SOURCES", (klettres,))
    first = recorded.build(out, cache=cache, babble=10)
    doc = json.loads((out / "recorded.json").read_text())
    del doc["sources"]  # as a corpus built before the sources were recorded
    (out / "recorded.json").write_text(json.dumps(doc))
    babble = {e["file"]: (out / e["file"]).stat().st_mtime_ns for e in first if e["source"].startswith("babble")}
    monkeypatch.setattr(recorded, "SOURCES", (klettres, karts))
    grown = recorded.build(out, cache=cache, babble=10)
    added = [e for e in grown if e["source"] == "supertuxkart-data"]
    assert grown[: len(first)] == first and len(grown) == len(first) + len(added) == len(first) + 4
    assert {e["group"] for e in added} == {"supertuxkart-data:rain", "supertuxkart-data:crash", "supertuxkart-data:waterfall-loop"}
    assert {e["split"] for e in added} == {"train"} and all(e["kind"] == "realnoise" for e in added)
    assert {f: (out / f).stat().st_mtime_ns for f in babble} == babble  # the babble was not made again
    assert json.loads((out / "recorded.json").read_text())["sources"] == [klettres.key, karts.key]
    assert recorded.build(out, cache=cache, babble=10) == grown  # nothing left to add


def test_unpacking_another_part_of_a_package_keeps_the_part_unpacked_before(tmp_path: Path) -> None:
    if shutil.which("dpkg-deb") is None:
        pytest.fail("dpkg-deb is needed (Debian's dpkg); the corpus's recorded sources come from Debian packages")
    tree = tmp_path / "tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text("Package: pkg\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n")
    for part in ("music", "sfx", "other"):
        (tree / "usr" / part).mkdir(parents=True)
        (tree / "usr" / part / "a.txt").write_text(part)
    cache = tmp_path / "cache"
    (cache / "debs").mkdir(parents=True)  # where unpack looks for a downloaded .deb before asking apt-get
    subprocess.run(["dpkg-deb", "--build", str(tree), str(cache / "debs" / "pkg_1_all.deb")], check=True, capture_output=True)
    target = recorded.unpack("pkg", cache, ("./usr/music/*",))
    assert (target / "usr/music/a.txt").is_file() and not (target / "usr/sfx").exists()
    assert recorded.unpack("pkg", cache, ("./usr/music/*",)) == target  # served from the cache
    recorded.unpack("pkg", cache, ("./usr/sfx/*",))
    assert (target / "usr/music/a.txt").read_text() == "music" and (target / "usr/sfx/a.txt").read_text() == "sfx"
    assert not (target / "usr/other").exists()
    assert (target / ".complete").read_text().splitlines()[1:] == ["./usr/music/*", "./usr/sfx/*"]


def test_megaglest_keeps_ambiences_and_effects_once_and_leaves_out_the_units_voices(tmp_path: Path) -> None:
    root = tmp_path / "megaglest-data"
    base = root / "usr/share/games/megaglest"
    rng = np.random.default_rng(3)
    rain = 0.1 * rng.standard_normal(22050)
    files = {
        "tilesets/meadow/sounds/rain.wav": rain,
        "tilesets/jungle/sounds/rain.wav": rain,  # the same recording shipped with another map
        "tilesets/jungle/sounds/night.ogg": 0.1 * rng.standard_normal(22050),
        "techs/megapack/commondata/sounds/horseman_attack3.wav": 0.1 * rng.standard_normal(22050),
        "techs/megapack/commondata/sounds/horseman_ack2.wav": 0.1 * rng.standard_normal(22050),  # a spoken "yes?"
        "techs/megapack/commondata/sounds/archer_select.wav": 0.1 * rng.standard_normal(22050),
        "techs/megapack/commondata/sounds/worker_die1.wav": 0.1 * rng.standard_normal(22050),
        "techs/megapack/factions/magic/units/initiate/sounds/initiate_attack.wav": 0.1 * rng.standard_normal(22050),
    }
    for rel, x in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(base / rel, x, 22050)
    source = next(s for s in recorded.SOURCES if s.package == "megaglest-data")
    groups = recorded.source_files(source, root)
    assert set(groups) == {"megaglest-data:rain", "megaglest-data:night", "megaglest-data:horseman-attack"}
    assert len(groups["megaglest-data:rain"]) == 1  # one copy of the repeated recording
    assert all(recorded.split_of(key) == "train" for key in groups)


def test_ktuberling_keeps_each_languages_wide_recordings_once_and_leaves_out_the_narrow_ones(tmp_path: Path) -> None:
    base = tmp_path / "ktuberling-data/usr/share/ktuberling/sounds"
    rng = np.random.default_rng(4)
    files = {
        "sr/brkovi.ogg": (0.1 * rng.standard_normal(22050), 22050),
        "nn/ball.opus": (0.1 * rng.standard_normal(48000), 48000),
        "en/ball.ogg": (0.1 * rng.standard_normal(44100), 44100),
        "sv/fluga.wav": (0.1 * rng.standard_normal(8000), 8000),  # telephone band: left out
    }
    for rel, (x, rate) in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(base / rel, x, rate, format="OGG" if rel.endswith(".opus") else None, subtype="OPUS" if rel.endswith(".opus") else None)
    (base / "sr@latin").mkdir()
    shutil.copy(base / "sr/brkovi.ogg", base / "sr@latin/brkovi.ogg")  # the same recording under another script's folder
    (base / "en.soundtheme").write_text("<theme/>")
    source = next(s for s in recorded.SOURCES if s.package == "ktuberling-data")
    groups = recorded.source_files(source, tmp_path / "ktuberling-data")
    assert set(groups) == {"ktuberling-data:sr", "ktuberling-data:nn", "ktuberling-data:en"}
    assert sum(len(files) for files in groups.values()) == 3
    assert all(recorded.split_of(key) == "train" for key in groups)


def test_a_cached_package_link_whose_file_is_gone_is_fetched_again(tmp_path: Path) -> None:
    debs = tmp_path / "debs"
    debs.mkdir()
    name = "rt-enhance-test-no-such-package"
    (debs / f"{name}_1_all.deb").symlink_to(tmp_path / "gone" / f"{name}_1_all.deb")
    with pytest.raises(recorded.RecordedError, match=f"apt-get download {name} failed"):
        recorded._download(name, debs)  # asks apt-get (which has no such package) instead of returning the link
    assert not (debs / f"{name}_1_all.deb").is_symlink()


def test_a_source_built_again_replaces_its_entries_and_a_file_listed_twice_is_listed_once(tmp_path: Path, monkeypatch) -> None:
    cache = _unpacked_packages(tmp_path, ("da", "es"), ("rain", "crash"), seed=4)
    klettres = next(s for s in recorded.SOURCES if s.package == "klettres-data")
    karts = next(s for s in recorded.SOURCES if s.package == "supertuxkart-data")
    assert {s.key for s in recorded.SOURCES if s.kind == "realnoise"} - set(recorded.FIRST_SOURCES) >= {karts.key}
    assert "hedgewars-data:realnoise" in recorded.FIRST_SOURCES and "sonic-pi-samples:realnoise" in recorded.FIRST_SOURCES
    monkeypatch.setattr(recorded, "SOURCES", (klettres, karts))
    out = tmp_path / "corpus"
    built = recorded.build(out, cache=cache, babble=10)
    files = [e["file"] for e in built]
    doc = json.loads((out / "recorded.json").read_text())
    del doc["sources"]  # as before sources were recorded: the sound effects count as missing and are built again
    (out / "recorded.json").write_text(json.dumps(doc))
    again = recorded.build(out, cache=cache, babble=10)
    assert sorted(e["file"] for e in again) == sorted(files)  # replaced, not appended
    doc = json.loads((out / "recorded.json").read_text())
    doc["files"] += [e for e in doc["files"] if e["source"] == "supertuxkart-data"]  # a manifest grown by the old build
    (out / "recorded.json").write_text(json.dumps(doc))
    mended = recorded.build(out, cache=cache, babble=10)
    assert sorted(e["file"] for e in mended) == sorted(files)
    assert len(json.loads((out / "recorded.json").read_text())["files"]) == len(files)


def test_voices_lose_their_dc_offsets_and_rumble_and_a_corpus_of_the_older_recipe_is_built_again(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "debs"
    rng = np.random.default_rng(5)
    t = np.arange(44100) / 44100
    for i in range(6):  # a voice-band tone on a DC offset, and a 20 Hz thump: steps and rumble once joined
        x = 0.1 * np.sin(2 * np.pi * rng.uniform(200, 900) * t) + 0.05 + 0.05 * np.sin(2 * np.pi * 20 * t) * (t < 0.2)
        path = cache / "klettres-data" / "usr/share/klettres" / "da" / "alpha" / f"{i}.ogg"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, x, 44100)
    (cache / "klettres-data" / ".complete").write_text("test")
    monkeypatch.setattr(recorded, "SOURCES", tuple(s for s in recorded.SOURCES if s.package == "klettres-data"))
    out = tmp_path / "corpus"
    built = recorded.build(out, cache=cache, babble=0)
    voices = [e for e in built if e["kind"] == "voices"]
    assert voices
    for entry in voices:
        y, rate = sf.read(out / entry["file"])
        power = np.abs(np.fft.rfft(y)) ** 2
        below = power[: int(recorded.VOICE_HIGHPASS_HZ * len(y) / rate)].sum() / power.sum()
        assert below < 1e-3, f"{entry['file']}: {below:.1%} of its energy below {recorded.VOICE_HIGHPASS_HZ} Hz"
    doc = json.loads((out / "recorded.json").read_text())
    assert doc["recipes"]["recorded"] == recorded.RECIPES["recorded"]
    path = out / voices[0]["file"]
    sf.write(path, np.zeros(100), RATE)  # as the older recipe left it: a build marks it for building again
    extra = path.with_name("klettres-da-0099.wav")  # an utterance the older recipe made and this one does not
    sf.write(extra, np.zeros(100), RATE)
    doc["recipes"]["recorded"] = 1
    doc["files"].append({**voices[0], "file": extra.relative_to(out).as_posix()})
    (out / "recorded.json").write_text(json.dumps(doc))
    assert recorded.build(out, cache=cache, babble=0)  # not kept as it was
    assert sf.info(path).frames > 100
    assert not extra.exists()  # the folders, which training reads, hold only what the manifest lists
    assert json.loads((out / "recorded.json").read_text())["recipes"]["recorded"] == recorded.RECIPES["recorded"]
