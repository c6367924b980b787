/* The API mutex (docs/design.md, "Threads"): under MPI_THREAD_MULTIPLE
 * one handle may be shared by threads, and the calls on a store are
 * serialised by this mutex.  Taken by the public API layer (ops.h), given up
 * by the waiting layer while a wait sleeps (wait.c).  Whoever holds it
 * also holds Open MPI's idle yield off (mpiyield.h) where the store's
 * operations need no target's progress (quiet).  The bottom layer:
 * inline functions only. */
#ifndef MPISTORE_APILOCK_H
#define MPISTORE_APILOCK_H

#include "mpiyield.h"

#include <pthread.h>

typedef struct mpistore__apilock {
    int on;    /* MPI_THREAD_MULTIPLE: the mutex is used */
    int quiet; /* the store needs no target's progress: hold Open MPI's idle yield off */
    pthread_mutex_t mu;
} mpistore__apilock_t;

static inline void mpistore__apilock_take(mpistore__apilock_t *l)
{
    if (l->on)
        pthread_mutex_lock(&l->mu);
    if (l->quiet)
        mpistore__mpiyield_hold(); /* Open MPI's idle yield is off inside the store */
}
static inline void mpistore__apilock_give(mpistore__apilock_t *l)
{
    if (l->quiet)
        mpistore__mpiyield_release();
    if (l->on)
        pthread_mutex_unlock(&l->mu);
}

#endif /* MPISTORE_APILOCK_H */
