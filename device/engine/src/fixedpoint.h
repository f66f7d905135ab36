/* Requantization arithmetic of TFLite's reference kernels (TFLITE_SINGLE_ROUNDING off),
 * integer only. Bit-exact with host/mcutool/quant/fixedpoint.py.
 *
 * Right shifts of negative values are arithmetic on every compiler we target (GCC, Clang);
 * the C standard leaves them implementation-defined, so mcu_asr() names the intent.
 */
#ifndef MCU_FIXEDPOINT_H
#define MCU_FIXEDPOINT_H

#include <stdint.h>

static inline int32_t mcu_asr(int32_t x, int n) { return x >> n; }

/* 32 x 32 -> 64 signed product. Cortex-M0+ has only a 32-bit multiply: GCC's generic
 * 64 x 64 routine (__aeabi_lmul) does four products; this needs the same four but no
 * sign handling of the high words, and inlines. */
static inline int64_t mcu_mul64(int32_t a, int32_t b) {
#if defined(__ARM_ARCH_6M__)
    uint32_t ua = (uint32_t)a, ub = (uint32_t)b;
    uint32_t al = ua & 0xFFFFu, ah = ua >> 16, bl = ub & 0xFFFFu, bh = ub >> 16;
    uint32_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
    uint32_t mid = (ll >> 16) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
    uint32_t lo = (ll & 0xFFFFu) | (mid << 16);
    uint32_t hi = hh + (lh >> 16) + (hl >> 16) + (mid >> 16);
    /* unsigned product -> signed: subtract the other operand where one was negative */
    if (a < 0) hi -= ub;
    if (b < 0) hi -= ua;
    return (int64_t)(((uint64_t)hi << 32) | lo);
#else
    return (int64_t)a * (int64_t)b;
#endif
}

/* gemmlowp::SaturatingRoundingDoublingHighMul */
static inline int32_t mcu_srdhm(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) return INT32_MAX;
    int64_t ab = mcu_mul64(a, b);
    int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    int64_t v = ab + nudge;
    /* C division truncates toward zero, as gemmlowp's does */
    int64_t q = v >= 0 ? (v >> 31) : -((-v) >> 31);
    return (int32_t)q;
}

/* gemmlowp::RoundingDivideByPOT, exponent in [0, 31] */
static inline int32_t mcu_rdbpot(int32_t x, int exponent) {
    int32_t mask = (int32_t)((1u << exponent) - 1u);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return mcu_asr(x, exponent) + (remainder > threshold ? 1 : 0);
}

/* tflite::MultiplyByQuantizedMultiplier(int32 x, int32 multiplier, int shift) */
static inline int32_t mcu_mbqm(int32_t x, int32_t multiplier, int32_t shift) {
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    return mcu_rdbpot(mcu_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

/* MultiplyByQuantizedMultiplier built with TFLITE_SINGLE_ROUNDING (LiteRT's FC). */
static inline int32_t mcu_mbqm_single(int32_t x, int32_t multiplier, int32_t shift) {
    int total = 31 - shift;
    int64_t r = mcu_mul64(x, multiplier) + ((int64_t)1 << (total - 1));
    return (int32_t)(r >> total);
}

static inline int32_t mcu_clamp(int32_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

#endif
