/* CONV_2D, any kernel / stride / dilation / padding (reference_integer_ops::ConvPerChannel).
 *
 * acc = sum over in-image taps of w * (x + input_offset), + bias; then the per-channel
 * rescale. Structure, for speed:
 *  - output channels in blocks of 4 (the outer loop), so every input byte loaded feeds
 *    four multiply-accumulates, and the block's multipliers, shifts and folded constants
 *    are set up once for all the window's pixels;
 *  - interior pixels (every tap inside the image) compute the plain sum w * x and add the
 *    constant bias + input_offset * sum(w), which is the same integer;
 *  - border pixels skip the taps outside the image and add the offset per input byte;
 *  - with dilation 1 along the width, the in-image taps of one kernel row are one
 *    contiguous run of (kx1 - kx0) * ic bytes in both the input row and the OHWI weights;
 *  - rows are found with one modulo per output row (see k_rows), none per pixel;
 *  - the folded constant and the rescale come from the image's per-channel record
 *    (kcommon.h k_qout), nothing is set up per call.
 */
#include "../fixedpoint.h"
#include "../mcu_internal.h"
#include "kcommon.h"

/* k_mbqm(acc, m, shift) in one flat function (the fallback of kcommon.h k_qv): the high
 * half |SRDHM| q from |x| in 16-bit pieces, then RoundingDivideByPOT on the magnitude,
 * (q + 2^(r-1)) >> r (half away from zero is symmetric), and the sign applied last.
 * shift in [-31, 30] (the loader's range); a negative m takes k_mbqm. */
int32_t mcu_rq_slow(int32_t acc, int32_t m, int32_t shift) {
    uint32_t r = 0, s, u, uh, ul, mh, ml, ll, mid, lo, lo2, hi, q;
    if (m < 0) return k_mbqm(acc, m, shift);
    if (shift > 0)
        acc = k_wrap((uint32_t)acc << shift);
    else
        r = (uint32_t)-shift;
    s = (uint32_t)mcu_asr(acc, 31);
    u = ((uint32_t)acc ^ s) - s; /* |x| <= 2^31 */
    uh = u >> 16;
    ul = u & 0xFFFFu;
    mh = (uint32_t)m >> 16;
    ml = (uint32_t)m & 0xFFFFu;
    ll = ul * ml;
    mid = uh * ml + ul * mh; /* each term < 2^31 */
    lo = ll + (mid << 16);
    hi = uh * mh + (mid >> 16) + (lo < ll ? 1u : 0u);
    lo2 = (lo & 0x7FFFFFFFu) + 0x40000000u + s; /* + 2^30, or 2^30 - 1 if x < 0: < 2^32 */
    q = ((hi << 1) | (lo >> 31)) + (lo2 >> 31); /* |SRDHM| < 2^31 */
    if (r) q = (q + (1u << (r - 1))) >> r;
    return k_wrap((q ^ s) - s);
}

/* n taps of nb channels' weights (ws apart) against x: the block's dot products. */
static void krow_run(const int8_t *x, const int8_t *w, int32_t ws, int32_t nb, int32_t n, int32_t off, int use_off,
                     int32_t *acc) {
    if (nb == 4) {
        if (use_off)
            k_dot4_off(x, w, ws, n, off, acc);
        else
            k_dot4(x, w, ws, n, acc);
    } else {
        for (int32_t j = 0; j < nb; j++) acc[j] = k_add(acc[j], k_dot1(x, w + j * ws, n, use_off ? off : 0));
    }
}

/* acc[j] (j < nb) += the taps of one kernel row: xr = input row, wr = weights of the
 * block's first channel for this kernel row (kx = 0). */
static void conv_krow(const int8_t *xr, const int8_t *wr, int32_t ws, int32_t nb, int32_t ix0, int32_t kx0,
                      int32_t kx1, int32_t dil_w, int32_t ic, int32_t off, int use_off, int32_t *acc) {
    if (dil_w == 1) { /* the kernel row's taps are contiguous: one run */
        krow_run(xr + (ix0 + kx0) * ic, wr + kx0 * ic, ws, nb, (kx1 - kx0) * ic, off, use_off, acc);
        return;
    }
    for (int32_t kx = kx0; kx < kx1; kx++)
        krow_run(xr + (ix0 + kx * dil_w) * ic, wr + kx * ic, ws, nb, ic, off, use_off, acc);
}

void mcu_conv2d(const mcu_conv_params *p, const mcu_view *in, const mcu_view *out, int32_t r0, int32_t r1,
                int32_t c0, int32_t c1) {
    const int32_t ic = in->c, oc = out->c, kh = p->kh, kw = p->kw;
    const int32_t sh = p->stride_h, sw = p->stride_w, dh = p->dil_h, dw = p->dil_w;
    const int32_t ws = kh * kw * ic; /* weights per output channel (OHWI) */
    const int32_t krow = kw * ic;    /* weights per kernel row */
    const int32_t off = p->input_offset;
    const k_epi e = k_epilogue(p->output_offset, p->act_min, p->act_max);
    int32_t ox_lo, ox_hi;
    if (r1 <= r0 || c1 <= c0) return;
    k_interior(in->w, kw, sw, dw, p->pad_l, &ox_lo, &ox_hi);

    for (int32_t ob = 0; ob < oc; ob += 4) {
        const int32_t nb = oc - ob < 4 ? oc - ob : 4;
        const int8_t *wb = p->weights + ob * ws;
        const int32_t *q = p->rq + ob * MCU_RQ_WORDS;
        for (int32_t oy = r0; oy < r1; oy++) {
            k_rows rows;
            int8_t *orow = mcu_row(out, oy) + ob;
            k_rows_init(&rows, in, oy * sh - p->pad_t, kh, dh);
            const int row_full = rows.n == kh;
            for (int32_t ox = c0; ox < c1; ox++) {
                int32_t acc[4] = {0, 0, 0, 0};
                const int32_t ix0 = ox * sw - p->pad_l;
                const int interior = row_full && ox >= ox_lo && ox < ox_hi;
                int32_t kx0 = 0, kx1 = kw;
                if (!interior) k_cols(ix0, kw, dw, in->w, &kx0, &kx1);
                const int8_t *xr = rows.p0;
                int32_t s = rows.s0;
                const int8_t *wr = wb + rows.ky0 * krow;
                for (int32_t k = 0; k < rows.n; k++) {
                    conv_krow(xr, wr, ws, nb, ix0, kx0, kx1, dw, ic, off, !interior, acc);
                    wr += krow;
                    K_ROWS_NEXT(&rows, xr, s);
                }
                int8_t *o = orow + ox * oc;
                for (int32_t j = 0; j < nb; j++) {
                    /* interior: + bias + off * sum(w) (the record's kfold); border: + bias */
                    const int32_t *qj = q + j * MCU_RQ_WORDS;
                    int32_t a = k_add(acc[j], interior ? qj[0] : (p->bias ? p->bias[ob + j] : 0));
                    o[j] = k_qout(a, qj, &e);
                }
            }
        }
    }
}
