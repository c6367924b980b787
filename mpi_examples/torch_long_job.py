"""The long job through PyTorch's own elastic barrier on an MPIStore.

    mpirun -n 2 .venv/bin/python mpi_examples/torch_long_job.py [steps] [report_every]

Every step calls ``torch.distributed.elastic.utils.store.barrier`` (the
unchanged PyTorch helper) with a fresh key prefix, as a training job that
never deletes keys does, and every 10th step each rank sets a 256-byte status
value under a fresh key.  The store is an ``MPIStore`` with default options,
so it has to grow (docs/design.md, "Growth").  Prints the resident memory of
every rank after the store was opened and at the end, the keys in the store
and the time per step; any failure raises (and mpirun ends the job).
"""
import sys
import time

from mpi4py import MPI

import torch.distributed.elastic.utils.store as elastic
from mpistore.torch import MPIStore


def vmrss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    every = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    store = MPIStore()  # default options: the store grows as keys arrive
    rss0 = vmrss_kib()
    status = b"s" * 256
    comm.Barrier()
    t0 = tlast = time.monotonic()
    for i in range(steps):
        elastic.barrier(store, world_size=size, key_prefix=f"step{i}", barrier_timeout=120,
                        rank=rank)
        if i % 10 == 0:
            store.set(f"status/{i}/{rank}", status)
        if rank == 0 and (i + 1) % every == 0:
            now = time.monotonic()
            print(f"torch_long_job: {i + 1} steps, {(now - tlast) / every * 1e6:.1f} us/step "
                  f"over the last {every}, VmRSS {vmrss_kib()} KiB", flush=True)
            tlast = now
    t1 = time.monotonic()
    keys = store.num_keys()
    assert store.get(f"status/0/{(rank + 1) % size}") == status  # nothing lost
    rss1 = vmrss_kib()
    for r in range(size):
        if r == rank:
            print(f"torch_long_job: rank {rank}: {steps} steps of torch's elastic barrier at "
                  f"{size} ranks in {t1 - t0:.1f} s ({(t1 - t0) / max(steps, 1) * 1e6:.1f} "
                  f"us/step), {keys} keys, VmRSS {rss0} KiB after open, {rss1} KiB at the end",
                  flush=True)
        comm.Barrier()
    store.close()


if __name__ == "__main__":
    main()
