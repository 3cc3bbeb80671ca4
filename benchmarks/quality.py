"""``rt-bench quality``: every system on a held-out test set, scored per task.

The test set (:mod:`rt_enhance.benchmarks.testset`) is built from a corpus's ``test`` splits and
written to ``--out``; each system (:mod:`rt_enhance.benchmarks.systems`) runs file to file on every
degraded item; each output is scored against the clean reference, as it is (no re-alignment):
PESQ-wb and STOI (speech items only), SI-SDR, LSD and SNR (``training/metrics.py``), and its time
alignment: the lag of the output against its input (which the test set aligns with the
reference), from a phase-transformed cross-correlation within +-``MAX_LAG_MS`` (:func:`score`
says why not against the reference). A lag is a defect; the scores are taken as they are, so
they show it, and the table prints the lag of every output.

Records: one per (task, system) with the means over the task's items (PESQ/STOI over its speech
items) and ``per_item``; then one per target of issues 11, 16 and 17 (``section: targets``),
computed from those records (:func:`targets`); on real music, a last line says whether all of
issue 17's targets are met.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from rt_enhance.benchmarks import peers, systems
from rt_enhance.benchmarks import testset as ts
from rt_enhance.benchmarks.table import Column, render

logger = logging.getLogger(__name__)

METRICS = ("pesq", "stoi", "si_sdr", "lsd", "snr", "pause", "highs")
MAX_LAG_MS = 50.0
PHAT_BETA = 0.8
DFN3_LATENCY_MS = peers.DFN3_LATENCY_MS
REAL_PEERS = ("rnnoise", "rnnoise-aligned", "gtcrn", "dtln")  # issue 16: ours above each, on real voices


@dataclass(frozen=True)
class QualityOptions:
    corpus: str
    model: str | None = None
    model_name: str | None = None
    music_model: str | None = None
    items: int = 2
    seconds: float = 4.0
    seed: int = 0
    systems: tuple[str, ...] = systems.DEFAULT
    tasks: tuple[str, ...] = tuple(ts.TASKS)
    out: str | None = None
    threads: int = 1
    recorded_split: str = "test"  # voices/, realnoise/, realmusic/ split: test (report) or val (checkpoint choice)


# ----------------------------------------------------------------------------- measuring one output


def lag_ms(ref: np.ndarray, est: np.ndarray, rate: int = ts.RATE, max_ms: float = MAX_LAG_MS) -> float | None:
    """Lag (ms, positive: ``est`` late; whole samples) of ``est`` against ``ref`` (float ``[n]``), within
    +-``max_ms``; None for a silent signal.

    The peak of a generalised cross-correlation with a partial phase transform (the cross spectrum
    divided by its magnitude to the power ``PHAT_BETA``): a plain cross-correlation of reverberant
    speech with its dry source peaked on clusters of reflections (7-40 ms late on the corpus's
    rooms), a full phase transform was thrown by empty bands (band-limited input); 0.8 found the
    direct path within a sample, and RNNoise's 960-sample delay, on every item of the first run.
    """
    if not np.any(est) or not np.any(ref):
        return None
    n = len(ref) + len(est)
    cross = np.fft.rfft(est, n) * np.conj(np.fft.rfft(ref, n))
    corr = np.fft.irfft(cross / (np.abs(cross) ** PHAT_BETA + 1e-20), n)
    k = int(round(max_ms * rate / 1000.0))
    window = np.concatenate([corr[-k:], corr[: k + 1]])  # lags -k .. k
    return 1000.0 * (int(np.argmax(np.abs(window))) - k) / rate


def read(path: str | Path) -> np.ndarray:
    return sf.read(str(path), dtype="float32")[0]


def score(ref: np.ndarray, given: np.ndarray, est: np.ndarray, speech: bool, noisy: bool = False) -> dict[str, float | None]:
    """The metrics of ``est`` against ``ref`` (PESQ and STOI None unless ``speech``; the noise left in the pauses,
    against ``given``'s noise, None unless ``speech`` in a ``noisy`` item), and two lags.

    ``lag_ms``, the system's own: against its input ``given``, which the test set aligns with the
    reference (direct-path aligned rooms, zero-phase filters). An enhancer's output is its input
    filtered, so the phase transform finds its delay exactly; against the clean reference
    (``lag_ref_ms``, kept in the JSON) reverberant and noisy inputs put spurious peaks at +-1 sample
    and, now and then, tens of ms (DFN3 and ours on reverberant items in the first run, where the
    same outputs against their input peaked at 0). All ``[n]``.
    """
    from rt_enhance.training.metrics import evaluate, pause_attenuation

    est = systems.fit(est, len(ref))
    m = evaluate(ref, est, ts.RATE, speech=speech)
    if speech and noisy:
        m["pause"] = pause_attenuation(ref, given, est, ts.RATE)
    out = {k: _finite(m.get(k)) for k in METRICS}
    out.update(lag_ms=lag_ms(given, est), lag_ref_ms=lag_ms(ref, est))
    return out


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def run_one(system: systems.System, item: ts.TestItem, out: Path) -> dict[str, Any]:
    """One output: run, time and score it; ``n/a`` when the system does not apply to the item."""
    base = {"task": item.task, "system": system.name, "item": item.name, "content": item.content}
    if "noise" in item.sources:
        base["noise"] = item.sources.get("noise_kind") or item.sources["noise"]
    reason = system.applies(item)
    if reason:
        return {**base, "status": f"n/a: {reason}"}
    path = systems.output_path(out, system.name, item)
    start = time.perf_counter()
    system.process(item.degraded, str(path), item)
    wall = time.perf_counter() - start
    ref = read(item.clean)
    result = score(ref, read(item.degraded), read(path), item.content == "speech", noisy="noise" in item.sources)
    logger.info("%s %s: lag %s ms, SI-SDR %s", item.name, system.name, result["lag_ms"], result["si_sdr"])
    return {**base, **result, "rtf": wall / (len(ref) / ts.RATE), "output": str(path.relative_to(out)), "status": "ok"}


# ----------------------------------------------------------------------------- the run


@contextlib.contextmanager
def _folder(out: str | None) -> Iterator[Path]:
    """``--out`` (kept), else a temporary folder removed at the end."""
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        yield Path(out)
        return
    with tempfile.TemporaryDirectory(prefix="rt-bench-quality-") as tmp:
        yield Path(tmp)


@dataclass(frozen=True)
class Skipped:
    """A system that cannot run here, and why (a row that says so)."""

    name: str
    reason: str


def open_systems(opts: QualityOptions) -> list[systems.System | Skipped]:
    """The systems in order; one that cannot run here is :class:`Skipped`."""
    out: list[systems.System | Skipped] = []
    for name in opts.systems:
        try:
            out.append(systems.make(name, model=opts.model, music_model=opts.music_model, threads=opts.threads))
        except systems.Unavailable as exc:
            logger.warning("%s: %s", name, exc)
            out.append(Skipped(name, str(exc)))
    return out


def run(opts: QualityOptions, progress=None) -> list[dict[str, Any]]:
    """Build the test set, run every system on every item; return the test set's records, one record
    per (task, system), then the targets."""
    ts.Corpus.open(opts.corpus)  # a wrong folder is the first thing said
    chosen = open_systems(opts)
    with _folder(opts.out) as out:
        items = ts.build(
            opts.corpus, out, tasks=opts.tasks, items=opts.items, seconds=opts.seconds, seed=opts.seed, recorded_split=opts.recorded_split
        )
        if not items:
            raise ts.TestSetError(f"{opts.corpus}: none of the tasks {', '.join(opts.tasks)} could be built")
        outputs = []
        for k, item in enumerate(items):
            if progress is not None:
                progress(k, len(items), item.name)
            outputs += [run_one(s, item, out) for s in chosen if isinstance(s, systems.System)]
    records = [summarise(task, s, outputs, items, opts) for task in _tasks(items) for s in chosen]
    latency = next((s.latency_ms for s in chosen if isinstance(s, systems.System) and s.name == "ours-engine"), None)
    return ts.describe(items) + records + targets(records, latency)


def _tasks(items: list[ts.TestItem]) -> list[str]:
    return list(dict.fromkeys(i.task for i in items))


def _label(name: str, opts: QualityOptions) -> str:
    from rt_enhance.benchmarks.models import describe

    if name in ("ours-engine", "ours-offline") and opts.model:
        return f"{name} ({opts.model_name or describe(opts.model)})"
    if name == "ours-music" and opts.music_model:
        return f"{name} ({describe(opts.music_model)})"
    return name


def summarise(
    task: str, system: systems.System | Skipped, outputs: list[dict], items: list[ts.TestItem], opts: QualityOptions
) -> dict[str, Any]:
    """The (task, system) record: mean metrics over the items that have them, every output's lag."""
    name = system.name
    base = {
        "section": "quality",
        "task": task,
        "system": name,
        "label": _label(name, opts),
        "description": ts.TASKS[task].description,
        "items": sum(i.task == task for i in items),
    }
    if isinstance(system, Skipped):
        return {**base, **dict.fromkeys(METRICS), "status": f"skipped: {system.reason}"}
    mine = [o for o in outputs if o["task"] == task and o["system"] == name]
    done = [o for o in mine if o["status"] == "ok"]
    if not done:
        return {**base, **dict.fromkeys(METRICS), "status": mine[0]["status"] if mine else "no items"}
    means = {k: _mean([o[k] for o in done]) for k in METRICS}
    lags = [o["lag_ms"] for o in done]
    worst = max((lag for lag in lags if lag is not None), key=abs, default=None)
    return {
        **base,
        **means,
        "speech_items": sum(o["content"] == "speech" for o in done),
        "lag_ms": worst,
        "lags_ms": lags,
        "rtf": _mean([o["rtf"] for o in done]),
        "note": system.note,
        "status": "ok",
        "per_item": done,
    }


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return float(np.mean(finite)) if finite else None


# ----------------------------------------------------------------------------- targets (issue 11)


def _get(records: list[dict], task: str, system: str, key: str) -> float | None:
    return next(
        (r.get(key) for r in records if r["section"] == "quality" and r["task"] == task and r["system"] == system and r["status"] == "ok"),
        None,
    )


def _target(target: str, task: str, ours: float | None, reference: str, met: bool | None) -> dict[str, Any]:
    return {
        "section": "targets",
        "target": target,
        "task": task,
        "ours": ours,
        "reference": reference,
        "met": met,
        "status": "ok" if met is not None else "not measured",
    }


def _beats(records: list[dict], task: str, key: str, others: tuple[str, ...], target: str) -> dict[str, Any]:
    ours = _get(records, task, "ours-engine", key)
    found = {s: _get(records, task, s, key) for s in others}
    theirs = {s: v for s, v in found.items() if v is not None}
    if ours is None or not theirs:
        return _target(target, task, ours, "-", None)
    best = max(theirs, key=theirs.__getitem__)
    return _target(target, task, ours, f"{best} {theirs[best]:.2f}", all(ours > v for v in theirs.values()))


def targets(records: list[dict], ours_latency_ms: float | None) -> list[dict[str, Any]]:
    """One record per target check; ``met`` is None where a figure is missing."""
    out = []
    for task in ("noise-0db", "noise-5db", "noise-10db"):
        for key, what in (("pesq", "PESQ-wb"), ("si_sdr", "SI-SDR")):
            out.append(
                _beats(
                    records,
                    task,
                    key,
                    ("degraded", "noisereduce", "rnnoise", "rnnoise-aligned"),
                    f"denoising: {what} above degraded, noisereduce, RNNoise",
                )
            )
        out.append(_dfn3_aim(records, task, ours_latency_ms))
    for task in ("real-noise-0db", "real-noise-5db", "real-noise-10db"):  # issue 16, on real voices
        for key, what in (("pesq", "PESQ-wb"), ("si_sdr", "SI-SDR")):
            out.append(_beats(records, task, key, REAL_PEERS, f"real voices: {what} above RNNoise, GTCRN, DTLN"))
        out.append(_dfn3_aim(records, task, ours_latency_ms, fraction=4))
    for task in ("clean-speech", "clean-bandlimited-speech", "real-clean-speech", "real-clean-bandlimited-speech"):
        ours, given = _get(records, task, "ours-engine", "pesq"), _get(records, task, "degraded", "pesq")
        met = None if ours is None or given is None else ours >= given - 0.1
        out.append(
            _target("do no harm: PESQ-wb at most 0.1 below the input's", task, ours, "-" if given is None else f"input {given:.2f}", met)
        )
    music = _get(records, "clean-music", "ours-music", "si_sdr")
    out.append(
        _target("do no harm: music model keeps SI-SDR >= 20 dB", "clean-music", music, "20 dB", None if music is None else music >= 20.0)
    )
    for task in ("reverb-0.3", "reverb-0.5", "reverb-0.8"):
        out.append(_beats(records, task, "si_sdr", ("degraded",), "dereverberation: SI-SDR above the input"))
    for task in ts.GROUPS["realrooms"]:  # issue 17, on real voices
        out += _dereverb(records, task)
    for task in ("bwe-2x", "bwe-4x"):
        for system in _music_systems(records, task):
            out += _bwe(records, task, system)
    for task in ts.GROUPS["realbwe"]:  # issue 17's speech targets, on real full-band voices
        out += _speech_bwe(records, task)
    out.append(_streaming(records))
    ran = {r["task"] for r in records if r["section"] == "quality"}
    out = [t for t in out if t["task"] in ran or t["task"].startswith(("worst", "all"))]
    return out + _real_music(records) if ran & set(ts.GROUPS["realmusic"]) else out


def _dereverb(records: list[dict], task: str) -> list[dict[str, Any]]:
    """Issue 17's dereverberation targets: SI-SDR at least 3 dB over the input's, PESQ-wb above it."""
    out = []
    for key, what, margin in (("si_sdr", "SI-SDR at least 3 dB over the input", 3.0), ("pesq", "PESQ-wb above the input", 0.0)):
        ours, given = _get(records, task, "ours-engine", key), _get(records, task, "degraded", key)
        met = None if ours is None or given is None else (ours >= given + margin if margin else ours > given)
        out.append(_target(f"dereverberation, real voices: {what}", task, ours, "-" if given is None else f"input {given:.2f}", met))
    return out


def _music_systems(records: list[dict], task: str) -> list[str]:
    """ours-engine, and ours-music where it ran on ``task``."""
    return ["ours-engine"] + (["ours-music"] if _get(records, task, "ours-music", "lsd") is not None else [])


def _real_music(records: list[dict]) -> list[dict[str, Any]]:
    """Issue 17's targets on real produced music, then one line: all met or not (None if one is missing)."""
    out = []
    for task in ("realmusic-bwe-2x", "realmusic-bwe-4x"):
        for system in _music_systems(records, task):
            out += _bwe(records, task, system, snr_margin=0.0, what="real music bandwidth")
    for system in _music_systems(records, "realmusic-clean"):
        out += _clean_music(records, "realmusic-clean", system)
    ran = {r["task"] for r in records if r["section"] == "quality"}
    out = [t for t in out if t["task"] in ran]
    met = [t["met"] for t in out]
    verdict = None if not met or None in met else all(met)
    return out + [
        _target(
            "issue 17 on real music: every target above met",
            "all realmusic",
            None,
            f"{sum(m is True for m in met)} of {len(met)} met",
            verdict,
        )
    ]


def _dfn3_aim(records: list[dict], task: str, latency: float | None, fraction: int = 2) -> dict[str, Any]:
    ours, dfn = _get(records, task, "ours-engine", "pesq"), _get(records, task, "dfn3", "pesq")
    met = None if ours is None or dfn is None or latency is None else ours >= dfn and latency <= DFN3_LATENCY_MS / fraction
    reference = "-" if dfn is None else f"dfn3 {dfn:.2f} at {DFN3_LATENCY_MS:.0f} ms; ours at {latency or 0:.1f} ms"
    share = "half" if fraction == 2 else f"1/{fraction} of"
    return _target(f"aim: DFN3's PESQ-wb at {share} its latency", task, ours, reference, met)


def _bwe(records: list[dict], task: str, system: str, *, snr_margin: float = 1.0, what: str = "bandwidth") -> list[dict[str, Any]]:
    lsd, spline_lsd = _get(records, task, system, "lsd"), _get(records, task, "spline", "lsd")
    snr, spline_snr = _get(records, task, system, "snr"), _get(records, task, "spline", "snr")
    named = "" if system == "ours-engine" else f" ({system})"
    margin = f" + {snr_margin:g} dB" if snr_margin else ""
    return [
        _target(
            f"{what}{named}: LSD at most 60 % of spline's",
            task,
            lsd,
            "-" if spline_lsd is None else f"spline {spline_lsd:.3f} (60 %: {0.6 * spline_lsd:.3f})",
            None if lsd is None or spline_lsd is None else lsd <= 0.6 * spline_lsd,
        ),
        _target(
            f"{what}{named}: SNR at least spline's{margin}",
            task,
            snr,
            "-" if spline_snr is None else f"spline {spline_snr:.2f} dB",
            None if snr is None or spline_snr is None else snr >= spline_snr + snr_margin,
        ),
    ]


def _speech_bwe(records: list[dict], task: str) -> list[dict[str, Any]]:
    """Issue 17's speech bandwidth extension: LSD at most 60 % of spline's, PESQ-wb not below spline's."""
    out = _bwe(records, task, "ours-engine", snr_margin=0.0, what="real voices bandwidth")[:1]
    ours, spline = _get(records, task, "ours-engine", "pesq"), _get(records, task, "spline", "pesq")
    met = None if ours is None or spline is None else ours >= spline
    reference = "-" if spline is None else f"spline {spline:.2f}"
    return out + [_target("real voices bandwidth: PESQ-wb not below spline's", task, ours, reference, met)]


def _clean_music(records: list[dict], task: str, system: str) -> list[dict[str, Any]]:
    """Full-band music through the model: LSD up by at most 0.05 over the input's, SI-SDR at least 30 dB."""
    lsd, given = _get(records, task, system, "lsd"), _get(records, task, "degraded", "lsd")
    si_sdr = _get(records, task, system, "si_sdr")
    named = "" if system == "ours-engine" else f" ({system})"
    change = None if lsd is None or given is None else lsd - given
    return [
        _target(
            f"real music, full band{named}: LSD change at most 0.05",
            task,
            change,
            "-" if given is None else f"input LSD {given:.3f}",
            None if change is None else change <= 0.05,
        ),
        _target(f"real music, full band{named}: SI-SDR at least 30 dB", task, si_sdr, "30 dB", None if si_sdr is None else si_sdr >= 30.0),
    ]


def _streaming(records: list[dict]) -> dict[str, Any]:
    tasks = list(dict.fromkeys(r["task"] for r in records if r["section"] == "quality"))
    losses: dict[str, tuple[float, float]] = {}  # task -> (offline SI-SDR, what the engine loses)
    for task in tasks:
        engine, offline = _get(records, task, "ours-engine", "si_sdr"), _get(records, task, "ours-offline", "si_sdr")
        if engine is not None and offline is not None:
            losses[task] = (offline, offline - engine)
    if not losses:
        return _target("streaming: engine loses at most 0.1 dB SI-SDR vs offline", "all", None, "-", None)
    worst = max(losses, key=lambda task: losses[task][1])
    offline, loss = losses[worst]
    return _target(
        "streaming: engine loses at most 0.1 dB SI-SDR vs offline",
        f"worst: {worst}",
        offline - loss,
        f"offline {offline:.3f} (engine loses {loss:.3f} dB)",
        loss <= 0.1,
    )


# ----------------------------------------------------------------------------- tables


def _lags(record: dict[str, Any]) -> str | None:
    lags = record.get("lags_ms")
    return None if not lags else ", ".join("-" if v is None else f"{v:.2f}" for v in lags)


# fmt: off
TASK_COLUMNS = (
    Column("label", "system"), Column("pesq", "PESQ-wb", "{:.2f}"), Column("stoi", "STOI", "{:.3f}"),
    Column("si_sdr", "SI-SDR dB", "{:.2f}"), Column("lsd", "LSD", "{:.3f}"), Column("snr", "SNR dB", "{:.2f}"),
    Column("pause", "noise in pauses dB", "{:.1f}"), Column("highs", "voice 2-8 kHz kept dB", "{:.1f}"),
    Column("lags", "lag ms vs input (each item)"),
)
TESTSET_COLUMNS = (Column("task", "task"), Column("items", "items"), Column("description", "degradation"),
                   Column("files", "clean sources (file@start)"), Column("rooms", "rooms"), Column("noises", "noises"))
TARGET_COLUMNS = (Column("target", "target"), Column("task", "task"), Column("ours", "ours", "{:.3f}"),
                  Column("reference", "against"), Column("met", "met"))
# fmt: on


def tables(records: list[dict[str, Any]]) -> str:
    """The test set, one table per task (systems as rows; a system that does not apply to the task,
    e.g. spline without a band limit, is left out), the targets, the systems and the alignment."""
    quality = [r for r in records if r["section"] == "quality"]
    parts = [render([r for r in records if r["section"] == "testset"], TESTSET_COLUMNS, "Test set")]
    for task in dict.fromkeys(r["task"] for r in quality):
        rows = [{**r, "lags": _lags(r)} for r in quality if r["task"] == task and not r["status"].startswith("n/a")]
        first = rows[0]
        speech = max((r.get("speech_items") or 0 for r in rows), default=0)
        title = f"{task}: {first['description']} ({first['items']} items, {speech} speech)"
        parts.append(render(rows, TASK_COLUMNS, title))
    by_noise = noise_table(quality)
    if by_noise:
        parts.append(by_noise)
    parts.append(
        render(
            [r for r in records if r["section"] == "targets"],
            TARGET_COLUMNS,
            "Targets (issues 11, 16, 17), ours = ours-engine unless named",
        )
    )
    notes = {r["label"]: r.get("note") for r in quality if r.get("note")}
    parts.append("Systems:\n" + "\n".join(f"- {k}: {v}" for k, v in notes.items()))
    parts.append("Time alignment (a lag is a defect): " + _alignment(quality))
    return "\n\n".join(parts)


def noise_table(quality: list[dict[str, Any]]) -> str | None:
    """PESQ-wb / SI-SDR / noise left in the pauses of each item of the noise tasks, one row per (task, noise),
    one column per system: where a model leaves a kind of noise in, beside the input and the peers. None
    without noisy items."""
    cells: dict[tuple[str, str, str], dict[str, str]] = {}
    labels: list[str] = []
    for r in quality:
        for item in r.get("per_item") or []:
            if "noise" not in item:
                continue
            if r["label"] not in labels:
                labels.append(r["label"])
            pesq = "-" if item.get("pesq") is None else f"{item['pesq']:.2f}"
            sdr = "-" if item.get("si_sdr") is None else f"{item['si_sdr']:.1f}"
            pause = "-" if item.get("pause") is None else f"{item['pause']:.0f}"
            cells.setdefault((item["task"], item["noise"], item["item"]), {})[r["label"]] = f"{pesq} / {sdr} / {pause}"
    if not cells:
        return None
    rows = [{"task": task, "noise": noise, **values} for (task, noise, _), values in cells.items()]
    columns = [Column("task", "task"), Column("noise", "noise"), *(Column(label, label) for label in labels)]
    return render(rows, columns, "By noise, each item: PESQ-wb / SI-SDR dB / noise left in the pauses dB")


def _alignment(quality: list[dict[str, Any]]) -> str:
    """Which systems' outputs lag their input by more than a sample, and by how much."""
    lags: dict[str, list[float | None]] = {}
    for r in quality:
        lags.setdefault(r["label"], []).extend(r.get("lags_ms") or [])
    one = 1000.0 / ts.RATE + 1e-9
    late = []
    for label, values in lags.items():
        off = [v for v in values if v is not None and abs(v) > one]
        if off:
            shown = ", ".join(f"{v:+.2f}" for v in sorted(set(off)))
            late.append(f"{label} lags {shown} ms on {len(off)} of {len(values)} outputs")
    jitter = sum(1 for values in lags.values() for v in values if v and abs(v) <= one)
    text = "; ".join(late) if late else "every output is aligned with its input (lag 0)"
    return text + (f" ({jitter} outputs peak 1 sample off, 0.02 ms: the estimator's resolution)" if jitter else "")
