/* Helpers shared by the kernels (private to src/kernels/): the requantization epilogue,
 * the dot products of the convolutions, and stepping through a view's rows without
 * dividing (a ring's slot is found by one modulo per output row, then stepped).
 *
 * Everything is static inline: each kernel file gets its own copy, the engine keeps no
 * state, and GCC inlines the small inner loops into their callers.
 */
#ifndef MCU_KCOMMON_H
#define MCU_KCOMMON_H

#include <stdint.h>

#include "../fixedpoint.h"
#include "../mcu_internal.h"

/* K_INLINE: always inlined (the inner loops and the rescale); K_HELPER: per-row or
 * per-call set-up, left to the compiler (at -Os it keeps one copy per file). */
#if defined(__GNUC__)
#define K_INLINE static inline __attribute__((always_inline))
#define K_NOINLINE __attribute__((noinline))
#else
#define K_INLINE static inline
#define K_NOINLINE
#endif
#define K_HELPER static inline

/* int32 arithmetic that wraps (as the reference's int32 accumulator does) without
 * signed-overflow UB: the sum in uint32, back to int32 two's complement. */
K_INLINE int32_t k_wrap(uint32_t u) {
    return u <= 0x7FFFFFFFu ? (int32_t)u : (int32_t)(u - 0x80000000u) - 0x7FFFFFFF - 1;
}
K_INLINE int32_t k_add(int32_t a, int32_t b) { return k_wrap((uint32_t)a + (uint32_t)b); }

/* ---- requantization without 64-bit arithmetic ----------------------------------------
 * mcu_srdhm / mcu_mbqm (fixedpoint.h) are the specification; on a Cortex-M0+ their int64
 * adds, compares and shifts cost more than the four 16 x 16 multiplies of the product.
 * For a non-negative multiplier m (every multiplier the host computes), the rounded high
 * half is computed from |a| in 32-bit pieces and the sign applied after:
 *   a >= 0: (a * m + 2^30) >> 31                      (nudge 2^30, floor = trunc)
 *   a <  0: -((|a| * m + 2^30 - 1) >> 31)             (nudge 1 - 2^30, trunc toward 0)
 * which is SaturatingRoundingDoublingHighMul exactly (its overflow case needs
 * m == INT32_MIN). A negative m falls back to mcu_srdhm. */
K_INLINE int32_t k_srdhm_h(int32_t a, uint32_t mh, uint32_t ml) { /* m = mh << 16 | ml, m >= 0 */
    const uint32_t s = a < 0 ? 0xFFFFFFFFu : 0u;
    const uint32_t u = ((uint32_t)a ^ s) - s; /* |a| <= 2^31 */
    const uint32_t uh = u >> 16, ul = u & 0xFFFFu;
    const uint32_t ll = ul * ml;
    const uint32_t mid = uh * ml + ul * mh; /* each term < 2^31: no overflow */
    const uint32_t lo = ll + (mid << 16);
    const uint32_t hi = uh * mh + (mid >> 16) + (lo < ll ? 1u : 0u);
    const uint32_t lo2 = lo + 0x40000000u + s; /* + 2^30, or 2^30 - 1 if a < 0 */
    const uint32_t q = ((hi + (lo2 < lo ? 1u : 0u)) << 1) | (lo2 >> 31); /* < 2^31 */
    return k_wrap((q ^ s) - s);
}

K_HELPER int32_t k_srdhm(int32_t a, int32_t m) {
    if (m < 0) return mcu_srdhm(a, m);
    return k_srdhm_h(a, (uint32_t)m >> 16, (uint32_t)m & 0xFFFFu);
}

/* mcu_mbqm, bit for bit, through k_srdhm. */
K_HELPER int32_t k_mbqm(int32_t x, int32_t m, int32_t shift) {
    if (shift > 0) return k_srdhm(k_wrap((uint32_t)x << shift), m);
    return mcu_rdbpot(k_srdhm(x, m), -shift);
}

/* The conv / FC epilogue: rescale, clamp, add the output offset. The clamp is applied to
 * the rescaled value against [act_min - offset, act_max - offset], which is the same as
 * clamping value + offset to [act_min, act_max] but cannot overflow int32. */
typedef struct {
    int32_t lo, hi, offset;
} k_epi;

