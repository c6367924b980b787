/* Waiting (wait.c): the backoff of wait loops, which gives up the API
 * mutex (apilock.h) while it yields or sleeps.  The clock is clock.h
 * (included here: every wait loop reads it). */
#ifndef MPISTORE_WAIT_H
#define MPISTORE_WAIT_H

#include "apilock.h"
#include "clock.h"

#include <mpi.h>

typedef struct mpistore__backoff { /* initialise with {0} */
    unsigned round;
    unsigned sleeps; /* rounds spent sleeping */
    double start;    /* time of the first round */
} mpistore__backoff_t;
/* Drive MPI progress on comm, then yield (the first 500 us of a wait) or
 * sleep a growing step (10 us .. 1 ms), without the API mutex. */
void mpistore__backoff(MPI_Comm comm, mpistore__apilock_t *lock, mpistore__backoff_t *b);

#endif /* MPISTORE_WAIT_H */
