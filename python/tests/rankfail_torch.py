"""A rank dies under MPIStore (MPI ULFM): the survivors' get of a key homed
there raises mpistore.ProcessFailedError, a torch.distributed.DistStoreError
with .ranks; MPIStore.shrink() gives the survivors a new store with the key
that survived.  Not a pytest module (a rank kills itself):

    mpiexec --with-ft ulfm -n 3 python python/tests/rankfail_torch.py [replicas]

With replicas 1 (MPIStore(..., replicas=1)) the key homed on the dead rank
survives the shrink too, with its value.

(Open MPI 5; ctest python_<cell>_rankfail).  Prints "all passed" on the
lowest survivor; the survivors end with os._exit (Open MPI 5.0.11's
MPI_Finalize hangs now and then after a death: docs/testing.md)."""
import datetime
import os
import signal
import sys

from mpi4py import MPI

import mpistore
import torch.distributed as dist
from mpistore.torch import MPIStore

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
victim = size - 1
replicas = int(sys.argv[1]) if len(sys.argv) > 1 else 0
store = MPIStore(comm, timeout=datetime.timedelta(seconds=60), replicas=replicas)
key = next(f"k{i}" for i in range(100000) if store._s.key_rank(f"k{i}") == victim)
live = next(f"l{i}" for i in range(100000) if store._s.key_rank(f"l{i}") == 0)
# a key homed on the victim, its value written by the victim: with replicas
# both have a copy on another rank
kept = next(f"h{i}" for i in range(100000) if store._s.key_rank(f"h{i}") == victim)
if rank == 0:
    store.set(live, b"v")
if rank == victim:
    store.set(kept, b"kept")
comm.Barrier()
if rank == victim:
    os.kill(os.getpid(), signal.SIGKILL)

failures = []
try:
    store.get(key)
    failures.append("get of a key homed on the dead rank returned")
except mpistore.ProcessFailedError as e:
    if not isinstance(e, dist.DistStoreError):
        failures.append(f"{type(e).__name__} is not a DistStoreError")
    if e.ranks != [victim] or f"rank {victim} died" not in str(e):
        failures.append(f"ranks {e.ranks}, message {e}")
if store.get(live) != b"v":
    failures.append("get of a key on a live rank")
# shrink: a new MPIStore over the survivors, with the key on a live rank
new, nrank, nsize = store.shrink()
if (nrank, nsize) != (rank, size - 1) or not isinstance(new, MPIStore):
    failures.append(f"shrink gave rank {nrank} of {nsize}")
if new.get(live) != b"v" or new.lost_keys != 0:
    failures.append(f"after the shrink: {new.get(live)!r}, {new.lost_keys} keys lost")
if new.check([kept]) != bool(replicas) or (replicas and new.get(kept) != b"kept"):
    failures.append(f"replicas {replicas}: the dead rank's key is "
                    f"{'present' if new.check([kept]) else 'absent'}")
new.barrier("after-shrink", nsize)  # the survivors' store works, as a torch Store
try:  # shrink() closed the old store
    store.get(live)
    failures.append("the shrunk store still answers")
except ValueError as e:
    if "closed" not in str(e):
        failures.append(f"the shrunk store: {e}")
for f in failures:
    print(f"rankfail_torch: rank {rank} FAILED: {f}", flush=True)

# the verdict on the lowest survivor (point-to-point among the living)
comm.Set_errhandler(MPI.ERRORS_RETURN)
if rank != 0:
    comm.send(len(failures), dest=0, tag=7)
    try:
        comm.recv(source=0, tag=8)
    except MPI.Exception:
        pass  # rank 0 has exited already
else:
    total = len(failures) + sum(comm.recv(source=r, tag=7) for r in range(1, size) if r != victim)
    print(f"rankfail_torch: victim {victim}, replicas {replicas}, {total} failed checks: "
          f"{'all passed' if total == 0 else 'FAILED'}", flush=True)
    for r in range(1, size):
        if r != victim:
            comm.send(total, dest=r, tag=8)
sys.stdout.flush()
os._exit(1 if failures else 0)
