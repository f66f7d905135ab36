/* Internal interfaces of the engine: buffer views, per-op parameter structs, kernels.
 *
 * Kernels compute a window of their output (rows [r0, r1) x columns [c0, c1)) from views
 * of their inputs. A view is a tensor as one buffer of the arena holds it: all rows
 * (FULL) or a ring of `cap` rows where logical row y sits in slot y % cap, and columns
 * from `col0` on. Border taps outside the tensor are skipped, exactly as TFLite's
 * reference kernels skip padding.
 */
#ifndef MCU_INTERNAL_H
#define MCU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mcunet.h"

/* Op codes of the image (host/mcutool/ops.py). */
enum {
    MCU_OP_CONV_2D = 1, MCU_OP_DEPTHWISE_CONV_2D = 2, MCU_OP_FULLY_CONNECTED = 3, MCU_OP_ADD = 4,
    MCU_OP_MUL = 5, MCU_OP_AVERAGE_POOL_2D = 6, MCU_OP_MAX_POOL_2D = 7, MCU_OP_MEAN = 8, MCU_OP_PAD = 9,
    MCU_OP_RESHAPE = 10, MCU_OP_SOFTMAX = 11, MCU_OP_TRANSPOSE = 12, MCU_OP_QUANTIZE = 13,
    MCU_OP_DEQUANTIZE = 14, MCU_OP_CONCATENATION = 15, MCU_OP_LOGISTIC = 16, MCU_OP_HARD_SWISH = 17,
    MCU_OP_RESIZE_NEAREST_NEIGHBOR = 18, MCU_OP_COUNT = 19
};

typedef struct {
    int8_t *base;
    int32_t cap;    /* rows held in a ring; 0: every row (a FULL buffer) */
    int32_t stride; /* bytes per held row */
    int32_t col0;   /* first column held */
    int32_t h, w, c;
} mcu_view;

/* Address of pixel (y, x) of a view. Kernels hoist the row part out of inner loops. */
static inline int8_t *mcu_row(const mcu_view *v, int32_t y) {
    return v->base + (v->cap ? (int32_t)((uint32_t)y % (uint32_t)v->cap) : y) * v->stride - v->col0 * v->c;
}
static inline int8_t *mcu_px(const mcu_view *v, int32_t y, int32_t x) {
    return mcu_row(v, y) + x * v->c;
}

typedef struct {
    int32_t stride_h, stride_w, dil_h, dil_w;
    int32_t pad_t, pad_l, pad_b, pad_r;
    int32_t depth_multiplier; /* 1 for CONV_2D */
    int32_t input_offset, output_offset, act_min, act_max;
    int32_t kh, kw;        /* from the weights' shape */
    const int8_t *weights; /* CONV_2D: OHWI; DEPTHWISE: 1HWO */
    const int32_t *bias;   /* or NULL */
    const int32_t *rq;     /* MCU_RQ_WORDS per output channel (kcommon.h k_qv) */
} mcu_conv_params;
#define MCU_RQ_WORDS 4

typedef struct {
    int32_t input_offset, output_offset, act_min, act_max;
    const int32_t *multiplier, *shift; /* per unit (one entry repeated if per-tensor) */
    int32_t single_rounding;           /* 1: LiteRT's rounding; 0: TFLM's (gemmlowp) */
    const int8_t *weights;             /* [units][depth] */
    const int32_t *bias;
    int32_t units, depth;
} mcu_fc_params;

typedef struct {
    int32_t input1_offset, input2_offset, output_offset, left_shift;
    int32_t input1_multiplier, input1_shift, input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift, act_min, act_max;
} mcu_add_params;

typedef struct {
    int32_t input1_offset, input2_offset, output_offset;
    int32_t output_multiplier, output_shift, act_min, act_max;
} mcu_mul_params;

typedef struct {
    int32_t pad_t, pad_l, pad_b, pad_r, filter_h, filter_w, stride_h, stride_w, act_min, act_max;
    int32_t is_max;
} mcu_pool_params;

typedef struct {
    int32_t input_zero_point, output_zero_point, multiplier, shift;
} mcu_requant_params; /* QUANTIZE int8 -> int8 */

typedef struct {
    int32_t input_multiplier, input_left_shift, diff_min, out_int16;
} mcu_softmax_params;

typedef struct {
    int32_t axes[4], n_axes, num_elements_in_axis, input_zero_point, output_zero_point, multiplier, shift, empty;
} mcu_mean_params;

typedef struct {
    int32_t input_zero_point, input_range_radius, input_multiplier, input_left_shift;
} mcu_logistic_params;

typedef struct {
    int32_t input_zero_point, output_zero_point;
    int32_t output_multiplier_fixedpoint_int16, output_multiplier_exponent;
    int32_t reluish_multiplier_fixedpoint_int16, reluish_multiplier_exponent;
} mcu_hard_swish_params;

