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
queue_pop on an empty queue raises QueueEmpty; a call that needs a rank that
died raises ProcessFailedError (``.ranks``; MPI ULFM only).  With PyTorch installed,
``mpistore.torch.MPIStore`` is a ``torch.distributed.Store``.

``Store`` is the compiled module's type (``mpistore._mpistore``, over
``mpistore.h``; typed in ``_mpistore.pyi``); this file adds the exception
classes it raises.
"""
from __future__ import annotations

import datetime
from typing import List, Union

from . import _mpienv

_mpienv.before_mpi_init()  # before mpi4py initialises MPI

from mpi4py import MPI  # noqa: E402,F401  (initialises MPI, as mpi4py.rc says)

from . import _mpistore  # noqa: E402

__all__ = ["Store", "MPIStoreError", "MPIStoreTimeout", "QueueEmpty", "ProcessFailedError",
           "version", "library_path", "call_layer", "__version__"]

Key = Union[str, bytes, bytearray]
# also what bytes() takes: buffers, lists of ints (PyTorch 1.13's trampoline)
Value = Union[str, bytes, bytearray, memoryview]
Seconds = Union[float, int, datetime.timedelta]

#: the libmpistore this process calls (next to the package: RUNPATH $ORIGIN)
library_path: str = _mpistore.library_path
#: how calls reach the library: always the compiled module ("ext")
call_layer: str = "ext"


def version() -> str:
    """The loaded library's version string."""
    return _mpistore.version()


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


class ProcessFailedError(MPIStoreError):
    """A rank the call needs has died (MPI's fault tolerance, ULFM: Open MPI 5
    under ``mpiexec --with-ft ulfm``); ``ranks``: the dead ranks of the
    store's communicator that this rank knows of, ascending."""

    def __init__(self, message: str, code: int = 0, name: str = "") -> None:
        super().__init__(message, code, name)
        self.ranks: List[int] = []


#: a handle: ``Store(comm, *, timeout=300.0, ...)`` (collective), ``prefix()``
#: views and ``clone()`` clones; the compiled type itself (see its docstring)
Store = _mpistore.Store
_mpistore._set_errors(MPIStoreTimeout, QueueEmpty, MPIStoreError, ProcessFailedError)
