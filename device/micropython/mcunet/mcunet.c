/* mcunet: the C engine (device/engine) as a MicroPython module.
 *
 * One source, two builds:
 *  - a user C module (micropython.mk / micropython.cmake): the firmware carries the module;
 *  - a dynamic native module (../natmod/Makefile, py/dynruntime.mk): an .mpy file that any
 *    firmware of a matching architecture and .mpy version can import.
 * A native module has no static MicroPython objects and no qstr constants (both are filled
 * in at load time), so the type, its method table and the keyword tables are built at run
 * time there; everything else is shared.
 *
 *   m = mcunet.Model(image)           # bytes-like, read in place (the object is kept)
 *   m = mcunet.Model(addr, length)    # memory-mapped flash
 *   m = mcunet.Model("label")         # ESP32 firmware builds: a data partition
 *   outs = m.run(inputs, outputs=None, arena=None)
 *   m.begin(arena); m.set_input(k, data); m.need(); m.feed(k, r0, r1, rows); m.output(k)
 *
 * The engine never allocates; the only allocations here are MicroPython heap objects.
 */
#if defined(MICROPY_ENABLE_DYNRUNTIME) && MICROPY_ENABLE_DYNRUNTIME
#define MCUNET_NATMOD (1)
#include "py/dynruntime.h"
#else
#define MCUNET_NATMOD (0)
#include "py/obj.h"
#include "py/objstr.h"
#include "py/runtime.h"
#endif
#include "py/mperrno.h"

#include <string.h>

#include "mcunet.h"

#if defined(ESP_PLATFORM) && !MCUNET_NATMOD
#include "esp_partition.h"
#define MCUNET_PARTITIONS (1)
#else
#define MCUNET_PARTITIONS (0)
#endif

#ifndef MP_NORETURN
#define MP_NORETURN NORETURN // MicroPython before v1.25
#endif

#if MCUNET_NATMOD
#define MCUNET_OSERROR (mp_load_global(MP_QSTR_OSError))
#else
#define MCUNET_OSERROR (MP_OBJ_FROM_PTR(&mp_type_OSError))
#endif

// Where a row-band run stands; the engine's mcu_run holds the rest.
enum {
    RUN_IDLE,    // no begin(), or the last run failed
    RUN_BEGUN,   // begin() done, nothing executed yet: set_input() is allowed
    RUN_WAITING, // stopped at an INPUT step (run.need_*)
    RUN_DONE,    // outputs are in the arena
};

typedef struct _mcunet_model_obj_t {
    mp_obj_base_t base;
    mp_obj_t source; // the image's owner (the model points into it), or None
    mp_obj_t arena;  // begin()'s arena (run.arena points into it), or None
    mcu_model model;
    mcu_run run;
    uint8_t state;
} mcunet_model_obj_t;

/******************************************************************************/
// Errors. Native modules have no mp_raise_msg_varg and may not keep a pointer to a stack
// buffer, so messages are assembled here and raised as str objects, in both builds.

typedef struct {
    size_t len;
    char buf[120];
} mcunet_msg_t;

static void msg_str(mcunet_msg_t *m, const char *s) {
    while (*s && m->len < sizeof(m->buf)) {
        m->buf[m->len++] = *s++;
    }
}

static void msg_int(mcunet_msg_t *m, mp_int_t v) {
    char digits[24];
    size_t n = 0;
    mp_uint_t u = v < 0 ? -(mp_uint_t)v : (mp_uint_t)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        msg_str(m, "-");
    }
    while (n && m->len < sizeof(m->buf)) {
        m->buf[m->len++] = digits[--n];
    }
}

static MP_NORETURN void msg_raise(const mp_obj_type_t *type, const mcunet_msg_t *m) {
    nlr_raise(mp_obj_new_exception_arg1(type, mp_obj_new_str(m->buf, m->len)));
}

