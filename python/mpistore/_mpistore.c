/*
 * mpistore._mpistore: the compiled layer of the Python binding.
 *
 * One extension module over the C API.  It includes mpistore.h and
 * mpistore_elastic.h, the only place the library's signatures are written,
 * and calls the library it is linked against: libmpistore.so.0 next to it in
 * the package (RUNPATH $ORIGIN; python/CMakeLists.txt).  The communicator
 * comes from mpi4py's C API (PyMPIComm_Get), so MPI_Comm is whatever this
 * MPI's mpi.h says it is.
 *
 * Store is the handle: a store (Store(comm, ...), collective), or a prefix
 * view or clone made from one (they keep their parent alive and are closed
 * when collected; a store never is: its close is collective).  Methods
 * convert str/bytes arguments without copying where they can, release the
 * GIL around every library call (any call may block on a remote rank), and
 * raise on a non-zero return code.  The exception classes are the Python
 * package's (mpistore/__init__.py registers them with _set_errors), or a
 * handle's own (Store(..., _errors=(timeout, empty, other, process failed)), what
 * mpistore.torch passes; views and clones take their parent's), each
 * called as cls(message, code, name).  mpistore.Store is this type itself,
 * not a Python subclass: CPython 3.11 specialises a call of a C method only
 * on an object of exactly the method's type.  Below MPI_THREAD_MULTIPLE
 * (and when MPI was not initialised at import) library calls are
 * serialised by a lock taken with the GIL released, so a blocking call
 * holds the others off.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>

#ifdef MPISTORE_MPI4PY_LIMITED_API
/* mpi4py >= 4: its C API through capsules alone (pycapi.h), not tied to the
 * mpi4py release the headers came from; only the communicator is needed */
#define MPI4PY_LIMITED_API 1
#define MPI4PY_LIMITED_API_SKIP_DATATYPE 1
#define MPI4PY_LIMITED_API_SKIP_STATUS 1
#define MPI4PY_LIMITED_API_SKIP_REQUEST 1
#define MPI4PY_LIMITED_API_SKIP_MESSAGE 1
#define MPI4PY_LIMITED_API_SKIP_OP 1
#define MPI4PY_LIMITED_API_SKIP_GROUP 1
#define MPI4PY_LIMITED_API_SKIP_INFO 1
#define MPI4PY_LIMITED_API_SKIP_ERRHANDLER 1
#define MPI4PY_LIMITED_API_SKIP_SESSION 1
#define MPI4PY_LIMITED_API_SKIP_WIN 1
#define MPI4PY_LIMITED_API_SKIP_FILE 1
#endif
#include <mpi4py/mpi4py.h>

#include <mpistore.h>
#include <mpistore_elastic.h>

#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* clang-format off */
typedef struct {
    PyObject_HEAD
    mpistore_t *h;    /* NULL: closed, or never opened */
    PyObject *parent; /* a view or clone: the handle it came from */
    PyObject *errors; /* (timeout, empty queue, other) classes; NULL: default_errors */
} StoreObject;
/* clang-format on */

static PyThread_type_lock serial_lock; /* non-NULL: serialise library calls */
static PyObject *intercomm_type;       /* mpi4py.MPI.Intercomm */
static PyObject *default_errors;       /* _set_errors(): mpistore's exception classes */

/* stmt with the GIL released (and the serial lock held, if any) */
#define UNLOCKED(stmt)                                                                             \
    do {                                                                                           \
        Py_BEGIN_ALLOW_THREADS if (serial_lock) PyThread_acquire_lock(serial_lock, WAIT_LOCK);     \
        stmt;                                                                                      \
        if (serial_lock)                                                                           \
            PyThread_release_lock(serial_lock);                                                    \
        Py_END_ALLOW_THREADS                                                                       \
    } while (0)
#define CALL(rc, expr) UNLOCKED((rc) = (expr))

/* The dead ranks h knows of, as a list (an empty one if it cannot tell). */
static PyObject *dead_ranks(mpistore_t *h)
{
    int *r = NULL, rc = -1;
    size_t n = 0;
    if (h) /* with the serial lock, as every library call (it asks MPI) */
        CALL(rc, mpistore_failed_ranks(h, &r, &n));
    if (rc != 0)
        n = 0;
    PyObject *l = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; l && i < n; i++) {
        PyObject *v = PyLong_FromLong(r[i]);
        if (!v) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, v);
    }
    mpistore_free(r);
    return l;
}

/* Raise self's exception for return code rc with message msg (UTF-8); an
 * EPROCFAILED one gets .ranks, the dead ranks h knows of. */
static PyObject *raise_rc(StoreObject *self, int rc, const char *msg, Py_ssize_t len, mpistore_t *h)
{
    PyObject *errors = self->errors ? self->errors : default_errors;
    PyObject *cls = PyExc_RuntimeError; /* before _set_errors */
    if (errors)
        cls = PyTuple_GET_ITEM(errors, rc == -MPISTORE_ETIMEDOUT     ? 0
                                       : rc == -MPISTORE_EEMPTY      ? 1
                                       : rc == -MPISTORE_EPROCFAILED ? 3
                                                                     : 2);
    Py_INCREF(cls);
    PyObject *text = PyUnicode_DecodeUTF8(msg, len, "replace");
    PyObject *exc = text ? PyObject_CallFunction(cls, "Ois", text, rc, mpistore_errname(rc)) : NULL;
    if (exc && rc == -MPISTORE_EPROCFAILED) {
        PyObject *ranks = dead_ranks(h);
        if (!ranks || PyObject_SetAttrString(exc, "ranks", ranks) < 0)
            Py_CLEAR(exc);
        Py_XDECREF(ranks);
    }
    if (exc) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    Py_XDECREF(text);
    Py_DECREF(cls);
    return NULL;
}

