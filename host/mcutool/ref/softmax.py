"""SOFTMAX, int8 in / int8 (or int16) out, bit-exact with TFLM's reference kernel.

Prepare mirrors tensorflow/lite/micro/kernels/softmax_common.cc CalculateSoftmaxParams
(int8 input branch): PreprocessSoftmaxScaling(beta, input_scale, kScaledDiffIntegerBits=5)
-> input_multiplier, input_left_shift, and diff_min = -CalculateInputRadius(5, shift).
Eval mirrors reference_ops::Softmax<int8_t, OutputT> (reference/softmax.h): per row,
exp of (x - max) in Q5.26 via gemmlowp exp_on_negative_values, sum in Q12.19,
GetReciprocal, then RoundingDivideByPOT and an offset to the output type's minimum.
"""
from __future__ import annotations

import math

import numpy as np

from ..quant import gemmlowp as gl
from ..quant.fixedpoint import (
    multiply_by_quantized_multiplier_greater_than_one,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    wrap_int32,
)
from ..quant.multipliers import f32, quantize_multiplier_greater_than_one

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12

_OUT_RANGE = {"int8": (-128, 127, np.int8), "int16": (-32768, 32767, np.int16)}


def calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                           total_signed_bits: int = 31) -> int:
    """quantization_util.cc CalculateInputRadius (non-emulated float path)."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1)
                          * float(1 << (total_signed_bits - input_integer_bits))
                          / float(1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def preprocess_softmax_scaling(beta: float, input_scale: float, input_integer_bits: int):
    """quantization_util.cc PreprocessSoftmaxScaling (double-rounding build)."""
    max_real_multiplier = float((1 << 31) - 1)
    real = min(beta * input_scale * float(1 << (31 - input_integer_bits)), max_real_multiplier)
    if not real > 1.0:
        raise ValueError(
            f"SOFTMAX: beta * input_scale * 2**26 = {real!r} <= 1; TFLM's "
            "QuantizeMultiplierGreaterThanOne aborts on this (TFLITE_CHECK)"
        )
    return quantize_multiplier_greater_than_one(real)


def prepare_softmax(graph, op) -> dict:
    x = graph.tensors[op.inputs[0]]
    y = graph.tensors[op.outputs[0]]
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        raise ValueError("SOFTMAX: expects one input and one output")
    if len(x.shape) < 1:
        raise ValueError("SOFTMAX: input must have at least one dimension")
    if x.dtype != "int8":
        raise ValueError(f"SOFTMAX: only int8 input is supported here, got {x.dtype}")
    if x.quant is None or y.quant is None:
        raise ValueError("SOFTMAX: int8 tensors need quantization parameters")
    if y.dtype == "int8":
        if y.quant.zp != -128:
            raise ValueError(f"SOFTMAX: int8 output zero point must be -128, got {y.quant.zp}")
        # TFLM: TF_LITE_ENSURE(output->params.scale == 1.f / 256) -- exact float compare.
        if np.float32(y.quant.s) != np.float32(1.0 / 256):
            raise ValueError(f"SOFTMAX: int8 output scale must be exactly 1/256, got {y.quant.s!r}")
    elif y.dtype == "int16":
        if y.quant.zp != -32768:
            raise ValueError(f"SOFTMAX: int16 output zero point must be -32768, got {y.quant.zp}")
        target = np.float32(1.0 / 65536)
        if abs(np.float32(y.quant.s) - target) > np.float32(0.001) * target:
            raise ValueError(f"SOFTMAX: int16 output scale must be ~1/65536, got {y.quant.s!r}")
    else:
        raise ValueError(f"SOFTMAX: output type {y.dtype} not supported for int8 input")

    beta = f32(op.params.beta)  # TfLiteSoftmaxParams::beta is a float
    multiplier, left_shift = preprocess_softmax_scaling(
        beta, f32(x.quant.s), SCALED_DIFF_INTEGER_BITS)
    # op_data->diff_min = -1.0 * CalculateInputRadius(...), stored in an int.
    diff_min = int(-1.0 * calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift))
    return {
        "input_multiplier": int(multiplier),
        "input_left_shift": int(left_shift),
        "diff_min": diff_min,
        "out_dtype": y.dtype,
    }


def eval_softmax(op, xs, out_shape) -> np.ndarray:
    d = op.data
    lo, hi, np_out = _OUT_RANGE[d["out_dtype"]]
    out_bits = 8 * np.dtype(np_out).itemsize
    x = np.asarray(xs[0])
    depth = x.shape[-1]
    rows = x.reshape(-1, depth).astype(np.int32)

    max_in_row = rows.max(axis=1, keepdims=True)
    diff = rows - max_in_row
    valid = diff >= d["diff_min"]
    rescaled = multiply_by_quantized_multiplier_greater_than_one(
        diff, d["input_multiplier"], d["input_left_shift"])
    exp_q0 = gl.exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)

    exp_acc = gl.rescale(exp_q0, 0, ACCUMULATION_INTEGER_BITS).astype(np.int64)
    # FixedPointAccum additions wrap in int32 (only reachable for rows > 4096 long).
    sum_of_exps = wrap_int32(np.where(valid, exp_acc, 0).sum(axis=1, keepdims=True))

    shifted_scale, num_bits_over_unit = gl.get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - out_bits
    if np.any(exponent < 0) or np.any(exponent > 31):
        raise ValueError("SOFTMAX: reciprocal exponent out of range (TFLITE_CHECK in TFLM)")

    unsat = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted_scale, exp_q0),
                                   exponent)
    out = np.clip(unsat.astype(np.int64) + lo, lo, hi)
    out = np.where(valid, out, lo).astype(np_out)
    return out.reshape(out_shape)
