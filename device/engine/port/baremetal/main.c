/* Bare-metal harness: run one job (job.h) through the engine, then return to the
 * startup code, which stops at `bkpt #0`.
 *
 * Between mcu_load and mcu_invoke it calls mcu_harness_mark(1), an empty function a
 * host can stop at to split the instruction count into load and inference. */
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "mcunet.h"

/* job.h's word offsets are what hosts use: check them against the struct (C99: no
 * _Static_assert, so a negative array size fails the build). */
#define JOB_AT(field, w) typedef char job_##field##_at_word_##w[offsetof(mcu_job, field) == 4 * (w) ? 1 : -1]
JOB_AT(flags, MCU_JOB_W_FLAGS);
JOB_AT(image_len, MCU_JOB_W_IMAGE_LEN);
JOB_AT(arena_len, MCU_JOB_W_ARENA_LEN);
JOB_AT(n_outputs, MCU_JOB_W_N_OUTPUTS);
JOB_AT(inputs, MCU_JOB_W_INPUTS);
JOB_AT(outputs, MCU_JOB_W_OUTPUTS);
JOB_AT(load_status, MCU_JOB_W_LOAD_STATUS);
JOB_AT(invoke_status, MCU_JOB_W_INVOKE_STATUS);
JOB_AT(arena_bytes, MCU_JOB_W_ARENA_BYTES);
JOB_AT(model_outputs, MCU_JOB_W_MODEL_OUTPUTS);
JOB_AT(input_bytes, MCU_JOB_W_INPUT_BYTES);
JOB_AT(output_bytes, MCU_JOB_W_OUTPUT_BYTES);
JOB_AT(done, MCU_JOB_W_DONE);
typedef char job_words[sizeof(mcu_job) == 4 * MCU_JOB_WORDS ? 1 : -1];

/* Placed by the linker script at MCU_JOB_ADDR. Not static, so nothing assumes its value. */
__attribute__((section(".job"), used)) mcu_job mcu_job_block;

static mcu_model model;

__attribute__((noinline, used)) void mcu_harness_mark(int phase) {
    __asm__ volatile("" ::"r"(phase) : "memory");
}

int main(void) {
    volatile mcu_job *j = &mcu_job_block;
    const int8_t *in[MCU_MAX_IO];
    int8_t *out[MCU_MAX_IO];

    if (j->magic != MCU_JOB_MAGIC) return 1;
    j->load_status = MCU_ERR_ARG;
    j->invoke_status = MCU_ERR_ARG;
    mcu_status st = mcu_load((const uint8_t *)(uintptr_t)j->image, j->image_len, &model);
    j->load_status = st;
    if (st == MCU_OK) {
        j->arena_bytes = mcu_arena_bytes(&model);
        j->model_inputs = model.n_inputs;
        j->model_outputs = model.n_outputs;
        for (int k = 0; k < model.n_inputs; k++) j->input_bytes[k] = (uint32_t)model.inputs[k].bytes;
        for (int k = 0; k < model.n_outputs; k++) j->output_bytes[k] = (uint32_t)model.outputs[k].bytes;
    }
    mcu_harness_mark(1);
    if (st == MCU_OK && !(j->flags & MCU_JOB_LOAD_ONLY)) {
        uint32_t n_in = j->n_inputs, n_out = j->n_outputs;
        for (uint32_t k = 0; k < MCU_MAX_IO; k++) {
            in[k] = k < n_in ? (const int8_t *)(uintptr_t)j->inputs[k] : (const int8_t *)0;
            out[k] = k < n_out ? (int8_t *)(uintptr_t)j->outputs[k] : (int8_t *)0;
        }
        if (n_in < model.n_inputs || n_out < model.n_outputs) {
            j->invoke_status = MCU_ERR_ARG;
        } else {
            j->invoke_status = mcu_invoke(&model, (uint8_t *)(uintptr_t)j->arena, j->arena_len, in, out);
        }
    }
    j->done = MCU_JOB_DONE;
    return 0;
}