static const char *message_of(int rc, const mpistore_t *h)
{
    const char *msg = mpistore_errmsg(h);
    return msg && *msg ? msg : mpistore_strerror(rc);
}

/* Raise self's exception for return code rc; the message is h's
 * (mpistore_errmsg(NULL): the calling thread's, for a failed open or close). */
static PyObject *fail(StoreObject *self, int rc, mpistore_t *h)
{
    const char *msg = message_of(rc, h);
    return raise_rc(self, rc, msg, (Py_ssize_t)strlen(msg), h);
}

/* A timeout in c10d's words, then ours: code written for TCPStore matches
 * the text of its DistStoreError (torch 2.13's TCPStore says "wait timeout
 * after 100ms, keys: /a, /b" for get, wait, multi_get and a blocking
 * queue_pop, naming every key of the call with its "/" prefix, and
 * "barrier timeout after 100ms, key: k" for Store.barrier), so ours begins
 * with exactly that and adds " (mpistore: <the library's message>)".
 * barrier: the one key of Store.barrier, else keys[0..n) of a wait.
 * timeout_s: the call's timeout (the handle's where the call has none). */
static PyObject *fail_wait(StoreObject *self, int rc, mpistore_t *h, const char *barrier,
                           const char *const *keys, size_t n, double timeout_s)
{
    if (rc != -MPISTORE_ETIMEDOUT)
        return fail(self, rc, h);
    /* c10d prints std::chrono::milliseconds: whole milliseconds */
    long long ms = (long long)(timeout_s * 1e6 + 0.5) / 1000;
    char head[64];
    snprintf(head, sizeof head, "%s timeout after %lldms, key%s: ", barrier ? "barrier" : "wait",
             ms, barrier ? "" : "s");
    PyObject *w = PyBytes_FromString(head);
    if (barrier && w)
        PyBytes_ConcatAndDel(&w, PyBytes_FromString(barrier));
    for (size_t i = 0; !barrier && w && i < n; i++)
        PyBytes_ConcatAndDel(&w, PyBytes_FromFormat("%s/%s", i ? ", " : "", keys[i]));
    if (w)
        PyBytes_ConcatAndDel(&w, PyBytes_FromFormat(" (mpistore: %s)", message_of(rc, h)));
    if (!w)
        return NULL;
    raise_rc(self, rc, PyBytes_AS_STRING(w), PyBytes_GET_SIZE(w), h);
    Py_DECREF(w);
    return NULL;
}

static mpistore_t *handle_of(StoreObject *self)
{
    if (!self->h)
        PyErr_SetString(PyExc_ValueError, "mpistore handle is closed");
    return self->h;
}

/* The arguments of a METH_FASTCALL | METH_KEYWORDS method, positional or by
 * name, into out[0 .. nmax); the first nreq are required, the others NULL
 * when not given. */
static int parse(const char *fn, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                 const char *const *names, Py_ssize_t nreq, Py_ssize_t nmax, PyObject **out)
{
    if (nargs > nmax) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd argument%s (%zd given)", fn, nmax,
                     nmax == 1 ? "" : "s", nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nmax; i++)
        out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t j = 0; j < nkw; j++) {
        PyObject *kw = PyTuple_GET_ITEM(kwnames, j);
        Py_ssize_t i = 0;
        while (i < nmax && PyUnicode_CompareWithASCIIString(kw, names[i]) != 0)
            i++;
        if (i == nmax) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fn, kw);
            return -1;
        }
        if (out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fn,
                         names[i]);
            return -1;
        }
        out[i] = args[nargs + j];
    }
    for (Py_ssize_t i = 0; i < nreq; i++) {
        if (!out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s' (pos %zd)", fn,
                         names[i], i + 1);
            return -1;
        }
    }
    return 0;
}

#define PARSE(fn, nreq, ...)                                                                       \
    static const char *const names[] = {__VA_ARGS__};                                              \
    PyObject *a[sizeof names / sizeof names[0]];                                                   \
    if (parse(fn, args, nargs, kwnames, names, nreq, (Py_ssize_t)(sizeof names / sizeof names[0]), \
              a))                                                                                  \
        return NULL;

#define METHOD_ARGS StoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames

