"""File mode on two cores: a recurrent step graph cut at its recurrence and run as a two-stage pipeline.

In a streaming model with one recurrent operator (the spectral model's GRU), the work of each frame
before the recurrence (analysis, encoder) and after it (decoder, synthesis) does not depend on the
other frames; only the recurrence, and the overlap-add tail, run frame after frame. So a long call
splits into parts, and the graph into two stages:

* stage A: every node that does not depend on the recurrence's output (the recurrence included),
  with the states those nodes update;
* stage B: the rest, fed by the tensors A hands over (the recurrence's output, the skip connections,
  the spectrum) and by the states only B updates (the overlap-add tail).

Part ``i + 1``'s stage A runs on the calling thread while part ``i``'s stage B runs on a worker thread,
each on a one-thread session: the same operators on the same values as one call per part, so the
output equals that of the whole graph to float rounding (in practice to the bit), at about
``max(A, B)`` per part instead of ``A + B``. The cut is made on the graph onnxruntime has already
optimised for the part's shape (shape arithmetic folded into constants), so only audio-rate tensors
cross it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from rt_enhance.realtime import onnx_proto

logger = logging.getLogger(__name__)

RECURRENT_OPS = ("GRU", "LSTM", "RNN")
PARTS = 16  # parts per file-mode call: the pipeline fills and drains once per call, so many parts keep both cores busy
PART_SECONDS = 0.5  # model calls alone, `speech`: 16 x 0.5 s 137x real time here, 4 x 1 s 114x, 8 x 0.5 s 129x
MIN_PART_SECONDS = 0.25  # shorter parts gain little over one call (and live hops never come near)


@dataclass
class Stages:
    """The two stages' sessions and how the step's inputs and outputs map onto them."""

    a: Any  # onnxruntime sessions
    b: Any
    a_states: list[int]  # indices (in the step's state order) of the states stage A reads and updates
    b_states: list[int]  # ... and those of stage B (stage A outputs its states, then what it hands to B)


def recurrences(model: bytes) -> int:
    """How many recurrent operators the ONNX graph ``model`` holds."""
    return sum(node.op_type in RECURRENT_OPS for node in onnx_proto.load(model).graph.node)


def split(model: bytes, open_session: Callable[[bytes], Any]) -> Stages | None:
    """Cut ``model`` (an optimised stateful step: inputs ``audio, states...``, outputs ``enhanced, next
    states...``) at its one recurrence and open each stage with ``open_session(model_bytes)``; None where
    the graph has no recurrence or several, or where a stage would be empty."""
    full = onnx_proto.load(model)
    graph = full.graph
    recurrent = [node for node in graph.node if node.op_type in RECURRENT_OPS]
    if len(recurrent) != 1:
        return None
    inputs, outputs = [v.name for v in graph.input], [v.name for v in graph.output]
    states = list(zip(inputs[1:], outputs[1:]))
    # B: the descendants of the recurrence's output and of the states only B updates (a fixed point:
    # a state belongs to B when B writes it)
    b_states: list[int] = []
    while True:
        reached, b_nodes = {recurrent[0].output[0], *(states[k][0] for k in b_states)}, []
        for node in graph.node:  # topological order
            if any(name in reached for name in node.input):
                b_nodes.append(node)
                reached.update(node.output)
        written = {name for node in b_nodes for name in node.output}
        found = [k for k, (_, out) in enumerate(states) if out in written]
        if found == b_states:
            break
        b_states = found
    in_b = {id(node) for node in b_nodes}
    a_nodes = [node for node in graph.node if id(node) not in in_b]
    a_states = [k for k in range(len(states)) if k not in b_states]
    if not a_nodes or outputs[0] not in written or any(states[k][1] in written for k in a_states):
        return None
    constants = {t.name for t in graph.initializer}
    b_reads = {states[k][0] for k in b_states}
    handed: list[str] = []
    for node in b_nodes:
        for name in node.input:
            if name and name not in written and name not in constants and name not in b_reads and name not in handed:
                handed.append(name)
    a_writes = {states[k][1] for k in a_states}
    if inputs[0] in handed or a_writes & set(handed):  # B reads the audio or a state itself: not a cut made here
        return None
    declared = {v.name: v for v in [*graph.input, *graph.output]}
    a_outputs = [declared[states[k][1]] for k in a_states] + [onnx_proto.value_info(name) for name in handed]
    a = open_session(_stage(full, a_nodes, [declared[inputs[0]], *(declared[states[k][0]] for k in a_states)], a_outputs))
    types = {v.name: v.type for v in a.get_outputs()}  # onnxruntime inferred the handed tensors' types
    b_inputs = [onnx_proto.value_info(name, types[name]) for name in handed] + [declared[states[k][0]] for k in b_states]
    b = open_session(_stage(full, b_nodes, b_inputs, [declared[outputs[0]], *(declared[states[k][1]] for k in b_states)]))
    return Stages(a, b, a_states, b_states)


def _stage(full: Any, nodes: list, inputs: list, outputs: list) -> bytes:
    """``full`` (a ``Model`` message) with only ``nodes``, the constants they read, and these inputs and outputs."""
    model = type(full)()
    model.CopyFrom(full)
    graph = model.graph
    used = {name for node in nodes for name in node.input}
    kept = [t for t in full.graph.initializer if t.name in used]
    for field, values in (("node", nodes), ("initializer", kept), ("input", inputs), ("output", outputs), ("value_info", [])):
        del getattr(graph, field)[:]
        getattr(graph, field).extend(values)
    return model.SerializeToString()


def optimised(open_session: Callable[..., object], path: str) -> bytes:
    """The graph of ``path`` as onnxruntime optimises it (``open_session(path, optimised_to=FILE)`` must
    open a session with the shape already fixed and write that graph to FILE)."""
    with tempfile.TemporaryDirectory(prefix="rt-enhance-") as tmp:
        target = os.path.join(tmp, "optimised.onnx")
        open_session(path, optimised_to=target)
        with open(target, "rb") as f:
            return f.read()


class PipelinedStep:
    """Calls of ``[batch, 1, k * part]`` (any whole number ``k`` of parts) run part by part through the two
    stages of :func:`split` (cut for parts of ``part`` samples), stage B of one part beside stage A of the
    next."""

    def __init__(self, stages: Stages, part: int) -> None:
        self.stages, self.part = stages, part
        self.a_in = [v.name for v in stages.a.get_inputs()]
        self.b_in = [v.name for v in stages.b.get_inputs()]
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rt-enhance-stage-b")

    def run(self, x: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """float32 ``[batch, k * part]`` and the current states -> (``[batch, k * part]``, the new states), as
        one call of the whole graph would give them."""
        st = self.stages
        a_state = [states[k] for k in st.a_states]
        b_state = [states[k] for k in st.b_states]
        outputs: list[np.ndarray] = []
        pending: Future | None = None
        for part in np.split(np.asarray(x, np.float32)[:, None, :], x.shape[1] // self.part, axis=2):
            out = st.a.run(None, dict(zip(self.a_in, [np.ascontiguousarray(part), *a_state])))
            a_state, handed = out[: len(st.a_states)], out[len(st.a_states) :]
            if pending is not None:
                b_state = pending.result()
            pending = self.worker.submit(self._stage_b, handed, b_state, outputs)
        assert pending is not None
        b_state = pending.result()
        new: list[np.ndarray] = [np.empty(0)] * (len(st.a_states) + len(st.b_states))
        for k, value in zip(st.a_states, a_state):
            new[k] = value
        for k, value in zip(st.b_states, b_state):
            new[k] = value
        return np.concatenate(outputs, axis=2)[:, 0, :], new

    def _stage_b(self, handed: list[np.ndarray], b_state: list[np.ndarray], outputs: list[np.ndarray]) -> list[np.ndarray]:
        out = self.stages.b.run(None, dict(zip(self.b_in, [*handed, *b_state])))
        outputs.append(out[0])
        return out[1:]
