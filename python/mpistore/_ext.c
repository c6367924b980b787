/*
 * mpistore._ext: the hot calls of the Python binding without ctypes.
 *
 * Built by `pip install .` against Python.h only: no MPI, no torch, and no
 * link to libmpistore.  The library's entry points come from the library
 * that mpistore._lib loaded with ctypes (so MPISTORE_LIBRARY and the source
 * tree's build directories work the same way): _init() receives their
 * addresses.  Every function takes the handle (an int from ctypes, or None
 * when closed) first, converts str/bytes arguments without copying where it
 * can, releases the GIL around the library call (any call may block on a
 * remote rank), and on a non-zero return code raises Error(code): the
 * Python side turns it into the right exception with the handle's message.
 * With serialize set (MPI below MPI_THREAD_MULTIPLE) library calls are
 * serialised by a lock taken with the GIL released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef struct mpistore mpistore_t;

typedef int (*set_fn)(mpistore_t *, const char *, const void *, size_t);
typedef int (*get_fn)(mpistore_t *, const char *, void **, size_t *);
typedef int (*add_fn)(mpistore_t *, const char *, int64_t, int64_t *);
typedef int (*cas_fn)(mpistore_t *, const char *, const void *, size_t, const void *, size_t,
                      void **, size_t *);
typedef int (*del_fn)(mpistore_t *, const char *, bool *);
typedef int (*check_fn)(mpistore_t *, const char *const *, size_t, bool *);
typedef int (*wait_fn)(mpistore_t *, const char *const *, size_t, double);
typedef int (*count_fn)(mpistore_t *, int64_t *);
typedef int (*mget_fn)(mpistore_t *, const char *const *, size_t, void **, size_t *);
typedef int (*mset_fn)(mpistore_t *, const char *const *, const void *const *, const size_t *,
                       size_t);
typedef int (*pop_fn)(mpistore_t *, const char *, bool, void **, size_t *);
typedef int (*qlen_fn)(mpistore_t *, const char *, int64_t *);
typedef int (*timeout_fn)(mpistore_t *, double);
typedef int (*barrier_fn)(mpistore_t *, int, int, const char *, double);
typedef void (*free_fn)(void *);

static struct {
    set_fn set, append, queue_push;
    get_fn get;
    add_fn add;
    cas_fn compare_set;
    del_fn delete_key;
    check_fn check;
    wait_fn wait;
    count_fn num_keys;
    mget_fn multi_get;
    mset_fn multi_set;
    pop_fn queue_pop;
    qlen_fn queue_len;
    timeout_fn set_timeout;
    barrier_fn barrier;
    free_fn free;
} F;

static PyObject *Error;               /* Error(code) */
static PyThread_type_lock serial_lock; /* non-NULL: serialise library calls */

#define CALL(rc, expr)                                                                         \
    do {                                                                                       \
        Py_BEGIN_ALLOW_THREADS if (serial_lock) PyThread_acquire_lock(serial_lock, WAIT_LOCK); \
        (rc) = (expr);                                                                         \
        if (serial_lock)                                                                       \
            PyThread_release_lock(serial_lock);                                                \
        Py_END_ALLOW_THREADS                                                                   \
    } while (0)

static PyObject *fail(int rc) {
    PyObject *code = PyLong_FromLong(rc);
    if (code) {
        PyErr_SetObject(Error, code);
        Py_DECREF(code);
    }
    return NULL;
}

static int handle(PyObject *o, mpistore_t **h) {
    if (o == Py_None) {
        PyErr_SetString(PyExc_ValueError, "mpistore handle is closed");
        return -1;
    }
    *h = (mpistore_t *)PyLong_AsVoidPtr(o);
    if (!*h) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "mpistore handle is closed");
        return -1;
    }
    return 0;
}

