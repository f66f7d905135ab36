/* Elementwise int8 ops over windows (every view has the output's h, w, c), and ADD/MUL
 * with broadcasting over whole 4-D tensors.
 *
 * ADD / MUL: reference_integer_ops::Add / Mul. QUANTIZE int8 -> int8: requantize.
 * LOGISTIC: reference_integer_ops::Logistic (gemmlowp logistic in Q4.27).
 * HARD_SWISH: reference_ops::HardSwish<int8_t>, all in int16 fixed point.
 * Each is a port of the numpy reference in host/mcutool/ref/{elementwise,quantize,
 * activations}.py. A window's row is (c1 - c0) * c contiguous bytes in every view.
 */
#include <string.h>

#include "../fixedpoint.h"
#include "../mcu_internal.h"
#include "kcommon.h"
#include "kgemmlowp.h"

/* ---- per-element functions --------------------------------------------------------- */

/* The 64-bit-free rescales of kcommon.h, out of line (ADD alone has three). */
static K_NOINLINE int32_t ew_srdhm(int32_t a, int32_t m) { return k_srdhm(a, m); }
static K_NOINLINE int32_t ew_mbqm(int32_t x, int32_t m, int32_t shift) { return k_mbqm(x, m, shift); }

static inline int8_t add_one(const mcu_add_params *p, int32_t x1, int32_t x2) {
    /* (x + offset) in [-255, 255], << 20: fits int32 */
    const int32_t a = (int32_t)((uint32_t)(x1 + p->input1_offset) << p->left_shift);
    const int32_t b = (int32_t)((uint32_t)(x2 + p->input2_offset) << p->left_shift);
    const int32_t sa = mcu_rdbpot(ew_srdhm(a, p->input1_multiplier), -p->input1_shift);
    const int32_t sb = mcu_rdbpot(ew_srdhm(b, p->input2_multiplier), -p->input2_shift);
    const int32_t raw = k_add(sa, sb);
    int32_t v = mcu_rdbpot(ew_srdhm(raw, p->output_multiplier), -p->output_shift);
    const int32_t lo = p->act_min - p->output_offset, hi = p->act_max - p->output_offset;
    v = v < lo ? lo : (v > hi ? hi : v);
    return (int8_t)(v + p->output_offset);
}

static inline int8_t mul_one(const mcu_mul_params *p, int32_t x1, int32_t x2) {
    const int32_t prod = (x1 + p->input1_offset) * (x2 + p->input2_offset);
    int32_t v = ew_mbqm(prod, p->output_multiplier, p->output_shift);
    const int32_t lo = p->act_min - p->output_offset, hi = p->act_max - p->output_offset;
    v = v < lo ? lo : (v > hi ? hi : v);
    return (int8_t)(v + p->output_offset);
}

/* ---- windows ------------------------------------------------------------------------ */

void mcu_add(const mcu_add_params *p, const mcu_view *a, const mcu_view *b, const mcu_view *out, int32_t r0,
             int32_t r1, int32_t c0, int32_t c1) {
    const int32_t n = (c1 - c0) * out->c;
    if (c1 <= c0) return;
    for (int32_t y = r0; y < r1; y++) {
        const int8_t *x1 = mcu_px(a, y, c0), *x2 = mcu_px(b, y, c0);
        int8_t *o = mcu_px(out, y, c0);
        for (int32_t i = 0; i < n; i++) o[i] = add_one(p, x1[i], x2[i]);
    }
}

void mcu_mul(const mcu_mul_params *p, const mcu_view *a, const mcu_view *b, const mcu_view *out, int32_t r0,
             int32_t r1, int32_t c0, int32_t c1) {
    const int32_t n = (c1 - c0) * out->c;
    if (c1 <= c0) return;
    for (int32_t y = r0; y < r1; y++) {
        const int8_t *x1 = mcu_px(a, y, c0), *x2 = mcu_px(b, y, c0);
        int8_t *o = mcu_px(out, y, c0);
        for (int32_t i = 0; i < n; i++) o[i] = mul_one(p, x1[i], x2[i]);
    }
}

