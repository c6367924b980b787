/* Inserting a key that no slot holds (write_insert.c; docs/design.md,
 * "Inserts"): under the lock of its level-0 home slot. */
#ifndef MPISTORE_WRITE_INSERT_H
#define MPISTORE_WRITE_INSERT_H

#include "write_plan.h"

/* The key of x is absent in sn: insert it.  MS_DONE, MS_RETRY,
 * MS_RETRY_NOW (this rank just grew the index: look again at once) or <0. */
int mpistore__insert(const mpistore__write_t *x, const mpistore__snap_t *sn, int claimed);

#endif /* MPISTORE_WRITE_INSERT_H */
