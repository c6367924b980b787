"""What mpistore does before mpi4py initialises MPI (``import mpistore``
imports this first; the C library does the same when it is loaded before
``main``, src/mpienv.c).

- Open MPI 5's osc/ucx prints "OSC UCX component priority set inside
  component query failed" on every rank for every window where UCX finds no
  device it supports (any machine without InfiniBand/RoCE), and is then not
  used: where nothing chose the one-sided components (``OMPI_MCA_osc`` unset,
  no ``osc`` line in ``~/.openmpi/mca-params.conf``) and no RDMA device
  exists, ``OMPI_MCA_osc=^ucx`` is set, which changes nothing but the noise.
  ``MPISTORE_QUIET_OSC_UCX=0`` turns this off.
- A package built against MPICH and started by Open MPI's ``mpirun`` would
  die inside ``MPI_Init`` ("unsupported PMI version PMIx") or become a
  singleton job per process; say so, naming both MPIs, instead.  (Every
  other mismatch is caught by ``mpistore_open``: src/mpienv.c.)
  ``MPISTORE_LAUNCHER_CHECK=0`` skips the check.

Both need to know which MPI the library was built against:
``mpistore._mpibuild`` (written by CMake for ``pip install``).  Without it
(the package used from the source tree) nothing is done here.
"""
from __future__ import annotations

import os
import re
import sys
from typing import Optional


def built_with() -> Optional[str]:
    """The MPI libmpistore was built against ("Open MPI v5.0.11",
    "MPICH 5.0.2"), or None if unknown."""
    try:
        from ._mpibuild import MPI_LIBRARY
    except ImportError:
        return None
    m = re.match(r"MPICH Version:\s*(\S+)", MPI_LIBRARY)
    if m:
        return "MPICH " + m.group(1)
    return re.split(r"[,\n]", MPI_LIBRARY, maxsplit=1)[0].strip() or None


def _has_rdma_device() -> bool:
    try:
        return any(not n.startswith(".") for n in os.listdir("/sys/class/infiniband"))
    except OSError:
        return False


def _params_file_names_osc() -> bool:
    path = os.path.join(os.path.expanduser("~"), ".openmpi", "mca-params.conf")
    try:
        with open(path) as f:
            return any(line.lstrip().startswith("osc") for line in f)
    except OSError:
        return False


def quiet_osc_ucx(lib: Optional[str]) -> None:
    m = re.match(r"Open MPI v(\d+)", lib or "")
    if (not m or int(m.group(1)) < 5 or os.environ.get("MPISTORE_QUIET_OSC_UCX") == "0"
            or "OMPI_MCA_osc" in os.environ):
        return
    if not _has_rdma_device() and not _params_file_names_osc():
        os.environ["OMPI_MCA_osc"] = "^ucx"


def check_launcher(lib: Optional[str]) -> None:
    env = os.environ
    if (not lib or not lib.startswith("MPICH") or env.get("MPISTORE_LAUNCHER_CHECK") == "0"
            or "OMPI_COMM_WORLD_SIZE" not in env or "PMI_FD" in env or "PMI_PORT" in env):
        return
    who = "Open MPI 5's mpiexec (PRRTE)" if "PRTE_LAUNCHED" in env else "Open MPI's mpirun"
    raise RuntimeError(
        f"mpistore: this process is rank {env.get('OMPI_COMM_WORLD_RANK', '?')} of "
        f"{env['OMPI_COMM_WORLD_SIZE']} started by {who} (OMPI_COMM_WORLD_SIZE="
        f"{env['OMPI_COMM_WORLD_SIZE']}), but mpistore (and its MPI) is {lib}, which cannot "
        f"join that job: MPI_Init would fail or start a job per process. Start it with the "
        f"mpiexec of {lib}, or install mpistore against the launcher's MPI "
        f"(MPISTORE_LAUNCHER_CHECK=0 skips this check)")


def before_mpi_init() -> None:
    if "mpi4py.MPI" in sys.modules:  # MPI is up (or on its way): too late
        return
    lib = built_with()
    check_launcher(lib)
    quiet_osc_ucx(lib)
