/* CONV_2D with a 1x1 kernel, stride 1, no padding: the fast path of the MobileNet-style
 * inverted residual blocks (most of a model's MACs), and the 1x1 half of a fused
 * depthwise -> 1x1 pair (depthwise.c).
 *
 * Pixel by pixel, output channels in blocks of 4: a plain 4-channel dot product over the
 * input channels (each input byte loaded once per block) plus the channel's folded
 * constant bias + input_offset * sum(w) from the image's per-channel record (every tap of
 * a 1x1 stride-1 unpadded conv is inside the image, so the fold is exact everywhere), then
 * the record's rescale (kcommon.h k_qout: no 64-bit arithmetic, nothing set up per call).
 * On the M0+ the dot product is kcommon.h's inline-assembly loop.
 */
#include "../fixedpoint.h"
#include "../mcu_internal.h"
#include "kcommon.h"

#ifdef K_DOT_ASM
/* The M0+ pixel: every block of 4 output channels in one asm loop: kcommon.h k_dot4's
 * loop four input bytes a round (r7 holds the input end: saved and restored inside the
 * asm, so frame-pointer builds stay correct; lr holds the output offset), then the
 * block's four k_qout. A channel that needs mcu_rq_slow (|acc| >= 2^16, or acc != 0 on a
 * slow channel: mh = ASRS of the record's mw is negative there, so the MULS's N flag tells,
 * for free) stops the loop with
 * cx.slow set and the block's sums in cx.acc: the C code rescales that block and carries
 * on. */
typedef struct {
    const int8_t *xe;    /* 0: input end */
    const int32_t *q;    /* 4: the block's records */
    int8_t *o;           /* 8: the block's outputs */
    int32_t lo, hi, off; /* 12, 16, 20: k_epi */
    int32_t slow;        /* 24 */
    int32_t nb;          /* 28: blocks left */
    int32_t nneg;        /* 32: -(input channels) */
    const int8_t *wn;    /* 36: the block's first weight row, its end */
    int32_t acc[4];      /* 40: the sums of a block handed back */
} pw_cx;

