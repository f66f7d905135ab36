/* The plan executor: walks the schedule, builds views of buffers, calls kernels.
 * It decides nothing: every window, buffer and order comes from the image. */
#include <string.h>

#include "mcu_image.h"

static int32_t dims4(const mcu_tensor *t, int k) {
    /* shape padded with leading 1s to rank 4 */
    int lead = 4 - t->rank;
    return k < lead ? 1 : t->dims[k - lead];
}

static int32_t elems(const mcu_tensor *t) {
    int32_t n = 1;
    for (int k = 0; k < t->rank; k++) n *= t->dims[k];
    return n;
}

/* A constant operand (an ADD's, a CONCATENATION's: int8, mcu_load checks) has no buffer:
 * the kernels read it in place from DATA, as a FULL buffer of all its bytes. Kernels never
 * write their inputs, so the cast drops a const that only the image's flash has. */
static int8_t *const_operand(const mcu_model *m, int32_t t) {
    return (int8_t *)(uintptr_t)(m->data + mcu_rd32(m->tensors + (uint32_t)t * MCU_TENSOR_ENTRY + 28));
}

static void view_of(const mcu_model *m, uint8_t *arena, int32_t t, uint32_t patch, mcu_view *v) {
    mcu_buffer b;
    const uint8_t *e = m->tensors + (uint32_t)t * MCU_TENSOR_ENTRY; /* rank at +1, dims at +4 */
    if (mcu_buffer_of(m, t, &b)) {
        v->base = (int8_t *)(arena + b.offset);
        v->cap = b.kind == MCU_BUF_RING ? b.rows : 0;
        v->stride = (int32_t)b.width * b.channels;
    } else { /* a constant operand: all of it, rows of W * C bytes */
        v->base = const_operand(m, t);
        v->cap = 0;
        v->stride = e[1] == 4 ? (int32_t)(mcu_rd32(e + 12) * mcu_rd32(e + 16)) : 0;
        b.size = mcu_rd32(e + 32);
    }
    v->col0 = m->strategy == 2 ? mcu_col_origin(m, patch, t) : 0; /* only patch plans move columns */
    if (e[1] == 4) {
        v->h = (int32_t)mcu_rd32(e + 8), v->w = (int32_t)mcu_rd32(e + 12), v->c = (int32_t)mcu_rd32(e + 16);
    } else {
        v->h = 1, v->w = 1, v->c = (int32_t)b.size;
    }
}

static int8_t *flat(const mcu_model *m, uint8_t *arena, int32_t t) {
    mcu_buffer b;
    return mcu_buffer_of(m, t, &b) ? (int8_t *)(arena + b.offset) : const_operand(m, t);
}

static void add_params(const mcu_op *op, mcu_add_params *p) {
    int32_t *w = &p->input1_offset;
    for (int k = 0; k < 12; k++) w[k] = mcu_word(op, k);
}

static void mul_params(const mcu_op *op, mcu_mul_params *p) {
    int32_t *w = &p->input1_offset;
    for (int k = 0; k < 7; k++) w[k] = mcu_word(op, k);
}

static void pool_params(const mcu_op *op, mcu_pool_params *p) {
    p->pad_t = mcu_word(op, 0), p->pad_l = mcu_word(op, 1), p->pad_b = mcu_word(op, 2), p->pad_r = mcu_word(op, 3);
    p->filter_h = mcu_word(op, 4), p->filter_w = mcu_word(op, 5);
    p->stride_h = mcu_word(op, 6), p->stride_w = mcu_word(op, 7);
    p->act_min = mcu_word(op, 8), p->act_max = mcu_word(op, 9);
    p->is_max = op->code == MCU_OP_MAX_POOL_2D;
}