// "<what> <k>: <got> bytes, the model wants <want>"
static MP_NORETURN void raise_size(const char *what, mp_int_t k, mp_int_t got, mp_int_t want) {
    mcunet_msg_t m = {0};
    msg_str(&m, what);
    msg_str(&m, " ");
    msg_int(&m, k);
    msg_str(&m, ": ");
    msg_int(&m, got);
    msg_str(&m, " bytes, the model wants ");
    msg_int(&m, want);
    msg_raise(&mp_type_ValueError, &m);
}

static MP_NORETURN void raise_engine(mcu_status st) {
    mcunet_msg_t m = {0};
    msg_str(&m, "engine: ");
    msg_str(&m, mcu_status_str(st));
    msg_str(&m, " (status ");
    msg_int(&m, st);
    msg_str(&m, ")");
    msg_raise(&mp_type_ValueError, &m);
}

static MP_NORETURN void raise_oserror(int errcode, const char *text) {
    mcunet_msg_t m = {0};
    msg_str(&m, text);
    mp_obj_t args[2] = { MP_OBJ_NEW_SMALL_INT(errcode), mp_obj_new_str(m.buf, m.len) };
    nlr_raise(mp_call_function_n_kw(MCUNET_OSERROR, 2, 0, args));
}

/******************************************************************************/
// Buffers

// A fresh bytearray whose data is a heap block: GC blocks are at least 8-byte aligned,
// which the arena needs, and a by-ref bytearray cannot be resized under the engine.
static mp_obj_t new_buffer(size_t n, uint8_t **data) {
    *data = m_new(uint8_t, n ? n : 1);
    return mp_obj_new_bytearray_by_ref(n, *data);
}

static int is_sequence(mp_obj_t o) {
    const mp_obj_type_t *t = mp_obj_get_type(o);
    return t == &mp_type_list || t == &mp_type_tuple;
}

// One bytes-like, or a list/tuple of them, exactly `n` of them. Returns the items.
static mp_obj_t *io_items(mp_obj_t *obj, size_t n, const char *what) {
    size_t got = 1;
    mp_obj_t *items = obj;
    if (is_sequence(*obj)) {
        mp_obj_get_array(*obj, &got, &items);
    }
    if (got != n) {
        mcunet_msg_t m = {0};
        msg_str(&m, "the model has ");
        msg_int(&m, n);
        msg_str(&m, " ");
        msg_str(&m, what);
        msg_str(&m, "(s), got ");
        msg_int(&m, got);
        msg_raise(&mp_type_ValueError, &m);
    }
    return items;
}

// A buffer the engine will write: bytes would pass a read check, so say what is wanted.
static void get_writable(mp_obj_t o, mp_buffer_info_t *bi, const char *what) {
    if (!mp_get_buffer(o, bi, MP_BUFFER_WRITE)) {
        mcunet_msg_t m = {0};
        msg_str(&m, what);
        msg_str(&m, " must be a writable buffer (a bytearray)");
        msg_raise(&mp_type_TypeError, &m);
    }
}

static void *io_buffer(mp_obj_t o, mp_uint_t flags, const mcu_io *io, int k, const char *what) {
    mp_buffer_info_t bi;
    if (flags & MP_BUFFER_WRITE) {
        get_writable(o, &bi, what);
    } else {
        mp_get_buffer_raise(o, &bi, flags);
    }
    if (bi.len != (size_t)io->bytes) {
        raise_size(what, k, bi.len, io->bytes);
    }
    return bi.buf;
}

// The arena as given (checked), or a new one when `obj` is None.
static uint8_t *arena_of(const mcunet_model_obj_t *self, mp_obj_t *obj, uint32_t *len) {
    uint32_t need = mcu_arena_bytes(&self->model);
    uint8_t *data;
    if (*obj == mp_const_none) {
        *obj = new_buffer(need, &data);
        *len = need;
        return data;
    }
    mp_buffer_info_t bi;
    get_writable(*obj, &bi, "arena");
    if (bi.len < need) {
        mcunet_msg_t m = {0};
        msg_str(&m, "arena has ");
        msg_int(&m, bi.len);
        msg_str(&m, " bytes, the model needs ");
        msg_int(&m, need);
        msg_raise(&mp_type_ValueError, &m);
    }
    if ((uintptr_t)bi.buf & 3u) {
        mp_raise_ValueError(MP_ERROR_TEXT("arena must be word-aligned"));
    }
    *len = need; // the engine is given exactly what the plan needs, however long the buffer
    return bi.buf;
}

