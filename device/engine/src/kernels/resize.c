/* RESIZE_NEAREST_NEIGHBOR: a gather (reference_ops::ResizeNearestNeighbor). The host
 * computes each output row's and column's source (in_y[out_h], in_x[out_w]); the output
 * takes the input's raw bytes. */
#include <string.h>

#include "../mcu_internal.h"

void mcu_resize_nearest(const int32_t *in_y, const int32_t *in_x, const mcu_view *in, const mcu_view *out) {
    const int32_t ch = out->c;
    for (int32_t y = 0; y < out->h; y++) {
        const int8_t *src = mcu_row(in, in_y[y]);
        int8_t *dst = mcu_row(out, y);
        if (ch == 1) {
            for (int32_t x = 0; x < out->w; x++) dst[x] = src[in_x[x]];
        } else {
            for (int32_t x = 0; x < out->w; x++) memcpy(dst + x * ch, src + in_x[x] * ch, (size_t)ch);
        }
    }
}
