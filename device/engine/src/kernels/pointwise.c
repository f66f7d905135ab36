/* CONV_2D with a 1x1 kernel, stride 1, no padding: the fast path of the MobileNet-style
 * inverted residual blocks (most of a model's MACs).
 *
 * Output channels go in blocks of 4 (outer loop): for each block, the folded constant
 * bias + input_offset * sum(w) and the multipliers are set up once, then every pixel of
 * the window is a plain 4-channel dot product over the input channels (each input byte
 * loaded once per block, each weight loaded once per pixel) and the epilogue. Every tap of
 * a 1x1 stride-1 unpadded conv is inside the image, so the fold is exact everywhere:
 * sum w * (x + off) = sum w * x + off * sum w. On the M0+ the dot product is kcommon.h's
 * inline-assembly loop and the rescale a k_rq per channel (no 64-bit arithmetic).
 */
#include "../fixedpoint.h"
#include "../mcu_internal.h"
#include "kcommon.h"

void mcu_pointwise(const mcu_conv_params *p, const mcu_view *in, const mcu_view *out, int32_t r0, int32_t r1,
                   int32_t c0, int32_t c1) {
    const int32_t ic = in->c, oc = out->c;
    const int32_t off = p->input_offset;
    const k_epi e = k_epilogue(p->output_offset, p->act_min, p->act_max);
    if (p->kh != 1 || p->kw != 1 || p->stride_h != 1 || p->stride_w != 1 || p->pad_t || p->pad_l || p->pad_b ||
        p->pad_r) {
        mcu_conv2d(p, in, out, r0, r1, c0, c1); /* not the fast path's shape */
        return;
    }
    if (r1 <= r0 || c1 <= c0) return;

    int32_t ob = 0;
    for (; ob + 4 <= oc; ob += 4) {
        const int8_t *wb = p->weights + ob * ic;
        int32_t kfold[4];
        k_rq q[4];
        for (int32_t j = 0; j < 4; j++) {
            int32_t b = p->bias ? p->bias[ob + j] : 0;
            kfold[j] = k_wrap((uint32_t)b + (uint32_t)(off * k_sum(wb + j * ic, ic)));
            k_rq_init(&q[j], p->multiplier[ob + j], p->shift[ob + j], &e);
        }
        for (int32_t y = r0; y < r1; y++) {
            const int8_t *x = mcu_row(in, y) + c0 * ic;
            int8_t *o = mcu_row(out, y) + c0 * oc + ob;
            for (int32_t n = c1 - c0; n > 0; n--) {
                int32_t acc[4] = {0, 0, 0, 0};
                k_dot4(x, wb, ic, ic, acc);
                for (int32_t j = 0; j < 4; j++) o[j] = k_rq_apply(k_add(acc[j], kfold[j]), &q[j]);
                x += ic;
                o += oc;
            }
        }
    }
    for (; ob < oc; ob++) { /* the last oc % 4 channels, one at a time */
        const int8_t *wb = p->weights + ob * ic;
        const int32_t b = p->bias ? p->bias[ob] : 0;
        const int32_t kfold = k_wrap((uint32_t)b + (uint32_t)(off * k_sum(wb, ic)));
        k_rq q;
        k_rq_init(&q, p->multiplier[ob], p->shift[ob], &e);
        for (int32_t y = r0; y < r1; y++) {
            const int8_t *x = mcu_row(in, y) + c0 * ic;
            int8_t *o = mcu_row(out, y) + c0 * oc + ob;
            for (int32_t n = c1 - c0; n > 0; n--) {
                o[0] = k_rq_apply(k_add(k_dot1(x, wb, ic, 0), kfold), &q);
                x += ic;
                o += oc;
            }
        }
    }
}