static int input_index(const mcunet_model_obj_t *self, mp_obj_t k_in) {
    mp_int_t k = mp_obj_get_int(k_in);
    if (k < 0 || k >= self->model.n_inputs) {
        mp_raise_ValueError(MP_ERROR_TEXT("no such input"));
    }
    return (int)k;
}

/******************************************************************************/
// Model(source) / Model(addr, length) / Model("label")

#if MCUNET_PARTITIONS
static const uint8_t *partition_map(mp_obj_t label, size_t *len) {
    const esp_partition_t *part = esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY,
        mp_obj_str_get_str(label));
    if (part == NULL) {
        raise_oserror(MP_ENOENT, "no data partition with that label");
    }
    // Map the image, not the partition: the data MMU window is small, and mcu_load wants
    // the exact length. The header's total size (offset 12) says how much that is.
    uint32_t total = 0;
    if (esp_partition_read(part, 12, &total, sizeof(total)) != ESP_OK || total == 0 || total > part->size) {
        total = part->size; // let mcu_load say what is wrong with it
    }
    const void *ptr;
    esp_partition_mmap_handle_t handle;
    if (esp_partition_mmap(part, 0, total, ESP_PARTITION_MMAP_DATA, &ptr, &handle) != ESP_OK) {
        raise_oserror(MP_EIO, "esp_partition_mmap failed");
    }
    // Never unmapped: models live as long as the program, and unmapping would need a
    // finaliser. Loading the same partition again reuses the mapping (IDF refcounts it).
    *len = total;
    return ptr;
}
#endif

static mp_obj_t model_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 1, 2, false);
    mcunet_model_obj_t *self = mp_obj_malloc(mcunet_model_obj_t, type);
    self->source = mp_const_none;
    self->arena = mp_const_none;
    self->state = RUN_IDLE;

    const uint8_t *image;
    size_t len;
    if (n_args == 2) {
        image = (const uint8_t *)(uintptr_t)mp_obj_get_int_truncated(args[0]);
        mp_int_t n = mp_obj_get_int(args[1]);
        if (n <= 0) {
            mp_raise_ValueError(MP_ERROR_TEXT("length must be positive"));
        }
        len = (size_t)n;
    } else if (mp_obj_get_type(args[0]) == &mp_type_str) {
        #if MCUNET_PARTITIONS
        image = partition_map(args[0], &len);
        #else
        raise_oserror(MP_ENODEV, "partition labels need an ESP32 firmware build of mcunet");
        #endif
    } else {
        mp_buffer_info_t bi;
        mp_get_buffer_raise(args[0], &bi, MP_BUFFER_READ);
        image = bi.buf;
        len = bi.len;
        self->source = args[0];
    }
    // mcu_load would say only "bad argument"; a bytes constant in a .mpy or a slice is
    // often unaligned, and the cure (a bytearray copy) is worth naming.
    if ((uintptr_t)image & 3u) {
        mp_raise_ValueError(MP_ERROR_TEXT("image must be word-aligned (copy it into a bytearray)"));
    }
    if ((uint64_t)len > 0xFFFFFFFFu) {
        mp_raise_ValueError(MP_ERROR_TEXT("image larger than 4 GiB"));
    }
    mcu_status st = mcu_load(image, (uint32_t)len, &self->model);
    if (st != MCU_OK) {
        raise_engine(st);
    }
    return MP_OBJ_FROM_PTR(self);
}

/******************************************************************************/
// Attributes

