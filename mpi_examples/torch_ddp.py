"""DistributedDataParallel over gloo, started with init_method="mpi://":
no MASTER_ADDR, MASTER_PORT, RANK or WORLD_SIZE.

    mpirun -n 2 python mpi_examples/torch_ddp.py

Every rank trains a tiny linear model on its own shard of a fixed synthetic
regression problem for a few steps.  Rank 0 prints the loss before and after;
the program fails (exit 1) unless the loss fell on every rank and the
parameters are bit-identical on every rank at the end (compared with
mpi4py, outside torch).
"""
import os
import sys

import torch
import torch.distributed as dist
from mpi4py import MPI

try:
    import mpistore.torch  # noqa: F401  (registers mpi://)
except ImportError:  # run from a source tree: the package is in ../python
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import mpistore.torch  # noqa: F401

STEPS = int(os.environ.get("DDP_STEPS", "30"))


def main():
    dist.init_process_group("gloo", init_method="mpi://")
    rank, size = dist.get_rank(), dist.get_world_size()
    comm = MPI.COMM_WORLD
    assert (rank, size) == (comm.Get_rank(), comm.Get_size())

    g = torch.Generator().manual_seed(1234)
    w_true = torch.randn(8, 1, generator=g)
    x = torch.randn(64 * size, 8, generator=g)
    y = x @ w_true + 0.01 * torch.randn(64 * size, 1, generator=g)
    xs, ys = x[rank::size], y[rank::size]  # this rank's shard

    torch.manual_seed(100 + rank)  # different initial weights: DDP broadcasts rank 0's
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = torch.nn.MSELoss()

    with torch.no_grad():
        first = loss_fn(model(xs), ys).item()
    for _ in range(STEPS):
        opt.zero_grad()
        loss = loss_fn(model(xs), ys)
        loss.backward()  # gradients all-reduced by DDP over gloo
        opt.step()
    with torch.no_grad():
        last = loss_fn(model(xs), ys).item()

    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy().tobytes()
    every = comm.allgather(flat)
    same = all(f == every[0] for f in every)
    fell = comm.allgather(last < first / 10)
    if rank == 0:
        print(f"DDP over gloo via mpi://, {size} ranks, {STEPS} steps: "
              f"loss {first:.4f} -> {last:.4f} (rank 0's shard)")
        print(f"loss fell 10x on every rank: {all(fell)}; "
              f"parameters identical on every rank: {same}")
    dist.destroy_process_group()
    if not (same and all(fell)):
        sys.exit(1)


if __name__ == "__main__":
    main()
