/* DEPTHWISE_CONV_2D (reference_integer_ops::DepthwiseConvPerChannel): output channel
 * oc = ic * depth_multiplier + m reads input channel ic; weights 1HWO, tap (ky, kx) of
 * channel oc at weights[(ky * kw + kx) * out_c + oc].
 *
 * Structure, for speed (each output is only kh * kw MACs, so the overheads matter):
 *  - output row outer (one modulo for the ring per row), then channel, then the row's
 *    pixels: a channel's bias, multiplier, shift and folded constant are loaded once per
 *    output row, not per pixel;
 *  - a row's pixels split into border / interior / border runs once, so the interior loop
 *    has no tests: it computes sum w * x over all taps and adds
 *    bias + input_offset * sum(w) (the same integer as summing w * (x + input_offset));
 *  - interior pixels go in pairs: each weight loaded once feeds two outputs; 3x3 kernels
 *    are unrolled (with stride 1 the two windows share their middle input bytes too), and
 *    other kernels with one byte step for taps and weights (multiplier 1, dilation 1) run
 *    each kernel row as one indexed loop (dw_krow_pair);
 *  - border pixels skip the taps outside the image and add the offset per tap;
 *  - the folded constant and the rescale come from the image's per-channel record
 *    (kcommon.h k_qout): no 64-bit arithmetic, nothing set up per call, bit-exact with
 *    mcu_mbqm;
 *  - the fused depthwise -> 1x1 path computes a pixel's depthwise channels with the same
 *    unrolled 3x3 sum where every tap is inside the image.
 * Accumulation order differs from the reference's, which is harmless: integer sums.
 */
#include "../fixedpoint.h"
#include "../mcu_internal.h"
#include "kcommon.h"

#include <string.h>

/* the largest padded plane mcu_depthwise_inplace copies a channel into (stack bytes) */
#define DW_PAD_MAX 196
/* the three padded input rows mcu_depthwise copies a one-channel input into */
#define DW_ROWS_MAX 300

typedef struct {
    const mcu_conv_params *p;
    const mcu_view *in;
    int32_t in_c, out_c, kh, kw, sw, dw, off;
    int32_t ox_lo, ox_hi; /* output columns whose taps are all inside the image */
    k_epi e;
} dw_ctx;

static void dw_ctx_init(dw_ctx *c, const mcu_conv_params *p, const mcu_view *in, int32_t out_c) {
    c->p = p;
    c->in = in;
    c->in_c = in->c;
    c->out_c = out_c;
    c->kh = p->kh;
    c->kw = p->kw;
    c->sw = p->stride_w;
    c->dw = p->dil_w;
    c->off = p->input_offset;
    c->e = k_epilogue(p->output_offset, p->act_min, p->act_max);
    k_interior(in->w, p->kw, p->stride_w, p->dil_w, p->pad_l, &c->ox_lo, &c->ox_hi);
}

/* The rescale of channel oc, out of line: it has many call sites here, and the flash
 * budget counts. */
static K_NOINLINE int8_t dw_rq(int32_t acc, const dw_ctx *c, int32_t oc) {
    return k_qout(acc, c->p->rq + oc * MCU_RQ_WORDS, &c->e);
}

/* acc of one pixel, skipping taps outside the image (no bias): sum w * x over the taps
 * inside, plus input_offset * (their sum of w). Each tap row runs the same n taps. */
static int32_t dw_border_acc(const dw_ctx *c, const k_rows *rows, int32_t ic, int32_t oc, int32_t ox) {
    const int32_t in_c = c->in_c, out_c = c->out_c, kw = c->kw, dw = c->dw;
    const int32_t ix0 = ox * c->sw - c->p->pad_l;
    int32_t kx0, kx1, nr = rows->n, s = rows->s0;
    uint32_t acc = 0, wsum = 0; /* any kernel size: wraps like the reference's int32 */
    k_cols(ix0, kw, dw, c->in->w, &kx0, &kx1);
    const int32_t n = kx1 - kx0;
    if (n <= 0 || nr <= 0) return 0;
    const int32_t xs = dw * in_c, wskip = (kw - n) * out_c;
    const int8_t *xr = rows->p0 + (ix0 + kx0 * dw) * in_c + ic;
    const int8_t *w = c->p->weights + (rows->ky0 * kw + kx0) * out_c + oc;
    for (;;) {
        const int8_t *x = xr;
        for (int32_t t = n; t > 0; t--) {
            const int32_t wv = *w;
            acc += (uint32_t)(wv * *x);
            wsum += (uint32_t)wv;
            x += xs;
            w += out_c;
        }
        if (--nr == 0) break;
        w += wskip;
        K_ROWS_NEXT(rows, xr, s);
    }
    return k_wrap(acc + (uint32_t)c->off * wsum);
}

