"""pytest under mpiexec: every rank runs the same tests in the same order (the
fixtures open and close stores collectively); a failure on any rank aborts
the whole job so that no rank hangs in a collective."""
import datetime
import sys

import pytest
from mpi4py import MPI

import mpistore

COMM = MPI.COMM_WORLD


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and COMM.Get_size() > 1:
        sys.stderr.write(f"\nrank {COMM.Get_rank()}: {item.nodeid} FAILED ({rep.when}):\n"
                         f"{rep.longreprtext}\nrank {COMM.Get_rank()}: aborting the job\n")
        sys.stderr.flush()
        COMM.Abort(1)


@pytest.fixture
def store():
    s = mpistore.Store(COMM, timeout=60)
    yield s
    COMM.Barrier()
    s.close()


@pytest.fixture
def tstore():
    """An mpistore.torch.MPIStore (collective), 60 s timeout; skips without torch."""
    pytest.importorskip("torch")
    from mpistore.torch import MPIStore

    s = MPIStore(COMM, timeout=datetime.timedelta(seconds=60))
    yield s
    COMM.Barrier()
    s.close()


@pytest.fixture
def rank():
    return COMM.Get_rank()


@pytest.fixture
def size():
    return COMM.Get_size()
