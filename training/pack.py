"""A training corpus packed small enough to travel: compressed clean audio, noise and room responses.

    python -m rt_enhance.training.pack --out .gpu/pack --max-mib 40 --data_root CORPUS/mix-train \\
        --preprocessing "maybe 0.9 noise CORPUS/noise-train -5 20,maybe 0.3 rir CORPUS/rir/train 0 20,..." \\
        --dataset_args val_dir=CORPUS/voices/val --config speech-erb.toml --subset

A pack holds what a recipe reads from disk and nothing else: the clean files under ``--data_root``
(folder ``clean/``) and every folder the ``--preprocessing`` string names (``noise DIR``, ``rir DIR``;
folders ``dir-1/``, ``dir-2/`` ...) and the validation folder of ``--dataset_args val_dir=DIR`` (folder
``val/``), each file reduced to the one channel training reads (the channel mean; a room response's
first channel) and compressed, plus ``pack.json``: the preprocessing string with those folders written as
``{pack}/dir-N`` (:func:`unpacked_pipeline` puts the pack's path back), the dataset arguments with
``val_dir={pack}/val`` (:func:`unpacked_dataset_args`), the recipe's ``--config`` (the trainer's default)
and what each folder holds. Noise, rooms and every other degradation are still made on the fly when
training reads the pack.

Codecs: FLAC (16-bit, lossless up to the 16-bit floor) or Ogg/Opus (``--bitrate``, 64 kb/s by
default; clean and noise files at Opus's own rates only; room responses always FLAC, 16-bit, scaled
to full range, since training scales them to a unit direct path anyway). With ``--codec auto`` the
pack is FLAC when it fits ``--max-mib``, else Opus.

``--subset`` (for a corpus that does not fit whole, even as Opus; Opus unless ``--codec flac``): each
folder gets a share of ``--max-mib`` (validation 4 %, rooms 8 %, noise 20 %, split among the noise
folders; the clean audio all that is left) and is filled with a seeded sample of its files, balanced
across its top-level subfolders (``speech``, ``voices``, ``music`` of the mix): the next file always
comes from the subfolder with the fewest seconds packed so far, so a subfolder smaller than its share
is packed whole and the rest is shared by the others. Each clean, noise and validation file is cut
to a seeded stretch of at most ``--crop`` seconds (4 by default: more files, speakers and pieces in
the same bytes than whole files would give; keep it at least twice the training window); rooms are
whole. ``pack.json`` and the log say what each subfolder got of what it had. Codec artefacts are in the
clean audio before it is degraded, so input and target of a training pair carry the same ones.
A pack that does not fit is an error that names the size; nothing half-written is left as
``pack.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from rt_enhance.realtime.errors import RtEnhanceError
from rt_enhance.training.datasets import DatasetError, list_audio, parse_dataset_args
from rt_enhance.training.degrade import DegradationError, Maybe, Noise, RirFiles, Step, parse_pipeline

logger = logging.getLogger(__name__)

PACK_VERSION = 1
MANIFEST = "pack.json"
PLACEHOLDER = "{pack}"
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
MIB = 1 << 20


class PackError(RtEnhanceError, ValueError):
    """A pack that cannot be made or read as asked; one line for the user."""


#: Share of the cap each kind of folder may fill under ``--subset``; the clean audio gets what is left.
SHARES = {"val": 0.04, "rir": 0.08, "noise": 0.20}
#: Bytes kept free under the cap for ``pack.json``.
MANIFEST_ROOM = 64 * 1024


@dataclass(frozen=True)
class Role:
    """One folder of the pack: where it came from and what it holds (``clean``, ``noise``, ``rir``, ``val``)."""

    name: str
    source: Path
    kind: str = "clean"

    @property
    def rir(self) -> bool:
        return self.kind == "rir"


@dataclass(frozen=True)
class Subset:
    """How a corpus that does not fit whole is cut down: at most ``crop`` seconds of each file (rooms
    whole), files drawn with ``seed``."""

    crop: float = 4.0
    seed: int = 0


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


def _unpacked(pack: Path, text: str) -> str:
    where = str(Path(pack).resolve())
    if any(c in where for c in " ,="):
        raise PackError(
            f"the pack's path {where} holds a space, comma or '=', which the preprocessing and "
            "dataset_args syntax cannot carry; move the pack"
        )
    return text.replace(PLACEHOLDER, where)


def unpacked_pipeline(pack: Path) -> str:
    """The pack's preprocessing string with its folders under ``pack`` (checked like any other)."""
    return _unpacked(pack, read_manifest(pack)["preprocessing"])


