"""QUANTIZE (float32 -> int8, or int8 -> int8 rescale) and DEQUANTIZE (int8 -> float32).

Float handling copies reference_ops::AffineQuantize and Dequantize: quantize divides in
float32 and rounds half away from zero; dequantize multiplies in double, then narrows.
"""
from __future__ import annotations

import numpy as np

from ..errors import McutoolError
from ..ir import Graph, Op
from ..quant.fixedpoint import multiply_by_quantized_multiplier
from ..quant.multipliers import quantize_multiplier
from .common import per_tensor


def prepare_quantize(graph: Graph, op: Op) -> dict:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    if y.dtype != "int8" or x.dtype not in ("float32", "int8"):
        raise McutoolError(f"op {op.index} (QUANTIZE): {x.dtype} -> {y.dtype} is not supported (float32/int8 -> int8)")
    so, zo = per_tensor(graph, op, op.outputs[0])
    # One record shape for both modes (the flash image stores a fixed layout); unused fields are 0.
    d = {"mode": "float", "scale": float(np.float32(so)), "zero_point": zo,
         "input_zero_point": 0, "multiplier": 0, "shift": 0}
    if x.dtype == "int8":
        si, zi = per_tensor(graph, op, op.inputs[0])
        m, s = quantize_multiplier(float(si) / float(so))
        d.update(mode="requant", input_zero_point=zi, multiplier=m, shift=s)
    return d


def affine_quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    q = x.astype(np.float32) / np.float32(scale)  # float32 division, as in C++
    q64 = q.astype(np.float64)  # exact; the +0.5 below is then exact too
    r = np.where(q64 < 0, -np.floor(-q64 + 0.5), np.floor(q64 + 0.5))
    r = np.clip(r, -(2.0**31), 2.0**31 - 1)  # C++ casts to int32 before clamping
    return np.clip(r.astype(np.int64) + zero_point, -128, 127).astype(np.int8)


def eval_quantize(op: Op, xs: list, out_shape) -> np.ndarray:
    d = op.data
    if d["mode"] == "float":
        return affine_quantize(xs[0], d["scale"], d["zero_point"])
    v = multiply_by_quantized_multiplier(xs[0].astype(np.int64) - d["input_zero_point"], d["multiplier"], d["shift"])
    return np.clip(v.astype(np.int64) + d["zero_point"], -128, 127).astype(np.int8)


def prepare_dequantize(graph: Graph, op: Op) -> dict:
    x, y = graph.t(op.inputs[0]), graph.t(op.outputs[0])
    if x.dtype != "int8" or y.dtype != "float32":
        raise McutoolError(f"op {op.index} (DEQUANTIZE): {x.dtype} -> {y.dtype} is not supported (int8 -> float32)")
    s, z = per_tensor(graph, op, op.inputs[0])
    return {"scale": float(np.float32(s)), "zero_point": z}


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (np.float64(scale) * (q.astype(np.int64) - zero_point)).astype(np.float32)


def eval_dequantize(op: Op, xs: list, out_shape) -> np.ndarray:
    return dequantize(xs[0], op.data["scale"], op.data["zero_point"])
