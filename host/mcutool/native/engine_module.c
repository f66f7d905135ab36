/* mcutool._engine: the C engine (device/engine) as a CPython extension, same sources.
 *
 *   m = _engine.Model(image_bytes)           # mcu_load; ValueError with the engine's message
 *   m.arena_bytes, m.name, m.inputs, m.outputs, m.streamed
 *   outs = m.invoke([in0, ...], arena=None)  # bytes per device output
 *   _engine.load_status(image_bytes) -> (code, message)   # never raises: for fuzzing
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "mcunet.h"

typedef struct {
    PyObject_HEAD
    mcu_model model;
    Py_buffer image; /* held: the model points into it */
    int has_image;
} ModelObject;

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
    uint8_t *arena_ptr = NULL;
    PyObject *own_arena = NULL;
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
        /* word-aligned: PyBytes data is at least 8-byte aligned */
        own_arena = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)m->arena_bytes + 8);
        if (!own_arena) goto done;
        uintptr_t a = (uintptr_t)PyByteArray_AS_STRING(own_arena);
        arena_ptr = (uint8_t *)((a + 7u) & ~(uintptr_t)7u);
    } else {
        if (PyObject_GetBuffer(arena_obj, &arena, PyBUF_WRITABLE) < 0) goto done;
        arena_ptr = (uint8_t *)arena.buf;
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
    st = mcu_invoke(m, arena_ptr, arena_obj == Py_None ? m->arena_bytes : (uint32_t)arena.len, in_ptr, out_ptr);
    Py_END_ALLOW_THREADS
    if (st != MCU_OK) {
        PyErr_Format(PyExc_ValueError, "engine: %s (status %d)", mcu_status_str(st), (int)st);
        goto done;
    }
    result = outs;
    outs = NULL;
done:
    for (int k = 0; k < got; k++) PyBuffer_Release(&in[k]);
    if (arena.buf) PyBuffer_Release(&arena);
    Py_XDECREF(own_arena);
    Py_XDECREF(outs);
    Py_DECREF(seq);
    return result;
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
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Model_methods[] = {
    {"invoke", (PyCFunction)(void (*)(void))Model_invoke, METH_VARARGS | METH_KEYWORDS,
     "invoke(inputs, arena=None) -> list of bytes: run the plan on the device inputs"},
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
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    mcu_status st = mcu_load((const uint8_t *)b.buf, (uint32_t)(b.len > 0xFFFFFFFFLL ? 0xFFFFFFFFLL : b.len), &m);
    PyBuffer_Release(&b);
    return Py_BuildValue("(is)", (int)st, mcu_status_str(st));
}

static PyMethodDef module_methods[] = {
    {"load_status", load_status, METH_O, "load_status(image) -> (status code, message); never raises"},
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
