"""GPU processors: onnxruntime's CUDA (with CUDA graphs) and TensorRT providers, with I/O binding.

Inputs and outputs live on the device in fixed buffers bound once (``io_binding``), so a hop
costs one host-to-device copy of the windows, the compute, and one device-to-host copy of the
result, each timed on its own. CUDA graphs need fixed addresses and shapes, which is exactly
what the live engine gives: one hop of ``channels`` windows per call.

``onnxruntime-gpu`` lists CUDA and TensorRT in ``get_available_providers()`` even without a
GPU, then silently falls back to the CPU; the session's own ``get_providers()`` is the truth,
and anything else raises :class:`GpuUnavailable` with one line that says why.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from rt_enhance.realtime.errors import RtEnhanceError, first_line
from rt_enhance.realtime.metadata import ModelInfo, parse_props

logger = logging.getLogger(__name__)

ORT_NAMES = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


class GpuUnavailable(RtEnhanceError, RuntimeError):
    """The requested GPU provider cannot run here; the message is one line for the table."""


def _provider_list(provider: str, cuda_graph: bool) -> list:
    cuda_opts = {"device_id": "0", "enable_cuda_graph": "1" if cuda_graph else "0"}
    if provider == "cuda":
        return [("CUDAExecutionProvider", cuda_opts), "CPUExecutionProvider"]
    trt_opts = {"device_id": "0", "trt_fp16_enable": "False", "trt_cuda_graph_enable": "True" if cuda_graph else "False"}
    return [("TensorrtExecutionProvider", trt_opts), ("CUDAExecutionProvider", {"device_id": "0"}), "CPUExecutionProvider"]


def gpu_session(path: str, provider: str, *, threads: int = 1, cuda_graph: bool = True):
    """An onnxruntime session really running on ``provider`` (``cuda`` or ``tensorrt``)."""
    import onnxruntime as ort

    wanted = ORT_NAMES[provider]
    if wanted not in ort.get_available_providers():
        raise GpuUnavailable(f"{provider} provider not available in this onnxruntime ({', '.join(ort.get_available_providers())})")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(path, sess_options=options, providers=_provider_list(provider, cuda_graph))
    except Exception as exc:  # onnxruntime raises several private types
        raise GpuUnavailable(f"{provider} session failed: {first_line(exc, 160)}") from None
    if session.get_providers()[0] != wanted:
        raise GpuUnavailable(f"{provider} provider not available (session runs on {session.get_providers()[0]})")
    return session


class GpuProcessor:
    """A windowed model on the GPU, with device-resident input/output bound once per batch size.

    Implements the engine's ``Processor`` protocol (``run([n, window]) -> [n, window]``) and
    records, per call, the host-to-device, compute and device-to-host times in nanoseconds.
    """

    native_rate = True
    is_identity = False

    def __init__(self, path: str, provider: str, *, threads: int = 1, cuda_graph: bool = True) -> None:
        try:
            self.session = gpu_session(path, provider, threads=threads, cuda_graph=cuda_graph)
        except GpuUnavailable as exc:
            if not cuda_graph or "session failed" not in str(exc):
                raise
            # CUDA graphs need every node on the GPU; a model with CPU-only nodes runs without them.
            logger.warning("%s; retrying without CUDA graphs", exc)
            self.session = gpu_session(path, provider, threads=threads, cuda_graph=False)
            cuda_graph = False
        self.path, self.provider = path, provider
        self.cuda_graph = cuda_graph
        self.info: ModelInfo = parse_props(self.session.get_modelmeta().custom_metadata_map, source=path)
        if self.info.kind != "windowed":
            raise GpuUnavailable("the GPU path binds windowed models only; run this streaming model on the cpu")
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self._input, self._output, self._rank = inp.name, out.name, len(inp.shape)
        self._bound: dict[int, tuple] = {}
        self.copy_ns: list[int] = []
        self.compute_ns: list[int] = []

    def _binding(self, n: int):
        """Device buffers for batch ``n``: bound once, reused every call (CUDA graphs need that)."""
        if n not in self._bound:
            import onnxruntime as ort

            if self.cuda_graph and self._bound:
                raise GpuUnavailable("CUDA graphs need one fixed batch size; this run changed it")
            shape = (n, 1, self.info.window) if self._rank == 3 else (n, self.info.window)
            x = ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, np.float32), "cuda", 0)
            y = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, "cuda", 0)
            binding = self.session.io_binding()
            binding.bind_ortvalue_input(self._input, x)
            binding.bind_ortvalue_output(self._output, y)
            self._bound[n] = (binding, x, y, shape)
        return self._bound[n]

    def run(self, windows: np.ndarray) -> np.ndarray:
        """float32 ``[n, window]`` -> float32 ``[n, window]`` through the device buffers."""
        n, window = windows.shape
        binding, x, y, shape = self._binding(n)
        t0 = time.perf_counter_ns()
        x.update_inplace(np.ascontiguousarray(windows.reshape(shape), np.float32))
        t1 = time.perf_counter_ns()
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        t2 = time.perf_counter_ns()
        out = y.numpy().reshape(n, window)
        t3 = time.perf_counter_ns()
        self.copy_ns.append((t1 - t0) + (t3 - t2))
        self.compute_ns.append(t2 - t1)
        return out