static mp_obj_t io_spec(const mcu_io *io, int n) {
    mp_obj_t specs[MCU_MAX_IO];
    for (int k = 0; k < n; k++) {
        // mcu_load puts the tensor's dims first and pads with 1s: the first `rank` are real
        mp_obj_t dims[4];
        for (int d = 0; d < io[k].rank; d++) {
            dims[d] = MP_OBJ_NEW_SMALL_INT(io[k].shape[d]);
        }
        mp_obj_t spec[4] = {
            mp_obj_new_tuple(io[k].rank, dims),
            mp_obj_new_int(io[k].zero_point),
            mp_obj_new_int_from_uint(io[k].scale_bits),
            mp_obj_new_int(io[k].bytes),
        };
        specs[k] = mp_obj_new_tuple(4, spec);
    }
    return mp_obj_new_tuple(n, specs);
}

static mp_obj_t model_name(const mcu_model *m) {
    return mp_obj_new_str(m->name, strlen(m->name)); // mcu_load checked the terminator
}

static void model_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    if (dest[0] != MP_OBJ_NULL) {
        return; // read-only: no store or delete
    }
    const mcu_model *m = &((mcunet_model_obj_t *)MP_OBJ_TO_PTR(self_in))->model;
    // if/else, not switch: in a native module qstrs are not constants
    if (attr == MP_QSTR_arena_size) {
        dest[0] = mp_obj_new_int_from_uint(mcu_arena_bytes(m));
    } else if (attr == MP_QSTR_name) {
        dest[0] = model_name(m);
    } else if (attr == MP_QSTR_streamed) {
        dest[0] = mp_obj_new_bool(m->streamed);
    } else if (attr == MP_QSTR_input_spec) {
        dest[0] = io_spec(m->inputs, m->n_inputs);
    } else if (attr == MP_QSTR_output_spec) {
        dest[0] = io_spec(m->outputs, m->n_outputs);
    } else {
        dest[1] = MP_OBJ_SENTINEL; // go on to the methods
    }
}

static mp_obj_t model_info(mp_obj_t self_in) {
    const mcu_model *m = &((mcunet_model_obj_t *)MP_OBJ_TO_PTR(self_in))->model;
    mp_obj_t d = mp_obj_new_dict(8);
    mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_name), model_name(m));
    mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_arena_size), mp_obj_new_int_from_uint(mcu_arena_bytes(m)));
    mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_engine),
        mp_obj_new_str(MCU_ENGINE_VERSION, sizeof(MCU_ENGINE_VERSION) - 1));
    mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_format), MP_OBJ_NEW_SMALL_INT(MCU_FORMAT_VERSION));
    mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_streamed), mp_obj_new_bool(m->streamed));
    mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_steps), mp_obj_new_int_from_uint(m->n_steps));
    mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_inputs), io_spec(m->inputs, m->n_inputs));
    mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_outputs), io_spec(m->outputs, m->n_outputs));
    return d;
}
static MP_DEFINE_CONST_FUN_OBJ_1(model_info_obj, model_info);

/******************************************************************************/
// Whole-tensor inference

