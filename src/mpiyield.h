/* Open MPI's idle yield, turned off while a thread works inside the store
 * (mpiyield.c; docs/design.md, "More ranks than cores").  When Open MPI
 * knows that ranks outnumber cores it calls sched_yield in every progress
 * call that finds nothing to do, and every flush of ours is such a call: a
 * store operation of 10-30 MPI calls gave the core away 10-30 times, each
 * time to a rank that was only polling.  The store waits with its own
 * backoff (wait.c), which yields once per poll.  The bottom layer: MPI, the
 * dynamic linker and pthreads only. */
#ifndef MPISTORE_MPIYIELD_H
#define MPISTORE_MPIYIELD_H

/* Once per process, after MPI_Init (open): find Open MPI's switch and see
 * whether the idle yield is on.  Off, absent (MPICH) or
 * MPISTORE_MPI_YIELD=keep: hold and release do nothing. */
void mpistore__mpiyield_init(void);
/* Turn the idle yield off until the matching release; nests across threads
 * and handles: the last release puts back what the MPI had. */
void mpistore__mpiyield_hold(void);
void mpistore__mpiyield_release(void);

#endif /* MPISTORE_MPIYIELD_H */
