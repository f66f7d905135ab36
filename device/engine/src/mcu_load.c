/* mcu_load: validate a flash image in place before anything runs from it.
 *
 * Every offset, count and size is checked against the bytes that exist, every op against
 * the shapes its kernel indexes, and every step against the buffers it will touch, so that
 * no image, however damaged, makes the engine read or write outside the image or the
 * arena. The checks are the rows of docs/flash-image.md §6, the same the host reader
 * (image/format.py unpack) makes: mcu_load returns the status of the first row that fails
 * and records its number in m->check. Sizes are multiplied and added in 64 bits.
 */
#include "mcu_image.h"

#include <string.h>

const char *mcu_status_str(mcu_status s) {
    /* the messages of MCU_NEED_INPUT (2) down to MCU_ERR_UNSUPPORTED (-17), then the fallback */
    static const char all[] = "more input rows needed\0done\0ok\0bad argument\0image truncated\0"
                              "not an mcutool flash image\0unsupported image format version\0"
                              "image header inconsistent\0image header CRC32 mismatch\0"
                              "image CRC32 mismatch: the image is corrupt\0"
                              "image section out of bounds, misaligned or overlapping\0image tensor table invalid\0"
                              "image op table invalid\0op parameters out of range\0plan buffer invalid\0"
                              "plan step invalid\0plan section invalid\0arena too small or misaligned\0"
                              "streamed input out of order\0image uses something this engine build lacks\0"
                              "unknown status";
    const char *p = all;
    uint32_t k = (uint32_t)(MCU_NEED_INPUT - (int)s);
    for (k = k > 20u ? 20u : k; k; k--)
        while (*p++) {
        }
    return p;
}

