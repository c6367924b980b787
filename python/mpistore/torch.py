"""``MPIStore``: mpistore as a ``torch.distributed.Store``, and ``mpi://``.

    from mpistore.torch import MPIStore
    store = MPIStore()                       # collective over MPI.COMM_WORLD
    torch.distributed.init_process_group("gloo", store=store, rank=r, world_size=n)

or, with no store, rank or size at all (importing this module registers the
``mpi://`` rendezvous handler)::

    import mpistore.torch
    torch.distributed.init_process_group("gloo", init_method="mpi://")

Methods carry the c10d names and types (``timedelta`` timeouts, ``bytes``
results, ``str`` or ``bytes`` values).  The C++ ``Store`` trampoline of
PyTorch calls ``set``, ``get``, ``add``, ``compare_set``, ``check``,
``wait``, ``append``, ``multi_get``, ``multi_set``, ``has_extended_api``,
``clone`` by those names and ``deleteKey`` / ``getNumKeys`` by their C++
names, so both spellings are defined.  The timeout is kept in the C++ base
(``store.timeout``), so ``PrefixStore.set_timeout`` and the elastic
``store_timeout`` helper take effect here too.  Timeouts raise
``torch.distributed.DistStoreError`` (and ``TimeoutError``), an empty
non-blocking ``queue_pop`` raises ``torch.distributed.QueueEmptyError``, where
the installed PyTorch has them.
"""
from __future__ import annotations

import atexit
import datetime
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qs, urlparse

import torch.distributed as dist
from mpi4py import MPI

from . import Key, MPIStoreError, MPIStoreTimeout, ProcessFailedError, QueueEmpty, Store, Value

if TYPE_CHECKING:  # torch.distributed re-exports Store without declaring it
    from torch._C._distributed_c10d import Store as _TorchStore
else:
    _TorchStore = dist.Store

__all__ = ["MPIStore", "MPIStoreTimeoutError", "MPIStoreQueueEmpty", "MPIStoreTorchError",
           "MPIStoreProcessFailedError", "mpi_rendezvous_handler"]

_DistStoreError = getattr(dist, "DistStoreError", None)  # PyTorch >= 2.1
_QueueEmptyError = getattr(dist, "QueueEmptyError", None)  # PyTorch >= 2.6

Timeout = Union[datetime.timedelta, float, int]


class MPIStoreTimeoutError(*((_DistStoreError,) if _DistStoreError else ()),  # type: ignore[misc]
                           MPIStoreTimeout):
    """A timeout: MPIStoreTimeout (TimeoutError) and, where it exists, DistStoreError."""


class MPIStoreQueueEmpty(*((_QueueEmptyError,) if _QueueEmptyError else ()),  # type: ignore[misc]
                         QueueEmpty):
    """Non-blocking pop of an empty queue (also torch.distributed.QueueEmptyError)."""


class MPIStoreTorchError(*((_DistStoreError,) if _DistStoreError else ()),  # type: ignore[misc]
                         MPIStoreError):
    """Any other failure (also DistStoreError where it exists)."""


class MPIStoreProcessFailedError(*((_DistStoreError,) if _DistStoreError else ()),  # type: ignore[misc]
                                 ProcessFailedError):
    """A rank the call needs has died (MPI ULFM): ``mpistore.ProcessFailedError``
    (``.ranks``) and, where it exists, DistStoreError."""


# what our handles raise (Store(_errors=...)): timeout, empty queue, other,
# a dead rank
_ERRORS = (MPIStoreTimeoutError, MPIStoreQueueEmpty, MPIStoreTorchError,
           MPIStoreProcessFailedError)


def _td(t: Timeout) -> datetime.timedelta:
    return t if isinstance(t, datetime.timedelta) else datetime.timedelta(seconds=float(t))


# The C++ base's timeout getter and setter, called without the property machinery.
_base_timeout: Any = _TorchStore.timeout.fget  # type: ignore[attr-defined]
_base_set_timeout: Any = _TorchStore.set_timeout


