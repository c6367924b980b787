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
from __future__ import annotations

import ctypes
import datetime
import os
import threading
from typing import Any, Iterable, List, Optional, Sequence, Union

from . import _mpienv

_mpienv.before_mpi_init()  # before mpi4py initialises MPI

from mpi4py import MPI  # noqa: E402

from . import _lib
from ._lib import lib

__all__ = ["Store", "MPIStoreError", "MPIStoreTimeout", "QueueEmpty", "version", "library_path",
           "__version__"]

Key = Union[str, bytes]
Value = Union[str, bytes, bytearray, memoryview]
Seconds = Union[float, int, datetime.timedelta]

library_path: str = _lib.path


def version() -> str:
    """The loaded library's version string."""
    return lib.mpistore_version().decode()


__version__: str = version()


class MPIStoreError(RuntimeError):
    """A failed mpistore call: ``code`` (negative), ``name`` and the library's message."""

    def __init__(self, message: str, code: int = 0, name: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.name = name


class MPIStoreTimeout(MPIStoreError, TimeoutError):
    """A blocking call reached its deadline (the message contains "timeout")."""


class QueueEmpty(MPIStoreError):
    """Non-blocking queue_pop on an empty queue."""


def _code_of(name: str) -> int:
    for c in range(1, 64):
        if lib.mpistore_errname(c).decode() == "MPISTORE_" + name:
            return c
    return -1


_ETIMEDOUT, _EEMPTY = _code_of("ETIMEDOUT"), _code_of("EEMPTY")
_ESTATE = _code_of("ESTATE")


def _key(k: Key) -> bytes:
    if isinstance(k, str):
        k = k.encode()
    elif not isinstance(k, (bytes, bytearray)):
        raise TypeError(f"key must be str or bytes, not {type(k).__name__}")
    k = bytes(k)
    if b"\0" in k:
        raise ValueError("mpistore keys cannot contain a NUL byte")
    return k


def _val(v: Any) -> bytes:
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, (list, tuple)):  # PyTorch 1.13's C++ trampoline passes lists of ints
        return bytes(v)
    raise TypeError(f"value must be bytes or str, not {type(v).__name__}")


def _seconds(t: Seconds) -> float:
    if isinstance(t, datetime.timedelta):
        return t.total_seconds()
    return float(t)


def _take(ptr: Any, n: int) -> bytes:
    """Copy a library buffer into bytes and free it."""
    try:
        return ctypes.string_at(ptr, n) if n else b""
    finally:
        lib.mpistore_free(ptr)


# The compiled call layer (mpistore/_ext.c, built by pip install .), bound to
# the library loaded above.  MPISTORE_NO_EXT=1 keeps the ctypes calls.
# Below MPI_THREAD_MULTIPLE two threads must not be in MPI at once: library
# calls are then serialised (also when MPI is not initialised yet).
_single_thread_mpi = (not MPI.Is_initialized() or MPI.Is_finalized()
                      or MPI.Query_thread() < MPI.THREAD_MULTIPLE)
_x: Any = None
if not os.environ.get("MPISTORE_NO_EXT"):
    try:
        from . import _ext as _x  # type: ignore[attr-defined,no-redef]
    except ImportError:
        _x = None
if _x is not None:
    _x._init({name: ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
              for name in ("mpistore_set", "mpistore_append", "mpistore_queue_push",
                           "mpistore_get", "mpistore_add", "mpistore_compare_set",
                           "mpistore_delete_key", "mpistore_check", "mpistore_wait",
                           "mpistore_num_keys", "mpistore_multi_get", "mpistore_multi_set",
                           "mpistore_queue_pop", "mpistore_queue_len", "mpistore_set_timeout",
                           "mpistore_barrier", "mpistore_free")},
             _single_thread_mpi)
# ctypes calls: serialised the same way below MPI_THREAD_MULTIPLE
_serial = threading.Lock() if _single_thread_mpi else None
#: "ext" (compiled call layer) or "ctypes": how this process calls the library
call_layer: str = "ext" if _x is not None else "ctypes"


