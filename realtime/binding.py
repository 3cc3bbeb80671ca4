"""A stateful model's hot call, bound once: one shape, preallocated buffers, no per-call allocation.

The live worker calls a streaming model with the same shape every hop (``[channels, 1, hop]``)
and file mode with the same block shape every block. For such a shape :class:`BoundStep` holds

* an onnxruntime session whose dynamic dimensions are fixed to that shape (free dimension
  overrides), so onnxruntime folds the graph's shape arithmetic into constants at load;
* the input, the output and two sets of state buffers, bound to the session once (I/O binding):
  a call copies the new samples in, runs, and copies the result out; the states ping-pong
  between the two sets, the outputs of one call being the inputs of the next, with no copy.

``rt-bench peers`` measures what is left against the floor: an empty graph with the same inputs
and outputs, called the same way.
"""

from __future__ import annotations

import logging

import numpy as np

from rt_enhance.realtime.metadata import StateSpec

logger = logging.getLogger(__name__)


def dim_overrides(session, spec: StateSpec, batch: int, n: int) -> dict[str, int]:
    """Values for the named dynamic dimensions of a stateful graph called with ``[batch, 1, n]``.

    Read from the graph itself (the contract fixes which axes are dynamic, not their names):
    the audio input's first and last axes, and each state's batch axis. Empty if two uses of one
    name would need different values (the session then stays dynamic).
    """
    inputs = session.get_inputs()
    wanted = [(inputs[0].shape[0], batch), (inputs[0].shape[-1], n)]
    for node, shape in zip(inputs[1:], spec.shapes):
        wanted.append((node.shape[shape.index(-1)], batch))
    names: dict[str, int] = {}
    for name, value in wanted:
        if isinstance(name, str) and name:
            if names.setdefault(name, value) != value:
                return {}
    return names


class BoundStep:
    """Calls of ``[batch, 1, n]`` on a session with every input and output bound to a buffer.

    ``session`` must accept that shape (a session specialised to it, or the dynamic one).
    """

    def __init__(self, session, spec: StateSpec, batch: int, n: int) -> None:
        self.session, self.shape = session, (batch, n)
        self.x = np.zeros((batch, 1, n), np.float32)
        self.y = np.zeros((batch, 1, n), np.float32)
        self.sets = (spec.zeros(batch), spec.zeros(batch))
        self.current = 0  # index of the set that holds the state the next call reads
        names_in = [i.name for i in session.get_inputs()]
        names_out = [o.name for o in session.get_outputs()]
        self.bindings = [self._bind(names_in, names_out, self.sets[k], self.sets[1 - k]) for k in (0, 1)]

    def _bind(self, names_in: list[str], names_out: list[str], read: list[np.ndarray], write: list[np.ndarray]):
        import onnxruntime as ort

        binding = self.session.io_binding()
        for name, array in zip(names_in, [self.x, *read]):
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array))
        for name, array in zip(names_out, [self.y, *write]):
            binding.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(array))
        return binding

    def run(self, x: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """float32 ``[batch, n]`` and the current states -> (a new ``[batch, n]`` array, the new states).

        The returned states are this object's buffers: pass them back unchanged on the next call
        (no copy); any other list is copied in first.
        """
        read = self.sets[self.current]
        if states is not read:
            for buffer, value in zip(read, states):
                np.copyto(buffer, value)
        np.copyto(self.x[:, 0, :], x)
        self.session.run_with_iobinding(self.bindings[self.current])
        self.current ^= 1
        return self.y[:, 0, :].copy(), self.sets[self.current]
