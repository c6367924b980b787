/* The store-wide failure word (fail.c). */
#ifndef MPISTORE_FAIL_H
#define MPISTORE_FAIL_H

#include "rma.h"

/* A write failed for lack of space (or memory to grow): tell every rank
 * (the fail word).  kind: MS_FAIL_*.  Returns code (negative). */
#define MS_FAIL_KEYS 1u   /* max_keys_per_rank */
#define MS_FAIL_BYTES 2u  /* value memory limit */
#define MS_FAIL_LEVELS 3u /* every index level full */
#define MS_FAIL_MEMORY 4u /* malloc or MPI_Win_attach failed */
int mpistore__fail_publish(mpistore__rma_t *r, int code, unsigned kind);
/* In a wait loop: 0, or the failure another rank published (negative code,
 * message in the sink).  A local read, not a round trip. */
int mpistore__fail_check(mpistore__rma_t *r, const char *what);
const char *mpistore__fail_advice(unsigned kind); /* "raise ... (MPISTORE_...)" */
/* A key was deleted (room again): clear the failure word everywhere, if set. */
int mpistore__fail_clear(mpistore__rma_t *r);

#endif /* MPISTORE_FAIL_H */