/* A key: str (its UTF-8, cached in the object) or bytes/bytearray; no NUL. */
static const char *key_of(PyObject *o)
{
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

/* A value: bytes and str (its UTF-8) are used in place; anything else that
 * bytes() takes (bytearray, memoryview, a buffer; lists of ints, which
 * PyTorch 1.13's C++ trampoline passes) is copied into *keep, a new
 * reference the caller drops after the call (NULL if nothing was copied). */
static int value_of(PyObject *o, const char **p, Py_ssize_t *n, PyObject **keep)
{
    *keep = NULL;
    if (PyBytes_Check(o)) {
        *p = PyBytes_AS_STRING(o);
        *n = PyBytes_GET_SIZE(o);
        return 0;
    }
    if (PyUnicode_Check(o)) {
        *p = PyUnicode_AsUTF8AndSize(o, n);
        return *p ? 0 : -1;
    }
    if (PyByteArray_Check(o) || PyMemoryView_Check(o) || PyList_Check(o) || PyTuple_Check(o) ||
        PyObject_CheckBuffer(o)) {
        *keep = PyBytes_FromObject(o);
        if (!*keep)
            return -1;
        *p = PyBytes_AS_STRING(*keep);
        *n = PyBytes_GET_SIZE(*keep);
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "value must be bytes or str, not %.100s", Py_TYPE(o)->tp_name);
    return -1;
}

/* Seconds: a timedelta (total_seconds(), to the same double) or what float() takes. */
static int seconds_of(PyObject *o, double *out)
{
    if (PyFloat_CheckExact(o)) {
        *out = PyFloat_AS_DOUBLE(o);
        return 0;
    }
    if (PyDelta_Check(o)) {
        long long us =
            ((long long)PyDateTime_DELTA_GET_DAYS(o) * 86400LL + PyDateTime_DELTA_GET_SECONDS(o)) *
                1000000LL +
            PyDateTime_DELTA_GET_MICROSECONDS(o);
        *out = (double)us / 1e6;
        return 0;
    }
    PyObject *f = PyNumber_Float(o);
    if (!f)
        return -1;
    *out = PyFloat_AS_DOUBLE(f);
    Py_DECREF(f);
    return 0;
}

#define NSMALL 16

/* A list of keys: *keep (a tuple) holds them while the GIL is released;
 * the array is small[] or allocated (free with keys_done). */
static const char **keys_of(PyObject *o, Py_ssize_t *n, PyObject **keep, const char **small)
{
    if (PyUnicode_Check(o) || PyBytes_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "keys must be a list of keys, not a single key");
        return NULL;
    }
    *keep = PySequence_Tuple(o);
    if (!*keep)
        return NULL;
    *n = PyTuple_GET_SIZE(*keep);
    const char **arr = small;
    if (*n > NSMALL) {
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

static void keys_done(const char **arr, const char **small, PyObject *keep)
{
    if (arr != small)
        PyMem_Free(arr);
    Py_DECREF(keep);
}

/* A library buffer as bytes; the buffer is freed. */
static PyObject *take(void *p, size_t n)
{
    PyObject *r = PyBytes_FromStringAndSize(n ? (const char *)p : "", (Py_ssize_t)n);
    mpistore_free(p);
    return r;
}

/* ---- life cycle ---- */

/* (timeout, empty, other, process failed): four exception classes, or NULL
 * with an error */
static PyObject *errors_of(PyObject *o)
{
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 4) {
        PyErr_SetString(PyExc_TypeError, "mpistore: errors are a tuple of four exception classes");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < 4; i++) {
        PyObject *c = PyTuple_GET_ITEM(o, i);
        if (!PyType_Check(c) ||
            !PyType_IsSubtype((PyTypeObject *)c, (PyTypeObject *)PyExc_Exception)) {
            PyErr_SetString(PyExc_TypeError,
                            "mpistore: errors are a tuple of four exception classes");
            return NULL;
        }
    }
    Py_INCREF(o);
    return o;
}

static int Store_init(StoreObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {
        "comm",           "timeout",         "max_key_len", "max_value_len", "keys_per_rank",
        "bytes_per_rank", "progress_thread", "replicas",    "_errors",       NULL};
    PyObject *comm = Py_None, *timeout = NULL, *opt[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    PyObject *errors = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O$OOOOOOOO:Store", kwlist, &comm, &timeout,
                                     &opt[0], &opt[1], &opt[2], &opt[3], &opt[4], &opt[5], &errors))
        return -1;
    if (self->h) {
        PyErr_SetString(PyExc_ValueError, "mpistore.Store: this handle is already open");
        return -1;
    }
    if (errors && errors != Py_None) {
        PyObject *e = errors_of(errors);
        if (!e)
            return -1;
        Py_XSETREF(self->errors, e);
    }
    MPI_Comm c = MPI_COMM_WORLD;
    if (comm != Py_None) {
        if (!PyObject_TypeCheck(comm, &PyMPIComm_Type) ||
            PyObject_TypeCheck(comm, (PyTypeObject *)intercomm_type)) {
            PyErr_Format(PyExc_TypeError,
                         "mpistore.Store needs an mpi4py intracommunicator (e.g. "
                         "MPI.COMM_WORLD), not %.100s",
                         Py_TYPE(comm)->tp_name);
            return -1;
        }
        MPI_Comm *pc = PyMPIComm_Get(comm);
        if (!pc)
            return -1;
        if (*pc == MPI_COMM_NULL) {
            PyErr_SetString(PyExc_ValueError, "mpistore.Store: the communicator is MPI.COMM_NULL");
            return -1;
        }
        c = *pc;
    }
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.timeout_s = 300.0;
    if (timeout && seconds_of(timeout, &o.timeout_s))
        return -1;
    size_t *sizes[4] = {&o.max_key_len, &o.max_value_len, &o.keys_per_rank, &o.bytes_per_rank};
    for (int i = 0; i < 6; i++) {
        if (!opt[i] || opt[i] == Py_None)
            continue;
        PyObject *v = PyNumber_Long(opt[i]);
        if (!v)
            return -1;
        if (i < 4) {
            *sizes[i] = PyLong_AsSize_t(v);
        } else {
            long t = PyLong_AsLong(v);
            int ti = t < INT32_MIN ? INT32_MIN : t > INT32_MAX ? INT32_MAX : (int)t;
            if (i == 4)
                o.progress_thread = ti;
            else
                o.replicas = ti; /* open checks it: 0 or 1 */
        }
        Py_DECREF(v);
        if (PyErr_Occurred())
            return -1;
    }
    mpistore_t *h = NULL;
    int rc;
    CALL(rc, mpistore_open(&h, c, &o));
    if (rc) {
        fail(self, rc, NULL);
        return -1;
    }
    self->h = h;
    return 0;
}