/* A key: str (UTF-8, cached in the object) or bytes/bytearray; no NUL. */
static const char *key_of(PyObject *o) {
    const char *s;
    Py_ssize_t n;
    if (PyUnicode_Check(o)) {
        s = PyUnicode_AsUTF8AndSize(o, &n);
        if (!s)
            return NULL;
    } else if (PyBytes_Check(o)) {
        s = PyBytes_AS_STRING(o);
        n = PyBytes_GET_SIZE(o);
    } else if (PyByteArray_Check(o)) {
        s = PyByteArray_AS_STRING(o);
        n = PyByteArray_GET_SIZE(o);
    } else {
        PyErr_Format(PyExc_TypeError, "key must be str or bytes, not %.100s", Py_TYPE(o)->tp_name);
        return NULL;
    }
    if ((Py_ssize_t)strlen(s) != n) {
        PyErr_SetString(PyExc_ValueError, "mpistore keys cannot contain a NUL byte");
        return NULL;
    }
    return s;
}

/* A value: *keep receives a new reference that owns the bytes. */
static int value_of(PyObject *o, const char **p, Py_ssize_t *n, PyObject **keep) {
    if (PyBytes_Check(o)) {
        Py_INCREF(o);
        *keep = o;
    } else if (PyUnicode_Check(o)) {
        *keep = PyUnicode_AsUTF8String(o);
    } else if (PyByteArray_Check(o) || PyMemoryView_Check(o) || PyList_Check(o) ||
               PyTuple_Check(o) || PyObject_CheckBuffer(o)) {
        /* lists of ints: PyTorch 1.13's C++ trampoline passes those */
        *keep = PyBytes_FromObject(o);
    } else {
        PyErr_Format(PyExc_TypeError, "value must be bytes or str, not %.100s",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    if (!*keep)
        return -1;
    *p = PyBytes_AS_STRING(*keep);
    *n = PyBytes_GET_SIZE(*keep);
    return 0;
}

/* A list of keys: *keep (a tuple) holds them while the GIL is released. */
static const char **keys_of(PyObject *o, Py_ssize_t *n, PyObject **keep, const char **small,
                            Py_ssize_t nsmall) {
    if (PyUnicode_Check(o) || PyBytes_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "keys must be a list of keys, not a single key");
        return NULL;
    }
    *keep = PySequence_Tuple(o);
    if (!*keep)
        return NULL;
    *n = PyTuple_GET_SIZE(*keep);
    const char **arr = small;
    if (*n > nsmall) {
        arr = PyMem_Malloc(sizeof(char *) * (size_t)*n);
        if (!arr) {
            Py_CLEAR(*keep);
            PyErr_NoMemory();
            return NULL;
        }
    }
    for (Py_ssize_t i = 0; i < *n; i++) {
        arr[i] = key_of(PyTuple_GET_ITEM(*keep, i));
        if (!arr[i]) {
            if (arr != small)
                PyMem_Free(arr);
            Py_CLEAR(*keep);
            return NULL;
        }
    }
    return arr;
}

static PyObject *take(void *p, size_t n) {
    PyObject *r = PyBytes_FromStringAndSize(n ? (const char *)p : "", (Py_ssize_t)n);
    F.free(p);
    return r;
}

static int nargs(Py_ssize_t got, Py_ssize_t want, const char *name) {
    if (got != want) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, want, got);
        return -1;
    }
    return 0;
}

#define ARGS(want, name)                                                                       \
    mpistore_t *h;                                                                             \
    if (nargs(nargsf, want, name) || handle(args[0], &h))                                      \
        return NULL;

/* set / append / queue_push: (h, key, value) */
static PyObject *set_like(PyObject *const *args, Py_ssize_t nargsf, set_fn fn, const char *name) {
    ARGS(3, name);
    const char *k = key_of(args[1]), *v;
    Py_ssize_t n;
    PyObject *keep;
    if (!k || value_of(args[2], &v, &n, &keep))
        return NULL;
    int rc;
    CALL(rc, fn(h, k, v, (size_t)n));
    Py_DECREF(keep);
    if (rc)
        return fail(rc);
    Py_RETURN_NONE;
}

static PyObject *x_set(PyObject *m, PyObject *const *a, Py_ssize_t n) {
    (void)m;
    return set_like(a, n, F.set, "set");
}
static PyObject *x_append(PyObject *m, PyObject *const *a, Py_ssize_t n) {
    (void)m;
    return set_like(a, n, F.append, "append");
}
static PyObject *x_queue_push(PyObject *m, PyObject *const *a, Py_ssize_t n) {
    (void)m;
    return set_like(a, n, F.queue_push, "queue_push");
}

