"""mpistore from Python: a c10d-compatible key-value store over MPI one-sided
windows, for jobs started with mpirun/mpiexec.

    from mpi4py import MPI
    import mpistore

    with mpistore.Store(MPI.COMM_WORLD) as store:   # collective open/close
        store.set("config/lr", b"0.01")
        store.get("config/lr")                      # -> b"0.01" (blocks until set)

Values are bytes (str is encoded as UTF-8); keys are str (or bytes) without
NUL.  Errors raise MPIStoreError (a RuntimeError) carrying the library's
message; timeouts raise MPIStoreTimeout, also a TimeoutError; a non-blocking
queue_pop on an empty queue raises QueueEmpty.  With PyTorch installed,
``mpistore.torch.MPIStore`` is a ``torch.distributed.Store``.
"""
import ctypes
import datetime

from mpi4py import MPI

from . import _lib
from ._lib import lib

__all__ = ["Store", "MPIStoreError", "MPIStoreTimeout", "QueueEmpty", "version", "library_path"]

library_path = _lib.path


def version():
    """The loaded library's version string."""
    return lib.mpistore_version().decode()


class MPIStoreError(RuntimeError):
    """A failed mpistore call: ``code`` (negative), ``name`` and the library's message."""

    def __init__(self, message, code=0, name=""):
        super().__init__(message)
        self.code = code
        self.name = name


class MPIStoreTimeout(MPIStoreError, TimeoutError):
    """A blocking call reached its deadline (the message contains "timeout")."""


class QueueEmpty(MPIStoreError):
    """Non-blocking queue_pop on an empty queue."""


_ETIMEDOUT = 2
_EEMPTY = 10


def _code_of(name):
    for c in range(1, 64):
        if lib.mpistore_errname(c).decode() == "MPISTORE_" + name:
            return c
    return -1


_ETIMEDOUT, _EEMPTY = _code_of("ETIMEDOUT"), _code_of("EEMPTY")
_ESTATE = _code_of("ESTATE")


def _key(k):
    if isinstance(k, str):
        k = k.encode()
    elif not isinstance(k, (bytes, bytearray)):
        raise TypeError(f"key must be str or bytes, not {type(k).__name__}")
    k = bytes(k)
    if b"\0" in k:
        raise ValueError("mpistore keys cannot contain a NUL byte")
    return k


def _val(v):
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, (list, tuple)):  # PyTorch 1.13's C++ trampoline passes lists of ints
        return bytes(v)
    raise TypeError(f"value must be bytes or str, not {type(v).__name__}")


def _seconds(t):
    if isinstance(t, datetime.timedelta):
        return t.total_seconds()
    return float(t)


def _take(ptr, n):
    """Copy a library buffer into bytes and free it."""
    try:
        return ctypes.string_at(ptr, n) if n else b""
    finally:
        lib.mpistore_free(ptr)