K_HELPER k_epi k_epilogue(int32_t output_offset, int32_t act_min, int32_t act_max) {
    k_epi e;
    e.lo = act_min - output_offset;
    e.hi = act_max - output_offset;
    e.offset = output_offset;
    return e;
}

K_HELPER int8_t k_requant(int32_t acc, int32_t mult, int32_t shift, const k_epi *e) {
    int32_t v = k_mbqm(acc, mult, shift);
    v = v < e->lo ? e->lo : (v > e->hi ? e->hi : v);
    return (int8_t)(v + e->offset);
}

/* One output channel's epilogue with its constants worked out once (per block of
 * channels, or per row), for the inner loops: the multiplier's 16-bit halves, the left
 * shift or RoundingDivideByPOT's mask and half, the clamp bounds. Same result as
 * k_requant(acc, m, shift, e). */
typedef struct {
    int32_t m;
    uint32_t mh, ml;
    int32_t left, right, mask, half;
    int32_t lo, hi, offset;
} k_rq;

K_HELPER void k_rq_init(k_rq *q, int32_t m, int32_t shift, const k_epi *e) {
    q->m = m;
    q->mh = (uint32_t)m >> 16;
    q->ml = (uint32_t)m & 0xFFFFu;
    q->left = shift > 0 ? shift : 0;
    q->right = shift > 0 ? 0 : -shift;
    q->mask = (int32_t)((1u << q->right) - 1u);
    q->half = q->mask >> 1;
    q->lo = e->lo;
    q->hi = e->hi;
    q->offset = e->offset;
}

K_INLINE int32_t k_rq_value(int32_t acc, const k_rq *q) { /* = mcu_mbqm(acc, m, shift) */
    int32_t v;
    if (q->m < 0) return mcu_mbqm(acc, q->m, q->left - q->right);
    v = k_srdhm_h(k_wrap((uint32_t)acc << q->left), q->mh, q->ml);
    /* RoundingDivideByPOT(v, right) with its mask and threshold precomputed */
    return mcu_asr(v, q->right) + ((v & q->mask) > q->half + (v < 0 ? 1 : 0) ? 1 : 0);
}

K_INLINE int8_t k_rq_apply(int32_t acc, const k_rq *q) {
    int32_t v = k_rq_value(acc, q);
    v = v < q->lo ? q->lo : (v > q->hi ? q->hi : v);
    return (int8_t)(v + q->offset);
}

/* ---- the conv epilogue from the image's per-channel record ----------------------------
 * mcu_conv_params.rq holds MCU_RQ_WORDS int32 per output channel (host/mcutool/ref/conv.py
 * rq_words): q[0] kfold = bias + input_offset * sum(w), q[1] mw = the multiplier m, its top
 * bit set on a slow channel, q[2] kq, q[3] sh; the shift is 15 - sh. MultiplyByQuantized-
 * Multiplier rounds twice, half away from zero (RoundingDivideByPOT) after SaturatingRounding-
 * DoublingHighMul, which rounds |a| * m / 2^31 half up for a >= 0 and half down for a < 0.
 * With u = |acc|, r = -shift >= 0 and integer c = 2^(r-1), floor((floor(X / 2^31) + c) / 2^r)
 * = floor((X + c * 2^31) / 2^(31+r)): the two roundings are one,
 *   |result| = (u * m + 2^30 + [r > 0] 2^(30+r) - [acc < 0]) >> (31 + r),
 * and with m = mh * 2^16 + ml and u < 2^16 that is 32-bit arithmetic:
 *   (u * mh + kq + s + ((u * ml + (s & 0xFFFF)) >> 16)) >> sh,   s = acc < 0 ? -1 : 0,
 * kq = 2^14 + [r > 0] 2^(14+r), sh = 15 + r (u * mh < 2^31, u * ml + 0xFFFF < 2^32, the
 * sum < 2^32 for r <= 16). |acc| >= 2^16, or a slow channel (r outside [0, 16]: the host
 * sets the mark, the loader checks it) with acc != 0, takes mcu_rq_slow (conv.c), which
 * is mcu_mbqm itself; acc = 0 gives 0 on any channel (a dead channel's every output), and
 * is not worth a call. The M0+ asm (pointwise.c) tests the mark for free: mh = ASRS of mw
 * is negative on a slow channel, so the MULS u * mh sets N exactly when the channel is
 * slow and acc != 0; with acc = 0 its fast path gives 0 whatever sh holds (LSRS by 32 or
 * more is 0). */