def unpacked_dataset_args(pack: Path) -> str:
    """The pack's dataset arguments (``val_dir`` under ``pack``); empty when it was made without any."""
    return _unpacked(pack, read_manifest(pack).get("dataset_args", ""))


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


def read_mono(source: Path, *, rir: bool, crop: float | None, rng: np.random.Generator | None) -> tuple[np.ndarray, int]:
    """``source`` as mono float32 ``[samples]`` (a room response's first channel, else the channel mean, as
    ``rir DIR`` and the dataset read them), cut to a stretch of at most ``crop`` seconds drawn with ``rng``."""
    info = sf.info(str(source))
    frames, start = info.frames, 0
    if crop is not None and info.frames > crop * info.samplerate:
        frames = max(1, int(crop * info.samplerate))
        start = int(rng.integers(0, info.frames - frames + 1)) if rng is not None else 0
    audio, rate = sf.read(str(source), start=start, frames=frames, dtype="float32", always_2d=True)
    return (audio[:, 0] if rir else audio.mean(axis=1)), rate


def encode(
    source: Path,
    target_stem: Path,
    *,
    codec: str,
    kbps: float,
    rir: bool,
    crop: float | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[Path, float]:
    """Write ``source`` (or a stretch of at most ``crop`` seconds) as mono ``target_stem``.flac or .ogg (Opus);
    returns the path and its seconds."""
    mono, rate = read_mono(source, rir=rir, crop=crop, rng=rng)
    target_stem.parent.mkdir(parents=True, exist_ok=True)
    if codec == "opus" and not rir and rate in OPUS_RATES:
        path = target_stem.with_suffix(".ogg")
        sf.write(str(path), mono, rate, format="OGG", subtype="OPUS", compression_level=opus_level(kbps))
    else:
        path = target_stem.with_suffix(".flac")
        peak = float(np.max(np.abs(mono))) if mono.size else 0.0
        if peak > 1.0 or (rir and peak > 0):  # integer FLAC clips; rooms are scaled to a unit direct path on reading
            mono = mono * (0.99 / peak if rir else 1.0 / peak)
        sf.write(str(path), mono, rate, format="FLAC", subtype="PCM_16")
    return path, mono.size / rate


def subfolders(source: Path) -> dict[str, list[Path]]:
    """The audio files under ``source`` by top-level subfolder (files at the top: ``"."``), sorted."""
    groups: dict[str, list[Path]] = {}
    for file in list_audio(source):
        parts = file.relative_to(source).parts
        groups.setdefault(parts[0] if len(parts) > 1 else ".", []).append(file)
    return groups


@dataclass
class Group:
    """One subfolder while a folder is filled: its files still to pack, and what it has packed."""

    queue: list[Path]
    available_files: int
    available_seconds: float
    files: int = 0
    seconds: float = 0.0
    bytes: int = 0

    def record(self) -> dict:
        return {
            "files": self.files,
            "seconds": round(self.seconds, 3),
            "bytes": self.bytes,
            "of_files": self.available_files,
            "of_seconds": round(self.available_seconds, 3),
        }


def _groups(source: Path, subset: Subset | None, rng: np.random.Generator) -> dict[str, Group]:
    groups = {}
    for name, files in sorted(subfolders(source).items()):
        seconds = sum(sf.info(str(f)).duration for f in files)
        queue = [files[i] for i in rng.permutation(len(files))] if subset else list(files)
        groups[name] = Group(queue, len(files), seconds)
    return groups


def pack_role(role: Role, out: Path, *, codec: str, kbps: float, budget: float = math.inf, subset: Subset | None = None) -> dict:
    """Encode the audio under ``role.source`` into ``out/role.name`` (relative paths kept) within ``budget``
    bytes: the next file from the subfolder with the fewest seconds packed so far, until a file would pass
    the budget or none is left; with ``subset``, files in a seeded order and cut to ``subset.crop`` s."""
    rng = np.random.default_rng([subset.seed if subset else 0, zlib.crc32(role.name.encode())])
    groups = _groups(role.source, subset, rng)
    if not groups:
        raise PackError(f"{role.source} holds no audio files")
    crop = subset.crop if subset and not role.rir else None
    written = 0
    while open_ := [name for name, g in groups.items() if g.queue]:
        group = groups[min(open_, key=lambda name: groups[name].seconds)]
        file = group.queue.pop(0)
        path, length = encode(
            file, out / role.name / file.relative_to(role.source), codec=codec, kbps=kbps, rir=role.rir, crop=crop, rng=rng
        )
        size = path.stat().st_size
        if written + size > budget:
            path.unlink()
            break
        written += size
        group.files, group.seconds, group.bytes = group.files + 1, group.seconds + length, group.bytes + size
    if written == 0:
        raise PackError(f"not one file of {role.source} fits its {budget / MIB:.2f} MiB share; raise --max-mib")
    record = {
        "source": str(role.source),
        "kind": role.kind,
        "files": sum(g.files for g in groups.values()),
        "seconds": round(sum(g.seconds for g in groups.values()), 3),
        "bytes": written,
        "rir": role.rir,
        "crop": crop,
        "subfolders": {name: g.record() for name, g in groups.items()},
    }
    _log_role(role, record, codec)
    return record


def _log_role(role: Role, record: dict, codec: str) -> None:
    logger.info(
        "%s: %d files, %.0f s, %.1f MiB (%s)",
        role.source,
        record["files"],
        record["seconds"],
        record["bytes"] / MIB,
        "flac" if role.rir else codec,
    )
    if record["crop"] is not None or len(record["subfolders"]) > 1:
        for name, g in record["subfolders"].items():
            logger.info(
                "  %s: %d of %d files, %.0f of %.0f s (a %.0f %% share of the %s audio packed)",
                name,
                g["files"],
                g["of_files"],
                g["seconds"],
                g["of_seconds"],
                100 * g["seconds"] / max(record["seconds"], 1e-9),
                role.kind,
            )


def pack_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------------------------
# The pack
# ---------------------------------------------------------------------------------------------------------------


def plan_roles(data_root: str, spec: str, dataset_args: str = "") -> tuple[list[Role], str, str]:
    """The folders to pack (``clean`` first), the preprocessing string and dataset arguments rewritten onto them."""
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise PackError(f"--data_root {data_root} is not a folder")
    roles, names = [Role("clean", root)], {}
    for number, (folder, rir) in enumerate(pipeline_folders(spec), 1):
        names[folder] = f"dir-{number}"
        roles.append(Role(names[folder], Path(folder).expanduser(), "rir" if rir else "noise"))
    try:
        args = parse_dataset_args(dataset_args, "simple")
    except DatasetError as exc:
        raise PackError(f"--dataset_args: {exc}") from None
    if "val_dir" in args:
        val = Path(args["val_dir"]).expanduser()
        if not val.is_dir():
            raise PackError(f"--dataset_args val_dir={args['val_dir']}: not a folder")
        roles.append(Role("val", val, "val"))
        args["val_dir"] = f"{PLACEHOLDER}/val"
    return roles, rewrite_pipeline(spec, names), ",".join(f"{k}={v}" for k, v in args.items())


def budgets(roles: list[Role], max_bytes: float) -> dict[str, float]:
    """Bytes each role may fill under ``--subset``: SHARES of the cap (a kind's share split among its folders);
    ``clean`` is left unbounded here and filled last with what the others left."""
    counts = {kind: sum(r.kind == kind for r in roles) for kind in SHARES}
    return {r.name: SHARES[r.kind] * max_bytes / counts[r.kind] if r.kind in SHARES else math.inf for r in roles}


def write_pack(
    out: Path, roles: list[Role], recipe: dict, *, codec: str, kbps: float, max_bytes: float = math.inf, subset: Subset | None = None
) -> dict:
    """Encode every role into the empty folder ``out`` (with ``subset``: clean last, in what the others left
    of ``max_bytes``) and write ``pack.json`` last."""
    limits = budgets(roles, max_bytes) if subset else {r.name: math.inf for r in roles}
    contents: dict[str, dict] = {}
    for role in sorted(roles, key=lambda r: r.kind == "clean"):
        left = max_bytes - sum(c["bytes"] for c in contents.values()) if subset else math.inf
        contents[role.name] = pack_role(role, out, codec=codec, kbps=kbps, budget=min(limits[role.name], left), subset=subset)
    manifest = {
        "version": PACK_VERSION,
        "codec": codec,
        "opus_kbps": kbps if codec == "opus" else None,
        **recipe,
        "data_root": "clean",
        "subset": None if subset is None else {"crop": subset.crop, "seed": subset.seed},
        "folders": {r.name: contents[r.name] for r in roles},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    manifest["bytes"] = pack_size(out)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _clear_pack(out: Path) -> None:
    """Remove an earlier pack at ``out``; refuse a folder that is not one (never delete user data)."""
    if any(out.iterdir()) and not (out / MANIFEST).is_file() and not (out / ".packing").is_file():
        raise PackError(f"{out} exists and is not a training pack; choose another --out")
    shutil.rmtree(out)


def make_pack(
    out: Path,
    *,
    data_root: str,
    preprocessing: str,
    dataset_args: str = "",
    config: str = "",
    codec: str = "auto",
    kbps: float = 64.0,
    max_mib: float = 40.0,
    subset: Subset | None = None,
) -> dict:
    """Pack ``data_root``, the folders of ``preprocessing`` and the ``val_dir`` of ``dataset_args`` into ``out``
    within ``max_mib`` (whole, or with ``subset`` a sample that fits); the manifest."""
    roles, pipeline, args = plan_roles(data_root, preprocessing, dataset_args)
    recipe = {"preprocessing": pipeline, "dataset_args": args, "config": config}
    if subset is not None:
        if not (subset.crop > 0 and math.isfinite(subset.crop)):
            raise PackError(f"--crop must be a positive number of seconds, got {subset.crop}")
        return _attempt(
            out, roles, recipe, "flac" if codec == "flac" else "opus", kbps, max_bytes=max_mib * MIB - MANIFEST_ROOM, subset=subset
        )
    tries = ("flac", "opus") if codec == "auto" else (codec,)
    for attempt in tries:
        manifest = _attempt(out, roles, recipe, attempt, kbps)
        if manifest["bytes"] <= max_mib * MIB:
            return manifest
        logger.info("%s pack is %.1f MiB, over %.1f MiB", attempt, manifest["bytes"] / MIB, max_mib)
    (out / MANIFEST).unlink()
    raise PackError(
        f"the pack is {manifest['bytes'] / MIB:.1f} MiB, over --max-mib {max_mib:g}, even as {tries[-1]}; "
        f"pack a seeded sample with --subset, lower --bitrate, or pack a smaller corpus"
    )


def _attempt(out: Path, roles: list[Role], recipe: dict, codec: str, kbps: float, **fit) -> dict:
    if out.exists():
        _clear_pack(out)
    out.mkdir(parents=True)
    (out / ".packing").touch()  # marks the folder as ours while it has no manifest yet
    try:
        return write_pack(out, roles, recipe, codec=codec, kbps=kbps, **fit)
    finally:
        (out / ".packing").unlink(missing_ok=True)


def describe(manifest: dict) -> str:
    """One line per folder of a pack, and one per subfolder where it was sampled or has several."""
    lines = [f"pack: {manifest['bytes'] / MIB:.1f} MiB, {manifest['codec']}"]
    for name, info in manifest["folders"].items():
        lines.append(
            f"  {name:8s} {info['files']:5d} files {info['seconds'] / 60:7.1f} min {info['bytes'] / MIB:6.1f} MiB  <- {info['source']}"
        )
        if manifest.get("subset") or len(info.get("subfolders", {})) > 1:
            for sub, g in info.get("subfolders", {}).items():
                lines.append(
                    f"    {sub:10s} {g['files']:5d} of {g['of_files']:5d} files {g['seconds'] / 60:7.1f} of {g['of_seconds'] / 60:7.1f} min"
                )
    lines.append(f"  preprocessing: {manifest['preprocessing']}")
    if manifest.get("dataset_args"):
        lines.append(f"  dataset_args: {manifest['dataset_args']}")
    return "\n".join(lines)


CONFIGS = Path(__file__).resolve().parent / "configs"


def _config_name(config: str) -> str:
    """``config`` as the trainer finds it on another machine: a file of training/configs by its name."""
    if not config:
        return ""
    path = Path(config).expanduser().resolve()
    if not path.is_file():
        raise PackError(f"--config {config}: no such file")
    return path.name if path.parent == CONFIGS else str(path)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="pack: %(message)s")
    p = argparse.ArgumentParser(prog="python -m rt_enhance.training.pack", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="the pack folder (replaced if it holds an earlier pack)")
    p.add_argument("--data_root", required=True, help="the clean audio the recipe trains on")
    p.add_argument("--preprocessing", default="", help="the recipe's degradation string (its folders are packed)")
    p.add_argument("--dataset_args", default="", help="the recipe's dataset arguments (a val_dir folder is packed)")
    p.add_argument("--config", default="", help="the recipe's TOML, recorded as the trainer's default --config")
    p.add_argument(
        "--codec", choices=("auto", "flac", "opus"), default="auto", help="default auto: flac if it fits, else opus (opus with --subset)"
    )
    p.add_argument("--bitrate", type=float, default=64.0, help="Opus kb/s per channel (default 64)")
    p.add_argument("--max-mib", type=float, default=40.0, help="size cap of the pack in MiB (default 40)")
    p.add_argument("--subset", action="store_true", help="pack a seeded sample that fits, balanced across subfolders")
    p.add_argument("--crop", type=float, help="with --subset: seconds per file at most (default 4)")
    p.add_argument("--seed", type=int, help="with --subset: the sample's seed (default 0)")
    args = p.parse_args(argv)
    if not args.subset and (args.crop is not None or args.seed is not None):
        p.error("--crop and --seed shape the sample of --subset; add --subset")  # never ignore a flag given
    given = {k: v for k, v in (("crop", args.crop), ("seed", args.seed)) if v is not None}
    subset = Subset(**given) if args.subset else None
    try:
        manifest = make_pack(
            Path(args.out),
            data_root=args.data_root,
            preprocessing=args.preprocessing,
            dataset_args=args.dataset_args,
            config=_config_name(args.config),
            codec=args.codec,
            kbps=args.bitrate,
            max_mib=args.max_mib,
            subset=subset,
        )
    except (PackError, DatasetError, sf.LibsndfileError) as exc:
        print(f"pack: {exc}", file=sys.stderr)
        return 2
    print(describe(manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
