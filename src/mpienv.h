/* The MPI a process runs on and the host it runs on (mpienv.c): checks that
 * open makes before it creates a window, because MPI itself either cannot
 * tell (a program started by another MPI's launcher becomes a singleton job)
 * or hangs instead of failing (an oversized shared window on Open MPI 5's
 * osc/sm).  The bottom layer: depends on MPI and the C library only. */
#ifndef MPISTORE_MPIENV_H
#define MPISTORE_MPIENV_H

#include <stddef.h>

/* The MPI library's name and version, one line ("Open MPI v5.0.11",
 * "MPICH 4.0.2"), from MPI_Get_library_version.  Returns buf. */
const char *mpistore__mpi_library(char *buf, size_t n);

/* Local: 0 if MPI_COMM_WORLD is the job the launcher started (or no
 * launcher said how large its job is); -1 if the launcher's environment
 * names another size, i.e. the launcher belongs to another MPI than the
 * library (why: both MPIs and the fix).  MPISTORE_LAUNCHER_CHECK=0 skips. */
int mpistore__launch_check(char *why, size_t n);

/* Local: 0 if local_ranks windows of win_bytes each fit this host, -1 if
 * not (why: what does not fit where, and the options that shrink it).
 * Shared windows of ranks on one host live in /dev/shm: its free space
 * counts when local_ranks > 1; the host's memory (RAM + swap) always. */
int mpistore__window_fits(size_t win_bytes, int local_ranks, char *why, size_t n);

#endif /* MPISTORE_MPIENV_H */