void mcu_requantize(const mcu_requant_params *p, const mcu_view *in, const mcu_view *out, int32_t r0, int32_t r1,
                    int32_t c0, int32_t c1) {
    const int32_t n = (c1 - c0) * out->c;
    const int32_t lo = -128 - p->output_zero_point, hi = 127 - p->output_zero_point;
    if (c1 <= c0) return;
    for (int32_t y = r0; y < r1; y++) {
        const int8_t *x = mcu_px(in, y, c0);
        int8_t *o = mcu_px(out, y, c0);
        for (int32_t i = 0; i < n; i++) {
            int32_t v = ew_mbqm(x[i] - p->input_zero_point, p->multiplier, p->shift);
            v = v < lo ? lo : (v > hi ? hi : v);
            o[i] = (int8_t)(v + p->output_zero_point);
        }
    }
}

static inline int8_t logistic_one(const mcu_logistic_params *p, int32_t x) {
    const int32_t inp = x - p->input_zero_point;
    const int32_t radius = p->input_range_radius;
    if (inp <= -radius) return -128;
    if (inp >= radius) return 127;
    {
        /* inside the radius the host guarantees input_left_shift <= 31 */
        const int32_t q4 = mcu_mbqm(inp, p->input_multiplier, p->input_left_shift);
        int32_t v = mcu_rdbpot(gl_logistic(q4, 4), 31 - 8) - 128;
        v = v < -128 ? -128 : (v > 127 ? 127 : v);
        return (int8_t)v;
    }
}

void mcu_logistic(const mcu_logistic_params *p, const mcu_view *in, const mcu_view *out, int32_t r0, int32_t r1,
                  int32_t c0, int32_t c1) {
    const int32_t n = (c1 - c0) * out->c;
    if (c1 <= c0) return;
    for (int32_t y = r0; y < r1; y++) {
        const int8_t *x = mcu_px(in, y, c0);
        int8_t *o = mcu_px(out, y, c0);
        for (int32_t i = 0; i < n; i++) o[i] = logistic_one(p, x[i]);
    }
}

/* ---- HARD_SWISH: int16 fixed point ---------------------------------------------------- */

/* int16 two's-complement wrap of an int32 (static_cast<int16_t>) */
static inline int32_t w16(int32_t v) { return (int32_t)(((uint32_t)v & 0xFFFFu) ^ 0x8000u) - 0x8000; }

/* SaturatingRoundingDoublingHighMul<int16_t> */
static inline int32_t srdhm16(int32_t a, int32_t b) {
    if (a == b && a == -32768) return 32767;
    {
        const int32_t ab = a * b;
        const int32_t t = ab + (ab >= 0 ? (1 << 14) : (1 - (1 << 14)));
        return w16(t >= 0 ? (t >> 15) : -((-t) >> 15));
    }
}

/* RoundingDivideByPOT<int16_t>, with its int16 mask and threshold */
static inline int32_t rdbpot16(int32_t x, int32_t exponent) {
    const int32_t mask = w16((int32_t)((1u << exponent) - 1u));
    const int32_t remainder = w16(x & mask);
    const int32_t threshold = w16((mask >> 1) + (x < 0 ? 1 : 0));
    return w16((x >> exponent) + (remainder > threshold ? 1 : 0));
}

/* hard_swish.h SaturatingLeftShift on int16, amount in [0, 30] */
static inline int32_t sat_lshift16(int32_t v, int32_t amount) {
    const int32_t hi = 32767 >> amount, lo = -(32768 >> amount);
    if (v > hi) return 32767;
    if (v < lo) return -32768;
    return (int32_t)((uint32_t)v << amount);
}

/* hard_swish.h SaturatingDoublingHighMul: truncating toward zero */
static inline int32_t sdhm16(int32_t a, int32_t b) {
    if (a == b && a == -32768) return 32767;
    {
        const int32_t ab = a * b;
        return w16(ab < 0 ? -((-ab) >> 15) : (ab >> 15));
    }
}