/* A view or clone h of self, as an object of self's type. */
static PyObject *wrap(StoreObject *self, mpistore_t *h)
{
    PyTypeObject *t = Py_TYPE(self);
    StoreObject *v = (StoreObject *)t->tp_alloc(t, 0);
    if (!v) {
        int rc;
        CALL(rc, mpistore_close(h));
        (void)rc;
        return NULL;
    }
    v->h = h;
    Py_INCREF(self);
    v->parent = (PyObject *)self;
    Py_XINCREF(self->errors);
    v->errors = self->errors;
    return (PyObject *)v;
}

static PyObject *Store_close(StoreObject *self, PyObject *unused)
{
    (void)unused;
    mpistore_t *h = self->h;
    if (!h)
        Py_RETURN_NONE;
    int rc;
    CALL(rc, mpistore_close(h));
    if (rc == -MPISTORE_ESTATE) /* views or clones still open: the handle stays usable */
        return fail(self, rc, h);
    self->h = NULL; /* any other outcome frees the handle */
    Py_CLEAR(self->parent);
    if (rc) /* a store's message outlives its handle in mpistore_errmsg(NULL) */
        return fail(self, rc, NULL);
    Py_RETURN_NONE;
}

static PyObject *Store_enter(StoreObject *self, PyObject *unused)
{
    (void)unused;
    Py_INCREF(self);
    return (PyObject *)self;
}

static PyObject *Store_exit(StoreObject *self, PyObject *args)
{
    (void)args;
    return Store_close(self, NULL);
}

static PyObject *Store_prefix(METHOD_ARGS)
{
    PARSE("prefix", 1, "prefix");
    mpistore_t *h = handle_of(self), *out = NULL;
    const char *p = h ? key_of(a[0]) : NULL;
    if (!p)
        return NULL;
    int rc;
    CALL(rc, mpistore_prefix(&out, h, p));
    return rc ? fail(self, rc, h) : wrap(self, out);
}

static PyObject *Store_clone(StoreObject *self, PyObject *unused)
{
    (void)unused;
    mpistore_t *h = handle_of(self), *out = NULL;
    if (!h)
        return NULL;
    int rc;
    CALL(rc, mpistore_clone(&out, h));
    return rc ? fail(self, rc, h) : wrap(self, out);
}

/* After a rank died: (new store, lost_keys, rank, world_size).  The new
 * store is a store of its own (no parent); this handle can then only be
 * closed. */
static PyObject *Store_shrink(StoreObject *self, PyObject *unused)
{
    (void)unused;
    mpistore_t *h = handle_of(self), *out = NULL;
    if (!h)
        return NULL;
    if (self->parent) {
        PyErr_SetString(PyExc_ValueError,
                        "mpistore.Store.shrink: a view or clone cannot shrink; shrink the store");
        return NULL;
    }
    size_t lost = 0;
    int rc, r = -1, n = -1;
    CALL(rc, mpistore_shrink(&out, h, &lost));
    if (rc)
        return fail(self, rc, h);
    CALL(rc, mpistore_rank(out, &r, &n));
    PyTypeObject *t = Py_TYPE(self);
    StoreObject *v = (StoreObject *)t->tp_alloc(t, 0);
    if (!v) {
        CALL(rc, mpistore_close(out));
        return NULL;
    }
    v->h = out;
    Py_XINCREF(self->errors);
    v->errors = self->errors;
    return Py_BuildValue("(Nnii)", (PyObject *)v, (Py_ssize_t)lost, r, n);
}

static int Store_traverse(StoreObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->parent);
    Py_VISIT(self->errors);
    return 0;
}

/* The parent stays: a view or clone is closed (in Store_dealloc) before it.
 * A cycle through a subclass's __dict__ is broken there. */
static int Store_clear(StoreObject *self)
{
    Py_CLEAR(self->errors);
    return 0;
}

static void Store_dealloc(StoreObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->h && self->parent) { /* a view or clone: local, close it; never a store */
        int rc;
        CALL(rc, mpistore_close(self->h));
        (void)rc;
    }
    self->h = NULL;
    Py_CLEAR(self->parent);
    Py_CLEAR(self->errors);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- operations ---- */

