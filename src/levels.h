/* Index levels (levels.c): geometry, directory cache, creation. */
#ifndef MPISTORE_LEVELS_H
#define MPISTORE_LEVELS_H

#include "core.h"

/* Read home rank r's level directory into the cache (one round trip). */
int ms_levels_refresh(mpistore_t *s, int r);
/* Holding the level-0 home lock of a key of home rank r whose every level
 * is full: host level l.  1 created and published, 0 another rank claimed
 * it (its publication may still be on the way), or <0. */
int ms_level_create(mpistore_t *s, int r, unsigned l);
/* geometry of level l (any home rank) */
size_t ms_level_nslots(const ms_core_t *c, unsigned l);
size_t ms_level_probe(const ms_core_t *c, unsigned l);
size_t ms_level_nphys(const ms_core_t *c, unsigned l);
void ms_level_offsets(const ms_core_t *c, unsigned l, size_t *ctl, size_t *desc, size_t *cnt,
                      size_t *total);

#endif /* MPISTORE_LEVELS_H */
