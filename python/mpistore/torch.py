"""``MPIStore``: mpistore as a ``torch.distributed.Store``.

    from mpistore.torch import MPIStore
    store = MPIStore()                       # collective over MPI.COMM_WORLD
    torch.distributed.init_process_group("gloo", store=store, rank=r, world_size=n)

Methods carry the c10d names and types (``timedelta`` timeouts, ``bytes``
results, ``str`` or ``bytes`` values).  The C++ ``Store`` trampoline of
PyTorch calls ``set``, ``get``, ``add``, ``compare_set``, ``check``,
``wait``, ``append``, ``multi_get``, ``multi_set``, ``has_extended_api``,
``clone`` by those names and ``deleteKey`` / ``getNumKeys`` by their C++
names, so both spellings are defined.  The timeout is kept in the C++ base
(``store.timeout``), so ``PrefixStore.set_timeout`` and the elastic
``store_timeout`` helper take effect here too.
"""
import datetime

import torch.distributed as dist

from . import MPIStoreError, MPIStoreTimeout, QueueEmpty, Store

__all__ = ["MPIStore", "MPIStoreTimeoutError", "MPIStoreQueueEmpty"]

_DistStoreError = getattr(dist, "DistStoreError", None)  # PyTorch >= 2.1
_QueueEmptyError = getattr(dist, "QueueEmptyError", None)  # PyTorch >= 2.6


class MPIStoreTimeoutError(*((_DistStoreError,) if _DistStoreError else ()), MPIStoreTimeout):
    """A timeout: MPIStoreTimeout (TimeoutError) and, where it exists, DistStoreError."""


class MPIStoreQueueEmpty(*((_QueueEmptyError,) if _QueueEmptyError else ()), QueueEmpty):
    """Non-blocking pop of an empty queue (also torch.distributed.QueueEmptyError)."""


class MPIStoreTorchError(*((_DistStoreError,) if _DistStoreError else ()), MPIStoreError):
    """Any other failure (also DistStoreError where it exists)."""


class _Handle(Store):
    _timeout_error = MPIStoreTimeoutError
    _empty_error = MPIStoreQueueEmpty
    _base_error = MPIStoreTorchError


def _td(t):
    return t if isinstance(t, datetime.timedelta) else datetime.timedelta(seconds=float(t))


class MPIStore(dist.Store):
    """A torch.distributed.Store over an mpistore store (collective to create)."""

    def __init__(self, comm=None, timeout=datetime.timedelta(seconds=300), *, _handle=None,
                 **options):
        super().__init__()
        self._s = _handle if _handle is not None else _Handle(comm, timeout=_td(timeout),
                                                              **options)
        self._synced = None
        self.set_timeout(_td(timeout))

    # the C++ base holds the timeout; mirror it into the library lazily
    def _h(self):
        t = super().timeout.total_seconds()
        if t != self._synced:
            self._s.set_timeout(t)
            self._synced = t
        return self._s

    def set_timeout(self, timeout):
        super().set_timeout(_td(timeout))
        self._h()

    def set(self, key, value):
        self._h().set(key, value)

    def get(self, key):
        return self._h().get(key)

    def add(self, key, value):
        return self._h().add(key, value)

    def compare_set(self, key, expected_value, desired_value):
        return self._h().compare_set(key, expected_value, desired_value)

    def delete_key(self, key):
        return self._h().delete_key(key)

    deleteKey = delete_key

    def check(self, keys):
        return self._h().check(keys)

    def wait(self, keys, timeout=None):
        self._h().wait(keys, None if timeout is None else _td(timeout))

    def num_keys(self):
        return self._h().num_keys()

    getNumKeys = num_keys

    def multi_get(self, keys):
        return self._h().multi_get(keys)

    def multi_set(self, keys, values):
        self._h().multi_set(keys, values)

    def append(self, key, value):
        self._h().append(key, value)

    def queue_push(self, key, value):
        self._h().queue_push(key, value)

    def queue_pop(self, key, block=True):
        return self._h().queue_pop(key, block)

    def queue_len(self, key):
        return self._h().queue_len(key)

    def list_keys(self):
        return self._h().list_keys()

    def has_extended_api(self):
        return True

    def clone(self):
        """A second handle (local), e.g. for another thread; close it first."""
        return MPIStore(timeout=super().timeout, _handle=self._s.clone())

    def close(self):
        """Collective for the store, local for a clone."""
        self._s.close()

    def stats(self, reset=False):
        return self._s.stats(reset)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