/* set / append / queue_push: (key, value) */
typedef int (*set_fn)(mpistore_t *, const char *, const void *, size_t);
static PyObject *set_like(StoreObject *self, PyObject *key, PyObject *value, set_fn fn)
{
    mpistore_t *h = handle_of(self);
    const char *k = h ? key_of(key) : NULL, *v;
    Py_ssize_t n;
    PyObject *keep;
    if (!k || value_of(value, &v, &n, &keep))
        return NULL;
    int rc;
    CALL(rc, fn(h, k, v, (size_t)n));
    Py_XDECREF(keep);
    if (rc)
        return fail(self, rc, h);
    Py_RETURN_NONE;
}

static PyObject *Store_set(METHOD_ARGS)
{
    PARSE("set", 2, "key", "value");
    return set_like(self, a[0], a[1], mpistore_set);
}

static PyObject *Store_append(METHOD_ARGS)
{
    PARSE("append", 2, "key", "value");
    return set_like(self, a[0], a[1], mpistore_append);
}

static PyObject *Store_queue_push(METHOD_ARGS)
{
    PARSE("queue_push", 2, "key", "value");
    return set_like(self, a[0], a[1], mpistore_queue_push);
}

static PyObject *Store_get(METHOD_ARGS)
{
    PARSE("get", 1, "key");
    mpistore_t *h = handle_of(self);
    const char *k = h ? key_of(a[0]) : NULL;
    if (!k)
        return NULL;
    void *p = NULL;
    size_t n = 0;
    int rc;
    CALL(rc, mpistore_get(h, k, &p, &n));
    return rc ? fail_wait(self, rc, h, NULL, &k, 1, mpistore_timeout(h)) : take(p, n);
}

static PyObject *Store_add(METHOD_ARGS)
{
    PARSE("add", 2, "key", "amount");
    mpistore_t *h = handle_of(self);
    const char *k = h ? key_of(a[0]) : NULL;
    if (!k)
        return NULL;
    long long d = PyLong_AsLongLong(a[1]);
    if (d == -1 && PyErr_Occurred())
        return NULL;
    int64_t r = 0;
    int rc;
    CALL(rc, mpistore_add(h, k, (int64_t)d, &r));
    return rc ? fail(self, rc, h) : PyLong_FromLongLong((long long)r);
}

static PyObject *Store_compare_set(METHOD_ARGS)
{
    PARSE("compare_set", 3, "key", "expected", "desired");
    mpistore_t *h = handle_of(self);
    const char *k = h ? key_of(a[0]) : NULL, *e, *d;
    Py_ssize_t ne, nd;
    PyObject *ke, *kd;
    if (!k || value_of(a[1], &e, &ne, &ke))
        return NULL;
    if (value_of(a[2], &d, &nd, &kd)) {
        Py_XDECREF(ke);
        return NULL;
    }
    void *p = NULL;
    size_t n = 0;
    int rc;
    CALL(rc, mpistore_compare_set(h, k, e, (size_t)ne, d, (size_t)nd, &p, &n));
    Py_XDECREF(ke);
    Py_XDECREF(kd);
    return rc ? fail(self, rc, h) : take(p, n);
}

static PyObject *Store_delete_key(METHOD_ARGS)
{
    PARSE("delete_key", 1, "key");
    mpistore_t *h = handle_of(self);
    const char *k = h ? key_of(a[0]) : NULL;
    if (!k)
        return NULL;
    bool r = false;
    int rc;
    CALL(rc, mpistore_delete_key(h, k, &r));
    return rc ? fail(self, rc, h) : PyBool_FromLong(r);
}

static PyObject *Store_check(METHOD_ARGS)
{
    PARSE("check", 1, "keys");
    mpistore_t *h = handle_of(self);
    if (!h)
        return NULL;
    const char *small[NSMALL];
    Py_ssize_t n;
    PyObject *keep;
    const char **ks = keys_of(a[0], &n, &keep, small);
    if (!ks)
        return NULL;
    bool r = false;
    int rc;
    CALL(rc, mpistore_check(h, ks, (size_t)n, &r));
    keys_done(ks, small, keep);
    return rc ? fail(self, rc, h) : PyBool_FromLong(r);
}

