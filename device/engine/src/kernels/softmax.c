/* SOFTMAX, int8 in, int8 or int16 out (reference_ops::Softmax, TFLM), a port of
 * host/mcutool/ref/softmax.py: per row, exp of (x - max) in Q5.26 through gemmlowp's
 * exp_on_negative_values, summed in Q12.19, GetReciprocal, then one rescale per output.
 * The exps are recomputed in the second pass (as TFLM does) instead of kept: no scratch.
 */
#include "../fixedpoint.h"
#include "../mcu_internal.h"
#include "kcommon.h"
#include "kgemmlowp.h"

#define SCALED_DIFF_INTEGER_BITS 5
#define ACCUMULATION_INTEGER_BITS 12

/* exp(diff) in Q0.31: MultiplyByQuantizedMultiplierGreaterThanOne, then exp. */
static int32_t softmax_exp(const mcu_softmax_params *p, int32_t diff) {
    const int32_t rescaled = mcu_srdhm(k_wrap((uint32_t)diff << p->input_left_shift), p->input_multiplier);
    return gl_exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS);
}

void mcu_softmax(const mcu_softmax_params *p, const int8_t *in, int32_t outer, int32_t depth, void *out) {
    const int32_t lo = p->out_int16 ? -32768 : -128, hi = p->out_int16 ? 32767 : 127;
    const int out_bits = p->out_int16 ? 16 : 8;
    int8_t *o8 = (int8_t *)out;
    int16_t *o16 = (int16_t *)out;
    for (int32_t r = 0; r < outer; r++, in += depth) {
        int32_t max_in_row = -128;
        uint32_t sum = 0;
        int num_bits_over_unit, exponent;
        for (int32_t i = 0; i < depth; i++)
            if (in[i] > max_in_row) max_in_row = in[i];
        for (int32_t i = 0; i < depth; i++) {
            const int32_t diff = in[i] - max_in_row;
            if (diff >= p->diff_min)
                sum += (uint32_t)gl_rescale(softmax_exp(p, diff), 0, ACCUMULATION_INTEGER_BITS);
        }
        const int32_t shifted_scale = gl_get_reciprocal(k_wrap(sum), ACCUMULATION_INTEGER_BITS, &num_bits_over_unit);
        exponent = num_bits_over_unit + 31 - out_bits;
        /* the host refuses rows whose exponent leaves [0, 31] (TFLITE_CHECK in TFLM);
         * clamp so that such a row cannot shift out of range here */
        if (exponent < 0) exponent = 0;
        if (exponent > 31) exponent = 31;
        for (int32_t i = 0; i < depth; i++) {
            const int32_t diff = in[i] - max_in_row;
            int32_t v = lo;
            if (diff >= p->diff_min) {
                v = mcu_rdbpot(mcu_srdhm(shifted_scale, softmax_exp(p, diff)), exponent);
                /* clamp(v + lo, lo, hi), without overflow */
                v = (v < 0 ? 0 : (v > hi - lo ? hi - lo : v)) + lo;
            }
            if (p->out_int16)
                o16[r * depth + i] = (int16_t)v;
            else
                o8[r * depth + i] = (int8_t)v;
        }
    }
}
