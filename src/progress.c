/* Optional progress thread (option progress_thread, env MPISTORE_PROGRESS_THREAD).
 *
 * On transports without hardware one-sided support (Open MPI osc/pt2pt and
 * osc/ucx over TCP, MPICH without MPIR_CVAR_ASYNC_PROGRESS) a passive-target
 * operation aimed at a rank completes only while that rank is inside MPI.  A
 * rank that computes for seconds without calling MPI then stalls every rank
 * whose keys it hosts.  This thread calls MPI_Iprobe on the store's private
 * communicator every 50 us (MPISTORE_PROGRESS_PERIOD_US), which drives the MPI
 * progress engine, and sleeps in between (never spins).  Measured on UCX's TCP
 * transport: one round trip to a target that is outside MPI costs a few
 * periods (requests and replies each need the target's progress).  It touches no store state, so
 * it needs no lock of ours; MPI_THREAD_MULTIPLE makes the concurrent MPI call
 * legal, and open refuses the option without it. */
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define MS_PROGRESS_PERIOD_US 50L /* default period between progress calls */

static void *progress_main(void *arg)
{
    mpistore__progress_t *p = arg;
#ifdef __linux__
    /* Sleep for the period asked, not the default 50 us timer slack more. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
#endif
    const struct timespec period = {p->period_us / 1000000, (p->period_us % 1000000) * 1000};
    while (!atomic_load_explicit(&p->stop, memory_order_acquire)) {
        int flag = 0;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, p->comm, &flag, MPI_STATUS_IGNORE);
        nanosleep(&period, NULL);
    }
    return NULL;
}

int mpistore__progress_start(mpistore__progress_t *p)
{
    atomic_store_explicit(&p->stop, 0, memory_order_relaxed);
    if (pthread_create(&p->thread, NULL, progress_main, p) != 0)
        return -1;
    p->on = 1;
    return 0;
}

void mpistore__progress_stop(mpistore__progress_t *p)
{
    if (!p->on)
        return;
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    pthread_join(p->thread, NULL);
    p->on = 0;
}

long mpistore__progress_period_us(char *why, size_t n)
{
    const char *env = getenv("MPISTORE_PROGRESS_PERIOD_US");
    if (!env || !env[0])
        return MS_PROGRESS_PERIOD_US;
    char *end = NULL;
    long us = strtol(env, &end, 10);
    if (*end == 0 && us >= 1 && us <= 1000000)
        return us;
    snprintf(why, n, "environment MPISTORE_PROGRESS_PERIOD_US='%.32s' must be in [1, 1000000]",
             env);
    return -1;
}

int mpistore__progress_requested(int option, char *why, size_t n)
{
    const char *env = getenv("MPISTORE_PROGRESS_THREAD");
    if (!env || !env[0])
        return option != 0;
    if ((env[0] == '0' || env[0] == '1') && env[1] == 0)
        return env[0] == '1';
    snprintf(why, n, "environment MPISTORE_PROGRESS_THREAD='%.32s' must be 0 or 1", env);
    return -1;
}
