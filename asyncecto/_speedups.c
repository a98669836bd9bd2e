/*
 * asyncecto._speedups: build structs from driver rows in C.
 *
 * load_rows(cls, rows, slots, loaders, consts, meta_slot, meta) -> list
 *
 *   cls      a slotted class (a schema struct)
 *   rows     a list of sequences (asyncpg records), one item per selected column
 *   slots    tuple of member descriptors of cls, one per column
 *   loaders  tuple of callables or None, one per column (None: store the value as is)
 *   consts   tuple of (member descriptor, value, is_factory) for slots not read from the row;
 *            when is_factory is true, value() is called for each struct
 *   meta_slot, meta  the struct's meta slot and the (immutable, shared) meta to store, or None, None
 *
 * Each struct is allocated with cls->tp_alloc and its slots written through the
 * descriptors' member definitions, which is what slot descriptors do on assignment,
 * without a Python-level call per slot. A loader is only called for non-None values.
 *
 * Like CPython's tuples, a struct whose every slot holds an object of a type the cyclic
 * garbage collector never handles (ints, strings, floats, dates, decimals, None ...) or an
 * untracked (hence immutable and acyclic) tuple is untracked: the struct is frozen, so no
 * reference cycle can pass through it, and ten thousand fresh structs then cost the
 * collector nothing. Any other value (a list, a dict, even one the collector does not
 * track yet) keeps the struct tracked. The meta is shared and holds only strings. The collector is paused for the loop
 * (and restored to the caller's setting): allocating the structs would otherwise trigger
 * collections that promote the still-referenced rows into older generations.
 * This module is optional: asyncecto falls back to a generated Python loader.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

static PyMemberDef *
member_of(PyObject *descr, PyTypeObject *cls)
{
    if (!Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "expected a slot member descriptor, got %R", descr);
        return NULL;
    }
    if (!PyType_IsSubtype(cls, PyDescr_TYPE(descr))) {
        PyErr_Format(PyExc_TypeError, "descriptor %R does not belong to %s", descr, cls->tp_name);
        return NULL;
    }
    return ((PyMemberDescrObject *)descr)->d_member;
}

/* Whether a cycle could ever pass through value (so a struct holding it must stay tracked). */
static int
may_join_cycle(PyObject *value)
{
    if (!PyObject_IS_GC(value)) {
        return 0;
    }
    return !(PyTuple_CheckExact(value) && !PyObject_GC_IsTracked(value));
}

static PyObject *
load_rows(PyObject *module, PyObject *args)
{
    PyObject *cls_obj, *rows, *slots, *loaders, *consts, *meta_slot, *meta;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!OO:load_rows", &PyType_Type, &cls_obj, &PyList_Type, &rows,
                          &PyTuple_Type, &slots, &PyTuple_Type, &loaders, &PyTuple_Type, &consts, &meta_slot,
                          &meta)) {
        return NULL;
    }
    PyMemberDef *meta_member = NULL;
    if (meta_slot != Py_None && (meta_member = member_of(meta_slot, (PyTypeObject *)cls_obj)) == NULL) {
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)cls_obj;
    Py_ssize_t ncols = PyTuple_GET_SIZE(slots);
    Py_ssize_t nconsts = PyTuple_GET_SIZE(consts);
    if (PyTuple_GET_SIZE(loaders) != ncols) {
        PyErr_SetString(PyExc_ValueError, "slots and loaders differ in length");
        return NULL;
    }
    if (cls->tp_dictoffset != 0) {
        PyErr_Format(PyExc_TypeError, "%s is not a slotted class", cls->tp_name);
        return NULL;
    }

    PyMemberDef **members = PyMem_Malloc(sizeof(PyMemberDef *) * (size_t)(ncols + nconsts + 1));
    if (members == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t j = 0; j < ncols; j++) {
        if ((members[j] = member_of(PyTuple_GET_ITEM(slots, j), cls)) == NULL) {
            PyMem_Free(members);
            return NULL;
        }
    }
    for (Py_ssize_t k = 0; k < nconsts; k++) {
        PyObject *spec = PyTuple_GET_ITEM(consts, k);
        if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 3) {
            PyMem_Free(members);
            PyErr_SetString(PyExc_TypeError, "consts must hold (descriptor, value, is_factory) tuples");
            return NULL;
        }
        if ((members[ncols + k] = member_of(PyTuple_GET_ITEM(spec, 0), cls)) == NULL) {
            PyMem_Free(members);
            return NULL;
        }
    }

    Py_ssize_t nrows = PyList_GET_SIZE(rows);
    PyObject *result = PyList_New(nrows);
    if (result == NULL) {
        PyMem_Free(members);
        return NULL;
    }
    int gc_was_enabled = PyGC_Disable();
    for (Py_ssize_t i = 0; i < nrows; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (PySequence_Size(row) != ncols) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_ValueError, "row %zd has %zd columns, expected %zd", i,
                             PySequence_Size(row), ncols);
            }
            goto error;
        }
        PyObject *obj = cls->tp_alloc(cls, 0);
        if (obj == NULL) {
            goto error;
        }
        PyList_SET_ITEM(result, i, obj); /* the list owns it from here on */
        int untrack = 1;
        for (Py_ssize_t j = 0; j < ncols; j++) {
            PyObject *value = PySequence_GetItem(row, j);
            if (value == NULL) {
                goto error;
            }
            PyObject *loader = PyTuple_GET_ITEM(loaders, j);
            if (loader != Py_None && value != Py_None) {
                PyObject *loaded = PyObject_CallOneArg(loader, value);
                Py_DECREF(value);
                if (loaded == NULL) {
                    goto error;
                }
                value = loaded;
            }
            if (untrack && may_join_cycle(value)) {
                untrack = 0;
            }
            int rc = PyMember_SetOne((char *)obj, members[j], value);
            Py_DECREF(value);
            if (rc < 0) {
                goto error;
            }
        }
        for (Py_ssize_t k = 0; k < nconsts; k++) {
            PyObject *spec = PyTuple_GET_ITEM(consts, k);
            PyObject *value = PyTuple_GET_ITEM(spec, 1);
            int rc;
            if (PyObject_IsTrue(PyTuple_GET_ITEM(spec, 2))) {
                PyObject *made = PyObject_CallNoArgs(value);
                if (made == NULL) {
                    goto error;
                }
                if (may_join_cycle(made)) {
                    untrack = 0;
                }
                rc = PyMember_SetOne((char *)obj, members[ncols + k], made);
                Py_DECREF(made);
            }
            else {
                if (may_join_cycle(value)) {
                    untrack = 0;
                }
                rc = PyMember_SetOne((char *)obj, members[ncols + k], value);
            }
            if (rc < 0) {
                goto error;
            }
        }
        if (meta_member != NULL && PyMember_SetOne((char *)obj, meta_member, meta) < 0) {
            goto error;
        }
        if (untrack && PyObject_GC_IsTracked(obj)) {
            PyObject_GC_UnTrack(obj);
        }
    }
    PyMem_Free(members);
    if (gc_was_enabled) {
        PyGC_Enable();
    }
    return result;

error:
    PyMem_Free(members);
    if (gc_was_enabled) {
        PyGC_Enable();
    }
    Py_DECREF(result); /* unset items are NULL, which list dealloc skips */
    return NULL;
}

static PyMethodDef methods[] = {
    {"load_rows", load_rows, METH_VARARGS, "Build slotted structs from rows (see module docs)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "asyncecto._speedups", "C helpers for asyncecto's row loader.", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
