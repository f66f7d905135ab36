/* mcutool._engine: the C engine (device/engine) as a CPython extension, same sources.
 *
 *   m = _engine.Model(image_bytes)           # mcu_load; ValueError with the engine's message
 *   m.arena_bytes, m.name, m.inputs, m.outputs, m.streamed
 *   outs = m.invoke([in0, ...], arena=None)  # bytes per device output
 *   _engine.load_status(image_bytes) -> (code, message, check)  # never raises: for fuzzing;
 *                                        check: the row of docs/flash-image.md §6 that failed
 *
 * It also offers the names of the MicroPython module `mcunet` (device/micropython), so that
 * the device app runs unchanged on the simulated board:
 *   m.arena_size, m.input_spec, m.output_spec, m.info(), m.run(inputs, outputs, arena)
 *   m.begin(arena), m.set_input(k, data), m.need(), m.feed(k, r0, r1, rows), m.output(k, buf)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "mcunet.h"

/* ---- the arena -------------------------------------------------------------------------
 * The engine is given exactly arena_bytes, so that the sanitizer build sees any byte it
 * touches outside them. invoke() without arena= makes a block of its own: under
 * AddressSanitizer exactly arena_bytes long, so that ASan's redzones sit against both ends;
 * in other builds with ARENA_GUARD bytes of GUARD_BYTE on either side, checked after the run.
 * A caller's arena (arena=, begin()) may be longer than arena_bytes: up to TAIL_GUARD bytes
 * after arena_bytes are copied before the run and compared after it (and after every need()
 * and feed()). Either guard found changed raises RuntimeError naming the overrun. */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_GUARD 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_GUARD 0
#endif
#endif
#ifndef ARENA_GUARD
#define ARENA_GUARD 64
#endif
#define TAIL_GUARD 64
#define GUARD_BYTE 0xA5
#define ARENA_FILL 0x5A /* what a fresh arena holds: nothing may depend on it */

/* arena_bytes zero-or-more bytes of a block of their own, word-aligned (malloc's alignment) */
static uint8_t *arena_new(uint32_t n) {
    size_t len = (size_t)n + 2 * ARENA_GUARD;
    uint8_t *block = (uint8_t *)PyMem_RawMalloc(len ? len : 1);
    if (!block) return NULL;
#if ARENA_GUARD
    memset(block, GUARD_BYTE, ARENA_GUARD);
    memset(block + ARENA_GUARD + n, GUARD_BYTE, ARENA_GUARD);
#endif
    memset(block + ARENA_GUARD, ARENA_FILL, n);
    return block + ARENA_GUARD;
}

/* Frees an arena_new() block; -1 with RuntimeError set if a guard byte was written. */
static int arena_free(uint8_t *arena, uint32_t n) {
    int bad = 0;
    long where = 0;
    for (long i = 0; i < ARENA_GUARD && !bad; i++) {
        if (arena[-1 - i] != GUARD_BYTE) bad = 1, where = -1 - i;
        else if (arena[(size_t)n + (size_t)i] != GUARD_BYTE) bad = 1, where = (long)n + i;
    }
    PyMem_RawFree(arena - ARENA_GUARD);
    if (!bad) return 0;
    PyErr_Format(PyExc_RuntimeError, "the engine wrote outside its %lu-byte arena: byte %ld changed",
                 (unsigned long)n, where);
    return -1;
}

/* A caller's arena past arena_bytes: the bytes kept to compare. */
typedef struct {
    uint8_t *at;
    Py_ssize_t len;
    uint8_t copy[TAIL_GUARD];
} arena_tail;

static void tail_keep(arena_tail *t, uint8_t *arena, Py_ssize_t len, uint32_t need) {
    t->at = arena + need;
    t->len = len > (Py_ssize_t)need ? len - (Py_ssize_t)need : 0;
    if (t->len > TAIL_GUARD) t->len = TAIL_GUARD;
    memcpy(t->copy, t->at, (size_t)t->len);
}

