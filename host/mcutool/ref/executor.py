"""The numpy reference executor: runs a prepared graph op by op, bit-exact with TFLite."""
from __future__ import annotations

import numpy as np

from ..errors import McutoolError
from ..ir import Graph
from .kernels import evaluate


def run(graph: Graph, inputs: list[np.ndarray], keep: bool = False) -> list[np.ndarray] | dict[int, np.ndarray]:
    """Outputs of the graph for `inputs` (one array per graph input, in order).

    With keep=True, returns every tensor's value (for debugging and layer-wise comparison).
    """
    if len(inputs) != len(graph.inputs):
        raise McutoolError(f"the model takes {len(graph.inputs)} input(s), got {len(inputs)}")
    values: dict[int, np.ndarray] = {}
    for idx, x in zip(graph.inputs, inputs):
        t = graph.t(idx)
        x = np.asarray(x)
        if x.dtype != np.dtype(t.dtype) or x.size != t.size:
            raise McutoolError(f"input {t.name} must be {t.dtype} {t.shape}, got {x.dtype} {x.shape}")
        values[idx] = x.reshape(t.shape)
    for op in graph.ops:
        out = graph.t(op.outputs[0])
        y = evaluate(graph, op, values.__getitem__)
        assert y.shape == out.shape and y.dtype == np.dtype(out.dtype), (op.index, op.kind, y.shape, y.dtype)
        values[op.outputs[0]] = y
    if keep:
        return values
    return [values[i] for i in graph.outputs]
