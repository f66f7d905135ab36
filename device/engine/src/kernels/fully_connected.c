/* FULLY_CONNECTED (reference_integer_ops::FullyConnected): out[r][u] =
 * requant(sum_d w[u][d] * (in[r][d] + input_offset) + bias[u]).
 *
 * Units go 4 at a time so each input byte (offset added once) feeds four MACs. The
 * input offset is not folded into a per-unit constant here: an FC usually runs on one
 * row, so computing sum(w) per call would cost as much as the product itself.
 * single_rounding picks LiteRT's MultiplyByQuantizedMultiplier (one rounding) over TFLM's.
 */
#include "../fixedpoint.h"
#include "../mcu_internal.h"
#include "kcommon.h"

static int8_t fc_out(const mcu_fc_params *p, const k_epi *e, int32_t acc, int32_t u) {
    int32_t v;
    acc = k_add(acc, p->bias ? p->bias[u] : 0);
    v = p->single_rounding ? mcu_mbqm_single(acc, p->multiplier[u], p->shift[u])
                           : mcu_rq_slow(acc, p->multiplier[u], p->shift[u]);
    v = v < e->lo ? e->lo : (v > e->hi ? e->hi : v);
    return (int8_t)(v + e->offset);
}

void mcu_fully_connected(const mcu_fc_params *p, const int8_t *in, int32_t rows, int8_t *out) {
    const int32_t depth = p->depth, units = p->units, off = p->input_offset;
    const k_epi e = k_epilogue(p->output_offset, p->act_min, p->act_max);
    for (int32_t r = 0; r < rows; r++, in += depth, out += units) {
        int32_t u = 0;
        for (; u + 4 <= units; u += 4) {
            int32_t acc[4] = {0, 0, 0, 0};
            k_dot4_off(in, p->weights + u * depth, depth, depth, off, acc);
            for (int32_t j = 0; j < 4; j++) out[u + j] = fc_out(p, &e, acc[j], u + j);
        }
        for (; u < units; u++) out[u] = fc_out(p, &e, k_dot1(in, p->weights + u * depth, depth, off), u);
    }
}
