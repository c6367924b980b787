/* Growth beyond the allocated window (docs/design.md, "Growth"): the
 * dynamic window and its flushes, this rank's arena segments, index levels
 * hosted for any home rank, the caches of other ranks' directories, and
 * the store-wide failure word. */
#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS (not in POSIX 2008; Linux and the BSDs have it) */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Grown memory comes from mmap: whole pages that share nothing with the
 * heap (osc/ucx registers attached memory by page and crashed in
 * MPI_Win_free when small heap segments had been attached), zero, and
 * resident only as touched. */
static size_t page_round(size_t n)
{
    long p = sysconf(_SC_PAGESIZE);
    size_t ps = p > 0 ? (size_t)p : 4096;
    return (n + ps - 1) / ps * ps;
}

static void *map_pages(size_t n)
{
    void *m = mmap(NULL, page_round(n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

MPI_Aint ms_grow_warm_word(ms_core_t *c)
{
    MPI_Aint a = 0;
    unsigned char *m = map_pages(sizeof *c->dwarm);
    if (!m)
        return 0;
    if (MPI_Win_attach(c->dwin, m, (MPI_Aint)page_round(sizeof *c->dwarm)) != MPI_SUCCESS ||
        MPI_Get_address(m, &a) != MPI_SUCCESS) {
        munmap(m, page_round(sizeof *c->dwarm));
        return 0;
    }
    c->dwarm = (int64_t *)(void *)m;
    return a;
}

int ms_grow_init(ms_core_t *c)
{
    size_t n = (size_t)c->nranks;
    c->levc = calloc(n, sizeof *c->levc);
    c->segaddr = calloc(n * MS_MAX_SEGS, sizeof *c->segaddr);
    c->dyn_list = calloc(n, sizeof *c->dyn_list);
    c->dyn_mark = calloc(n, 1);
    return c->levc && c->segaddr && c->dyn_list && c->dyn_mark ? 0 : -1;
}

void ms_grow_free(ms_core_t *c)
{
    for (unsigned i = 0; c->nxwin == 0 && i < MS_MAX_SEGS; i++)
        if (c->segmem[i])
            munmap(c->segmem[i], page_round((size_t)c->seg[i].nunits << c->seg[i].shift));
    for (unsigned i = 0; c->nxwin == 0 && i < c->npools; i++)
        munmap(c->pools[i].mem, page_round(c->pools[i].size));
    if (c->dwarm) /* ms_rq_warmup's page, attached until the window was freed */
        munmap(c->dwarm, page_round(sizeof *c->dwarm));
    free(c->levc);
    free(c->segaddr);
    free(c->dyn_list);
    free(c->dyn_mark);
}

/* Grown memory of n bytes (zeroed if zero): attached to the dynamic window,
 * or on a one-rank store a window of its own.  *addr is what goes after
 * MS_DYN in a displacement. */
static int grow_mem(mpistore_t *s, size_t n, int zero, unsigned char **mem, uint64_t *addr)
{
    ms_core_t *c = s->core;
    unsigned char *m = NULL;
    MPI_Aint a = 0;
    int rc;
    if (c->dwin == MPI_WIN_NULL) {
        MPI_Win w = MPI_WIN_NULL;
        if (c->nxwin == MS_MAX_XWIN)
            return -MPISTORE_ENOMEM;
        rc = MPI_Win_allocate((MPI_Aint)n, 1, MPI_INFO_NULL, c->comm, &m, &w);
        if (rc == MPI_SUCCESS) {
            MPI_Win_set_errhandler(w, MPI_ERRORS_RETURN);
            rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, w);
            if (rc != MPI_SUCCESS)
                MPI_Win_free(&w);
        }
        if (rc != MPI_SUCCESS)
            return -MPISTORE_ENOMEM; /* most likely memory */
        if (zero)
            memset(m, 0, n);
        if (zero && (rc = MPI_Win_sync(w)) != MPI_SUCCESS) {
            MPI_Win_unlock_all(w);
            MPI_Win_free(&w);
            return ms_mpierr(s, rc, "MPI_Win_sync", c->rank);
        }
        c->xwin[c->nxwin++] = w;
        *mem = m;
        *addr = (uint64_t)c->nxwin << MS_XWIN_SHIFT;
        return 0;
    }
    (void)zero; /* mapped pages are zero */
    m = map_pages(n);
    if (!m)
        return -MPISTORE_ENOMEM;
    rc = MPI_Win_attach(c->dwin, m, (MPI_Aint)page_round(n));
    if (rc == MPI_SUCCESS)
        rc = MPI_Get_address(m, &a);
    if (rc != MPI_SUCCESS) {
        munmap(m, page_round(n));
        return ms_mpierr(s, rc, "MPI_Win_attach", c->rank);
    }
    *mem = m;
    *addr = (uint64_t)a;
    return 0;
}

/* Attached memory is not detached: MPI_Win_free of the dynamic window
 * (after which it is freed) ends its attachment, and Open MPI 4.1's osc/ucx
 * crashed in MPI_Win_free (ucp_mem_unmap) when segments had been detached
 * first. */
void ms_grow_detach(ms_core_t *c)
{
    for (unsigned i = 0; i < c->nxwin; i++) {
        (void)MPI_Win_unlock_all(c->xwin[i]);
        (void)MPI_Win_free(&c->xwin[i]);
    }
}

int ms_dyn_flush(mpistore_t *s)
{
    ms_core_t *c = s->core;
    int rc = MPI_SUCCESS, bad = -1;
    for (unsigned x = 0; c->dwin == MPI_WIN_NULL && c->dyn_n && x < c->nxwin; x++) {
        int e = MPI_Win_flush(0, c->xwin[x]);
        if (e != MPI_SUCCESS && rc == MPI_SUCCESS)
            rc = e, bad = 0;
    }
    for (size_t i = 0; i < c->dyn_n; i++) {
        int r = c->dyn_list[i];
        int e = c->dwin == MPI_WIN_NULL ? MPI_SUCCESS : MPI_Win_flush(r, c->dwin);
        c->dyn_mark[r] = 0;
        if (e != MPI_SUCCESS && rc == MPI_SUCCESS)
            rc = e, bad = r;
    }
    c->dyn_n = 0;
    return rc == MPI_SUCCESS ? 0 : ms_mpierr(s, rc, "MPI_Win_flush (dynamic window)", bad);
}

void ms_dyn_complete(ms_core_t *c)
{
    for (unsigned x = 0; c->dwin == MPI_WIN_NULL && c->dyn_n && x < c->nxwin; x++)
        (void)MPI_Win_flush(0, c->xwin[x]);
    for (size_t i = 0; i < c->dyn_n; i++) {
        if (c->dwin != MPI_WIN_NULL)
            (void)MPI_Win_flush(c->dyn_list[i], c->dwin);
        c->dyn_mark[c->dyn_list[i]] = 0;
    }
    c->dyn_n = 0;
}

/* ---- value memory: unit space = arena [0, n0) + segment i [n0 2^i, n0 2^(i+1)) ---- */

uint32_t ms_seg_base(const ms_core_t *c, unsigned i)
{
    uint64_t b = (uint64_t)c->alloc.nunits << i;
    return b >= MS_UNIT_SPACE ? MS_UNIT_SPACE : (uint32_t)b;
}

/* segment holding unit u (u >= n0), or MS_MAX_SEGS */
static unsigned seg_of(const ms_core_t *c, uint32_t u)
{
    unsigned i = 0;
    while (i < MS_MAX_SEGS && ms_seg_base(c, i + 1) <= u && ms_seg_base(c, i + 1) < MS_UNIT_SPACE)
        i++;
    return i < MS_MAX_SEGS && u >= ms_seg_base(c, i) ? i : MS_MAX_SEGS;
}

/* Units of segment i, clipped to the unit space and to max_units (the
 * same on every rank: the options are agreed on at open), so that a reader
 * never reads past the end of another rank's segment. */
static uint32_t seg_units(const ms_core_t *c, unsigned i)
{
    uint32_t b = ms_seg_base(c, i);
    uint64_t e = (uint64_t)b * 2;
    if (e > MS_UNIT_SPACE)
        e = MS_UNIT_SPACE;
    if (e > c->max_units)
        e = c->max_units;
    return e > b ? (uint32_t)(e - b) : 0;
}

ms_alloc_t *ms_alloc_of(ms_core_t *c, uint32_t u)
{
    if (u < c->alloc.nunits)
        return &c->alloc;
    unsigned i = seg_of(c, u);
    return i < MS_MAX_SEGS && c->segmem[i] ? &c->seg[i] : NULL;
}

ms_blk_t *ms_blk_at(ms_core_t *c, uint32_t u)
{
    ms_alloc_t *a = ms_alloc_of(c, u);
    return (ms_blk_t *)(void *)(a->arena + ((size_t)(u - a->base) << a->shift));
}

int ms_seg_create(mpistore_t *s, unsigned i)
{
    ms_core_t *c = s->core;
    uint32_t base = ms_seg_base(c, i), n = seg_units(c, i);
    uint64_t a64 = 0;
    if (i >= MS_MAX_SEGS || base >= MS_UNIT_SPACE || n == 0)
        return -MPISTORE_ENOSPC;
    size_t bytes = (size_t)n << c->alloc.shift;
    unsigned char *mem = NULL;
    int rc = grow_mem(s, bytes, 0, &mem, &a64);
    if (rc == -MPISTORE_ENOMEM)
        return ms_err(s, MPISTORE_ENOMEM,
                      "out of memory growing the value memory of rank %d by %zu bytes", c->rank,
                      bytes);
    if (rc)
        return rc;
    c->segmem[i] = mem;
    ms_alloc_init(&c->seg[i], mem, MS_DYN | (size_t)a64, bytes, c->alloc.shift);
    c->seg[i].base = base;
    /* the address is in place before any descriptor can name the segment */
    c->segaddr[(size_t)c->rank * MS_MAX_SEGS + i] = a64;
    rc = ms_put_u64(s, c->rank, MS_OFF_SADDR + 8u * i, &a64);
    if (rc == 0)
        rc = ms_flush_self(s);
    return rc;
}

int ms_unit_addr(mpistore_t *s, int r, uint32_t u, size_t *off, size_t *room)
{
    ms_core_t *c = s->core;
    unsigned shift = c->alloc.shift;
    *off = 0;
    *room = 0;
    if (u < c->alloc.nunits) {
        *off = c->off_arena + ((size_t)u << shift);
        *room = (size_t)(c->alloc.nunits - u) << shift;
        return 0;
    }
    unsigned i = seg_of(c, u);
    if (i >= MS_MAX_SEGS)
        return 0;
    uint64_t *a = &c->segaddr[(size_t)r * MS_MAX_SEGS + i];
    if (*a == 0 && r != c->rank) { /* published before any descriptor named it */
        int rc = ms_read_u64(s, r, MS_OFF_SADDR + 8u * i, a);
        if (rc == 0)
            rc = ms_flush(s, r);
        if (rc)
            return rc;
    }
    if (*a == 0)
        return 0;
    uint32_t b = ms_seg_base(c, i);
    *off = MS_DYN | (size_t)(*a + ((uint64_t)(u - b) << shift));
    *room = (size_t)(b + seg_units(c, i) - u) << shift;
    return 0;
}

/* ---- index levels ---- */

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
        int rc = grow_mem(s, size, 1, &m, &a);
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

/* ---- the store-wide failure word ---- */

int ms_fail_publish(mpistore_t *s, int code, unsigned kind)
{
    ms_core_t *c = s->core;
    uint64_t w = ((uint64_t)kind << 40) | ((uint64_t)(uint32_t)-code << 32) |
                 (uint64_t)(c->rank + 1);
    char keep[MS_ERRMSG_LEN];
    memcpy(keep, s->errmsg, sizeof keep); /* the caller's message stays */
    int rc = 0;
    for (int r = 0; r < c->nranks && rc == 0; r++)
        rc = ms_put_u64(s, r, MS_OFF_FAIL, &w);
    if (rc == 0)
        (void)ms_flush_all(s);
    memcpy(s->errmsg, keep, sizeof keep);
    return code;
}

static const char *fail_advice(unsigned kind)
{
    switch (kind) {
    case MS_FAIL_KEYS:
        return "raise max_keys_per_rank (environment MPISTORE_MAX_KEYS_PER_RANK; 0 = no limit)";
    case MS_FAIL_BYTES:
        return "raise max_bytes_per_rank (MPISTORE_MAX_BYTES_PER_RANK) or bytes_per_rank "
               "(MPISTORE_BYTES_PER_RANK)";
    case MS_FAIL_LEVELS:
        return "raise keys_per_rank (environment MPISTORE_KEYS_PER_RANK)";
    default:
        return "the machine's memory is exhausted";
    }
}

/* This rank's copy of the failure word: a local read, not counted as an
 * operation's round trip. */
static int fail_word(mpistore_t *s, uint64_t *w)
{
    ms_core_t *c = s->core;
    uint64_t unused = 0;
    int rc = MPI_Fetch_and_op(&unused, w, MPI_UINT64_T, c->rank, MS_OFF_FAIL, MPI_NO_OP, c->win);
    if (rc == MPI_SUCCESS)
        rc = MPI_Win_flush(c->rank, c->win);
    return rc == MPI_SUCCESS ? 0 : ms_mpierr(s, rc, "MPI_Fetch_and_op (failure word)", c->rank);
}

int ms_fail_clear(mpistore_t *s)
{
    static const uint64_t zero = 0;
    ms_core_t *c = s->core;
    uint64_t w = 0;
    int rc = fail_word(s, &w);
    for (int r = 0; rc == 0 && w != 0 && r < c->nranks; r++)
        rc = ms_put_u64(s, r, MS_OFF_FAIL, &zero);
    if (rc == 0 && w != 0)
        rc = ms_flush_all(s);
    return rc;
}

int ms_fail_check(mpistore_t *s, const char *what)
{
    uint64_t w = 0;
    int rc = fail_word(s, &w);
    if (rc || w == 0)
        return rc;
    int code = (int)((w >> 32) & 0xFFu), rank = (int)(w & 0xFFFFFFFFu) - 1;
    unsigned kind = (unsigned)(w >> 40) & 0xFFu;
    if (code <= 0 || code >= MPISTORE_ERRNO_COUNT_)
        code = MPISTORE_ENOSPC;
    return ms_err(s, code,
                  "the store is full: rank %d failed a write with %s, so %s cannot complete; %s",
                  rank, mpistore_errname(code), what, fail_advice(kind));
}

const char *ms_fail_advice(unsigned kind)
{
    return fail_advice(kind);
}
