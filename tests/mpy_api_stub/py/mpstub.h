/* A stub of the MicroPython C API, written for mcutool's tests: just the declarations
 * device/micropython/mcunet/mcunet.c uses, with the shapes MicroPython's documented API
 * gives them (docs: "MicroPython external C modules", "Native machine code in .mpy
 * files"). It lets CI compile our module, both as a user C module and as a dynamic native
 * module, so that a broken module fails CI; it links nothing and runs nothing. It is not
 * MicroPython's code, and the module is built against the real headers by hand
 * (device/micropython/README.md). qstr constants come from a header the test generates
 * from the module's source, as MicroPython's build does. */
#ifndef MCUTOOL_MPY_STUB_H
#define MCUTOOL_MPY_STUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "genhdr_qstrs.h" /* enum of MP_QSTR_* names, written by the test */

#define NORETURN __attribute__((noreturn))
#define MP_NORETURN NORETURN

typedef intptr_t mp_int_t;
typedef uintptr_t mp_uint_t;
typedef size_t qstr;
typedef void *mp_obj_t;
typedef const void *mp_const_obj_t;
typedef mp_const_obj_t mp_rom_obj_t;

typedef struct _mp_obj_type_t mp_obj_type_t;
typedef struct _mp_obj_base_t {
    const mp_obj_type_t *type;
} mp_obj_base_t;

typedef struct _mp_map_elem_t {
    mp_obj_t key;
    mp_obj_t value;
} mp_map_elem_t;
typedef struct _mp_rom_map_elem_t {
    mp_rom_obj_t key;
    mp_rom_obj_t value;
} mp_rom_map_elem_t;
typedef struct _mp_map_t {
    size_t all_keys_are_qstrs : 1;
    size_t is_fixed : 1;
    size_t is_ordered : 1;
    size_t used : (8 * sizeof(size_t) - 3);
    size_t alloc;
    mp_map_elem_t *table;
} mp_map_t;
typedef struct _mp_obj_dict_t {
    mp_obj_base_t base;
    mp_map_t map;
} mp_obj_dict_t;
typedef struct _mp_obj_module_t {
    mp_obj_base_t base;
    mp_obj_dict_t *globals;
} mp_obj_module_t;
typedef struct _mp_obj_fun_bc_t mp_obj_fun_bc_t;

typedef struct _mp_buffer_info_t {
    void *buf;
    size_t len;
    int typecode;
} mp_buffer_info_t;
#define MP_BUFFER_READ (1)
#define MP_BUFFER_WRITE (2)

/* Types: a slot table, filled by MP_DEFINE_CONST_OBJ_TYPE or MP_OBJ_TYPE_SET_SLOT. */
typedef mp_obj_t (*mp_make_new_fun_t)(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args);
typedef void (*mp_attr_fun_t)(mp_obj_t self_in, qstr attr, mp_obj_t *dest);
#define MP_TYPE_SLOTS \
    mp_obj_base_t base; \
    uint16_t flags; \
    uint16_t name; \
    uint8_t slot_index_make_new, slot_index_attr, slot_index_locals_dict;
struct _mp_obj_type_t {
    MP_TYPE_SLOTS
    const void *slots[];
};
typedef struct _mp_obj_full_type_t {
    MP_TYPE_SLOTS
    const void *slots[12];
} mp_obj_full_type_t;
#define MP_TYPE_FLAG_NONE (0x0000)
/* Checks each slot's function type: a wrong signature is a compile error. */
static inline const void *mp_stub_slot_make_new(mp_make_new_fun_t f) { return (const void *)f; }
static inline const void *mp_stub_slot_attr(mp_attr_fun_t f) { return (const void *)f; }
static inline const void *mp_stub_slot_locals_dict(const void *d) { return d; }
#define MP_OBJ_TYPE_SET_SLOT(t, f, v, n) ((t)->slot_index_##f = (n) + 1, (t)->slots[(n)] = mp_stub_slot_##f(v))
#define MP_DEFINE_CONST_OBJ_TYPE(_n, _q, _fl, _k1, _v1, _k2, _v2, _k3, _v3) \
    const mp_obj_full_type_t _n = {.base = {&mp_type_type}, .flags = (_fl), .name = (_q), \
        .slot_index_##_k1 = 1, .slot_index_##_k2 = 2, .slot_index_##_k3 = 3, \
        .slots = {(const void *)(_v1), (const void *)(_v2), (const void *)(_v3)}}

