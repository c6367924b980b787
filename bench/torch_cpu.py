"""Where a rank's time goes in torch's helpers over MPIStore: CPU, switches, RMA.

    mpirun -n N .venv/bin/python bench/torch_cpu.py [-n iters] [--op barrier|synchronize|store_barrier]

Runs the operation (fresh key prefix each time) over an MPIStore and prints,
per rank: the median time of one call, the period (wall time / calls), the
CPU time the rank used per call (getrusage), its voluntary and involuntary
context switches per call, and the RMA calls and round trips per call
(mpistore_stats).  When N ranks share C cores, the period times C / N is
what each rank may use; what it does use is the CPU column.  Compare with
bench/torch_floor.py, torch's code over no store.  Not a test: numbers only.
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
    mine = (statistics.median(xs) * 1e6, period * 1e6,
            (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / n * 1e6,
            (r1.ru_nvcsw - r0.ru_nvcsw) / n, (r1.ru_nivcsw - r0.ru_nivcsw) / n,
            st["rma_calls"] / n, st["round_trips"] / n)
    every = comm.gather(mine, root=0)
    if rank == 0:
        print(f"{a.op}, {size} ranks, {n} calls per rank")
        print("| rank | median us | period us | CPU us per call | voluntary / involuntary "
              "switches per call | RMA calls | round trips |")
        print("|---|---|---|---|---|---|---|")
        for r, (med, per, cpu, vol, invol, calls, rts) in enumerate(every):
            print(f"| {r} | {med:.1f} | {per:.1f} | {cpu:.1f} | {vol:.2f} / {invol:.2f} | "
                  f"{calls:.1f} | {rts:.1f} |")
    comm.Barrier()
    s.close()


if __name__ == "__main__":
    main()