/* A row-local op over a window (WINDOW steps, and RUN steps over a whole 4-D map). */
static mcu_status run_window(const mcu_model *m, uint8_t *arena, const mcu_op *op, const mcu_step *s,
                             int32_t r0, int32_t r1, int32_t c0, int32_t c1) {
    mcu_view in, out, in2;
    uint32_t patch = s->patch;
    view_of(m, arena, mcu_op_out(op, 0), patch, &out);
    if (s->fused >= 0) {
        mcu_op dw;
        mcu_conv_params dp, pp;
        mcu_buffer pix;
        mcu_op_at(m, s->fused, &dw);
        mcu_conv_params_of(m, &dw, &dp);
        mcu_conv_params_of(m, op, &pp);
        mcu_buffer_of(m, mcu_op_out(&dw, 0), &pix);
        view_of(m, arena, mcu_op_in(&dw, 0), patch, &in);
        mcu_depthwise_pointwise(&dp, &pp, &in, pix.channels, &out, (int8_t *)(arena + pix.offset), r0, r1, c0, c1);
        return MCU_OK;
    }
    view_of(m, arena, mcu_op_in(op, 0), patch, &in);
    switch (op->code) {
    case MCU_OP_CONV_2D:
    case MCU_OP_DEPTHWISE_CONV_2D: {
        mcu_conv_params p;
        mcu_conv_params_of(m, op, &p);
        if (op->code == MCU_OP_DEPTHWISE_CONV_2D) mcu_depthwise(&p, &in, &out, r0, r1, c0, c1);
        else if (p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1 && !p.pad_t && !p.pad_l)
            mcu_pointwise(&p, &in, &out, r0, r1, c0, c1);
        else mcu_conv2d(&p, &in, &out, r0, r1, c0, c1);
        return MCU_OK;
    }
    case MCU_OP_AVERAGE_POOL_2D:
    case MCU_OP_MAX_POOL_2D: {
        mcu_pool_params p;
        pool_params(op, &p);
        mcu_pool(&p, &in, &out, r0, r1, c0, c1);
        return MCU_OK;
    }
    case MCU_OP_ADD:
    case MCU_OP_MUL:
        view_of(m, arena, mcu_op_in(op, 1), patch, &in2);
        if (op->code == MCU_OP_ADD) {
            mcu_add_params p;
            add_params(op, &p);
            mcu_add(&p, &in, &in2, &out, r0, r1, c0, c1);
        } else {
            mcu_mul_params p;
            mul_params(op, &p);
            mcu_mul(&p, &in, &in2, &out, r0, r1, c0, c1);
        }
        return MCU_OK;
    case MCU_OP_QUANTIZE: {
        mcu_requant_params p = {mcu_word(op, 3), mcu_word(op, 2), mcu_word(op, 4), mcu_word(op, 5)};
        mcu_requantize(&p, &in, &out, r0, r1, c0, c1);
        return MCU_OK;
    }
    case MCU_OP_LOGISTIC: {
        mcu_logistic_params p = {mcu_word(op, 0), mcu_word(op, 1), mcu_word(op, 2), mcu_word(op, 3)};
        mcu_logistic(&p, &in, &out, r0, r1, c0, c1);
        return MCU_OK;
    }
    case MCU_OP_HARD_SWISH: {
        mcu_hard_swish_params p = {mcu_word(op, 0), mcu_word(op, 1), mcu_word(op, 2),
                                   mcu_word(op, 3), mcu_word(op, 4), mcu_word(op, 5)};
        mcu_hard_swish(&p, &in, &out, r0, r1, c0, c1);
        return MCU_OK;
    }
    default:
        return MCU_ERR_UNSUPPORTED;
    }
}

static int row_local(uint16_t code) {
    return code == MCU_OP_CONV_2D || code == MCU_OP_DEPTHWISE_CONV_2D || code == MCU_OP_AVERAGE_POOL_2D ||
           code == MCU_OP_MAX_POOL_2D || code == MCU_OP_LOGISTIC || code == MCU_OP_HARD_SWISH;
}