/* -1 with RuntimeError set if the engine wrote a byte of the caller's arena past arena_bytes. */
static int tail_check(const arena_tail *t, uint32_t need) {
    for (Py_ssize_t i = 0; i < t->len; i++)
        if (t->at[i] != t->copy[i]) {
            PyErr_Format(PyExc_RuntimeError,
                         "the engine wrote outside its %lu-byte arena: byte %ld of the caller's arena changed",
                         (unsigned long)need, (long)need + (long)i);
            return -1;
        }
    return 0;
}

typedef struct {
    PyObject_HEAD
    mcu_model model;
    Py_buffer image; /* held: the model points into it */
    int has_image;
    mcu_run run;     /* the row-band run begun by begin() */
    Py_buffer arena; /* held while a run is begun */
    int has_arena;
    int run_state;   /* 0 none, 1 begun (inputs may be set), 2 running, 3 done */
    mcu_status run_status;
    arena_tail tail; /* the caller's bytes past arena_bytes, to check after each step of the run */
} ModelObject;

static void release_arena(ModelObject *self) {
    if (self->has_arena) PyBuffer_Release(&self->arena);
    self->has_arena = 0;
    self->run_state = 0;
}

static PyObject *io_list(const mcu_io *io, int n) {
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (int k = 0; k < n; k++) {
        PyObject *shape = Py_BuildValue("(iiii)", io[k].shape[0], io[k].shape[1], io[k].shape[2], io[k].shape[3]);
        PyObject *d = Py_BuildValue("{s:i,s:N,s:i,s:i,s:i,s:I}", "tensor", io[k].tensor, "shape", shape, "rank",
                                    io[k].rank, "bytes", io[k].bytes, "zero_point", io[k].zero_point, "scale_bits",
                                    io[k].scale_bits);
        if (!d) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, k, d);
    }
    return list;
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"image", NULL};
    release_arena(self);
    if (self->has_image) {
        PyBuffer_Release(&self->image);
        self->has_image = 0;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*", kwlist, &self->image)) return -1;
    self->has_image = 1;
    if (self->image.len > 0xFFFFFFFFLL) {
        PyErr_SetString(PyExc_ValueError, "image larger than 4 GiB");
        return -1;
    }
    mcu_status st = mcu_load((const uint8_t *)self->image.buf, (uint32_t)self->image.len, &self->model);
    if (st != MCU_OK) {
        PyErr_Format(PyExc_ValueError, "engine refused the image: %s (status %d)", mcu_status_str(st), (int)st);
        return -1;
    }
    return 0;
}

