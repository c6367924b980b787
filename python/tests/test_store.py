"""mpistore.Store: every method, errors, timeouts, queues across ranks."""
import datetime
import threading
import time

import pytest
from mpi4py import MPI

import mpistore

COMM = MPI.COMM_WORLD


def test_library_loaded():
    assert mpistore.version().count(".") == 2
    assert "libmpistore" in mpistore.library_path


def test_set_get_bytes_and_str(store, rank):
    store.set(f"k{rank}", "héllo")
    store.set(f"b{rank}", b"a\0b")
    store.set(f"e{rank}", b"")
    assert store.get(f"k{rank}") == "héllo".encode()
    assert store.get(f"b{rank}") == b"a\0b"
    assert store.get(f"e{rank}") == b""
    COMM.Barrier()
    other = (rank + 1) % COMM.Get_size()
    assert store.get(f"b{other}") == b"a\0b"


def test_get_blocks_until_another_rank_sets(store, rank, size):
    if rank == size - 1:
        time.sleep(0.05)
        store.set("late", b"there")
    assert store.get("late") == b"there"


def test_add(store, rank, size):
    assert store.add(f"own{rank}", 5) == 5
    assert store.add(f"own{rank}", -2) == 3
    assert store.get(f"own{rank}") == b"3"
    store.add("shared", 1)
    COMM.Barrier()
    assert store.add("shared", 0) == size
    store.set(f"txt{rank}", "abc")
    with pytest.raises(mpistore.MPIStoreError) as e:
        store.add(f"txt{rank}", 1)
    assert e.value.name == "MPISTORE_ENOTINT" and "int64" in str(e.value)


def test_compare_set_truth_table(store, rank):
    k = f"cas{rank}"
    assert store.compare_set(k, b"x", b"y") == b"x"  # missing, expected non-empty
    assert not store.check([k])
    assert store.compare_set(k, b"", b"first") == b"first"  # missing, expected empty
    assert store.compare_set(k, b"first", "second") == b"second"
    assert store.compare_set(k, b"nope", b"third") == b"second"
    assert store.get(k) == b"second"


def test_delete_check_num_keys(store, rank, size):
    store.set(f"d{rank}", b"1")
    assert store.check([f"d{rank}"])
    assert store.check([])
    COMM.Barrier()
    assert store.num_keys() == size
    COMM.Barrier()
    assert store.delete_key(f"d{rank}") is True
    assert store.delete_key(f"d{rank}") is False
    assert not store.check([f"d{rank}"])
    COMM.Barrier()
    assert store.num_keys() == 0


def test_wait_and_timeout_errors(store, rank):
    if rank == 0:
        store.set("ready", b"1")
    store.wait(["ready"])
    store.wait(["ready"], datetime.timedelta(seconds=5))
    t0 = time.monotonic()
    with pytest.raises(mpistore.MPIStoreTimeout) as e:
        store.wait([f"missing{rank}"], 0.2)
    assert time.monotonic() - t0 >= 0.19
    assert isinstance(e.value, TimeoutError)
    assert "timeout" in str(e.value) and f"missing{rank}" in str(e.value)
    store.set_timeout(datetime.timedelta(milliseconds=150))
    assert store.timeout == pytest.approx(0.15)
    with pytest.raises(TimeoutError, match="timeout"):
        store.get(f"never{rank}")
    store.set_timeout(60)


def test_multi_get_set_and_append(store, rank):
    keys = [f"m{rank}/{i}" for i in range(5)]
    store.multi_set(keys, [f"v{i}" for i in range(5)])
    assert store.multi_get(keys) == [f"v{i}".encode() for i in range(5)]
    assert store.multi_get([]) == []
    with pytest.raises(ValueError):
        store.multi_set(keys, [b"1"])
    store.append(f"ap{rank}", b"ab")
    store.append(f"ap{rank}", "cd")
    assert store.get(f"ap{rank}") == b"abcd"


def test_argument_errors(store):
    with pytest.raises(ValueError, match="NUL"):
        store.set("a\0b", b"1")
    with pytest.raises(TypeError):
        store.set(3, b"1")
    with pytest.raises(TypeError):
        store.check("single-key")
    with pytest.raises(mpistore.MPIStoreError) as e:
        store.set("", b"1")
    assert e.value.name == "MPISTORE_EINVAL"
    with pytest.raises(mpistore.MPIStoreError) as e:
        store.set("k" * 2000, b"1")
    assert e.value.name == "MPISTORE_EKEYTOOLONG" and "max_key_len" in str(e.value)


def test_queue_basic_and_empty(store, rank):
    q = f"q{rank}"
    assert store.queue_len(q) == 0
    for i in range(4):
        store.queue_push(q, f"item{i}")
    store.queue_push(q, b"")
    assert store.queue_len(q) == 5
    assert store.num_keys() >= 0 and q not in store.list_keys()
    assert store.check([q])  # a non-empty queue is present
    assert [store.queue_pop(q, block=(i % 2 == 0)) for i in range(5)] == \
        [b"item0", b"item1", b"item2", b"item3", b""]
    with pytest.raises(mpistore.QueueEmpty, match="empty"):
        store.queue_pop(q, block=False)
    store.set_timeout(0.2)
    with pytest.raises(mpistore.MPIStoreTimeout, match="timeout"):
        store.queue_pop(q)
    assert not store.check([q])
    store.set_timeout(60)


