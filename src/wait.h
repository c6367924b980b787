/* Waiting (wait.c): the backoff of wait loops, which releases the API
 * mutex while it sleeps.  The clock is clock.h (included here: every wait
 * loop reads it). */
#ifndef MPISTORE_WAIT_H
#define MPISTORE_WAIT_H

#include "clock.h"
#include "core.h"

typedef struct ms_backoff { /* initialise with {0} */
    unsigned round;
    unsigned sleeps; /* rounds spent sleeping */
    double start;    /* time of the first round */
} ms_backoff_t;
/* Drive MPI progress, then yield (the first 500 us of a wait) or sleep a
 * growing step (10 us .. 1 ms). */
void ms_backoff(mpistore_t *s, ms_backoff_t *b);

#endif /* MPISTORE_WAIT_H */