static void Model_dealloc(ModelObject *self) {
    release_arena(self);
    if (self->has_image) PyBuffer_Release(&self->image);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Model_invoke(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"inputs", "arena", NULL};
    PyObject *inputs, *arena_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O", kwlist, &inputs, &arena_obj)) return NULL;
    const mcu_model *m = &self->model;
    PyObject *seq = PySequence_Fast(inputs, "inputs must be a sequence of bytes-like objects");
    if (!seq) return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != m->n_inputs) {
        Py_DECREF(seq);
        return PyErr_Format(PyExc_ValueError, "the model takes %d input(s)", m->n_inputs);
    }
    Py_buffer in[MCU_MAX_IO];
    const int8_t *in_ptr[MCU_MAX_IO];
    int8_t *out_ptr[MCU_MAX_IO];
    PyObject *outs = NULL, *result = NULL;
    int got = 0;
    Py_buffer arena = {0};
    uint8_t *arena_ptr = NULL, *own = NULL;
    uint32_t arena_len = m->arena_bytes;
    arena_tail tail = {0};
    for (; got < m->n_inputs; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &in[got], PyBUF_SIMPLE) < 0) goto done;
        if (in[got].len != m->inputs[got].bytes) {
            PyErr_Format(PyExc_ValueError, "input %d has %zd bytes, the model wants %d", got, in[got].len,
                         m->inputs[got].bytes);
            got++;
            goto done;
        }
        in_ptr[got] = (const int8_t *)in[got].buf;
    }
    if (arena_obj == Py_None) {
        own = arena_ptr = arena_new(m->arena_bytes);
        if (!own) {
            PyErr_NoMemory();
            goto done;
        }
    } else {
        if (PyObject_GetBuffer(arena_obj, &arena, PyBUF_WRITABLE) < 0) goto done;
        arena_ptr = (uint8_t *)arena.buf;
        /* exactly arena_bytes of it (if it has fewer, the engine says the arena is too small) */
        if (arena.len < (Py_ssize_t)m->arena_bytes) arena_len = (uint32_t)arena.len;
        tail_keep(&tail, arena_ptr, arena.len, arena_len);
    }
    outs = PyList_New(m->n_outputs);
    if (!outs) goto done;
    for (int k = 0; k < m->n_outputs; k++) {
        PyObject *b = PyBytes_FromStringAndSize(NULL, m->outputs[k].bytes);
        if (!b) goto done;
        PyList_SET_ITEM(outs, k, b);
        out_ptr[k] = (int8_t *)PyBytes_AS_STRING(b);
    }
    mcu_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mcu_invoke(m, arena_ptr, arena_len, in_ptr, out_ptr);
    Py_END_ALLOW_THREADS
    if (tail_check(&tail, arena_len) < 0) goto done;
    if (st != MCU_OK) {
        PyErr_Format(PyExc_ValueError, "engine: %s (status %d)", mcu_status_str(st), (int)st);
        goto done;
    }
    result = outs;
    outs = NULL;
done:
    for (int k = 0; k < got; k++) PyBuffer_Release(&in[k]);
    if (arena.buf) PyBuffer_Release(&arena);
    if (own && arena_free(own, m->arena_bytes) < 0) Py_CLEAR(result);
    Py_XDECREF(outs);
    Py_DECREF(seq);
    return result;
}

static PyObject *engine_error(mcu_status st) {
    return PyErr_Format(PyExc_ValueError, "engine: %s (status %d)", mcu_status_str(st), (int)st);
}

/* (shape, zero_point, scale_bits, nbytes) per tensor: the spec tuple mcunet offers. */
static PyObject *spec_tuple(const mcu_io *io, int n) {
    PyObject *t = PyTuple_New(n);
    if (!t) return NULL;
    for (int k = 0; k < n; k++) {
        PyObject *shape = PyTuple_New(io[k].rank);
        if (!shape) {
            Py_DECREF(t);
            return NULL;
        }
        for (int d = 0; d < io[k].rank; d++) PyTuple_SET_ITEM(shape, d, PyLong_FromLong(io[k].shape[d]));
        PyObject *e = Py_BuildValue("(NiIi)", shape, io[k].zero_point, io[k].scale_bits, io[k].bytes);
        if (!e) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, k, e);
    }
    return t;
}

/* A list of buffers from one object or a sequence of them (single-tensor models take one). */
static PyObject *as_list(PyObject *obj) {
    if (PyList_Check(obj) || PyTuple_Check(obj)) return PySequence_List(obj);
    return Py_BuildValue("[O]", obj);
}