int32_t mcu_rq_slow(int32_t acc, int32_t m, int32_t shift);

K_INLINE int32_t k_qv(int32_t acc, const int32_t *q) {
    const int32_t si = mcu_asr(acc, 31), mw = q[1];
    const uint32_t s = (uint32_t)si;
    const uint32_t u = ((uint32_t)acc ^ s) - s;
    uint32_t t;
    if ((u >> 16) || mw < 0) return u ? mcu_rq_slow(acc, mw & 0x7FFFFFFF, 15 - q[3]) : 0;
    t = u * ((uint32_t)mw >> 16) + (uint32_t)q[2] + s + ((u * ((uint32_t)mw & 0xFFFFu) + (s >> 16)) >> 16);
    t >>= q[3];
    return ((int32_t)t ^ si) - si;
}

/* k_qv, clamped, plus the output offset */
K_INLINE int8_t k_qout(int32_t acc, const int32_t *q, const k_epi *e) {
    int32_t v = k_qv(acc, q);
    v = v < e->lo ? e->lo : (v > e->hi ? e->hi : v);
    return (int8_t)(v + e->offset);
}

/* pointwise.c: one pixel of a 1x1 conv, every output channel: o[j] from x[0..ic). */
void mcu_pw_pixel(const mcu_conv_params *p, const int8_t *x, int32_t ic, int32_t oc, const k_epi *e, int8_t *o);

/* ---- dot products ------------------------------------------------------------------
 * x: n input bytes; w: n weights of channel 0, channel j's at w + j * ws.
 * acc[j] += sum_i x[i] * w[j * ws + i]            (k_dot4)
 * acc[j] += sum_i (x[i] + off) * w[j * ws + i]    (k_dot4_off)
 *
 * On ARMv6-M (Cortex-M0/M0+) with a GCC-compatible compiler, k_dot4 (the loop of the 1x1
 * convs and of conv interiors) is inline assembly: GCC's Thumb-1 register allocator
 * spills the accumulators, which costs about half the loop. Here the accumulators live in
 * high registers (ADD takes them), the four weight bases and the index in low registers
 * (LDRSB has only the [Rn, Rm] form), the input base in r7 and the index runs from -n
 * up to 0 so the increment's flags end the loop: per input byte LDRSB of x, then per
 * channel LDRSB, MULS, ADD, two bytes a round: 14.5 instructions per 4 MACs. r7 is never
 * an operand: the asm pushes it, copies the input base in from r12 and pops it, so builds
 * that keep a frame pointer in r7 stay correct. (pointwise.c has the 1x1 pixel's own
 * version, four bytes a round with the rescale in the asm.) Optimised builds only;
 * MCU_NO_ASM: the C loop.
 * k_dot4_off stays C: with the offset it would need a fifth high register. */
#if defined(__ARM_ARCH_6M__) && defined(__GNUC__) && defined(__OPTIMIZE__) && !defined(MCU_NO_ASM)
#define K_DOT_ASM 1
#endif

