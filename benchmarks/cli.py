"""``rt-bench``: how fast and how steady the engine is, measured on this machine.

    rt-bench latency    --model M [--provider cpu,cuda,tensorrt] [--threads 1,2] [--latency low] [--hop 240,480]
    rt-bench throughput --model M [--threads 1,2] [--batch 64,1] [--seconds 30]
    rt-bench loopback   --model M [--seconds 60] [--latency low] [--own-server]
    rt-bench stress     --model M [--seconds 20] [--load 2] [--stall-ms 500] [--own-server]
    rt-bench peers      [--model M] [--seconds 10] [--threads 1]
    rt-bench quality    --corpus DIR [--model M] [--items 2] [--seconds 4] [--systems ...] [--tasks ...] [--out DIR]
    rt-bench gpu        --out DIR [--models speech,...,init:base] [--providers torch-cuda,...,cpu] [--budget 150]

Each prints Markdown tables (paste them into benchmarks/RESULTS.md) and, with ``--json PATH``,
writes one record per configuration. A user mistake prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from rt_enhance.benchmarks import records as rec
from rt_enhance.benchmarks.torch_twin import PROVIDERS as TWINS
from rt_enhance.realtime import geometry as geo
from rt_enhance.realtime.errors import RtEnhanceError, UsageError, report
from rt_enhance.realtime.processor import PROVIDERS

TWIN_PROVIDERS = tuple(TWINS)

logger = logging.getLogger("rt_enhance.benchmarks")

EXIT_USAGE = 2


def _list(text: str | None, kind=str) -> tuple:
    if text is None:
        return ()
    try:
        return tuple(kind(v.strip()) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise UsageError(f"expected a comma-separated list of {kind.__name__}, got {text!r}") from None


def _common(p: argparse.ArgumentParser, *, model_required: bool = True, channels: bool = True) -> None:
    p.add_argument("--model", required=model_required, help="passthrough | bundled name | PATH.onnx (as rt-enhance takes it)")
    p.add_argument("--json", help="write the records to this JSON file")
    if channels:
        p.add_argument("--channels", type=int, default=1, help="audio channels (default 1)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _geometry_flags(p: argparse.ArgumentParser, *, lists: bool) -> None:
    many = " (comma-separated list)" if lists else ""
    p.add_argument("--latency", help=f"preset: {', '.join(geo.PRESETS)}{many} (default: low)")
    p.add_argument("--hop", help=f"hop in samples or ms{many}")
    p.add_argument("--lookahead", help="lookahead in samples or ms")
    p.add_argument("--crossfade", help="crossfade in samples or ms")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rt-bench", description="Benchmarks of the rt-enhance engine (tables + JSON).")
    sub = p.add_subparsers(dest="command", required=True, metavar="{latency,throughput,loopback,stress,peers,quality,gpu}")
    _add_latency(sub)
    _add_throughput(sub)
    _add_live(sub, "loopback", "live rt-enhance on JACK, measured through a loopback client")
    _add_live(sub, "stress", "live rt-enhance on JACK with every core loaded and a stall")
    _add_peers(sub)
    _add_quality(sub)
    _add_gpu(sub)
    return p


def _add_latency(sub) -> None:
    lat = sub.add_parser("latency", help="per-hop engine step vs the hop budget (p50..max, RTF, headroom)")
    _common(lat)
    _geometry_flags(lat, lists=True)
    lat.add_argument(
        "--provider",
        default="cpu",
        help=f"comma-separated: {', '.join(PROVIDERS)}, or a torch twin "
        f"(stand-in for onnxruntime's GPU providers): {', '.join(TWIN_PROVIDERS)} (default cpu)",
    )
    lat.add_argument("--threads", default="1", help="onnxruntime threads, comma-separated (default 1)")
    lat.add_argument("--window", help="model window(s) in samples, for models with a dynamic window")
    lat.add_argument("--hops", type=int, default=2000, help="measured hops per configuration (default 2000)")
    lat.add_argument("--warmup", type=int, default=200, help="hops run before measuring (default 200)")
    lat.add_argument("--sections", default="engine,kernels,torch", help="engine,kernels,torch (default all)")
    lat.add_argument("--plot", help="draw the per-hop distributions with the budget line to this PNG")


def _add_throughput(sub) -> None:
    thr = sub.add_parser("throughput", help="file mode speed, x real time, per thread count and batch")
    _common(thr)
    _geometry_flags(thr, lists=False)
    thr.add_argument("--threads", default="1,2", help="comma-separated (default 1,2)")
    thr.add_argument("--batch", default="64,1", help="hops per model call, comma-separated (default 64,1)")
    thr.add_argument("--seconds", type=float, default=30.0, help="length of the generated clip (default 30)")
    thr.add_argument("--input", help="use this audio file instead of a generated clip")


def _add_live(sub, name: str, text: str) -> None:
    live = sub.add_parser(name, help=text)
    _common(live)
    _geometry_flags(live, lists=False)
    live.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    live.add_argument("--seconds", type=float, default=60.0 if name == "loopback" else 20.0, help="measured seconds")
    live.add_argument(
        "--raw", action="store_true", help="run the model as it is (its output may hide the clicks) instead of the cost-equal probe"
    )
    live.add_argument(
        "--own-server", action="store_true", help="measure on a private JACK dummy server (-r 48000 -p PERIOD), away from other clients"
    )
    live.add_argument(
        "--period", type=int, default=256, help="frames per cycle of the --own-server server (default 256; 128 or 64 for --latency monitor)"
    )
    if name == "stress":
        live.add_argument("--load", type=int, help="competing busy processes (default: one per core)")
        live.add_argument("--stall-ms", type=float, default=500.0, help="SIGSTOP/SIGCONT stall of rt-enhance (default 500)")
        live.add_argument("--stall-at", type=float, help="seconds into the measurement (default: the middle)")


def _add_peers(sub) -> None:
    peers = sub.add_parser("peers", help="the same clip through RNNoise, DeepFilterNet3, GTCRN, DTLN and ours")
    _common(peers, model_required=False, channels=False)
    _geometry_flags(peers, lists=False)
    peers.add_argument("--threads", type=int, default=1, help="threads for every tool (default 1)")
    peers.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    peers.add_argument(
        "--only",
        help="comma-separated subset: ours,floor,rnnoise,deepfilternet3,gtcrn,dtln (floor: "
        "ours' path with an empty graph of the same inputs and outputs)",
    )
    peers.add_argument("--repeat", type=int, default=3, help="runs per tool; the fastest counts (default 3)")


def _add_quality(sub) -> None:
    from rt_enhance.benchmarks.systems import ALL, DEFAULT
    from rt_enhance.benchmarks.testset import TASKS

    q = sub.add_parser("quality", help="every system on a held-out test set: PESQ-wb, STOI, SI-SDR, LSD, SNR, noise in pauses, per task")
    q.add_argument("--corpus", required=True, help="corpus folder (rt-data build); its */test splits are used")
    q.add_argument("--model", help="ours: passthrough | bundled name | PATH.onnx (default: the bundled speech model)")
    q.add_argument("--model-name", help="name of ours in the tables (default: the file's stem)")
    q.add_argument("--music-model", help="model for ours-music on the music tasks (default: the bundled music model)")
    q.add_argument("--items", type=int, default=2, help="items per task (default 2)")
    q.add_argument("--seconds", type=float, default=4.0, help="seconds per item (default 4)")
    q.add_argument("--seed", type=int, default=0, help="test set seed (default 0)")
    q.add_argument(
        "--systems", help=f"comma-separated subset of {','.join(ALL)} (default: {','.join(DEFAULT)}, plus ours-music with a music model)"
    )
    q.add_argument(
        "--tasks",
        help=f"comma-separated subset of {','.join(TASKS)}, or 'real' for the tasks on "
        "real recorded voices, 'realrooms' for those voices in the test rooms (dereverberation), 'realbwe' for the "
        "full-band ones low-passed (bandwidth extension), 'realmusic' for those on real produced music (default: all)",
    )
    q.add_argument(
        "--split",
        choices=("test", "val", "train"),
        default="test",
        help="split of the recorded voices, noises and real music: test (report), val (choose checkpoints) or train "
        "(a diagnostic: how well a model fits the speakers and noises it learnt from) (default test)",
    )
    q.add_argument("--out", help="keep the test items and every output WAV in this folder (default: a temporary one)")
    q.add_argument("--threads", type=int, default=1, help="threads for every system (default 1)")
    q.add_argument("--json", help="write the records to this JSON file")
    q.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _add_gpu(sub) -> None:
    from rt_enhance.benchmarks import gpu_suite as suite

    g = sub.add_parser(
        "gpu",
        help="the shipped models and base on the GPU (torch twins) and the CPU: per-hop time vs the budget, to OUT/gpu-bench.json and .md",
    )
    g.add_argument("--out", required=True, help="folder for gpu-bench.json and gpu-bench.md")
    g.add_argument(
        "--models",
        default=",".join(suite.MODELS),
        help=f"comma-separated; init:SIZE is an untrained export (default {','.join(suite.MODELS)})",
    )
    g.add_argument("--providers", default=",".join(suite.PROVIDERS), help=f"default {','.join(suite.PROVIDERS)}")
    g.add_argument("--latency", default=",".join(suite.PRESETS), help=f"presets (default {','.join(suite.PRESETS)})")
    g.add_argument("--channels", dest="channel_list", default=",".join(map(str, suite.CHANNELS)), help="channel counts (default 1,2,8)")
    g.add_argument("--seconds-per-config", type=float, default=1.0, help="measuring time per configuration (default 1)")
    g.add_argument("--max-hops", type=int, default=2000, help="most hops per configuration (default 2000)")
    g.add_argument(
        "--budget",
        type=float,
        default=150.0,
        help="seconds after which no configuration starts; the rest are recorded as skipped (default 150)",
    )
    g.add_argument("--json", help="JSON path (default OUT/gpu-bench.json)")
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging")


# ----------------------------------------------------------------------------- subcommands


def _latency(args) -> tuple[list[dict[str, Any]], str]:
    from rt_enhance.benchmarks import latency

    specs = _geometry_specs(args)
    windows = _list(args.window, int) or (None,)
    sections = _list(args.sections)
    unknown = set(sections) - set(latency.SECTIONS)
    if unknown:
        raise UsageError(f"--sections: unknown {', '.join(sorted(unknown))}; choose from {', '.join(latency.SECTIONS)}")
    providers = _list(args.provider)
    known = (*PROVIDERS, *TWIN_PROVIDERS)
    for provider in providers:
        if provider not in known:
            raise UsageError(f"--provider: unknown {provider!r}; choose from {', '.join(known)}")
    opts = latency.LatencyOptions(
        model=args.model,
        providers=providers,
        threads=_threads(args.threads),
        geometries=specs,
        windows=windows,
        channels=args.channels,
        hops=_positive(args.hops, "--hops"),
        warmup=max(0, args.warmup),
        sections=sections,
    )
    result = latency.run(opts, progress=lambda c: logger.info("measuring %s", c))
    if args.plot:
        from rt_enhance.benchmarks.plot import PlotUnavailable, plot_distribution

        if not result.series:
            raise UsageError("--plot: no engine configuration ran, so there is nothing to draw")
        try:
            plot_distribution(args.plot, result.series, f"rt-bench latency: {args.model}")
        except PlotUnavailable as exc:
            raise UsageError(str(exc)) from None
    return result.records, latency.tables(result.records)


def _geometry_specs(args) -> tuple:
    from rt_enhance.benchmarks.latency import GeometrySpec

    hops = _list(args.hop) or (None,)
    presets = _list(args.latency) or ((None,) if args.hop else ("low",))
    return tuple(GeometrySpec(p, h, args.lookahead, args.crossfade) for p in presets for h in hops)


def _threads(text: str) -> tuple[int, ...]:
    threads = _list(text, int)
    if not threads or min(threads) < 1:
        raise UsageError(f"--threads must be positive integers, got {text!r}")
    return threads


def _positive(value, flag: str):
    if value is None or value <= 0:
        raise UsageError(f"{flag} must be positive, got {value}")
    return value


def _throughput(args) -> tuple[list[dict[str, Any]], str]:
    from rt_enhance.benchmarks import throughput

    opts = throughput.ThroughputOptions(
        model=args.model,
        threads=_threads(args.threads),
        batches=_list(args.batch, int) or (64,),
        seconds=_positive(args.seconds, "--seconds"),
        input=args.input,
        channels=args.channels,
        preset=args.latency,
        hop=args.hop,
        lookahead=args.lookahead,
        crossfade=args.crossfade,
    )
    if min(opts.batches) < 1:
        raise UsageError(f"--batch must be positive, got {args.batch}")
    records = throughput.run(opts)
    return records, throughput.tables(records)


def _live(args, stress: bool) -> tuple[list[dict[str, Any]], str]:
    from rt_enhance.benchmarks import loopback

    opts = loopback.LiveOptions(
        model=args.model,
        threads=_positive(args.threads, "--threads"),
        seconds=_positive(args.seconds, "--seconds"),
        channels=args.channels,
        preset=args.latency or ("low" if not args.hop else None),
        hop=args.hop,
        lookahead=args.lookahead,
        crossfade=args.crossfade,
        probe=not args.raw,
        own_server=args.own_server,
        period=_positive(args.period, "--period"),
    )
    if not stress:
        records = loopback.run(opts)
        return records, loopback.tables(records)
    from rt_enhance.benchmarks import stress as stress_mod

    sopts = stress_mod.StressOptions(live=opts, load=args.load, stall_ms=max(0.0, args.stall_ms), stall_at=args.stall_at)
    records = stress_mod.run(sopts)
    return records, stress_mod.tables(records)


def _peers(args) -> tuple[list[dict[str, Any]], str]:
    from rt_enhance.benchmarks import peers

    opts = peers.PeersOptions(
        model=args.model,
        threads=_positive(args.threads, "--threads"),
        seconds=_positive(args.seconds, "--seconds"),
        only=_list(args.only) or peers.TOOLS,
        preset=args.latency,
        hop=args.hop,
        lookahead=args.lookahead,
        crossfade=args.crossfade,
        repeat=_positive(args.repeat, "--repeat"),
    )
    unknown = set(opts.only) - set(peers.TOOLS)
    if unknown:
        raise UsageError(f"--only: unknown {', '.join(sorted(unknown))}; choose from {', '.join(peers.TOOLS)}")
    records = peers.run(opts)
    return records, peers.tables(records)


def _quality(args) -> tuple[list[dict[str, Any]], str]:
    from rt_enhance.benchmarks import quality, systems, testset
    from rt_enhance.realtime.processor import bundled_model_path

    try:
        import rt_enhance.training.degrade  # noqa: F401 - the test set is made with the training pipeline
        import rt_enhance.training.metrics  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"rt-bench quality needs the train extra ({exc.name} is missing): pip install '.[train]'") from None

    model = args.model or ("speech" if bundled_model_path("speech") else None)
    music = args.music_model or ("music" if bundled_model_path("music") else None)
    names = _list(args.systems) or (systems.DEFAULT + (("ours-music",) if music else ()))
    tasks = testset.GROUPS.get(args.tasks or "") or _list(args.tasks) or tuple(testset.TASKS)
    for flag, given, known in (("--systems", names, systems.ALL), ("--tasks", tasks, tuple(testset.TASKS))):
        unknown = [v for v in given if v not in known]
        if unknown:
            raise UsageError(f"{flag}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    if model is None and {"ours-engine", "ours-offline"} & set(names):
        raise UsageError("no speech model is bundled: give --model PATH.onnx (or 'passthrough'), or leave ours out of --systems")
    opts = quality.QualityOptions(
        corpus=args.corpus,
        model=model,
        model_name=args.model_name,
        music_model=music,
        items=_positive(args.items, "--items"),
        seconds=_positive(args.seconds, "--seconds"),
        seed=args.seed,
        systems=names,
        tasks=tasks,
        out=args.out,
        threads=_positive(args.threads, "--threads"),
        recorded_split=args.split,
    )
    try:
        records = quality.run(opts, progress=lambda k, n, name: logger.info("item %d/%d: %s", k + 1, n, name))
    except testset.TestSetError as exc:
        raise UsageError(str(exc)) from None
    return records, quality.tables(records)


def _gpu(args) -> tuple[list[dict[str, Any]], str]:
    import os

    from rt_enhance.benchmarks import gpu_suite as suite

    known = (*PROVIDERS, *TWIN_PROVIDERS)
    providers = _list(args.providers)
    unknown = [p for p in providers if p not in known]
    if unknown:
        raise UsageError(f"--providers: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    presets = _list(args.latency)
    bad = [p for p in presets if p not in geo.PRESETS]
    if bad:
        raise UsageError(f"--latency: unknown {', '.join(bad)}; choose from {', '.join(geo.PRESETS)}")
    channels = _list(args.channel_list, int)
    if not channels or min(channels) < 1:
        raise UsageError(f"--channels must be positive integers, got {args.channel_list!r}")
    opts = suite.SuiteOptions(
        out=args.out,
        models=_list(args.models),
        providers=providers,
        presets=presets,
        channels=channels,
        seconds_per_config=_positive(args.seconds_per_config, "--seconds-per-config"),
        max_hops=_positive(args.max_hops, "--max-hops"),
        budget=_positive(args.budget, "--budget"),
    )
    os.makedirs(args.out, exist_ok=True)
    try:
        records = suite.run(opts, progress=lambda text: logger.info("measuring %s", text))
    except suite.SuiteError as exc:
        raise UsageError(str(exc)) from None
    extra = suite.machine_extra()
    records = [{**r, **extra} for r in records]
    text = suite.tables(records)
    header = f"# rt-bench gpu\n\nGPU: {extra.get('gpu') or 'none visible to torch'}; torch {extra.get('torch')}\n\n"
    with open(os.path.join(args.out, "gpu-bench.md"), "w", encoding="utf-8") as f:
        f.write(header + text + "\n")
    args.json = args.json or os.path.join(args.out, "gpu-bench.json")
    return records, text


def run(args: argparse.Namespace, argv: list[str]) -> int:
    if getattr(args, "channels", 1) < 1:
        raise UsageError(f"--channels must be at least 1, got {args.channels}")
    handlers = {
        "latency": _latency,
        "throughput": _throughput,
        "peers": _peers,
        "quality": _quality,
        "loopback": lambda a: _live(a, False),
        "stress": lambda a: _live(a, True),
        "gpu": _gpu,
    }
    records, text = handlers[args.command](args)
    print(text)
    machine = rec.machine_info()
    print(
        f"\nmachine: {machine['cpu']}, {machine['cores']} cores, onnxruntime {machine['onnxruntime']}, "
        f"load average {machine['load_avg_1m']:.2f}"
    )
    if args.json:
        rec.write_json(args.json, args.command, records, argv)
    return _inner_failures(args.command, records)


def _inner_failures(command: str, records: list[dict[str, Any]]) -> int:
    """A run whose rt-enhance ended with a non-zero exit (e.g. 3: the server dropped it) fails
    the benchmark: its figures cover only the part before it ended."""
    failed = [r for r in records if r.get("exit_code") not in (None, 0)]
    for r in failed:
        print(
            f"rt-bench: {command} failed: rt-enhance exited {r['exit_code']} ({r.get('stop_reason') or 'no reason'}); "
            "the figures above cover the run only up to then",
            file=sys.stderr,
        )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = rec.command_line(argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="rt-bench: %(message)s")
    from rt_enhance.benchmarks.loopback import LiveRunError

    try:
        return run(args, argv)
    except LiveRunError as exc:  # the run itself failed, not the user
        return report("rt-bench", exc, 1, label=f"{args.command} failed")
    except RtEnhanceError as exc:
        return report("rt-bench", exc, EXIT_USAGE)
    except KeyboardInterrupt:
        print("rt-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