static PyObject *Model_run(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"inputs", "outputs", "arena", NULL};
    PyObject *inputs, *outputs = Py_None, *arena = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OO", kwlist, &inputs, &outputs, &arena)) return NULL;
    PyObject *ins = as_list(inputs);
    if (!ins) return NULL;
    PyObject *fwd = Py_BuildValue("(O)", ins);
    PyObject *fkw = arena == Py_None ? NULL : Py_BuildValue("{s:O}", "arena", arena);
    PyObject *got = fwd ? Model_invoke(self, fwd, fkw) : NULL;
    Py_DECREF(ins);
    Py_XDECREF(fwd);
    Py_XDECREF(fkw);
    if (!got || outputs == Py_None) {
        if (!got) return NULL;
        PyObject *res = PyList_New(PyList_GET_SIZE(got));
        for (Py_ssize_t k = 0; res && k < PyList_GET_SIZE(got); k++)
            PyList_SET_ITEM(res, k, PyByteArray_FromObject(PyList_GET_ITEM(got, k)));
        Py_DECREF(got);
        return res;
    }
    PyObject *outs = as_list(outputs);
    if (!outs) {
        Py_DECREF(got);
        return NULL;
    }
    if (PyList_GET_SIZE(outs) != PyList_GET_SIZE(got)) {
        Py_DECREF(got);
        Py_DECREF(outs);
        return PyErr_Format(PyExc_ValueError, "the model has %zd output(s)", PyList_GET_SIZE(got));
    }
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(outs); k++) {
        Py_buffer b;
        PyObject *src = PyList_GET_ITEM(got, k);
        if (PyObject_GetBuffer(PyList_GET_ITEM(outs, k), &b, PyBUF_WRITABLE) < 0) goto fail;
        if (b.len != PyBytes_GET_SIZE(src)) {
            PyBuffer_Release(&b);
            PyErr_Format(PyExc_ValueError, "output %zd needs %zd bytes, got a buffer of %zd", k, PyBytes_GET_SIZE(src), b.len);
            goto fail;
        }
        memcpy(b.buf, PyBytes_AS_STRING(src), (size_t)b.len);
        PyBuffer_Release(&b);
    }
    Py_DECREF(got);
    return outs;
fail:
    Py_DECREF(got);
    Py_DECREF(outs);
    return NULL;
}

static PyObject *Model_begin(ModelObject *self, PyObject *arena_obj) {
    release_arena(self);
    if (PyObject_GetBuffer(arena_obj, &self->arena, PyBUF_WRITABLE) < 0) return NULL;
    self->has_arena = 1;
    if ((uintptr_t)self->arena.buf & 3u) {
        release_arena(self);
        return PyErr_Format(PyExc_ValueError, "the arena must be word-aligned");
    }
    /* exactly arena_bytes of it (if it has fewer, the engine says the arena is too small) */
    uint32_t need = self->model.arena_bytes;
    if (self->arena.len < (Py_ssize_t)need) need = (uint32_t)self->arena.len;
    mcu_status st = mcu_begin(&self->run, &self->model, (uint8_t *)self->arena.buf, need);
    if (st != MCU_OK) {
        release_arena(self);
        return engine_error(st);
    }
    tail_keep(&self->tail, (uint8_t *)self->arena.buf, self->arena.len, need);
    self->run_state = 1;
    Py_RETURN_NONE;
}

static PyObject *Model_set_input(ModelObject *self, PyObject *args) {
    int k;
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "iy*", &k, &b)) return NULL;
    mcu_status st = MCU_ERR_STATE;
    if (self->run_state != 1) {
        PyBuffer_Release(&b);
        return PyErr_Format(PyExc_ValueError, "set_input() goes after begin() and before the first need()");
    }
    if (k < 0 || k >= self->model.n_inputs || b.len != self->model.inputs[k].bytes) {
        PyBuffer_Release(&b);
        return PyErr_Format(PyExc_ValueError, "input %d: wrong index or size (%zd bytes)", k, b.len);
    }
    st = mcu_set_input(&self->run, k, (const int8_t *)b.buf);
    PyBuffer_Release(&b);
    if (st != MCU_OK) return engine_error(st);
    Py_RETURN_NONE;
}

/* Runs as far as it can without input; the first call after begin() starts the run. */
static PyObject *Model_need(ModelObject *self, PyObject *unused) {
    (void)unused;
    if (self->run_state == 0) return PyErr_Format(PyExc_ValueError, "no run: call begin(arena) first");
    if (self->run_state == 1) {
        mcu_status st;
        Py_BEGIN_ALLOW_THREADS
        st = mcu_continue(&self->run);
        Py_END_ALLOW_THREADS
        if (tail_check(&self->tail, self->model.arena_bytes) < 0) {
            release_arena(self);
            return NULL;
        }
        if (st < 0) {
            release_arena(self);
            return engine_error(st);
        }
        self->run_state = st == MCU_DONE ? 3 : 2;
    }
    if (self->run_state == 3) Py_RETURN_NONE;
    return Py_BuildValue("(iii)", self->run.need_input, self->run.need_r0, self->run.need_r1);
}

