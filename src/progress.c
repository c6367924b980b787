/* Optional progress thread (option progress_thread, env MPISTORE_PROGRESS_THREAD).
 *
 * On transports without hardware one-sided support (Open MPI osc/pt2pt and
 * osc/ucx over TCP, MPICH without MPIR_CVAR_ASYNC_PROGRESS) a passive-target
 * operation aimed at a rank completes only while that rank is inside MPI.  A
 * rank that computes for seconds without calling MPI then stalls every rank
 * whose keys it hosts.  This thread calls MPI_Iprobe on the store's private
 * communicator every MS_PROGRESS_PERIOD_NS, which drives the MPI progress
 * engine, and sleeps in between (never spins).  It touches no store state, so
 * it needs no lock of ours; MPI_THREAD_MULTIPLE makes the concurrent MPI call
 * legal, and open refuses the option without it. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MS_PROGRESS_PERIOD_NS 100000L /* 100 us between progress calls */

static void *progress_main(void *arg)
{
    ms_core_t *c = arg;
    const struct timespec period = {0, MS_PROGRESS_PERIOD_NS};
    while (!atomic_load_explicit(&c->progress_stop, memory_order_acquire)) {
        int flag = 0;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, c->comm, &flag, MPI_STATUS_IGNORE);
        nanosleep(&period, NULL);
    }
    return NULL;
}

int ms_progress_start(ms_core_t *c)
{
    atomic_store_explicit(&c->progress_stop, 0, memory_order_relaxed);
    if (pthread_create(&c->progress, NULL, progress_main, c) != 0)
        return -1;
    c->progress_on = 1;
    return 0;
}

void ms_progress_stop(ms_core_t *c)
{
    if (!c->progress_on)
        return;
    atomic_store_explicit(&c->progress_stop, 1, memory_order_release);
    pthread_join(c->progress, NULL);
    c->progress_on = 0;
}

int ms_progress_requested(int option, char *why, size_t n)
{
    const char *env = getenv("MPISTORE_PROGRESS_THREAD");
    if (!env || !env[0])
        return option != 0;
    if ((env[0] == '0' || env[0] == '1') && env[1] == 0)
        return env[0] == '1';
    snprintf(why, n, "environment MPISTORE_PROGRESS_THREAD='%.32s' must be 0 or 1", env);
    return -1;
}
