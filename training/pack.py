"""A training corpus packed small enough to travel: compressed clean audio, noise and room responses.

    python -m rt_enhance.training.pack --out .gpu/pack --max-mib 40 --data_root CORPUS/mix-train \\
        --preprocessing "maybe 0.85 noise CORPUS/noise/train -5 25,maybe 0.3 rir CORPUS/rir/train 0 20,..."

A pack holds what a recipe reads from disk and nothing else: the clean files under ``--data_root``
(folder ``clean/``) and every folder the ``--preprocessing`` string names (``noise DIR``, ``rir DIR``;
folders ``dir-1/``, ``dir-2/`` ...), each file reduced to the one channel training reads (the channel
mean; a room response's first channel) and compressed, plus ``pack.json``: the preprocessing string with those folders written as
``{pack}/dir-N`` (:func:`unpacked_pipeline` puts the pack's path back), and what each folder holds.
Noise, rooms and every other degradation are still made on the fly when training reads the pack.

Codecs: FLAC (16-bit, lossless up to the 16-bit floor) or Ogg/Opus (``--bitrate``, 64 kb/s by
default; clean and noise files at Opus's own rates only; room responses always FLAC, 24-bit). With
``--codec auto`` the pack is FLAC when it fits ``--max-mib``, else Opus. Codec artefacts are in the
clean audio before it is degraded, so input and target of a training pair carry the same ones.
A pack that does not fit is an error that names the size; nothing half-written is left as
``pack.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from rt_enhance.training.datasets import DatasetError, list_audio
from rt_enhance.training.degrade import DegradationError, Maybe, Noise, RirFiles, Step, parse_pipeline

logger = logging.getLogger(__name__)

PACK_VERSION = 1
MANIFEST = "pack.json"
PLACEHOLDER = "{pack}"
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
MIB = 1 << 20


class PackError(ValueError):
    """A pack that cannot be made or read as asked; one line for the user."""


@dataclass(frozen=True)
class Role:
    """One folder of the pack: where it came from and whether it holds room responses."""

    name: str
    source: Path
    rir: bool = False


def _folder_steps(step: Step) -> list[Step]:
    return _folder_steps(step.inner) if isinstance(step, Maybe) else [step]


def pipeline_folders(spec: str) -> list[tuple[str, bool]]:
    """``(folder as written, is_rir)`` for every folder ``spec`` reads, in order, each once."""
    try:
        steps = parse_pipeline(spec).steps
    except DegradationError as exc:
        raise PackError(f"--preprocessing: {exc}") from None
    found: dict[str, bool] = {}
    for step in (s for top in steps for s in _folder_steps(top)):
        if isinstance(step, Noise) and step.files is not None:
            found.setdefault(step.files.folder, False)
        elif isinstance(step, RirFiles):
            found.setdefault(step.files.folder, True)
    return list(found.items())


def rewrite_pipeline(spec: str, names: dict[str, str]) -> str:
    """``spec`` with each folder word ``names``' key replaced by ``{pack}/value`` (word by word, so a
    folder that is a prefix of another is not touched)."""
    parts = []
    for part in spec.split(","):
        words = [f"{PLACEHOLDER}/{names[w]}" if w in names else w for w in part.split()]
        parts.append(" ".join(words))
    return ",".join(parts)


def unpacked_pipeline(pack: Path) -> str:
    """The pack's preprocessing string with its folders under ``pack`` (checked like any other)."""
    text = read_manifest(pack)["preprocessing"]
    where = str(pack.resolve())
    if any(c in where for c in " ,"):
        raise PackError(f"the pack's path {where} holds a space or comma, which the preprocessing syntax cannot "
                        "carry; move the pack")
    return text.replace(PLACEHOLDER, where)


def read_manifest(pack: Path) -> dict:
    """``pack.json`` of ``pack``; PackError when it is missing or of another version."""
    path = Path(pack) / MANIFEST
    if not path.is_file():
        raise PackError(f"{pack} is not a training pack (no {MANIFEST}); make one with scripts/gpu-pack.sh")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("version") != PACK_VERSION:
        raise PackError(f"{path} is pack version {manifest.get('version')!r}; this rt-enhance reads {PACK_VERSION}")
    return manifest


# ---------------------------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------------------------


def opus_level(kbps: float) -> float:
    """libsndfile's Opus compression level for about ``kbps`` kb/s per channel (0 -> 256, 1 -> 6, linear)."""
    return float(np.clip((256.0 - kbps) / 250.0, 0.0, 1.0))


def encode(source: Path, target_stem: Path, *, codec: str, kbps: float, rir: bool) -> tuple[Path, float]:
    """Write ``source`` as mono ``target_stem``.flac or .ogg (Opus); returns the path and its seconds."""
    audio, rate = sf.read(str(source), dtype="float32", always_2d=True)
    mono = audio[:, 0] if rir else audio.mean(axis=1)  # as `rir DIR` and the dataset read them
    target_stem.parent.mkdir(parents=True, exist_ok=True)
    if codec == "opus" and not rir and rate in OPUS_RATES:
        path = target_stem.with_suffix(".ogg")
        sf.write(str(path), mono, rate, format="OGG", subtype="OPUS", compression_level=opus_level(kbps))
    else:
        path = target_stem.with_suffix(".flac")
        peak = float(np.max(np.abs(mono))) if mono.size else 0.0
        if peak > 1.0:  # integer FLAC clips; room responses are normalised to their direct path on reading
            mono = mono / peak
        sf.write(str(path), mono, rate, format="FLAC", subtype="PCM_24" if rir else "PCM_16")
    return path, mono.size / rate


