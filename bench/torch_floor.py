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
import select
import signal
import statistics
import sys
import time
import traceback

import torch.distributed as dist
from torch.distributed.elastic.utils import store as elastic


class DictStore(dist.Store):
    """A one-process store that does nothing but a dict: torch's Python floor
    (also bench/torch_bench.py's)."""

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
        assert all(k in self.d for k in keys)

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
    elif op == "elastic_synchronize":
        out = elastic.synchronize(store, data, 0, 1, prefix, 60)
        assert out == [data]
    # "noop": nothing, the ring's own hand-offs alone


def _child(me, per, n, cores, pipes, res_w, op, rounds):
    ring, pos = me // per, me % per
    os.sched_setaffinity(0, {cores[ring]})
    size = min(per, n - ring * per)
    nxt = ring * per + (pos + 1) % size
    store, data = DictStore(), b"x" * 64
    for i in range(20):  # warm-up, alone
        one(op, store, f"w{i}", data)
    os.write(res_w, b"r")  # ready
    if pos == 0:
        os.read(pipes[me][0], 1)  # the start signal
    starts = []
    for r in range(rounds):
        if r or pos:
            os.read(pipes[me][0], 1)  # our turn
        if pos == 0:
            starts.append(time.perf_counter())
        one(op, store, f"p{r}", data)
        os.write(pipes[nxt][1], b"x")
    if pos == 0:
        os.read(pipes[me][0], 1)  # the ring's last turn has ended
        starts.append(time.perf_counter())
        rounds_us = sorted((b - a) * 1e6 for a, b in zip(starts, starts[1:]))
        os.write(res_w, f"{statistics.median(rounds_us):.3f}\n".encode())


def run(op, n, rounds, cores, timeout=300.0):
    """Fork n processes in per-core rings; the median round in us (the
    slowest ring's)."""
    per = -(-n // len(cores))
    pipes = [os.pipe() for _ in range(n)]
    res_r, res_w = os.pipe()
    pids = []
    for me in range(n):
        pid = os.fork()
        if pid:
            pids.append(pid)
            continue
        code = 0
        try:
            _child(me, per, n, cores, pipes, res_w, op, rounds)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(res_w)
    nrings = -(-n // per)
    got, ready, started = b"", 0, False
    alive, failed = set(pids), 0
    deadline = time.monotonic() + timeout

    def reap(block):
        nonlocal failed
        for pid in list(alive):
            done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
            if done:
                alive.discard(pid)
                failed += status != 0

    try:
        while got.count(b"\n") < nrings:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([res_r], [], [], min(left, 1.0))[0]:
                reap(False)
                if left <= 0 or failed:
                    raise RuntimeError(f"{failed} process(es) failed, or the rings took over "
                                       f"{timeout:.0f} s")
                continue
            chunk = os.read(res_r, 4096)
            if not chunk:
                raise RuntimeError("every process ended without a result")
            ready += chunk.count(b"r")
            got += chunk.replace(b"r", b"")
            if ready == n and not started:
                started = True
                for ring in range(nrings):
                    os.write(pipes[ring * per][1], b"s")
    except BaseException:
        for pid in alive:  # only the processes this program started
            os.kill(pid, signal.SIGKILL)
        reap(True)
        raise
    finally:
        os.close(res_r)
        for r, w in pipes:
            os.close(r)
            os.close(w)
    reap(True)
    if failed:
        raise RuntimeError(f"{failed} process(es) failed")
    return max(float(x) for x in got.split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, help="processes (ranks), >= 1")
    ap.add_argument("-n", "--rounds", type=int, default=5000)
    ap.add_argument("-c", "--csv")
    a = ap.parse_args()
    if a.n < 1 or a.rounds < 2:
        ap.error("need at least 1 process and 2 rounds")
    cores = sorted(os.sched_getaffinity(0))
    ring = run("noop", a.n, a.rounds, cores)
    print(f"{'hand-offs alone':20s} np={a.n}  {ring:9.1f} us per round", flush=True)
    for op in OPS:
        us = run(op, a.n, a.rounds, cores)
        code = max(us - ring, 0.0)
        print(f"{op:20s} np={a.n}  {us:9.1f} us per round, torch's code {code:9.1f} us "
              f"({len(cores)} cores, no store)", flush=True)
        if a.csv:
            with open(a.csv, "a") as f:
                f.write(f"torch-floor,{op},{64 if 'sync' in op else ''},-,{a.n},{a.rounds},"
                        f"{code:.3f},,,,median round of {a.n} processes on {len(cores)} cores "
                        f"minus the hand-offs ({us:.3f} - {ring:.3f} us)\n")


if __name__ == "__main__":
    main()
