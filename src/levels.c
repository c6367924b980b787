/* Index levels hosted for any home rank (docs/design.md, "Index: levels
 * hosted by the rank that needed them"): their geometry, the cache of a
 * home rank's level directory, and the creation of a level in memory
 * attached to the dynamic window (window.c). */
#include "errors.h"
#include "core.h"
#include "rma.h"
#include "window.h"
#include "levels.h"

#include <stdint.h>

/* Each level 4x the last: fewer levels to read per snapshot (each is two
 * operations on the dynamic window, microseconds each on osc/rdma). */
size_t ms_level_nslots(const ms_core_t *c, unsigned l)
{
    return c->nslots << (MS_LEVEL_GROWTH * l);
}

size_t ms_level_probe(const ms_core_t *c, unsigned l)
{
    size_t n = ms_level_nslots(c, l);
    return n < MS_PROBE_MAX ? n : MS_PROBE_MAX;
}

size_t ms_level_nphys(const ms_core_t *c, unsigned l)
{
    return ms_level_nslots(c, l) + ms_level_probe(c, l) - 1;
}

static size_t align64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

void ms_level_offsets(const ms_core_t *c, unsigned l, size_t *ctl, size_t *desc, size_t *cnt,
                      size_t *total)
{
    size_t n = ms_level_nphys(c, l);
    *ctl = 0;
    *desc = align64(n * MS_CTL_WORDS * sizeof(uint32_t));
    *cnt = align64(*desc + n * sizeof(uint64_t));
    *total = align64(*cnt + n * sizeof(int64_t));
}

int ms_levels_refresh(mpistore_t *s, int r)
{
    ms_core_t *c = s->core;
    uint32_t nlev = 0, claim[MS_MAX_LEVELS];
    uint64_t addr[MS_MAX_LEVELS];
    int rc = ms_getacc_u32(s, r, MS_OFF_NLEV, &nlev, 1);
    if (rc == 0)
        rc = ms_getacc_u32(s, r, MS_OFF_CLAIM, claim, MS_MAX_LEVELS);
    if (rc == 0)
        rc = ms_getacc_u64(s, r, MS_OFF_LADDR, addr, MS_MAX_LEVELS);
    if (rc == 0)
        rc = ms_flush(s, r);
    if (rc)
        return rc;
    /* entries up to nlev were flushed before nlev was written; nlev was
     * read in the same flush, so they may have been read before it: a later
     * nlev can only name entries complete before it, never ones read torn */
    ms_levc_t *lc = &c->levc[r];
    for (unsigned l = lc->n + 1; l <= nlev && l < MS_MAX_LEVELS; l++) {
        if (claim[l] == 0 || addr[l] == 0)
            break; /* read before they landed: the next refresh gets them */
        lc->host[l] = (int)claim[l] - 1;
        lc->addr[l] = addr[l];
        lc->n = l;
    }
    return 0;
}

/* n bytes of zeroed, attached memory for a level; its address in *addr */
static int pool_take(mpistore_t *s, size_t n, unsigned char **mem, MPI_Aint *addr)
{
    ms_core_t *c = s->core;
    ms_pool_t *p = c->npools ? &c->pools[c->npools - 1] : NULL;
    if (!p || p->size - p->used < n) {
        size_t size = p ? 2 * p->size : ((size_t)1 << 20);
        if (size < n)
            size = n;
        if (c->npools == sizeof c->pools / sizeof c->pools[0])
            return -MPISTORE_ENOMEM;
        unsigned char *m = NULL;
        uint64_t a = 0;
        int rc = ms_win_mem(s, size, 1, &m, &a);
        if (rc)
            return rc;
        p = &c->pools[c->npools++];
        p->mem = m;
        p->size = size;
        p->used = 0;
        p->addr = a;
    }
    *mem = p->mem + p->used;
    *addr = (MPI_Aint)((uint64_t)p->addr + p->used);
    p->used += n;
    return 0;
}

static void pool_untake(ms_core_t *c, size_t n)
{
    c->pools[c->npools - 1].used -= n; /* still zero: nothing was written */
}

int ms_level_create(mpistore_t *s, int r, unsigned l)
{
    ms_core_t *c = s->core;
    size_t ctl, desc, cnt, total;
    uint32_t claim = 0;
    if (l >= MS_MAX_LEVELS)
        return -MPISTORE_ENOSPC;
    /* someone may host it already (then only its publication is pending) */
    int rc = ms_getacc_u32(s, r, MS_OFF_CLAIM + 4u * l, &claim, 1);
    if (rc == 0)
        rc = ms_flush(s, r);
    if (rc || claim != 0)
        return rc;
    ms_level_offsets(c, l, &ctl, &desc, &cnt, &total);
    unsigned char *mem = NULL;
    MPI_Aint addr = 0;
    rc = pool_take(s, total, &mem, &addr);
    if (rc == -MPISTORE_ENOMEM)
        return ms_err(s, MPISTORE_ENOMEM,
                      "out of memory growing the index of rank %d to level %u (%zu bytes)", r, l,
                      total);
    if (rc)
        return rc;
    (void)mem;
    uint32_t zero = 0, me = (uint32_t)c->rank + 1u, got = 1;
    rc = ms_cas_u32(s, r, MS_OFF_CLAIM + 4u * l, &me, &zero, &got);
    if (rc == 0)
        rc = ms_flush(s, r);
    if (rc || got != 0) {
        pool_untake(c, total);
        return rc;
    }
    /* ours: the address, flushed; then bit l of the level mask in every
     * level-0 slot of the home rank (what snapshots read), flushed; then the
     * count that directory refreshes read */
    uint64_t a64 = (uint64_t)addr;
    uint32_t n = l, bit = 1u << (MS_KIND_LEVEL_SHIFT + l);
    rc = ms_put_u64(s, r, MS_OFF_LADDR + 8u * l, &a64);
    if (rc == 0)
        rc = ms_flush(s, r);
    for (size_t slot = 0; rc == 0 && slot < c->nphys; slot++)
        rc = ms_or_u32(s, r, ms_ctl_off(c, slot, MS_CTL_KIND), &bit);
    if (rc == 0)
        rc = ms_flush(s, r);
    if (rc == 0)
        rc = ms_put_u32(s, r, MS_OFF_NLEV, &n);
    if (rc == 0)
        rc = ms_flush(s, r);
    return rc ? rc : 1;
}
