"""Helpers shared by the reference kernels' prepare steps."""
from __future__ import annotations

import numpy as np

from ..errors import McutoolError
from ..ir import Graph, Op, Quant
from ..quant.multipliers import tflite_round

QMIN, QMAX = -128, 127


def quantize_scalar(scale: float, zero_point: int, f: float) -> int:
    """kernel_util.cc Quantize(): the division happens in float32."""
    return zero_point + int(tflite_round(float(np.float32(f) / np.float32(scale))))


def activation_range(activation: str, q: Quant | None, qmin: int = QMIN, qmax: int = QMAX) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for an int8 output."""
    if activation == "NONE":
        return qmin, qmax
    s, zp = q.s, q.zp
    if activation == "RELU":
        return max(qmin, quantize_scalar(s, zp, 0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize_scalar(s, zp, 0.0)), min(qmax, quantize_scalar(s, zp, 6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize_scalar(s, zp, -1.0)), min(qmax, quantize_scalar(s, zp, 1.0))
    raise McutoolError(f"unknown activation {activation}")


def require_quant(graph: Graph, op: Op, *tensor_ids: int) -> None:
    for i in tensor_ids:
        t = graph.t(i)
        if t.quant is None:
            raise McutoolError(f"op {op.index} ({op.kind}): tensor {i} ({t.name}) has no quantization parameters")


def per_tensor(graph: Graph, op: Op, i: int) -> tuple[float, int]:
    t = graph.t(i)
    if t.quant is None:
        raise McutoolError(f"op {op.index} ({op.kind}): tensor {i} ({t.name}) has no quantization parameters")
    return t.quant.s, t.quant.zp


def trunc_div(a, b):
    """C++ integer division (toward zero) for b > 0."""
    a = np.asarray(a, dtype=np.int64)
    q = np.abs(a) // b
    return np.where(a < 0, -q, q)


def requantize_acc(acc, d: dict):
    """The conv/FC epilogue: per-channel rescale, output offset, activation clamp, int8."""
    from ..quant.fixedpoint import multiply_by_quantized_multiplier, single_rounding_multiply, wrap_int32

    if d.get("rounding", "double") == "single":
        out = single_rounding_multiply(wrap_int32(acc), d["multiplier"], d["shift"]).astype(np.int64)
    else:
        out = multiply_by_quantized_multiplier(wrap_int32(acc), d["multiplier"], d["shift"]).astype(np.int64)
    return np.clip(out + d["output_offset"], d["act_min"], d["act_max"]).astype(np.int8)
