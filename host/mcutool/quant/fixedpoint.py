"""Integer arithmetic of TFLite's reference kernels, vectorised over numpy arrays.

Every function mirrors gemmlowp / tensorflow/lite/kernels/internal/common.h with
TFLITE_SINGLE_ROUNDING off (the default for TFLM and LiteRT): the same widths, the
same rounding, the same saturation, and int32 wrap-around where C++ wraps.
Inputs may be any integer arrays; results are int32 (or int64 where stated).
"""
from __future__ import annotations

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def wrap_int32(x):
    """Two's-complement wrap of an int64 array to int32, as C++ does in practice."""
    return np.asarray(x, dtype=np.int64).astype(np.int32)


def _trunc_div_pow2(x, bits: int):
    """C++ integer division of int64 `x` by 2**bits (rounds toward zero)."""
    d = np.int64(1) << np.int64(bits)
    q = np.abs(x) // d
    return np.where(x < 0, -q, q)


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp::SaturatingRoundingDoublingHighMul for int32 a, b (broadcast)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == b) & (a == INT32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    high = _trunc_div_pow2(ab + nudge, 31)
    return np.where(overflow, np.int64(INT32_MAX), high).astype(np.int32)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp::RoundingDivideByPOT: x / 2**exponent, rounding half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return ((x >> exponent) + (remainder > threshold)).astype(np.int32)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """tflite::MultiplyByQuantizedMultiplier(int32 x, int32 multiplier, int shift).

    `multiplier` and `shift` broadcast against `x` (per-channel on the last axis).
    """
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    # C++ computes x * (1 << left_shift) in int32 and wraps.
    shifted = wrap_int32(x << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def single_rounding_multiply(x, multiplier, shift):
    """MultiplyByQuantizedMultiplier built with TFLITE_SINGLE_ROUNDING: one rounding step.

    LiteRT's reference FULLY_CONNECTED rounds this way (TFLM rounds twice), so outputs near
    a .5 tie differ by one LSB between the two references.
    """
    x = np.asarray(x, dtype=np.int64)
    total = 31 - np.asarray(shift, dtype=np.int64)
    r = (x * np.asarray(multiplier, dtype=np.int64) + (np.int64(1) << (total - 1))) >> total
    return r.astype(np.int32)


def multiply_by_quantized_multiplier_smaller_than_one_exp(x, multiplier, left_shift):
    """tflite::MultiplyByQuantizedMultiplierSmallerThanOneExp (left_shift <= 0)."""
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x, multiplier), -np.asarray(left_shift, dtype=np.int64)
    )


def multiply_by_quantized_multiplier_greater_than_one(x, multiplier, left_shift):
    """tflite::MultiplyByQuantizedMultiplierGreaterThanOne (left_shift >= 0)."""
    x = np.asarray(x, dtype=np.int64)
    return saturating_rounding_doubling_high_mul(wrap_int32(x << np.int64(left_shift)), multiplier)


def saturate(x, lo: int, hi: int, dtype=np.int8):
    """Clamp to [lo, hi] and narrow, as the kernels' final std::min/std::max do."""
    return np.clip(x, lo, hi).astype(dtype)