class MPIStore(_TorchStore):
    """A torch.distributed.Store over an mpistore store (collective to create).

    ``comm`` is an mpi4py intracommunicator (default ``MPI.COMM_WORLD``);
    ``options`` are those of :class:`mpistore.Store` (``keys_per_rank``,
    ``bytes_per_rank``, ``max_key_len``, ``max_value_len``,
    ``progress_thread``, ``replicas``: 1 keeps a second copy of every key so
    that ``shrink()`` after one rank's death loses none).  ``close()`` is
    collective; closing a store also
    closes the clones made from it (``clone()``, e.g. by ``split_group``).
    """

    def __init__(self, comm: Optional[MPI.Comm] = None,
                 timeout: Timeout = datetime.timedelta(seconds=300), *,
                 _handle: Optional[Store] = None, **options: Any) -> None:
        super().__init__()
        td = _td(timeout)
        self._s: Store = (_handle if _handle is not None
                          else Store(comm, timeout=td, _errors=_ERRORS, **options))
        # strong references: C++ (split_group, PrefixStore.clone) holds only
        # the C++ half of a clone, and the Python half must outlive it
        self._clones: List[MPIStore] = []
        _base_set_timeout(self, td)
        self._s.set_timeout(td)
        self._synced: datetime.timedelta = td
        self.lost_keys: int = 0  # set on a store made by shrink()

    # The C++ base holds the timeout (PrefixStore.set_timeout and the
    # trampoline change it there); every call first mirrors it into the
    # library if it changed (one comparison when it did not).
    def _sync(self) -> Store:
        t = _base_timeout(self)
        if t != self._synced:
            self._s.set_timeout(t)
            self._synced = t
        return self._s

    def set_timeout(self, timeout: Timeout) -> None:
        # the library follows lazily, at the next call (_sync)
        _base_set_timeout(self, timeout if type(timeout) is datetime.timedelta else _td(timeout))

    # The calls of gloo and of PyTorch's elastic helpers (set, get, add,
    # wait, check, multi_get) test the timeout inline: one Python frame
    # between torch's trampoline and the compiled method.
    def set(self, key: Key, value: Value) -> None:
        if _base_timeout(self) != self._synced:
            self._sync()
        self._s.set(key, value)

    def get(self, key: Key) -> bytes:
        if _base_timeout(self) != self._synced:
            self._sync()
        return self._s.get(key)

    def add(self, key: Key, value: int) -> int:
        if _base_timeout(self) != self._synced:
            self._sync()
        return self._s.add(key, value)

    def compare_set(self, key: Key, expected_value: Value, desired_value: Value) -> bytes:
        return self._sync().compare_set(key, expected_value, desired_value)

    def delete_key(self, key: Key) -> bool:
        return self._sync().delete_key(key)

    deleteKey = delete_key

    def check(self, keys: Sequence[Key]) -> bool:
        if _base_timeout(self) != self._synced:
            self._sync()
        return self._s.check(keys)

    def wait(self, keys: Sequence[Key], timeout: Optional[datetime.timedelta] = None) -> None:
        if _base_timeout(self) != self._synced:
            self._sync()
        self._s.wait(keys, timeout)

    def num_keys(self) -> int:
        return self._sync().num_keys()

    getNumKeys = num_keys

    def multi_get(self, keys: Sequence[Key]) -> List[bytes]:
        if _base_timeout(self) != self._synced:
            self._sync()
        return self._s.multi_get(keys)

    def multi_set(self, keys: Sequence[Key], values: Sequence[Value]) -> None:
        self._sync().multi_set(keys, values)

    def append(self, key: Key, value: Value) -> None:
        self._sync().append(key, value)

    def queue_push(self, key: Key, value: Value) -> None:
        self._sync().queue_push(key, value)

    def queue_pop(self, key: Key, block: bool = True) -> bytes:
        return self._sync().queue_pop(key, block)

    def queue_len(self, key: Key) -> int:
        return self._sync().queue_len(key)

    def list_keys(self) -> List[str]:
        return self._sync().list_keys()

    def barrier(self, key: str, world_size: int,
                timeout: Optional[datetime.timedelta] = None) -> None:
        """``Store.barrier`` of PyTorch 2.x, natively and as TCPStore does it:
        adds 1 to the counter ``key``, then blocks until it reaches
        world_size (a key counts for ever: a second barrier of the same
        world_size on it returns at once); timeout None = the store's.
        Raises DistStoreError (MPIStoreTimeoutError) on a timeout."""
        self._sync().store_barrier(key, world_size, timeout)

    def has_extended_api(self) -> bool:
        return True

    def clone(self) -> "MPIStore":
        """A second handle (local), e.g. for another thread; closed by
        ``close()`` or with the store."""
        c = type(self)(timeout=_base_timeout(self), _handle=self._s.clone())
        self._clones.append(c)
        return c

    def shrink(self) -> Tuple["MPIStore", int, int]:
        """After a rank died (MPI ULFM, ``mpiexec --with-ft ulfm``): collective
        over the survivors, whatever order they learn of the death in.
        Returns ``(store, rank, world_size)``: a new MPIStore over the
        survivors (their order kept) holding every key that survived, with
        its value and kind; ``store.lost_keys`` counts the keys known lost
        (a lower bound: keys homed on a dead rank cannot be counted).  This
        store's clones and this store are closed."""
        s, lost, rank, size = self._sync().shrink()
        new = type(self)(timeout=_base_timeout(self), _handle=s)
        new.lost_keys = lost
        while self._clones:
            self._clones.pop().close()
        try:  # frees the old windows; says that ranks died
            self._s.close()
        except ProcessFailedError:
            pass
        return new, rank, size

    def close(self) -> None:
        """Collective for the store (its clones are closed first), local for a clone."""
        while self._clones:
            self._clones.pop().close()
        self._s.close()

    def stats(self, reset: bool = False) -> Dict[str, int]:
        return self._s.stats(reset)

    def __enter__(self) -> "MPIStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---- init_method="mpi://" ----