extern const mp_obj_type_t mp_type_type, mp_type_list, mp_type_tuple, mp_type_str, mp_type_dict, mp_type_module,
    mp_type_ValueError, mp_type_TypeError, mp_type_OSError, mp_type_fun_builtin;

/* Object representation: small ints and qstrs are tagged words, others pointers. */
#define MP_OBJ_NULL ((mp_obj_t)(void *)0)
#define MP_OBJ_SENTINEL ((mp_obj_t)(void *)4)
#define MP_OBJ_NEW_SMALL_INT(x) ((mp_obj_t)(((mp_uint_t)(x) << 1) | 1))
#define MP_OBJ_NEW_QSTR(q) ((mp_obj_t)((((mp_uint_t)(q)) << 3) | 2))
#define MP_OBJ_TO_PTR(o) ((void *)(o))
#define MP_OBJ_FROM_PTR(p) ((mp_obj_t)(p))
#define MP_ROM_QSTR(q) MP_OBJ_NEW_QSTR(q)
#define MP_ROM_INT(i) MP_OBJ_NEW_SMALL_INT(i)
#define MP_ROM_PTR(p) (p)
extern const mp_obj_base_t mp_const_none_obj;
#define mp_const_none ((mp_obj_t)&mp_const_none_obj)
#define MP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MP_ERROR_TEXT(s) (s)

#define MP_DEFINE_CONST_DICT(_n, _table) \
    const mp_obj_dict_t _n = {.base = {&mp_type_dict}, .map = {.all_keys_are_qstrs = 1, .is_fixed = 1, \
        .is_ordered = 1, .used = MP_ARRAY_SIZE(_table), .alloc = MP_ARRAY_SIZE(_table), \
        .table = (mp_map_elem_t *)(_table)}}
#define MP_DEFINE_STR_OBJ(_n, _s) \
    const struct { mp_obj_base_t base; size_t hash, len; const char *data; } _n = {{&mp_type_str}, 0, \
        sizeof(_s) - 1, _s}
#define MP_REGISTER_MODULE(_q, _m) extern const mp_obj_module_t _m

/* Functions as objects: the union member each macro fills checks the C signature. */
typedef struct _mp_obj_fun_builtin_t {
    mp_obj_base_t base;
    union {
        mp_obj_t (*_1)(mp_obj_t);
        mp_obj_t (*_2)(mp_obj_t, mp_obj_t);
        mp_obj_t (*_3)(mp_obj_t, mp_obj_t, mp_obj_t);
        mp_obj_t (*var)(size_t, const mp_obj_t *);
        mp_obj_t (*kw)(size_t, const mp_obj_t *, mp_map_t *);
    } fun;
    uint16_t n_args_min, n_args_max;
} mp_obj_fun_builtin_t;
#define MP_DEFINE_CONST_FUN_OBJ_1(_n, _f) const mp_obj_fun_builtin_t _n = {{&mp_type_fun_builtin}, {._1 = _f}, 1, 1}
#define MP_DEFINE_CONST_FUN_OBJ_2(_n, _f) const mp_obj_fun_builtin_t _n = {{&mp_type_fun_builtin}, {._2 = _f}, 2, 2}
#define MP_DEFINE_CONST_FUN_OBJ_3(_n, _f) const mp_obj_fun_builtin_t _n = {{&mp_type_fun_builtin}, {._3 = _f}, 3, 3}
#define MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(_n, _lo, _hi, _f) \
    const mp_obj_fun_builtin_t _n = {{&mp_type_fun_builtin}, {.var = _f}, _lo, _hi}
