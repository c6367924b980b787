"""Where a rank's time goes in torch's helpers over MPIStore.

    mpirun -n N .venv/bin/python bench/torch_cpu.py [-n iters] [--op barrier|synchronize|store_barrier]

Runs the operation (fresh key prefix each time) over an MPIStore and prints,
per rank and per call of the operation: the median and the period (wall
time / calls); the wall time spent inside the store's calls that write
(add, set: the arrival), inside those that wait or read (wait, get,
multi_get, barrier), and outside the store (torch's own code); the CPU time
(getrusage, the process's threads) and context switches; the RMA calls and
round trips (mpistore_stats).  Waiting ranks yield between looks, so they
stay runnable and the CPU column is about their share of the cores, not
their work (sched_yield hand-offs count as involuntary switches).  The
timers around the store's calls add about 0.2 us per call.  Compare with
bench/torch_floor.py, torch's code over no store.  Numbers only, not a test.
"""
import argparse
import datetime
import resource
import statistics
import time

from mpi4py import MPI
from torch.distributed.elastic.utils import store as elastic

from mpistore.torch import MPIStore


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", "--iters", type=int, default=3000)
    ap.add_argument("--op", default="barrier", choices=("barrier", "synchronize",
                                                       "store_barrier"))
    ap.add_argument("--keys-per-rank", type=int, default=1 << 16)
    a = ap.parse_args()
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    s = MPIStore(comm, timeout=datetime.timedelta(seconds=120),
                 keys_per_rank=max(a.keys_per_rank, 4 * a.iters), bytes_per_rank=1 << 24)
    data = bytes([65 + rank % 26]) * 64
    spent = {"write": 0.0, "wait": 0.0}
    clock = time.perf_counter

    def timed(name, part):
        f = getattr(s, name)

        def g(*args, **kw):
            t = clock()
            try:
                return f(*args, **kw)
            finally:
                spent[part] += clock() - t
        setattr(s, name, g)

    for name in ("add", "set", "compare_set", "multi_set"):
        timed(name, "write")
    for name in ("wait", "get", "multi_get", "check", "barrier"):
        timed(name, "wait")

    def one(p):
        if a.op == "barrier":
            elastic.barrier(s, world_size=size, key_prefix=p, barrier_timeout=120, rank=rank)
        elif a.op == "synchronize":
            out = elastic.synchronize(s, data, rank, size, p, 120)
            assert out[rank] == data
        else:
            s.barrier(p, size)

    for i in range(50):
        one(f"w/{i}")
    comm.Barrier()
    s.stats(True)
    spent.update(write=0.0, wait=0.0)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    xs = []
    t0 = time.perf_counter()
    for i in range(a.iters):
        t = time.perf_counter()
        one(f"p/{i}")
        xs.append(time.perf_counter() - t)
    period = (time.perf_counter() - t0) / a.iters
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    st = s.stats()
    n = a.iters
    mine = (statistics.median(xs) * 1e6, period * 1e6, spent["write"] / n * 1e6,
            spent["wait"] / n * 1e6, (sum(xs) - spent["write"] - spent["wait"]) / n * 1e6,
            (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / n * 1e6,
            (r1.ru_nvcsw - r0.ru_nvcsw) / n, (r1.ru_nivcsw - r0.ru_nivcsw) / n,
            st["rma_calls"] / n, st["round_trips"] / n)
    every = comm.gather(mine, root=0)
    if rank == 0:
        print(f"{a.op}, {size} ranks, {n} calls per rank")
        print("| rank | median us | period us | in add/set us | in wait/get us | outside the "
              "store us | CPU us | voluntary / involuntary switches | RMA calls | round trips |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r, (med, per, wr, wt, out, cpu, vol, invol, calls, rts) in enumerate(every):
            print(f"| {r} | {med:.1f} | {per:.1f} | {wr:.1f} | {wt:.1f} | {out:.1f} | {cpu:.1f} | "
                  f"{vol:.2f} / {invol:.2f} | {calls:.1f} | {rts:.1f} |")
    comm.Barrier()
    s.close()


if __name__ == "__main__":
    main()