class Store:
    """A handle to an mpistore store, a prefix view or a clone.

    ``Store(comm)`` is collective over ``comm`` (an mpi4py communicator,
    default ``MPI.COMM_WORLD``); every rank must pass the same options.
    ``close()`` of a store is collective too; views and clones close locally
    and must be closed before their parent.  A store is not closed by the
    garbage collector (that would be a collective call at a random moment):
    use ``with`` or ``close()``.
    """

    _timeout_error: type = MPIStoreTimeout
    _empty_error: type = QueueEmpty
    _base_error: type = MPIStoreError

    def __init__(self, comm: Optional[MPI.Comm] = None, *, timeout: Seconds = 300.0,
                 max_key_len: Optional[int] = None, max_value_len: Optional[int] = None,
                 keys_per_rank: Optional[int] = None, bytes_per_rank: Optional[int] = None,
                 progress_thread: Optional[bool] = None, _handle: Optional[ctypes.c_void_p] = None,
                 _parent: Optional["Store"] = None) -> None:
        self._parent = _parent
        self._h: Optional[ctypes.c_void_p] = None
        self._hv: Optional[int] = None  # the handle as an int, for the compiled layer
        if _handle is not None:
            self._set_handle(_handle)
            return
        comm = MPI.COMM_WORLD if comm is None else comm
        if not isinstance(comm, MPI.Comm) or isinstance(comm, MPI.Intercomm):
            raise TypeError("mpistore.Store needs an mpi4py intracommunicator (e.g. "
                            f"MPI.COMM_WORLD), not {type(comm).__name__}")
        if comm == MPI.COMM_NULL:
            raise ValueError("mpistore.Store: the communicator is MPI.COMM_NULL")
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
        self._set_handle(h)

    def _set_handle(self, h: Optional[ctypes.c_void_p]) -> None:
        self._h = h
        self._hv = h.value if h is not None else None

    # ---- errors ----
    def _error(self, rc: int, h: Optional[ctypes.c_void_p]) -> MPIStoreError:
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

    def _raise(self, e: BaseException) -> MPIStoreError:
        """The exception for the compiled layer's Error(code)."""
        return self._error(e.args[0], self._h)

    def _call(self, fn: Any, *args: Any) -> None:
        h = self._handle()
        if _serial is None:
            rc = fn(h, *args)
        else:
            with _serial:
                rc = fn(h, *args)
        if rc:
            raise self._error(rc, h)

    def _handle(self) -> ctypes.c_void_p:
        if self._h is None:
            raise ValueError("mpistore handle is closed")
        return self._h

    # ---- life cycle ----
    def close(self) -> None:
        """Close the handle (collective for a store, local for a view or clone)."""
        if self._h is None:
            return
        rc = lib.mpistore_close(self._h)
        if rc and -rc == _ESTATE:  # views or clones still open: the handle stays usable
            raise self._error(rc, self._h)
        self._set_handle(None)  # any other outcome frees the handle
        if rc:
            # a view's failed close cannot happen but ESTATE; a store's message
            # outlives its handle in mpistore_errmsg(NULL)
            raise self._error(rc, None)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # views and clones are local: close them; never a store (collective)
        if getattr(self, "_h", None) is not None and getattr(self, "_parent", None) is not None:
            try:
                self.close()
            except Exception:
                pass

    def prefix(self, prefix: Key) -> "Store":
        """A view mapping every key k to prefix + "/" + k (PrefixStore)."""
        h, me = ctypes.c_void_p(), self._handle()
        rc = lib.mpistore_prefix(ctypes.byref(h), me, _key(prefix))  # out first
        if rc:
            raise self._error(rc, me)
        return self._wrap(h)

    def clone(self) -> "Store":
        """A second handle to the same store (own timeout, e.g. for another thread)."""
        h, me = ctypes.c_void_p(), self._handle()
        rc = lib.mpistore_clone(ctypes.byref(h), me)  # out first
        if rc:
            raise self._error(rc, me)
        return self._wrap(h)

    def _wrap(self, h: ctypes.c_void_p) -> "Store":
        s = type(self).__new__(type(self))
        Store.__init__(s, _handle=h, _parent=self)
        return s

    # ---- operations (ctypes; replaced by the compiled layer below when built) ----
    def set(self, key: Key, value: Value) -> None:
        v = _val(value)
        self._call(lib.mpistore_set, _key(key), v, len(v))

    def get(self, key: Key) -> bytes:
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        self._call(lib.mpistore_get, _key(key), ctypes.byref(p), ctypes.byref(n))
        return _take(p, n.value)

    def add(self, key: Key, amount: int) -> int:
        r = ctypes.c_int64()
        self._call(lib.mpistore_add, _key(key), int(amount), ctypes.byref(r))
        return r.value

    def compare_set(self, key: Key, expected: Value, desired: Value) -> bytes:
        e, d = _val(expected), _val(desired)
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        self._call(lib.mpistore_compare_set, _key(key), e, len(e), d, len(d), ctypes.byref(p),
                   ctypes.byref(n))
        return _take(p, n.value)

    def delete_key(self, key: Key) -> bool:
        r = ctypes.c_bool()
        self._call(lib.mpistore_delete_key, _key(key), ctypes.byref(r))
        return r.value

    @staticmethod
    def _keys(keys: Iterable[Key]) -> Any:
        if isinstance(keys, (str, bytes)):
            raise TypeError("keys must be a list of keys, not a single key")
        ks = [_key(k) for k in keys]
        return ks, (ctypes.c_char_p * max(len(ks), 1))(*ks)

    def check(self, keys: Sequence[Key]) -> bool:
        ks, arr = self._keys(keys)
        r = ctypes.c_bool()
        self._call(lib.mpistore_check, arr, len(ks), ctypes.byref(r))
        return r.value

    def wait(self, keys: Sequence[Key], timeout: Optional[Seconds] = None) -> None:
        """Wait until every key exists: timeout None = the handle's, 0 = forever."""
        ks, arr = self._keys(keys)
        t = -1.0 if timeout is None else _seconds(timeout)
        self._call(lib.mpistore_wait, arr, len(ks), t)

    def num_keys(self) -> int:
        r = ctypes.c_int64()
        self._call(lib.mpistore_num_keys, ctypes.byref(r))
        return r.value

    def multi_get(self, keys: Sequence[Key]) -> List[bytes]:
        ks, arr = self._keys(keys)
        n = len(ks)
        vals, lens = (ctypes.c_void_p * max(n, 1))(), (ctypes.c_size_t * max(n, 1))()
        self._call(lib.mpistore_multi_get, arr, n, vals, lens)
        return [_take(vals[i], lens[i]) for i in range(n)]

    def multi_set(self, keys: Sequence[Key], values: Sequence[Value]) -> None:
        ks, arr = self._keys(keys)
        vs = [_val(v) for v in values]
        if len(vs) != len(ks):
            raise ValueError(f"multi_set: {len(ks)} keys but {len(vs)} values")
        n = len(ks)
        bufs = [ctypes.c_char_p(v) for v in vs]  # keep alive during the call
        vals = (ctypes.c_void_p * max(n, 1))(*[ctypes.cast(b, ctypes.c_void_p) for b in bufs])
        lens = (ctypes.c_size_t * max(n, 1))(*[len(v) for v in vs])
        self._call(lib.mpistore_multi_set, arr, vals, lens, n)

    def append(self, key: Key, value: Value) -> None:
        v = _val(value)
        self._call(lib.mpistore_append, _key(key), v, len(v))

    def queue_push(self, key: Key, value: Value) -> None:
        v = _val(value)
        self._call(lib.mpistore_queue_push, _key(key), v, len(v))

    def queue_pop(self, key: Key, block: bool = True) -> bytes:
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        self._call(lib.mpistore_queue_pop, _key(key), bool(block), ctypes.byref(p),
                   ctypes.byref(n))
        return _take(p, n.value)

    def queue_len(self, key: Key) -> int:
        r = ctypes.c_int64()
        self._call(lib.mpistore_queue_len, _key(key), ctypes.byref(r))
        return r.value

    def barrier(self, key_prefix: Key, world_size: int, timeout: Optional[Seconds] = None,
                rank: int = -1) -> None:
        """PyTorch's elastic barrier in C: add key_prefix/num_members, the last
        member sets key_prefix/last_member, all wait for it.  timeout None =
        the handle's.  With rank >= 0 a timeout names the ranks that never
        arrived (every member must then pass its rank)."""
        t = self.timeout if timeout is None else _seconds(timeout)
        self._call(lib.mpistore_barrier, int(rank), int(world_size), _key(key_prefix), t)

    def set_timeout(self, timeout: Seconds) -> None:
        """Default deadline of blocking calls: seconds or timedelta; 0 = none."""
        self._call(lib.mpistore_set_timeout, _seconds(timeout))

    def list_keys(self) -> List[str]:
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

    @property
    def timeout(self) -> float:
        """The handle's timeout in seconds."""
        return lib.mpistore_timeout(self._handle())

    def stats(self, reset: bool = False) -> dict:
        """RMA calls, round trips and bytes issued (shared by a store's handles)."""
        st = _lib.Stats()
        self._call(lib.mpistore_stats, ctypes.byref(st), bool(reset))
        return {"rma_calls": st.rma_calls, "round_trips": st.round_trips, "bytes": st.bytes}

    def key_rank(self, key: Key) -> int:
        r = ctypes.c_int()
        self._call(lib.mpistore_key_rank, _key(key), ctypes.byref(r))
        return r.value


