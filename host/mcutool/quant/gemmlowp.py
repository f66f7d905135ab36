"""gemmlowp's fixed-point math (fixedpoint/fixedpoint.h), vectorised over numpy arrays.

The scalar int32 code paths of gemmlowp, as TFLM's reference kernels instantiate them
(FixedPoint<int32_t, N>, plus the int16_t primitives HARD_SWISH uses), and the two
helpers of tensorflow/lite/kernels/internal/common.h built on them (GetReciprocal,
CountLeadingZeros). A FixedPoint value is represented by its raw integer array;
the number of integer bits is passed explicitly where gemmlowp takes it from the type.

Plain gemmlowp Add/Sub/Neg/ShiftLeft overflow is undefined in C++ but wraps on every
target we care about; it wraps here too. Results are int32 arrays (int16 for the
`*_int16` functions).
"""
from __future__ import annotations

import numpy as np

from .fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    wrap_int32,
)

INT16_MAX = (1 << 15) - 1
INT16_MIN = -(1 << 15)

__all__ = [
    "add",
    "sub",
    "neg",
    "mul",
    "rounding_half_sum",
    "saturating_rounding_multiply_by_pot",
    "rescale",
    "exp_on_interval_between_negative_one_quarter_and_0_excl",
    "exp_on_negative_values",
    "one_over_one_plus_x_for_x_in_0_1",
    "logistic",
    "count_leading_zeros_u32",
    "get_reciprocal",
    "saturating_rounding_doubling_high_mul_int16",
    "rounding_divide_by_pot_int16",
]


def _i64(x):
    return np.asarray(x, dtype=np.int64)


# ---- int32 primitives ------------------------------------------------------------------


def add(a, b):
    """gemmlowp Add (FixedPoint operator+): int32 addition, wrapping."""
    return wrap_int32(_i64(a) + _i64(b))


def sub(a, b):
    """gemmlowp Sub (FixedPoint operator-): int32 subtraction, wrapping."""
    return wrap_int32(_i64(a) - _i64(b))


def neg(a):
    """gemmlowp Neg: -INT32_MIN wraps to INT32_MIN."""
    return wrap_int32(-_i64(a))


def mul(a, b):
    """FixedPoint operator*: SaturatingRoundingDoublingHighMul of the raw values.

    The result has IntegerBits(a) + IntegerBits(b) integer bits.
    """
    return saturating_rounding_doubling_high_mul(a, b)


def rounding_half_sum(a, b):
    """RoundingHalfSum<int32>: (a + b + sign(a + b)) / 2, C++ division (toward zero)."""
    s = _i64(a) + _i64(b)
    t = s + np.where(s >= 0, np.int64(1), np.int64(-1))
    q = np.abs(t) // 2
    return np.where(t < 0, -q, q).astype(np.int32)


def saturating_rounding_multiply_by_pot(x, exponent: int):
    """SaturatingRoundingMultiplyByPOT<exponent> on int32 raw values.

    exponent > 0: left shift, saturating; exponent < 0: rounding right shift.
    """
    x = _i64(x)
    if exponent == 0:
        return x.astype(np.int32)
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    result = wrap_int32(x << np.int64(exponent)).astype(np.int64)
    result = np.where(x > threshold, np.int64(INT32_MAX), result)
    result = np.where(x < -threshold, np.int64(INT32_MIN), result)
    return result.astype(np.int32)


def rescale(x, src_integer_bits: int, dst_integer_bits: int):
    """gemmlowp::Rescale<dst>(FixedPoint<int32, src>)."""
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


# ---- exp, 1/(1+x), logistic ------------------------------------------------------------

_EXP_QUARTER_CONSTANT = 1895147668  # exp(-1/8) in Q0.31
_ONE_THIRD = 715827883  # 1/3 in Q0.31
# exp(-2**k) in Q0.31 for k = -2..4, used by the barrel shifter in exp_on_negative_values.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))
_CONSTANT_48_OVER_17 = 1515870810  # Q2.29
_CONSTANT_NEG_32_OVER_17 = -1010580540  # Q2.29


def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """exp(a) for a in [-1/4, 0), a and result in Q0.31."""
    x = add(a, 1 << 28)  # a + 1/8
    x2 = mul(x, x)
    x3 = mul(x2, x)
    x4 = mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(add(mul(add(x4_over_4, x3), _ONE_THIRD), x2), -1)
    return add(_EXP_QUARTER_CONSTANT, mul(_EXP_QUARTER_CONSTANT, add(x, poly)))