K_INLINE void pw_blocks(pw_cx *cx) {
    register pw_cx *pc __asm__("r12") = cx;
    __asm__ volatile(
        ".syntax unified\n\t"
        "push {r7}\n\t"
        "mov r6, %[cx]\n\t"
        "ldr r6, [r6, #20]\n\t"
        "mov lr, r6\n\t"
        /* a block: its weight rows (end pointers) from cx->wn, the folded biases from q */
        "0:\n\t"
        "mov r6, %[cx]\n\t"
        "ldr r0, [r6, #36]\n\t"
        "ldr r4, [r6, #32]\n\t"
        "subs r1, r0, r4\n\t"
        "subs r2, r1, r4\n\t"
        "subs r3, r2, r4\n\t"
        "ldr r5, [r6, #4]\n\t"
        "ldr r7, [r5, #0]\n\t"
        "mov r8, r7\n\t"
        "ldr r7, [r5, #16]\n\t"
        "mov r9, r7\n\t"
        "ldr r7, [r5, #32]\n\t"
        "mov r10, r7\n\t"
        "ldr r7, [r5, #48]\n\t"
        "mov r11, r7\n\t"
        "subs r7, r3, r4\n\t"
        "str r7, [r6, #36]\n\t"
        "ldr r7, [r6, #0]\n\t"
        "movs r6, #3\n\t"
        "ands r6, r4\n\t"
        "beq 1f\n\t"
        "cmp r6, #2\n\t"
        "blt 2f\n\t"
        "beq 3f\n\t"
        "b 4f\n\t"
        "1:\n\t"
        "ldrsb r5, [r7, r4]\n\t"
        "ldrsb r6, [r0, r4]\n\t"
        "muls r6, r5\n\t"
        "add r8, r6\n\t"
        "ldrsb r6, [r1, r4]\n\t"
        "muls r6, r5\n\t"
        "add r9, r6\n\t"
        "ldrsb r6, [r2, r4]\n\t"
        "muls r6, r5\n\t"
        "add r10, r6\n\t"
        "ldrsb r6, [r3, r4]\n\t"
        "muls r6, r5\n\t"
        "add r11, r6\n\t"
        "adds r4, #1\n\t"
        "2:\n\t"
        "ldrsb r5, [r7, r4]\n\t"
        "ldrsb r6, [r0, r4]\n\t"
        "muls r6, r5\n\t"
        "add r8, r6\n\t"
        "ldrsb r6, [r1, r4]\n\t"
        "muls r6, r5\n\t"
        "add r9, r6\n\t"
        "ldrsb r6, [r2, r4]\n\t"
        "muls r6, r5\n\t"
        "add r10, r6\n\t"
        "ldrsb r6, [r3, r4]\n\t"
        "muls r6, r5\n\t"
        "add r11, r6\n\t"
        "adds r4, #1\n\t"
        "3:\n\t"
        "ldrsb r5, [r7, r4]\n\t"
        "ldrsb r6, [r0, r4]\n\t"
        "muls r6, r5\n\t"
        "add r8, r6\n\t"
        "ldrsb r6, [r1, r4]\n\t"
        "muls r6, r5\n\t"
        "add r9, r6\n\t"
        "ldrsb r6, [r2, r4]\n\t"
        "muls r6, r5\n\t"
        "add r10, r6\n\t"
        "ldrsb r6, [r3, r4]\n\t"
        "muls r6, r5\n\t"
        "add r11, r6\n\t"
        "adds r4, #1\n\t"
        "4:\n\t"
        "ldrsb r5, [r7, r4]\n\t"
        "ldrsb r6, [r0, r4]\n\t"
        "muls r6, r5\n\t"
        "add r8, r6\n\t"
        "ldrsb r6, [r1, r4]\n\t"
        "muls r6, r5\n\t"
        "add r9, r6\n\t"
        "ldrsb r6, [r2, r4]\n\t"
        "muls r6, r5\n\t"
        "add r10, r6\n\t"
        "ldrsb r6, [r3, r4]\n\t"
        "muls r6, r5\n\t"
        "add r11, r6\n\t"
        "adds r4, #1\n\t"
        "bne 1b\n\t"
        "mov r6, %[cx]\n\t"
        "ldr r5, [r6, #4]\n\t"
        "ldr r4, [r6, #12]\n\t"
        "ldr r7, [r6, #16]\n\t"
        "b 7f\n\t"
        /* a channel needs mcu_rq_slow: hand the block back to the C code */
        "8:\n\t"
        "movs r0, #1\n\t"
        "str r0, [r6, #24]\n\t"
        "mov r0, r8\n\t"
        "str r0, [r6, #40]\n\t"
        "mov r0, r9\n\t"
        "str r0, [r6, #44]\n\t"
        "mov r0, r10\n\t"
        "str r0, [r6, #48]\n\t"
        "mov r0, r11\n\t"
        "str r0, [r6, #52]\n\t"
        "b 9f\n\t"
        "7:\n\t"
        "mov r0, r8\n\t"
        "asrs r1, r0, #31\n\t"
        "eors r0, r1\n\t"
        "subs r0, r0, r1\n\t"
        "lsrs r3, r0, #16\n\t"
        "bne 8b\n\t"
        "ldr r2, [r5, #4]\n\t"
        "asrs r3, r2, #16\n\t"
        "muls r3, r0\n\t"
        "bmi 8b\n\t"
        "uxth r2, r2\n\t"
        "muls r0, r2\n\t"
        "lsrs r2, r1, #16\n\t"
        "adds r0, r0, r2\n\t"
        "lsrs r0, r0, #16\n\t"
        "adds r3, r3, r0\n\t"
        "ldr r2, [r5, #8]\n\t"
        "adds r3, r3, r2\n\t"
        "adds r3, r3, r1\n\t"
        "ldr r2, [r5, #12]\n\t"
        "lsrs r3, r2\n\t"
        "eors r3, r1\n\t"
        "subs r3, r3, r1\n\t"
        "cmp r3, r4\n\t"
        "bge 3f\n\t"
        "movs r3, r4\n\t"
        "3:\n\t"
        "cmp r3, r7\n\t"
        "ble 4f\n\t"
        "movs r3, r7\n\t"
        "4:\n\t"
        "add r3, lr\n\t"
        "ldr r2, [r6, #8]\n\t"
        "strb r3, [r2, #0]\n\t"
        "mov r0, r9\n\t"
        "asrs r1, r0, #31\n\t"
        "eors r0, r1\n\t"
        "subs r0, r0, r1\n\t"
        "lsrs r3, r0, #16\n\t"
        "bne 8b\n\t"
        "ldr r2, [r5, #20]\n\t"
        "asrs r3, r2, #16\n\t"
        "muls r3, r0\n\t"
        "bmi 8b\n\t"
        "uxth r2, r2\n\t"
        "muls r0, r2\n\t"
        "lsrs r2, r1, #16\n\t"
        "adds r0, r0, r2\n\t"
        "lsrs r0, r0, #16\n\t"
        "adds r3, r3, r0\n\t"
        "ldr r2, [r5, #24]\n\t"
        "adds r3, r3, r2\n\t"
        "adds r3, r3, r1\n\t"
        "ldr r2, [r5, #28]\n\t"
        "lsrs r3, r2\n\t"
        "eors r3, r1\n\t"
        "subs r3, r3, r1\n\t"
        "cmp r3, r4\n\t"
        "bge 3f\n\t"
        "movs r3, r4\n\t"
        "3:\n\t"
        "cmp r3, r7\n\t"
        "ble 4f\n\t"
        "movs r3, r7\n\t"
        "4:\n\t"
        "add r3, lr\n\t"
        "ldr r2, [r6, #8]\n\t"
        "strb r3, [r2, #1]\n\t"
        "mov r0, r10\n\t"
        "asrs r1, r0, #31\n\t"
        "eors r0, r1\n\t"
        "subs r0, r0, r1\n\t"
        "lsrs r3, r0, #16\n\t"
        "bne 8b\n\t"
        "ldr r2, [r5, #36]\n\t"
        "asrs r3, r2, #16\n\t"
        "muls r3, r0\n\t"
        "bmi 8b\n\t"
        "uxth r2, r2\n\t"
        "muls r0, r2\n\t"
        "lsrs r2, r1, #16\n\t"
        "adds r0, r0, r2\n\t"
        "lsrs r0, r0, #16\n\t"
        "adds r3, r3, r0\n\t"
        "ldr r2, [r5, #40]\n\t"
        "adds r3, r3, r2\n\t"
        "adds r3, r3, r1\n\t"
        "ldr r2, [r5, #44]\n\t"
        "lsrs r3, r2\n\t"
        "eors r3, r1\n\t"
        "subs r3, r3, r1\n\t"
        "cmp r3, r4\n\t"
        "bge 3f\n\t"
        "movs r3, r4\n\t"
        "3:\n\t"
        "cmp r3, r7\n\t"
        "ble 4f\n\t"
        "movs r3, r7\n\t"
        "4:\n\t"
        "add r3, lr\n\t"
        "ldr r2, [r6, #8]\n\t"
        "strb r3, [r2, #2]\n\t"
        "mov r0, r11\n\t"
        "asrs r1, r0, #31\n\t"
        "eors r0, r1\n\t"
        "subs r0, r0, r1\n\t"
        "lsrs r3, r0, #16\n\t"
        "bne 8b\n\t"
        "ldr r2, [r5, #52]\n\t"
        "asrs r3, r2, #16\n\t"
        "muls r3, r0\n\t"
        "bmi 8b\n\t"
        "uxth r2, r2\n\t"
        "muls r0, r2\n\t"
        "lsrs r2, r1, #16\n\t"
        "adds r0, r0, r2\n\t"
        "lsrs r0, r0, #16\n\t"
        "adds r3, r3, r0\n\t"
        "ldr r2, [r5, #56]\n\t"
        "adds r3, r3, r2\n\t"
        "adds r3, r3, r1\n\t"
        "ldr r2, [r5, #60]\n\t"
        "lsrs r3, r2\n\t"
        "eors r3, r1\n\t"
        "subs r3, r3, r1\n\t"
        "cmp r3, r4\n\t"
        "bge 3f\n\t"
        "movs r3, r4\n\t"
        "3:\n\t"
        "cmp r3, r7\n\t"
        "ble 4f\n\t"
        "movs r3, r7\n\t"
        "4:\n\t"
        "add r3, lr\n\t"
        "ldr r2, [r6, #8]\n\t"
        "strb r3, [r2, #3]\n\t"
        "adds r5, #64\n\t"
        "str r5, [r6, #4]\n\t"
        "ldr r2, [r6, #8]\n\t"
        "adds r2, #4\n\t"
        "str r2, [r6, #8]\n\t"
        "ldr r2, [r6, #28]\n\t"
        "subs r2, #1\n\t"
        "str r2, [r6, #28]\n\t"
        "beq 9f\n\t"
        "b 0b\n\t"
        "9:\n\t"
        "pop {r7}\n\t"
        :
        : [cx] "r"(pc)
        : "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r9", "r10", "r11", "lr", "cc", "memory");
}
#endif

