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

void mcu_pw_pixel(const mcu_conv_params *p, const int8_t *x, int32_t ic, int32_t oc, const k_epi *e, int8_t *o) {
    const int32_t *q = p->rq;
    const int8_t *w = p->weights;
    int32_t ob = 0;
    for (; ob + 4 <= oc; ob += 4, w += 4 * ic) {
        int32_t acc[4];
        for (int32_t j = 0; j < 4; j++) acc[j] = q[j * MCU_RQ_WORDS]; /* the folded bias */
        k_dot4(x, w, ic, ic, acc);
        for (int32_t j = 0; j < 4; j++, q += MCU_RQ_WORDS) o[ob + j] = k_qout(acc[j], q, e, p, ob + j);
    }
    for (; ob < oc; ob++, w += ic, q += MCU_RQ_WORDS) /* the last oc % 4 channels */
        o[ob] = k_qout(k_add(k_dot1(x, w, ic, 0), q[0]), q, e, p, ob);
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