K_INLINE void k_dot4(const int8_t *x, const int8_t *w, int32_t ws, int32_t n, int32_t *acc) {
#ifdef K_DOT_ASM
    if (n > 0) {
        /* registers pinned (with "r" constraints: GCC's "l"/"h" classes fail at -Os); r7 is
         * saved and restored inside the asm (the frame pointer of builds that keep one) */
        register const int8_t *w0 __asm__("r0") = w + n;
        register const int8_t *w1 __asm__("r1") = w + n + ws;
        register const int8_t *w2 __asm__("r2") = w + n + 2 * ws;
        register const int8_t *w3 __asm__("r3") = w + n + 3 * ws;
        register int32_t i __asm__("r4") = -n;
        register int32_t xv __asm__("r5");
        register int32_t t __asm__("r6");
        register int32_t a0 __asm__("r8") = acc[0];
        register int32_t a1 __asm__("r9") = acc[1];
        register int32_t a2 __asm__("r10") = acc[2];
        register int32_t a3 __asm__("r11") = acc[3];
        register const int8_t *xe __asm__("r12") = x + n;
        __asm__ volatile(
            ".syntax unified\n\t" /* GCC passes inline asm in divided syntax unless told */
            "push {r7}\n\t"       /* r7 saved and restored here: correct with a frame pointer too */
            "mov r7, %[xe]\n\t"
            "lsls %[t], %[i], #31\n\t" /* n odd: start with the second half */
            "bne 2f\n\t"
            "1:\n\t"
            "ldrsb %[xv], [r7, %[i]]\n\t"
            "ldrsb %[t], [%[w0], %[i]]\n\t"
            "muls %[t], %[xv]\n\t"
            "add %[a0], %[t]\n\t"
            "ldrsb %[t], [%[w1], %[i]]\n\t"
            "muls %[t], %[xv]\n\t"
            "add %[a1], %[t]\n\t"
            "ldrsb %[t], [%[w2], %[i]]\n\t"
            "muls %[t], %[xv]\n\t"
            "add %[a2], %[t]\n\t"
            "ldrsb %[t], [%[w3], %[i]]\n\t"
            "muls %[t], %[xv]\n\t"
            "add %[a3], %[t]\n\t"
            "adds %[i], #1\n\t"
            "2:\n\t"
            "ldrsb %[xv], [r7, %[i]]\n\t"
            "ldrsb %[t], [%[w0], %[i]]\n\t"
            "muls %[t], %[xv]\n\t"
            "add %[a0], %[t]\n\t"
            "ldrsb %[t], [%[w1], %[i]]\n\t"
            "muls %[t], %[xv]\n\t"
            "add %[a1], %[t]\n\t"
            "ldrsb %[t], [%[w2], %[i]]\n\t"
            "muls %[t], %[xv]\n\t"
            "add %[a2], %[t]\n\t"
            "ldrsb %[t], [%[w3], %[i]]\n\t"
            "muls %[t], %[xv]\n\t"
            "add %[a3], %[t]\n\t"
            "adds %[i], #1\n\t"
            "bne 1b\n\t"
            "pop {r7}\n\t"
            : [i] "+r"(i), [xv] "=&r"(xv), [t] "=&r"(t), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2),
              [a3] "+r"(a3)
            : [xe] "r"(xe), [w0] "r"(w0), [w1] "r"(w1), [w2] "r"(w2), [w3] "r"(w3)
            : "cc", "memory");
        acc[0] = a0;
        acc[1] = a1;
        acc[2] = a2;
        acc[3] = a3;
    }
#else
    /* uint32 sums: acc may start at any int32 (a folded bias) and wraps like the asm */
    const int8_t *w1 = w + ws, *w2 = w1 + ws, *w3 = w2 + ws;
    uint32_t a0 = (uint32_t)acc[0], a1 = (uint32_t)acc[1], a2 = (uint32_t)acc[2], a3 = (uint32_t)acc[3];
    int32_t i = 0;
    for (; i + 2 <= n; i += 2) {
        int32_t xa = x[i], xb = x[i + 1];
        a0 += (uint32_t)(xa * w[i] + xb * w[i + 1]);
        a1 += (uint32_t)(xa * w1[i] + xb * w1[i + 1]);
        a2 += (uint32_t)(xa * w2[i] + xb * w2[i + 1]);
        a3 += (uint32_t)(xa * w3[i] + xb * w3[i + 1]);
    }
    if (i < n) {
        int32_t xa = x[i];
        a0 += (uint32_t)(xa * w[i]);
        a1 += (uint32_t)(xa * w1[i]);
        a2 += (uint32_t)(xa * w2[i]);
        a3 += (uint32_t)(xa * w3[i]);
    }
    acc[0] = k_wrap(a0);
    acc[1] = k_wrap(a1);
    acc[2] = k_wrap(a2);
    acc[3] = k_wrap(a3);
#endif
}

