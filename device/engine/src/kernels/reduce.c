/* MEAN, int8 (reference_ops::QuantizedMeanOrSum as TFLM runs it), a port of
 * host/mcutool/ref/reduce.py. The host folds 1/num_elements_in_axis into the multiplier;
 * here: an int32 (wrapping) sum over the reduced axes, minus input_zero_point * n, the
 * rescale, the output zero point (wrapping), and a clamp to int8.
 *
 * The input is rank 4 (its shape padded with leading 1s); p->axes index that rank-4
 * shape. The output holds the kept dimensions in order (size-1 reduced ones dropped or
 * kept makes no difference to the bytes).
 */
#include "../fixedpoint.h"
#include "../mcu_internal.h"
#include "kcommon.h"

void mcu_mean(const mcu_mean_params *p, const int8_t *in, const int32_t *shape, int8_t *out) {
    int32_t kept[4], red[4], st[4];
    int32_t acc = 1;
    for (int d = 0; d < 4; d++) {
        int is_axis = 0;
        for (int32_t a = 0; a < p->n_axes; a++)
            if (p->axes[a] == d) is_axis = 1;
        kept[d] = is_axis ? 1 : shape[d];
        red[d] = is_axis ? shape[d] : 1;
    }
    for (int d = 3; d >= 0; d--) {
        st[d] = acc;
        acc *= shape[d];
    }
    if (p->empty || p->num_elements_in_axis == 0) {
        const int32_t n = kept[0] * kept[1] * kept[2] * kept[3];
        for (int32_t i = 0; i < n; i++) out[i] = 0;
        return;
    }
    const uint32_t zp_n = (uint32_t)p->input_zero_point * (uint32_t)p->num_elements_in_axis;
    for (int32_t a0 = 0; a0 < kept[0]; a0++)
        for (int32_t a1 = 0; a1 < kept[1]; a1++)
            for (int32_t a2 = 0; a2 < kept[2]; a2++)
                for (int32_t a3 = 0; a3 < kept[3]; a3++) {
                    const int8_t *base = in + a0 * st[0] + a1 * st[1] + a2 * st[2] + a3 * st[3];
                    uint32_t sum = 0;
                    for (int32_t b0 = 0; b0 < red[0]; b0++)
                        for (int32_t b1 = 0; b1 < red[1]; b1++)
                            for (int32_t b2 = 0; b2 < red[2]; b2++) {
                                const int8_t *x = base + b0 * st[0] + b1 * st[1] + b2 * st[2];
                                for (int32_t b3 = 0; b3 < red[3]; b3++) {
                                    const int32_t xv = x[b3 * st[3]];
                                    sum += (uint32_t)xv;
                                }
                            }
                    int32_t v = k_mbqm(k_wrap(sum - zp_n), p->multiplier, p->shift);
                    v = k_add(v, p->output_zero_point);
                    *out++ = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
                }
}
