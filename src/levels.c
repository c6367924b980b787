/* Index levels hosted for any home rank (docs/design.md, "Index: levels
 * hosted by the rank that needed them"): their geometry, the cache of a
 * home rank's level directory, and the creation of a level in memory
 * attached to the dynamic window (window.c). */
#include "errors.h"
#include "levels.h"

#include <stdint.h>
#include <stdlib.h>

/* Each level 4x the last: fewer levels to read per snapshot (each is two
 * operations on the dynamic window, microseconds each on osc/rdma). */
size_t mpistore__level_nslots(const mpistore__layout_t *y, unsigned l)
{
    return y->nslots << (MS_LEVEL_GROWTH * l);
}

size_t mpistore__level_probe(const mpistore__layout_t *y, unsigned l)
{
    size_t n = mpistore__level_nslots(y, l);
    return n < MS_PROBE_MAX ? n : MS_PROBE_MAX;
}

size_t mpistore__level_nphys(const mpistore__layout_t *y, unsigned l)
{
    return mpistore__level_nslots(y, l) + mpistore__level_probe(y, l) - 1;
}

static size_t align64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

void mpistore__level_offsets(const mpistore__layout_t *y, unsigned l, size_t *ctl, size_t *desc,
                             size_t *cnt, size_t *total)
{
    size_t n = mpistore__level_nphys(y, l);
    *ctl = 0;
    *desc = align64(n * MS_CTL_WORDS * sizeof(uint32_t));
    *cnt = align64(*desc + n * sizeof(uint64_t));
    *total = align64(*cnt + n * sizeof(int64_t));
}

int mpistore__levels_refresh(mpistore__levels_t *lv, mpistore__rma_t *r, int home)
{
    uint32_t nlev = 0, claim[MS_MAX_LEVELS];
    uint64_t addr[MS_MAX_LEVELS];
    int rc = mpistore__read_u32s(r, home, MS_OFF_NLEV, &nlev, 1);
    if (rc == 0)
        rc = mpistore__read_u32s(r, home, MS_OFF_CLAIM, claim, MS_MAX_LEVELS);
    if (rc == 0)
        rc = mpistore__read_u64s(r, home, MS_OFF_LADDR, addr, MS_MAX_LEVELS);
    if (rc == 0)
        rc = mpistore__flush(r, home);
    if (rc)
        return rc;
    /* entries up to nlev were flushed before nlev was written; nlev was
     * read in the same flush, so they may have been read before it: a later
     * nlev can only name entries complete before it, never ones read torn */
    mpistore__levc_t *lc = &lv->cache[home];
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
static int pool_take(mpistore__levels_t *lv, mpistore__wins_t *w, size_t n, unsigned char **mem,
                     MPI_Aint *addr)
{
    mpistore__pool_t *p = lv->npools ? &lv->pools[lv->npools - 1] : NULL;
    if (!p || p->size - p->used < n) {
        size_t size = p ? 2 * p->size : ((size_t)1 << 20);
        if (size < n)
            size = n;
        if (lv->npools == sizeof lv->pools / sizeof lv->pools[0])
            return -MPISTORE_ENOMEM;
        unsigned char *m = NULL;
        uint64_t a = 0;
        int rc = mpistore__win_mem(w, size, 1, &m, &a);
        if (rc)
            return rc;
        p = &lv->pools[lv->npools++];
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

static void pool_untake(mpistore__levels_t *lv, size_t n)
{
    lv->pools[lv->npools - 1].used -= n; /* still zero: nothing was written */
}

int mpistore__level_create(mpistore__levels_t *lv, mpistore__rma_t *r, const mpistore__layout_t *y,
                           int home, unsigned l)
{
    size_t ctl, desc, cnt, total;
    uint32_t claim = 0;
    if (l >= MS_MAX_LEVELS)
        return -MPISTORE_ENOSPC;
    /* someone may host it already (then only its publication is pending) */
    int rc = mpistore__read_u32s(r, home, MS_OFF_CLAIM + 4u * l, &claim, 1);
    if (rc == 0)
        rc = mpistore__flush(r, home);
    if (rc || claim != 0)
        return rc;
    mpistore__level_offsets(y, l, &ctl, &desc, &cnt, &total);
    unsigned char *mem = NULL;
    MPI_Aint addr = 0;
    rc = pool_take(lv, &r->w, total, &mem, &addr);
    if (rc == -MPISTORE_ENOMEM)
        return mpistore__err(r->w.err, MPISTORE_ENOMEM,
                             "out of memory growing the index of rank %d to level %u (%zu bytes)",
                             home, l, total);
    if (rc)
        return rc;
    (void)mem;
    uint32_t zero = 0, me = (uint32_t)r->w.rank + 1u, got = 1;
    rc = mpistore__cas_u32(r, home, MS_OFF_CLAIM + 4u * l, &me, &zero, &got);
    if (rc == 0)
        rc = mpistore__flush(r, home);
    if (rc || got != 0) {
        pool_untake(lv, total);
        return rc;
    }
    /* ours: the address, flushed; then bit l of the level mask in every
     * level-0 slot of the home rank (what snapshots read), flushed; then the
     * count that directory refreshes read */
    uint64_t a64 = (uint64_t)addr;
    uint32_t n = l, bit = 1u << (MS_KIND_LEVEL_SHIFT + l);
    rc = mpistore__replace_u64(r, home, MS_OFF_LADDR + 8u * l, &a64);
    if (rc == 0)
        rc = mpistore__flush(r, home);
    for (size_t slot = 0; rc == 0 && slot < y->nphys; slot++)
        rc = mpistore__or_u32(r, home, mpistore__ctl_off(y, slot, MS_CTL_KIND), &bit);
    if (rc == 0)
        rc = mpistore__flush(r, home);
    if (rc == 0)
        rc = mpistore__replace_u32(r, home, MS_OFF_NLEV, &n);
    if (rc == 0)
        rc = mpistore__flush(r, home);
    return rc ? rc : 1;
}

int mpistore__levels_init(mpistore__levels_t *lv, int nranks)
{
    lv->cache = calloc((size_t)nranks, sizeof *lv->cache);
    return lv->cache ? 0 : -1;
}

void mpistore__levels_free(mpistore__levels_t *lv, const mpistore__wins_t *w)
{
    for (unsigned i = 0; i < lv->npools; i++)
        mpistore__win_unmap(w, lv->pools[i].mem, lv->pools[i].size);
    lv->npools = 0;
    free(lv->cache);
    lv->cache = NULL;
}