// run(inputs, outputs=None, arena=None) -> [output buffers]
static mp_obj_t model_run(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    enum { ARG_inputs, ARG_outputs, ARG_arena };
    // Filled in at run time: a native module's qstrs are not constants.
    mp_arg_t allowed_args[] = {
        { MP_QSTR_, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_, MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_, MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
    };
    allowed_args[ARG_inputs].qst = MP_QSTR_inputs;
    allowed_args[ARG_outputs].qst = MP_QSTR_outputs;
    allowed_args[ARG_arena].qst = MP_QSTR_arena;
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed_args)];
    mp_arg_parse_all(n_args - 1, pos_args + 1, kw_args, MP_ARRAY_SIZE(allowed_args), allowed_args, args);

    mcunet_model_obj_t *self = MP_OBJ_TO_PTR(pos_args[0]);
    const mcu_model *m = &self->model;
    const int8_t *in_ptr[MCU_MAX_IO];
    int8_t *out_ptr[MCU_MAX_IO];
    mp_obj_t outs[MCU_MAX_IO];

    mp_obj_t *items = io_items(&args[ARG_inputs].u_obj, m->n_inputs, "input");
    for (int k = 0; k < m->n_inputs; k++) {
        in_ptr[k] = io_buffer(items[k], MP_BUFFER_READ, &m->inputs[k], k, "input");
    }
    mp_obj_t out_in = args[ARG_outputs].u_obj;
    if (out_in == MP_OBJ_NULL || out_in == mp_const_none) {
        for (int k = 0; k < m->n_outputs; k++) {
            outs[k] = new_buffer(m->outputs[k].bytes, (uint8_t **)&out_ptr[k]);
        }
    } else {
        items = io_items(&out_in, m->n_outputs, "output");
        for (int k = 0; k < m->n_outputs; k++) {
            outs[k] = items[k];
            out_ptr[k] = io_buffer(items[k], MP_BUFFER_WRITE, &m->outputs[k], k, "output");
        }
    }
    mp_obj_t arena = args[ARG_arena].u_obj == MP_OBJ_NULL ? mp_const_none : args[ARG_arena].u_obj;
    uint32_t arena_len;
    uint8_t *arena_ptr = arena_of(self, &arena, &arena_len);

    mcu_status st = mcu_invoke(m, arena_ptr, arena_len, in_ptr, out_ptr);
    if (st != MCU_OK) {
        raise_engine(st);
    }
    return mp_obj_new_list(m->n_outputs, outs);
}
static MP_DEFINE_CONST_FUN_OBJ_KW(model_run_obj, 2, model_run);

/******************************************************************************/
// Row-band inference
//
// begin(arena) only resets the run: nothing executes until need() or feed(), so that
// set_input() can place the inputs the plan keeps whole before the first layer runs.

static void advance(mcunet_model_obj_t *self, mcu_status st) {
    if (st == MCU_DONE) {
        self->state = RUN_DONE;
    } else if (st == MCU_NEED_INPUT) {
        self->state = RUN_WAITING;
    } else {
        self->state = RUN_IDLE; // the arena holds a half-run: only begin() again makes sense
        raise_engine(st);
    }
}

static void require_run(const mcunet_model_obj_t *self) {
    if (self->state == RUN_IDLE) {
        mp_raise_ValueError(MP_ERROR_TEXT("no run in progress: call begin(arena) first"));
    }
}

static void start(mcunet_model_obj_t *self) {
    if (self->state == RUN_BEGUN) {
        advance(self, mcu_continue(&self->run));
    }
}

static mp_obj_t model_begin(mp_obj_t self_in, mp_obj_t arena_in) {
    mcunet_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    uint32_t len;
    uint8_t *arena = arena_of(self, &arena_in, &len);
    self->state = RUN_IDLE;
    mcu_status st = mcu_begin(&self->run, &self->model, arena, len);
    if (st != MCU_OK) {
        raise_engine(st);
    }
    self->arena = arena_in; // run.arena points into it
    self->state = RUN_BEGUN;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_begin_obj, model_begin);

