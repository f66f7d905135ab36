/* mcu_load: validate a flash image in place before anything runs from it.
 *
 * Every offset, count and size is checked against the bytes that exist, and every step
 * against the buffers it will touch, so that no image, however damaged, makes the engine
 * read or write outside the image or the arena. (Dataflow, which op runs before which,
 * is the host's business: `mcutool convert` checks it, and the CRC vouches for the rest.)
 */
#include "mcu_image.h"

#include <string.h>

const char *mcu_status_str(mcu_status s) {
    switch (s) {
    case MCU_OK: return "ok";
    case MCU_DONE: return "done";
    case MCU_NEED_INPUT: return "more input rows needed";
    case MCU_ERR_ARG: return "bad argument";
    case MCU_ERR_TRUNCATED: return "image truncated";
    case MCU_ERR_MAGIC: return "not an mcutool flash image";
    case MCU_ERR_VERSION: return "unsupported image format version";
    case MCU_ERR_HEADER: return "image header inconsistent";
    case MCU_ERR_HEADER_CRC: return "image header CRC32 mismatch";
    case MCU_ERR_CRC: return "image CRC32 mismatch: the image is corrupt";
    case MCU_ERR_SECTION: return "image section out of bounds, misaligned or overlapping";
    case MCU_ERR_TENSOR: return "image tensor table invalid";
    case MCU_ERR_OP: return "image op table invalid";
    case MCU_ERR_PARAMS: return "op parameters out of range";
    case MCU_ERR_BUFFER: return "plan buffer invalid";
    case MCU_ERR_STEP: return "plan step invalid";
    case MCU_ERR_PLAN: return "plan section invalid";
    case MCU_ERR_ARENA: return "arena too small or misaligned";
    case MCU_ERR_STATE: return "streamed input out of order";
    case MCU_ERR_UNSUPPORTED: return "image uses something this engine build lacks";
    }
    return "unknown status";
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
    0, 18, 19, 9, 12, 7, 10, 10, 11, 10, 0, 4, 5, 6, 2, 1, 4, 6, 4,
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

typedef struct {
    uint32_t off, size;
} span;

static int64_t tensor_bytes(const mcu_tensor *t) {
    static const uint8_t size[8] = {0, 1, 4, 4, 1, 2, 8, 1};
    int64_t n = size[t->dtype];
    for (int k = 0; k < t->rank; k++) {
        if (t->dims[k] < 0 || t->dims[k] > 65535) return -1;
        n *= t->dims[k];
        if (n > 0x7FFFFFFF) return -1;
    }
    return n;
}

/* An int32 array of `count` entries at DATA offset `off`, if it lies wholly in DATA. */
static const int32_t *data_array(const mcu_model *m, int32_t off, int32_t count) {
    if (off < 0 || count < 0 || (off & 15) || (uint32_t)off > m->data_size ||
        (uint32_t)count > (m->data_size - (uint32_t)off) / 4u)
        return NULL;
    return (const int32_t *)(const void *)(m->data + off);
}

static const uint8_t *const_data(const mcu_model *m, int32_t t_index, uint8_t dtype) {
    mcu_tensor t;
    if (t_index < 0 || t_index >= m->n_tensors) return NULL;
    mcu_tensor_at(m, t_index, &t);
    if (!(t.flags & MCU_T_CONST) || t.dtype != dtype) return NULL;
    return m->data + t.data_offset;
}

/* Decode a CONV_2D / DEPTHWISE_CONV_2D record; with `check` (at load), also validate it. */
mcu_status mcu_conv_params_of(const mcu_model *m, const mcu_op *op, mcu_conv_params *p, int check) {
    int dw = op->code == MCU_OP_DEPTHWISE_CONV_2D;
    int k = 0;
    mcu_tensor x, w, y;
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
    int32_t moff = mcu_word(op, k++), mcnt = mcu_word(op, k++);
    int32_t soff = mcu_word(op, k++), scnt = mcu_word(op, k++);
    int32_t qoff = mcu_word(op, k++), qcnt = mcu_word(op, k++);
    if (!check) {
        /* The executor's path, every step: mcu_load has checked this op, so only the
         * pointers and the kernel size are needed, straight from the tensor entries. */
        const uint8_t *we = m->tensors + (uint32_t)mcu_op_in(op, 1) * MCU_TENSOR_ENTRY;
        p->kh = (int32_t)mcu_rd32(we + 8);
        p->kw = (int32_t)mcu_rd32(we + 12);
        p->weights = (const int8_t *)(m->data + mcu_rd32(we + 28));
        p->bias = NULL;
        if (op->n_in > 2 && mcu_op_in(op, 2) >= 0)
            p->bias = (const int32_t *)(const void *)(m->data +
                      mcu_rd32(m->tensors + (uint32_t)mcu_op_in(op, 2) * MCU_TENSOR_ENTRY + 28));
        p->multiplier = (const int32_t *)(const void *)(m->data + moff);
        p->shift = (const int32_t *)(const void *)(m->data + soff);
        p->rq = (const int32_t *)(const void *)(m->data + qoff);
        return MCU_OK;
    }
    if (op->n_in < 2 || op->n_out < 1) return MCU_ERR_PARAMS;
    int32_t ti = mcu_op_in(op, 0), tw = mcu_op_in(op, 1), to = mcu_op_out(op, 0);
    if (ti < 0 || tw < 0) return MCU_ERR_PARAMS;
    mcu_tensor_at(m, ti, &x);
    mcu_tensor_at(m, tw, &w);
    mcu_tensor_at(m, to, &y);
    if (x.rank != 4 || w.rank != 4 || y.rank != 4 || x.dtype != MCU_DT_INT8 || y.dtype != MCU_DT_INT8)
        return MCU_ERR_PARAMS;
    p->weights = (const int8_t *)const_data(m, tw, MCU_DT_INT8);
    if (!p->weights) return MCU_ERR_PARAMS;
    p->kh = w.dims[1];
    p->kw = w.dims[2];
    int32_t oc = y.dims[3];
    if (dw ? (w.dims[0] != 1 || w.dims[3] != oc || p->depth_multiplier < 1 || x.dims[3] * p->depth_multiplier != oc)
           : (w.dims[0] != oc || w.dims[3] != x.dims[3]))
        return MCU_ERR_PARAMS;
    p->bias = NULL;
    if (op->n_in > 2 && mcu_op_in(op, 2) >= 0) {
        mcu_tensor b;
        mcu_tensor_at(m, mcu_op_in(op, 2), &b);
        p->bias = (const int32_t *)(const void *)const_data(m, mcu_op_in(op, 2), MCU_DT_INT32);
        if (!p->bias || b.rank != 1 || b.dims[0] != oc) return MCU_ERR_PARAMS;
    }
    p->multiplier = data_array(m, moff, mcnt);
    p->shift = data_array(m, soff, scnt);
    p->rq = data_array(m, qoff, qcnt);
    if (!p->rq || qcnt != MCU_RQ_WORDS * oc) return MCU_ERR_PARAMS;
    if (!p->multiplier || !p->shift || mcnt != oc || scnt != oc) return MCU_ERR_PARAMS;
    if (p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 || p->dil_w < 1 || p->stride_h > 64 || p->stride_w > 64 ||
        p->dil_h > 64 || p->dil_w > 64 || p->pad_t < 0 || p->pad_l < 0 || p->pad_b < 0 || p->pad_r < 0 ||
        p->pad_t > 256 || p->pad_l > 256 || p->pad_b > 256 || p->pad_r > 256 || p->kh < 1 || p->kw < 1)
        return MCU_ERR_PARAMS;
    /* The output size the geometry gives must be the tensor's. */
    int32_t eh = (p->kh - 1) * p->dil_h + 1, ew = (p->kw - 1) * p->dil_w + 1;
    if (x.dims[1] + p->pad_t + p->pad_b < eh || x.dims[2] + p->pad_l + p->pad_r < ew ||
        (x.dims[1] + p->pad_t + p->pad_b - eh) / p->stride_h + 1 != y.dims[1] ||
        (x.dims[2] + p->pad_l + p->pad_r - ew) / p->stride_w + 1 != y.dims[2])
        return MCU_ERR_PARAMS;
    if (p->input_offset < -255 || p->input_offset > 255 || p->output_offset < -128 || p->output_offset > 127 ||
        p->act_min < -128 || p->act_max > 127 || p->act_min > p->act_max)
        return MCU_ERR_PARAMS;
    for (int32_t c = 0; c < oc; c++) {
        /* the rescale constants must be the ones ref/conv.py rq_table derives */
        const int32_t *q = p->rq + MCU_RQ_WORDS * c, mu = p->multiplier[c], r = -p->shift[c];
        const int fast = r >= 0 && r <= 16;
        if (p->shift[c] < -31 || p->shift[c] > 30 || mu < 0 || q[1] != mu >> 16 || q[2] != (mu & 0xFFFF) ||
            q[3] != (fast ? (1 << 14) + (r ? 1 << (14 + r) : 0) : 0) || q[4] != (fast ? 15 + r : 0) ||
            q[5] != (fast ? 16 : 0))
            return MCU_ERR_PARAMS;
    }
    return MCU_OK;
}

static mcu_status check_op_params(const mcu_model *m, const mcu_op *op) {
    mcu_tensor y;
    mcu_tensor_at(m, mcu_op_out(op, 0), &y);
    switch (op->code) {
    case MCU_OP_CONV_2D:
    case MCU_OP_DEPTHWISE_CONV_2D: {
        mcu_conv_params p;
        return mcu_conv_params_of(m, op, &p, 1);
    }
    case MCU_OP_FULLY_CONNECTED: {
        int32_t mcnt = mcu_word(op, 5), scnt = mcu_word(op, 7), tw = op->n_in > 1 ? mcu_op_in(op, 1) : -1;
        mcu_tensor w;
        if (tw < 0 || !const_data(m, tw, MCU_DT_INT8)) return MCU_ERR_PARAMS;
        mcu_tensor_at(m, tw, &w);
        if (w.rank != 2 || mcnt != w.dims[0] || scnt != w.dims[0]) return MCU_ERR_PARAMS;
        const int32_t *sh = data_array(m, mcu_word(op, 6), scnt);
        if (!data_array(m, mcu_word(op, 4), mcnt) || !sh || (uint32_t)mcu_word(op, 8) > 1u) return MCU_ERR_PARAMS;
        for (int32_t c = 0; c < scnt; c++)
            if (sh[c] < -31 || sh[c] > 30) return MCU_ERR_PARAMS;
        return MCU_OK;
    }
    case MCU_OP_ADD:
        for (int k = 4; k < 10; k += 2)
            if (mcu_word(op, k + 1) < -31 || mcu_word(op, k + 1) > 0) return MCU_ERR_PARAMS;
        return (mcu_word(op, 3) < 0 || mcu_word(op, 3) > 24) ? MCU_ERR_PARAMS : MCU_OK;
    case MCU_OP_MUL:
        return (mcu_word(op, 4) < -31 || mcu_word(op, 4) > 30) ? MCU_ERR_PARAMS : MCU_OK;
    case MCU_OP_AVERAGE_POOL_2D:
    case MCU_OP_MAX_POOL_2D:
        for (int k = 0; k < 8; k++)
            if (mcu_word(op, k) < (k < 4 ? 0 : 1) || mcu_word(op, k) > 256) return MCU_ERR_PARAMS;
        return MCU_OK;
    case MCU_OP_QUANTIZE:
        return ((uint32_t)mcu_word(op, 0) > 1u || mcu_word(op, 5) < -31 || mcu_word(op, 5) > 30) ? MCU_ERR_PARAMS : MCU_OK;
    case MCU_OP_TRANSPOSE:
    case MCU_OP_MEAN: {
        int32_t n = mcu_word(op, 0);
        if (n < 0 || n > 4) return MCU_ERR_PARAMS;
        for (int k = 0; k < n; k++)
            if ((uint32_t)mcu_word(op, 1 + k) > 3u) return MCU_ERR_PARAMS;
        if (op->code == MCU_OP_MEAN && (mcu_word(op, 9) < -31 || mcu_word(op, 9) > 30)) return MCU_ERR_PARAMS;
        return MCU_OK;
    }
    case MCU_OP_PAD:
        if ((uint32_t)mcu_word(op, 0) > 4u) return MCU_ERR_PARAMS;
        for (int k = 1; k < 9; k++)
            if (mcu_word(op, k) < 0 || mcu_word(op, k) > 4096) return MCU_ERR_PARAMS;
        return MCU_OK;
    case MCU_OP_RESIZE_NEAREST_NEIGHBOR: {
        const int32_t *iy = data_array(m, mcu_word(op, 0), mcu_word(op, 1));
        const int32_t *ix = data_array(m, mcu_word(op, 2), mcu_word(op, 3));
        mcu_tensor x;
        if (!iy || !ix || y.rank != 4 || mcu_word(op, 1) != y.dims[1] || mcu_word(op, 3) != y.dims[2]) return MCU_ERR_PARAMS;
        mcu_tensor_at(m, mcu_op_in(op, 0), &x);
        for (int32_t k = 0; k < y.dims[1]; k++)
            if (iy[k] < 0 || iy[k] >= x.dims[1]) return MCU_ERR_PARAMS;
        for (int32_t k = 0; k < y.dims[2]; k++)
            if (ix[k] < 0 || ix[k] >= x.dims[2]) return MCU_ERR_PARAMS;
        return MCU_OK;
    }
    default:
        return MCU_OK;
    }
}

static mcu_status check_buffer(const mcu_model *m, const mcu_buffer *b) {
    if (b->kind > MCU_BUF_PIXEL || (uint64_t)b->offset + b->size > m->arena_bytes || (b->offset & 3u) ||
        (uint32_t)b->rows * b->width * b->channels != b->size)
        return MCU_ERR_BUFFER;
    if (b->key < 0) return MCU_OK; /* a step's scratch */
    if (b->key >= m->n_tensors) return MCU_ERR_BUFFER;
    mcu_tensor t;
    mcu_tensor_at(m, b->key, &t);
    if (t.flags & MCU_T_CONST) return MCU_ERR_BUFFER;
    int64_t nbytes = tensor_bytes(&t);
    if (b->kind == MCU_BUF_PIXEL) return (t.rank == 4 && b->channels == t.dims[3]) ? MCU_OK : MCU_ERR_BUFFER;
    if (t.rank == 4) {
        if (b->channels != t.dims[3] || b->width > t.dims[2] || b->rows < 1) return MCU_ERR_BUFFER;
        if (b->kind == MCU_BUF_FULL && (b->rows != t.dims[1] || b->width != t.dims[2])) return MCU_ERR_BUFFER;
        return MCU_OK;
    }
    return (b->kind == MCU_BUF_FULL && b->size == nbytes) ? MCU_OK : MCU_ERR_BUFFER;
}

static int view_ok(const mcu_model *m, int32_t t, uint32_t patch, int32_t r0, int32_t r1, int32_t c0, int32_t c1) {
    /* Rows and columns [r0, r1) x [c0, c1) of tensor t lie inside its buffer. */
    mcu_buffer b;
    if (!mcu_buffer_of(m, t, &b) || b.kind == MCU_BUF_PIXEL) return 0;
    int32_t o = mcu_col_origin(m, patch, t);
    if (r0 < 0 || c0 < o || c1 > o + b.width || r0 > r1 || c0 > c1) return 0;
    if (b.kind == MCU_BUF_FULL && r1 > b.rows) return 0;
    return 1;
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
    for (int k = 0; k < op->n_in; k++) {
        if (mcu_op_in(op, k) < 0) continue;
        mcu_tensor_at(m, mcu_op_in(op, k), &t);
        if (!(t.flags & MCU_T_CONST) && t.dtype != MCU_DT_INT8) return MCU_ERR_UNSUPPORTED;
    }
    if (y.dtype != MCU_DT_INT8 && !(op->code == MCU_OP_SOFTMAX && y.dtype == MCU_DT_INT16)) return MCU_ERR_UNSUPPORTED;
    switch (op->code) {
    case MCU_OP_CONV_2D:
    case MCU_OP_DEPTHWISE_CONV_2D:
    case MCU_OP_AVERAGE_POOL_2D:
    case MCU_OP_MAX_POOL_2D:
        return (x.rank == 4 && y.rank == 4 && (op->code <= MCU_OP_DEPTHWISE_CONV_2D || x.dims[3] == y.dims[3]))
                   ? MCU_OK : MCU_ERR_PARAMS;
    case MCU_OP_LOGISTIC:
    case MCU_OP_HARD_SWISH:
        /* element by element, so any rank (a detector's LOGISTIC runs on [1, N, classes]);
         * a tensor that is not a 4-D map runs as one flat pixel */
        return (x.rank == y.rank && !memcmp(x.dims, y.dims, sizeof x.dims)) ? MCU_OK : MCU_ERR_PARAMS;
    case MCU_OP_QUANTIZE:
        if (mcu_word(op, 0) != 1) return MCU_ERR_UNSUPPORTED; /* float -> int8 runs on the host */
        return (x.rank == y.rank && !memcmp(x.dims, y.dims, sizeof x.dims)) ? MCU_OK : MCU_ERR_PARAMS;
    case MCU_OP_ADD:
    case MCU_OP_MUL:
        if (op->n_in != 2 || y.rank > 4) return MCU_ERR_PARAMS;
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
        for (int k = 0; k < op->n_in; k++) {
            if (mcu_op_in(op, k) < 0) return MCU_ERR_PARAMS;
            mcu_tensor_at(m, mcu_op_in(op, k), &t);
            if (t.rank != y.rank) return MCU_ERR_PARAMS;
            for (int d = 0; d < y.rank; d++)
                if (d != axis && t.dims[d] != y.dims[d]) return MCU_ERR_PARAMS;
            sum += t.dims[axis];
        }
        return sum == y.dims[axis] ? MCU_OK : MCU_ERR_PARAMS;
    }
    case MCU_OP_RESIZE_NEAREST_NEIGHBOR:
        return (x.rank == 4 && y.rank == 4 && x.dims[0] == y.dims[0] && x.dims[3] == y.dims[3]) ? MCU_OK : MCU_ERR_PARAMS;
    default:
        return MCU_ERR_UNSUPPORTED; /* DEQUANTIZE: float, a host step */
    }
}