/* wait(keys, timeout=None): None = the handle's timeout, 0 = none */
static PyObject *Store_wait(METHOD_ARGS)
{
    PARSE("wait", 1, "keys", "timeout");
    mpistore_t *h = handle_of(self);
    if (!h)
        return NULL;
    double t = MPISTORE_TIMEOUT_DEFAULT;
    if (a[1] && a[1] != Py_None && seconds_of(a[1], &t))
        return NULL;
    const char *small[NSMALL];
    Py_ssize_t n;
    PyObject *keep;
    const char **ks = keys_of(a[0], &n, &keep, small);
    if (!ks)
        return NULL;
    int rc;
    CALL(rc, mpistore_wait(h, ks, (size_t)n, t));
    if (rc)
        fail_wait(self, rc, h, NULL, ks, (size_t)n,
                  t == MPISTORE_TIMEOUT_DEFAULT ? mpistore_timeout(h) : t);
    keys_done(ks, small, keep);
    if (rc)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Store_num_keys(StoreObject *self, PyObject *unused)
{
    (void)unused;
    mpistore_t *h = handle_of(self);
    if (!h)
        return NULL;
    int64_t r = 0;
    int rc;
    CALL(rc, mpistore_num_keys(h, &r));
    return rc ? fail(self, rc, h) : PyLong_FromLongLong((long long)r);
}

static PyObject *Store_multi_get(METHOD_ARGS)
{
    PARSE("multi_get", 1, "keys");
    mpistore_t *h = handle_of(self);
    if (!h)
        return NULL;
    const char *small[NSMALL];
    Py_ssize_t n;
    PyObject *keep;
    const char **ks = keys_of(a[0], &n, &keep, small);
    if (!ks)
        return NULL;
    size_t cnt = n ? (size_t)n : 1;
    void **vals = PyMem_Calloc(cnt, sizeof(void *));
    size_t *lens = PyMem_Calloc(cnt, sizeof(size_t));
    PyObject *out = NULL;
    if (!vals || !lens) {
        PyErr_NoMemory();
        goto done;
    }
    int rc;
    CALL(rc, mpistore_multi_get(h, ks, (size_t)n, vals, lens));
    if (rc) {
        fail_wait(self, rc, h, NULL, ks, (size_t)n, mpistore_timeout(h));
        goto done;
    }
    out = PyList_New(n);
    for (Py_ssize_t i = 0; i < n; i++) { /* take() every value, also after a failure */
        PyObject *b = take(vals[i], lens[i]);
        if (out && b) {
            PyList_SET_ITEM(out, i, b);
        } else {
            Py_XDECREF(b);
            Py_CLEAR(out);
        }
    }
done:
    PyMem_Free(vals);
    PyMem_Free(lens);
    keys_done(ks, small, keep);
    return out;
}

static PyObject *Store_multi_set(METHOD_ARGS)
{
    PARSE("multi_set", 2, "keys", "values");
    mpistore_t *h = handle_of(self);
    if (!h)
        return NULL;
    const char *small[NSMALL];
    Py_ssize_t n;
    PyObject *keep, *vkeep = NULL, *out = NULL;
    const char **ks = keys_of(a[0], &n, &keep, small);
    if (!ks)
        return NULL;
    const void **vp = NULL;
    size_t *vl = NULL;
    PyObject *vals = PySequence_Tuple(a[1]);
    if (!vals)
        goto done;
    if (PyTuple_GET_SIZE(vals) != n) {
        PyErr_Format(PyExc_ValueError, "multi_set: %zd keys but %zd values", n,
                     PyTuple_GET_SIZE(vals));
        goto done;
    }
    vkeep = PyList_New(0); /* the copies value_of made */
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
        if (k) {
            int bad = PyList_Append(vkeep, k);
            Py_DECREF(k); /* the list holds it */
            if (bad)
                goto done;
        }
        vp[i] = p;
        vl[i] = (size_t)len;
    }
    int rc;
    CALL(rc, mpistore_multi_set(h, ks, vp, vl, (size_t)n));
    if (rc) {
        fail(self, rc, h);
    } else {
        Py_INCREF(Py_None);
        out = Py_None;
    }
done:
    PyMem_Free(vp);
    PyMem_Free(vl);
    Py_XDECREF(vkeep);
    Py_XDECREF(vals);
    keys_done(ks, small, keep);
    return out;
}

static PyObject *Store_queue_pop(METHOD_ARGS)
{
    PARSE("queue_pop", 1, "key", "block");
    mpistore_t *h = handle_of(self);
    const char *k = h ? key_of(a[0]) : NULL;
    if (!k)
        return NULL;
    int block = a[1] ? PyObject_IsTrue(a[1]) : 1;
    if (block < 0)
        return NULL;
    void *p = NULL;
    size_t n = 0;
    int rc;
    CALL(rc, mpistore_queue_pop(h, k, block != 0, &p, &n));
    return rc ? fail_wait(self, rc, h, NULL, &k, 1, mpistore_timeout(h)) : take(p, n);
}

static PyObject *Store_queue_len(METHOD_ARGS)
{
    PARSE("queue_len", 1, "key");
    mpistore_t *h = handle_of(self);
    const char *k = h ? key_of(a[0]) : NULL;
    if (!k)
        return NULL;
    int64_t r = 0;
    int rc;
    CALL(rc, mpistore_queue_len(h, k, &r));
    return rc ? fail(self, rc, h) : PyLong_FromLongLong((long long)r);
}

/* barrier(key_prefix, world_size, timeout=None, rank=-1): mpistore_barrier */
static PyObject *Store_barrier(METHOD_ARGS)
{
    PARSE("barrier", 2, "key_prefix", "world_size", "timeout", "rank");
    mpistore_t *h = handle_of(self);
    if (!h)
        return NULL;
    long ws = PyLong_AsLong(a[1]);
    if (ws == -1 && PyErr_Occurred())
        return NULL;
    long rank = a[3] ? PyLong_AsLong(a[3]) : -1;
    if (rank == -1 && PyErr_Occurred())
        return NULL;
    if (rank < -1 || rank > INT32_MAX || ws < -1 || ws > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "barrier: rank or world_size out of range");
        return NULL;
    }
    const char *k = key_of(a[0]);
    if (!k)
        return NULL;
    double t;
    if (!a[2] || a[2] == Py_None)
        t = mpistore_timeout(h);
    else if (seconds_of(a[2], &t))
        return NULL;
    int rc;
    CALL(rc, mpistore_barrier(h, (int)rank, (int)ws, k, t));
    if (rc)
        return fail(self, rc, h);
    Py_RETURN_NONE;
}

/* store_barrier(key, world_size, timeout=None): mpistore_store_barrier, c10d's
 * Store.barrier (TCPStore's one counter key), with TCPStore's words. */