/* ---- kernels: one family a file under src/kernels/ ------------------------------------ */

/* conv.c: any CONV_2D, output window of `out` from `in`. */
void mcu_conv2d(const mcu_conv_params *p, const mcu_view *in, const mcu_view *out,
                int32_t r0, int32_t r1, int32_t c0, int32_t c1);
/* pointwise.c: CONV_2D with a 1x1 kernel, stride 1 (no padding): the fast path. */
void mcu_pointwise(const mcu_conv_params *p, const mcu_view *in, const mcu_view *out,
                   int32_t r0, int32_t r1, int32_t c0, int32_t c1);
/* depthwise.c */
void mcu_depthwise(const mcu_conv_params *p, const mcu_view *in, const mcu_view *out,
                   int32_t r0, int32_t r1, int32_t c0, int32_t c1);
/* The whole depthwise op writing over its own input (depth multiplier 1): channel by
 * channel through `plane` (out_h * out_w bytes). `io` views the input; the output shares
 * its bytes with shape oh x ow x c. */
void mcu_depthwise_inplace(const mcu_conv_params *p, const mcu_view *io, int32_t oh, int32_t ow, int8_t *plane);
/* A depthwise conv feeding a 1x1 conv, pixel by pixel: the depthwise output of one pixel
 * (all its channels) goes to `pixel` and straight into the 1x1 conv. */
void mcu_depthwise_pointwise(const mcu_conv_params *dw, const mcu_conv_params *pw, const mcu_view *in,
                             int32_t mid_c, const mcu_view *out, int8_t *pixel,
                             int32_t r0, int32_t r1, int32_t c0, int32_t c1);
/* fully_connected.c: rows x depth input, rows x units output (flat). */
void mcu_fully_connected(const mcu_fc_params *p, const int8_t *in, int32_t rows, int8_t *out);
/* pooling.c */
void mcu_pool(const mcu_pool_params *p, const mcu_view *in, const mcu_view *out,
              int32_t r0, int32_t r1, int32_t c0, int32_t c1);
/* elementwise.c: same-shape windows (every view has the output's h, w, c). */
void mcu_add(const mcu_add_params *p, const mcu_view *a, const mcu_view *b, const mcu_view *out,
             int32_t r0, int32_t r1, int32_t c0, int32_t c1);
void mcu_mul(const mcu_mul_params *p, const mcu_view *a, const mcu_view *b, const mcu_view *out,
             int32_t r0, int32_t r1, int32_t c0, int32_t c1);
void mcu_requantize(const mcu_requant_params *p, const mcu_view *in, const mcu_view *out,
                    int32_t r0, int32_t r1, int32_t c0, int32_t c1);
void mcu_logistic(const mcu_logistic_params *p, const mcu_view *in, const mcu_view *out,
                  int32_t r0, int32_t r1, int32_t c0, int32_t c1);
void mcu_hard_swish(const mcu_hard_swish_params *p, const mcu_view *in, const mcu_view *out,
                    int32_t r0, int32_t r1, int32_t c0, int32_t c1);
/* Broadcasting ADD/MUL over 4-D shapes, whole tensors (flat buffers). */
void mcu_add_broadcast(const mcu_add_params *p, const int8_t *a, const int32_t *sa, const int8_t *b,
                       const int32_t *sb, int8_t *out, const int32_t *so);
void mcu_mul_broadcast(const mcu_mul_params *p, const int8_t *a, const int32_t *sa, const int8_t *b,
                       const int32_t *sb, int8_t *out, const int32_t *so);
/* softmax.c: `outer` rows of `depth` values; out is int8 or int16 per p->out_int16. */
void mcu_softmax(const mcu_softmax_params *p, const int8_t *in, int32_t outer, int32_t depth, void *out);
/* reduce.c: MEAN over p->axes of a rank-4 (shape padded with leading 1s) tensor. */
void mcu_mean(const mcu_mean_params *p, const int8_t *in, const int32_t *shape, int8_t *out);
/* resize.c: nearest neighbour with precomputed source rows/columns. */
void mcu_resize_nearest(const int32_t *in_y, const int32_t *in_x, const mcu_view *in, const mcu_view *out);
/* shape.c: data movement of whole tensors. */
void mcu_transpose(const int32_t *perm, int32_t rank, const int32_t *in_shape, const int8_t *in, int8_t *out);
void mcu_pad(const int32_t (*pads)[2], int32_t rank, const int32_t *in_shape, int8_t value, const int8_t *in, int8_t *out);
void mcu_copy(const int8_t *in, int8_t *out, int32_t n); /* RESHAPE, CONCATENATION pieces (memmove) */

/* fixedpoint.h has the requantization arithmetic every kernel shares. */

#endif
