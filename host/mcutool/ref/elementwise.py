"""ADD and MUL, int8 with numpy broadcasting (reference_integer_ops::Add / Mul)."""
from __future__ import annotations

import numpy as np

from ..errors import McutoolError
from ..ir import Graph, Op
from ..quant.fixedpoint import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_smaller_than_one_exp,
    wrap_int32,
)
from ..quant.multipliers import quantize_multiplier, quantize_multiplier_smaller_than_one_exp
from .common import activation_range, per_tensor

ADD_LEFT_SHIFT = 20  # int8 ADD's headroom bits (15 for int16)


def _check(graph: Graph, op: Op) -> None:
    dts = [graph.t(i).dtype for i in op.inputs[:2]] + [graph.t(op.outputs[0]).dtype]
    if dts != ["int8"] * 3:
        raise McutoolError(f"op {op.index} ({op.kind}): types {dts}; mcutool runs int8 models")
    a, b = graph.t(op.inputs[0]).shape, graph.t(op.inputs[1]).shape
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        raise McutoolError(f"op {op.index} ({op.kind}): shapes {a} and {b} do not broadcast") from None


def prepare_add(graph: Graph, op: Op) -> dict:
    _check(graph, op)
    s1, z1 = per_tensor(graph, op, op.inputs[0])
    s2, z2 = per_tensor(graph, op, op.inputs[1])
    so, zo = per_tensor(graph, op, op.outputs[0])
    twice_max = 2 * float(max(np.float32(s1), np.float32(s2)))
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(float(s2) / twice_max)
    mo, sho = quantize_multiplier_smaller_than_one_exp(twice_max / ((1 << ADD_LEFT_SHIFT) * float(so)))
    lo, hi = activation_range(op.params.activation, graph.t(op.outputs[0]).quant)
    return {
        "input1_offset": -z1, "input2_offset": -z2, "output_offset": zo, "left_shift": ADD_LEFT_SHIFT,
        "input1_multiplier": m1, "input1_shift": sh1, "input2_multiplier": m2, "input2_shift": sh2,
        "output_multiplier": mo, "output_shift": sho, "act_min": lo, "act_max": hi,
    }


def eval_add(op: Op, xs: list, out_shape) -> np.ndarray:
    d = op.data
    a = wrap_int32((xs[0].astype(np.int64) + d["input1_offset"]) << d["left_shift"])
    b = wrap_int32((xs[1].astype(np.int64) + d["input2_offset"]) << d["left_shift"])
    sa = multiply_by_quantized_multiplier_smaller_than_one_exp(a, d["input1_multiplier"], d["input1_shift"])
    sb = multiply_by_quantized_multiplier_smaller_than_one_exp(b, d["input2_multiplier"], d["input2_shift"])
    raw = wrap_int32(sa.astype(np.int64) + sb)
    out = multiply_by_quantized_multiplier_smaller_than_one_exp(raw, d["output_multiplier"], d["output_shift"])
    out = out.astype(np.int64) + d["output_offset"]
    return np.clip(out, d["act_min"], d["act_max"]).astype(np.int8).reshape(out_shape)


def prepare_mul(graph: Graph, op: Op) -> dict:
    _check(graph, op)
    s1, z1 = per_tensor(graph, op, op.inputs[0])
    s2, z2 = per_tensor(graph, op, op.inputs[1])
    so, zo = per_tensor(graph, op, op.outputs[0])
    m, sh = quantize_multiplier(float(s1) * float(s2) / float(so))
    lo, hi = activation_range(op.params.activation, graph.t(op.outputs[0]).quant)
    return {"input1_offset": -z1, "input2_offset": -z2, "output_offset": zo,
            "output_multiplier": m, "output_shift": sh, "act_min": lo, "act_max": hi}


def eval_mul(op: Op, xs: list, out_shape) -> np.ndarray:
    d = op.data
    prod = (xs[0].astype(np.int64) + d["input1_offset"]) * (xs[1].astype(np.int64) + d["input2_offset"])
    out = multiply_by_quantized_multiplier(wrap_int32(prod), d["output_multiplier"], d["output_shift"])
    out = out.astype(np.int64) + d["output_offset"]
    return np.clip(out, d["act_min"], d["act_max"]).astype(np.int8).reshape(out_shape)
