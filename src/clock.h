/* The clock and deadlines (clock.c): the bottom layer beside errors, used by
 * the RMA layer's deadline scopes and by every wait loop. */
#ifndef MPISTORE_CLOCK_H
#define MPISTORE_CLOCK_H

double mpistore__now(void); /* seconds, MPI_Wtime */
/* deadline for a timeout in seconds (0 = none -> +inf) */
double mpistore__deadline(double timeout_s);
/* the same from a time already read (a clock read costs about 25 ns: wait
 * loops read it once per round, design.md "Issue #22's targets") */
double mpistore__deadline_at(double t0, double timeout_s);
int mpistore__expired(double deadline);

#endif /* MPISTORE_CLOCK_H */