static PyObject *Model_feed(ModelObject *self, PyObject *args) {
    int k, r0, r1;
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "iiiy*", &k, &r0, &r1, &b)) return NULL;
    if (self->run_state != 2) {
        PyBuffer_Release(&b);
        return PyErr_Format(PyExc_ValueError, "feed(): no rows are wanted now (call need())");
    }
    const mcu_io *io = &self->model.inputs[self->run.need_input];
    Py_ssize_t want = (Py_ssize_t)(r1 - r0) * io->shape[2] * io->shape[3];
    if (r1 <= r0 || b.len != want) {
        PyBuffer_Release(&b);
        return PyErr_Format(PyExc_ValueError, "feed(): rows [%d, %d) need %zd bytes, got %zd", r0, r1,
                            r1 > r0 ? want : (Py_ssize_t)0, b.len);
    }
    mcu_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mcu_feed(&self->run, k, r0, r1, (const int8_t *)b.buf);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    if (tail_check(&self->tail, self->model.arena_bytes) < 0) {
        release_arena(self);
        return NULL;
    }
    if (st < 0) {
        if (st != MCU_ERR_STATE) release_arena(self); /* a wrong band leaves the run as it was */
        return engine_error(st);
    }
    self->run_state = st == MCU_DONE ? 3 : 2;
    return PyBool_FromLong(st == MCU_DONE);
}

static PyObject *Model_output(ModelObject *self, PyObject *args) {
    int k;
    PyObject *buf = Py_None;
    if (!PyArg_ParseTuple(args, "i|O", &k, &buf)) return NULL;
    if (self->run_state != 3) return PyErr_Format(PyExc_ValueError, "output(): the run is not done");
    if (k < 0 || k >= self->model.n_outputs) return PyErr_Format(PyExc_ValueError, "no output %d", k);
    const int8_t *src = mcu_output(&self->run, k);
    int n = self->model.outputs[k].bytes;
    if (buf == Py_None) return PyByteArray_FromStringAndSize((const char *)src, n);
    Py_buffer b;
    if (PyObject_GetBuffer(buf, &b, PyBUF_WRITABLE) < 0) return NULL;
    if (b.len != n) {
        PyBuffer_Release(&b);
        return PyErr_Format(PyExc_ValueError, "output %d needs %d bytes, got a buffer of %zd", k, n, b.len);
    }
    memcpy(b.buf, src, (size_t)n);
    PyBuffer_Release(&b);
    Py_INCREF(buf);
    return buf;
}

static PyObject *Model_info(ModelObject *self, PyObject *unused) {
    (void)unused;
    const mcu_model *m = &self->model;
    return Py_BuildValue("{s:N,s:I,s:s,s:i,s:N,s:I,s:N,s:N}", "name",
                         PyUnicode_DecodeUTF8(m->name, (Py_ssize_t)strlen(m->name), "replace"), "arena_size",
                         m->arena_bytes, "engine", MCU_ENGINE_VERSION, "format", MCU_FORMAT_VERSION, "streamed",
                         PyBool_FromLong(m->streamed), "steps", m->n_steps, "inputs",
                         spec_tuple(m->inputs, m->n_inputs), "outputs", spec_tuple(m->outputs, m->n_outputs));
}

