"""PyTorch's elastic code, unchanged, driving MPIStore: the store helpers'
barrier with missing-rank tracing, and DynamicRendezvousHandler over
C10dRendezvousBackend (its keep-alive thread calls the store from a second
thread)."""
import dataclasses
import datetime
import inspect
import threading
import time

import pytest
from mpi4py import MPI

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
from torch.distributed.elastic.utils import store as elastic  # noqa: E402

from mpistore.torch import MPIStore  # noqa: E402

COMM = MPI.COMM_WORLD
RANK, SIZE = COMM.Get_rank(), COMM.Get_size()
td = datetime.timedelta


def test_barrier_names_the_rank_that_never_joined(tstore):
    """torch 2.x: a barrier of SIZE + 1 members that rank SIZE never joins.
    Every rank times out with DistStoreError; rank 0's message names the
    missing rank, the others point at rank 0."""
    if "rank_tracing_decoder" not in inspect.signature(elastic.barrier).parameters:
        pytest.skip(f"torch {torch.__version__}'s elastic barrier has no missing-rank tracing")
    # the others wait for rank 0's verdict up to barrier_timeout: more than
    # rank 0's trace_timeout plus the ranks' skew
    missing = SIZE
    with pytest.raises(dist.DistStoreError) as e:
        elastic.barrier(tstore, world_size=SIZE + 1, key_prefix="trace/b", barrier_timeout=3,
                        rank=RANK, trace_timeout=1)
    msg = str(e.value)
    if RANK == 0:
        assert f"missing_ranks=[{missing}]" in msg, msg
    else:
        assert "missing_ranks=[[<check rank 0" in msg, msg
    # torch's store_timeout has no finally: the barrier's timeout stays
    assert tstore.timeout == td(seconds=3)
    tstore.set_timeout(td(seconds=60))
    # with a decoder: host names instead of numbers
    COMM.Barrier()
    with pytest.raises(dist.DistStoreError) as e:
        elastic.barrier(tstore, world_size=SIZE + 1, key_prefix="trace/c", barrier_timeout=3,
                        rank=RANK, rank_tracing_decoder=lambda r: f"node-{r}", trace_timeout=1)
    if RANK == 0:
        assert f"missing_ranks=[node-{missing}]" in str(e.value), str(e.value)


def test_barrier_synchronize_get_all_many_rounds(tstore):
    for i in range(20):
        elastic.barrier(tstore, world_size=SIZE, key_prefix=f"many/b{i}", barrier_timeout=60,
                        rank=RANK)
        data = elastic.synchronize(tstore, f"{RANK}:{i}".encode(), RANK, SIZE, f"many/s{i}/", 60)
        assert data == [f"{r}:{i}".encode() for r in range(SIZE)]
    tstore.set(f"many/g{RANK}", b"x" * (RANK + 1))
    assert elastic.get_all(tstore, RANK, "many/g", SIZE) == [b"x" * (r + 1) for r in range(SIZE)]


def test_dynamic_rendezvous_over_c10d_backend(tstore, monkeypatch):
    from torch.distributed.elastic.rendezvous.c10d_rendezvous_backend import \
        C10dRendezvousBackend
    from torch.distributed.elastic.rendezvous.dynamic_rendezvous import (
        DynamicRendezvousHandler, RendezvousTimeout)

    # torch 2.x: rank 0 would start a TCPStore server for the workers; the
    # rendezvous store is ours alone.
    monkeypatch.setenv("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
    threads = set()

    class Backend(C10dRendezvousBackend):
        def set_state(self, state, token=None):
            threads.add(threading.current_thread().name)
            return super().set_state(state, token)

    backend = Backend(tstore, "mpirun1")
    handler = DynamicRendezvousHandler.from_backend(
        run_id="mpirun1", store=tstore, backend=backend, min_nodes=SIZE, max_nodes=SIZE,
        timeout=RendezvousTimeout(join=td(seconds=120), heartbeat=td(seconds=30)))
    # heartbeats every 0.2 s, so the keep-alive thread runs during the test
    handler._settings = dataclasses.replace(handler._settings,
                                            keep_alive_interval=td(milliseconds=200))
    info = handler.next_rendezvous()
    if isinstance(info, tuple):  # torch 1.13
        store, rank, world_size = info
    else:
        store, rank, world_size = info.store, info.rank, info.world_size
    assert world_size == SIZE
    assert sorted(COMM.allgather(rank)) == list(range(SIZE))
    # the handler's store is a PrefixStore over ours: use it while the
    # keep-alive thread writes the rendezvous state through the same store
    store.set(f"hello{rank}", f"from {rank}")
    deadline = time.monotonic() + 30
    while not any(n != threading.current_thread().name for n in threads):
        assert time.monotonic() < deadline, f"no keep-alive call from a second thread: {threads}"
        assert store.get(f"hello{(rank + 1) % SIZE}") == f"from {(rank + 1) % SIZE}".encode()
        time.sleep(0.05)
    COMM.Barrier()
    assert handler.shutdown()