/* The taps of output column ox inside the image: input bytes xt[t] + ic and weights
 * wt[t] + oc. Returns their count, or -1 if there are more than DW_TAPS. */
#define DW_TAPS 16
static int32_t dw_taps(const dw_ctx *c, const k_rows *rows, int32_t ox, const int8_t **xt, const int8_t **wt) {
    const int32_t in_c = c->in_c, out_c = c->out_c, kw = c->kw, dw = c->dw;
    const int32_t ix0 = ox * c->sw - c->p->pad_l;
    int32_t kx0, kx1, n = 0, s = rows->s0;
    k_cols(ix0, kw, dw, c->in->w, &kx0, &kx1);
    if (rows->n * (kx1 - kx0) > DW_TAPS) return -1;
    const int8_t *xr = rows->p0;
    const int8_t *wr = c->p->weights + rows->ky0 * kw * out_c;
    for (int32_t k = 0; k < rows->n; k++) {
        for (int32_t kx = kx0; kx < kx1; kx++, n++) {
            xt[n] = xr + (ix0 + kx * dw) * in_c;
            wt[n] = wr + kx * out_c;
        }
        wr += kw * out_c;
        K_ROWS_NEXT(rows, xr, s);
    }
    return n;
}

/* One kernel row of two neighbouring outputs: taps x[kx * c] and x[kx * c + xstep],
 * weights w[kx * c]; the index runs from -kw * c up to 0 (no counter, no bound). */
static inline void dw_krow_pair(const int8_t *x, int32_t xstep, const int8_t *w, int32_t c, int32_t kw,
                                uint32_t *pa0, uint32_t *pa1) {
    const int8_t *x0e = x + kw * c, *x1e = x0e + xstep, *we = w + kw * c;
    uint32_t a0 = *pa0, a1 = *pa1;
    for (int32_t j = -kw * c; j != 0; j += c) {
        const int32_t wv = we[j];
        a0 += (uint32_t)(wv * x0e[j]);
        a1 += (uint32_t)(wv * x1e[j]);
    }
    *pa0 = a0;
    *pa1 = a1;
}

/* One channel over output columns [c0, c1) of one output row: dst[i * step] for the
 * i-th pixel. */