static mcu_status check_step(const mcu_model *m, uint32_t i) {
    mcu_step s;
    mcu_op op;
    mcu_tensor y;
    mcu_step_at(m, i, &s);
    if (s.kind < MCU_STEP_RUN || s.kind > MCU_STEP_POST || (s.flags & ~1u) || s.patch >= (m->n_patches ? m->n_patches : 1))
        return MCU_ERR_STEP;
    if (s.kind == MCU_STEP_INPUT) {
        int k;
        for (k = 0; k < m->n_inputs; k++)
            if (m->inputs[k].tensor == s.op) break;
        if (k == m->n_inputs || s.r0 >= s.r1 || s.c0 != 0 || s.r1 > m->inputs[k].shape[1] ||
            s.c1 != m->inputs[k].shape[2] || !view_ok(m, s.op, 0, s.r0, s.r1, 0, s.c1))
            return MCU_ERR_STEP;
        mcu_buffer b;
        mcu_buffer_of(m, s.op, &b);
        return (b.kind == MCU_BUF_RING && s.r1 - s.r0 > b.rows) ? MCU_ERR_STEP : MCU_OK;
    }
    if (s.op < 0 || s.op >= m->n_ops) return MCU_ERR_STEP;
    if (s.kind == MCU_STEP_PRE || s.kind == MCU_STEP_POST) return MCU_OK;
    mcu_op_at(m, s.op, &op);
    mcu_tensor_at(m, mcu_op_out(&op, 0), &y);
    mcu_buffer ob;
    if (!mcu_buffer_of(m, mcu_op_out(&op, 0), &ob)) return MCU_ERR_STEP;
    for (int k = 0; k < op.n_in; k++) {
        int32_t t = mcu_op_in(&op, k);
        mcu_tensor x;
        mcu_buffer xb;
        if (t < 0) continue;
        mcu_tensor_at(m, t, &x);
        if (x.flags & MCU_T_CONST) continue;
        if (!mcu_buffer_of(m, t, &xb)) return MCU_ERR_STEP;
        if (s.kind == MCU_STEP_RUN && xb.kind != MCU_BUF_FULL) return MCU_ERR_STEP;
    }
    if (s.kind == MCU_STEP_RUN) {
        if (ob.kind != MCU_BUF_FULL || s.fused != -1) return MCU_ERR_STEP;
        mcu_status st = check_whole(m, &op);
        if (st != MCU_OK) return st;
        if (s.flags & 1u) {
            if (ob.alias_of != mcu_op_in(&op, 0) ||
                !(op.code == MCU_OP_RESHAPE || (op.code == MCU_OP_DEPTHWISE_CONV_2D && mcu_word(&op, 8) == 1)))
                return MCU_ERR_STEP;
            if (op.code == MCU_OP_DEPTHWISE_CONV_2D) {
                mcu_buffer sb;
                if (!mcu_buffer_of(m, -1 - (int32_t)i, &sb) || sb.size < (uint32_t)(y.dims[1] * y.dims[2]))
                    return MCU_ERR_STEP;
            }
        }
        return MCU_OK;
    }
    /* WINDOW: a row-local op on 4-D int8 maps; every view it touches must hold the window. */
    if (y.rank != 4 || s.r0 >= s.r1 || s.c0 >= s.c1 || s.r1 > y.dims[1] || s.c1 > y.dims[2]) return MCU_ERR_STEP;
    if (!view_ok(m, mcu_op_out(&op, 0), s.patch, s.r0, s.r1, s.c0, s.c1)) return MCU_ERR_STEP;
    if (ob.kind == MCU_BUF_RING && s.r1 - s.r0 > ob.rows) return MCU_ERR_STEP;
    const mcu_op *first = &op;
    mcu_op dwop;
    mcu_conv_params p, q;
    if (s.fused >= 0) {
        if (s.fused >= m->n_ops || op.code != MCU_OP_CONV_2D) return MCU_ERR_STEP;
        mcu_op_at(m, s.fused, &dwop);
        if (dwop.code != MCU_OP_DEPTHWISE_CONV_2D || mcu_op_out(&dwop, 0) != mcu_op_in(&op, 0)) return MCU_ERR_STEP;
        if (mcu_conv_params_of(m, &op, &q, 1) != MCU_OK || q.kh != 1 || q.kw != 1 || q.stride_h != 1 || q.stride_w != 1 ||
            q.pad_t || q.pad_l || q.pad_b || q.pad_r)
            return MCU_ERR_STEP;
        mcu_buffer pb;
        if (!mcu_buffer_of(m, mcu_op_out(&dwop, 0), &pb) || pb.kind != MCU_BUF_PIXEL) return MCU_ERR_STEP;
        first = &dwop;
    }
    switch (first->code) {
    case MCU_OP_CONV_2D:
    case MCU_OP_DEPTHWISE_CONV_2D:
    case MCU_OP_AVERAGE_POOL_2D:
    case MCU_OP_MAX_POOL_2D: {
        int32_t sh, sw, eh, ew, pt, pl;
        mcu_tensor x;
        int32_t tx = mcu_op_in(first, 0);
        mcu_tensor_at(m, tx, &x);
        if (x.rank != 4) return MCU_ERR_STEP;
        if (first->code == MCU_OP_CONV_2D || first->code == MCU_OP_DEPTHWISE_CONV_2D) {
            if (mcu_conv_params_of(m, first, &p, 1) != MCU_OK) return MCU_ERR_STEP;
            sh = p.stride_h, sw = p.stride_w, pt = p.pad_t, pl = p.pad_l;
            eh = (p.kh - 1) * p.dil_h + 1, ew = (p.kw - 1) * p.dil_w + 1;
        } else {
            pt = mcu_word(first, 0), pl = mcu_word(first, 1), eh = mcu_word(first, 4), ew = mcu_word(first, 5);
            sh = mcu_word(first, 6), sw = mcu_word(first, 7);
        }
        int32_t a = s.r0 * sh - pt, b = (s.r1 - 1) * sh - pt + eh, c = s.c0 * sw - pl, d = (s.c1 - 1) * sw - pl + ew;
        a = a < 0 ? 0 : a, c = c < 0 ? 0 : c;
        b = b > x.dims[1] ? x.dims[1] : b, d = d > x.dims[2] ? x.dims[2] : d;
        if (a < b && c < d && !view_ok(m, tx, s.patch, a, b, c, d)) return MCU_ERR_STEP;
        return MCU_OK;
    }
    case MCU_OP_ADD:
    case MCU_OP_MUL:
    case MCU_OP_QUANTIZE:
    case MCU_OP_LOGISTIC:
    case MCU_OP_HARD_SWISH:
        for (int k = 0; k < first->n_in; k++) {
            int32_t t = mcu_op_in(first, k);
            mcu_tensor x;
            mcu_tensor_at(m, t, &x);
            if (x.rank != 4 || memcmp(x.dims, y.dims, sizeof x.dims) != 0) return MCU_ERR_STEP;
            if (!view_ok(m, t, s.patch, s.r0, s.r1, s.c0, s.c1)) return MCU_ERR_STEP;
        }
        return (first->code == MCU_OP_QUANTIZE && mcu_word(first, 0) != 1) ? MCU_ERR_STEP : MCU_OK;
    default:
        return MCU_ERR_STEP;
    }
}

