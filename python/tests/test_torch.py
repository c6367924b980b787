"""mpistore.torch.MPIStore under PyTorch: the c10d names, PrefixStore (C++
trampoline path), gloo init + all_reduce, and PyTorch's elastic helpers."""
import datetime
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


@pytest.fixture
def tstore():
    s = MPIStore(COMM, timeout=td(seconds=60))
    yield s
    COMM.Barrier()
    s.close()


def test_is_a_torch_store(tstore):
    assert isinstance(tstore, dist.Store)
    assert tstore.timeout == td(seconds=60)
    tstore.set_timeout(td(seconds=5))
    assert tstore.timeout == td(seconds=5) and tstore._s.timeout == 5


def test_methods_c10d_names(tstore):
    k = f"t{RANK}"
    tstore.set(k, "v")
    assert tstore.get(k) == b"v"
    assert tstore.add(f"n{RANK}", 3) == 3
    assert tstore.compare_set(k, "v", "w") == b"w"
    assert tstore.check([k]) and not tstore.check([k + "-missing"])
    tstore.wait([k])
    tstore.wait([k], td(seconds=1))
    tstore.append(k, b"x")
    tstore.multi_set([f"a{RANK}", f"b{RANK}"], [b"1", "2"])
    assert tstore.multi_get([f"a{RANK}", f"b{RANK}", k]) == [b"1", b"2", b"wx"]
    tstore.queue_push(f"q{RANK}", "e1")
    tstore.queue_push(f"q{RANK}", b"e2")
    assert tstore.queue_len(f"q{RANK}") == 2
    assert tstore.queue_pop(f"q{RANK}") == b"e1"
    assert tstore.queue_pop(f"q{RANK}", False) == b"e2"
    COMM.Barrier()
    assert tstore.num_keys() == tstore.getNumKeys() == 4 * SIZE  # t, n, a, b; not the queue
    assert sorted(tstore.list_keys()) == sorted(f"{c}{r}" for c in "tnab" for r in range(SIZE))
    COMM.Barrier()
    assert tstore.delete_key(k) and not tstore.deleteKey(k)
    assert tstore.has_extended_api()


def test_timeouts_raise_timeout_errors(tstore):
    tstore.set_timeout(td(milliseconds=200))
    with pytest.raises(TimeoutError, match="timeout"):
        tstore.get(f"never{RANK}")
    with pytest.raises(TimeoutError, match="timeout"):
        tstore.wait([f"never{RANK}"], td(milliseconds=100))
    with pytest.raises(Exception, match="empty"):
        tstore.queue_pop(f"noq{RANK}", False)
    if hasattr(dist, "DistStoreError"):
        with pytest.raises(dist.DistStoreError):
            tstore.get(f"never{RANK}")


def test_prefix_store_goes_through_the_trampoline(tstore):
    p = dist.PrefixStore("pfx", tstore)
    p.set(f"k{RANK}", "v")
    assert p.get(f"k{RANK}") == b"v"
    assert tstore.get(f"pfx/k{RANK}") == b"v"
    assert p.add(f"c{RANK}", 2) == 2
    assert p.compare_set(f"k{RANK}", "v", "w") == b"w"
    if hasattr(p, "check"):  # bound from PyTorch 1.x later than 1.13
        assert p.check([f"k{RANK}"])
    p.wait([f"k{RANK}"])
    p.wait([f"k{RANK}"], td(seconds=1))
    COMM.Barrier()
    assert p.num_keys() == 2 * SIZE  # getNumKeys through C++
    COMM.Barrier()
    assert p.delete_key(f"c{RANK}")  # deleteKey through C++
    p.set_timeout(td(milliseconds=150))  # C++ setTimeout: mirrored on next call
    with pytest.raises(Exception, match="timeout"):
        p.get(f"never{RANK}")


def test_clone(tstore):
    c = tstore.clone()
    assert isinstance(c, dist.Store)
    c.set(f"cl{RANK}", b"1")
    assert tstore.get(f"cl{RANK}") == b"1"
    c.close()


def test_elastic_helpers(tstore):
    elastic.barrier(tstore, world_size=SIZE, key_prefix="el/b1", barrier_timeout=60, rank=RANK)
    data = elastic.synchronize(tstore, f"data{RANK}".encode(), RANK, SIZE, "el/s1/", 60)
    assert data == [f"data{r}".encode() for r in range(SIZE)]
    tstore.set(f"el/g{RANK}", str(RANK * RANK))
    assert elastic.get_all(tstore, RANK, "el/g", SIZE) == [str(r * r).encode()
                                                              for r in range(SIZE)]
    t0 = time.monotonic()
    elastic.barrier(tstore, world_size=SIZE, key_prefix="el/b2", barrier_timeout=60, rank=RANK)
    assert time.monotonic() - t0 < 60
    assert tstore.timeout == td(seconds=60)  # store_timeout restored it


def test_gloo_process_group(tstore):
    dist.init_process_group("gloo", store=tstore, rank=RANK, world_size=SIZE)
    try:
        x = torch.tensor([float(RANK + 1), 1.0])
        dist.all_reduce(x)
        assert x.tolist() == [SIZE * (SIZE + 1) / 2, float(SIZE)]
        y = torch.zeros(SIZE)
        y[RANK] = RANK
        dist.all_reduce(y, op=dist.ReduceOp.MAX)
        assert y.tolist() == [float(r) for r in range(SIZE)]
        dist.barrier()
    finally:
        dist.destroy_process_group()