static void dw_chan_row(const dw_ctx *c, const k_rows *rows, int32_t ic, int32_t oc, int32_t c0, int32_t c1,
                        int8_t *dst, int32_t step) {
    const mcu_conv_params *p = c->p;
    const int32_t bias = p->bias ? p->bias[oc] : 0;
    const int32_t in_c = c->in_c, out_c = c->out_c, kh = c->kh, kw = c->kw;
    int32_t ilo = c1, ihi = c1, ox = c0;
    if (rows->n == kh) {
        ilo = c->ox_lo < c0 ? c0 : (c->ox_lo > c1 ? c1 : c->ox_lo);
        ihi = c->ox_hi < ilo ? ilo : (c->ox_hi > c1 ? c1 : c->ox_hi);
    }
    for (; ox < ilo; ox++, dst += step)
        *dst = dw_rq(k_add(dw_border_acc(c, rows, ic, oc, ox), bias), c, oc);

    if (ox < ihi) {
        const int8_t *w0 = p->weights + oc;
        const int32_t kfold = p->rq[oc * MCU_RQ_WORDS]; /* bias + input_offset * sum(w) */
        const int32_t xstep = c->sw * in_c; /* bytes between neighbouring outputs' windows */
        const int32_t dstep = c->dw * in_c; /* bytes between taps of a kernel row */
        const int8_t *xo = rows->p0 + (ox * c->sw - p->pad_l) * in_c + ic; /* tap (0, 0) of pixel ox */

        if (kh == 3 && kw == 3) {
            const int8_t *ra = xo, *rb, *rc;
            int32_t s = rows->s0;
            K_ROWS_NEXT(rows, xo, s);
            rb = xo;
            K_ROWS_NEXT(rows, xo, s);
            rc = xo;
            const int32_t w00 = w0[0], w01 = w0[out_c], w02 = w0[2 * out_c];
            const int8_t *wm = w0 + 3 * out_c;
            const int8_t *wl = w0 + 6 * out_c;
            if (c->sw == 1 && c->dw == 1) {
                /* pairs: the two windows share columns 1 and 2 of theirs */
                for (; ox + 2 <= ihi; ox += 2) {
                    int32_t a0, a1, x0, x1, x2, x3, wv;
                    x0 = ra[0], x1 = ra[in_c], x2 = ra[2 * in_c], x3 = ra[3 * in_c];
                    a0 = w00 * x0 + w01 * x1 + w02 * x2;
                    a1 = w00 * x1 + w01 * x2 + w02 * x3;
                    x0 = rb[0], x1 = rb[in_c], x2 = rb[2 * in_c], x3 = rb[3 * in_c];
                    wv = wm[0];
                    a0 += wv * x0;
                    a1 += wv * x1;
                    wv = wm[out_c];
                    a0 += wv * x1;
                    a1 += wv * x2;
                    wv = wm[2 * out_c];
                    a0 += wv * x2;
                    a1 += wv * x3;
                    x0 = rc[0], x1 = rc[in_c], x2 = rc[2 * in_c], x3 = rc[3 * in_c];
                    wv = wl[0];
                    a0 += wv * x0;
                    a1 += wv * x1;
                    wv = wl[out_c];
                    a0 += wv * x1;
                    a1 += wv * x2;
                    wv = wl[2 * out_c];
                    a0 += wv * x2;
                    a1 += wv * x3;
                    dst[0] = dw_rq(k_add(a0, kfold), c, oc);
                    dst[step] = dw_rq(k_add(a1, kfold), c, oc);
                    dst += 2 * step;
                    ra += 2 * in_c;
                    rb += 2 * in_c;
                    rc += 2 * in_c;
                }
            }
            for (; ox < ihi; ox++, dst += step) {
                int32_t a = w00 * ra[0] + w01 * ra[dstep] + w02 * ra[2 * dstep];
                a += wm[0] * rb[0] + wm[out_c] * rb[dstep] + wm[2 * out_c] * rb[2 * dstep];
                a += wl[0] * rc[0] + wl[out_c] * rc[dstep] + wl[2 * out_c] * rc[2 * dstep];
                *dst = dw_rq(k_add(a, kfold), c, oc);
                ra += xstep;
                rb += xstep;
                rc += xstep;
            }
        } else {
            /* any kernel: two pixels at a time, each weight loaded once for both */
            for (; ox + 2 <= ihi; ox += 2) {
                int32_t s = rows->s0;
                uint32_t a0 = 0, a1 = 0; /* any kernel size: wraps like the reference's int32 */
                const int8_t *xr = xo;
                const int8_t *w = w0;
                for (int32_t k = 0; k < kh; k++) {
                    if (dstep == out_c) { /* multiplier 1, dilation 1: one index for both */
                        dw_krow_pair(xr, xstep, w, out_c, kw, &a0, &a1);
                        w += kw * out_c;
                    } else {
                        const int8_t *x = xr;
                        for (int32_t kx = 0; kx < kw; kx++) {
                            int32_t wv = *w;
                            a0 += (uint32_t)(wv * x[0]);
                            a1 += (uint32_t)(wv * x[xstep]);
                            x += dstep;
                            w += out_c;
                        }
                    }
                    K_ROWS_NEXT(rows, xr, s);
                }
                dst[0] = dw_rq(k_wrap(a0 + (uint32_t)kfold), c, oc);
                dst[step] = dw_rq(k_wrap(a1 + (uint32_t)kfold), c, oc);
                dst += 2 * step;
                xo += 2 * xstep;
            }
            for (; ox < ihi; ox++, dst += step) {
                int32_t s = rows->s0;
                uint32_t a = 0;
                const int8_t *xr = xo;
                const int8_t *w = w0;
                for (int32_t k = 0; k < kh; k++) {
                    const int8_t *x = xr;
                    for (int32_t kx = 0; kx < kw; kx++) {
                        a += (uint32_t)(*w * *x);
                        x += dstep;
                        w += out_c;
                    }
                    K_ROWS_NEXT(rows, xr, s);
                }
                *dst = dw_rq(k_wrap(a + (uint32_t)kfold), c, oc);
                xo += xstep;
            }
        }
    }
    for (; ox < c1; ox++, dst += step)
        *dst = dw_rq(k_add(dw_border_acc(c, rows, ic, oc, ox), bias), c, oc);
}

