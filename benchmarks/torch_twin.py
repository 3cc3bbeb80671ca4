"""The torch twin of an exported model: the same network in PyTorch, on CUDA (with or without I/O binding
and CUDA graphs) or on the CPU, behind the engine's processor interface.

Why a twin: onnxruntime's CUDA provider comes in ``onnxruntime-gpu``, which cannot travel to the lent
GPU machine (255 MB against 64 MiB a command, and it wants CUDA 12 libraries next to torch's CUDA 13;
docs/gpu.md). The twin is rebuilt from the ONNX file's own metadata: ``family`` and ``model_args``
build the network, and the checkpoint in training/checkpoints/ whose SHA-256 is the file's
``checkpoint_sha256`` gives the trained weights (without one, seeded initial weights: the same
compute, labelled ``untrained`` in the records). Every twin is checked against onnxruntime on the
CPU (``twin_max_abs_diff``), so its figures are those of the same network, run by torch instead of
onnxruntime: a stand-in for the CUDA execution provider, never called that.

Providers (``--provider``):

- ``torch-cuda``: device buffers bound once (pinned host buffers, fixed device tensors) and the
  model step captured as a CUDA graph per batch shape, replayed each hop;
- ``torch-cuda-eager``: the same bound buffers, the model launched op by op;
- ``torch-cuda-unbound``: fresh tensors every hop (``.to("cuda")`` / ``.cpu()``), op by op;
- ``torch-cpu``: the twin on the CPU (torch eager, one thread unless ``threads``).

Per call the processor records host-to-device plus device-to-host copy time and compute time in
nanoseconds (``copy_ns``, ``compute_ns``), each phase synchronised, as benchmarks/gpu.py does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from rt_enhance.realtime.errors import RtEnhanceError, first_line
from rt_enhance.realtime.metadata import ModelError, ModelInfo, parse_props

logger = logging.getLogger(__name__)

PROVIDERS = {  # name -> (device, io binding, CUDA graph)
    "torch-cuda": ("cuda", True, True),
    "torch-cuda-eager": ("cuda", True, False),
    "torch-cuda-unbound": ("cuda", False, False),
    "torch-cpu": ("cpu", False, False),
}
PARITY_LIMIT = 1e-2
CHECKPOINTS = Path(__file__).resolve().parent.parent / "training" / "checkpoints"


class TwinUnavailable(RtEnhanceError, RuntimeError):
    """The twin cannot run here (no torch, no CUDA, no family in the metadata); one line for the table."""


def read_info(path: str) -> ModelInfo:
    """The engine's view of an ONNX file's metadata (read with ``onnx``, no session)."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    return parse_props({p.key: p.value for p in model.metadata_props}, source=path)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_checkpoint(digest: str | None, folder: Path = CHECKPOINTS) -> Path | None:
    """The checkpoint in ``folder`` whose SHA-256 is ``digest``, if any."""
    if not digest or not folder.is_dir():
        return None
    return next((p for p in sorted(folder.glob("*.pt")) if sha256(p) == digest), None)


def build_twin(info: ModelInfo) -> tuple[Any, str]:
    """The torch network of ``info`` (eval mode) and where its weights came from."""
    try:
        import torch

        from rt_enhance.model.checkpoint import load_checkpoint
        from rt_enhance.model.registry import build_model
    except ImportError as exc:
        raise TwinUnavailable(f"torch twin not available: {exc.name} is not installed") from None
    extra = info.extra
    checkpoint = find_checkpoint(extra.get("checkpoint_sha256"))
    if checkpoint is not None:
        return load_checkpoint(checkpoint)[0].eval(), f"trained ({checkpoint.name})"
    if "family" not in extra or "model_args" not in extra:
        raise TwinUnavailable("torch twin not available: the metadata names no family/model_args")
    torch.manual_seed(0)
    try:
        return build_model(extra["family"], json.loads(extra["model_args"])).eval(), "untrained (seeded weights)"
    except Exception as exc:  # an unknown family or the arguments of another version
        raise TwinUnavailable(f"torch twin not available: cannot build {extra['family']} ({str(exc)[:120]})") from None