class Store:
    """A handle to an mpistore store, a prefix view or a clone.

    ``Store(comm)`` is collective over ``comm`` (an mpi4py communicator,
    default ``MPI.COMM_WORLD``); every rank must pass the same options.
    ``close()`` of a store is collective too; views and clones close locally
    and must be closed before their parent.  A store is not closed by the
    garbage collector (that would be a collective call at a random moment):
    use ``with`` or ``close()``.
    """

    _timeout_error = MPIStoreTimeout
    _empty_error = QueueEmpty
    _base_error = MPIStoreError

    def __init__(self, comm=None, *, timeout=300.0, max_key_len=None, max_value_len=None,
                 keys_per_rank=None, bytes_per_rank=None, progress_thread=None, _handle=None,
                 _parent=None):
        self._parent = _parent
        self._h = None
        if _handle is not None:
            self._h = _handle
            return
        comm = MPI.COMM_WORLD if comm is None else comm
        o = _lib.Options()
        lib.mpistore_options_init(ctypes.byref(o))
        o.timeout_s = _seconds(timeout)
        for name, val in (("max_key_len", max_key_len), ("max_value_len", max_value_len),
                          ("keys_per_rank", keys_per_rank), ("bytes_per_rank", bytes_per_rank),
                          ("progress_thread", progress_thread)):
            if val is not None:
                setattr(o, name, int(val))
        h = ctypes.c_void_p()
        handle = MPI._handleof(comm)
        rc = lib.mpistore_open(ctypes.byref(h), _lib.c_comm(handle), ctypes.byref(o))
        if rc:
            raise self._error(rc, None)
        self._h = h

    # ---- errors ----
    def _error(self, rc, h):
        msg = lib.mpistore_errmsg(h).decode(errors="replace") or lib.mpistore_strerror(rc).decode()
        name = lib.mpistore_errname(rc).decode()
        code = -rc
        if code == _ETIMEDOUT:
            cls = self._timeout_error
        elif code == _EEMPTY:
            cls = self._empty_error
        else:
            cls = self._base_error
        return cls(msg, rc, name)

    def _call(self, fn, *args):
        h = self._handle()
        rc = fn(h, *args)
        if rc:
            raise self._error(rc, h)

    def _handle(self):
        if self._h is None:
            raise ValueError("mpistore handle is closed")
        return self._h

    # ---- life cycle ----
    def close(self):
        """Close the handle (collective for a store, local for a view or clone)."""
        if self._h is None:
            return
        rc = lib.mpistore_close(self._h)
        if rc and -rc == _ESTATE:  # views or clones still open: the handle stays usable
            raise self._error(rc, self._h)
        self._h = None  # any other outcome frees the handle
        if rc:
            # a view's failed close cannot happen but ESTATE; a store's message
            # outlives its handle in mpistore_errmsg(NULL)
            raise self._error(rc, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # views and clones are local: close them; never a store (collective)
        if getattr(self, "_h", None) is not None and getattr(self, "_parent", None) is not None:
            try:
                self.close()
            except Exception:
                pass

    def prefix(self, prefix):
        """A view mapping every key k to prefix + "/" + k (PrefixStore)."""
        h, me = ctypes.c_void_p(), self._handle()
        rc = lib.mpistore_prefix(ctypes.byref(h), me, _key(prefix))  # out first
        if rc:
            raise self._error(rc, me)
        return self._wrap(h)

    def clone(self):
        """A second handle to the same store (own timeout, e.g. for another thread)."""
        h, me = ctypes.c_void_p(), self._handle()
        rc = lib.mpistore_clone(ctypes.byref(h), me)  # out first
        if rc:
            raise self._error(rc, me)
        return self._wrap(h)

    def _wrap(self, h):
        s = type(self).__new__(type(self))
        Store.__init__(s, _handle=h, _parent=self)
        return s

    # ---- operations ----
    def set(self, key, value):
        v = _val(value)
        self._call(lib.mpistore_set, _key(key), v, len(v))

    def get(self, key):
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        self._call(lib.mpistore_get, _key(key), ctypes.byref(p), ctypes.byref(n))
        return _take(p, n.value)

    def add(self, key, amount):
        r = ctypes.c_int64()
        self._call(lib.mpistore_add, _key(key), int(amount), ctypes.byref(r))
        return r.value

    def compare_set(self, key, expected, desired):
        e, d = _val(expected), _val(desired)
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        self._call(lib.mpistore_compare_set, _key(key), e, len(e), d, len(d), ctypes.byref(p),
                   ctypes.byref(n))
        return _take(p, n.value)

    def delete_key(self, key):
        r = ctypes.c_bool()
        self._call(lib.mpistore_delete_key, _key(key), ctypes.byref(r))
        return r.value

    @staticmethod
    def _keys(keys):
        if isinstance(keys, (str, bytes)):
            raise TypeError("keys must be a list of keys, not a single key")
        ks = [_key(k) for k in keys]
        return ks, (ctypes.c_char_p * max(len(ks), 1))(*ks)

    def check(self, keys):
        ks, arr = self._keys(keys)
        r = ctypes.c_bool()
        self._call(lib.mpistore_check, arr, len(ks), ctypes.byref(r))
        return r.value

    def wait(self, keys, timeout=None):
        """Wait until every key exists: timeout None = the handle's, 0 = forever."""
        ks, arr = self._keys(keys)
        t = -1.0 if timeout is None else _seconds(timeout)
        self._call(lib.mpistore_wait, arr, len(ks), t)

    def num_keys(self):
        r = ctypes.c_int64()
        self._call(lib.mpistore_num_keys, ctypes.byref(r))
        return r.value

    def multi_get(self, keys):
        ks, arr = self._keys(keys)
        n = len(ks)
        vals, lens = (ctypes.c_void_p * max(n, 1))(), (ctypes.c_size_t * max(n, 1))()
        self._call(lib.mpistore_multi_get, arr, n, vals, lens)
        return [_take(vals[i], lens[i]) for i in range(n)]

    def multi_set(self, keys, values):
        ks, arr = self._keys(keys)
        vs = [_val(v) for v in values]
        if len(vs) != len(ks):
            raise ValueError(f"multi_set: {len(ks)} keys but {len(vs)} values")
        n = len(ks)
        bufs = [ctypes.c_char_p(v) for v in vs]  # keep alive during the call
        vals = (ctypes.c_void_p * max(n, 1))(*[ctypes.cast(b, ctypes.c_void_p) for b in bufs])
        lens = (ctypes.c_size_t * max(n, 1))(*[len(v) for v in vs])
        self._call(lib.mpistore_multi_set, arr, vals, lens, n)

    def append(self, key, value):
        v = _val(value)
        self._call(lib.mpistore_append, _key(key), v, len(v))

    def queue_push(self, key, value):
        v = _val(value)
        self._call(lib.mpistore_queue_push, _key(key), v, len(v))

    def queue_pop(self, key, block=True):
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        self._call(lib.mpistore_queue_pop, _key(key), bool(block), ctypes.byref(p),
                   ctypes.byref(n))
        return _take(p, n.value)

    def queue_len(self, key):
        r = ctypes.c_int64()
        self._call(lib.mpistore_queue_len, _key(key), ctypes.byref(r))
        return r.value

    def list_keys(self):
        arr, n = _lib.c_voidp_p(), ctypes.c_size_t()
        self._call(lib.mpistore_list_keys, ctypes.byref(arr), ctypes.byref(n))
        try:
            out = []
            for i in range(n.value):
                out.append(ctypes.string_at(arr[i]).decode(errors="surrogateescape"))
                lib.mpistore_free(arr[i])
            return out
        finally:
            lib.mpistore_free(arr)

    def set_timeout(self, timeout):
        """Default deadline of blocking calls: seconds or timedelta; 0 = none."""
        self._call(lib.mpistore_set_timeout, _seconds(timeout))

    @property
    def timeout(self):
        """The handle's timeout in seconds."""
        return lib.mpistore_timeout(self._handle())

    def stats(self, reset=False):
        """RMA calls, round trips and bytes issued (shared by a store's handles)."""
        st = _lib.Stats()
        self._call(lib.mpistore_stats, ctypes.byref(st), bool(reset))
        return {"rma_calls": st.rma_calls, "round_trips": st.round_trips, "bytes": st.bytes}

    def key_rank(self, key):
        r = ctypes.c_int()
        self._call(lib.mpistore_key_rank, _key(key), ctypes.byref(r))
        return r.value
