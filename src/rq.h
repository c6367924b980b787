/* Request-based reads and deadline scopes (rq.c; docs/design.md,
 * "Deadlines when a rank stops answering"): part of the RMA layer, used by
 * rma.c.  Inside a scope (mpistore__rq_begin), reads are MPI_Rget /
 * MPI_Rget_accumulate into staging memory the layer owns, and a flush waits
 * for them with MPI_Test until the scope's deadline. */
#ifndef MPISTORE_RQ_H
#define MPISTORE_RQ_H

#include "window.h"

typedef struct mpistore__stage { /* a staging chunk (bump-allocated) */
    struct mpistore__stage *next;
    size_t cap, used;
    unsigned char *data;
} mpistore__stage_t;
typedef struct mpistore__rqinfo {
    void *dst;         /* the caller's buffer, filled on completion */
    const void *stage; /* where MPI writes */
    size_t len;
    int target;
} mpistore__rqinfo_t;
typedef struct mpistore__orphan { /* requests abandoned at a deadline + their memory */
    struct mpistore__orphan *next;
    MPI_Request *reqs;
    size_t nreq;
    mpistore__stage_t *stages;
} mpistore__orphan_t;

typedef struct mpistore__rq {
    MPI_Request *rqv; /* requests in flight */
    mpistore__rqinfo_t *rqi;
    size_t nrq, caprq;
    mpistore__stage_t *stage;    /* staging chunks of the requests in flight */
    mpistore__orphan_t *orphans; /* abandoned at a deadline, freed once complete */
    unsigned char *dirty;        /* per rank: a blocking RMA op not flushed yet */
    int use;                     /* scopes use requests (mpistore__rq_wanted) */
    double deadline;             /* 0: no scope, blocking reads; else the scope's deadline */
    int late;                    /* 1 + the rank that did not answer in the last scope, 0: none */
} mpistore__rq_t;

/* Reads are requests now (inside a scope, on a store that uses them). */
static inline int mpistore__rq_on(const mpistore__rq_t *q)
{
    return q->deadline != 0;
}
/* A blocking (not request-based) operation was issued to target. */
static inline void mpistore__rq_mark(mpistore__rq_t *q, int target)
{
    if (q->dirty)
        q->dirty[target] = 1;
}
/* Room for one more request of len bytes for dst: its staging buffer and
 * its slot (0, or -MPISTORE_ENOMEM with the message in w's sink). */
int mpistore__rq_reserve(mpistore__rq_t *q, mpistore__wins_t *w, int target, void *dst, size_t len,
                         void **stage, MPI_Request **req);
/* The request reserved last was issued (mpirc), or failed to be: dropped. */
int mpistore__rq_issued(mpistore__rq_t *q, mpistore__wins_t *w, int mpirc, const char *call,
                        int target);
/* Wait for every request in flight until the scope's deadline (at least
 * 0.5 s from now), then copy the results to the callers' buffers.
 * -MPISTORE_ETIMEDOUT (q->late set) when a rank did not answer. */
int mpistore__rq_wait(mpistore__rq_t *q, mpistore__wins_t *w);
/* Error paths: requests write only into staging memory, abandon them;
 * blocking operations write into the caller's buffers, complete them (only
 * on the ranks that have some, when that is known). */
void mpistore__complete_all(mpistore__rq_t *q, mpistore__wins_t *w);

/* Deadline scope: until mpistore__rq_end, reads are requests and flushes wait for
 * them until the deadline (or 0.5 s after the flush started, whichever is
 * later), failing with ETIMEDOUT and mpistore__rq_late(q) = the rank that did not
 * answer.  Scopes nest; begin returns what end restores.  deadline from
 * mpistore__deadline (INFINITY: none).  A store that does not use requests
 * (q->use 0) keeps blocking reads: begin changes nothing. */
double mpistore__rq_begin(mpistore__rq_t *q, double deadline);
void mpistore__rq_end(mpistore__rq_t *q, double saved);
/* The rank that did not answer an RMA read in the last scope, or -1. */
static inline int mpistore__rq_late(const mpistore__rq_t *q)
{
    return q->late - 1;
}
/* open, once the window exists: do reads in deadline scopes need requests?
 * Not on a one-node job whose window is Open MPI's osc/rdma or osc/sm (every
 * read is done by the origin in shared memory, whatever the target does);
 * yes everywhere else.  On one node with the shared-memory window (w->peer)
 * the answer is for grown memory only, which stays in MPI's dynamic window:
 * the allocated window is read with loads, never with requests.  Env
 * MPISTORE_RMA_REQUESTS=0/1 decides instead. */
int mpistore__rq_wanted(const mpistore__wins_t *w, int nodes);
/* open, collective, when requests are used: one read of every peer and a
 * barrier.  On Open MPI's osc/pt2pt the first operation of a window towards
 * a peer waits inside the call (even MPI_Rget) until that peer enters MPI: it
 * must not be a read with a deadline.  Best effort: errors show up in later
 * calls.  Also creates the per-rank "dirty" marks. */
void mpistore__rq_warmup(mpistore__rq_t *q, mpistore__wins_t *w);
/* close: after MPI_Win_unlock_all, before MPI_Win_free.  Frees the staging
 * memory and the requests that have completed; leaks (never frees) what an
 * incomplete request could still write into. */
void mpistore__rq_fini(mpistore__rq_t *q);

#endif /* MPISTORE_RQ_H */
