/* Updating a key in the slot that holds it (write_update.c): lock the
 * slot and fetch its block, decide (our key? the counter decision; the
 * plan), publish (a counter's word, a new block, or nothing). */
#ifndef MPISTORE_WRITE_UPDATE_H
#define MPISTORE_WRITE_UPDATE_H

#include "write_plan.h"

/* Write x's key in slot i of the snapshot sn.  MS_DONE, MS_RETRY (the slot
 * changed since the snapshot), MS_OTHER_KEY (it holds another key) or <0. */
int mpistore__update_slot(const mpistore__write_t *x, const mpistore__snap_t *sn, size_t i);

#endif /* MPISTORE_WRITE_UPDATE_H */
