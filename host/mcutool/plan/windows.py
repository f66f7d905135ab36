"""Which input rows (or columns) an op reads to produce a window of its output.

A window analysis backwards through conv, depthwise, pooling and elementwise ops, with
stride, dilation and TFLite's asymmetric padding (explicit per side after lowering).
"""
from __future__ import annotations

from ..ir import Graph, Op

SPATIAL = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D")
POINTWISE = ("ADD", "MUL", "LOGISTIC", "HARD_SWISH", "QUANTIZE")


def streamable(graph: Graph, op: Op) -> str | None:
    """None if the op can run on windows of rows and columns; else why not."""
    y = graph.t(op.outputs[0])
    if len(y.shape) != 4 or y.shape[0] != 1 or y.dtype != "int8":
        return "output is not a 1xHxWxC int8 map"
    acts = graph.activation_inputs(op)
    if op.kind in SPATIAL:
        return None if acts and len(acts[0].shape) == 4 else "input is not 4-D"
    if op.kind in POINTWISE:
        if op.kind == "QUANTIZE" and op.data.get("mode") != "requant":
            return "float QUANTIZE"
        if any(t.shape != y.shape for t in acts):
            return "broadcasting"
        for t in op.inputs:  # run whole instead, where the engine reads a constant in place
            if t >= 0 and graph.t(t).is_const:
                return f"input tensor {t} is a constant (a window reads each input from its buffer)"
        return None
    return f"{op.kind} has no row-local form"


def geometry(graph: Graph, op: Op, axis: int) -> tuple[int, int, int]:
    """(stride, effective kernel, padding before) along axis 0 (rows) or 1 (columns)."""
    if op.kind not in SPATIAL:
        return 1, 1, 0
    d = op.data
    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        k = graph.t(op.inputs[1]).shape[1 + axis]
        keff = (k - 1) * d["dilation"][axis] + 1
    else:
        keff = d["filter"][axis]
    pad_before = d["pad"][0] if axis == 0 else d["pad"][1]
    return d["stride"][axis], keff, pad_before


def in_range(graph: Graph, op: Op, axis: int, a: int, b: int, size: int) -> tuple[int, int]:
    """Input rows (axis 0) or columns (axis 1) [lo, hi) that output [a, b) reads, clipped to [0, size)."""
    if b <= a:
        return 0, 0
    s, keff, p = geometry(graph, op, axis)
    return max(0, a * s - p), min(size, (b - 1) * s - p + keff)


def window_macs(graph: Graph, op: Op, rows: int, cols: int) -> int:
    if op.kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        return 0
    w = graph.t(op.inputs[1])
    y = graph.t(op.outputs[0])
    if op.kind == "FULLY_CONNECTED":
        return y.size * w.shape[1]
    per_pixel = y.shape[3] * w.shape[1] * w.shape[2] * (w.shape[3] if op.kind == "CONV_2D" else 1)
    return rows * cols * per_pixel