K_HELPER void k_dot4_off(const int8_t *x, const int8_t *w, int32_t ws, int32_t n, int32_t off, int32_t *acc) {
    /* uint32 sums, as k_dot4's: a long dot product wraps like the reference's int32 */
    const int8_t *w1 = w + ws, *w2 = w1 + ws, *w3 = w2 + ws;
    uint32_t a0 = (uint32_t)acc[0], a1 = (uint32_t)acc[1], a2 = (uint32_t)acc[2], a3 = (uint32_t)acc[3];
    for (int32_t i = 0; i < n; i++) {
        int32_t xa = x[i] + off;
        a0 += (uint32_t)(xa * w[i]);
        a1 += (uint32_t)(xa * w1[i]);
        a2 += (uint32_t)(xa * w2[i]);
        a3 += (uint32_t)(xa * w3[i]);
    }
    acc[0] = k_wrap(a0);
    acc[1] = k_wrap(a1);
    acc[2] = k_wrap(a2);
    acc[3] = k_wrap(a3);
}

K_HELPER int32_t k_dot1(const int8_t *x, const int8_t *w, int32_t n, int32_t off) {
    uint32_t a = 0;
    for (int32_t i = 0; i < n; i++) a += (uint32_t)((x[i] + off) * w[i]);
    return k_wrap(a);
}

K_HELPER int32_t k_sum(const int8_t *w, int32_t n) {
    int32_t s = 0;
    for (int32_t i = 0; i < n; i++) s += w[i];
    return s;
}

/* ---- rows of a view ----------------------------------------------------------------
 * The kernel rows of one output row: the taps ky in [ky0, ky0 + n) fall inside the
 * tensor; p0 is the address of pixel (iy0 + ky0 * dil, 0) and s0 its slot. Stepping to
 * the next tap row adds dil rows, wrapping around the ring without a division. */
typedef struct {
    const int8_t *p0;
    int32_t s0, ky0, n;
    int32_t step;  /* bytes between tap rows: dil * stride */
    int32_t dil, cap; /* cap: the ring's rows, or INT32_MAX for a full buffer */
    int32_t wrap;  /* cap * stride (bytes to go back when the slot wraps) */
} k_rows;

K_HELPER void k_rows_init(k_rows *r, const mcu_view *v, int32_t iy0, int32_t kh, int32_t dil) {
    int32_t ky0 = 0, ky1;
    while (ky0 < kh && iy0 + ky0 * dil < 0) ky0++;
    ky1 = ky0;
    while (ky1 < kh && iy0 + ky1 * dil < v->h) ky1++;
    r->ky0 = ky0;
    r->n = ky1 - ky0;
    r->dil = dil;
    r->step = dil * v->stride;
    if (v->cap) {
        r->cap = v->cap;
        r->wrap = v->cap * v->stride;
    } else {
        r->cap = INT32_MAX;
        r->wrap = 0;
    }
    if (r->n > 0) {
        int32_t y = iy0 + ky0 * dil;
        r->s0 = v->cap ? (int32_t)((uint32_t)y % (uint32_t)v->cap) : y; /* y >= 0: the cheaper unsigned divide */
        r->p0 = v->base + r->s0 * v->stride - v->col0 * v->c;
    } else {
        r->s0 = 0;
        r->p0 = v->base;
    }
}

/* Advance (p, s) by one tap row. */
#define K_ROWS_NEXT(r, p, s)                 \
    do {                                     \
        (p) += (r)->step;                    \
        (s) += (r)->dil;                     \
        while ((s) >= (r)->cap) {            \
            (s) -= (r)->cap;                 \
            (p) -= (r)->wrap;                \
        }                                    \
    } while (0)

/* The taps kx in [kx0, kx1) of input column ix0 = ox * stride - pad that fall inside a
 * row of width w. */
K_HELPER void k_cols(int32_t ix0, int32_t kw, int32_t dil, int32_t w, int32_t *kx0, int32_t *kx1) {
    int32_t a = 0, b;
    while (a < kw && ix0 + a * dil < 0) a++;
    b = a;
    while (b < kw && ix0 + b * dil < w) b++;
    *kx0 = a;
    *kx1 = b;
}

/* Output positions [lo, hi) along one axis whose taps all fall inside [0, size). Called
 * once per kernel call (it divides). */
K_HELPER void k_interior(int32_t size, int32_t k, int32_t stride, int32_t dil, int32_t pad, int32_t *lo, int32_t *hi) {
    int32_t last = size - 1 - (k - 1) * dil + pad; /* o * stride <= last */
    *lo = (pad + stride - 1) / stride;
    *hi = last < 0 ? 0 : last / stride + 1;
    if (*hi < *lo) *hi = *lo;
}

#endif
