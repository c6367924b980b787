/* Waiting (wait.c): the clock, deadlines, and the backoff of wait loops,
 * which releases the API mutex while it sleeps. */
#ifndef MPISTORE_WAIT_H
#define MPISTORE_WAIT_H

#include "core.h"

typedef struct ms_backoff { /* initialise with {0} */
    unsigned round;
    unsigned sleeps; /* rounds spent sleeping */
    double start;    /* time of the first round */
} ms_backoff_t;
/* Drive MPI progress, then yield (the first 500 us of a wait) or sleep a
 * growing step (10 us .. 1 ms). */
void ms_backoff(mpistore_t *s, ms_backoff_t *b);
double ms_now(void);
/* deadline for a timeout in seconds (0 = none -> +inf) */
double ms_deadline(double timeout_s);
int ms_expired(double deadline);

#endif /* MPISTORE_WAIT_H */