static PyObject *x_get(PyObject *m, PyObject *const *args, Py_ssize_t nargsf) {
    (void)m;
    ARGS(2, "get");
    const char *k = key_of(args[1]);
    if (!k)
        return NULL;
    void *p = NULL;
    size_t n = 0;
    int rc;
    CALL(rc, F.get(h, k, &p, &n));
    return rc ? fail(rc) : take(p, n);
}

static PyObject *x_add(PyObject *m, PyObject *const *args, Py_ssize_t nargsf) {
    (void)m;
    ARGS(3, "add");
    const char *k = key_of(args[1]);
    if (!k)
        return NULL;
    long long d = PyLong_AsLongLong(args[2]);
    if (d == -1 && PyErr_Occurred())
        return NULL;
    int64_t r = 0;
    int rc;
    CALL(rc, F.add(h, k, (int64_t)d, &r));
    return rc ? fail(rc) : PyLong_FromLongLong((long long)r);
}

static PyObject *x_compare_set(PyObject *m, PyObject *const *args, Py_ssize_t nargsf) {
    (void)m;
    ARGS(4, "compare_set");
    const char *k = key_of(args[1]), *e, *d;
    Py_ssize_t ne, nd;
    PyObject *ke, *kd;
    if (!k || value_of(args[2], &e, &ne, &ke))
        return NULL;
    if (value_of(args[3], &d, &nd, &kd)) {
        Py_DECREF(ke);
        return NULL;
    }
    void *p = NULL;
    size_t n = 0;
    int rc;
    CALL(rc, F.compare_set(h, k, e, (size_t)ne, d, (size_t)nd, &p, &n));
    Py_DECREF(ke);
    Py_DECREF(kd);
    return rc ? fail(rc) : take(p, n);
}

static PyObject *x_delete_key(PyObject *m, PyObject *const *args, Py_ssize_t nargsf) {
    (void)m;
    ARGS(2, "delete_key");
    const char *k = key_of(args[1]);
    if (!k)
        return NULL;
    bool r = false;
    int rc;
    CALL(rc, F.delete_key(h, k, &r));
    if (rc)
        return fail(rc);
    return PyBool_FromLong(r);
}

#define NSMALL 16

static PyObject *x_check(PyObject *m, PyObject *const *args, Py_ssize_t nargsf) {
    (void)m;
    ARGS(2, "check");
    const char *small[NSMALL];
    Py_ssize_t n;
    PyObject *keep;
    const char **ks = keys_of(args[1], &n, &keep, small, NSMALL);
    if (!ks)
        return NULL;
    bool r = false;
    int rc;
    CALL(rc, F.check(h, ks, (size_t)n, &r));
    if (ks != small)
        PyMem_Free(ks);
    Py_DECREF(keep);
    if (rc)
        return fail(rc);
    return PyBool_FromLong(r);
}

/* wait(h, keys, timeout_s): timeout_s < 0 = the handle's, 0 = none */
static PyObject *x_wait(PyObject *m, PyObject *const *args, Py_ssize_t nargsf) {
    (void)m;
    ARGS(3, "wait");
    double t = PyFloat_AsDouble(args[2]);
    if (t == -1.0 && PyErr_Occurred())
        return NULL;
    const char *small[NSMALL];
    Py_ssize_t n;
    PyObject *keep;
    const char **ks = keys_of(args[1], &n, &keep, small, NSMALL);
    if (!ks)
        return NULL;
    int rc;
    CALL(rc, F.wait(h, ks, (size_t)n, t));
    if (ks != small)
        PyMem_Free(ks);
    Py_DECREF(keep);
    if (rc)
        return fail(rc);
    Py_RETURN_NONE;
}

static PyObject *x_num_keys(PyObject *m, PyObject *const *args, Py_ssize_t nargsf) {
    (void)m;
    ARGS(1, "num_keys");
    int64_t r = 0;
    int rc;
    CALL(rc, F.num_keys(h, &r));
    return rc ? fail(rc) : PyLong_FromLongLong((long long)r);
}

