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

    /* Python code runs in the loop (loaders, factories, a row's __len__/__getitem__) and may do
     * anything, the rows list included: every row and value is held by a strong reference while
     * used, the list's size is read again for each row (as a list iterator does), and a list whose
     * size changed by the end raises RuntimeError, as the Python loader does. */
    Py_ssize_t nrows = PyList_GET_SIZE(rows);
    PyObject **values = PyMem_Calloc((size_t)(ncols + 1), sizeof(PyObject *));
    PyObject *result = values == NULL ? NULL : PyList_New(nrows);
    if (result == NULL) {
        PyMem_Free(members);
        PyMem_Free(values);
        return values == NULL ? PyErr_NoMemory() : NULL;
    }
    /* unset items are NULL until filled: keep the list out of the collector's (and gc.get_objects') view */
    PyObject_GC_UnTrack(result);
    int gc_was_enabled = PyGC_Disable();
    Py_ssize_t i = 0;
    for (; i < PyList_GET_SIZE(rows); i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        Py_INCREF(row);
        Py_ssize_t width = PySequence_Size(row);
        if (width != ncols) {
            if (width >= 0) {
                PyErr_Format(PyExc_ValueError, "row %zd has %zd columns, expected %zd", i, width, ncols);
            }
            Py_DECREF(row);
            goto error;
        }
        /* every value first, like the Python loader's unpacking: loaders never see a half-read row */
        for (Py_ssize_t j = 0; j < ncols; j++) {
            if ((values[j] = PySequence_GetItem(row, j)) == NULL) {
                Py_DECREF(row);
                goto error;
            }
        }
        Py_DECREF(row);
        PyObject *obj = cls->tp_alloc(cls, 0);
        if (obj == NULL) {
            goto error;
        }
        if (i < nrows) {
            PyList_SET_ITEM(result, i, obj); /* the list owns it from here on */
        }
        else { /* the list grew: the Python loader goes on too, and the size check below decides */
            int rc = PyList_Append(result, obj);
            Py_DECREF(obj);
            if (rc < 0) {
                goto error;
            }
        }
        int untrack = 1;
        for (Py_ssize_t j = 0; j < ncols; j++) {
            PyObject *value = values[j];
            values[j] = NULL;
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
            int is_factory = PyObject_IsTrue(PyTuple_GET_ITEM(spec, 2));
            if (is_factory < 0) {
                goto error;
            }
            if (is_factory) {
                value = PyObject_CallNoArgs(value);
                if (value == NULL) {
                    goto error;
                }
            }
            else {
                Py_INCREF(value);
            }
            if (may_join_cycle(value)) {
                untrack = 0;
            }
            int rc = PyMember_SetOne((char *)obj, members[ncols + k], value);
            Py_DECREF(value);
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
    if (PyList_GET_SIZE(rows) != nrows) {
        PyErr_Format(PyExc_RuntimeError,
                     "the rows changed size during loading (%zd rows, then %zd): a type's load() "
                     "or a default factory modified the list being loaded",
                     nrows, PyList_GET_SIZE(rows));
        goto error;
    }
    PyMem_Free(members);
    PyMem_Free(values);
    if (gc_was_enabled) {
        PyGC_Enable();
    }
    PyObject_GC_Track(result);
    return result;

error:
    for (Py_ssize_t j = 0; j < ncols; j++) {
        Py_XDECREF(values[j]);
    }
    PyMem_Free(members);
    PyMem_Free(values);
    if (gc_was_enabled) {
        PyGC_Enable();
    }
    PyObject_GC_Track(result);
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
