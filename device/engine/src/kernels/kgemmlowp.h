/* gemmlowp's fixed-point math (fixedpoint/fixedpoint.h), the scalar int32 paths TFLM's
 * reference SOFTMAX and LOGISTIC instantiate, plus tflite::GetReciprocal. Private to
 * src/kernels/; a port of host/mcutool/quant/gemmlowp.py, which is the specification.
 *
 * A FixedPoint<int32, N> value is its raw int32; the integer bits are passed explicitly.
 * gemmlowp's plain Add/Sub/Neg wrap (undefined in C++, wrapping on every target), so they
 * are done in uint32 here.
 */
#ifndef MCU_KGEMMLOWP_H
#define MCU_KGEMMLOWP_H

#include <stdint.h>

#include "../fixedpoint.h"
#include "kcommon.h"

static inline int32_t gl_add(int32_t a, int32_t b) { return k_wrap((uint32_t)a + (uint32_t)b); }
static inline int32_t gl_sub(int32_t a, int32_t b) { return k_wrap((uint32_t)a - (uint32_t)b); }
static inline int32_t gl_neg(int32_t a) { return k_wrap(0u - (uint32_t)a); }
#define gl_mul mcu_srdhm

/* RoundingHalfSum<int32>: (a + b + sign) / 2 in int64, truncating. */
static inline int32_t gl_rounding_half_sum(int32_t a, int32_t b) {
    int64_t s = (int64_t)a + (int64_t)b;
    int64_t t = s + (s >= 0 ? 1 : -1);
    return (int32_t)(t / 2);
}

/* SaturatingRoundingMultiplyByPOT<exponent> */
static inline int32_t gl_srmpot(int32_t x, int exponent) {
    if (exponent == 0) return x;
    if (exponent < 0) return mcu_rdbpot(x, -exponent);
    {
        const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
        if (x > threshold) return INT32_MAX;
        if (x < -threshold) return INT32_MIN;
        return k_wrap((uint32_t)x << exponent);
    }
}

/* Rescale<dst>(FixedPoint<int32, src>) */
static inline int32_t gl_rescale(int32_t x, int src_bits, int dst_bits) { return gl_srmpot(x, src_bits - dst_bits); }

/* exp(a) for a in [-1/4, 0), Q0.31 in and out. */
static inline int32_t gl_exp_interval(int32_t a) {
    const int32_t exp_quarter = 1895147668; /* exp(-1/8) */
    const int32_t one_third = 715827883;
    int32_t x = gl_add(a, 1 << 28);
    int32_t x2 = gl_mul(x, x);
    int32_t x3 = gl_mul(x2, x);
    int32_t x4 = gl_mul(x2, x2);
    int32_t x4_over_4 = gl_srmpot(x4, -2);
    int32_t poly = gl_srmpot(gl_add(gl_mul(gl_add(x4_over_4, x3), one_third), x2), -1);
    return gl_add(exp_quarter, gl_mul(exp_quarter, gl_add(x, poly)));
}

/* exp_on_negative_values(FixedPoint<int32, integer_bits>) -> Q0.31 raw. */
static inline int32_t gl_exp_on_negative_values(int32_t a, int integer_bits) {
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_q_minus_q = gl_sub(a & mask, one_quarter);
    int32_t result = gl_exp_interval(gl_rescale(a_mod_q_minus_q, integer_bits, 0));
    const int32_t remainder = gl_sub(a_mod_q_minus_q, a);
    for (int e = -2; e <= 4; e++) {
        if (integer_bits > e) {
            const uint32_t bit = 1u << (fractional_bits + e);
            if ((uint32_t)remainder & bit) result = gl_mul(result, barrel[e + 2]);
        }
    }
    if (integer_bits > 5) {
        const int32_t clamp = -((int32_t)1 << (36 - integer_bits));
        if (a < clamp) result = 0;
    }
    if (a == 0) result = INT32_MAX;
    return result;
}

/* 1 / (1 + a) for a in [0, 1): Newton-Raphson, Q0.31 in and out. */
static inline int32_t gl_one_over_one_plus_x(int32_t a) {
    const int32_t c48_17 = 1515870810, cn32_17 = -1010580540; /* Q2.29 */
    const int32_t one_f2 = 1 << 29;
    const int32_t half_den = gl_rounding_half_sum(a, INT32_MAX);
    int32_t x = gl_add(c48_17, gl_mul(half_den, cn32_17));
    for (int i = 0; i < 3; i++) {
        int32_t hdx = gl_mul(half_den, x);
        int32_t one_minus = gl_sub(one_f2, hdx);
        x = gl_add(x, gl_rescale(gl_mul(x, one_minus), 4, 2));
    }
    return gl_rescale(x, 1, 0);
}

/* gemmlowp::logistic(FixedPoint<int32, integer_bits>) -> Q0.31 raw. */
static inline int32_t gl_logistic(int32_t a, int integer_bits) {
    const int positive = a > 0;
    const int32_t abs_in = positive ? a : gl_neg(a);
    const int32_t rp = gl_one_over_one_plus_x(gl_exp_on_negative_values(gl_neg(abs_in), integer_bits));
    if (a == 0) return 1 << 30;
    return positive ? rp : gl_sub(INT32_MAX, rp);
}

static inline int gl_clz32(uint32_t x) {
    int n = 0;
    if (x == 0) return 32;
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

/* tflite::GetReciprocal: Q0.31 of 1/x rescaled, and num_bits_over_unit. */
static inline int32_t gl_get_reciprocal(int32_t x, int x_integer_digits, int *num_bits_over_unit) {
    const int headroom_plus_one = gl_clz32((uint32_t)x);
    const uint32_t shifted = headroom_plus_one >= 32 ? 0u : (uint32_t)x << headroom_plus_one;
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    return gl_one_over_one_plus_x(k_wrap(shifted - 0x80000000u));
}

#endif
