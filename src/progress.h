/* The optional progress thread (progress.c). */
#ifndef MPISTORE_PROGRESS_H
#define MPISTORE_PROGRESS_H

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

typedef struct mpistore__progress {
    MPI_Comm comm;  /* whose progress it drives (the store's) */
    long period_us; /* between two MPI_Iprobe */
    int on;         /* the thread is running */
    atomic_int stop;
    pthread_t thread;
} mpistore__progress_t;

/* 1 if the thread is wanted (env MPISTORE_PROGRESS_THREAD=0/1 overrides the
 * option), 0 if not, -1 with a reason in why if the variable is malformed. */
int mpistore__progress_requested(int option, char *why, size_t n);
/* The period (env MPISTORE_PROGRESS_PERIOD_US, default 50), or -1 with why. */
long mpistore__progress_period_us(char *why, size_t n);
int mpistore__progress_start(mpistore__progress_t *p); /* 0, or -1 if the thread cannot start */
void mpistore__progress_stop(mpistore__progress_t *p); /* joins the thread; no-op if not running */

#endif /* MPISTORE_PROGRESS_H */
