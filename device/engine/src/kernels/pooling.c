/* AVERAGE_POOL_2D and MAX_POOL_2D, int8 (reference_integer_ops::AveragePool / MaxPool).
 *
 * Taps outside the image are skipped; the average divides the sum of the in-image taps
 * by their count, rounding half away from zero (C's truncating division of
 * sum +/- count / 2); the max starts from -128, the least int8 value, which every tap is
 * at least. Both clamp to the activation range. Rows are found once per output row.
 */
#include "../fixedpoint.h"
#include "../mcu_internal.h"
#include "kcommon.h"

void mcu_pool(const mcu_pool_params *p, const mcu_view *in, const mcu_view *out, int32_t r0, int32_t r1,
              int32_t c0, int32_t c1) {
    const int32_t ch = in->c, kh = p->filter_h, kw = p->filter_w;
    const int32_t lo = p->act_min, hi = p->act_max;
    if (r1 <= r0 || c1 <= c0) return;
    for (int32_t oy = r0; oy < r1; oy++) {
        k_rows rows;
        int8_t *o = mcu_row(out, oy) + c0 * ch;
        k_rows_init(&rows, in, oy * p->stride_h - p->pad_t, kh, 1);
        for (int32_t ox = c0; ox < c1; ox++, o += ch) {
            const int32_t ix0 = ox * p->stride_w - p->pad_l;
            int32_t kx0, kx1;
            k_cols(ix0, kw, 1, in->w, &kx0, &kx1);
            const int32_t count = rows.n * (kx1 - kx0);
            const int32_t xoff = (ix0 + kx0) * ch;
            const int32_t nx = kx1 - kx0;
            for (int32_t c = 0; c < ch; c++) {
                const int8_t *xr = rows.p0 + xoff + c;
                int32_t s = rows.s0, v;
                if (p->is_max) {
                    v = -128;
                    for (int32_t k = 0; k < rows.n; k++) {
                        const int8_t *x = xr;
                        for (int32_t i = 0; i < nx; i++, x += ch)
                            if (*x > v) v = *x;
                        K_ROWS_NEXT(&rows, xr, s);
                    }
                } else {
                    int32_t sum = 0;
                    for (int32_t k = 0; k < rows.n; k++) {
                        const int8_t *x = xr;
                        for (int32_t i = 0; i < nx; i++, x += ch) sum += *x;
                        K_ROWS_NEXT(&rows, xr, s);
                    }
                    /* count >= 1: a window wholly in the padding is refused on the host */
                    if (count > 0)
                        v = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                    else
                        v = 0;
                }
                o[c] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
            }
        }
    }
}