static inline int8_t hard_swish_one(const mcu_hard_swish_params *p, int32_t x) {
    const int32_t input_value = w16(x - p->input_zero_point);
    const int32_t hires = w16(input_value * 128);
    const int32_t preshift_out = srdhm16(hires, p->output_multiplier_fixedpoint_int16);
    const int32_t rexp = p->reluish_multiplier_exponent;
    int32_t reluish = hires;
    if (rexp > 0) reluish = sat_lshift16(reluish, rexp - 1);
    reluish = srdhm16(reluish, p->reluish_multiplier_fixedpoint_int16);
    if (rexp > 0) reluish = sat_lshift16(reluish, 1);
    if (rexp < 0) reluish = rdbpot16(reluish, -rexp);
    reluish = w16((reluish + (1 << 15)) >> 1);
    {
        const int32_t pov = sdhm16(reluish, preshift_out);
        int32_t out = rdbpot16(pov, -p->output_multiplier_exponent);
        out = w16(out + p->output_zero_point);
        out = out < -128 ? -128 : (out > 127 ? 127 : out);
        return (int8_t)out;
    }
}

void mcu_hard_swish(const mcu_hard_swish_params *p, const mcu_view *in, const mcu_view *out, int32_t r0,
                    int32_t r1, int32_t c0, int32_t c1) {
    const int32_t n = (c1 - c0) * out->c;
    if (c1 <= c0) return;
    for (int32_t y = r0; y < r1; y++) {
        const int8_t *x = mcu_px(in, y, c0);
        int8_t *o = mcu_px(out, y, c0);
        for (int32_t i = 0; i < n; i++) o[i] = hard_swish_one(p, x[i]);
    }
}

/* ---- broadcasting ---------------------------------------------------------------------- */

/* Element strides of a 4-D shape broadcast to so: 0 along the dimensions it repeats. */
static void bcast_strides(const int32_t *s, const int32_t *so, int32_t *st) {
    int32_t acc = 1;
    for (int d = 3; d >= 0; d--) {
        st[d] = (s[d] == 1 && so[d] != 1) ? 0 : acc;
        acc *= s[d];
    }
}

/* Both broadcasting ops walk the output the same way; only the per-element op differs.
 * (Broadcasting is the rare whole-tensor path: the windowed kernels above stay direct.) */
typedef int8_t (*bcast_op)(const void *p, int32_t x1, int32_t x2);

static int8_t add_any(const void *p, int32_t x1, int32_t x2) { return add_one((const mcu_add_params *)p, x1, x2); }
static int8_t mul_any(const void *p, int32_t x1, int32_t x2) { return mul_one((const mcu_mul_params *)p, x1, x2); }

static void broadcast(bcast_op f, const void *p, const int8_t *a, const int32_t *sa, const int8_t *b,
                      const int32_t *sb, int8_t *out, const int32_t *so) {
    int32_t ta[4], tb[4];
    bcast_strides(sa, so, ta);
    bcast_strides(sb, so, tb);
    for (int32_t i0 = 0; i0 < so[0]; i0++)
        for (int32_t i1 = 0; i1 < so[1]; i1++)
            for (int32_t i2 = 0; i2 < so[2]; i2++) {
                const int8_t *x1 = a + i0 * ta[0] + i1 * ta[1] + i2 * ta[2];
                const int8_t *x2 = b + i0 * tb[0] + i1 * tb[1] + i2 * tb[2];
                for (int32_t i3 = 0; i3 < so[3]; i3++) *out++ = f(p, x1[i3 * ta[3]], x2[i3 * tb[3]]);
            }
}

void mcu_add_broadcast(const mcu_add_params *p, const int8_t *a, const int32_t *sa, const int8_t *b,
                       const int32_t *sb, int8_t *out, const int32_t *so) {
    broadcast(add_any, p, a, sa, b, sb, out, so);
}

void mcu_mul_broadcast(const mcu_mul_params *p, const int8_t *a, const int32_t *sa, const int8_t *b,
                       const int32_t *sb, int8_t *out, const int32_t *so) {
    broadcast(mul_any, p, a, sa, b, sb, out, so);
}
