"""A gloo process group started from mpistore under mpiexec: no MASTER_ADDR,
no port, no rank-0 server.

    mpiexec -n 4 python3 mpi_examples/torch_gloo.py

It needs the mpistore package: installed (scripts/venv.sh makes .venv, then
`mpiexec -n 4 .venv/bin/python mpi_examples/torch_gloo.py`), or staged by a
CMake build with the tests for Debian's python3 (scripts/test.sh installs
python3-torch, python3-mpi4py and python3-dev):
`PYTHONPATH=build-test/python-package mpiexec -n 4 python3 mpi_examples/torch_gloo.py`.
Every rank opens one MPIStore over MPI.COMM_WORLD, starts gloo on it, does an
all_reduce, then runs PyTorch's own elastic barrier and synchronize on the
same store.  Rank 0 prints the results and the time of the elastic barrier
on MPIStore beside the same barrier on a torch TCPStore in the same run.
"""
import datetime
import os
import socket
import time

import torch
import torch.distributed as dist
from mpi4py import MPI
from torch.distributed.elastic.utils import store as elastic

import mpistore
from mpistore.torch import MPIStore


def time_barriers(store, rank, size, prefix, n):
    """Median and p90 (us) of n elastic barriers, each with a fresh prefix."""
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        elastic.barrier(store, world_size=size, key_prefix=f"{prefix}/{i}", barrier_timeout=60,
                        rank=rank)
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.9)]


def main():
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    store = MPIStore(comm, timeout=datetime.timedelta(seconds=60))

    t0 = time.perf_counter()
    dist.init_process_group("gloo", store=store, rank=rank, world_size=size)
    t_init = time.perf_counter() - t0
    x = torch.tensor([float(rank + 1)])
    dist.all_reduce(x)  # sum of 1..size
    expect = size * (size + 1) / 2
    assert x.item() == expect, (x.item(), expect)

    # keyword arguments: PyTorch 1.13 and 2.x order the parameters differently
    elastic.barrier(store, world_size=size, key_prefix="demo/barrier", barrier_timeout=60,
                    rank=rank)
    record = f"rank {rank} on {socket.gethostname()} pid {os.getpid()}".encode()
    # the timeout positionally: 1.13 calls it barrier_timeout, 2.x timeout
    records = elastic.synchronize(store, record, rank, size, "demo/sync/", 60)

    # MPIStore vs TCPStore: the same PyTorch elastic barrier, same run
    n = int(os.environ.get("BARRIER_REPS", "200"))
    port = comm.bcast(_free_port() if rank == 0 else None, root=0)
    tcp = dist.TCPStore("127.0.0.1", port, size, rank == 0, timeout=datetime.timedelta(seconds=60))
    comm.Barrier()
    time_barriers(store, rank, size, "warm/mpi", 20)
    time_barriers(tcp, rank, size, "warm/tcp", 20)
    comm.Barrier()
    mpi_med, mpi_p90 = time_barriers(store, rank, size, "bench/mpi", n)
    comm.Barrier()
    tcp_med, tcp_p90 = time_barriers(tcp, rank, size, "bench/tcp", n)
    comm.Barrier()
    t1 = time.perf_counter()
    for _ in range(n):
        comm.Barrier()
    mpi_barrier_us = (time.perf_counter() - t1) / n * 1e6

    if rank == 0:
        print(f"mpistore {mpistore.version()} + torch {torch.__version__}: gloo process group "
              f"over MPIStore, {size} ranks, no MASTER_ADDR/MASTER_PORT")
        print(f"  init_process_group(gloo, store=MPIStore)  {t_init * 1e3:8.1f} ms")
        print(f"  all_reduce(rank+1)                         = {x.item():g} (expected {expect:g})")
        print("  elastic barrier                            ok")
        print("  elastic synchronize                        "
              + ", ".join(r.decode().split(" on ")[0] for r in records))
        print(f"  store keys (after the timing runs)         {store.num_keys()}")
        print(f"elastic barrier ({n} reps, median / p90 us, {size} ranks):")
        print(f"  MPIStore  {mpi_med:9.1f} / {mpi_p90:9.1f}")
        print(f"  TCPStore  {tcp_med:9.1f} / {tcp_p90:9.1f}")
        print(f"  MPI_Barrier (mpi4py) {mpi_barrier_us:7.1f} mean")
    comm.Barrier()
    dist.destroy_process_group()
    del tcp
    store.close()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
