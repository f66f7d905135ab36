/* mcunet: runs an mcutool flash image (format v3) in one caller-given arena.
 *
 * Portable C99. No malloc, no mutable globals, no floating point. The image is read in
 * place (it may sit in memory-mapped flash); the only writable memory is the arena.
 *
 *   mcu_model m;
 *   mcu_status s = mcu_load(image, image_len, &m);      // validates everything
 *   uint32_t need = mcu_arena_bytes(&m);
 *   s = mcu_invoke(&m, arena, arena_len, inputs, outputs);
 *
 * Streamed plans take their input in row bands: mcu_begin(), then mcu_feed() rows as they
 * arrive (mcu_need() says which), until it returns MCU_DONE.
 */
#ifndef MCUNET_H
#define MCUNET_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MCU_FORMAT_VERSION 3
#define MCU_ENGINE_VERSION "0.1.0"
#define MCU_MAX_IO 8

typedef enum {
    MCU_OK = 0,
    MCU_DONE = 1,           /* mcu_feed: the inference is complete */
    MCU_NEED_INPUT = 2,     /* mcu_feed: more input rows are needed (see mcu_need) */
    MCU_ERR_ARG = -1,       /* a NULL pointer, a misaligned image, or an argument out of range */
    MCU_ERR_TRUNCATED = -2, /* fewer bytes than the header or the total size says */
    MCU_ERR_MAGIC = -3,     /* not an mcutool flash image */
    MCU_ERR_VERSION = -4,   /* a format version this engine does not read */
    MCU_ERR_HEADER = -5,    /* header size, flags or total size inconsistent */
    MCU_ERR_HEADER_CRC = -6,
    MCU_ERR_CRC = -7,       /* content CRC32 mismatch: the image is corrupt */
    MCU_ERR_SECTION = -8,   /* a section outside the image, misaligned or overlapping */
    MCU_ERR_TENSOR = -9,    /* a tensor entry out of range or inconsistent */
    MCU_ERR_OP = -10,       /* an op record out of range, or an op this engine lacks */
    MCU_ERR_PARAMS = -11,   /* op parameters out of range or inconsistent with shapes */
    MCU_ERR_BUFFER = -12,   /* a buffer outside the arena or inconsistent with its tensor */
    MCU_ERR_STEP = -13,     /* a schedule step naming something invalid */
    MCU_ERR_PLAN = -14,     /* the plan section is inconsistent */
    MCU_ERR_ARENA = -15,    /* the arena is smaller than mcu_arena_bytes() or misaligned */
    MCU_ERR_STATE = -16,    /* mcu_feed out of order, or rows other than those asked for */
    MCU_ERR_UNSUPPORTED = -17 /* a valid image using something this build leaves out */
} mcu_status;

const char *mcu_status_str(mcu_status s);

/* A tensor as the host sees it at the device boundary. */
typedef struct {
    int32_t shape[4];
    int32_t rank;
    int32_t bytes;
    int32_t zero_point;
    uint32_t scale_bits; /* the float32 scale's bit pattern (no float in the engine) */
    int16_t tensor;
} mcu_io;

/* Everything mcu_load learned, as offsets into the image (never copies of it). */
typedef struct {
    const uint8_t *image;
    uint32_t size;
    uint32_t arena_bytes;
    uint16_t n_tensors, n_ops;
    const uint8_t *tensors;   /* TENSORS section: 48-byte entries */
    const uint8_t *ops;       /* OPS section: offset table, then records */
    uint32_t ops_size;
    const uint8_t *data;      /* DATA section */
    uint32_t data_size;
    const uint8_t *steps;     /* SCHEDULE entries (16 bytes each) */
    uint32_t n_steps;
    const uint8_t *buffers;   /* BUFFERS entries (24 bytes each), sorted by key */
    uint32_t n_buffers;
    const uint8_t *col_origin; /* PLAN's per-patch column origin lists */
    uint16_t n_patches;
    uint8_t strategy, halo, streamed;
    uint8_t n_inputs, n_outputs;
    uint16_t check; /* mcu_load: the row of docs/flash-image.md §6 that failed first, 0 if none */
    mcu_io inputs[MCU_MAX_IO], outputs[MCU_MAX_IO];
    const char *name;
} mcu_model;

/* `image` must be word-aligned (flash images are placed on 16-byte boundaries). */
mcu_status mcu_load(const uint8_t *image, uint32_t len, mcu_model *m);
uint32_t mcu_arena_bytes(const mcu_model *m);

/* Whole-tensor inference: inputs[k] holds device input k (int8 NHWC), outputs[k] receives
 * device output k. Works for streamed plans too (rows are taken from inputs[k]). */
mcu_status mcu_invoke(const mcu_model *m, uint8_t *arena, uint32_t arena_len,
                      const int8_t *const *inputs, int8_t *const *outputs);

/* Row-band inference, for plans that stream their input. */
typedef struct {
    const mcu_model *m;
    uint8_t *arena;
    uint32_t step;        /* next schedule step */
    int32_t need_input;   /* device input the next INPUT step wants, or -1 */
    int32_t need_r0, need_r1; /* its rows [r0, r1) */
} mcu_run;

mcu_status mcu_begin(mcu_run *r, const mcu_model *m, uint8_t *arena, uint32_t arena_len);
/* Writes device input k's whole tensor into the arena (for inputs the plan keeps whole). */
mcu_status mcu_set_input(mcu_run *r, int k, const int8_t *data);
/* Runs until the next INPUT step, or the end. */
mcu_status mcu_continue(mcu_run *r);
/* Delivers rows [r0, r1) of device input k (each row w*c bytes), then continues. */
mcu_status mcu_feed(mcu_run *r, int k, int32_t r0, int32_t r1, const int8_t *rows);
/* A device output inside the arena, valid once the run is done. */
const int8_t *mcu_output(const mcu_run *r, int k);

#ifdef __cplusplus
}
#endif
#endif