void mcu_pw_pixel(const mcu_conv_params *p, const int8_t *x, int32_t ic, int32_t oc, const k_epi *e, int8_t *o) {
    const int32_t *q = p->rq;
    const int8_t *w = p->weights;
    int32_t ob = 0;
#ifdef K_DOT_ASM
    if (ic > 0 && oc >= 4) {
        pw_cx cx;
        cx.xe = x + ic;
        cx.q = q;
        cx.o = o;
        cx.lo = e->lo;
        cx.hi = e->hi;
        cx.off = e->offset;
        cx.nb = oc >> 2;
        cx.nneg = -ic;
        cx.wn = w + ic;
        for (;;) {
            cx.slow = 0;
            pw_blocks(&cx);
            if (!cx.slow) break;
            ob = (int32_t)(cx.o - o);
            for (int32_t j = 0; j < 4; j++) cx.o[j] = k_qout(cx.acc[j], cx.q + j * MCU_RQ_WORDS, e);
            cx.q += 4 * MCU_RQ_WORDS;
            cx.o += 4;
            if (--cx.nb == 0) break;
        }
        ob = oc & ~3;
        q += ob * MCU_RQ_WORDS;
        w += ob * ic;
    }
#else
    for (; ob + 4 <= oc; ob += 4, w += 4 * ic) {
        int32_t acc[4];
        for (int32_t j = 0; j < 4; j++) acc[j] = q[j * MCU_RQ_WORDS]; /* the folded bias */
        k_dot4(x, w, ic, ic, acc);
        for (int32_t j = 0; j < 4; j++, q += MCU_RQ_WORDS) o[ob + j] = k_qout(acc[j], q, e);
    }
#endif
    for (; ob < oc; ob++, w += ic, q += MCU_RQ_WORDS) /* the last oc % 4 channels (M0+: or all if ic <= 0) */
        o[ob] = k_qout(k_add(k_dot1(x, w, ic, 0), q[0]), q, e);
}

void mcu_pointwise(const mcu_conv_params *p, const mcu_view *in, const mcu_view *out, int32_t r0, int32_t r1,
                   int32_t c0, int32_t c1) {
    const int32_t ic = in->c, oc = out->c;
    const k_epi e = k_epilogue(p->output_offset, p->act_min, p->act_max);
    if (p->kh != 1 || p->kw != 1 || p->stride_h != 1 || p->stride_w != 1 || p->pad_t || p->pad_l || p->pad_b ||
        p->pad_r) {
        mcu_conv2d(p, in, out, r0, r1, c0, c1); /* not the fast path's shape */
        return;
    }
    for (int32_t y = r0; y < r1; y++) {
        const int8_t *x = mcu_row(in, y) + c0 * ic;
        int8_t *o = mcu_row(out, y) + c0 * oc;
        for (int32_t n = c1 - c0; n > 0; n--, x += ic, o += oc) mcu_pw_pixel(p, x, ic, oc, &e, o);
    }
}