def _ext_ops(x: Any) -> None:
    """Replace Store's operations by the compiled layer's: same names, same
    arguments and results, errors turned into the same exception classes."""
    E = x.Error

    def set(self: Store, key: Key, value: Value) -> None:
        try:
            x.set(self._hv, key, value)
        except E as e:
            raise self._raise(e) from None

    def get(self: Store, key: Key) -> bytes:
        try:
            return x.get(self._hv, key)
        except E as e:
            raise self._raise(e) from None

    def add(self: Store, key: Key, amount: int) -> int:
        try:
            return x.add(self._hv, key, amount)
        except E as e:
            raise self._raise(e) from None

    def compare_set(self: Store, key: Key, expected: Value, desired: Value) -> bytes:
        try:
            return x.compare_set(self._hv, key, expected, desired)
        except E as e:
            raise self._raise(e) from None

    def delete_key(self: Store, key: Key) -> bool:
        try:
            return x.delete_key(self._hv, key)
        except E as e:
            raise self._raise(e) from None

    def check(self: Store, keys: Sequence[Key]) -> bool:
        try:
            return x.check(self._hv, keys)
        except E as e:
            raise self._raise(e) from None

    def wait(self: Store, keys: Sequence[Key], timeout: Optional[Seconds] = None) -> None:
        try:
            x.wait(self._hv, keys, -1.0 if timeout is None else _seconds(timeout))
        except E as e:
            raise self._raise(e) from None

    def num_keys(self: Store) -> int:
        try:
            return x.num_keys(self._hv)
        except E as e:
            raise self._raise(e) from None

    def multi_get(self: Store, keys: Sequence[Key]) -> List[bytes]:
        try:
            return x.multi_get(self._hv, keys)
        except E as e:
            raise self._raise(e) from None

    def multi_set(self: Store, keys: Sequence[Key], values: Sequence[Value]) -> None:
        try:
            x.multi_set(self._hv, keys, values)
        except E as e:
            raise self._raise(e) from None

    def append(self: Store, key: Key, value: Value) -> None:
        try:
            x.append(self._hv, key, value)
        except E as e:
            raise self._raise(e) from None

    def queue_push(self: Store, key: Key, value: Value) -> None:
        try:
            x.queue_push(self._hv, key, value)
        except E as e:
            raise self._raise(e) from None

    def queue_pop(self: Store, key: Key, block: bool = True) -> bytes:
        try:
            return x.queue_pop(self._hv, key, block)
        except E as e:
            raise self._raise(e) from None

    def queue_len(self: Store, key: Key) -> int:
        try:
            return x.queue_len(self._hv, key)
        except E as e:
            raise self._raise(e) from None

    def barrier(self: Store, key_prefix: Key, world_size: int,
                timeout: Optional[Seconds] = None, rank: int = -1) -> None:
        t = self.timeout if timeout is None else _seconds(timeout)
        try:
            x.barrier(self._hv, rank, world_size, key_prefix, t)
        except E as e:
            raise self._raise(e) from None

    def set_timeout(self: Store, timeout: Seconds) -> None:
        try:
            x.set_timeout(self._hv, _seconds(timeout))
        except E as e:
            raise self._raise(e) from None

    for f in (set, get, add, compare_set, delete_key, check, wait, num_keys, multi_get,
              multi_set, append, queue_push, queue_pop, queue_len, barrier, set_timeout):
        f.__doc__ = getattr(Store, f.__name__).__doc__
        f.__qualname__ = "Store." + f.__name__
        setattr(Store, f.__name__, f)


if _x is not None:
    _ext_ops(_x)
