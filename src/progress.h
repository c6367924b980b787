/* The optional progress thread (progress.c). */
#ifndef MPISTORE_PROGRESS_H
#define MPISTORE_PROGRESS_H

#include "core.h"

/* 1 if the thread is wanted (env MPISTORE_PROGRESS_THREAD=0/1 overrides the
 * option), 0 if not, -1 with a reason in why if the variable is malformed. */
int ms_progress_requested(int option, char *why, size_t n);
/* The period (env MPISTORE_PROGRESS_PERIOD_US, default 50), or -1 with why. */
long ms_progress_period_us(char *why, size_t n);
int ms_progress_start(ms_core_t *c); /* 0, or -1 if the thread cannot start */
void ms_progress_stop(ms_core_t *c); /* joins the thread; no-op if not running */

#endif /* MPISTORE_PROGRESS_H */
