"""torch.distributed process groups (gloo) over MPIStore, from store= and
from init_method="mpi://": collectives, new_group, split_group, barriers."""
import datetime
import os
import subprocess
import sys

import pytest
from mpi4py import MPI

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

import mpistore.torch  # noqa: E402,F401  (registers mpi://)
from mpistore.torch import MPIStore  # noqa: E402

COMM = MPI.COMM_WORLD
RANK, SIZE = COMM.Get_rank(), COMM.Get_size()
td = datetime.timedelta


def _collectives():
    x = torch.tensor([float(RANK + 1), 1.0])
    dist.all_reduce(x)
    assert x.tolist() == [SIZE * (SIZE + 1) / 2, float(SIZE)]
    out = [torch.zeros(1) for _ in range(SIZE)]
    dist.all_gather(out, torch.tensor([float(RANK)]))
    assert [t.item() for t in out] == [float(r) for r in range(SIZE)]
    dist.barrier()
    dist.monitored_barrier(timeout=td(seconds=60))
    # a subgroup of the even ranks
    evens = list(range(0, SIZE, 2))
    g = dist.new_group(evens)
    if RANK in evens:
        y = torch.tensor([1.0])
        dist.all_reduce(y, group=g)
        assert y.item() == len(evens)
        dist.barrier(group=g)


def test_init_from_store():
    store = MPIStore(COMM, timeout=td(seconds=60))
    dist.init_process_group("gloo", store=store, rank=RANK, world_size=SIZE)
    try:
        assert dist.get_rank() == RANK and dist.get_world_size() == SIZE
        _collectives()
    finally:
        dist.destroy_process_group()
    COMM.Barrier()
    store.close()


def test_init_from_mpi_url():
    for var in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"):
        assert var not in os.environ
    dist.init_process_group("gloo", init_method="mpi://", timeout=td(seconds=60))
    try:
        assert dist.get_rank() == RANK and dist.get_world_size() == SIZE
        _collectives()
    finally:
        dist.destroy_process_group()
    # explicit and consistent is fine too
    dist.init_process_group("gloo", init_method="mpi://", rank=RANK, world_size=SIZE)
    try:
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_split_group():
    if not hasattr(dist, "split_group"):
        pytest.skip(f"torch {torch.__version__} has no split_group")
    dist.init_process_group("gloo", init_method="mpi://")
    try:
        try:
            sub = dist.split_group(split_ranks=[list(range(SIZE))])
        except RuntimeError as e:
            if "split" in str(e) or "device" in str(e):
                pytest.skip(f"torch {torch.__version__}: split_group refuses gloo on CPU: {e}")
            raise
        y = torch.tensor([1.0])
        dist.all_reduce(y, group=sub)
        assert y.item() == SIZE
    finally:
        dist.destroy_process_group()


def test_mpi_url_contradicting_rank_or_size():
    with pytest.raises(ValueError, match="world_size=.*MPI.COMM_WORLD says world_size"):
        dist.init_process_group("gloo", init_method="mpi://", rank=RANK, world_size=SIZE + 1)
    with pytest.raises(ValueError, match="rank=.*MPI.COMM_WORLD says rank"):
        dist.init_process_group("gloo", init_method="mpi://", rank=(RANK + 1) % (SIZE + 1),
                                world_size=SIZE)
    assert not dist.is_initialized()


def test_mpi_url_without_mpi():
    """mpi:// in a process where MPI was never initialised: a clear error."""
    if RANK != 0:
        return
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_", "PMIX_", "PMI_", "HYDRA_", "MPI_LOCALNRANKS"))}
    code = ("import mpi4py; mpi4py.rc.initialize = False\n"
            "import torch.distributed as d, mpistore.torch\n"
            "d.init_process_group('gloo', init_method='mpi://')\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0
    assert "MPI is not initialised" in r.stderr, r.stderr[-2000:]
