"""A rank dies and DDP training goes on (MPI ULFM, Open MPI 5):

    mpiexec --with-ft ulfm -n 4 python mpi_examples/torch_recover.py [victim]

Four ranks train a small model with DistributedDataParallel over gloo, whose
process group is set up over an MPIStore.  After every step each rank writes
the step number and a checksum of the parameters to the store (its own key,
state/<rank>).  At step 50 the victim (default: rank 2) kills itself with
SIGKILL.  The survivors see the failure (gloo's error in the all-reduce, or
mpistore.ProcessFailedError from the store), shrink the store to the
survivors (MPIStore.shrink), tear the process group down and build a new one
of 3 ranks over the new store, restore the step and checksum from the store
and check them against their own parameters, and finish 100 steps.  The
program fails (exit 1) unless every survivor ends with bit-identical
parameters.

With replicas = 0 (the default, used here) a key is lost when its home rank
or the rank that wrote it dies: that is why every rank writes its own copy
of the state, and the survivors restore from the copies that survived.
MPIStore(..., replicas=1) keeps a second copy of every key instead (README,
"When a rank dies").
The survivors end with os._exit: Open MPI 5.0.11's MPI_Finalize hangs now
and then after a death (docs/testing.md).
"""
import datetime
import os
import signal
import sys
import time
import zlib

import torch
import torch.distributed as dist
from mpi4py import MPI

try:
    import mpistore
    from mpistore.torch import MPIStore
except ImportError:  # run from a source tree: the package is in ../python
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import mpistore
    from mpistore.torch import MPIStore

STEPS, DIE_AT = 100, 50


def checksum(model: torch.nn.Module) -> int:
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return zlib.crc32(flat.numpy().tobytes())


def batch(step: int, rank: int):
    g = torch.Generator().manual_seed(1000 * step + rank)
    x = torch.randn(16, 8, generator=g)
    return x, x.sum(dim=1, keepdim=True) + 0.01 * torch.randn(16, 1, generator=g)


def group(store: MPIStore, gen: int, rank: int, size: int) -> None:
    # A prefix per generation: the new group's keys never meet the old one's.
    # The timeout bounds how long a survivor waits in gloo for a peer that
    # died: a survivor whose all-reduce waits on a live peer (which failed
    # and left) gets no socket error, only this timeout.
    dist.init_process_group("gloo", store=dist.PrefixStore(f"pg{gen}/", store), rank=rank,
                            world_size=size, timeout=datetime.timedelta(seconds=5))


def main() -> int:
    comm = MPI.COMM_WORLD
    victim = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    wrank, size = comm.Get_rank(), comm.Get_size()
    store = MPIStore(comm, timeout=datetime.timedelta(seconds=60))
    rank, gen = wrank, 0
    group(store, gen, rank, size)
    torch.manual_seed(7)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    model = torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    step, failed_at, seen = 0, None, 0.0
    comm.Set_errhandler(MPI.ERRORS_RETURN)
    killed = comm.irecv(source=victim, tag=5) if wrank != victim else None
    while step < STEPS:
        if step == DIE_AT and wrank == victim and gen == 0:
            for r in range(size):  # the time of death (eager: buffered before it)
                if r != wrank:
                    comm.send(time.time(), dest=r, tag=5)
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            x, y = batch(step, rank)
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()  # gloo all-reduce
            opt.step()
            step += 1
            store.set(f"state/{rank}", f"{step} {checksum(net)}")
        except (RuntimeError, mpistore.ProcessFailedError) as e:
            if gen > 0:
                raise
            failed_at = time.monotonic()
            seen = time.time() - killed.wait()  # one clock: the ranks share a node
            if rank == 0 or (victim == 0 and rank == 1):
                print(f"torch_recover: step {step + 1} failed: {type(e).__name__}: "
                      f"{str(e).splitlines()[0][:120]}", flush=True)
            model = None  # the DDP wrapper holds the group
            dist.destroy_process_group()
            t0 = time.monotonic()
            new, rank, size = store.shrink()  # collective over the survivors
            took = time.monotonic() - t0
            store, gen = new, gen + 1
            group(store, gen, rank, size)
            # the state, from every copy that survived
            copies = [store.get(k).split() for k in (f"state/{r}" for r in range(size + 1))
                      if store.check([k])]
            steps = {int(c[0]) for c in copies}
            sums = {int(c[1]) for c in copies if int(c[0]) == step}
            ok = copies and steps == {step} and sums == {checksum(net)}
            if rank == 0:
                print(f"torch_recover: shrunk to {size} ranks in {took:.3f} s ("
                      f"{store.lost_keys} keys counted lost); {len(copies)} state copies "
                      f"survived: step {sorted(steps)}, checksum matches: {bool(ok)}",
                      flush=True)
            if not ok:
                print(f"torch_recover: rank {rank} FAILED: state {copies} vs step {step}, "
                      f"checksum {checksum(net)}", flush=True)
                return 1
            model = torch.nn.parallel.DistributedDataParallel(net)
            opt = torch.optim.SGD(net.parameters(), lr=0.05)
    # every survivor's parameters, compared through the store
    mine = checksum(net)
    store.set(f"final/{rank}", f"{mine} {seen:.3f}")
    store.wait([f"final/{r}" for r in range(size)])
    finals = [store.get(f"final/{r}").decode().split() for r in range(size)]
    same = all(int(f[0]) == mine for f in finals)
    if rank == 0:
        print(f"torch_recover: the survivors saw the failure {', '.join(f[1] for f in finals)} s "
              f"after the kill", flush=True)
        print(f"torch_recover: victim {victim}, {size} survivors finished {STEPS} steps; "
              f"parameters identical on every survivor: {same}", flush=True)
    store.barrier("done", size)
    dist.destroy_process_group()
    sys.stdout.flush()
    return 0 if same and failed_at is not None and size == comm.Get_size() - 1 else 1


if __name__ == "__main__":
    os._exit(main())