def test_queue_all_ranks_exactly_once(store, rank, size):
    n = 200
    got = []
    COMM.Barrier()
    for i in range(n):
        store.queue_push("work", f"{rank}:{i}")
        if i % 4 == 3:
            while len(got) < i + 1:
                try:
                    got.append(store.queue_pop("work", block=False).decode())
                except mpistore.QueueEmpty:
                    pass
    while len(got) < n:
        got.append(store.queue_pop("work").decode())
    everything = COMM.allgather(got)
    seen = {}
    for consumer, items in enumerate(everything):
        last = {}
        for it in items:
            p, i = map(int, it.split(":"))
            assert it not in seen, f"{it} popped by {seen.get(it)} and {consumer}"
            seen[it] = consumer
            assert i > last.get(p, -1), f"consumer {consumer}: {p}:{i} after {p}:{last[p]}"
            last[p] = i
    assert len(seen) == n * size
    COMM.Barrier()
    assert store.queue_len("work") == 0


def test_list_keys_and_prefix(store, rank, size):
    store.set(f"lk/{rank}", b"1")
    store.queue_push("lk-queue", b"x")
    COMM.Barrier()
    assert sorted(store.list_keys()) == sorted(f"lk/{r}" for r in range(size))
    with store.prefix("lk") as view:
        assert sorted(view.list_keys()) == sorted(str(r) for r in range(size))
        COMM.Barrier()  # everyone listed before anyone adds keys
        assert view.get(str(rank)) == b"1"
        view.set(f"v{rank}", b"2")
        assert store.get(f"lk/v{rank}") == b"2"
        with view.prefix("deeper") as v2:
            v2.set("x", b"3")
            assert store.get("lk/deeper/x") == b"3"
    COMM.Barrier()


def test_clone_in_another_thread(store, rank):
    c = store.clone()
    c.set_timeout(30)
    result = {}

    def worker():
        result["v"] = c.get(f"thr{rank}")

    t = threading.Thread(target=worker)
    t.start()
    time.sleep(0.05)
    store.set(f"thr{rank}", b"from main")
    t.join(30)
    assert result["v"] == b"from main"
    assert store.timeout == 60 and c.timeout == 30
    with pytest.raises(mpistore.MPIStoreError) as e:  # base with an open clone
        store.close()
    assert e.value.name == "MPISTORE_ESTATE"
    c.close()
    c.close()  # idempotent
    with pytest.raises(ValueError):
        c.get("x")


def test_context_manager_and_stats():
    with mpistore.Store(COMM, keys_per_rank=64, bytes_per_rank=1 << 16) as s:
        s.stats(reset=True)
        s.set(f"s{COMM.Get_rank()}", b"1")
        st = s.stats()
        # a new key: 2 round trips where its home slot was never used
        # (docs/design.md, "Inserts in two round trips"), more otherwise
        assert st["round_trips"] >= 2 and st["rma_calls"] > 0
        assert 0 <= s.key_rank("abc") < COMM.Get_size()
        COMM.Barrier()
    with pytest.raises(ValueError):
        s.get("x")


def test_package_uses_the_library_beside_it():
    """The extension is linked against the libmpistore shipped next to it
    (RUNPATH $ORIGIN): in an installed wheel and in the package a build
    stages, never a library from elsewhere."""
    import os
    here = os.path.dirname(os.path.realpath(mpistore.__file__))
    assert os.path.dirname(os.path.realpath(mpistore.library_path)) == here
    assert os.path.basename(mpistore.library_path).startswith("libmpistore.so")
    assert mpistore.call_layer == "ext"
    assert mpistore.__version__ == mpistore.version()


def test_keywords_and_timedelta_arguments(store, rank):
    """The compiled methods take their arguments by name too, and timeouts
    as seconds or timedelta, like the Python methods they replace."""
    store.set(key=f"kw{rank}", value=b"1")
    assert store.get(key=f"kw{rank}") == b"1"
    assert store.add(f"kwn{rank}", amount=2) == 2
    assert store.compare_set(f"kw{rank}", expected=b"1", desired=b"2") == b"2"
    store.wait(keys=[f"kw{rank}"], timeout=datetime.timedelta(seconds=5))
    store.queue_push(f"kwq{rank}", value=bytearray(b"x"))
    assert store.queue_pop(f"kwq{rank}", block=False) == b"x"
    assert store.stats(reset=False)["rma_calls"] > 0
    store.set_timeout(datetime.timedelta(seconds=1, microseconds=500000))
    assert store.timeout == 1.5
    store.set_timeout(60)
    with pytest.raises(TypeError, match="unexpected keyword"):
        store.get(k=f"kw{rank}")
    with pytest.raises(TypeError, match="missing required argument 'value'"):
        store.set(f"kw{rank}")
    with pytest.raises(TypeError):
        mpistore.Store(COMM, 60)  # options are keyword-only