/* 3x3 kernels over a uint8 copy of the input holding x + 128 (immediate-offset loads, no
 * sign extension), padded with -input_offset + 128 so a padded tap adds nothing:
 * dw3u_weights puts channel oc's taps in wk and returns its constant
 * bias + input_offset * sum(w) - 128 * sum(w); dw3u_row makes n outputs dst[i * dstep]
 * from rows r, r + rs, r + 2 * rs, input column i * sw. */
static uint32_t dw3u_weights(const mcu_conv_params *p, int32_t oc, int32_t out_c, int32_t *wk) {
    const int8_t *wt = p->weights + oc;
    uint32_t k0 = (uint32_t)p->rq[oc * MCU_RQ_WORDS];
    for (int32_t k = 0; k < 9; k++, wt += out_c) {
        wk[k] = *wt;
        k0 -= 128u * (uint32_t)wk[k];
    }
    return k0;
}

static void dw3u_row(const dw_ctx *c, const uint8_t *r, int32_t rs, int32_t sw, int32_t n, const int32_t *wk,
                     uint32_t k0, int32_t oc, int8_t *dst, int32_t dstep) {
    for (; n > 0; n--, r += sw, dst += dstep) {
        uint32_t a = k0;
        a += (uint32_t)(wk[0] * r[0] + wk[1] * r[1] + wk[2] * r[2]);
        a += (uint32_t)(wk[3] * r[rs] + wk[4] * r[rs + 1] + wk[5] * r[rs + 2]);
        a += (uint32_t)(wk[6] * r[2 * rs] + wk[7] * r[2 * rs + 1] + wk[8] * r[2 * rs + 2]);
        *dst = dw_rq(k_wrap(a), c, oc);
    }
}

void mcu_depthwise(const mcu_conv_params *p, const mcu_view *in, const mcu_view *out, int32_t r0, int32_t r1,
                   int32_t c0, int32_t c1) {
    dw_ctx c;
    const int32_t m = p->depth_multiplier;
    if (r1 <= r0 || c1 <= c0) return;
    dw_ctx_init(&c, p, in, out->c);
    const int32_t nw = (c1 - c0 - 1) * c.sw + 3; /* input columns of the outputs c0..c1 */
    if (c.in_c == 1 && c.kh == 3 && c.kw == 3 && c.dw == 1 && p->dil_h == 1 && 3 * nw <= DW_ROWS_MAX &&
        c.off >= -127 && c.off <= 128) {
        /* one input channel (a model's first layer): the three input rows of an output row
         * copied once as x + 128, padded, then every output channel from the copy */
        uint8_t buf[DW_ROWS_MAX];
        const int32_t ix0 = c0 * c.sw - p->pad_l;
        for (int32_t oy = r0; oy < r1; oy++) {
            int8_t *orow = mcu_row(out, oy) + c0 * c.out_c;
            for (int32_t k = 0; k < 3; k++) {
                const int32_t iy = oy * p->stride_h - p->pad_t + k;
                const int8_t *x = iy >= 0 && iy < in->h ? mcu_row(in, iy) : 0;
                uint8_t *d = buf + k * nw;
                for (int32_t i = 0; i < nw; i++) {
                    const int32_t ix = ix0 + i;
                    d[i] = (uint8_t)((x && ix >= 0 && ix < in->w ? x[ix] : -c.off) + 128);
                }
            }
            for (int32_t oc = 0; oc < c.out_c; oc++) {
                int32_t wk[9];
                const uint32_t k0 = dw3u_weights(p, oc, c.out_c, wk);
                dw3u_row(&c, buf, nw, c.sw, c1 - c0, wk, k0, oc, orow + oc, c.out_c);
            }
        }
        return;
    }
    for (int32_t oy = r0; oy < r1; oy++) {
        k_rows rows;
        int8_t *orow = mcu_row(out, oy) + c0 * c.out_c;
        k_rows_init(&rows, in, oy * p->stride_h - p->pad_t, c.kh, p->dil_h);
        int32_t oc = 0;
        for (int32_t ic = 0; ic < c.in_c; ic++)
            for (int32_t j = 0; j < m; j++, oc++) dw_chan_row(&c, &rows, ic, oc, c0, c1, orow + oc, c.out_c);
    }
}