def pack_role(role: Role, out: Path, *, codec: str, kbps: float) -> dict:
    """Encode every audio file under ``role.source`` into ``out/role.name``, keeping relative paths."""
    files = list_audio(role.source)
    if not files:
        raise PackError(f"{role.source} holds no audio files")
    seconds, written = 0.0, 0
    for file in files:
        rel = file.relative_to(role.source)
        path, length = encode(file, out / role.name / rel, codec=codec, kbps=kbps, rir=role.rir)
        seconds += length
        written += path.stat().st_size
    logger.info("%s: %d files, %.0f s, %.1f MiB (%s)", role.source, len(files), seconds, written / MIB, codec)
    return {"source": str(role.source), "files": len(files), "seconds": round(seconds, 3), "bytes": written,
            "rir": role.rir}


def pack_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------------------------
# The pack
# ---------------------------------------------------------------------------------------------------------------


def plan_roles(data_root: str, spec: str) -> tuple[list[Role], str]:
    """The folders to pack (``clean`` first) and the preprocessing string rewritten onto them."""
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise PackError(f"--data_root {data_root} is not a folder")
    roles, names = [Role("clean", root)], {}
    for number, (folder, rir) in enumerate(pipeline_folders(spec), 1):
        names[folder] = f"dir-{number}"
        roles.append(Role(names[folder], Path(folder).expanduser(), rir))
    return roles, rewrite_pipeline(spec, names)


def write_pack(out: Path, roles: list[Role], pipeline: str, *, codec: str, kbps: float) -> dict:
    """Encode every role into the empty folder ``out`` and write ``pack.json`` last."""
    contents = {role.name: pack_role(role, out, codec=codec, kbps=kbps) for role in roles}
    manifest = {"version": PACK_VERSION, "codec": codec, "opus_kbps": kbps if codec == "opus" else None,
                "preprocessing": pipeline, "data_root": "clean", "folders": contents,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    manifest["bytes"] = pack_size(out)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _clear_pack(out: Path) -> None:
    """Remove an earlier pack at ``out``; refuse a folder that is not one (never delete user data)."""
    if any(out.iterdir()) and not (out / MANIFEST).is_file() and not (out / ".packing").is_file():
        raise PackError(f"{out} exists and is not a training pack; choose another --out")
    shutil.rmtree(out)


def make_pack(out: Path, *, data_root: str, preprocessing: str, codec: str = "auto", kbps: float = 64.0,
              max_mib: float = 40.0) -> dict:
    """Pack ``data_root`` and the folders of ``preprocessing`` into ``out`` within ``max_mib``; the manifest."""
    roles, pipeline = plan_roles(data_root, preprocessing)
    tries = ("flac", "opus") if codec == "auto" else (codec,)
    for attempt in tries:
        manifest = _attempt(out, roles, pipeline, attempt, kbps)
        if manifest["bytes"] <= max_mib * MIB:
            return manifest
        logger.info("%s pack is %.1f MiB, over %.1f MiB", attempt, manifest["bytes"] / MIB, max_mib)
    (out / MANIFEST).unlink()
    raise PackError(f"the pack is {manifest['bytes'] / MIB:.1f} MiB, over --max-mib {max_mib:g}, even as {tries[-1]}; "
                    f"lower --bitrate, or pack a smaller corpus")


def _attempt(out: Path, roles: list[Role], pipeline: str, codec: str, kbps: float) -> dict:
    if out.exists():
        _clear_pack(out)
    out.mkdir(parents=True)
    (out / ".packing").touch()  # marks the folder as ours while it has no manifest yet
    try:
        return write_pack(out, roles, pipeline, codec=codec, kbps=kbps)
    finally:
        (out / ".packing").unlink(missing_ok=True)


def describe(manifest: dict) -> str:
    """One line per folder of a pack."""
    lines = [f"pack: {manifest['bytes'] / MIB:.1f} MiB, {manifest['codec']}"]
    for name, info in manifest["folders"].items():
        lines.append(f"  {name:8s} {info['files']:5d} files {info['seconds'] / 60:7.1f} min "
                     f"{info['bytes'] / MIB:6.1f} MiB  <- {info['source']}")
    lines.append(f"  preprocessing: {manifest['preprocessing']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="pack: %(message)s")
    p = argparse.ArgumentParser(prog="python -m rt_enhance.training.pack", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="the pack folder (replaced if it holds an earlier pack)")
    p.add_argument("--data_root", required=True, help="the clean audio the recipe trains on")
    p.add_argument("--preprocessing", default="", help="the recipe's degradation string (its folders are packed)")
    p.add_argument("--codec", choices=("auto", "flac", "opus"), default="auto", help="default auto: flac if it fits")
    p.add_argument("--bitrate", type=float, default=64.0, help="Opus kb/s per channel (default 64)")
    p.add_argument("--max-mib", type=float, default=40.0, help="size cap of the pack in MiB (default 40)")
    args = p.parse_args(argv)
    try:
        manifest = make_pack(Path(args.out), data_root=args.data_root, preprocessing=args.preprocessing,
                             codec=args.codec, kbps=args.bitrate, max_mib=args.max_mib)
    except (PackError, DatasetError, sf.LibsndfileError) as exc:
        print(f"pack: {exc}", file=sys.stderr)
        return 2
    print(describe(manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
