/* The job block: how a host (an emulator, a debugger, a test rig) tells the bare-metal
 * harness what to run, and reads back what happened. It sits at a fixed SRAM address
 * (MCU_JOB_ADDR, the first bytes of SRAM; the linker script checks it), is written by
 * the host before reset and read back after the harness stops at `bkpt #0`.
 *
 * Every field is a 32-bit little-endian word; host/mcutool/emu/ mirrors this layout
 * (keep the two in step: MCU_JOB_* offsets below are what it uses).
 */
#ifndef MCU_JOB_H
#define MCU_JOB_H

#include <stdint.h>

#include "mcunet.h"

#define MCU_JOB_ADDR 0x20000000u
#define MCU_JOB_MAGIC 0x314A434Du /* "MCJ1" */
#define MCU_JOB_DONE 0x454E4F44u  /* "DONE" */

#define MCU_JOB_LOAD_ONLY 1u /* flags: stop after mcu_load */

typedef struct {
    /* written by the host */
    uint32_t magic;                /* MCU_JOB_MAGIC, or the harness does nothing */
    uint32_t flags;                /* MCU_JOB_LOAD_ONLY */
    uint32_t image, image_len;     /* the flash image, read in place */
    uint32_t arena, arena_len;     /* the engine's only writable memory */
    uint32_t n_inputs, n_outputs;  /* entries used in inputs[] / outputs[] */
    uint32_t inputs[MCU_MAX_IO];   /* device input k: int8 NHWC bytes */
    uint32_t outputs[MCU_MAX_IO];  /* device output k is written here */
    /* written by the harness */
    int32_t load_status;           /* mcu_load's status */
    int32_t invoke_status;         /* mcu_invoke's status (MCU_ERR_ARG if not run) */
    uint32_t arena_bytes;          /* mcu_arena_bytes() of the loaded model */
    uint32_t model_inputs, model_outputs;
    uint32_t input_bytes[MCU_MAX_IO], output_bytes[MCU_MAX_IO];
    uint32_t done;                 /* MCU_JOB_DONE once the harness returns */
} mcu_job;

/* Word offsets of the fields, for hosts that poke the block by hand. */
#define MCU_JOB_W_MAGIC 0
#define MCU_JOB_W_FLAGS 1
#define MCU_JOB_W_IMAGE 2
#define MCU_JOB_W_IMAGE_LEN 3
#define MCU_JOB_W_ARENA 4
#define MCU_JOB_W_ARENA_LEN 5
#define MCU_JOB_W_N_INPUTS 6
#define MCU_JOB_W_N_OUTPUTS 7
#define MCU_JOB_W_INPUTS 8
#define MCU_JOB_W_OUTPUTS (8 + MCU_MAX_IO)
#define MCU_JOB_W_LOAD_STATUS (8 + 2 * MCU_MAX_IO)
#define MCU_JOB_W_INVOKE_STATUS (9 + 2 * MCU_MAX_IO)
#define MCU_JOB_W_ARENA_BYTES (10 + 2 * MCU_MAX_IO)
#define MCU_JOB_W_MODEL_INPUTS (11 + 2 * MCU_MAX_IO)
#define MCU_JOB_W_MODEL_OUTPUTS (12 + 2 * MCU_MAX_IO)
#define MCU_JOB_W_INPUT_BYTES (13 + 2 * MCU_MAX_IO)
#define MCU_JOB_W_OUTPUT_BYTES (13 + 3 * MCU_MAX_IO)
#define MCU_JOB_W_DONE (13 + 4 * MCU_MAX_IO)
#define MCU_JOB_WORDS (14 + 4 * MCU_MAX_IO)

#endif
