/* The store-wide failure word (fail.c). */
#ifndef MPISTORE_FAIL_H
#define MPISTORE_FAIL_H

#include "core.h"

/* A write failed for lack of space (or memory to grow): tell every rank
 * (the fail word).  kind: MS_FAIL_*.  Returns code (negative). */
#define MS_FAIL_KEYS 1u   /* max_keys_per_rank */
#define MS_FAIL_BYTES 2u  /* value memory limit */
#define MS_FAIL_LEVELS 3u /* every index level full */
#define MS_FAIL_MEMORY 4u /* malloc or MPI_Win_attach failed */
int ms_fail_publish(mpistore_t *s, int code, unsigned kind);
/* In a wait loop: 0, or the failure another rank published (negative code,
 * message in the handle).  A local read, not a round trip. */
int ms_fail_check(mpistore_t *s, const char *what);
const char *ms_fail_advice(unsigned kind); /* "raise ... (MPISTORE_...)" */
/* A key was deleted (room again): clear the failure word everywhere, if set. */
int ms_fail_clear(mpistore_t *s);

#endif /* MPISTORE_FAIL_H */