/* Whole-tensor ops (RUN steps). */
static mcu_status run_whole(const mcu_model *m, uint8_t *arena, const mcu_op *op, const mcu_step *s, uint32_t step) {
    mcu_tensor x, y;
    int32_t tx = mcu_op_in(op, 0), ty = mcu_op_out(op, 0);
    mcu_tensor_at(m, tx, &x);
    mcu_tensor_at(m, ty, &y);
    if (s->flags & 1u) { /* in place */
        if (op->code == MCU_OP_RESHAPE) return MCU_OK; /* same bytes, new shape */
        mcu_conv_params p;
        mcu_buffer sb;
        mcu_view io;
        mcu_conv_params_of(m, op, &p);
        mcu_buffer_of(m, -1 - (int32_t)step, &sb);
        view_of(m, arena, tx, 0, &io);
        mcu_depthwise_inplace(&p, &io, y.dims[1], y.dims[2], (int8_t *)(arena + sb.offset));
        return MCU_OK;
    }
    int same4 = x.rank == 4 && y.rank == 4;
    if (row_local(op->code) || (same4 && (op->code == MCU_OP_QUANTIZE ||
                                          ((op->code == MCU_OP_ADD || op->code == MCU_OP_MUL) && op->n_in == 2)))) {
        int broadcast = 0;
        if (op->code == MCU_OP_ADD || op->code == MCU_OP_MUL) {
            mcu_tensor x2;
            mcu_tensor_at(m, mcu_op_in(op, 1), &x2);
            broadcast = x2.rank != 4 || memcmp(x.dims, y.dims, sizeof x.dims) || memcmp(x2.dims, y.dims, sizeof x.dims);
        }
        if (!broadcast && y.rank == 4) return run_window(m, arena, op, s, 0, y.dims[1], 0, y.dims[2]);
    }
    /* Element-by-element ops on tensors that are not 4-D maps: view_of() sees each as one
     * pixel of all its bytes, so a 1 x 1 window covers it. */
    if ((op->code == MCU_OP_LOGISTIC || op->code == MCU_OP_HARD_SWISH || op->code == MCU_OP_QUANTIZE) && y.rank != 4)
        return run_window(m, arena, op, s, 0, 1, 0, 1);
    int8_t *out = flat(m, arena, ty);
    const int8_t *in = flat(m, arena, tx);
    switch (op->code) {
    case MCU_OP_ADD:
    case MCU_OP_MUL: {
        mcu_tensor x2;
        int32_t sa[4], sb[4], so[4];
        mcu_tensor_at(m, mcu_op_in(op, 1), &x2);
        for (int k = 0; k < 4; k++) sa[k] = dims4(&x, k), sb[k] = dims4(&x2, k), so[k] = dims4(&y, k);
        const int8_t *in2 = flat(m, arena, mcu_op_in(op, 1));
        if (op->code == MCU_OP_ADD) {
            mcu_add_params p;
            add_params(op, &p);
            mcu_add_broadcast(&p, in, sa, in2, sb, out, so);
        } else {
            mcu_mul_params p;
            mul_params(op, &p);
            mcu_mul_broadcast(&p, in, sa, in2, sb, out, so);
        }
        return MCU_OK;
    }
    case MCU_OP_FULLY_CONNECTED: {
        mcu_tensor w;
        mcu_fc_params p;
        mcu_tensor_at(m, mcu_op_in(op, 1), &w);
        p.input_offset = mcu_word(op, 0), p.output_offset = mcu_word(op, 1);
        p.act_min = mcu_word(op, 2), p.act_max = mcu_word(op, 3);
        p.multiplier = (const int32_t *)(const void *)(m->data + mcu_word(op, 4));
        p.shift = (const int32_t *)(const void *)(m->data + mcu_word(op, 6));
        p.single_rounding = mcu_word(op, 8);
        p.units = w.dims[0], p.depth = w.dims[1];
        p.weights = (const int8_t *)(m->data + w.data_offset);
        p.bias = NULL;
        if (op->n_in > 2 && mcu_op_in(op, 2) >= 0) {
            mcu_tensor b;
            mcu_tensor_at(m, mcu_op_in(op, 2), &b);
            p.bias = (const int32_t *)(const void *)(m->data + b.data_offset);
        }
        mcu_fully_connected(&p, in, elems(&x) / p.depth, out);
        return MCU_OK;
    }
    case MCU_OP_SOFTMAX: {
        mcu_softmax_params p = {mcu_word(op, 0), mcu_word(op, 1), mcu_word(op, 2), mcu_word(op, 3)};
        int32_t depth = x.dims[x.rank - 1];
        mcu_softmax(&p, in, elems(&x) / depth, depth, out);
        return MCU_OK;
    }
    case MCU_OP_MEAN: {
        mcu_mean_params p;
        int32_t shape[4];
        p.n_axes = mcu_word(op, 0);
        for (int k = 0; k < 4; k++) p.axes[k] = mcu_word(op, 1 + k) + (4 - x.rank);
        p.num_elements_in_axis = mcu_word(op, 5), p.input_zero_point = mcu_word(op, 6);
        p.output_zero_point = mcu_word(op, 7), p.multiplier = mcu_word(op, 8), p.shift = mcu_word(op, 9);
        p.empty = mcu_word(op, 10);
        for (int k = 0; k < 4; k++) shape[k] = dims4(&x, k);
        mcu_mean(&p, in, shape, out);
        return MCU_OK;
    }
    case MCU_OP_RESHAPE:
        mcu_copy(in, out, elems(&x));
        return MCU_OK;
    case MCU_OP_TRANSPOSE: {
        int32_t perm[4];
        for (int k = 0; k < 4; k++) perm[k] = mcu_word(op, 1 + k);
        mcu_transpose(perm, mcu_word(op, 0), x.dims, in, out);
        return MCU_OK;
    }
    case MCU_OP_PAD: {
        int32_t pads[4][2];
        for (int k = 0; k < 4; k++) pads[k][0] = mcu_word(op, 1 + 2 * k), pads[k][1] = mcu_word(op, 2 + 2 * k);
        mcu_pad((const int32_t(*)[2])pads, mcu_word(op, 0), x.dims, (int8_t)mcu_word(op, 9), in, out);
        return MCU_OK;
    }
    case MCU_OP_CONCATENATION: {
        /* outer x (inner piece of each input), along the axis */
        int32_t axis = mcu_word(op, 0), outer = 1;
        for (int k = 0; k < axis; k++) outer *= y.dims[k];
        int32_t out_inner = elems(&y) / outer, pos = 0;
        for (int k = 0; k < op->n_in; k++) {
            mcu_tensor xi;
            mcu_tensor_at(m, mcu_op_in(op, k), &xi);
            int32_t inner = elems(&xi) / outer;
            const int8_t *src = flat(m, arena, mcu_op_in(op, k));
            for (int32_t o = 0; o < outer; o++) mcu_copy(src + o * inner, out + o * out_inner + pos, inner);
            pos += inner;
        }
        return MCU_OK;
    }
    case MCU_OP_RESIZE_NEAREST_NEIGHBOR: {
        mcu_view vi, vo;
        view_of(m, arena, tx, 0, &vi);
        view_of(m, arena, ty, 0, &vo);
        mcu_resize_nearest((const int32_t *)(const void *)(m->data + mcu_word(op, 0)),
                           (const int32_t *)(const void *)(m->data + mcu_word(op, 2)), &vi, &vo);
        return MCU_OK;
    }
    default:
        return MCU_ERR_UNSUPPORTED;
    }
}