void mcu_depthwise_inplace(const mcu_conv_params *p, const mcu_view *io, int32_t oh, int32_t ow, int8_t *plane) {
    dw_ctx c;
    const int32_t ch = io->c, npix = oh * ow;
    const int32_t sh = p->stride_h, sw = p->stride_w;
    const int32_t hp = (oh - 1) * sh + 3, wp = (ow - 1) * sw + 3;
    if (p->kh == 3 && p->kw == 3 && p->dil_h == 1 && p->dil_w == 1 && oh > 0 && ow > 0 && !io->cap && !io->col0 &&
        hp * wp <= DW_PAD_MAX && p->pad_t >= 0 && p->pad_l >= 0 && p->input_offset >= -127 &&
        p->input_offset <= 128) {
        /* Small maps (the layer-by-layer tail), 3x3 kernels: each channel's plane goes into
         * a padded copy whose padding holds -input_offset, so a padded tap adds
         * (x + off) * w = 0 and every output is bias + off * sum(w) (kfold) + sum w * x.
         * The copy holds x + 128 as uint8 (immediate-offset loads, no sign extension), and
         * kfold - 128 * sum(w) makes up for it. */
        uint8_t pad[DW_PAD_MAX];
        const int32_t h = io->h, w = io->w, pl = p->pad_l;
        dw_ctx_init(&c, p, io, ch);
        memset(pad, (uint8_t)(128 - p->input_offset), (size_t)(hp * wp));
        for (int32_t ci = 0; ci < ch; ci++) {
            const int8_t *src = io->base + ci;
            int32_t wk[9];
            const uint32_t k0 = dw3u_weights(p, ci, ch, wk);
            for (int32_t y = 0; y < h; y++) {
                const int32_t py = y + p->pad_t;
                if (py >= hp) break;
                uint8_t *d = pad + py * wp + pl;
                const int32_t n = w < wp - pl ? w : wp - pl;
                const int8_t *sp = src + y * io->stride;
                for (int32_t x = 0; x < n; x++, sp += ch) d[x] = (uint8_t)(*sp + 128);
            }
            for (int32_t oy = 0; oy < oh; oy++)
                dw3u_row(&c, pad + oy * sh * wp, wp, sw, ow, wk, k0, ci, plane + oy * ow, 1);
            int8_t *o = io->base + ci;
            for (int32_t i = 0; i < npix; i++, o += ch) *o = plane[i];
        }
        return;
    }
    dw_ctx_init(&c, p, io, ch);
    /* Output channel ch_i reads only input channel ch_i, and writes only the bytes
     * p * ch + ch_i (p < oh * ow <= h * w), which hold input channel ch_i: once its plane
     * is made, that channel of the input is dead and can be overwritten. */
    for (int32_t ci = 0; ci < ch; ci++) {
        for (int32_t oy = 0; oy < oh; oy++) {
            k_rows rows;
            k_rows_init(&rows, io, oy * p->stride_h - p->pad_t, c.kh, p->dil_h);
            dw_chan_row(&c, &rows, ci, ci, 0, ow, plane + oy * ow, 1);
        }
        int8_t *o = io->base + ci;
        for (int32_t i = 0; i < npix; i++, o += ch) *o = plane[i];
    }
}

