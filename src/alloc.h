/* Value memory (alloc.c): the owner-only allocator of this rank's arena
 * and segments, and where any rank's allocation units are. */
#ifndef MPISTORE_ALLOC_H
#define MPISTORE_ALLOC_H

#include "rma.h"

/* Private allocator over this rank's arena (owner-only metadata). */
typedef struct mpistore__alloc {
    unsigned char *arena; /* local address of the arena */
    size_t arena_off;     /* window displacement of the arena */
    uint32_t nunits;
    unsigned shift; /* log2 of the unit size */
    uint32_t bins[MS_NBINS];
    uint64_t used_units;
    uint32_t base; /* unit number of this arena's unit 0 in the rank's unit space */
} mpistore__alloc_t;

/* This rank's value memory: the arena in the allocated window and the
 * segments grown beside it, and what it knows of other ranks' segments. */
typedef struct mpistore__mem {
    mpistore__alloc_t alloc;            /* the arena */
    mpistore__alloc_t seg[MS_MAX_SEGS]; /* segment i, once segmem[i] is set */
    unsigned char *segmem[MS_MAX_SEGS];
    uint32_t max_units; /* units of the unit space this rank may use */
    uint64_t *segaddr;  /* [nranks * MS_MAX_SEGS]: 0 = not known yet */
} mpistore__mem_t;

int mpistore__mem_init(mpistore__mem_t *m, int nranks); /* 0, or -1 out of memory */
void mpistore__mem_free(mpistore__mem_t *m,
                        const mpistore__wins_t *w); /* after the windows are freed */
void mpistore__alloc_init(mpistore__alloc_t *a, unsigned char *arena, size_t arena_off,
                          size_t bytes, unsigned shift);
/* allocate a block of at least `bytes` (header included); reclaims blocks
 * other ranks marked dead when the arena is full.  0 or -MPISTORE_ENOSPC /
 * -MPISTORE_EMPI. *uoff receives the unit offset. */
int mpistore__alloc_block(mpistore__mem_t *m, mpistore__rma_t *r, size_t bytes, uint32_t *uoff);
void mpistore__free_block(mpistore__mem_t *m, uint32_t uoff);
/* the allocator (arena or segment) holding unit uoff of this rank, or NULL */
mpistore__alloc_t *mpistore__alloc_of(mpistore__mem_t *m, uint32_t uoff);
/* this rank's block at unit uoff (which must be allocated) */
mpistore__blk_t *mpistore__blk_at(mpistore__mem_t *m, uint32_t uoff);

/* Where unit uoff of rank r's unit space is: *off the displacement of the
 * unit (encoded), *room the bytes from there to the end of its arena or
 * segment (0: no such unit).  May read r's segment directory (one round
 * trip, once per segment). */
int mpistore__unit_addr(mpistore__mem_t *m, mpistore__rma_t *r, int rank, uint32_t uoff,
                        size_t *off, size_t *room);
/* Create this rank's arena segment i (owner only; publishes its address). */
int mpistore__seg_create(mpistore__mem_t *m, mpistore__rma_t *r, unsigned i);
uint32_t mpistore__seg_base(const mpistore__mem_t *m, unsigned i); /* == its size in units */
/* bytes of value memory in use and in existence on this rank */
void mpistore__alloc_usage(const mpistore__mem_t *m, size_t *used, size_t *have);

#endif /* MPISTORE_ALLOC_H */
