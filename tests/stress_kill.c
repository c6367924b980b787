/* The stress model's kill variant: logs that outlive their rank, the
 * victim's death at a random MPI_Win_flush, and waiting for the survivors to
 * learn of it (stress_kill.h). */
#include "mpitest.h"
#include "stress_kill.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STK_MAGIC 0x4B4C5453u /* "STLK" */
#define STK_HDR_BYTES 4096

int stk_victim(void)
{
    const char *v = getenv("STRESS_KILL");
    return v && *v ? atoi(v) : -1;
}

uint64_t stk_job_id(void)
{
    uint64_t id = 0;
    if (mt_rank == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        id = (uint64_t)getpid() << 32 ^ (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20;
    }
    MPI_Bcast(&id, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    return id;
}

static void log_path(char *buf, size_t n, uint64_t job, int rank)
{
    const char *dir = getenv("TMPDIR");
    snprintf(buf, n, "%s/mpistore-stress-%016llx-%d.log", dir && *dir ? dir : "/tmp",
             (unsigned long long)job, rank);
}

static int map_file(stk_log *l, int fd, size_t bytes, int prot)
{
    void *p = mmap(NULL, bytes, prot, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -1;
    l->base = p;
    l->bytes = bytes;
    l->hdr = p;
    l->e = (st_ent *)((char *)p + STK_HDR_BYTES);
    l->cap = (bytes - STK_HDR_BYTES) / sizeof(st_ent);
    return 0;
}

void stk_create(stk_log *l, uint64_t job, int rank, size_t cap)
{
    memset(l, 0, sizeof *l);
    log_path(l->path, sizeof l->path, job, rank);
    size_t bytes = STK_HDR_BYTES + cap * sizeof(st_ent);
    int fd = open(l->path, O_RDWR | O_CREAT | O_TRUNC, 0600), e = 0;
    /* blocks allocated now: a full file system is an error here, not a
     * SIGBUS in the middle of the run */
    if (fd < 0)
        e = errno;
    else if ((e = posix_fallocate(fd, 0, (off_t)bytes)) == 0 &&
             map_file(l, fd, bytes, PROT_READ | PROT_WRITE) != 0)
        e = errno;
    if (e)
        fail_msg("stress kill: rank %d: log file %s: %s", rank, l->path, strerror(e));
    close(fd);
    l->hdr->magic = STK_MAGIC;
    l->hdr->call = -1;
}

int stk_open(stk_log *l, uint64_t job, int rank)
{
    memset(l, 0, sizeof *l);
    log_path(l->path, sizeof l->path, job, rank);
    struct stat st;
    const char *why = NULL;
    int fd = open(l->path, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0)
        why = strerror(errno);
    else if ((size_t)st.st_size <= STK_HDR_BYTES)
        why = "too short";
    else if (map_file(l, fd, (size_t)st.st_size, PROT_READ) != 0)
        why = strerror(errno);
    else if (l->hdr->magic != STK_MAGIC || l->hdr->n + l->hdr->pending > l->cap)
        why = "not a log, or its counts are out of range";
    int rc = why ? -1 : 0;
    if (why)
        fprintf(stderr, "stress kill: rank %d's log %s: %s\n", rank, l->path, why);
    if (fd >= 0)
        close(fd);
    return rc;
}

void stk_unmap(stk_log *l)
{
    if (l->base)
        munmap(l->base, l->bytes);
    l->base = NULL;
    l->hdr = NULL;
    l->e = NULL;
}

void stk_remove(stk_log *l)
{
    if (l->path[0])
        unlink(l->path);
}

/* ---- the victim's death ---- */

static long countdown = -1; /* flushes left before the death; -1: not armed */
static double death_at = -1;
static uint64_t death_rng;

/* MPI's profiling interface (or, on one node, the library's flush hook):
 * the death comes inside a store call, between RMA operations (a lock held, a block written but not
 * published, a publication issued but not flushed, an add half mirrored). */
static void flush_point(void)
{
    if (countdown >= 0 && countdown-- == 0)
        raise(SIGKILL);
}

int MPI_Win_flush(int target, MPI_Win win)
{
    flush_point();
    return PMPI_Win_flush(target, win);
}

/* The one-node path's flushes are fences, not MPI calls: the library calls
 * this hook at each (src/rma.h). */
extern void (*mpistore__flush_hook)(void);

void stk_plan_death(double at, uint64_t rng)
{
    death_at = at;
    death_rng = rng;
    mpistore__flush_hook = flush_point;
}

void stk_tick(bool write_call)
{
    if (death_at < 0 || countdown >= 0 || MPI_Wtime() < death_at)
        return;
    uint64_t x = st_mix(death_rng);
    if (x % 4 == 0) /* one death in four: at any of the next 64 flushes */
        countdown = (long)(x / 4 % 64);
    else if (write_call) /* else inside a write, at one of its first 4 flushes */
        countdown = (long)(x / 4 % 4);
}

void stk_die_now(void)
{
    fflush(NULL);
    raise(SIGKILL);
}

bool stk_victim_known(mpistore_t *s, int victim)
{
    int *dead = NULL;
    size_t n = 0;
    bool known = mpistore_failed_ranks(s, &dead, &n) == 0 && n == 1 && dead[0] == victim;
    mpistore_free(dead);
    return known;
}

bool stk_await_death(mpistore_t *s, int victim, double max_s)
{
    double end = MPI_Wtime() + max_s;
    while (!stk_victim_known(s, victim)) {
        if (MPI_Wtime() > end)
            return false;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return true;
}
