/* The MPI a process runs on and the host it runs on: the launcher check, the
 * window-size check, and the one thing the library does before main (quieting
 * Open MPI 5's osc/ucx where it cannot work).  See mpienv.h and
 * docs/design.md, "Open MPI 5, MPICH 5 and MPIs from pip". */
#include "mpienv.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/sysinfo.h>
#endif

const char *mpistore__mpi_library(char *buf, size_t n)
{
    char lib[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    if (n == 0)
        return buf;
    if (MPI_Get_library_version(lib, &len) != MPI_SUCCESS || !lib[0]) {
        snprintf(buf, n, "%s", "an unknown MPI");
        return buf;
    }
    const char *v = strstr(lib, "MPICH Version:");
    if (v) { /* "MPICH Version:\t4.0.2\nMPICH Release date: ..." */
        v += strlen("MPICH Version:");
        v += strspn(v, " \t");
        snprintf(buf, n, "MPICH %.*s", (int)strcspn(v, " \t\n"), v);
        return buf;
    }
    /* "Open MPI v4.1.4, package: ..." and others: the first clause */
    snprintf(buf, n, "%.*s", (int)strcspn(lib, ",\n"), lib);
    return buf;
}

/* A positive decimal from the environment, or 0. */
static long env_count(const char *name)
{
    const char *v = getenv(name);
    char *end = NULL;
    if (!v || !*v)
        return 0;
    errno = 0;
    long x = strtol(v, &end, 10);
    return errno || *end || x <= 0 ? 0 : x;
}

int mpistore__launch_check(char *why, size_t n)
{
    const char *off = getenv("MPISTORE_LAUNCHER_CHECK");
    if (off && strcmp(off, "0") == 0)
        return 0;
    /* Open MPI's launchers (ORTE in 4.x, PRRTE in 5.x) and PMI launchers
     * (MPICH's Hydra, Intel MPI, srun --mpi=pmi2) say how many processes
     * they started. */
    const char *var = "OMPI_COMM_WORLD_SIZE", *rvar = "OMPI_COMM_WORLD_RANK";
    const char *who =
        getenv("PRTE_LAUNCHED") ? "Open MPI 5's mpiexec (PRRTE)" : "Open MPI's mpirun";
    long want = env_count(var);
    if (!want) {
        var = "PMI_SIZE", rvar = "PMI_RANK";
        who = getenv("HYDI_CONTROL_FD") ? "MPICH's Hydra mpiexec" : "a PMI launcher";
        want = env_count(var);
    }
    int size = 0;
    if (!want || MPI_Comm_size(MPI_COMM_WORLD, &size) != MPI_SUCCESS || size == want)
        return 0;
    char lib[96];
    const char *rank = getenv(rvar);
    snprintf(why, n,
             "this process is rank %.12s of %ld started by %s (%s=%ld), but its MPI, %s, "
             "sees an MPI_COMM_WORLD of %d: the launcher is another MPI's, and every process "
             "would be a job of its own. Start it with the mpiexec of %s, or build mpistore "
             "against the launcher's MPI (MPISTORE_LAUNCHER_CHECK=0 skips this check)",
             rank ? rank : "?", want, who, var, want, mpistore__mpi_library(lib, sizeof lib), size,
             lib);
    return -1;
}

/* Bytes of the host's memory, RAM plus swap (0: unknown). */
static uint64_t host_memory(void)
{
#if defined(__linux__)
    struct sysinfo si;
    if (sysinfo(&si) == 0)
        return ((uint64_t)si.totalram + si.totalswap) * (si.mem_unit ? si.mem_unit : 1);
#endif
    return 0;
}

/* Free bytes in /dev/shm (UINT64_MAX: no such file system, not a limit). */
static uint64_t shm_free(void)
{
    struct statvfs v;
    if (statvfs("/dev/shm", &v) != 0)
        return UINT64_MAX;
    return (uint64_t)v.f_bavail * v.f_frsize;
}

int mpistore__window_fits(size_t win_bytes, int local_ranks, char *why, size_t n)
{
    if (local_ranks < 1)
        local_ranks = 1;
    uint64_t need = (uint64_t)win_bytes > UINT64_MAX / (uint64_t)local_ranks
                        ? UINT64_MAX
                        : (uint64_t)win_bytes * (uint64_t)local_ranks;
    char host[64] = "?";
    gethostname(host, sizeof host - 1);
    uint64_t mem = host_memory(), shm = local_ranks > 1 ? shm_free() : UINT64_MAX;
    const char *where = NULL;
    uint64_t have = 0;
    if (mem && need > mem)
        where = "the host's memory (RAM + swap) is", have = mem;
    else if (need > shm)
        where = "/dev/shm, where MPI keeps the windows of ranks that share a host, has", have = shm;
    if (!where)
        return 0;
    snprintf(why, n,
             "the store's window of %zu bytes per rank, %llu bytes for the %d ranks on host "
             "'%s', does not fit: %s %llu bytes. Lower bytes_per_rank or keys_per_rank "
             "(MPISTORE_BYTES_PER_RANK, MPISTORE_KEYS_PER_RANK)",
             win_bytes, (unsigned long long)need, local_ranks, host, where,
             (unsigned long long)have);
    return -1;
}

/* Open MPI 5's osc/ucx prints "OSC UCX component priority set inside
 * component query failed" on every rank for every window where UCX finds no
 * device it supports (any machine without InfiniBand/RoCE), and is then not
 * used.  Before MPI_Init (this runs when the library is loaded, before main)
 * and only where nothing chose the one-sided components (OMPI_MCA_osc unset,
 * no osc line in ~/.openmpi/mca-params.conf) and no RDMA device exists, we
 * leave osc/ucx out, which changes nothing but the noise.
 * MPISTORE_QUIET_OSC_UCX=0 turns this off. */
static int has_rdma_device(void)
{
    DIR *d = opendir("/sys/class/infiniband");
    if (!d)
        return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)) != NULL)
        found = e->d_name[0] != '.';
    closedir(d);
    return found;
}

static int params_file_names_osc(void)
{
    const char *home = getenv("HOME");
    char path[PATH_MAX], line[256];
    if (!home)
        return 0;
    snprintf(path, sizeof path, "%s/.openmpi/mca-params.conf", home);
    FILE *f = fopen(path, "r");
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strncmp(line + strspn(line, " \t"), "osc", 3) == 0;
    if (f)
        fclose(f);
    return found;
}

#if defined(__GNUC__)
__attribute__((constructor))
#endif
static void
quiet_osc_ucx(void)
{
    const char *opt = getenv("MPISTORE_QUIET_OSC_UCX");
    int init = 0;
    char lib[64];
    if ((opt && strcmp(opt, "0") == 0) || getenv("OMPI_MCA_osc") ||
        MPI_Initialized(&init) != MPI_SUCCESS || init)
        return;
    mpistore__mpi_library(lib, sizeof lib);
    if (strncmp(lib, "Open MPI v", 10) != 0 || atoi(lib + 10) < 5)
        return;
    if (!has_rdma_device() && !params_file_names_osc())
        setenv("OMPI_MCA_osc", "^ucx", 0);
}
