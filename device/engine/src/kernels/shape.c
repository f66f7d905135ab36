/* Data movement of whole tensors: TRANSPOSE, PAD, and plain copies (RESHAPE, pieces of a
 * CONCATENATION). Ranks up to K_MAX_RANK (TFLite's reference kernels take up to 5-6). */
#include <string.h>

#include "../mcu_internal.h"

#define K_MAX_RANK 8

void mcu_transpose(const int32_t *perm, int32_t rank, const int32_t *in_shape, const int8_t *in, int8_t *out) {
    int32_t in_st[K_MAX_RANK], os[K_MAX_RANK], st[K_MAX_RANK], idx[K_MAX_RANK];
    int32_t total = 1, acc = 1;
    if (rank <= 0) {
        out[0] = in[0];
        return;
    }
    if (rank > K_MAX_RANK) return;
    for (int32_t d = rank - 1; d >= 0; d--) {
        in_st[d] = acc;
        acc *= in_shape[d];
    }
    for (int32_t d = 0; d < rank; d++) {
        os[d] = in_shape[perm[d]]; /* output dim d walks input dim perm[d] */
        st[d] = in_st[perm[d]];
        idx[d] = 0;
        total *= os[d];
    }
    if (total == 0) return;
    /* odometer over the output; the innermost output dim in a tight loop */
    const int32_t inner = os[rank - 1], ist = st[rank - 1];
    const int8_t *src = in;
    for (int32_t done = 0; done < total; done += inner) {
        const int8_t *s = src;
        for (int32_t i = 0; i < inner; i++, s += ist) *out++ = *s;
        for (int32_t d = rank - 2; d >= 0; d--) {
            src += st[d];
            if (++idx[d] < os[d]) break;
            src -= st[d] * os[d];
            idx[d] = 0;
        }
    }
}

void mcu_pad(const int32_t (*pads)[2], int32_t rank, const int32_t *in_shape, int8_t value, const int8_t *in,
             int8_t *out) {
    int32_t os[K_MAX_RANK], ost[K_MAX_RANK], idx[K_MAX_RANK];
    int32_t total = 1, acc = 1, in_total = 1;
    if (rank <= 0) {
        out[0] = in[0];
        return;
    }
    if (rank > K_MAX_RANK) return;
    for (int32_t d = 0; d < rank; d++) {
        os[d] = pads[d][0] + in_shape[d] + pads[d][1];
        total *= os[d];
        in_total *= in_shape[d];
        idx[d] = 0;
    }
    for (int32_t d = rank - 1; d >= 0; d--) {
        ost[d] = acc;
        acc *= os[d];
    }
    memset(out, value, (size_t)total);
    if (in_total == 0) return;
    /* copy the input's innermost rows into place */
    const int32_t inner = in_shape[rank - 1];
    int8_t *dst = out;
    for (int32_t d = 0; d < rank; d++) dst += pads[d][0] * ost[d];
    for (int32_t done = 0; done < in_total; done += inner) {
        memcpy(dst, in, (size_t)inner);
        in += inner;
        for (int32_t d = rank - 2; d >= 0; d--) {
            dst += ost[d];
            if (++idx[d] < in_shape[d]) break;
            dst -= ost[d] * in_shape[d];
            idx[d] = 0;
        }
    }
}

void mcu_copy(const int8_t *in, int8_t *out, int32_t n) {
    if (n > 0 && in != out) memmove(out, in, (size_t)n);
}