static PyObject *x_multi_get(PyObject *m, PyObject *const *args, Py_ssize_t nargsf) {
    (void)m;
    ARGS(2, "multi_get");
    const char *small[NSMALL];
    Py_ssize_t n;
    PyObject *keep;
    const char **ks = keys_of(args[1], &n, &keep, small, NSMALL);
    if (!ks)
        return NULL;
    size_t cnt = n ? (size_t)n : 1;
    void **vals = PyMem_Calloc(cnt, sizeof(void *));
    size_t *lens = PyMem_Calloc(cnt, sizeof(size_t));
    PyObject *out = NULL;
    int rc = 0;
    if (!vals || !lens) {
        PyErr_NoMemory();
        goto done;
    }
    CALL(rc, F.multi_get(h, ks, (size_t)n, vals, lens));
    if (rc) {
        fail(rc);
        goto done;
    }
    out = PyList_New(n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = take(vals[i], lens[i]);
        if (out && b)
            PyList_SET_ITEM(out, i, b);
        else {
            Py_XDECREF(b);
            Py_CLEAR(out);
        }
    }
done:
    PyMem_Free(vals);
    PyMem_Free(lens);
    if (ks != small)
        PyMem_Free(ks);
    Py_DECREF(keep);
    return out;
}

static PyObject *x_multi_set(PyObject *m, PyObject *const *args, Py_ssize_t nargsf) {
    (void)m;
    ARGS(3, "multi_set");
    const char *small[NSMALL];
    Py_ssize_t n;
    PyObject *keep, *vkeep = NULL, *vals = NULL;
    const char **ks = keys_of(args[1], &n, &keep, small, NSMALL);
    if (!ks)
        return NULL;
    PyObject *out = NULL;
    const void **vp = NULL;
    size_t *vl = NULL;
    vals = PySequence_Tuple(args[2]);
    if (!vals)
        goto done;
    if (PyTuple_GET_SIZE(vals) != n) {
        PyErr_Format(PyExc_ValueError, "multi_set: %zd keys but %zd values", n,
                     PyTuple_GET_SIZE(vals));
        goto done;
    }
    vkeep = PyTuple_New(n);
    vp = PyMem_Calloc(n ? (size_t)n : 1, sizeof(void *));
    vl = PyMem_Calloc(n ? (size_t)n : 1, sizeof(size_t));
    if (!vkeep || !vp || !vl) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *p;
        Py_ssize_t len;
        PyObject *k;
        if (value_of(PyTuple_GET_ITEM(vals, i), &p, &len, &k))
            goto done;
        PyTuple_SET_ITEM(vkeep, i, k);
        vp[i] = p;
        vl[i] = (size_t)len;
    }
    int rc;
    CALL(rc, F.multi_set(h, ks, vp, vl, (size_t)n));
    if (rc)
        fail(rc);
    else {
        Py_INCREF(Py_None);
        out = Py_None;
    }
done:
    PyMem_Free(vp);
    PyMem_Free(vl);
    Py_XDECREF(vkeep);
    Py_XDECREF(vals);
    if (ks != small)
        PyMem_Free(ks);
    Py_DECREF(keep);
    return out;
}

static PyObject *x_queue_pop(PyObject *m, PyObject *const *args, Py_ssize_t nargsf) {
    (void)m;
    ARGS(3, "queue_pop");
    const char *k = key_of(args[1]);
    if (!k)
        return NULL;
    int block = PyObject_IsTrue(args[2]);
    if (block < 0)
        return NULL;
    void *p = NULL;
    size_t n = 0;
    int rc;
    CALL(rc, F.queue_pop(h, k, block != 0, &p, &n));
    return rc ? fail(rc) : take(p, n);
}

static PyObject *x_queue_len(PyObject *m, PyObject *const *args, Py_ssize_t nargsf) {
    (void)m;
    ARGS(2, "queue_len");
    const char *k = key_of(args[1]);
    if (!k)
        return NULL;
    int64_t r = 0;
    int rc;
    CALL(rc, F.queue_len(h, k, &r));
    return rc ? fail(rc) : PyLong_FromLongLong((long long)r);
}

static PyObject *x_set_timeout(PyObject *m, PyObject *const *args, Py_ssize_t nargsf) {
    (void)m;
    ARGS(2, "set_timeout");
    double t = PyFloat_AsDouble(args[1]);
    if (t == -1.0 && PyErr_Occurred())
        return NULL;
    int rc;
    CALL(rc, F.set_timeout(h, t));
    if (rc)
        return fail(rc);
    Py_RETURN_NONE;
}