/* The depthwise pixel of an interior output (every tap inside the image) of a 3x3 kernel
 * with depth multiplier 1, all C channels: ra, rb, rc are its kernel rows at tap (k, 0)
 * channel 0, d the bytes between taps of a row. */
static void dw3_pixel(const dw_ctx *c, const int8_t *ra, const int8_t *rb, const int8_t *rc, int32_t d,
                      int8_t *out) {
    const int32_t C = c->out_c;
    const int8_t *w = c->p->weights;
    for (int32_t ch = 0; ch < C; ch++, w++) {
        int32_t a = w[0] * ra[ch] + w[C] * ra[ch + d] + w[2 * C] * ra[ch + 2 * d];
        a += w[3 * C] * rb[ch] + w[4 * C] * rb[ch + d] + w[5 * C] * rb[ch + 2 * d];
        a += w[6 * C] * rc[ch] + w[7 * C] * rc[ch + d] + w[8 * C] * rc[ch + 2 * d];
        out[ch] = dw_rq(k_add(a, c->p->rq[ch * MCU_RQ_WORDS]), c, ch);
    }
}

void mcu_depthwise_pointwise(const mcu_conv_params *dw, const mcu_conv_params *pw, const mcu_view *in,
                             int32_t mid_c, const mcu_view *out, int8_t *pixel, int32_t r0, int32_t r1, int32_t c0,
                             int32_t c1) {
    dw_ctx c;
    const int32_t m = dw->depth_multiplier, oc_n = out->c;
    const k_epi pe = k_epilogue(pw->output_offset, pw->act_min, pw->act_max);
    if (r1 <= r0 || c1 <= c0) return;
    dw_ctx_init(&c, dw, in, mid_c);
    const int fast3 = c.kh == 3 && c.kw == 3 && m == 1;
    const int32_t d = c.dw * c.in_c, xstep = c.sw * c.in_c;
    for (int32_t oy = r0; oy < r1; oy++) {
        k_rows rows;
        int8_t *o = mcu_row(out, oy) + c0 * oc_n;
        k_rows_init(&rows, in, oy * dw->stride_h - dw->pad_t, c.kh, dw->dil_h);
        const int8_t *ra = rows.p0, *rb = ra, *rc = ra;
        if (fast3 && rows.n == 3) {
            int32_t s = rows.s0;
            K_ROWS_NEXT(&rows, rb, s);
            rc = rb;
            K_ROWS_NEXT(&rows, rc, s);
        }
        for (int32_t ox = c0; ox < c1; ox++, o += oc_n) {
            const int8_t *xt[DW_TAPS], *wt[DW_TAPS];
            int32_t nt;
            /* the depthwise pixel, every channel, requantized as the unfused op does */
            if (fast3 && rows.n == 3 && ox >= c.ox_lo && ox < c.ox_hi) {
                const int32_t xo = ox * xstep - dw->pad_l * c.in_c;
                dw3_pixel(&c, ra + xo, rb + xo, rc + xo, d, pixel);
            } else if ((nt = dw_taps(&c, &rows, ox, xt, wt)) >= 0) {
                /* a border pixel: its taps inside the image found once, for every channel */
                int32_t mc = 0;
                for (int32_t ic = 0; ic < c.in_c; ic++)
                    for (int32_t j = 0; j < m; j++, mc++) {
                        uint32_t a = dw->bias ? (uint32_t)dw->bias[mc] : 0u; /* any bias: wraps */
                        for (int32_t t = 0; t < nt; t++) a += (uint32_t)((xt[t][ic] + c.off) * wt[t][mc]);
                        pixel[mc] = dw_rq(k_wrap(a), &c, mc);
                    }
            } else {
                int32_t mc = 0;
                for (int32_t ic = 0; ic < c.in_c; ic++)
                    for (int32_t j = 0; j < m; j++, mc++)
                        pixel[mc] = dw_rq(k_add(dw_border_acc(&c, &rows, ic, mc, ox), dw->bias ? dw->bias[mc] : 0),
                                          &c, mc);
            }
            /* the 1x1 conv of that pixel */
            mcu_pw_pixel(pw, pixel, mid_c, oc_n, &pe, o);
        }
    }
}