static PyObject *Store_store_barrier(METHOD_ARGS)
{
    PARSE("store_barrier", 2, "key", "world_size", "timeout");
    mpistore_t *h = handle_of(self);
    if (!h)
        return NULL;
    long long ws = PyLong_AsLongLong(a[1]);
    if (ws == -1 && PyErr_Occurred())
        return NULL;
    const char *k = key_of(a[0]);
    if (!k)
        return NULL;
    double t = MPISTORE_TIMEOUT_DEFAULT;
    if (a[2] && a[2] != Py_None && seconds_of(a[2], &t))
        return NULL;
    int rc;
    CALL(rc, mpistore_store_barrier(h, k, (int64_t)ws, t));
    if (rc)
        return fail_wait(self, rc, h, k, NULL, 0, t < 0 ? mpistore_timeout(h) : t);
    Py_RETURN_NONE;
}

static PyObject *Store_set_timeout(METHOD_ARGS)
{
    PARSE("set_timeout", 1, "timeout");
    mpistore_t *h = handle_of(self);
    double t;
    if (!h || seconds_of(a[0], &t))
        return NULL;
    int rc;
    CALL(rc, mpistore_set_timeout(h, t));
    if (rc)
        return fail(self, rc, h);
    Py_RETURN_NONE;
}

static PyObject *Store_list_keys(StoreObject *self, PyObject *unused)
{
    (void)unused;
    mpistore_t *h = handle_of(self);
    if (!h)
        return NULL;
    char **arr = NULL;
    size_t n = 0;
    int rc;
    CALL(rc, mpistore_list_keys(h, &arr, &n));
    if (rc)
        return fail(self, rc, h);
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; i < n; i++) {
        if (out) {
            PyObject *s =
                PyUnicode_DecodeUTF8(arr[i], (Py_ssize_t)strlen(arr[i]), "surrogateescape");
            if (s)
                PyList_SET_ITEM(out, (Py_ssize_t)i, s);
            else
                Py_CLEAR(out);
        }
        mpistore_free(arr[i]);
    }
    mpistore_free(arr);
    return out;
}

static PyObject *Store_stats(METHOD_ARGS)
{
    PARSE("stats", 0, "reset");
    mpistore_t *h = handle_of(self);
    if (!h)
        return NULL;
    int reset = a[0] ? PyObject_IsTrue(a[0]) : 0;
    if (reset < 0)
        return NULL;
    mpistore_stats_t st;
    int rc;
    CALL(rc, mpistore_stats(h, &st, reset != 0));
    if (rc)
        return fail(self, rc, h);
    return Py_BuildValue("{s:K,s:K,s:K}", "rma_calls", (unsigned long long)st.rma_calls,
                         "round_trips", (unsigned long long)st.round_trips, "bytes",
                         (unsigned long long)st.bytes);
}

static PyObject *Store_key_rank(METHOD_ARGS)
{
    PARSE("key_rank", 1, "key");
    mpistore_t *h = handle_of(self);
    const char *k = h ? key_of(a[0]) : NULL;
    if (!k)
        return NULL;
    int r = -1, rc;
    CALL(rc, mpistore_key_rank(h, k, &r));
    return rc ? fail(self, rc, h) : PyLong_FromLong(r);
}

static PyObject *Store_get_timeout(StoreObject *self, void *closure)
{
    (void)closure;
    mpistore_t *h = handle_of(self);
    return h ? PyFloat_FromDouble(mpistore_timeout(h)) : NULL;
}