/* barrier(h, rank, world_size, key_prefix, timeout_s): mpistore_barrier */
static PyObject *x_barrier(PyObject *m, PyObject *const *args, Py_ssize_t nargsf) {
    (void)m;
    ARGS(5, "barrier");
    long rank = PyLong_AsLong(args[1]);
    if (rank == -1 && PyErr_Occurred())
        return NULL;
    long ws = PyLong_AsLong(args[2]);
    if (ws == -1 && PyErr_Occurred())
        return NULL;
    if (rank < -1 || rank > INT32_MAX || ws < -1 || ws > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "barrier: rank or world_size out of range");
        return NULL;
    }
    const char *k = key_of(args[3]);
    if (!k)
        return NULL;
    double t = PyFloat_AsDouble(args[4]);
    if (t == -1.0 && PyErr_Occurred())
        return NULL;
    int rc;
    CALL(rc, F.barrier(h, (int)rank, (int)ws, k, t));
    if (rc)
        return fail(rc);
    Py_RETURN_NONE;
}

/* _init(addresses: dict name -> int, serialize: bool) */
static PyObject *x_init(PyObject *m, PyObject *const *args, Py_ssize_t nargsf) {
    (void)m;
    if (nargs(nargsf, 2, "_init"))
        return NULL;
    PyObject *d = args[0];
    if (!PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "_init: a dict of addresses");
        return NULL;
    }
    struct {
        const char *name;
        void **slot;
    } tab[] = {
        {"mpistore_set", (void **)&F.set},
        {"mpistore_append", (void **)&F.append},
        {"mpistore_queue_push", (void **)&F.queue_push},
        {"mpistore_get", (void **)&F.get},
        {"mpistore_add", (void **)&F.add},
        {"mpistore_compare_set", (void **)&F.compare_set},
        {"mpistore_delete_key", (void **)&F.delete_key},
        {"mpistore_check", (void **)&F.check},
        {"mpistore_wait", (void **)&F.wait},
        {"mpistore_num_keys", (void **)&F.num_keys},
        {"mpistore_multi_get", (void **)&F.multi_get},
        {"mpistore_multi_set", (void **)&F.multi_set},
        {"mpistore_queue_pop", (void **)&F.queue_pop},
        {"mpistore_queue_len", (void **)&F.queue_len},
        {"mpistore_set_timeout", (void **)&F.set_timeout},
        {"mpistore_barrier", (void **)&F.barrier},
        {"mpistore_free", (void **)&F.free},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        PyObject *a = PyDict_GetItemString(d, tab[i].name);
        void *p = a ? PyLong_AsVoidPtr(a) : NULL;
        if (!p) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "_init: no address for %s", tab[i].name);
            return NULL;
        }
        *tab[i].slot = p;
    }
    int ser = PyObject_IsTrue(args[1]);
    if (ser < 0)
        return NULL;
    if (ser && !serial_lock) {
        serial_lock = PyThread_allocate_lock();
        if (!serial_lock)
            return PyErr_NoMemory();
    }
    Py_RETURN_NONE;
}

#define FAST(name) {#name, (PyCFunction)(void (*)(void))x_##name, METH_FASTCALL, NULL}
static PyMethodDef methods[] = {
    {"_init", (PyCFunction)(void (*)(void))x_init, METH_FASTCALL, "bind the library"},
    FAST(set),
    FAST(get),
    FAST(add),
    FAST(compare_set),
    FAST(delete_key),
    FAST(check),
    FAST(wait),
    FAST(num_keys),
    FAST(multi_get),
    FAST(multi_set),
    FAST(append),
    FAST(queue_push),
    FAST(queue_pop),
    FAST(queue_len),
    FAST(set_timeout),
    FAST(barrier),
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ext", "mpistore's compiled call layer (see _ext.c)", -1, methods,
    NULL,                  NULL,   NULL,                                          NULL,
};

PyMODINIT_FUNC PyInit__ext(void); /* the module's only exported symbol */

PyMODINIT_FUNC PyInit__ext(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Error = PyErr_NewException("mpistore._ext.Error", NULL, NULL);
    if (!Error || PyModule_AddObject(m, "Error", Error)) {
        Py_XDECREF(Error);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(Error);
    return m;
}