#define MP_DEFINE_CONST_FUN_OBJ_KW(_n, _lo, _f) const mp_obj_fun_builtin_t _n = {{&mp_type_fun_builtin}, {.kw = _f}, _lo, 0xFFFF}

/* Argument parsing. */
typedef union _mp_arg_val_t {
    bool u_bool;
    mp_int_t u_int;
    mp_obj_t u_obj;
    mp_rom_obj_t u_rom_obj;
} mp_arg_val_t;
typedef struct _mp_arg_t {
    uint16_t qst;
    uint16_t flags;
    mp_arg_val_t defval;
} mp_arg_t;
#define MP_ARG_OBJ (0x003)
#define MP_ARG_REQUIRED (0x100)
void mp_arg_check_num(size_t n_args, size_t n_kw, size_t n_args_min, size_t n_args_max, bool takes_kw);
void mp_arg_parse_all(size_t n_pos, const mp_obj_t *pos, mp_map_t *kws, size_t n_allowed, const mp_arg_t *allowed,
                      mp_arg_val_t *out_vals);

/* Objects, buffers, the runtime. */
void *mp_stub_obj_malloc(size_t n, const mp_obj_type_t *type);
#define mp_obj_malloc(struct_type, obj_type) ((struct_type *)mp_stub_obj_malloc(sizeof(struct_type), obj_type))
void *m_malloc(size_t n);
#define m_new(type, num) ((type *)(m_malloc(sizeof(type) * (num))))
mp_obj_t mp_obj_new_str(const char *data, size_t len);
mp_obj_t mp_obj_new_tuple(size_t n, const mp_obj_t *items);
mp_obj_t mp_obj_new_list(size_t n, mp_obj_t *items);
mp_obj_t mp_obj_new_dict(size_t n_args);
mp_obj_t mp_obj_dict_store(mp_obj_t self_in, mp_obj_t key, mp_obj_t value);
mp_obj_t mp_obj_new_int(mp_int_t value);
mp_obj_t mp_obj_new_int_from_uint(mp_uint_t value);
mp_obj_t mp_obj_new_bool(mp_int_t x);
mp_obj_t mp_obj_new_bytearray_by_ref(size_t n, void *items);
mp_obj_t mp_obj_new_exception_arg1(const mp_obj_type_t *exc_type, mp_obj_t arg);
const mp_obj_type_t *mp_obj_get_type(mp_const_obj_t o_in);
mp_int_t mp_obj_get_int(mp_const_obj_t arg);
mp_int_t mp_obj_get_int_truncated(mp_const_obj_t arg);
void mp_obj_get_array(mp_obj_t o, size_t *len, mp_obj_t **items);
const char *mp_obj_str_get_str(mp_obj_t self_in);
bool mp_get_buffer(mp_obj_t obj, mp_buffer_info_t *bufinfo, mp_uint_t flags);
void mp_get_buffer_raise(mp_obj_t obj, mp_buffer_info_t *bufinfo, mp_uint_t flags);
mp_obj_t mp_call_function_n_kw(mp_obj_t fun, size_t n_args, size_t n_kw, const mp_obj_t *args);
mp_obj_t mp_load_global(qstr qst);
void mp_store_global(qstr qst, mp_obj_t obj);
NORETURN void nlr_raise(mp_obj_t exc);
NORETURN void mp_raise_ValueError(const char *msg);

/* Native modules: mpy_init's prologue and epilogue. */
#define MP_DYNRUNTIME_INIT_ENTRY (void)self; (void)n_args; (void)n_kw; (void)args;
#define MP_DYNRUNTIME_INIT_EXIT return mp_const_none;

#endif