_RDZV_STORES: List[MPIStore] = []


def _close_rendezvous_stores() -> None:
    # At exit (before mpi4py finalises MPI): a window must be freed first.
    while _RDZV_STORES:
        s = _RDZV_STORES.pop()
        try:
            if MPI.Is_initialized() and not MPI.Is_finalized():
                s.close()
        except Exception:
            pass


def mpi_rendezvous_handler(url: str, timeout: Timeout = datetime.timedelta(seconds=300),
                           **kwargs: Any) -> Iterator[Tuple[MPIStore, int, int]]:
    """The ``mpi://`` rendezvous of torch.distributed: rank and world size
    are those of ``MPI.COMM_WORLD``, the store an :class:`MPIStore` over it
    (collective: every rank of the job must call ``init_process_group``).
    A ``rank`` or ``world_size`` given to ``init_process_group`` must match
    MPI's (ValueError otherwise); -1 means not given."""
    if not MPI.Is_initialized() or MPI.Is_finalized():
        raise RuntimeError("mpi:// rendezvous: MPI is not initialised (or already finalised); "
                           "run under mpirun/mpiexec with mpi4py importable")
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    query = parse_qs(urlparse(url).query)
    for name, mine in (("rank", rank), ("world_size", size)):
        for v in query.get(name, []):
            try:
                given = int(v)
            except ValueError:
                raise ValueError(f"mpi:// rendezvous: {name}={v!r} is not an integer") from None
            if given != -1 and given != mine:
                raise ValueError(f"mpi:// rendezvous: {name}={given} was given but MPI.COMM_WORLD "
                                 f"says {name}={mine}: leave {name} out (it comes from MPI)")
    store = MPIStore(comm, timeout=_td(timeout))
    if not _RDZV_STORES:
        atexit.register(_close_rendezvous_stores)
    _RDZV_STORES.append(store)
    yield store, rank, size
    raise RuntimeError("mpi:// rendezvous cannot re-rendezvous: MPI.COMM_WORLD is fixed")


def _register() -> None:
    # the module, not torch.distributed.rendezvous (a function of that name)
    import importlib

    rdzv = importlib.import_module("torch.distributed.rendezvous")
    if "mpi" not in getattr(rdzv, "_rendezvous_handlers", {}):
        rdzv.register_rendezvous_handler("mpi", mpi_rendezvous_handler)


_register()
