"""PAD, RESHAPE, TRANSPOSE, CONCATENATION: data movement, no arithmetic."""
from __future__ import annotations

import numpy as np

from ..errors import McutoolError
from ..ir import Graph, Op
from .common import per_tensor


def _const(graph: Graph, op: Op, pos: int, what: str) -> np.ndarray:
    if len(op.inputs) <= pos or op.inputs[pos] < 0 or not graph.t(op.inputs[pos]).is_const:
        raise McutoolError(f"op {op.index} ({op.kind}): {what} must be a constant tensor")
    return graph.t(op.inputs[pos]).data


def _same_quant(graph: Graph, op: Op, i: int) -> None:
    x, y = graph.t(i), graph.t(op.outputs[0])
    if x.dtype == "int8" and (per_tensor(graph, op, i) != per_tensor(graph, op, op.outputs[0])):
        raise McutoolError(f"op {op.index} ({op.kind}): input {x.name} and output {y.name} are quantized differently")


def prepare_pad(graph: Graph, op: Op) -> dict:
    pads = _const(graph, op, 1, "paddings").astype(np.int64)
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    if pads.shape != (len(x.shape), 2) or np.any(pads < 0):
        raise McutoolError(f"op {op.index} (PAD): paddings {pads.tolist()} do not fit input rank {len(x.shape)}")
    if tuple(int(s + a + b) for s, (a, b) in zip(x.shape, pads)) != y.shape:
        raise McutoolError(f"op {op.index} (PAD): {x.shape} padded by {pads.tolist()} is not {y.shape}")
    _same_quant(graph, op, op.inputs[0])
    value = per_tensor(graph, op, op.outputs[0])[1] if y.dtype == "int8" else 0
    return {"paddings": [tuple(int(v) for v in p) for p in pads], "value": value}


def eval_pad(op: Op, xs: list, out_shape) -> np.ndarray:
    return np.pad(xs[0], op.data["paddings"], constant_values=op.data["value"])


def prepare_reshape(graph: Graph, op: Op) -> dict:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    if x.size != y.size:
        raise McutoolError(f"op {op.index} (RESHAPE): {x.shape} has {x.size} values, {y.shape} has {y.size}")
    return {}


def eval_reshape(op: Op, xs: list, out_shape) -> np.ndarray:
    return xs[0].reshape(out_shape)


def prepare_transpose(graph: Graph, op: Op) -> dict:
    perm = [int(v) for v in _const(graph, op, 1, "perm")]
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    if sorted(perm) != list(range(len(x.shape))) or tuple(x.shape[p] for p in perm) != y.shape:
        raise McutoolError(f"op {op.index} (TRANSPOSE): perm {perm} does not map {x.shape} to {y.shape}")
    return {"perm": tuple(perm)}


def eval_transpose(op: Op, xs: list, out_shape) -> np.ndarray:
    return np.ascontiguousarray(xs[0].transpose(op.data["perm"]))


def prepare_concatenation(graph: Graph, op: Op) -> dict:
    y = graph.t(op.outputs[0])
    axis = op.params.axis % len(y.shape)
    if op.params.activation != "NONE":
        raise McutoolError(f"op {op.index} (CONCATENATION): fused {op.params.activation} is not supported")
    for i in op.inputs:
        _same_quant(graph, op, i)
    total = sum(graph.t(i).shape[axis] for i in op.inputs)
    if total != y.shape[axis]:
        raise McutoolError(f"op {op.index} (CONCATENATION): inputs give {total} along axis {axis}, output has {y.shape[axis]}")
    return {"axis": axis}


def eval_concatenation(op: Op, xs: list, out_shape) -> np.ndarray:
    return np.concatenate(xs, axis=op.data["axis"])