mcu_status mcu_begin(mcu_run *r, const mcu_model *m, uint8_t *arena, uint32_t arena_len) {
    if (!r || !m || !m->image || (!arena && m->arena_bytes)) return MCU_ERR_ARG;
    if (arena_len < m->arena_bytes || ((uintptr_t)arena & 3u)) return MCU_ERR_ARENA;
    r->m = m;
    r->arena = arena;
    r->step = 0;
    r->need_input = -1;
    r->need_r0 = r->need_r1 = 0;
    return MCU_OK;
}

mcu_status mcu_set_input(mcu_run *r, int k, const int8_t *data) {
    mcu_buffer b;
    if (!r || !data || k < 0 || k >= r->m->n_inputs) return MCU_ERR_ARG;
    mcu_buffer_of(r->m, r->m->inputs[k].tensor, &b);
    if (b.kind != MCU_BUF_FULL) return MCU_ERR_STATE; /* a streamed input arrives with mcu_feed */
    memcpy(r->arena + b.offset, data, (size_t)r->m->inputs[k].bytes);
    return MCU_OK;
}

mcu_status mcu_continue(mcu_run *r) {
    if (!r || !r->m) return MCU_ERR_ARG;
    const mcu_model *m = r->m;
    while (r->step < m->n_steps) {
        mcu_step s;
        mcu_step_at(m, r->step, &s);
        if (s.kind == MCU_STEP_INPUT) {
            int k;
            for (k = 0; k < m->n_inputs && m->inputs[k].tensor != s.op; k++) {
            }
            r->need_input = k;
            r->need_r0 = s.r0;
            r->need_r1 = s.r1;
            return MCU_NEED_INPUT;
        }
        if (s.kind == MCU_STEP_RUN || s.kind == MCU_STEP_WINDOW) {
            mcu_op op;
            mcu_status st;
            mcu_op_at(m, s.op, &op);
            st = s.kind == MCU_STEP_WINDOW ? run_window(m, r->arena, &op, &s, s.r0, s.r1, s.c0, s.c1)
                                           : run_whole(m, r->arena, &op, &s, r->step);
            if (st != MCU_OK) return st;
        }
        r->step++;
    }
    r->need_input = -1;
    return MCU_DONE;
}

