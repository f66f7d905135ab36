"""LOGISTIC and HARD_SWISH, int8, bit-exact with TFLM's reference kernels.

LOGISTIC -- micro/kernels/logistic_common.cc CalculateArithmeticOpDataLogistic (int8):
  input_multiplier/input_left_shift from frexp(input_scale * 2**27) (kInputIntegerBits=4,
  *not* QuantizeMultiplier: no 2**31 fix-up), input_range_radius =
  CalculateInputRadius(4, input_left_shift, 31); output zero point must be -128 and
  the output scale is not looked at (the kernel assumes 1/256).
  Eval: reference_integer_ops::Logistic (integer_ops/logistic.h): saturate outside the
  radius, else MultiplyByQuantizedMultiplier to Q4.27, gemmlowp::logistic -> Q0.31,
  RoundingDivideByPOT(., 23) - 128, clamp.

HARD_SWISH -- micro/kernels/hard_swish_common.cc HardSwishPrepare (int8):
  hires_input_scale = input_scale / 128 (float), output and "reluish" multipliers from
  QuantizeMultiplier, narrowed by DownScaleInt32ToInt16Multiplier; the output exponent
  must be <= 0. Eval: reference_ops::HardSwish<int8_t> (reference/hard_swish.h), all in
  int16 fixed point.
"""
from __future__ import annotations

import math

import numpy as np

from ..quant import gemmlowp as gl
from ..quant.fixedpoint import INT32_MAX, multiply_by_quantized_multiplier, rounding_divide_by_pot
from ..quant.multipliers import f32, quantize_multiplier, tflite_round
from .softmax import calculate_input_radius

# ---- LOGISTIC --------------------------------------------------------------------------

LOGISTIC_INPUT_INTEGER_BITS = 4


def prepare_logistic(graph, op) -> dict:
    x = graph.tensors[op.inputs[0]]
    y = graph.tensors[op.outputs[0]]
    if x.dtype != y.dtype:
        raise ValueError(f"LOGISTIC: input {x.dtype} and output {y.dtype} types differ")
    if x.dtype != "int8":
        raise ValueError(f"LOGISTIC: only int8 is supported here, got {x.dtype}")
    if y.quant is None or y.quant.zp != -128:
        raise ValueError("LOGISTIC: int8 output zero point must be -128")
    # The output scale is not checked by TFLM; the kernel writes q = 256 * sigmoid - 128.

    real = f32(x.quant.s) * float(1 << (31 - LOGISTIC_INPUT_INTEGER_BITS))
    q, left_shift = math.frexp(real)
    multiplier = int(tflite_round(q * (1 << 31)))
    if multiplier > INT32_MAX:
        # static_cast<int32_t>(2147483648.0) is undefined behaviour in C++; x86 and Arm
        # disagree on the result. Refuse rather than guess.
        raise ValueError("LOGISTIC: input multiplier rounds to 2**31 (overflows int32 in TFLM)")
    if left_shift < 0 or left_shift > 62:
        raise ValueError(f"LOGISTIC: input scale {x.quant.s!r} gives shift {left_shift}, "
                         "undefined in CalculateInputRadius")
    radius = calculate_input_radius(LOGISTIC_INPUT_INTEGER_BITS, left_shift, 31)
    if radius > 0 and left_shift > 31:
        raise ValueError("LOGISTIC: left shift above 31 is undefined in MultiplyByQuantizedMultiplier")
    return {
        "input_zero_point": int(x.quant.zp),
        "input_range_radius": int(radius),
        "input_multiplier": multiplier,
        "input_left_shift": int(left_shift),
    }


def eval_logistic(op, xs, out_shape) -> np.ndarray:
    d = op.data
    inp = np.asarray(xs[0]).astype(np.int32) - np.int32(d["input_zero_point"])
    radius = d["input_range_radius"]
    shift = d["input_left_shift"]
    inside = (inp > -radius) & (inp < radius)
    # Only evaluate the fixed-point path where the C++ does (outside, the shift may be huge).
    safe = np.where(inside, inp, 0)
    if shift <= 31:
        input_in_q4 = multiply_by_quantized_multiplier(safe, d["input_multiplier"], shift)
    else:  # radius == 0: nothing is inside
        input_in_q4 = np.zeros_like(safe)
    output_in_q0 = gl.logistic(input_in_q4, LOGISTIC_INPUT_INTEGER_BITS)
    out = rounding_divide_by_pot(output_in_q0, 31 - 8).astype(np.int64) - 128
    out = np.clip(out, -128, 127)
    out = np.where(inp <= -radius, -128, np.where(inp >= radius, 127, out))
    return out.astype(np.int8).reshape(out_shape)