static mcu_status load_io(mcu_model *m, const uint8_t **pp, const uint8_t *end, int n, mcu_io *io) {
    const uint8_t *p = *pp;
    for (int k = 0; k < n; k++) {
        if (p + 2 > end) return MCU_ERR_PLAN;
        int32_t t = mcu_rds16(p);
        p += 2;
        mcu_tensor x;
        mcu_buffer b;
        if (t < 0 || t >= m->n_tensors) return MCU_ERR_PLAN;
        mcu_tensor_at(m, t, &x);
        if (x.dtype != MCU_DT_INT8 || !mcu_buffer_of(m, t, &b)) return MCU_ERR_PLAN;
        io[k].tensor = (int16_t)t;
        io[k].rank = x.rank;
        for (int d = 0; d < 4; d++) io[k].shape[d] = d < x.rank ? x.dims[d] : 1;
        io[k].bytes = (int32_t)tensor_bytes(&x);
        io[k].zero_point = x.zero_point;
        io[k].scale_bits = x.scale_bits;
    }
    *pp = p;
    return MCU_OK;
}

mcu_status mcu_load(const uint8_t *img, uint32_t len, mcu_model *m) {
    if (!img || !m) return MCU_ERR_ARG;
    memset(m, 0, sizeof *m);
    if ((uintptr_t)img & 3u) return MCU_ERR_ARG; /* fields are read as aligned words */
    if (len < 4) return MCU_ERR_TRUNCATED;
    if (memcmp(img, "MCUN", 4) != 0) return MCU_ERR_MAGIC;
    if (len < MCU_HEADER_SIZE) return MCU_ERR_TRUNCATED;
    if (mcu_rd16(img + 4) != MCU_FORMAT_VERSION) return MCU_ERR_VERSION;
    if (mcu_rd16(img + 6) != MCU_HEADER_SIZE) return MCU_ERR_HEADER;
    {
        uint8_t h[MCU_HEADER_SIZE];
        memcpy(h, img, MCU_HEADER_SIZE);
        memset(h + 28, 0, 4);
        if (crc32(h, MCU_HEADER_SIZE, 0) != mcu_rd32(img + 28)) return MCU_ERR_HEADER_CRC;
    }
    uint32_t total = mcu_rd32(img + 12);
    if (mcu_rd32(img + 8) != 0) return MCU_ERR_HEADER;
    if (len < total) return MCU_ERR_TRUNCATED;
    if (len > total || total < MCU_HEADER_SIZE) return MCU_ERR_HEADER;
    if (crc32(img + MCU_HEADER_SIZE, total - MCU_HEADER_SIZE, 0) != mcu_rd32(img + 16)) return MCU_ERR_CRC;
    m->image = img;
    m->size = total;
    m->n_tensors = mcu_rd16(img + 20);
    m->n_ops = mcu_rd16(img + 22);
    m->arena_bytes = mcu_rd32(img + 24);
    if (m->n_tensors > 0x7FFF) return MCU_ERR_HEADER;

    span sec[8];
    for (int i = 0; i < 8; i++) {
        sec[i].off = mcu_rd32(img + 32 + 8 * i);
        sec[i].size = mcu_rd32(img + 36 + 8 * i);
        if (sec[i].off < MCU_HEADER_SIZE || (sec[i].off & 15u) || sec[i].off > total || sec[i].size > total - sec[i].off)
            return MCU_ERR_SECTION;
    }
    for (int i = 0; i < 8; i++)
        for (int j = i + 1; j < 8; j++)
            if (sec[i].off < sec[j].off + sec[j].size && sec[j].off < sec[i].off + sec[i].size && sec[i].size && sec[j].size)
                return MCU_ERR_SECTION;
    enum { STRINGS, TENSORS, OPS, IO, SCHEDULE, DATA, BUFFERS, PLAN };
    m->name = (const char *)img + sec[STRINGS].off;
    if (sec[STRINGS].size == 0 || memchr(m->name, 0, sec[STRINGS].size) == NULL) return MCU_ERR_SECTION;
    m->tensors = img + sec[TENSORS].off;
    m->ops = img + sec[OPS].off;
    m->ops_size = sec[OPS].size;
    m->data = img + sec[DATA].off;
    m->data_size = sec[DATA].size;
    if (sec[TENSORS].size != (uint32_t)m->n_tensors * MCU_TENSOR_ENTRY) return MCU_ERR_TENSOR;

    for (int32_t i = 0; i < m->n_tensors; i++) {
        mcu_tensor t;
        mcu_tensor_at(m, i, &t);
        const uint8_t *e = m->tensors + (uint32_t)i * MCU_TENSOR_ENTRY;
        if (t.dtype < 1 || t.dtype > 7 || t.rank > 4 || (t.flags & ~15u) || e[3]) return MCU_ERR_TENSOR;
        int64_t n = tensor_bytes(&t);
        if (n < 0) return MCU_ERR_TENSOR;
        if (t.flags & MCU_T_CONST) {
            if ((t.data_offset & 15u) || t.data_size != (uint32_t)n || t.data_offset > m->data_size ||
                t.data_size > m->data_size - t.data_offset)
                return MCU_ERR_TENSOR;
        }
        if (t.arena_offset != MCU_NONE32 && t.arena_offset >= (m->arena_bytes ? m->arena_bytes : 1)) return MCU_ERR_TENSOR;
    }

    if (m->ops_size < 4u * m->n_ops) return MCU_ERR_OP;
    for (int32_t i = 0; i < m->n_ops; i++) {
        uint32_t pos = mcu_rd32(m->ops + 4 * (uint32_t)i);
        if ((pos & 3u) || pos > m->ops_size || m->ops_size - pos < 8) return MCU_ERR_OP;
        mcu_op op;
        mcu_op_at(m, i, &op);
        if (op.code < 1 || op.code >= MCU_OP_COUNT || op.n_out < 1 || mcu_rd16(m->ops + pos + 6)) return MCU_ERR_OP;
        uint32_t words_at = (uint32_t)(op.words - m->ops);
        if (words_at > m->ops_size || (m->ops_size - words_at) / 4u < op.n_words) return MCU_ERR_OP;
        for (int k = 0; k < op.n_in + op.n_out; k++) {
            int32_t t = mcu_rds16(op.io + 2 * k);
            if (t < (k < op.n_in ? -1 : 0) || t >= m->n_tensors) return MCU_ERR_OP;
        }
        if (op.n_words != EXPECTED_WORDS[op.code]) return MCU_ERR_PARAMS;
    }

    /* BUFFERS: sorted by key (binary search relies on it), each inside the arena. */
    const uint8_t *b0 = img + sec[BUFFERS].off;
    if (sec[BUFFERS].size < 4) return MCU_ERR_BUFFER;
    m->n_buffers = mcu_rd32(b0);
    if (m->n_buffers > (sec[BUFFERS].size - 4) / MCU_BUFFER_ENTRY) return MCU_ERR_BUFFER;
    m->buffers = b0 + 4;
    for (uint32_t i = 0; i < m->n_buffers; i++) {
        mcu_buffer b;
        buffer_at(m, i, &b);
        const uint8_t *e = m->buffers + i * MCU_BUFFER_ENTRY;
        if (e[3] || mcu_rd32(e + 20)) return MCU_ERR_BUFFER;
        if (i && mcu_rds16(e - MCU_BUFFER_ENTRY) >= b.key) return MCU_ERR_BUFFER;
        mcu_status st = check_buffer(m, &b);
        if (st != MCU_OK) return st;
        if (b.alias_of >= 0) {
            mcu_buffer a;
            if (b.alias_of == b.key || !mcu_buffer_of(m, b.alias_of, &a) || a.offset != b.offset) return MCU_ERR_BUFFER;
        } else if (b.alias_of != -1) {
            return MCU_ERR_BUFFER;
        }
    }

    /* PLAN */
    const uint8_t *p = img + sec[PLAN].off, *pend = p + sec[PLAN].size;
    if (sec[PLAN].size < 32) return MCU_ERR_PLAN;
    m->strategy = p[0];
    m->halo = p[1];
    m->streamed = (uint8_t)(mcu_rd32(p + 8) & 1u);
    if (m->strategy > 2 || m->halo > 2 || (mcu_rd32(p + 8) & ~1u)) return MCU_ERR_PLAN;
    uint32_t n_in = mcu_rd16(p + 28), n_out = mcu_rd16(p + 30);
    if (n_in > MCU_MAX_IO || n_out > MCU_MAX_IO || n_out < 1) return MCU_ERR_PLAN;
    m->n_inputs = (uint8_t)n_in;
    m->n_outputs = (uint8_t)n_out;
    p += 32;
    mcu_status st = load_io(m, &p, pend, (int)n_in, m->inputs);
    if (st == MCU_OK) st = load_io(m, &p, pend, (int)n_out, m->outputs);
    if (st != MCU_OK) return st;
    for (uint32_t k = 0; k < n_out; k++) {
        mcu_buffer b;
        mcu_buffer_of(m, m->outputs[k].tensor, &b);
        if (b.kind != MCU_BUF_FULL) return MCU_ERR_PLAN;
    }
    if (p + 2 > pend) return MCU_ERR_PLAN;
    m->n_patches = mcu_rd16(p);
    p += 2;
    m->col_origin = p;
    for (uint32_t k = 0; k < m->n_patches; k++) {
        if (p + 2 > pend) return MCU_ERR_PLAN;
        uint32_t cnt = mcu_rd16(p);
        p += 2;
        if ((uint32_t)(pend - p) / 4u < cnt) return MCU_ERR_PLAN;
        for (uint32_t j = 0; j < cnt; j++)
            if (mcu_rd16(p + 4 * j) >= m->n_tensors) return MCU_ERR_PLAN;
        p += 4 * cnt;
    }

    /* SCHEDULE */
    const uint8_t *s0 = img + sec[SCHEDULE].off;
    if (sec[SCHEDULE].size < 4) return MCU_ERR_STEP;
    m->n_steps = mcu_rd32(s0);
    if (m->n_steps > (sec[SCHEDULE].size - 4) / MCU_STEP_ENTRY) return MCU_ERR_STEP;
    m->steps = s0 + 4;
    for (int32_t i = 0; i < m->n_ops; i++) {
        mcu_op op;
        mcu_op_at(m, i, &op);
        mcu_tensor y;
        mcu_tensor_at(m, mcu_op_out(&op, 0), &y);
        mcu_buffer b;
        if (!mcu_buffer_of(m, mcu_op_out(&op, 0), &b)) continue; /* a host-side op */
        st = check_op_params(m, &op);
        if (st != MCU_OK) return st;
    }
    for (uint32_t i = 0; i < m->n_steps; i++) {
        st = check_step(m, i);
        if (st != MCU_OK) return st;
    }
    return MCU_OK;
}

uint32_t mcu_arena_bytes(const mcu_model *m) { return m ? m->arena_bytes : 0; }
