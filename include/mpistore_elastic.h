/*
 * Elastic helpers on an mpistore store: the C port of PyTorch's
 * torch/distributed/elastic/utils/store.py (barrier, synchronize, get_all,
 * store_timeout).  Key names and values are those of the Python helpers, so
 * C code and Python elastic code can meet on one store:
 *
 *   barrier:      key_prefix "/num_members"   (add 1 per member)
 *                 key_prefix "/last_member"   = "<val_ignored>" (set by the last)
 *   diagnosis:    key_prefix "<rank>/TRACE"   (set by every timed-out rank)
 *                 key_prefix "/TRACING_GATE"  (set by rank 0; value: the missing
 *                                              ranks, e.g. "[3]")
 *   synchronize:  key_prefix "<rank>"         (each rank's data)
 *   get_all:      prefix "/finished" barrier
 *
 * `rank` and `world_size` are the elastic group's, which need not be the
 * communicator's.  Keys are never deleted: use a fresh prefix for every
 * barrier or synchronize.  Every helper restores the handle's timeout on
 * every path, success or failure.  Errors are those of mpistore.h; invalid
 * arguments give MPISTORE_EINVAL and change nothing.
 */
#ifndef MPISTORE_ELASTIC_H
#define MPISTORE_ELASTIC_H

#include <mpistore.h>

#ifdef __cplusplus
extern "C" {
#endif

/** store_timeout: set the handle's timeout to seconds (finite, >= 0; 0 = no
 *  deadline) and give the old one in *previous (may be NULL). */
MPISTORE_EXTERN int mpistore_swap_timeout(mpistore_t *s, double seconds, double *previous);

/** _barrier_nonblocking: add(key_prefix "/num_members", 1); the caller that
 *  reaches world_size sets key_prefix "/last_member" to "<val_ignored>".
 *  *last_member_key receives that key (free with mpistore_free). */
MPISTORE_EXTERN int mpistore_barrier_nonblocking(mpistore_t *s, int world_size,
                                                 const char *key_prefix, char **last_member_key);

/**
 * barrier: under a timeout of timeout_s, barrier_nonblocking then wait for
 * the last_member key.  Blocks until world_size members arrived.
 * On a timeout with rank >= 0, finds out who never arrived (every timed-out
 * rank sets its TRACE key; rank 0 checks them, with a 1 s grace period, and
 * publishes the missing list under TRACING_GATE; the others wait up to 2 s for
 * it), then returns MPISTORE_ETIMEDOUT with a message such as
 *   barrier timeout on rank 2 for key prefix 'job/step7' after 1.0 s
 *   (world_size=4, missing_ranks=[3])
 * The diagnosis adds at most about 2.5 s to the timeout.  rank < 0 disables it.
 * EINVAL: world_size < 1, rank >= world_size, empty prefix, bad timeout.
 */
MPISTORE_EXTERN int mpistore_barrier(mpistore_t *s, int rank, int world_size,
                                     const char *key_prefix, double timeout_s);

/** get_all: multi_get prefix "0" .. prefix "<world_size-1>" (one deadline, the
 *  handle's timeout), then barrier_nonblocking under prefix "/finished";
 *  rank 0 also waits for that barrier's last_member key, so it returns only
 *  after every member has read.  values[] and lens[] have world_size entries,
 *  written only on success; free each value with mpistore_free.
 *  EINVAL also for rank < 0. */
MPISTORE_EXTERN int mpistore_get_all(mpistore_t *s, int rank, const char *prefix, int world_size,
                                     void **values, size_t *lens);

/** synchronize: under a timeout of timeout_s, set(key_prefix "<rank>", data)
 *  then get_all: every member gets every member's data, in rank order. */
MPISTORE_EXTERN int mpistore_synchronize(mpistore_t *s, const void *data, size_t len, int rank,
                                         int world_size, const char *key_prefix, double timeout_s,
                                         void **values, size_t *lens);

#ifdef __cplusplus
}
#endif

#endif /* MPISTORE_ELASTIC_H */