# ---- HARD_SWISH ------------------------------------------------------------------------


def downscale_int32_to_int16_multiplier(m: int) -> int:
    """common.h DownScaleInt32ToInt16Multiplier."""
    if m < 0:
        raise ValueError("negative multiplier")
    if m >= INT32_MAX - (1 << 15):
        return 32767
    return (m + (1 << 15)) >> 16


def prepare_hard_swish(graph, op) -> dict:
    x = graph.tensors[op.inputs[0]]
    y = graph.tensors[op.outputs[0]]
    if x.dtype != "int8":
        raise ValueError(f"HARD_SWISH: only int8 is supported here, got {x.dtype}")
    if y.dtype != "int8":
        raise ValueError(f"HARD_SWISH: int8 input needs an int8 output, got {y.dtype}")
    input_scale = np.float32(x.quant.s)
    hires_input_scale = np.float32(np.float32(1.0 / 128.0) * input_scale)
    reluish_scale = np.float32(np.float32(3.0) / np.float32(32768.0))
    output_scale = np.float32(y.quant.s)

    out_m32, out_exp = quantize_multiplier(float(np.float32(hires_input_scale / output_scale)))
    relu_m32, relu_exp = quantize_multiplier(float(np.float32(hires_input_scale / reluish_scale)))
    if out_exp > 0:
        raise ValueError(
            f"HARD_SWISH: output multiplier exponent {out_exp} > 0 (input scale / 128 must not "
            "exceed the output scale); TFLM's Prepare refuses this")
    # RoundingDivideByPOT's exponent must stay in [0, 31]; SaturatingLeftShift's shift < 31.
    if -out_exp > 31 or -relu_exp > 31 or relu_exp > 31:
        raise ValueError("HARD_SWISH: multiplier exponent outside [-31, 31] is undefined in TFLM")
    return {
        "input_zero_point": int(x.quant.zp),
        "output_zero_point": int(y.quant.zp),
        "output_multiplier_fixedpoint_int16": downscale_int32_to_int16_multiplier(out_m32),
        "output_multiplier_exponent": int(out_exp),
        "reluish_multiplier_fixedpoint_int16": downscale_int32_to_int16_multiplier(relu_m32),
        "reluish_multiplier_exponent": int(relu_exp),
    }


def _saturating_left_shift_int16(v, amount: int):
    r = np.asarray(v, dtype=np.int64) * (1 << amount)
    return np.clip(r, -32768, 32767).astype(np.int16)


def _saturating_doubling_high_mul_int16(a, b):
    """hard_swish.h SaturatingDoublingHighMul: like SQDMULH, truncating toward zero."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == b) & (a == -32768)
    ab = a * b
    q = np.abs(ab) >> 15
    high = np.where(ab < 0, -q, q).astype(np.int16)
    return np.where(overflow, np.int16(32767), high).astype(np.int16)


def eval_hard_swish(op, xs, out_shape) -> np.ndarray:
    d = op.data
    x = np.asarray(xs[0]).astype(np.int64)
    input_value = (x - d["input_zero_point"]).astype(np.int16)
    hires = (input_value.astype(np.int64) * 128).astype(np.int16)
    preshift_out = gl.saturating_rounding_doubling_high_mul_int16(
        hires, d["output_multiplier_fixedpoint_int16"])

    relu_exp = d["reluish_multiplier_exponent"]
    reluish = hires
    if relu_exp > 0:
        reluish = _saturating_left_shift_int16(reluish, relu_exp - 1)
    reluish = gl.saturating_rounding_doubling_high_mul_int16(
        reluish, d["reluish_multiplier_fixedpoint_int16"])
    if relu_exp > 0:
        reluish = _saturating_left_shift_int16(reluish, 1)
    if relu_exp < 0:
        reluish = gl.rounding_divide_by_pot_int16(reluish, -relu_exp)
    reluish = ((reluish.astype(np.int64) + (1 << 15)) >> 1).astype(np.int16)

    preshift_output_value = _saturating_doubling_high_mul_int16(reluish, preshift_out)
    out = gl.rounding_divide_by_pot_int16(preshift_output_value, -d["output_multiplier_exponent"])
    # output_value += zero_point is done on an int16_t: wraps.
    out = (out.astype(np.int64) + d["output_zero_point"]).astype(np.int16)
    out = np.clip(out, -128, 127)
    return out.astype(np.int8).reshape(out_shape)