static mp_obj_t model_set_input(mp_obj_t self_in, mp_obj_t k_in, mp_obj_t data_in) {
    mcunet_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    require_run(self);
    if (self->state != RUN_BEGUN) {
        mp_raise_ValueError(MP_ERROR_TEXT("set_input() must come before the first need() or feed()"));
    }
    int k = input_index(self, k_in);
    const int8_t *data = io_buffer(data_in, MP_BUFFER_READ, &self->model.inputs[k], k, "input");
    mcu_status st = mcu_set_input(&self->run, k, data);
    if (st == MCU_ERR_STATE) {
        mp_raise_ValueError(MP_ERROR_TEXT("this input is streamed: deliver its rows with feed()"));
    } else if (st != MCU_OK) {
        raise_engine(st);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(model_set_input_obj, model_set_input);

static mp_obj_t model_need(mp_obj_t self_in) {
    mcunet_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    require_run(self);
    start(self);
    if (self->state == RUN_DONE) {
        return mp_const_none;
    }
    mp_obj_t t[3] = {
        MP_OBJ_NEW_SMALL_INT(self->run.need_input),
        MP_OBJ_NEW_SMALL_INT(self->run.need_r0),
        MP_OBJ_NEW_SMALL_INT(self->run.need_r1),
    };
    return mp_obj_new_tuple(3, t);
}
static MP_DEFINE_CONST_FUN_OBJ_1(model_need_obj, model_need);

// feed(k, r0, r1, rows) -> True when the inference is complete
static mp_obj_t model_feed(size_t n_args, const mp_obj_t *args) {
    mcunet_model_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    require_run(self);
    start(self);
    if (self->state == RUN_DONE) {
        mp_raise_ValueError(MP_ERROR_TEXT("the run is complete: no rows are wanted"));
    }
    int k = input_index(self, args[1]);
    const mcu_io *io = &self->model.inputs[k];
    mp_int_t r0 = mp_obj_get_int(args[2]), r1 = mp_obj_get_int(args[3]);
    if (r0 < 0 || r0 >= r1 || r1 > io->shape[1]) {
        mp_raise_ValueError(MP_ERROR_TEXT("rows out of range"));
    }
    if (k != self->run.need_input || r0 != self->run.need_r0 || r1 != self->run.need_r1) {
        // mcu_feed would refuse too (MCU_ERR_STATE), leaving the run as it was
        mcunet_msg_t m = {0};
        msg_str(&m, "rows not asked for: need() wants (");
        msg_int(&m, self->run.need_input);
        msg_str(&m, ", ");
        msg_int(&m, self->run.need_r0);
        msg_str(&m, ", ");
        msg_int(&m, self->run.need_r1);
        msg_str(&m, ")");
        msg_raise(&mp_type_ValueError, &m);
    }
    mp_buffer_info_t bi;
    mp_get_buffer_raise(args[4], &bi, MP_BUFFER_READ);
    mp_int_t want = (r1 - r0) * io->shape[2] * io->shape[3]; // rows of w*c bytes, as mcu_invoke feeds them
    if ((mp_int_t)bi.len != want) {
        raise_size("rows of input", k, bi.len, want);
    }
    advance(self, mcu_feed(&self->run, k, (int32_t)r0, (int32_t)r1, bi.buf));
    return mp_obj_new_bool(self->state == RUN_DONE);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_feed_obj, 5, 5, model_feed);

// output(k, buf=None) -> buf
static mp_obj_t model_output(size_t n_args, const mp_obj_t *args) {
    mcunet_model_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    if (self->state != RUN_DONE) {
        mp_raise_ValueError(MP_ERROR_TEXT("the run is not complete (see need())"));
    }
    mp_int_t k = mp_obj_get_int(args[1]);
    if (k < 0 || k >= self->model.n_outputs) {
        mp_raise_ValueError(MP_ERROR_TEXT("no such output"));
    }
    const mcu_io *io = &self->model.outputs[k];
    mp_obj_t buf;
    uint8_t *dst;
    if (n_args < 3 || args[2] == mp_const_none) {
        buf = new_buffer(io->bytes, &dst);
    } else {
        buf = args[2];
        dst = io_buffer(buf, MP_BUFFER_WRITE, io, k, "output");
    }
    memcpy(dst, mcu_output(&self->run, (int)k), (size_t)io->bytes);
    return buf;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_output_obj, 2, 3, model_output);

/******************************************************************************/
// Registration

#if MCUNET_NATMOD

mp_obj_full_type_t mcunet_model_type;
mp_map_elem_t mcunet_model_locals_table[7];
static MP_DEFINE_CONST_DICT(mcunet_model_locals_dict, mcunet_model_locals_table);

static void add_method(size_t i, qstr name, const void *fun) {
    mcunet_model_locals_table[i] = (mp_map_elem_t) { MP_OBJ_NEW_QSTR(name), MP_OBJ_FROM_PTR(fun) };
}

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY

    mcunet_model_type.base.type = (void *)&mp_type_type;
    mcunet_model_type.flags = MP_TYPE_FLAG_NONE;
    mcunet_model_type.name = MP_QSTR_Model;
    MP_OBJ_TYPE_SET_SLOT(&mcunet_model_type, make_new, model_make_new, 0);
    MP_OBJ_TYPE_SET_SLOT(&mcunet_model_type, attr, model_attr, 1);
    add_method(0, MP_QSTR_info, &model_info_obj);
    add_method(1, MP_QSTR_run, &model_run_obj);
    add_method(2, MP_QSTR_begin, &model_begin_obj);
    add_method(3, MP_QSTR_set_input, &model_set_input_obj);
    add_method(4, MP_QSTR_need, &model_need_obj);
    add_method(5, MP_QSTR_feed, &model_feed_obj);
    add_method(6, MP_QSTR_output, &model_output_obj);
    MP_OBJ_TYPE_SET_SLOT(&mcunet_model_type, locals_dict, (void *)&mcunet_model_locals_dict, 2);

    mp_store_global(MP_QSTR_Model, MP_OBJ_FROM_PTR(&mcunet_model_type));
    mp_store_global(MP_QSTR_ENGINE_VERSION, mp_obj_new_str(MCU_ENGINE_VERSION, sizeof(MCU_ENGINE_VERSION) - 1));
    mp_store_global(MP_QSTR_FORMAT_VERSION, MP_OBJ_NEW_SMALL_INT(MCU_FORMAT_VERSION));

    MP_DYNRUNTIME_INIT_EXIT
}

#else

static const mp_rom_map_elem_t mcunet_model_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_info), MP_ROM_PTR(&model_info_obj) },
    { MP_ROM_QSTR(MP_QSTR_run), MP_ROM_PTR(&model_run_obj) },
    { MP_ROM_QSTR(MP_QSTR_begin), MP_ROM_PTR(&model_begin_obj) },
    { MP_ROM_QSTR(MP_QSTR_set_input), MP_ROM_PTR(&model_set_input_obj) },
    { MP_ROM_QSTR(MP_QSTR_need), MP_ROM_PTR(&model_need_obj) },
    { MP_ROM_QSTR(MP_QSTR_feed), MP_ROM_PTR(&model_feed_obj) },
    { MP_ROM_QSTR(MP_QSTR_output), MP_ROM_PTR(&model_output_obj) },
};
static MP_DEFINE_CONST_DICT(mcunet_model_locals_dict, mcunet_model_locals_table);

MP_DEFINE_CONST_OBJ_TYPE(
    mcunet_model_type,
    MP_QSTR_Model,
    MP_TYPE_FLAG_NONE,
    make_new, model_make_new,
    attr, model_attr,
    locals_dict, &mcunet_model_locals_dict
    );

static MP_DEFINE_STR_OBJ(mcunet_engine_version_obj, MCU_ENGINE_VERSION);

static const mp_rom_map_elem_t mcunet_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_mcunet) },
    { MP_ROM_QSTR(MP_QSTR_Model), MP_ROM_PTR(&mcunet_model_type) },
    { MP_ROM_QSTR(MP_QSTR_ENGINE_VERSION), MP_ROM_PTR(&mcunet_engine_version_obj) },
    { MP_ROM_QSTR(MP_QSTR_FORMAT_VERSION), MP_ROM_INT(MCU_FORMAT_VERSION) },
};
static MP_DEFINE_CONST_DICT(mcunet_module_globals, mcunet_module_globals_table);

const mp_obj_module_t mcunet_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&mcunet_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_mcunet, mcunet_user_cmodule);

#endif