/* CRC-32 (IEEE, reflected 0xEDB88320), four bits at a time: a 64-byte table in flash. */
static uint32_t crc32(const uint8_t *p, uint32_t n, uint32_t crc) {
    static const uint32_t t[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
        0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
    crc = ~crc;
    for (uint32_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ t[crc & 15u];
        crc = (crc >> 4) ^ t[crc & 15u];
    }
    return ~crc;
}

static const uint8_t EXPECTED_WORDS[MCU_OP_COUNT] = {
    0, 14, 15, 9, 12, 7, 10, 10, 11, 10, 0, 4, 5, 6, 2, 1, 4, 6, 4,
};

void mcu_tensor_at(const mcu_model *m, int32_t i, mcu_tensor *t) {
    const uint8_t *e = m->tensors + (uint32_t)i * MCU_TENSOR_ENTRY;
    t->dtype = e[0];
    t->rank = e[1];
    t->flags = e[2];
    for (int k = 0; k < 4; k++) t->dims[k] = (int32_t)mcu_rd32(e + 4 + 4 * k);
    t->scale_bits = mcu_rd32(e + 20);
    t->zero_point = mcu_rds32(e + 24);
    t->data_offset = mcu_rd32(e + 28);
    t->data_size = mcu_rd32(e + 32);
    t->arena_offset = mcu_rd32(e + 36);
}

void mcu_op_at(const mcu_model *m, int32_t i, mcu_op *op) {
    const uint8_t *rec = m->ops + mcu_rd32(m->ops + 4 * (uint32_t)i);
    op->code = mcu_rd16(rec);
    op->n_in = rec[2];
    op->n_out = rec[3];
    op->n_words = mcu_rd16(rec + 4);
    op->io = rec + 8;
    op->words = rec + ((8u + 2u * (op->n_in + op->n_out) + 3u) & ~3u);
}

void mcu_step_at(const mcu_model *m, uint32_t i, mcu_step *s) {
    const uint8_t *e = m->steps + i * MCU_STEP_ENTRY;
    s->kind = e[0];
    s->flags = e[1];
    s->op = mcu_rds16(e + 2);
    s->r0 = mcu_rd16(e + 4);
    s->r1 = mcu_rd16(e + 6);
    s->c0 = mcu_rd16(e + 8);
    s->c1 = mcu_rd16(e + 10);
    s->patch = mcu_rd16(e + 12);
    s->fused = mcu_rds16(e + 14);
}

static void buffer_at(const mcu_model *m, uint32_t i, mcu_buffer *b) {
    const uint8_t *e = m->buffers + i * MCU_BUFFER_ENTRY;
    b->key = mcu_rds16(e);
    b->kind = e[2];
    b->rows = mcu_rd16(e + 4);
    b->width = mcu_rd16(e + 6);
    b->channels = mcu_rd16(e + 8);
    b->alias_of = mcu_rds16(e + 10);
    b->offset = mcu_rd32(e + 12);
    b->size = mcu_rd32(e + 16);
}

int mcu_buffer_of(const mcu_model *m, int32_t key, mcu_buffer *b) {
    uint32_t lo = 0, hi = m->n_buffers; /* sorted by key: checked by mcu_load */
    while (lo < hi) {
        uint32_t mid = (lo + hi) >> 1;
        int32_t k = mcu_rds16(m->buffers + mid * MCU_BUFFER_ENTRY);
        if (k == key) {
            buffer_at(m, mid, b);
            return 1;
        }
        if (k < key) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

int32_t mcu_col_origin(const mcu_model *m, uint32_t patch, int32_t t) {
    const uint8_t *p = m->col_origin;
    for (uint32_t k = 0; k < m->n_patches; k++) {
        uint32_t cnt = mcu_rd16(p);
        p += 2;
        if (k == patch) {
            for (uint32_t j = 0; j < cnt; j++)
                if (mcu_rd16(p + 4 * j) == (uint32_t)t) return mcu_rd16(p + 4 * j + 2);
            return 0;
        }
        p += 4 * cnt;
    }
    return 0;
}

/* ---- validation ------------------------------------------------------------------------ */

/* Checks stay out of line: in one big function most of Thumb-1's short conditional branches
 * to a shared `return` could not reach it and would each need a long branch too. (Which
 * ones are inlined is what gave the smallest code at -Os, measured.) */
#if defined(__GNUC__)
#define MCU_NOINLINE __attribute__((noinline))
#else
#define MCU_NOINLINE
#endif
static mcu_status check_op_params(const mcu_model *m, const mcu_op *op) MCU_NOINLINE;

typedef struct {
    uint32_t off, size;
} span;

static const uint8_t DT_SIZE[8] = {0, 1, 4, 4, 1, 2, 8, 1};

/* product(dims) * element size: below 2^31 once check 100 has passed */
static uint32_t tensor_bytes(const mcu_tensor *t) {
    uint32_t n = DT_SIZE[t->dtype];
    for (int k = 0; k < t->rank; k++) n *= (uint32_t)t->dims[k];
    return n;
}

/* Tensor t (a valid index) is a constant. */
static int constant(const mcu_model *m, int32_t t) { return m->tensors[(uint32_t)t * MCU_TENSOR_ENTRY + 2] & MCU_T_CONST; }

/* An int32 array parameter at DATA offset `off`: check 36 has put it wholly inside DATA. */
static const int32_t *data_array(const mcu_model *m, int32_t off) { return (const int32_t *)(const void *)(m->data + off); }

/* Tensor t (an index checks 32 and 106 have made valid) is a constant of `dtype`. */
static int is_const(const mcu_model *m, int32_t t, uint8_t dtype, mcu_tensor *x) {
    mcu_tensor_at(m, t, x);
    return (x->flags & MCU_T_CONST) && x->dtype == dtype;
}

/* The op has no bias (input 2 absent or -1), or a constant int32 one of (n,). */
static int bias_ok(const mcu_model *m, const mcu_op *op, int32_t n) {
    mcu_tensor b;
    return op->n_in < 3 || mcu_op_in(op, 2) < 0 || (is_const(m, mcu_op_in(op, 2), MCU_DT_INT32, &b) && b.rank == 1 && b.dims[0] == n);
}

/* Decode a CONV_2D / DEPTHWISE_CONV_2D record: the executor's path, every step. mcu_load has
 * checked the op (conv_ok), so only the words, the kernel size and the pointers, straight
 * from the tensor entries. */
void mcu_conv_params_of(const mcu_model *m, const mcu_op *op, mcu_conv_params *p) {
    int dw = op->code == MCU_OP_DEPTHWISE_CONV_2D;
    int k = 0;
    p->stride_h = mcu_word(op, k++);
    p->stride_w = mcu_word(op, k++);
    p->dil_h = mcu_word(op, k++);
    p->dil_w = mcu_word(op, k++);
    p->pad_t = mcu_word(op, k++);
    p->pad_l = mcu_word(op, k++);
    p->pad_b = mcu_word(op, k++);
    p->pad_r = mcu_word(op, k++);
    p->depth_multiplier = dw ? mcu_word(op, k++) : 1;
    p->input_offset = mcu_word(op, k++);
    p->output_offset = mcu_word(op, k++);
    p->act_min = mcu_word(op, k++);
    p->act_max = mcu_word(op, k++);
    int32_t qoff = mcu_word(op, k);
    const uint8_t *we = m->tensors + (uint32_t)mcu_op_in(op, 1) * MCU_TENSOR_ENTRY;
    p->kh = (int32_t)mcu_rd32(we + 8);
    p->kw = (int32_t)mcu_rd32(we + 12);
    p->weights = (const int8_t *)(m->data + mcu_rd32(we + 28));
    p->bias = NULL;
    if (op->n_in > 2 && mcu_op_in(op, 2) >= 0)
        p->bias = (const int32_t *)(const void *)(m->data +
                  mcu_rd32(m->tensors + (uint32_t)mcu_op_in(op, 2) * MCU_TENSOR_ENTRY + 28));
    p->rq = (const int32_t *)(const void *)(m->data + qoff);
}

/* Each of the n output channels' rq record is one ref/conv.py rq_words makes: shift
 * 15 - sh in [-31, 30], the slow mark (mw's top bit) exactly where r = sh - 15 is outside
 * [0, 16], and kq the fast path's rounding constant, or 0. */
MCU_NOINLINE static int rq_ok(const mcu_conv_params *p, int32_t n) {
    for (int32_t c = 0; c < n; c++) {
        const int32_t *q = p->rq + MCU_RQ_WORDS * c;
        if (q[3] < -15 || q[3] > 46) return 0; /* before the subtraction, which could overflow */
        const int32_t r = q[3] - 15;
        const int fast = r >= 0 && r <= 16;
        if ((q[1] < 0) == fast || q[2] != (fast ? (1 << 14) + (r ? 1 << (14 + r) : 0) : 0)) return 0;
    }
    return 1;
}

/* The rest of check 107, once the word ranges (WORD_RANGES), the filter w and the bias
 * (check_op_params) hold. */
MCU_NOINLINE static int conv_ok(const mcu_model *m, const mcu_op *op, const mcu_tensor *w, const mcu_tensor *y) {
    int dw = op->code == MCU_OP_DEPTHWISE_CONV_2D;
    int32_t oc = y->dims[3];
    mcu_tensor x;
    mcu_conv_params p;
    mcu_tensor_at(m, mcu_op_in(op, 0), &x);
    if (x.rank != 4 || y->rank != 4 || x.dtype != MCU_DT_INT8 || y->dtype != MCU_DT_INT8 ||
        (dw ? w->dims[0] != 1 || w->dims[3] != oc || x.dims[3] * mcu_word(op, 8) != oc
            : w->dims[0] != oc || w->dims[3] != x.dims[3]) ||
        mcu_word(op, 13 + dw) != MCU_RQ_WORDS * oc)
        return 0;
    mcu_conv_params_of(m, op, &p); /* its pointers are the constants' and DATA arrays' now */
    if (p.kh < 1 || p.kw < 1 || p.act_min > p.act_max) return 0;
    /* The output size the geometry gives must be the tensor's. */
    int32_t eh = (p.kh - 1) * p.dil_h + 1, ew = (p.kw - 1) * p.dil_w + 1;
    if (x.dims[1] + p.pad_t + p.pad_b < eh || x.dims[2] + p.pad_l + p.pad_r < ew ||
        (x.dims[1] + p.pad_t + p.pad_b - eh) / p.stride_h + 1 != y->dims[1] ||
        (x.dims[2] + p.pad_l + p.pad_r - ew) / p.stride_w + 1 != y->dims[2])
        return 0;
    return rq_ok(&p, oc);
}

static mcu_status check_op_params(const mcu_model *m, const mcu_op *op) {
    mcu_tensor y, x;
    int code = op->code;
    mcu_tensor_at(m, mcu_op_out(op, 0), &y);
    if (code <= MCU_OP_FULLY_CONNECTED) {
        /* a constant int8 filter (weights), the bias, and FC's multipliers and shifts, one per
         * unit (counts in words 5 and 7) */
        int fc = code == MCU_OP_FULLY_CONNECTED;
        if (!is_const(m, mcu_op_in(op, 1), MCU_DT_INT8, &x) || x.rank != (fc ? 2 : 4)) return MCU_ERR_PARAMS;
        int32_t n = fc ? x.dims[0] : y.dims[3];
        if ((fc && (mcu_word(op, 5) != n || mcu_word(op, 7) != n)) || !bias_ok(m, op, n)) return MCU_ERR_PARAMS;
        return fc || conv_ok(m, op, &x, &y) ? MCU_OK : MCU_ERR_PARAMS;
    }
    /* ADD, MUL, the pools, QUANTIZE: only word ranges (check_op's WORD_RANGES) */
    if (code == MCU_OP_TRANSPOSE || code == MCU_OP_MEAN || code == MCU_OP_PAD) {
        /* perm or axes in 0..3, paddings (before, after) in 0..4096; word 0 counts them (check 37) */
        int pad = code == MCU_OP_PAD;
        for (int k = 1; k <= (pad ? 2 : 1) * mcu_word(op, 0); k++)
            if ((uint32_t)mcu_word(op, k) > (pad ? 4096u : 3u)) return MCU_ERR_PARAMS;
    }
    if (code == MCU_OP_RESIZE_NEAREST_NEIGHBOR) {
        if (y.rank != 4 || mcu_word(op, 1) != y.dims[1] || mcu_word(op, 3) != y.dims[2]) return MCU_ERR_PARAMS;
        mcu_tensor_at(m, mcu_op_in(op, 0), &x);
        for (int a = 1; a <= 2; a++) { /* in_y (words 0, 1) indexes the input's rows, in_x its columns */
            const int32_t *ix = data_array(m, mcu_word(op, 2 * a - 2));
            for (int32_t k = 0; k < y.dims[a]; k++)
                if ((uint32_t)ix[k] >= (uint32_t)x.dims[a]) return MCU_ERR_PARAMS;
        }
    }
    return MCU_OK;
}

/* Rows and columns [r0, r1) x [c0, c1) of tensor t lie inside its buffer: a ring holds no
 * more rows at once than it has, a FULL buffer every row, a pixel buffer no window. */
static int view_ok(const mcu_model *m, int32_t t, uint32_t patch, int32_t r0, int32_t r1, int32_t c0, int32_t c1) {
    mcu_buffer b;
    if (!mcu_buffer_of(m, t, &b) || b.kind == MCU_BUF_PIXEL) return 0;
    int32_t o = mcu_col_origin(m, patch, t);
    if (c0 < o || c1 > o + b.width) return 0; /* callers pass 0 <= r0 < r1, c0 < c1 */
    return r1 - (b.kind == MCU_BUF_RING ? r0 : 0) <= b.rows;
}

static int32_t n_elems(const mcu_tensor *t) {
    int32_t n = 1;
    for (int k = 0; k < t->rank; k++) n *= t->dims[k];
    return n;
}

/* Shapes a whole-tensor op relies on: the kernels index only within them. */
static mcu_status check_whole(const mcu_model *m, const mcu_op *op) {
    mcu_tensor x, y, t;
    mcu_tensor_at(m, mcu_op_in(op, 0), &x);
    mcu_tensor_at(m, mcu_op_out(op, 0), &y);
    /* what a kernel reads as data is int8, a constant too (ADD's, MUL's, CONCATENATION's
     * every input, another op's first; the rest are a filter, a bias, a host's shape) */
    int data = op->code == MCU_OP_CONCATENATION ? 255 : (op->code == MCU_OP_ADD || op->code == MCU_OP_MUL) ? 2 : 1;
    for (int k = 0; k < op->n_in; k++) {
        if (mcu_op_in(op, k) < 0) continue;
        mcu_tensor_at(m, mcu_op_in(op, k), &t);
        if ((!(t.flags & MCU_T_CONST) || k < data) && t.dtype != MCU_DT_INT8) return MCU_ERR_UNSUPPORTED;
    }
    if (y.dtype != MCU_DT_INT8 && !(op->code == MCU_OP_SOFTMAX && y.dtype == MCU_DT_INT16)) return MCU_ERR_UNSUPPORTED;
    switch (op->code) {
    case MCU_OP_CONV_2D:
    case MCU_OP_DEPTHWISE_CONV_2D:
        return MCU_OK; /* check 107 has made input and output 4-D */
    case MCU_OP_AVERAGE_POOL_2D:
    case MCU_OP_MAX_POOL_2D:
        return (x.rank == 4 && y.rank == 4 && x.dims[3] == y.dims[3]) ? MCU_OK : MCU_ERR_PARAMS;
    case MCU_OP_QUANTIZE:
        if (mcu_word(op, 0) != 1) return MCU_ERR_UNSUPPORTED; /* float -> int8 runs on the host */
        /* fall through */
    case MCU_OP_LOGISTIC:
    case MCU_OP_HARD_SWISH:
        /* element by element, so any rank (a detector's LOGISTIC runs on [1, N, classes]);
         * a tensor that is not a 4-D map runs as one flat pixel */
        return (x.rank == y.rank && !memcmp(x.dims, y.dims, sizeof x.dims)) ? MCU_OK : MCU_ERR_PARAMS;
    case MCU_OP_ADD:
    case MCU_OP_MUL:
        if (op->n_in != 2) return MCU_ERR_PARAMS;
        for (int k = 0; k < 2; k++) {
            mcu_tensor_at(m, mcu_op_in(op, k), &t);
            if (t.rank > y.rank) return MCU_ERR_PARAMS;
            for (int d = 0; d < t.rank; d++) {
                int32_t od = y.dims[y.rank - t.rank + d];
                if (t.dims[d] != od && t.dims[d] != 1) return MCU_ERR_PARAMS;
            }
        }
        return MCU_OK;
    case MCU_OP_FULLY_CONNECTED: {
        mcu_tensor w;
        mcu_tensor_at(m, mcu_op_in(op, 1), &w);
        if (w.dims[1] < 1 || n_elems(&x) % w.dims[1] || n_elems(&y) != n_elems(&x) / w.dims[1] * w.dims[0])
            return MCU_ERR_PARAMS;
        return MCU_OK;
    }
    case MCU_OP_SOFTMAX:
        return (x.rank >= 1 && x.dims[x.rank - 1] > 0 && n_elems(&x) == n_elems(&y) &&
                (mcu_word(op, 3) == 1) == (y.dtype == MCU_DT_INT16)) ? MCU_OK : MCU_ERR_PARAMS;
    case MCU_OP_RESHAPE:
        return n_elems(&x) == n_elems(&y) ? MCU_OK : MCU_ERR_PARAMS;
    case MCU_OP_MEAN: {
        int32_t n = mcu_word(op, 0), keep = 1, prod = 1;
        for (int d = 0; d < x.rank; d++) {
            int reduced = 0;
            for (int k = 0; k < n; k++) reduced |= mcu_word(op, 1 + k) == d;
            if (!reduced) keep *= x.dims[d];
            else prod *= x.dims[d];
        }
        for (int k = 0; k < n; k++)
            if (mcu_word(op, 1 + k) >= x.rank) return MCU_ERR_PARAMS;
        return (keep == n_elems(&y) && prod == mcu_word(op, 5)) ? MCU_OK : MCU_ERR_PARAMS;
    }
    case MCU_OP_TRANSPOSE: {
        int32_t n = mcu_word(op, 0), seen = 0;
        if (n != x.rank || n != y.rank) return MCU_ERR_PARAMS;
        for (int k = 0; k < n; k++) {
            int32_t pk = mcu_word(op, 1 + k);
            if (seen & (1 << pk) || y.dims[k] != x.dims[pk]) return MCU_ERR_PARAMS;
            seen |= 1 << pk;
        }
        return MCU_OK;
    }
    case MCU_OP_PAD:
        if (mcu_word(op, 0) != x.rank || y.rank != x.rank) return MCU_ERR_PARAMS;
        for (int k = 0; k < x.rank; k++)
            if (y.dims[k] != x.dims[k] + mcu_word(op, 1 + 2 * k) + mcu_word(op, 2 + 2 * k)) return MCU_ERR_PARAMS;
        return MCU_OK;
    case MCU_OP_CONCATENATION: {
        int32_t axis = mcu_word(op, 0), sum = 0;
        if (axis < 0 || axis >= y.rank) return MCU_ERR_PARAMS;
        for (int k = 0; k < op->n_in; k++) { /* each present: check 106 */
            mcu_tensor_at(m, mcu_op_in(op, k), &t);
            if (t.rank != y.rank) return MCU_ERR_PARAMS;
            for (int d = 0; d < y.rank; d++)
                if (d != axis && t.dims[d] != y.dims[d]) return MCU_ERR_PARAMS;
            sum += t.dims[axis];
        }
        return sum == y.dims[axis] ? MCU_OK : MCU_ERR_PARAMS;
    }
    case MCU_OP_RESIZE_NEAREST_NEIGHBOR:
        /* check 115 has made the output 4-D */
        return (x.rank == 4 && x.dims[0] == y.dims[0] && x.dims[3] == y.dims[3]) ? MCU_OK : MCU_ERR_PARAMS;
    default:
        return MCU_ERR_UNSUPPORTED; /* DEQUANTIZE: float, a host step */
    }
}

/* ---- the plan: steps, device inputs and outputs, dataflow ---------------------------------
 * From here on a check returns the row of docs/flash-image.md §6 it enforces (0: passed).
 * Sizes are compared in 64 bits; nothing is remembered but what mcu_model holds, so the
 * order and dataflow rows are scans: per op, over the steps (O(n_ops * n_steps)). */

static const uint8_t *section(const mcu_model *m, int i) { return m->image + mcu_rd32(m->image + 32 + 8 * i); }

/* Whether tensor t is in the u16 list at p of n entries. */
MCU_NOINLINE static int listed(const uint8_t *p, uint32_t n, int32_t t) {
    for (uint32_t k = 0; k < n; k++)
        if (mcu_rd16(p + 2 * k) == (uint32_t)t) return 1;
    return 0;
}
static int graph_input(const mcu_model *m, int32_t t) { return listed(section(m, 3) + 4, mcu_rd16(section(m, 3)), t); }

static int is_io(const mcu_io *io, int n, int32_t t) {
    for (int k = 0; k < n; k++)
        if (io[k].tensor == t) return 1;
    return 0;
}

/* The first step running op k (as its op, or fused into a WINDOW), n_steps if none; *kind
 * gets that step's kind (0 if none), *n how many steps run it, *whole how many run it whole. */
static uint32_t op_first(const mcu_model *m, int32_t k, uint8_t *kind, uint32_t *n, uint32_t *whole) {
    uint32_t first = m->n_steps;
    *kind = 0, *n = 0, *whole = 0;
    for (uint32_t i = 0; i < m->n_steps; i++) {
        const uint8_t *e = m->steps + i * MCU_STEP_ENTRY;
        if (e[0] == MCU_STEP_INPUT || (mcu_rds16(e + 2) != k && (e[0] != MCU_STEP_WINDOW || mcu_rds16(e + 14) != k)))
            continue;
        if (!*n) first = i, *kind = e[0];
        ++*n;
        *whole += e[0] != MCU_STEP_WINDOW;
    }
    return first;
}

/* Some op making tensor t runs first in a step of a kind in `kinds` (a bit mask), before step
 * `before` or (the depthwise fused into it) in step `before` if that runs op k. */
static int made(const mcu_model *m, int32_t t, unsigned kinds, uint32_t before, int32_t k) {
    for (int32_t p = 0; p < m->n_ops; p++) {
        mcu_op op;
        uint8_t kind;
        uint32_t n, whole;
        mcu_op_at(m, p, &op);
        if (!listed(op.io + 2 * op.n_in, op.n_out, t)) continue; /* the outputs: >= 0, check 32 */
        uint32_t f = op_first(m, p, &kind, &n, &whole);
        if (!(kinds >> kind & 1u)) continue;
        if (f < before) return 1;
        if (f == before && p != k) { /* f < n_steps: op p runs, its kind being in `kinds` */
            const uint8_t *e = m->steps + f * MCU_STEP_ENTRY;
            if (mcu_rds16(e + 2) == k && mcu_rds16(e + 14) == p) return 1;
        }
    }
    return 0;
}
#define DEV_KINDS (1u << MCU_STEP_RUN | 1u << MCU_STEP_WINDOW)
#define HOST_KINDS (1u << MCU_STEP_PRE | 1u << MCU_STEP_POST)

/* the rows of an op kind's parameter rules (check_op_params) and whole-op shape rules (check_whole) */
static const uint8_t PARAMS_ROW[MCU_OP_COUNT] = {0, 107, 107, 108, 109, 110, 111, 111, 113, 114,
                                                 122, 129, 113, 112, 116, 126, 129, 129, 115};
static const uint8_t SHAPE_ROW[MCU_OP_COUNT] = {0, 117, 117, 120, 119, 119, 117, 117, 123, 125,
                                                122, 121, 124, 118, 116, 126, 118, 118, 127};

/* Parameter words that must lie in a range: op code, first word, (count << 4) | range. */
static const int32_t RANGES[13][2] = {{1, 32767}, {0, 24}, {-31, 0}, {-31, 30}, {0, 256}, {1, 256}, {1, 64},
                                      {-255, 255}, {-128, 127}, {0, 31}, {-31, 31}, {-32768, 32767}, {0, 0x7FFFFFFF}};
static const uint8_t WORD_RANGES[38][3] = {
    {1, 0, 4 << 4 | 6}, {1, 4, 4 << 4 | 4}, {1, 8, 1 << 4 | 7}, {1, 9, 3 << 4 | 8}, /* CONV_2D: stride, dilation, */
    {2, 0, 4 << 4 | 6}, {2, 4, 4 << 4 | 4}, {2, 8, 1 << 4 | 0}, {2, 9, 1 << 4 | 7}, /* pad, input_offset, */
    {2, 10, 3 << 4 | 8}, /* output_offset, act_min, act_max (conv_ok: act_min <= act_max); DEPTHWISE_CONV_2D too */
    /* FULLY_CONNECTED, ADD and MUL: the offsets and activation bounds the kernels add and
     * subtract (out of range they overflow int32) */
    {3, 0, 1 << 4 | 7}, {3, 1, 3 << 4 | 8}, {4, 0, 2 << 4 | 7}, {4, 2, 1 << 4 | 8}, {4, 10, 2 << 4 | 8},
    {5, 0, 2 << 4 | 7}, {5, 2, 1 << 4 | 8}, {5, 5, 2 << 4 | 8}, {13, 2, 2 << 4 | 7}, /* QUANTIZE's zero points */
    {4, 3, 1 << 4 | 1}, {4, 5, 1 << 4 | 2}, {4, 7, 1 << 4 | 2}, {4, 9, 1 << 4 | 2}, /* ADD: left_shift, shifts */
    {5, 4, 1 << 4 | 3}, {6, 0, 4 << 4 | 4}, {6, 4, 4 << 4 | 5}, {7, 0, 4 << 4 | 4}, /* MUL, AVERAGE_POOL_2D, */
    {7, 4, 4 << 4 | 5}, {8, 9, 1 << 4 | 3}, {13, 5, 1 << 4 | 3},                    /* MAX_POOL_2D, MEAN, QUANTIZE */
    /* check 129: what SOFTMAX, LOGISTIC and HARD_SWISH shift, multiply and offset by */
    {11, 1, 1 << 4 | 9}, {16, 0, 1 << 4 | 8}, {16, 1, 1 << 4 | 12}, {16, 3, 1 << 4 | 10}, {17, 0, 2 << 4 | 8},
    {17, 2, 1 << 4 | 11}, {17, 3, 1 << 4 | 2}, {17, 4, 1 << 4 | 11}, {17, 5, 1 << 4 | 10}};

/* Per op: it runs (95), once if whole (78), after what it reads (79); a device op has its
 * operands (106), valid parameters (107-115) and, run whole, the shapes its kernel needs. */
MCU_NOINLINE static int check_op(const mcu_model *m, int32_t k) {
    mcu_op op;
    mcu_tensor t;
    uint8_t kind;
    uint32_t n, whole;
    mcu_op_at(m, k, &op);
    uint32_t first = op_first(m, k, &kind, &n, &whole);
    if (!n) return 95;
    if (whole && n > 1) return 78;
    int dev = kind < MCU_STEP_INPUT; /* RUN or WINDOW: no op runs first in an INPUT step */
    for (int j = 0; j < op.n_in; j++) {
        int32_t x = mcu_op_in(&op, j);
        if (x < 0 || constant(m, x)) continue;
        if (dev ? is_io(m->inputs, m->n_inputs, x)
                : graph_input(m, x) || (kind == MCU_STEP_POST && is_io(m->outputs, m->n_outputs, x)))
            continue;
        if (!made(m, x, dev ? DEV_KINDS : HOST_KINDS, first, k)) return 79;
    }
    if (!dev) return 0;
    if (op.n_in < (op.code <= MCU_OP_MUL ? 2 : 1)) return 106; /* CONV_2D .. MUL take two */
    for (int j = 0; j < op.n_in + op.n_out; j++) {
        int32_t x = mcu_rds16(op.io + 2 * j);
        if (x < 0) {
            if (j != 2 || op.code > MCU_OP_FULLY_CONNECTED) return 106; /* only a bias is optional */
            continue;
        }
        mcu_tensor_at(m, x, &t);
        if (!(t.flags & MCU_T_CONST) && t.rank == 4 && t.dims[0] != 1) return 106;
    }
    for (uint32_t f = 0; f < sizeof WORD_RANGES / sizeof WORD_RANGES[0]; f++) {
        const uint8_t *r = WORD_RANGES[f];
        if (r[0] != op.code) continue;
        for (int j = r[1]; j < r[1] + (r[2] >> 4); j++)
            if (mcu_word(&op, j) < RANGES[r[2] & 15][0] || mcu_word(&op, j) > RANGES[r[2] & 15][1]) return PARAMS_ROW[op.code];
    }
    if (op.code == MCU_OP_FULLY_CONNECTED) { /* its shift array, word 6 (a conv's shifts: rq_ok) */
        const int32_t *sh = data_array(m, mcu_word(&op, 6));
        for (int32_t c = 0; c < mcu_word(&op, 7); c++)
            if (sh[c] < -31 || sh[c] > 30) return PARAMS_ROW[op.code];
    }
    mcu_status st = check_op_params(m, &op);
    if (st != MCU_OK) return PARAMS_ROW[op.code];
    if (kind != MCU_STEP_RUN) return 0;
    st = check_whole(m, &op);
    return st == MCU_OK ? 0 : st == MCU_ERR_UNSUPPORTED ? 116 : SHAPE_ROW[op.code];
}

/* What a WINDOW needs of an op (plan/windows.py streamable, format.py _window_geometry). */
static int window_ok(const mcu_model *m, const mcu_op *op) {
    mcu_tensor y, x;
    int32_t c = op->code;
    mcu_tensor_at(m, mcu_op_out(op, 0), &y);
    if (y.rank != 4 || y.dims[0] != 1 || y.dtype != MCU_DT_INT8) return 0;
    int spatial = c == MCU_OP_CONV_2D || c == MCU_OP_DEPTHWISE_CONV_2D || c == MCU_OP_AVERAGE_POOL_2D ||
                  c == MCU_OP_MAX_POOL_2D;
    int pointwise = c == MCU_OP_ADD || c == MCU_OP_MUL || c == MCU_OP_LOGISTIC || c == MCU_OP_HARD_SWISH ||
                    (c == MCU_OP_QUANTIZE && mcu_word(op, 0) == 1);
    if (!spatial && !pointwise) return 0;
    for (int j = 0; j < op->n_in; j++) {
        int32_t t = mcu_op_in(op, j);
        if (t < 0) continue; /* a bias: check 106 */
        mcu_tensor_at(m, t, &x);
        if (x.flags & MCU_T_CONST) {
            if (pointwise || j == 0) return 0; /* a pointwise op reads every input from a buffer */
            continue; /* a convolution's filter: check 107 has made it a 4-D one */
        }
        if (x.rank != 4 || (pointwise && memcmp(x.dims, y.dims, sizeof y.dims))) return 0;
    }
    return 1;
}

/* The input rows and columns a WINDOW step's op reads: those of every input it reads from a
 * buffer (skipping `skip`, the fused op's output) fit that buffer (check 87). */
static int reads_ok(const mcu_model *m, const mcu_op *op, const mcu_step *s, int32_t skip) {
    int32_t sh = 1, sw = 1, eh = 1, ew = 1, pt = 0, pl = 0;
    if (op->code == MCU_OP_CONV_2D || op->code == MCU_OP_DEPTHWISE_CONV_2D) {
        mcu_conv_params p;
        mcu_conv_params_of(m, op, &p);
        sh = p.stride_h, sw = p.stride_w, pt = p.pad_t, pl = p.pad_l;
        eh = (p.kh - 1) * mcu_word(op, 2) + 1, ew = (p.kw - 1) * mcu_word(op, 3) + 1;
    } else if (op->code == MCU_OP_AVERAGE_POOL_2D || op->code == MCU_OP_MAX_POOL_2D) {
        pt = mcu_word(op, 0), pl = mcu_word(op, 1), eh = mcu_word(op, 4), ew = mcu_word(op, 5);
        sh = mcu_word(op, 6), sw = mcu_word(op, 7);
    }
    for (int j = 0; j < op->n_in; j++) {
        int32_t t = mcu_op_in(op, j);
        mcu_tensor x;
        if (t < 0 || t == skip) continue;
        mcu_tensor_at(m, t, &x);
        if (x.flags & MCU_T_CONST) continue;
        int32_t a = s->r0 * sh - pt, b = (s->r1 - 1) * sh - pt + eh, c = s->c0 * sw - pl, d = (s->c1 - 1) * sw - pl + ew;
        a = a < 0 ? 0 : a, c = c < 0 ? 0 : c;
        b = b > x.dims[1] ? x.dims[1] : b, d = d > x.dims[2] ? x.dims[2] : d;
        if (a < b && c < d && !view_ok(m, t, s->patch, a, b, c, d)) return 0;
    }
    return 1;
}

/* The step's window [r0, r1) x [c0, c1) is a non-empty part of the map t. */
static int inside(const mcu_step *s, const mcu_tensor *t) {
    return s->r0 < s->r1 && s->r1 <= t->dims[1] && s->c0 < s->c1 && s->c1 <= t->dims[2];
}

MCU_NOINLINE static int check_step(const mcu_model *m, uint32_t i, uint8_t *phase) {
    mcu_step s;
    mcu_op op, dw;
    mcu_tensor y, x;
    mcu_buffer ob, b;
    mcu_step_at(m, i, &s);
    uint8_t ph = s.kind == MCU_STEP_PRE ? 0 : s.kind == MCU_STEP_POST ? 2 : 1;
    if (ph < *phase) return 70;
    *phase = ph;
    if (s.patch >= (m->n_patches ? m->n_patches : 1)) return 71;
    if (s.kind == MCU_STEP_INPUT) {
        if (!is_io(m->inputs, m->n_inputs, s.op)) return 72;
        mcu_tensor_at(m, s.op, &x);
        if (x.rank != 4 || !inside(&s, &x)) return 73;
        if (s.c0 || s.c1 != x.dims[2] || s.patch) return 128; /* mcu_feed takes whole rows, patch 0 */
        return view_ok(m, s.op, s.patch, s.r0, s.r1, s.c0, s.c1) ? 0 : 74;
    }
    if (s.op < 0 || s.op >= m->n_ops) return 75;
    mcu_op_at(m, s.op, &op);
    int fused = s.fused >= 0;
    /* A RUN or WINDOW step's op is one the device runs (check_op: else check 78), so it has
     * the operands and parameters checks 106-115 ask for: a CONV_2D, its input and a 4-D
     * constant filter; and any op, input 0. */
    if (fused) {
        if (s.kind != MCU_STEP_WINDOW || s.fused >= m->n_ops) return 76;
        mcu_op_at(m, s.fused, &dw);
        if (dw.code != MCU_OP_DEPTHWISE_CONV_2D || mcu_op_out(&dw, 0) != mcu_op_in(&op, 0)) return 76;
        if (op.code != MCU_OP_CONV_2D) return 77;
        mcu_tensor_at(m, mcu_op_in(&op, 1), &x);
        if (x.dims[1] != 1 || x.dims[2] != 1 || mcu_word(&op, 0) != 1 || mcu_word(&op, 1) != 1 ||
            mcu_word(&op, 4) || mcu_word(&op, 5) || mcu_word(&op, 6) || mcu_word(&op, 7))
            return 77;
    }
    if (s.kind == MCU_STEP_PRE || s.kind == MCU_STEP_POST) return (s.flags & 1u) ? 89 : 0; /* IN_PLACE: RUN only */
    for (int pass = !fused; pass < 2; pass++) { /* the fused op's inputs, then the op's */
        const mcu_op *o = pass ? &op : &dw;
        for (int j = 0; j < o->n_in; j++) {
            int32_t t = mcu_op_in(o, j);
            if (t < 0 || constant(m, t)) continue;
            if (!mcu_buffer_of(m, t, &b)) return 80;
            if (s.kind == MCU_STEP_RUN && b.kind != MCU_BUF_FULL) return 82;
        }
    }
    int32_t to = mcu_op_out(&op, 0);
    mcu_tensor_at(m, to, &y);
    if (!mcu_buffer_of(m, to, &ob)) return 81;
    if (s.kind == MCU_STEP_RUN) {
        if (ob.kind != MCU_BUF_FULL) return 82;
    } else {
        if (!window_ok(m, &op) || (fused && !window_ok(m, &dw))) return 83;
        if (!inside(&s, &y)) return 84;
        if (ob.kind == MCU_BUF_PIXEL) return 85;
        if (!view_ok(m, to, s.patch, s.r0, s.r1, s.c0, s.c1)) return 86;
        if (!reads_ok(m, &op, &s, fused ? mcu_op_out(&dw, 0) : -1) || (fused && !reads_ok(m, &dw, &s, -1))) return 87;
        if (fused && (!mcu_buffer_of(m, mcu_op_out(&dw, 0), &b) || b.kind != MCU_BUF_PIXEL)) return 88;
    }
    if (s.flags & 1u) {
        if (s.kind != MCU_STEP_RUN || ob.alias_of != mcu_op_in(&op, 0)) return 89;
        int dw1 = op.code == MCU_OP_DEPTHWISE_CONV_2D && mcu_word(&op, 8) == 1;
        if (!dw1 && op.code != MCU_OP_RESHAPE) return 90;
        if (dw1 && (!mcu_buffer_of(m, -1 - (int32_t)i, &b) || b.kind != MCU_BUF_FULL ||
                    b.size < (uint32_t)y.dims[1] * (uint32_t)y.dims[2]))
            return 91;
    }
    return 0;
}

/* Device inputs or outputs: PLAN's i16 list at *pp (checks 69, 104, 105). */
static int load_io(mcu_model *m, const uint8_t **pp, int n, mcu_io *io, int outputs) {
    const uint8_t *p = *pp;
    for (int k = 0; k < n; k++, p += 2) {
        int32_t t = mcu_rds16(p);
        mcu_tensor x;
        mcu_buffer b;
        if (t < 0 || t >= m->n_tensors || !mcu_buffer_of(m, t, &b)) return 69;
        mcu_tensor_at(m, t, &x);
        if (x.dtype != MCU_DT_INT8) return 104;
        if (outputs && b.kind != MCU_BUF_FULL) return 105;
        io[k].tensor = (int16_t)t;
        io[k].rank = x.rank;
        for (int d = 0; d < 4; d++) io[k].shape[d] = d < x.rank ? x.dims[d] : 1;
        io[k].bytes = (int32_t)tensor_bytes(&x);
        io[k].zero_point = x.zero_point;
        io[k].scale_bits = x.scale_bits;
    }
    *pp = p;
    return 0;
}

/* The status each row of the contract is refused with (the table's "C status" column), for
 * rows 1, 2, ... in runs of one status: (rows in the run << 4) | -status, 1 standing for
 * MCU_ERR_UNSUPPORTED (-17). */
static const uint8_t ROW_STATUS[36] = {
    0x13, 0x12, 0x14, 0x15, 0x16, 0x15, 0x12, 0x15, 0x17, 0x28, 0xf9, 0x7a, 0x6b, 0x28, 0x29, 0x18, 0x3d, 0xbc,
    0x3e, 0x6c, 0x2e, 0xfd, 0x7d, 0x2c, 0x1e, 0x1d, 0x3e, 0x15, 0x19, 0x1c, 0x4e, 0xab, 0x11, 0xbb, 0x1d, 0x1b};

/* per-op fields that are not plain words (opparams.LAYOUTS): op code, first word, the row
 * checking it (35 bool, 36 array, 37 list/pairs count, 38 enum) */
static const uint8_t FIELDS[15][3] = {
    {1, 12, 36}, {2, 13, 36}, {3, 4, 36}, {3, 6, 36}, {3, 8, 38},
    {8, 0, 37},  {8, 10, 35}, {9, 0, 37},  {11, 3, 38}, {12, 0, 37}, {13, 0, 38}, {18, 0, 36}, {18, 2, 36}};

enum { STRINGS, TENSORS, OPS, IO, SCHEDULE, DATA, BUFFERS, PLAN };

/* The header and the section table (1-11, 99). */
static int load_header(const uint8_t *img, uint32_t len, mcu_model *m, span *sec) {
    if (len < 4) return 2;
    if (memcmp(img, "MCUN", 4) != 0) return 1;
    if (len < MCU_HEADER_SIZE) return 2;
    if (mcu_rd16(img + 4) != MCU_FORMAT_VERSION) return 3;
    if (mcu_rd16(img + 6) != MCU_HEADER_SIZE) return 4;
    {
        uint8_t h[MCU_HEADER_SIZE];
        memcpy(h, img, MCU_HEADER_SIZE);
        memset(h + 28, 0, 4);
        if (crc32(h, MCU_HEADER_SIZE, 0) != mcu_rd32(img + 28)) return 5;
    }
    uint32_t total = mcu_rd32(img + 12);
    if (mcu_rd32(img + 8) != 0) return 6;
    if (len < total) return 7;
    if (len > total) return 8;
    if (crc32(img + MCU_HEADER_SIZE, total - MCU_HEADER_SIZE, 0) != mcu_rd32(img + 16)) return 9;
    m->image = img;
    m->size = total;
    m->n_tensors = mcu_rd16(img + 20);
    m->n_ops = mcu_rd16(img + 22);
    m->arena_bytes = mcu_rd32(img + 24);

    for (int i = 0; i < 8; i++) {
        sec[i].off = mcu_rd32(img + 32 + 8 * i);
        sec[i].size = mcu_rd32(img + 36 + 8 * i);
        if (sec[i].off < MCU_HEADER_SIZE || (sec[i].off & 15u) || sec[i].off > total || sec[i].size > total - sec[i].off)
            return 10;
    }
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) { /* j after i in (start, end) order, yet starting before i ends */
            uint32_t ei = sec[i].off + sec[i].size, ej = sec[j].off + sec[j].size;
            if (i != j && (sec[i].off < sec[j].off || (sec[i].off == sec[j].off && ei <= ej)) && sec[j].off < ei)
                return 11;
        }
    if (m->n_tensors > 0x7FFF) return 99;
    m->name = (const char *)img + sec[STRINGS].off;
    m->tensors = img + sec[TENSORS].off;
    m->ops = img + sec[OPS].off;
    m->ops_size = sec[OPS].size;
    m->data = img + sec[DATA].off;
    m->data_size = sec[DATA].size;
    return 0;
}

/* TENSORS (12-26, 100): tensor i */
/* Buffer record i, for the checks: its own function, so that mcu_buffer_of (the executor's
 * look-up) inlines buffer_at as it always has. */
MCU_NOINLINE static void buffer_rec(const mcu_model *m, uint32_t i, mcu_buffer *b) { buffer_at(m, i, b); }

MCU_NOINLINE static int check_tensor(const mcu_model *m, int32_t i, uint32_t strings) {
    mcu_tensor t;
    mcu_tensor_at(m, i, &t);
    const uint8_t *e = m->tensors + (uint32_t)i * MCU_TENSOR_ENTRY;
    if (t.dtype < 1 || t.dtype > 7) return 13;
    if (t.rank > 4) return 14;
    if (t.flags & ~15u) return 15;
    if (e[3]) return 16;
    uint32_t cap = DT_SIZE[t.dtype];
    for (int k = 0; k < 4; k++) { /* every partial product of the dims fits an int32 */
        uint32_t d = (uint32_t)t.dims[k];
        if (k < t.rank ? d > 65535 : d != 0) return 100;
        if (d > 1 && cap > 0x7FFFFFFFu / d) return 100;
        cap *= d ? d : 1;
    }
    uint32_t q = mcu_rd32(e + 44);
    if (q != MCU_NONE32) {
        if ((q & 15u) || m->data_size < 8 || q > m->data_size - 8) return 17;
        uint32_t nq = mcu_rd32(m->data + q);
        if (nq < 1 || nq > 65536) return 18;
        if (8u * nq > m->data_size - 8 - q) return 19;
        if (mcu_rd32(m->data + q + 4) >= (uint32_t)t.rank) return 20;
        if (!(t.flags & MCU_T_QUANT)) return 21;
    }
    if (t.flags & MCU_T_CONST) {
        if (t.flags & (MCU_T_INPUT | MCU_T_OUTPUT)) return 22;
        if (t.data_offset == MCU_NONE32 || (t.data_offset & 15u) || t.data_size != tensor_bytes(&t) ||
            t.data_offset > m->data_size || t.data_size > m->data_size - t.data_offset)
            return 23;
    } else if (t.arena_offset != MCU_NONE32) {
        if (t.arena_offset & 3u) return 24;
        if (t.arena_offset > m->arena_bytes) return 25;
    }
    uint32_t name = mcu_rd32(e + 40);
    if (name >= strings || !memchr((const uint8_t *)m->name + name, 0, strings - name)) return 26;
    return 0;
}

static int load_tensors(mcu_model *m, const span *sec) {
    if (sec[TENSORS].size != (uint32_t)m->n_tensors * MCU_TENSOR_ENTRY) return 12;
    for (int32_t i = 0; i < m->n_tensors; i++) {
        int row = check_tensor(m, i, sec[STRINGS].size);
        if (row) return row;
    }
    return 0;
}

/* OPS (28-39): op record i */
MCU_NOINLINE static int check_op_record(const mcu_model *m, int32_t i) {
    uint32_t pos = mcu_rd32(m->ops + 4 * (uint32_t)i);
    if ((pos & 3u) || m->ops_size < 8 || pos > m->ops_size - 8) return 28;
    mcu_op op;
    mcu_op_at(m, i, &op);
    if (op.code < 1 || op.code >= MCU_OP_COUNT) return 29;
    if (mcu_rd16(m->ops + pos + 6)) return 30;
    uint32_t wa = (uint32_t)(op.words - m->ops);
    if (wa > m->ops_size || 4u * op.n_words > m->ops_size - wa) return 31;
    for (int k = 0; k < op.n_in + op.n_out; k++) {
        int32_t t = mcu_rds16(op.io + 2 * k);
        if (t < (k < op.n_in ? -1 : 0) || t >= m->n_tensors) return 32;
    }
    if (op.n_out < 1) return 33;
    for (int f = 0; f < 15; f++) {
        int row = FIELDS[f][2], w = FIELDS[f][1];
        if (FIELDS[f][0] != op.code) continue;
        if (w + (row == 36 ? 2 : row == 37 ? (op.code == MCU_OP_PAD ? 9 : 5) : 1) > op.n_words) return 34;
        int32_t v = mcu_word(&op, w), c = row == 36 ? mcu_word(&op, w + 1) : 0;
        if (row == 36 ? v < 0 || c < 0 || (v & 15) || (uint32_t)v > m->data_size ||
                            (uint32_t)c > (m->data_size - (uint32_t)v) / 4u
                      : (uint32_t)v > (row == 37 ? 4u : 1u))
            return row;
    }
    if (op.n_words < EXPECTED_WORDS[op.code]) return 34;
    if (op.n_words > EXPECTED_WORDS[op.code]) return 39;
    return 0;
}

static int load_ops(mcu_model *m) {
    if (m->ops_size < 4u * m->n_ops) return 27;
    for (int32_t i = 0; i < m->n_ops; i++) {
        int row = check_op_record(m, i);
        if (row) return row;
    }
    return 0;
}

/* IO (40-44) */
static int load_graph_io(mcu_model *m, const span *sec) {
    const uint8_t *io = m->image + sec[IO].off;
    if (sec[IO].size < 4) return 40;
    uint32_t gin = mcu_rd16(io), gout = mcu_rd16(io + 2);
    if (sec[IO].size < 4 + 2 * (gin + gout)) return 41;
    for (uint32_t k = 0; k < gin + gout; k++)
        if (mcu_rd16(io + 4 + 2 * k) >= m->n_tensors) return 42;
    for (int32_t t = 0; t < m->n_tensors; t++) {
        uint8_t f = m->tensors[(uint32_t)t * MCU_TENSOR_ENTRY + 2];
        if (!!(f & MCU_T_INPUT) != listed(io + 4, gin, t) || !!(f & MCU_T_OUTPUT) != listed(io + 4 + 2 * gin, gout, t))
            return 43;
    }
    if (sec[STRINGS].size == 0 || !memchr(m->name, 0, sec[STRINGS].size)) return 44;
    return 0;
}

/* SCHEDULE, BUFFERS, PLAN (45-61, 68, 101-103) */
static int load_plan(mcu_model *m, const span *sec) {
    /* SCHEDULE (45-47) */
    const uint8_t *s0 = m->image + sec[SCHEDULE].off;
    if (sec[SCHEDULE].size < 4) return 45;
    m->n_steps = mcu_rd32(s0);
    if (m->n_steps > (sec[SCHEDULE].size - 4) / MCU_STEP_ENTRY) return 46;
    m->steps = s0 + 4;
    for (uint32_t i = 0; i < m->n_steps; i++) {
        const uint8_t *e = m->steps + i * MCU_STEP_ENTRY;
        if (e[0] < MCU_STEP_RUN || e[0] > MCU_STEP_POST || (e[1] & ~1u)) return 47;
    }


    /* BUFFERS (48-58, 101): sorted by key (mcu_buffer_of's binary search relies on it) */
    const uint8_t *b0 = m->image + sec[BUFFERS].off;
    if (sec[BUFFERS].size < 4) return 48;
    m->n_buffers = mcu_rd32(b0);
    if (m->n_buffers > (sec[BUFFERS].size - 4) / MCU_BUFFER_ENTRY) return 49;
    m->buffers = b0 + 4;
    for (uint32_t i = 0; i < m->n_buffers; i++) {
        mcu_buffer b;
        buffer_rec(m, i, &b);
        const uint8_t *e = m->buffers + i * MCU_BUFFER_ENTRY;
        if (b.kind > MCU_BUF_PIXEL || e[3] || mcu_rd32(e + 20)) return 50;
        if (i && mcu_rds16(e - MCU_BUFFER_ENTRY) == b.key) return 51;
        if (i && mcu_rds16(e - MCU_BUFFER_ENTRY) > b.key) return 101;
        if ((uint64_t)((uint32_t)b.rows * b.width) * b.channels != b.size) return 52; /* 2^48 > it */
        if (b.offset > m->arena_bytes || b.size > m->arena_bytes - b.offset) return 53;
        if (b.offset & 3u) return 54;
        if (b.kind == MCU_BUF_RING && b.rows < 1) return 55;
    }
    for (uint32_t i = 0; i < m->n_buffers; i++) { /* an alias lies inside its target; the chain ends */
        mcu_buffer b, a;
        buffer_rec(m, i, &b);
        for (uint32_t hops = 0; b.alias_of != -1; hops++, b = a) {
            if (b.alias_of < 0 || b.alias_of == b.key || !mcu_buffer_of(m, b.alias_of, &a)) return 56;
            if (a.offset != b.offset || b.size > a.size) return 57;
            if (hops >= m->n_buffers) return 58;
        }
    }


    /* PLAN (59-61, 68, 102, 103) */
    const uint8_t *p = m->image + sec[PLAN].off, *pend = p + sec[PLAN].size;
    if (sec[PLAN].size < 28) return 59;
    m->strategy = p[0];
    m->halo = p[1];
    m->streamed = (uint8_t)(mcu_rd32(p + 8) & 1u);
    if (m->strategy > 2 || m->halo > 2 || (mcu_rd32(p + 8) & ~1u)) return 60;
    if (sec[PLAN].size < 32) return 61;
    uint32_t n_in = mcu_rd16(p + 28), n_out = mcu_rd16(p + 30);
    p += 32;
    if ((uint32_t)(pend - p) < 2 * (n_in + n_out) + 2) return 61;
    if (n_in > MCU_MAX_IO || n_out > MCU_MAX_IO || n_out < 1) return 102;
    m->n_inputs = (uint8_t)n_in;
    m->n_outputs = (uint8_t)n_out;
    p += 2 * (n_in + n_out);
    m->n_patches = mcu_rd16(p);
    p += 2;
    m->col_origin = p;
    for (uint32_t k = 0; k < m->n_patches; k++) {
        if (pend - p < 2) return 61;
        uint32_t cnt = mcu_rd16(p);
        p += 2;
        if ((uint32_t)(pend - p) / 4u < cnt) return 61;
        for (uint32_t j = 0; j < cnt; j++) {
            if (mcu_rd16(p + 4 * j) >= m->n_tensors) return 68;
            if (m->strategy != 2 || (j && mcu_rd16(p + 4 * j) <= mcu_rd16(p + 4 * j - 4))) return 103;
        }
        p += 4 * cnt;
    }
    return 0;
}

/* buffers against tensors (62-67), the device inputs and outputs (69, 104, 105) */
MCU_NOINLINE static int load_graph(mcu_model *m) {
    for (uint32_t i = 0; i < m->n_buffers; i++) {
        mcu_buffer b;
        mcu_tensor t;
        buffer_rec(m, i, &b);
        if (b.key >= m->n_tensors) return 62;
        if (b.key < 0) {
            if ((uint32_t)(-1 - b.key) >= m->n_steps) return 63;
            continue;
        }
        mcu_tensor_at(m, b.key, &t);
        if (t.flags & MCU_T_CONST) return 64;
        if (t.arena_offset != b.offset) return 65;
        /* geometry: a 1xHxWxC map of 1-byte elements is held as (H, W, C) rows, any other
         * tensor flat; a ring holds some of a map's rows, a pixel one pixel */
        int map = t.rank == 4 && t.dims[0] == 1 && (t.dtype == MCU_DT_INT8 || t.dtype == MCU_DT_UINT8 || t.dtype == MCU_DT_BOOL);
        int ok;
        if (b.kind == MCU_BUF_FULL)
            ok = map ? b.rows == t.dims[1] && b.width == t.dims[2] && b.channels == t.dims[3]
                     : b.rows == 1 && b.width == 1 && (uint32_t)b.channels == tensor_bytes(&t);
        else if (b.kind == MCU_BUF_RING)
            ok = map && b.rows <= t.dims[1] && b.width <= t.dims[2] && b.channels == t.dims[3];
        else
            ok = map && b.rows == 1 && b.width == 1 && b.channels == t.dims[3];
        if (!ok) return 66;
    }
    for (int32_t i = 0; i < m->n_tensors; i++) {
        mcu_tensor t;
        mcu_buffer b;
        mcu_tensor_at(m, i, &t);
        if (!(t.flags & MCU_T_CONST) && t.arena_offset != MCU_NONE32 && !mcu_buffer_of(m, i, &b)) return 67;
    }
    const uint8_t *dev_io = section(m, PLAN) + 32;
    int row = load_io(m, &dev_io, m->n_inputs, m->inputs, 0);
    return row ? row : load_io(m, &dev_io, m->n_outputs, m->outputs, 1);
}

/* ops (78, 79, 95, 106-127), then steps (70-77, 80-91, 128), then the rest (92-98) */
MCU_NOINLINE static int load_run(mcu_model *m) {
    int row;
    for (int32_t k = 0; k < m->n_ops; k++)
        if ((row = check_op(m, k)) != 0) return row;
    uint8_t phase = 0;
    uint32_t n_input = 0;
    for (uint32_t i = 0; i < m->n_steps; i++) {
        if ((row = check_step(m, i, &phase)) != 0) return row;
        n_input += m->steps[i * MCU_STEP_ENTRY] == MCU_STEP_INPUT;
    }
    for (uint32_t i = 0; i < m->n_buffers; i++) {
        mcu_buffer b;
        mcu_step s;
        mcu_op op;
        buffer_rec(m, i, &b);
        if (b.key < 0) {
            mcu_step_at(m, (uint32_t)(-1 - b.key), &s);
            if (s.kind != MCU_STEP_RUN || !(s.flags & 1u)) return 92;
            mcu_op_at(m, s.op, &op);
            if (op.code != MCU_OP_DEPTHWISE_CONV_2D) return 92;
        }
        if (b.kind == MCU_BUF_PIXEL) {
            uint32_t j;
            for (j = 0; j < m->n_steps; j++) {
                mcu_step_at(m, j, &s);
                if (s.kind != MCU_STEP_WINDOW || s.fused < 0) continue;
                mcu_op_at(m, s.fused, &op);
                if (mcu_op_out(&op, 0) == b.key) break;
            }
            if (j == m->n_steps) return 93;
        }
    }
    if (m->streamed != (n_input > 0)) return 94;
    for (uint32_t k = 0; k < m->n_inputs; k++) {
        int32_t t = m->inputs[k].tensor;
        if (!graph_input(m, t) && !made(m, t, 1u << MCU_STEP_PRE, m->n_steps, -1)) return 96;
    }
    for (uint32_t k = 0; k < m->n_outputs; k++) {
        int32_t t = m->outputs[k].tensor;
        if (!is_io(m->inputs, m->n_inputs, t) && !made(m, t, DEV_KINDS, m->n_steps, -1)) return 97;
    }
    const uint8_t *io = section(m, IO);
    uint32_t gin = mcu_rd16(io), gout = mcu_rd16(io + 2);
    for (uint32_t k = 0; k < gout; k++) {
        int32_t t = mcu_rd16(io + 4 + 2 * (gin + k));
        if (!graph_input(m, t) && !constant(m, t) && !made(m, t, HOST_KINDS, m->n_steps, -1) &&
            !is_io(m->outputs, m->n_outputs, t))
            return 98;
    }
    return 0;
}

MCU_NOINLINE static int load(const uint8_t *img, uint32_t len, mcu_model *m) {
    span sec[8];
    int row = load_header(img, len, m, sec);
    if (!row) row = load_tensors(m, sec);
    if (!row) row = load_ops(m);
    if (!row) row = load_graph_io(m, sec);
    if (!row) row = load_plan(m, sec);
    if (!row) row = load_graph(m);
    return row ? row : load_run(m);
}

mcu_status mcu_load(const uint8_t *img, uint32_t len, mcu_model *m) {
    if (!img || !m) return MCU_ERR_ARG;
    memset(m, 0, sizeof *m);
    if ((uintptr_t)img & 3u) return MCU_ERR_ARG; /* fields are read as aligned words */
    int row = load(img, len, m);
    if (!row) return MCU_OK;
    const uint8_t *r = ROW_STATUS;
    for (int left = row; left > *r >> 4; r++) left -= *r >> 4;
    m->check = (uint16_t)row;
    return (mcu_status) - (int)((*r & 15) == 1 ? 17 : *r & 15);
}

uint32_t mcu_arena_bytes(const mcu_model *m) { return m ? m->arena_bytes : 0; }
