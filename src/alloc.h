/* Value memory (alloc.c): the owner-only allocator of this rank's arena
 * and segments, and where any rank's allocation units are. */
#ifndef MPISTORE_ALLOC_H
#define MPISTORE_ALLOC_H

#include "core.h"

void ms_alloc_init(ms_alloc_t *a, unsigned char *arena, size_t arena_off, size_t bytes,
                   unsigned shift);
/* allocate a block of at least `bytes` (header included); reclaims blocks
 * other ranks marked dead when the arena is full.  0 or -MPISTORE_ENOSPC /
 * -MPISTORE_EMPI. *uoff receives the unit offset. */
int ms_alloc_block(mpistore_t *s, size_t bytes, uint32_t *uoff);
void ms_free_block(ms_core_t *c, uint32_t uoff);
/* the allocator (arena or segment) holding unit uoff of this rank, or NULL */
ms_alloc_t *ms_alloc_of(ms_core_t *c, uint32_t uoff);
/* this rank's block at unit uoff (which must be allocated) */
ms_blk_t *ms_blk_at(ms_core_t *c, uint32_t uoff);

/* Where unit uoff of rank r's unit space is: *off the displacement of the
 * unit (encoded), *room the bytes from there to the end of its arena or
 * segment (0: no such unit).  May read r's segment directory (one round
 * trip, once per segment). */
int ms_unit_addr(mpistore_t *s, int r, uint32_t uoff, size_t *off, size_t *room);
/* Create this rank's arena segment i (owner only; publishes its address). */
int ms_seg_create(mpistore_t *s, unsigned i);
uint32_t ms_seg_base(const ms_core_t *c, unsigned i); /* == its size in units */
/* bytes of value memory in use and in existence on this rank */
void ms_alloc_usage(const ms_core_t *c, size_t *used, size_t *have);

#endif /* MPISTORE_ALLOC_H */