class TwinProcessor:
    """A twin behind the engine's ``Processor`` protocol: ``run([n, window])`` for windowed models,
    ``reset(batch)`` / ``step([batch, n])`` for streaming ones (state kept on the device)."""

    native_rate = True
    is_identity = False

    def __init__(self, path: str, provider: str, *, threads: int = 1) -> None:
        import torch

        from rt_enhance.model.base import StreamingModel

        if provider not in PROVIDERS:
            raise TwinUnavailable(f"unknown twin provider {provider!r}")
        device, self.io_binding, self.cuda_graph = PROVIDERS[provider]
        if device == "cuda" and not torch.cuda.is_available():
            raise TwinUnavailable(f"{provider} provider not available: no CUDA device visible to torch")
        if device == "cpu":
            torch.set_num_threads(threads)
        self.path, self.provider, self.device = path, provider, torch.device(device)
        self.info = read_info(path)
        net, self.weights = build_twin(self.info)
        self.net = net.to(self.device)
        self.stateful = isinstance(self.net, StreamingModel)
        self.copy_ns: list[int] = []
        self.compute_ns: list[int] = []
        self._graphs: dict[tuple[int, ...], Any] = {}
        self._states: list[Any] = []
        self._batch = 0
        #: Largest difference from onnxruntime, set by :func:`open_twin`.
        self.max_abs_diff: float | None = None

    # ------------------------------------------------------------------ engine protocol

    def reset(self, batch: int) -> None:
        """Zero state for ``batch`` streams (streaming models)."""
        import torch

        zeros = self.net.initial_state(batch, device=self.device)
        if self._batch == batch and self._states:
            with torch.no_grad():
                for state, zero in zip(self._states, zeros):
                    state.copy_(zero)  # in place: captured graphs keep reading these tensors
        else:
            self._states, self._batch = zeros, batch

    def step(self, x: np.ndarray) -> np.ndarray:
        """float32 ``[batch, n]`` -> ``[batch, n]``, state carried on the device."""
        if x.shape[0] != self._batch:
            self.reset(x.shape[0])
        return self._call(x)

    def run(self, windows: np.ndarray) -> np.ndarray:
        """float32 ``[n, window]`` -> ``[n, window]``."""
        return self._call(windows)

    # ------------------------------------------------------------------ one call

    def _forward(self, x):
        """``x`` ``[b, 1, n]`` on the device -> output ``[b, 1, n]``; streaming state updated in place."""
        if not self.stateful:
            return self.net(x)
        y, new = self.net.step(x, self._states)
        for state, value in zip(self._states, new):
            state.copy_(value)
        return y

    def _call(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            if self.io_binding:
                return self._bound_call(x)
            t0 = time.perf_counter_ns()
            xd = torch.from_numpy(np.ascontiguousarray(x[:, None, :], np.float32)).to(self.device)
            self._sync()
            t1 = time.perf_counter_ns()
            y = self._forward(xd)
            self._sync()
            t2 = time.perf_counter_ns()
            out = y.reshape(x.shape).cpu().numpy()
            t3 = time.perf_counter_ns()
        self.copy_ns.append((t1 - t0) + (t3 - t2))
        self.compute_ns.append(t2 - t1)
        return out

    def _bound_call(self, x: np.ndarray) -> np.ndarray:
        buffers = self._buffers(x.shape)
        host_in, dev_in, host_out = buffers["host_in"], buffers["dev_in"], buffers["host_out"]
        t0 = time.perf_counter_ns()
        host_in.numpy()[:] = x[:, None, :]
        dev_in.copy_(host_in, non_blocking=True)
        self._sync()
        t1 = time.perf_counter_ns()
        if self.cuda_graph:
            buffers["graph"].replay()
            dev_out = buffers["dev_out"]
        else:
            dev_out = self._forward(dev_in)
        self._sync()
        t2 = time.perf_counter_ns()
        host_out.copy_(dev_out, non_blocking=True)
        self._sync()
        t3 = time.perf_counter_ns()
        self.copy_ns.append((t1 - t0) + (t3 - t2))
        self.compute_ns.append(t2 - t1)
        return host_out.numpy().reshape(x.shape).copy()

    def _buffers(self, shape: tuple[int, int]) -> dict[str, Any]:
        """Pinned host and fixed device buffers for one batch shape (and its CUDA graph), made once."""
        import torch

        key = (*shape, self._batch)
        if key not in self._graphs:
            full = (shape[0], 1, shape[1])
            pinned = self.device.type == "cuda"
            buffers = {
                "host_in": torch.zeros(full, pin_memory=pinned),
                "host_out": torch.zeros(full, pin_memory=pinned),
                "dev_in": torch.zeros(full, device=self.device),
            }
            if self.cuda_graph:
                buffers.update(self._capture(buffers["dev_in"]))
            self._graphs[key] = buffers
        return self._graphs[key]

    def _capture(self, dev_in) -> dict[str, Any]:
        """A CUDA graph of one forward call on ``dev_in`` (warmed up on a side stream first); the state is
        put back to where it was before the warm-up."""
        import torch

        saved = [s.clone() for s in self._states]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                self._forward(dev_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                dev_out = self._forward(dev_in)
        except RuntimeError as exc:
            raise TwinUnavailable(f"CUDA graph capture failed: {first_line(exc, 160)}") from None
        for state, value in zip(self._states, saved):
            state.copy_(value)
        return {"graph": graph, "dev_out": dev_out}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)

    # ------------------------------------------------------------------ checks and labels

    def parity(self, onnx_processor, *, seed: int = 0) -> float:
        """Largest absolute difference from onnxruntime (``onnx_processor``) on the same noise: three hops
        of a streaming model from zero state, or one window; both start fresh and end fresh."""
        rng = np.random.default_rng(seed)
        if not self.stateful:
            x = (0.1 * rng.standard_normal((1, self.info.window))).astype(np.float32)
            diff = float(np.max(np.abs(self.run(x) - onnx_processor.run(x))))
            self.copy_ns.clear()
            self.compute_ns.clear()
            return diff
        hop = self.info.total_stride * max(1, self.info.hop // self.info.total_stride)
        self.reset(1)
        onnx_processor.reset(1)
        diff = 0.0
        for _ in range(3):
            x = (0.1 * rng.standard_normal((1, hop))).astype(np.float32)
            diff = max(diff, float(np.max(np.abs(self.step(x) - onnx_processor.step(x)))))
        self.reset(1)
        onnx_processor.reset(1)
        self.copy_ns.clear()
        self.compute_ns.clear()
        return diff

    def labels(self) -> dict[str, Any]:
        """What the records say about this twin."""
        return {
            "runtime": "torch twin",
            "weights": self.weights,
            "io_binding": self.io_binding,
            "cuda_graph": self.cuda_graph,
            "device_name": device_name(self.device),
            "twin_max_abs_diff": self.max_abs_diff,
        }


def device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def open_twin(path: str, provider: str, *, threads: int = 1) -> TwinProcessor:
    """A twin checked against onnxruntime on the CPU; ModelError when they disagree by more than
    ``PARITY_LIMIT`` (another network, not rounding: TF32 convolutions on a GPU differ by about 1e-4)."""
    from rt_enhance.realtime.processor import open_onnx

    twin = TwinProcessor(path, provider, threads=threads)
    reference = open_onnx(path, threads=1, provider="cpu")
    twin.max_abs_diff = diff = twin.parity(reference)
    if not diff <= PARITY_LIMIT:
        raise ModelError(f"{path}: the torch twin differs from onnxruntime by {diff:.2g}")
    return twin