static PyObject *Model_get(ModelObject *self, void *what) {
    const mcu_model *m = &self->model;
    switch ((int)(intptr_t)what) {
    case 0: return PyLong_FromUnsignedLong(m->arena_bytes);
    case 1: return PyUnicode_DecodeUTF8(m->name, (Py_ssize_t)strlen(m->name), "replace");
    case 2: return io_list(m->inputs, m->n_inputs);
    case 3: return io_list(m->outputs, m->n_outputs);
    case 4: return PyBool_FromLong(m->streamed);
    case 5: return PyLong_FromUnsignedLong(m->n_steps);
    case 6: return spec_tuple(m->inputs, m->n_inputs);
    case 7: return spec_tuple(m->outputs, m->n_outputs);
    }
    Py_RETURN_NONE;
}

static PyGetSetDef Model_getset[] = {
    {"arena_bytes", (getter)Model_get, NULL, "arena the plan needs, in bytes", (void *)0},
    {"name", (getter)Model_get, NULL, "model name", (void *)1},
    {"inputs", (getter)Model_get, NULL, "device inputs", (void *)2},
    {"outputs", (getter)Model_get, NULL, "device outputs", (void *)3},
    {"streamed", (getter)Model_get, NULL, "whether the plan streams its input", (void *)4},
    {"steps", (getter)Model_get, NULL, "schedule steps", (void *)5},
    {"arena_size", (getter)Model_get, NULL, "arena the plan needs, in bytes (mcunet's name)", (void *)0},
    {"input_spec", (getter)Model_get, NULL, "(shape, zero_point, scale_bits, nbytes) per device input", (void *)6},
    {"output_spec", (getter)Model_get, NULL, "(shape, zero_point, scale_bits, nbytes) per device output", (void *)7},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Model_methods[] = {
    {"invoke", (PyCFunction)(void (*)(void))Model_invoke, METH_VARARGS | METH_KEYWORDS,
     "invoke(inputs, arena=None) -> list of bytes: run the plan on the device inputs"},
    {"run", (PyCFunction)(void (*)(void))Model_run, METH_VARARGS | METH_KEYWORDS,
     "run(inputs, outputs=None, arena=None) -> list of outputs (mcunet's API)"},
    {"begin", (PyCFunction)Model_begin, METH_O, "begin(arena): start a row-band run"},
    {"set_input", (PyCFunction)Model_set_input, METH_VARARGS, "set_input(k, data): a whole input, before need()"},
    {"need", (PyCFunction)Model_need, METH_NOARGS, "need() -> (k, r0, r1) rows wanted next, or None when done"},
    {"feed", (PyCFunction)Model_feed, METH_VARARGS, "feed(k, r0, r1, rows) -> True when the inference is done"},
    {"output", (PyCFunction)Model_output, METH_VARARGS, "output(k, buf=None) -> device output k of a done run"},
    {"info", (PyCFunction)Model_info, METH_NOARGS, "info() -> dict of the model's name, arena, I/O specs"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mcutool._engine.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A flash image loaded by the C engine",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = Model_methods,
    .tp_getset = Model_getset,
};

static PyObject *load_status(PyObject *mod, PyObject *arg) {
    (void)mod;
    Py_buffer b;
    mcu_model m;
    m.check = 0; /* mcu_load leaves it alone only when refusing its arguments */
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    mcu_status st = mcu_load((const uint8_t *)b.buf, (uint32_t)(b.len > 0xFFFFFFFFLL ? 0xFFFFFFFFLL : b.len), &m);
    PyBuffer_Release(&b);
    return Py_BuildValue("(isi)", (int)st, mcu_status_str(st), (int)m.check);
}

static PyMethodDef module_methods[] = {
    {"load_status", load_status, METH_O,
     "load_status(image) -> (status code, message, check): check is the row of docs/flash-image.md §6 that "
     "failed first (0 if none); never raises"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_engine", "mcutool's C engine", -1, module_methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__engine(void) {
    if (PyType_Ready(&ModelType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&ModelType);
    PyModule_AddObject(m, "Model", (PyObject *)&ModelType);
    PyModule_AddStringConstant(m, "ENGINE_VERSION", MCU_ENGINE_VERSION);
    PyModule_AddIntConstant(m, "FORMAT_VERSION", MCU_FORMAT_VERSION);
    return m;
}
