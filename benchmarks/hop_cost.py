"""What one hop of a streaming network costs in onnxruntime, and how much of it is arithmetic.

    python -m rt_enhance.benchmarks.hop_cost --size spec-erb-monitor
    python -m rt_enhance.benchmarks.hop_cost --size spec-erb-monitor --vary 'channels=[4,4,4,4] gru_hidden=8' --vary 'gru_hidden=0'

Each variant (the named size, then the size with each ``--vary`` set of init arguments changed) is built
with random weights, exported as the engine's one-hop step graph, and run as the engine runs it: one
thread, the batch and hop dimensions fixed (so onnxruntime folds the shape arithmetic away), inputs bound
once. Printed per variant: multiply-adds per hop, the operators left after onnxruntime's optimisation,
and the best of ``--repeat`` means of ``--calls`` calls. A network with a tenth of the arithmetic that
costs nearly as much per hop says the hop is paid in operators, not in multiply-adds. A measurement,
printed; nothing asserts it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from rt_enhance.model.registry import parse_vary  # the --vary options' one parser


def hop_cost(kwargs: dict, family: str, hop: int, *, calls: int, repeat: int, seed: int = 0) -> tuple[int, int, float]:
    """(multiply-adds per hop, operators after optimisation, seconds per call) of one variant."""
    import onnx
    import onnxruntime as ort
    import torch

    from rt_enhance.export.streaming import export_step
    from rt_enhance.model.base import StreamingModel
    from rt_enhance.model.registry import build_model

    torch.manual_seed(seed)
    warnings.filterwarnings("ignore", category=UserWarning)  # the exporter's shape-inference notes
    model = build_model(family, kwargs).eval()
    if not isinstance(model, StreamingModel):
        raise ValueError(f"{family} is not a streaming model; name a streaming size (spec-erb, spec-erb-monitor, ...)")
    for p in model.parameters():  # random weights: a zero-initialised last layer would let nothing downstream matter
        torch.nn.init.normal_(p, std=0.05)
    proto = export_step(model).SerializeToString()
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_free_dimension_override_by_name("batch", 1)
    options.add_free_dimension_override_by_name("samples", hop)
    with tempfile.TemporaryDirectory() as tmp:
        optimised = Path(tmp) / "optimised.onnx"
        options.optimized_model_filepath = str(optimised)
        session = ort.InferenceSession(proto, options, providers=["CPUExecutionProvider"])
        operators = len(onnx.load(str(optimised)).graph.node)
    rng = np.random.default_rng(seed)
    binding = session.io_binding()
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        if i.name == session.get_inputs()[0].name:
            shape[-1] = hop
        binding.bind_cpu_input(i.name, (0.1 * rng.standard_normal(shape)).astype(np.float32))
    for o in session.get_outputs():
        binding.bind_output(o.name)
    for _ in range(calls // 2):
        session.run_with_iobinding(binding)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            session.run_with_iobinding(binding)
        best = min(best, (time.perf_counter() - start) / calls)
    return model.macs(hop), operators, best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rt_enhance.benchmarks.hop_cost", description=__doc__.splitlines()[0])
    p.add_argument("--size", default="spec-erb-monitor", help="a named streaming size (model/sizes.py)")
    p.add_argument("--vary", action="append", default=[], help="init arguments to change, NAME=VALUE ... (repeatable)")
    p.add_argument("--calls", type=int, default=500)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args(argv)
    from rt_enhance.model.base import StreamingModel
    from rt_enhance.model.registry import MODEL_CLASSES
    from rt_enhance.model.sizes import get_size

    try:
        size = get_size(args.size)
        variants: list[tuple[str, dict[str, object]]] = [("as named", {})] + [(text, parse_vary(text)) for text in args.vary]
        if not issubclass(MODEL_CLASSES[size.family], StreamingModel):
            raise ValueError(f"{args.size} is not a streaming size; name one such as spec-erb or spec-erb-monitor")
    except (KeyError, ValueError) as exc:
        print(f"hop_cost: {exc}", file=sys.stderr)
        return 2
    print(f"{args.size}: one {size.hop}-sample hop per call, one thread, best of {args.repeat} x {args.calls} calls")
    print("| variant | kMAC per hop | operators | us per hop |")
    print("|---|---|---|---|")
    for label, change in variants:
        macs, operators, seconds = hop_cost({**size.kwargs, **change}, size.family, size.hop, calls=args.calls, repeat=args.repeat)
        print(f"| {label} | {macs / 1e3:.0f} | {operators} | {seconds * 1e6:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
