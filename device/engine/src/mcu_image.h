/* Reading the flash image in place: little-endian fields at byte offsets. */
#ifndef MCU_IMAGE_H
#define MCU_IMAGE_H

#include <stdint.h>

#include "mcu_internal.h"

#define MCU_HEADER_SIZE 96u
#define MCU_TENSOR_ENTRY 48u
#define MCU_STEP_ENTRY 16u
#define MCU_BUFFER_ENTRY 24u
#define MCU_NONE32 0xFFFFFFFFu

enum { MCU_DT_INT8 = 1, MCU_DT_INT32 = 2, MCU_DT_FLOAT32 = 3, MCU_DT_UINT8 = 4, MCU_DT_INT16 = 5, MCU_DT_INT64 = 6, MCU_DT_BOOL = 7 };
enum { MCU_T_CONST = 1, MCU_T_INPUT = 2, MCU_T_OUTPUT = 4, MCU_T_QUANT = 8 };
enum { MCU_STEP_RUN = 1, MCU_STEP_WINDOW = 2, MCU_STEP_INPUT = 3, MCU_STEP_PRE = 4, MCU_STEP_POST = 5 };
enum { MCU_BUF_FULL = 0, MCU_BUF_RING = 1, MCU_BUF_PIXEL = 2 };

/* Every field is read at its natural alignment: the image starts word-aligned (mcu_load
 * checks), sections are 16-aligned, records 4-aligned, 16-bit fields 2-aligned. So on a
 * little-endian target a field is one load, not four byte loads and shifts; that matters
 * on the Cortex-M0+, where the executor decodes parameters at every step. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static inline uint16_t mcu_rd16(const uint8_t *p) { return *(const uint16_t *)(const void *)p; }
static inline uint32_t mcu_rd32(const uint8_t *p) { return *(const uint32_t *)(const void *)p; }
#else
static inline uint16_t mcu_rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t mcu_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
#endif
static inline int16_t mcu_rds16(const uint8_t *p) { return (int16_t)mcu_rd16(p); }
static inline int32_t mcu_rds32(const uint8_t *p) { return (int32_t)mcu_rd32(p); }

/* The records below are decoded into int32_t fields, whatever the width in the image: on
 * Thumb-1 a word of a struct on the stack is one load, a byte or half-word two. */

/* A tensor entry, decoded. */
typedef struct {
    int32_t dtype, rank, flags;
    int32_t dims[4];
    int32_t zero_point;
    uint32_t scale_bits, data_offset, data_size, arena_offset;
} mcu_tensor;

/* An op record, decoded: operands and the parameter words (still in the image). */
typedef struct {
    int32_t code, n_in, n_out, n_words;
    const uint8_t *io;    /* int16 operands: inputs then outputs */
    const uint8_t *words; /* int32 parameter words */
} mcu_op;

/* A buffer record, decoded. */
typedef struct {
    int32_t key, alias_of, kind, rows, width, channels;
    uint32_t offset, size;
} mcu_buffer;

/* A schedule step, decoded. */
typedef struct {
    int32_t kind, flags, op, fused, r0, r1, c0, c1, patch;
} mcu_step;

void mcu_tensor_at(const mcu_model *m, int32_t i, mcu_tensor *t);
void mcu_op_at(const mcu_model *m, int32_t i, mcu_op *op);
void mcu_step_at(const mcu_model *m, uint32_t i, mcu_step *s);
/* The buffer holding tensor `key` (or a step's scratch, key -1-step); 0 if none. */
int mcu_buffer_of(const mcu_model *m, int32_t key, mcu_buffer *b);
/* First column tensor `t` holds during patch `patch` (0 if the plan lists none). */
int32_t mcu_col_origin(const mcu_model *m, uint32_t patch, int32_t t);
static inline int32_t mcu_op_in(const mcu_op *op, int k) { return mcu_rds16(op->io + 2 * k); }
static inline int32_t mcu_op_out(const mcu_op *op, int k) { return mcu_rds16(op->io + 2 * (op->n_in + k)); }
static inline int32_t mcu_word(const mcu_op *op, int k) { return mcu_rds32(op->words + 4 * k); }

/* Decode a checked CONV_2D / DEPTHWISE_CONV_2D's parameters (words -> struct), with pointers
 * into DATA/constants. */
void mcu_conv_params_of(const mcu_model *m, const mcu_op *op, mcu_conv_params *p);

#endif
