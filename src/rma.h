/* The RMA layer (rma.c, rq.c, window.c): its own context, mpistore__rma_t (the
 * windows, the counters of mpistore_stats, the request machinery with its
 * mode and deadline scope), counted RMA primitives and their flushes.
 * Failures are return codes, described in the windows' error sink. */
#ifndef MPISTORE_RMA_H
#define MPISTORE_RMA_H

#include "rq.h"
#include "window.h"

/* replicas = 1 (docs/design.md, "Replicas"): every write to the key count
 * words or to an index word other than a slot's lock, in the allocated
 * window of rank t, is also made at displacement + delta of rank
 * t + 1 (mod n), and every block this rank builds is put there too.  The
 * mirror's operations are completed by the next flush of any rank, or by
 * mpistore__mirror_flush.  Such a write to this rank's own window is made
 * on the mirror first and here only once the mirror's copy has landed (at
 * that flush): other ranks read our words as soon as they change, and if we
 * died in between, the failover would read the mirror's older copy. */
#define MS_MIRROR_OWN 16 /* own-word writes held back at most (then a flush) */
typedef struct mpistore__own_op {
    size_t off;
    unsigned char val[8];
    void *result; /* a fetch-and-op's result (the caller's, read after the flush) */
    MPI_Datatype type;
    int bytes; /* of type: 4 or 8 */
    MPI_Op op;
} mpistore__own_op_t;

typedef struct mpistore__mirror {
    size_t delta;          /* 0: no replicas */
    size_t ctl, desc, end; /* [ctl, desc): lock, fp, blen, kind words; [desc, end): desc, cnt */
    int *pend;             /* mirror ranks with operations not yet flushed */
    unsigned char *mark;
    size_t npend;
    mpistore__own_op_t own[MS_MIRROR_OWN]; /* own words, after their copies */
    size_t nown;
} mpistore__mirror_t;

typedef struct mpistore__rma {
    mpistore__wins_t w;     /* the windows and the communicator */
    mpistore_stats_t stats; /* RMA calls, round trips, bytes (mpistore_stats) */
    mpistore__rq_t rq;      /* request-based reads, deadline scope */
    mpistore__mirror_t mir; /* replicas (mpistore__mirror_init) */
} mpistore__rma_t;

/* Open, replicas = 1: mirror the words below the arena at +delta (after
 * rank and size are known).  0 or -MPISTORE_ENOMEM. */
int mpistore__mirror_init(mpistore__rma_t *r, size_t delta, size_t ctl, size_t desc, size_t end);
void mpistore__mirror_free(mpistore__rma_t *r);
/* The rank that holds rank t's mirror. */
static inline int mpistore__mirror_of(const mpistore__rma_t *r, int t)
{
    return t + 1 < r->w.nranks ? t + 1 : 0;
}
/* Complete the mirror's operations issued so far (one round trip if any). */
int mpistore__mirror_flush(mpistore__rma_t *r);
/* Put len bytes of this rank's window at off (a block just built) to the
 * same place of its mirror. */
int mpistore__mirror_put(mpistore__rma_t *r, size_t off, size_t len);

/* Do operations on the word at encoded displacement off complete at their
 * call, results included (one node: the allocated window in shared memory,
 * design.md "One node")?  Else only at the next flush. */
static inline int mpistore__rma_immediate(const mpistore__rma_t *r, size_t off)
{
    return mpistore__wins_direct(&r->w, off);
}

/* Tests only (tests/stress_kill.c): called at every flush of the one-node
 * path (design.md, "One node"), which makes no MPI_Win_flush for MPI's
 * profiling interface to catch.  NULL: nothing is called. */
extern void (*mpistore__flush_hook)(void);

int mpistore__flush(mpistore__rma_t *r, int target);
int mpistore__flush2(mpistore__rma_t *r, int a, int b);
int mpistore__flush_all(mpistore__rma_t *r); /* every rank, one by one (see rma.c) */
/* ranks[0..n) (NULL: ranks 0..n-1), one round trip in the counters */
int mpistore__flush_ranks(mpistore__rma_t *r, const int *ranks, size_t n);
/* Flush of operations on this rank's own window: not a round trip. */
int mpistore__flush_self(mpistore__rma_t *r);
/* Bytes of window memory. */
int mpistore__rget(mpistore__rma_t *r, int target, size_t off, void *buf, size_t len);
/* Atomic reads (MPI_Get_accumulate with MPI_NO_OP, or as a request): one
 * element, or n of them. */
int mpistore__read_u32s(mpistore__rma_t *r, int target, size_t off, uint32_t *buf, size_t n);
int mpistore__read_u64s(mpistore__rma_t *r, int target, size_t off, uint64_t *buf, size_t n);
int mpistore__read_i64(mpistore__rma_t *r, int target, size_t off, int64_t *buf);
/* n index slots from slot words ctl_off (MS_CTL_WORDS uint32 each) and
 * descriptors desc_off: read_u32s and read_u64s of them.  Where the words
 * complete at the call (one node), the slots are read in order and the
 * read stops after the first slot never published (descriptor 0, lock
 * version 0); the slots after it are given as 0 (design.md, "A look stops
 * at a slot never published").  Two RMA calls either way. */
int mpistore__read_slots(mpistore__rma_t *r, int target, size_t ctl_off, size_t desc_off,
                         uint32_t *ctl, uint64_t *desc, size_t n);
/* One uint64 read with MPI_Fetch_and_op(NO_OP) (a request in a scope). */
int mpistore__read_u64(mpistore__rma_t *r, int target, size_t off, uint64_t *result);
/* This rank's own word, uncounted (a local look, not an operation's RMA
 * call): MPI_Fetch_and_op(NO_OP) and a flush of this rank. */
int mpistore__read_local_u64(mpistore__rma_t *r, size_t off, uint64_t *result);
int mpistore__cas_u32(mpistore__rma_t *r, int target, size_t off, const uint32_t *desired,
                      const uint32_t *expected, uint32_t *result);
/* Atomic writes (MPI_Accumulate): replace, or, and, sum; and fetch-and-add. */
int mpistore__replace_u32(mpistore__rma_t *r, int target, size_t off, const uint32_t *val);
int mpistore__or_u32(mpistore__rma_t *r, int target, size_t off,
                     const uint32_t *bits); /* MPI_BOR */
int mpistore__and_u32(mpistore__rma_t *r, int target, size_t off,
                      const uint32_t *bits); /* MPI_BAND */
int mpistore__replace_u64(mpistore__rma_t *r, int target, size_t off, const uint64_t *val);
int mpistore__replace_i64(mpistore__rma_t *r, int target, size_t off, const int64_t *val);
int mpistore__add_i64(mpistore__rma_t *r, int target, size_t off, const int64_t *delta);
int mpistore__fao_i64(mpistore__rma_t *r, int target, size_t off, const int64_t *delta,
                      int64_t *result);

#endif /* MPISTORE_RMA_H */