mcu_status mcu_feed(mcu_run *r, int k, int32_t r0, int32_t r1, const int8_t *rows) {
    if (!r || !rows) return MCU_ERR_ARG;
    if (r->need_input != k || r0 != r->need_r0 || r1 != r->need_r1) return MCU_ERR_STATE;
    mcu_view v;
    view_of(r->m, r->arena, r->m->inputs[k].tensor, 0, &v);
    int32_t row = v.w * v.c;
    for (int32_t y = r0; y < r1; y++) memcpy(mcu_row(&v, y), rows + (y - r0) * row, (size_t)row);
    r->need_input = -1;
    r->step++;
    return mcu_continue(r);
}

const int8_t *mcu_output(const mcu_run *r, int k) {
    if (!r || k < 0 || k >= r->m->n_outputs) return NULL;
    return flat(r->m, r->arena, r->m->outputs[k].tensor);
}

mcu_status mcu_invoke(const mcu_model *m, uint8_t *arena, uint32_t arena_len, const int8_t *const *inputs,
                      int8_t *const *outputs) {
    mcu_run r;
    mcu_status st = mcu_begin(&r, m, arena, arena_len);
    if (st != MCU_OK) return st;
    if (!inputs || !outputs) return MCU_ERR_ARG;
    for (int k = 0; k < m->n_inputs; k++) {
        mcu_buffer b;
        if (!inputs[k]) return MCU_ERR_ARG;
        mcu_buffer_of(m, m->inputs[k].tensor, &b);
        if (b.kind == MCU_BUF_FULL) mcu_set_input(&r, k, inputs[k]);
    }
    st = mcu_continue(&r);
    while (st == MCU_NEED_INPUT) {
        const mcu_io *io = &m->inputs[r.need_input];
        int32_t row = io->shape[2] * io->shape[3];
        st = mcu_feed(&r, r.need_input, r.need_r0, r.need_r1, inputs[r.need_input] + r.need_r0 * row);
    }
    if (st != MCU_DONE) return st;
    for (int k = 0; k < m->n_outputs; k++) {
        if (!outputs[k]) return MCU_ERR_ARG;
        memcpy(outputs[k], mcu_output(&r, k), (size_t)m->outputs[k].bytes);
    }
    return MCU_OK;
}
