/* Index levels (levels.c): geometry, directory cache, creation. */
#ifndef MPISTORE_LEVELS_H
#define MPISTORE_LEVELS_H

#include "rma.h"

/* What this rank knows of a home rank's grown index levels (its cache of
 * the home rank's level directory). */
typedef struct mpistore__levc {
    unsigned n; /* levels 1..n known */
    int host[MS_MAX_LEVELS];
    uint64_t addr[MS_MAX_LEVELS];
} mpistore__levc_t;

/* Attached memory that hosts grown index levels (bump-allocated). */
typedef struct mpistore__pool {
    unsigned char *mem;
    size_t size, used;
    MPI_Aint addr;
} mpistore__pool_t;

/* This rank's view of the index levels: its caches of every home rank's
 * level directory, and the memory hosting the levels it created. */
typedef struct mpistore__levels {
    mpistore__levc_t *cache; /* [nranks] */
    mpistore__pool_t pools[32];
    unsigned npools;
} mpistore__levels_t;

int mpistore__levels_init(mpistore__levels_t *lv, int nranks); /* 0, or -1 out of memory */
void mpistore__levels_free(mpistore__levels_t *lv,
                           const mpistore__wins_t *w); /* after the windows are freed */

/* Read home rank home's level directory into the cache (one round trip). */
int mpistore__levels_refresh(mpistore__levels_t *lv, mpistore__rma_t *r, int home);
/* Holding the level-0 home lock of a key of home rank home whose every level
 * is full: host level l.  1 created and published, 0 another rank claimed
 * it (its publication may still be on the way), or <0. */
int mpistore__level_create(mpistore__levels_t *lv, mpistore__rma_t *r, const mpistore__layout_t *y,
                           int home, unsigned l);
/* geometry of level l (any home rank) */
size_t mpistore__level_nslots(const mpistore__layout_t *y, unsigned l);
size_t mpistore__level_probe(const mpistore__layout_t *y, unsigned l);
size_t mpistore__level_nphys(const mpistore__layout_t *y, unsigned l);
void mpistore__level_offsets(const mpistore__layout_t *y, unsigned l, size_t *ctl, size_t *desc,
                             size_t *cnt, size_t *total);

#endif /* MPISTORE_LEVELS_H */
