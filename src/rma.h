/* The RMA layer (rma.c): counted RMA primitives, flushes, request-based
 * reads and deadline scopes. */
#ifndef MPISTORE_RMA_H
#define MPISTORE_RMA_H

#include "core.h"

int ms_flush(mpistore_t *s, int target);
int ms_flush2(mpistore_t *s, int a, int b);
int ms_flush_all(mpistore_t *s); /* every rank, one by one (see rma.c) */
/* The same on an error path: uncounted, errors ignored (no Get may still
 * write into a buffer the caller is about to free). */
void ms_complete_all(ms_core_t *c);
/* ranks[0..n) (NULL: ranks 0..n-1), one round trip in the counters */
int ms_flush_ranks(mpistore_t *s, const int *ranks, size_t n);
int ms_rget(mpistore_t *s, int target, size_t off, void *buf, size_t len);
int ms_getacc_u32(mpistore_t *s, int target, size_t off, uint32_t *buf, size_t count);
int ms_getacc_u64(mpistore_t *s, int target, size_t off, uint64_t *buf, size_t count);
int ms_cas_u32(mpistore_t *s, int target, size_t off, const uint32_t *desired,
               const uint32_t *expected, uint32_t *result);
int ms_put_u32(mpistore_t *s, int target, size_t off, const uint32_t *val);
int ms_or_u32(mpistore_t *s, int target, size_t off, const uint32_t *bits);  /* MPI_BOR */
int ms_and_u32(mpistore_t *s, int target, size_t off, const uint32_t *bits); /* MPI_BAND */
int ms_put_u64(mpistore_t *s, int target, size_t off, const uint64_t *val);
int ms_put_i64(mpistore_t *s, int target, size_t off, const int64_t *val);
int ms_add_i64(mpistore_t *s, int target, size_t off, const int64_t *delta);
int ms_fao_i64(mpistore_t *s, int target, size_t off, const int64_t *delta, int64_t *result);
int ms_read_u64(mpistore_t *s, int target, size_t off, uint64_t *result);
int ms_getacc_i64(mpistore_t *s, int target, size_t off, int64_t *buf);
/* Flush of operations on this rank's own window: not a round trip. */
int ms_flush_self(mpistore_t *s);

/* Deadline scope (design.md, "Deadlines when a rank stops answering"):
 * until ms_rq_end, reads are MPI_Rget / MPI_Rget_accumulate into staging
 * memory and flushes wait for them with MPI_Test until the deadline (or
 * 0.5 s after the flush started, whichever is later), failing with ETIMEDOUT
 * and ms_rq_late(s) = the rank that did not answer.  Scopes nest; begin
 * returns what end restores.  deadline from ms_deadline (INFINITY: none). */
double ms_rq_begin(mpistore_t *s, double deadline);
void ms_rq_end(mpistore_t *s, double saved);
/* The rank that did not answer an RMA read in the last scope, or -1. */
static inline int ms_rq_late(const mpistore_t *s)
{
    return s->rq_late - 1;
}
/* After a timeout: prefix the handle's message with "<what>: " if the
 * timeout was a rank that did not answer (ms_rq_late(s) >= 0); returns rc. */
int ms_rq_context(mpistore_t *s, int rc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* open, once the window exists: do reads in deadline scopes need requests?
 * Not on a one-node job whose window is Open MPI's osc/rdma (every read is
 * done by the origin in shared memory, whatever the target does); yes
 * everywhere else.  Env MPISTORE_RMA_REQUESTS=0/1 decides instead. */
int ms_rq_wanted(const ms_core_t *c, int nodes);
/* open, collective, when rq_use: one read of every peer and a barrier.  On
 * Open MPI's osc/pt2pt the first operation of a window towards a peer waits
 * inside the call (even MPI_Rget) until that peer enters MPI: it must not be
 * a read with a deadline.  Best effort: errors show up in later calls. */
void ms_rq_warmup(ms_core_t *c);
/* close: after MPI_Win_unlock_all, before MPI_Win_free.  Frees the staging
 * memory and the requests that have completed; leaks (never frees) what an
 * incomplete request could still write into. */
void ms_rq_fini(ms_core_t *c);

#endif /* MPISTORE_RMA_H */
