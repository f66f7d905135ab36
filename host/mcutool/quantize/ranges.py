"""Activation ranges -> per-tensor int8 (scale, zero point), under TFLite's int8 op rules.

TFLite's int8 spec ties some quantizations together: pooling, PAD, RESHAPE, TRANSPOSE,
RESIZE_NEAREST_NEIGHBOR and CONCATENATION move values without rescaling, so their inputs
and output must share one (scale, zero point); SOFTMAX and LOGISTIC outputs are fixed at
(1/256, -128). Tied tensors form a group whose range is the union of its members' ranges.
"""
from __future__ import annotations

import numpy as np

from ..errors import McutoolError
from ..ir import Graph
from .calibrate import Stats

METHODS = ("minmax", "percentile", "mse")
QMIN, QMAX = -128, 127

# Ops whose int8 kernels copy or select values: input(s) and output share quantization.
SAME_QUANT = ("AVERAGE_POOL_2D", "MAX_POOL_2D", "PAD", "RESHAPE", "TRANSPOSE", "RESIZE_NEAREST_NEIGHBOR",
              "CONCATENATION")
# Ops whose int8 output quantization TFLite fixes.
FIXED_OUTPUT = {"SOFTMAX": (1.0 / 256, -128), "LOGISTIC": (1.0 / 256, -128)}


def quant_params(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 over [lo, hi], widened to hold 0 exactly (zero padding and ReLU's floor
    must be representable), with the zero point rounded onto the grid as TFLite's converter does."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8 * 255  # a constant-zero tensor still needs a valid scale
    scale = float(np.float32((hi - lo) / (QMAX - QMIN)))
    zp = int(np.clip(round(QMIN - lo / scale), QMIN, QMAX))
    return scale, zp


def _fake_quant_mse(x: np.ndarray, lo: float, hi: float) -> float:
    s, z = quant_params(lo, hi)
    q = np.clip(np.round(x / s) + z, QMIN, QMAX)
    return float(np.mean((x - s * (q - z)) ** 2))


def choose_range(st: Stats, method: str, percentile: float) -> tuple[float, float]:
    if method == "minmax" or st.lo >= st.hi:
        return st.lo, st.hi
    x = st.sample()
    if method == "percentile":
        lo = float(np.percentile(x, 100.0 - percentile)) if st.lo < 0 else st.lo
        hi = float(np.percentile(x, percentile)) if st.hi > 0 else st.hi
        return max(lo, st.lo), min(hi, st.hi)
    # MSE-optimal clipping: shrink the range toward 0 and keep the one with the least
    # quantization error over the sample (rounding noise against clipping error).
    best, best_err = (st.lo, st.hi), _fake_quant_mse(x, st.lo, st.hi)
    for a in np.linspace(0.2, 1.0, 41)[:-1]:
        err = _fake_quant_mse(x, a * min(st.lo, 0.0), a * max(st.hi, 0.0))
        if err < best_err:
            best, best_err = (a * min(st.lo, 0.0), a * max(st.hi, 0.0)), err
    return best


class _Groups:
    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, i: int) -> int:
        self.parent.setdefault(i, i)
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def float_operands(graph: Graph, op) -> list[int]:
    """Inputs of `op` that become int8 activations-like tensors (not weights, biases or shapes)."""
    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        return [op.inputs[0]]
    return [i for i in op.inputs if i >= 0 and graph.t(i).dtype == "float32"]


def activation_quant(graph: Graph, stats: dict[int, Stats], method: str = "minmax",
                     percentile: float = 99.99) -> dict[int, tuple[float, int]]:
    """tensor index -> (scale, zero point) for every float tensor that becomes int8,
    except weights and biases (see weights.py)."""
    if method not in METHODS:
        raise McutoolError(f"unknown calibration method '{method}'; choose one of {', '.join(METHODS)}")
    if method == "percentile" and not 50.0 < percentile <= 100.0:
        raise McutoolError(f"--percentile must be in (50, 100], got {percentile}")
    ranges: dict[int, tuple[float, float]] = {}
    fixed: dict[int, tuple[float, int]] = {}
    groups = _Groups()
    for i in graph.inputs:
        ranges[i] = choose_range(stats[i], method, percentile)
    for op in graph.ops:
        for i in float_operands(graph, op):
            t = graph.t(i)
            if t.is_const:  # a constant operand of ADD, MUL, CONCATENATION: its own range
                ranges[i] = (float(t.data.min()), float(t.data.max()))
        y = op.outputs[0]
        ranges[y] = choose_range(stats[y], method, percentile)
        if op.kind in FIXED_OUTPUT:
            fixed[y] = FIXED_OUTPUT[op.kind]
        if op.kind in SAME_QUANT:
            for i in float_operands(graph, op):
                groups.union(i, y)
    members: dict[int, list[int]] = {}
    for i in ranges:
        members.setdefault(groups.find(i), []).append(i)
    out: dict[int, tuple[float, int]] = {}
    for ms in members.values():
        pinned = {fixed[i] for i in ms if i in fixed}
        if len(pinned) > 1:
            raise McutoolError(f"tensors {ms} must share quantization but have different fixed ones {sorted(pinned)}")
        q = pinned.pop() if pinned else quant_params(min(ranges[i][0] for i in ms), max(ranges[i][1] for i in ms))
        for i in ms:
            out[i] = q
    _hard_swish_floor(graph, out)
    return out


def _hard_swish_floor(graph: Graph, q: dict[int, tuple[float, int]]) -> None:
    """TFLite's int8 HARD_SWISH refuses an output scale below input scale / 128."""
    for op in graph.ops:
        if op.kind == "HARD_SWISH":
            (si, _), (so, zo) = q[op.inputs[0]], q[op.outputs[0]]
            if so < si / 128:
                q[op.outputs[0]] = (float(np.float32(si / 128 * 1.0001)), zo)