def exp_on_negative_values(a, integer_bits: int):
    """gemmlowp::exp_on_negative_values(FixedPoint<int32, integer_bits>) -> Q0.31 raw."""
    a = np.asarray(a, dtype=np.int32)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = sub(a.astype(np.int64) & mask, one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0)
    )
    remainder = sub(a_mod_quarter_minus_one_quarter, a).astype(np.int64)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = np.int64(1) << np.int64(fractional_bits + exponent)
            result = np.where((remainder & bit) != 0, mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, np.int32(0), result)
    result = np.where(a == 0, np.int32(INT32_MAX), result)  # FixedPoint<.,0>::One()
    return np.asarray(result, dtype=np.int32)


def one_over_one_plus_x_for_x_in_0_1(a):
    """1 / (1 + a) for a in [0, 1): Newton-Raphson, a and result in Q0.31."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    one_f2 = 1 << 29  # FixedPoint<int32, 2>::One(): 1.0 in Q2.29
    x = add(_CONSTANT_48_OVER_17, mul(half_denominator, _CONSTANT_NEG_32_OVER_17))
    for _ in range(3):
        half_denominator_times_x = mul(half_denominator, x)
        one_minus_half_denominator_times_x = sub(one_f2, half_denominator_times_x)
        x = add(x, rescale(mul(x, one_minus_half_denominator_times_x), 4, 2))
    # Rescale<0>(ExactMulByPot<-1>(x)): x read as Q1.30, rescaled to Q0.31.
    return rescale(x, 1, 0)


def logistic(a, integer_bits: int):
    """gemmlowp::logistic(FixedPoint<int32, integer_bits>) -> Q0.31 raw."""
    a = np.asarray(a, dtype=np.int32)
    positive = a > 0
    abs_input = np.where(positive, a, neg(a))
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(neg(abs_input), integer_bits)
    )
    result_if_negative = sub(INT32_MAX, result_if_positive)
    out = np.where(positive, result_if_positive, result_if_negative)
    return np.where(a == 0, np.int32(1 << 30), out).astype(np.int32)


# ---- common.h helpers ------------------------------------------------------------------


def count_leading_zeros_u32(x):
    """CountLeadingZeros(static_cast<uint32_t>(x)); 32 for 0."""
    u = _i64(x) & 0xFFFFFFFF
    out = np.full(u.shape, 32, dtype=np.int64)
    nz = u != 0
    # floor(log2) of a uint32 via frexp on float64 (exact for integers below 2**53).
    _, e = np.frexp(np.where(nz, u, 1).astype(np.float64))
    return np.where(nz, 32 - e.astype(np.int64), out)


def get_reciprocal(x, x_integer_digits: int):
    """tflite::GetReciprocal: (raw Q0.31 of 1/x rescaled, num_bits_over_unit).

    x is a positive FixedPoint<int32, x_integer_digits> raw value.
    """
    x = _i64(x)
    headroom_plus_one = count_leading_zeros_u32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted = ((x & 0xFFFFFFFF) << headroom_plus_one) & 0xFFFFFFFF
    shifted_sum_minus_one = wrap_int32((shifted - (1 << 31)) & 0xFFFFFFFF)
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


# ---- int16 primitives (HARD_SWISH) -----------------------------------------------------


def _wrap_int16(x):
    return np.asarray(x, dtype=np.int64).astype(np.int16)


def saturating_rounding_doubling_high_mul_int16(a, b):
    """SaturatingRoundingDoublingHighMul<int16_t>."""
    a = _i64(a)
    b = _i64(b)
    overflow = (a == b) & (a == INT16_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, np.int64(1 << 14), np.int64(1 - (1 << 14)))
    t = ab + nudge
    q = np.abs(t) >> 15
    high = _wrap_int16(np.where(t < 0, -q, q))
    return np.where(overflow, np.int16(INT16_MAX), high).astype(np.int16)


def rounding_divide_by_pot_int16(x, exponent):
    """RoundingDivideByPOT<int16_t>(x, exponent), with its int16 arithmetic.

    The mask (1 << exponent) - 1 is narrowed to int16, so exponents of 16 and more
    do not divide as one would expect; gemmlowp asserts exponent <= 31.
    """
    x = _i64(x)
    exponent = _i64(exponent)
    if np.any(exponent < 0) or np.any(exponent > 31):
        raise ValueError("RoundingDivideByPOT exponent out of [0, 31]")
    mask = _wrap_int16((np.int64(1) << exponent) - 1).astype(np.int64)
    remainder = _wrap_int16(x & mask).astype(np.int64)
    threshold = _wrap_int16((mask >> 1) + (x < 0)).astype(np.int64)
    return _wrap_int16((x >> exponent) + (remainder > threshold))
