"""PyTorch's own store users over MPIStore and over TCPStore, in one run.

    mpirun -n N .venv/bin/python bench/torch_bench.py [-n iters] [-c out.csv]

Times, per rank and with a fresh key prefix per iteration, unchanged torch code:
  elastic_barrier      torch.distributed.elastic.utils.store.barrier
  elastic_synchronize  ...store.synchronize of 64 bytes per rank
  init_process_group   init_process_group("gloo", store=PrefixStore(p, store)), a
                       dist.barrier() and destroy_process_group (a gloo group over
                       the store)
over an MPIStore on MPI.COMM_WORLD and over a TCPStore whose server is rank 0
(127.0.0.1, the port broadcast with mpi4py).  The two stores alternate in
blocks (MPIStore block, TCPStore block, ...) so that a change in the machine's
load hits both.  Every rank's samples are gathered on rank 0: median and p99
over all of them, and the ratio TCPStore / MPIStore of the medians.
Rows follow bench/results' CSV schema (impl,op,bytes,placement,nprocs,iters,
median_us,p99_us,rma_calls,round_trips,note).
"""
import argparse
import datetime
import socket
import statistics
import time

import torch
import torch.distributed as dist
from mpi4py import MPI
from torch.distributed.elastic.utils import store as elastic

import mpistore
from mpistore.torch import MPIStore
from torch_floor import DictStore  # bench/, this script's directory

TIMEOUT = 120


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", "--iters", type=int, default=1000, help="barrier/synchronize samples")
    ap.add_argument("--pg-iters", type=int, default=20, help="init_process_group samples")
    ap.add_argument("--blocks", type=int, default=5, help="alternating blocks per store")
    ap.add_argument("-c", "--csv")
    a = ap.parse_args()
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    td = datetime.timedelta(seconds=TIMEOUT)

    mpi = MPIStore(comm, timeout=td, keys_per_rank=1 << 16, bytes_per_rank=1 << 24)
    port = comm.bcast(free_port() if rank == 0 else None, root=0)
    tcp = dist.TCPStore("127.0.0.1", port, size, rank == 0, timeout=td)
    stores = {"mpistore": mpi, "tcpstore": tcp}
    data = bytes([65 + rank % 26]) * 64

    def barrier(s, p):
        elastic.barrier(s, world_size=size, key_prefix=p, barrier_timeout=TIMEOUT, rank=rank)

    def synchronize(s, p):
        out = elastic.synchronize(s, data, rank, size, p, TIMEOUT)
        assert len(out) == size and out[rank] == data

    def init_pg(s, p):
        dist.init_process_group("gloo", store=dist.PrefixStore(p, s), rank=rank,
                                world_size=size)
        # a first collective before destroying: gloo's connectFullMesh fails
        # now and then ("Connection closed by peer") at 4 ranks on 2 cores
        # when a rank destroys its group while a peer still reads the handshake
        dist.barrier()
        dist.destroy_process_group()

    def store_barrier(s, p):
        s.barrier(p, size)

    ops = [("elastic_barrier", barrier, a.iters, 0), ("elastic_synchronize", synchronize,
                                                       a.iters, 64),
           ("init_process_group", init_pg, a.pg_iters, 0)]
    if hasattr(dist.Store, "barrier"):  # torch 2.x Store.barrier: ours is native
        ops.insert(1, ("store_barrier", store_barrier, a.iters, 0))
    rows = []
    for op, fn, iters, nbytes in ops:
        samples = {k: [] for k in stores}
        per_block = max(iters // a.blocks, 1)
        for impl, s in stores.items():  # warm-up
            for i in range(max(per_block // 10, 2)):
                fn(s, f"w/{op}/{impl}/{i}")
        for b in range(a.blocks):
            for impl, s in stores.items():
                comm.Barrier()
                for i in range(per_block):
                    p = f"{op}/{impl}/{b}/{i}"
                    t0 = time.perf_counter()
                    fn(s, p)
                    samples[impl].append((time.perf_counter() - t0) * 1e6)
        gathered = {k: comm.gather(v, root=0) for k, v in samples.items()}  # every rank
        every = {k: sorted(x for part in g for x in part)
                 for k, g in gathered.items() if g is not None}
        if rank == 0:
            med = {}
            for impl, xs in every.items():
                med[impl] = statistics.median(xs)
                p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
                rows.append((impl, op, nbytes, size, len(xs) // size, med[impl], p99))
            print(f"{op:20s} np={size}  MPIStore {med['mpistore']:9.1f} us  "
                  f"TCPStore {med['tcpstore']:9.1f} us  ratio {med['tcpstore'] / med['mpistore']:6.1f}x"
                  " (medians)", flush=True)
    if size == 1:
        # torch's own Python cost: the elastic barrier over a store that does
        # nothing (a dict); no store below it can be faster than this
        floor = DictStore()
        xs = []
        for i in range(a.iters):
            t0 = time.perf_counter()
            elastic.barrier(floor, world_size=1, key_prefix=f"f/{i}", barrier_timeout=TIMEOUT,
                            rank=0)
            xs.append((time.perf_counter() - t0) * 1e6)
        xs.sort()
        med = statistics.median(xs)
        rows.append(("floor", "elastic_barrier", 0, 1, len(xs), med,
                     xs[min(len(xs) - 1, int(len(xs) * 0.99))]))
        print(f"{'elastic_barrier':20s} np=1  over a Python dict store (torch's floor) {med:.1f} us",
              flush=True)
    if rank == 0 and a.csv:
        note = (f"torch {torch.__version__}; mpistore {mpistore.version()} "
                f"({mpistore.call_layer})")
        with open(a.csv, "a") as f:
            for impl, op, nbytes, np_, iters, med, p99 in rows:
                f.write(f"torch-{impl},{op},{nbytes or ''},-,{np_},{iters},{med:.3f},{p99:.3f},,,"
                        f"{note}\n")
    comm.Barrier()
    del tcp  # rank 0's server goes last: the others are past the barrier
    comm.Barrier()
    mpi.close()


if __name__ == "__main__":
    main()