/* clang-format off */
#define FN(f) (PyCFunction)(void (*)(void))(f)
#define FAST(name, doc) {#name, FN(Store_##name), METH_FASTCALL | METH_KEYWORDS, doc}
#define NOARGS(name, doc) {#name, FN(Store_##name), METH_NOARGS, doc}
/* clang-format on */
static PyMethodDef Store_methods[] = {
    NOARGS(close, "Close the handle (collective for a store, local for a view or clone)."),
    {"__enter__", FN(Store_enter), METH_NOARGS, NULL},
    {"__exit__", FN(Store_exit), METH_VARARGS, NULL},
    FAST(prefix, "A view mapping every key k to prefix + \"/\" + k (PrefixStore)."),
    NOARGS(clone, "A second handle to the same store (own timeout, e.g. for another thread)."),
    NOARGS(shrink, "After a rank died (MPI ULFM): (store, lost_keys, rank, world_size), a new "
                   "store over the survivors with every key that survived (collective over the "
                   "survivors); this handle can then only be closed."),
    FAST(set, "Store value under key (replacing any old value)."),
    FAST(get, "The value of key; blocks until some rank sets it or the timeout."),
    FAST(add, "Atomic add on a decimal int64 value (a missing key starts at 0); the result."),
    FAST(compare_set, "Set key to desired if its value is expected (a missing key matches b\"\"); "
                      "the value after the call."),
    FAST(delete_key, "Remove key; whether a key was removed."),
    FAST(check, "Whether every key exists (non-blocking)."),
    FAST(wait, "Wait until every key exists: timeout None = the handle's, 0 = forever."),
    NOARGS(num_keys, "Number of keys in the store."),
    FAST(multi_get, "get() for each key under one deadline."),
    FAST(multi_set, "set() for each key and value, in order."),
    FAST(append, "Create key with value, or append value to it atomically."),
    FAST(queue_push, "Append value to the queue under key."),
    FAST(queue_pop, "Remove the oldest element of the queue under key; block=False raises the "
                    "empty-queue error at once."),
    FAST(queue_len, "Number of elements in the queue under key."),
    FAST(barrier, "PyTorch's elastic barrier in C: add key_prefix/num_members, the last member "
                  "sets key_prefix/last_member, all wait for it.  timeout None = the handle's.  "
                  "With rank >= 0 a timeout names the ranks that never arrived (every member "
                  "must then pass its rank)."),
    FAST(store_barrier, "c10d's Store.barrier as TCPStore: add(key, 1), then block until the "
                        "count reaches world_size.  timeout None = the handle's."),
    FAST(set_timeout, "Default deadline of blocking calls: seconds or timedelta; 0 = none."),
    NOARGS(list_keys, "Every key in the store (not queues)."),
    FAST(stats, "RMA calls, round trips and bytes issued (shared by a store's handles)."),
    FAST(key_rank, "The rank whose window holds key's index slot."),
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Store_getset[] = {
    {"timeout", (getter)Store_get_timeout, NULL, "The handle's timeout in seconds.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject StoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mpistore.Store",
    .tp_basicsize = sizeof(StoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Store(comm=None, *, timeout=300.0, max_key_len=None, max_value_len=None, "
              "keys_per_rank=None, bytes_per_rank=None, progress_thread=None, replicas=None)\n"
              "--\n\n"
              "A handle to an mpistore store, a prefix view or a clone.\n\n"
              "Store(comm) is collective over comm (an mpi4py intracommunicator, default\n"
              "MPI.COMM_WORLD); every rank must pass the same options (timeout in seconds or\n"
              "a timedelta; max_key_len, max_value_len, keys_per_rank, bytes_per_rank,\n"
              "progress_thread; replicas=1 keeps a second copy of every key, so that\n"
              "shrink() after one rank's death loses none).  close() of a store is\n"
              "collective too; views (prefix())\n"
              "and clones (clone()) close locally, must be closed before their parent, and\n"
              "are closed when collected.  A store is not closed by the garbage collector\n"
              "(that would be a collective call at a random moment): use with or close().",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Store_init,
    .tp_dealloc = (destructor)Store_dealloc,
    .tp_traverse = (traverseproc)Store_traverse,
    .tp_clear = (inquiry)Store_clear,
    .tp_methods = Store_methods,
    .tp_getset = Store_getset,
};

/* ---- module ---- */

static PyObject *x_version(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    return PyUnicode_FromString(mpistore_version());
}

/* _set_errors(timeout, empty, other, process_failed): the default exception classes */
static PyObject *x_set_errors(PyObject *m, PyObject *args)
{
    (void)m;
    PyObject *e = errors_of(args);
    if (!e)
        return NULL;
    Py_XSETREF(default_errors, e);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"version", x_version, METH_NOARGS, "The loaded library's version string."},
    {"_set_errors", x_set_errors, METH_VARARGS,
     "_set_errors(timeout, empty, other, process_failed): the exception classes of "
     "handles opened without _errors"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mpistore._mpistore",
    .m_doc = "mpistore's compiled layer over mpistore.h (see _mpistore.c)",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__mpistore(void); /* the module's only exported symbol */

PyMODINIT_FUNC PyInit__mpistore(void)
{
    PyDateTime_IMPORT;
    if (!PyDateTimeAPI)
        return NULL;
    /* imports mpi4py.MPI, which initialises MPI (as mpi4py.rc says) */
    if (import_mpi4py() < 0)
        return NULL;
    if (!intercomm_type) {
        PyObject *mpi = PyImport_ImportModule("mpi4py.MPI");
        if (!mpi)
            return NULL;
        intercomm_type = PyObject_GetAttrString(mpi, "Intercomm");
        Py_DECREF(mpi);
        if (!intercomm_type)
            return NULL;
        if (!PyType_Check(intercomm_type)) {
            Py_CLEAR(intercomm_type);
            PyErr_SetString(PyExc_ImportError, "mpi4py.MPI.Intercomm is not a type");
            return NULL;
        }
    }
    /* below MPI_THREAD_MULTIPLE two threads must not be in MPI at once */
    int init = 0, fin = 0, level = MPI_THREAD_SINGLE;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin)
        MPI_Query_thread(&level);
    if ((!init || fin || level < MPI_THREAD_MULTIPLE) && !serial_lock) {
        serial_lock = PyThread_allocate_lock();
        if (!serial_lock)
            return PyErr_NoMemory();
    }
    if (PyType_Ready(&StoreType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    /* the library this module calls, as the dynamic loader found it */
    Dl_info info;
    const char *path = "";
    union {
        const char *(*fn)(void);
        void *p;
    } sym = {.fn = mpistore_version};
    if (dladdr(sym.p, &info) && info.dli_fname)
        path = info.dli_fname;
    Py_INCREF(&StoreType);
    if (PyModule_AddObject(m, "Store", (PyObject *)&StoreType) < 0) {
        Py_DECREF(&StoreType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddStringConstant(m, "library_path", path) < 0 ||
        PyModule_AddIntConstant(m, "serialized", serial_lock != NULL) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
