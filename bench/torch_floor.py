"""The least time torch's own store users can take when N ranks share the cores.

    python bench/torch_floor.py N [-n rounds] [-c out.csv]

Issue #22 asks for MPIStore at least 10x faster than TCPStore with 4 and 8
ranks on 2 cores.  Whatever the store, every rank runs torch's Python for
each barrier, and ranks that share a core run one after the other.  This
program measures that part alone: N processes (forked, no MPI), spread over
the machine's cores in rings (N / cores per core, each pinned), run the
operation over a store that does no work at all (a Python dict), each when
its turn comes, as if every rank took part in the same barrier.  A process
waits for its turn blocked in read() on a pipe, as TCPStore's clients wait
in recv, so the scheduler only ever runs the process whose turn it is: the
best scheduling any store can hope for.  The time of a round (every process
once) is then the floor of one barrier: no store below torch can make it
shorter on this machine.  Operations (the rows of bench/torch_bench.py):

  elastic_barrier      torch.distributed.elastic.utils.store.barrier
  store_barrier        one store call per rank (Store.barrier is one call)
  elastic_synchronize  ...store.synchronize of 64 bytes

The process count per core matters, not the ranks' own data: each process
runs the 1-rank form of the operation.  Rows follow bench/results' CSV
schema with impl "torch-floor" and the mean round in the median column.
"""
import argparse
import os
import sys
import time

import torch.distributed as dist
from torch.distributed.elastic.utils import store as elastic


class _DictStore(dist.Store):
    """A one-process store that does nothing but a dict."""

    def __init__(self):
        super().__init__()
        self.d = {}

    def add(self, key, value):
        self.d[key] = self.d.get(key, 0) + value
        return self.d[key]

    def set(self, key, value):
        self.d[key] = value

    def get(self, key):
        return self.d[key]

    def check(self, keys):
        return all(k in self.d for k in keys)

    def wait(self, keys, timeout=None):
        pass

    def multi_get(self, keys):
        return [self.d[k] for k in keys]

    def multi_set(self, keys, values):
        for k, v in zip(keys, values):
            self.d[k] = v


OPS = ("elastic_barrier", "store_barrier", "elastic_synchronize")


def one(op, store, prefix, data):
    if op == "elastic_barrier":
        elastic.barrier(store, world_size=1, key_prefix=prefix, barrier_timeout=60, rank=0)
    elif op == "store_barrier":
        store.add(prefix, 1)
    else:
        out = elastic.synchronize(store, data, 0, 1, prefix, 60)
        assert out == [data]


def run(op, n, rounds, cores):
    """Fork n processes in per-core rings; returns the mean round in us."""
    per = -(-n // len(cores))
    pipes = [os.pipe() for _ in range(n)]
    res_r, res_w = os.pipe()
    pids = []
    for me in range(n):
        pid = os.fork()
        if pid:
            pids.append(pid)
            continue
        try:
            ring, pos = me // per, me % per
            os.sched_setaffinity(0, {cores[ring]})
            size = min(per, n - ring * per)
            nxt = ring * per + (pos + 1) % size
            store, data = _DictStore(), b"x" * 64
            for i in range(20):  # warm-up, alone
                one(op, store, f"w{i}", data)
            os.write(res_w, b"r")  # ready
            if pos == 0:
                os.read(pipes[me][0], 1)  # the start signal
            t0 = time.perf_counter()
            for r in range(rounds):
                if r or pos:
                    os.read(pipes[me][0], 1)  # our turn
                one(op, store, f"p{r}", data)
                os.write(pipes[nxt][1], b"x")
            if pos == 0:
                os.read(pipes[me][0], 1)  # the ring's last turn has ended
                t = time.perf_counter() - t0
                os.write(res_w, f"{t / rounds * 1e6:.3f}\n".encode())
            os._exit(0)
        except BaseException:
            os._exit(1)
    for _ in range(n):
        os.read(res_r, 1)
    nrings = -(-n // per)
    for ring in range(nrings):
        os.write(pipes[ring * per][1], b"s")
    got = b""
    while got.count(b"\n") < nrings:
        got += os.read(res_r, 64)
    bad = sum(1 for pid in pids if os.waitpid(pid, 0)[1] != 0)
    if bad:
        sys.exit(f"torch_floor: {bad} process(es) failed")
    return max(float(x) for x in got.split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, help="processes (ranks)")
    ap.add_argument("-n", "--rounds", type=int, default=5000)
    ap.add_argument("-c", "--csv")
    a = ap.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    for op in OPS:
        us = run(op, a.n, a.rounds, cores)
        print(f"{op:20s} np={a.n}  floor {us:9.1f} us per round ({len(cores)} cores, "
              f"no store)", flush=True)
        if a.csv:
            with open(a.csv, "a") as f:
                f.write(f"torch-floor,{op},{64 if 'sync' in op else ''},-,{a.n},{a.rounds},"
                        f"{us:.3f},,,,mean round of {a.n} processes on {len(cores)} cores\n")


if __name__ == "__main__":
    main()
