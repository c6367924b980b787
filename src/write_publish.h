/* Making a write's new state visible (write_publish.c): publishing a slot,
 * giving back a lock unchanged, releasing the home slot after an insert,
 * and retiring the block a publication replaced.  Each is a few atomics and
 * one flush (docs/design.md, "Writer locking"). */
#ifndef MPISTORE_WRITE_PUBLISH_H
#define MPISTORE_WRITE_PUBLISH_H

#include "write_plan.h"

/* A new state of slot i of sn, which the write holds locked. */
typedef struct mpistore__pub {
    const mpistore__snap_t *sn;
    size_t i;
    uint32_t lockword;    /* the slot's lock word before the write locked it */
    int valid;            /* a block (1), or an empty slot (0: a delete) */
    uint32_t uoff, total; /* the block: unit offset in this rank's memory, bytes */
    int64_t count_delta;  /* the home rank's key count changes by this ... */
    int internal;         /* ... and its queue count too (a queue's key) */
    uint32_t kind;        /* the kind hint of the new state (MS_KIND_*) */
    int hinted;           /* an insert wrote the length and kind hints already */
} mpistore__pub_t;

/* Descriptor, length and kind hints, key count, and the unlock with the
 * next version, in one flush of the slot's and the home rank. */
int mpistore__publish(mpistore__core_t *c, const mpistore__pub_t *p);
/* Give back a slot lock (target rank, displacement of the lock word). */
int mpistore__unlock_unchanged(mpistore__core_t *c, int target, size_t lockoff,
                               const uint32_t *lockword);
/* Unlock home slot h after an insert into another slot: the same
 * descriptor, but the next version in it and in the lock word. */
int mpistore__release_home(mpistore__core_t *c, int home, size_t h, uint32_t lockword,
                           uint64_t desc);
/* Release the block named by old, which was just unpublished. */
int mpistore__retire(mpistore__core_t *c, uint64_t old);
/* The kind hint of a slot: one bit, set or cleared with an atomic OR / AND
 * so that the level mask beside it in level-0 slots stays (layout.h). */
int mpistore__set_kind(mpistore__core_t *c, int target, size_t off, uint32_t kind);
/* A counter's new value, holding its slot (adders drained): the word is
 * replaced, the slot unlocked with its descriptor unchanged; the add's
 * watch is recorded in w. */
int mpistore__publish_counter(const mpistore__write_t *x, const mpistore__snap_t *sn, size_t i,
                              int64_t value);

#endif /* MPISTORE_WRITE_PUBLISH_H */
