/* Value memory: the owner-only allocator of a rank's arena and of its arena
 * segments, the segments themselves (memory mapped and attached through
 * window.c, their addresses published in the header), and where any rank's
 * unit lives (docs/design.md, "Memory management", "Value memory").
 *
 * Boundary tags live in the chunks' own 32-byte headers; free chunks sit in
 * 32 size-class lists (class = floor(log2(units))).  Only the owning rank
 * reads or writes this metadata.  A used chunk whose `dead` word another rank
 * has set (it unpublished the block) is reclaimed by reclaim() when an
 * allocation does not fit. */
#include "errors.h"
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define CHUNK_FREE 0x46524545u /* "FREE" */
#define CHUNK_USED 0x55534544u /* "USED" */

static unsigned bin_of(uint32_t units)
{
    unsigned b = 0;
    while (units >>= 1)
        b++;
    return b;
}

/* the chunk at unit u of arena or segment a (u relative to a) */
static mpistore__blk_t *at(const mpistore__alloc_t *a, uint32_t u)
{
    return (mpistore__blk_t *)(void *)(a->arena + ((size_t)u << a->shift));
}

static uint32_t link_next(const mpistore__blk_t *h)
{
    return (uint32_t)h->vlen;
}
static uint32_t link_prev(const mpistore__blk_t *h)
{
    return (uint32_t)(h->vlen >> 32);
}
static void set_links(mpistore__blk_t *h, uint32_t next, uint32_t prev)
{
    h->vlen = ((uint64_t)prev << 32) | next;
}

static void list_insert(mpistore__alloc_t *a, uint32_t u)
{
    mpistore__blk_t *h = at(a, u);
    unsigned b = bin_of(h->units);
    uint32_t head = a->bins[b];
    h->flags = CHUNK_FREE;
    set_links(h, head, NONE);
    if (head != NONE)
        set_links(at(a, head), link_next(at(a, head)), u);
    a->bins[b] = u;
}

static void list_remove(mpistore__alloc_t *a, uint32_t u)
{
    mpistore__blk_t *h = at(a, u);
    uint32_t next = link_next(h), prev = link_prev(h);
    if (prev != NONE)
        set_links(at(a, prev), next, link_prev(at(a, prev)));
    else
        a->bins[bin_of(h->units)] = next;
    if (next != NONE)
        set_links(at(a, next), link_next(at(a, next)), prev);
}

/* fix the prev_units tag of the chunk that follows u */
static void tag_follower(mpistore__alloc_t *a, uint32_t u)
{
    uint32_t nxt = u + at(a, u)->units;
    if (nxt < a->nunits)
        at(a, nxt)->prev_units = at(a, u)->units;
}

void mpistore__alloc_init(mpistore__alloc_t *a, unsigned char *arena, size_t arena_off,
                          size_t bytes, unsigned shift)
{
    memset(a, 0, sizeof *a);
    a->arena = arena;
    a->arena_off = arena_off;
    a->shift = shift;
    a->nunits = (uint32_t)(bytes >> shift);
    for (unsigned b = 0; b < MS_NBINS; b++)
        a->bins[b] = NONE;
    if (a->nunits > 0) {
        mpistore__blk_t *h = at(a, 0);
        memset(h, 0, sizeof *h);
        h->units = a->nunits;
        list_insert(a, 0);
    }
}

static uint32_t take(mpistore__alloc_t *a, uint32_t u, uint32_t n)
{
    mpistore__blk_t *h = at(a, u);
    list_remove(a, u);
    if (h->units > n) {
        uint32_t rest = u + n;
        mpistore__blk_t *r = at(a, rest);
        r->units = h->units - n;
        r->prev_units = n;
        r->dead = 0;
        h->units = n;
        tag_follower(a, rest);
        list_insert(a, rest);
    }
    h->flags = CHUNK_USED;
    h->dead = 0;
    a->used_units += n;
    return u;
}

static uint32_t try_alloc(mpistore__alloc_t *a, uint32_t n)
{
    unsigned b = bin_of(n);
    for (uint32_t u = a->bins[b]; u != NONE; u = link_next(at(a, u)))
        if (at(a, u)->units >= n)
            return take(a, u, n);
    for (unsigned c = b + 1; c < MS_NBINS; c++)
        if (a->bins[c] != NONE)
            return take(a, a->bins[c], n);
    return NONE;
}

static void free_local(mpistore__alloc_t *a, uint32_t u)
{
    mpistore__blk_t *h = at(a, u);
    a->used_units -= h->units;
    uint32_t nxt = u + h->units;
    if (nxt < a->nunits && at(a, nxt)->flags == CHUNK_FREE) {
        list_remove(a, nxt);
        h->units += at(a, nxt)->units;
    }
    if (u > 0) {
        uint32_t prv = u - h->prev_units;
        if (at(a, prv)->flags == CHUNK_FREE) {
            list_remove(a, prv);
            at(a, prv)->units += h->units;
            u = prv;
            h = at(a, u);
        }
    }
    tag_follower(a, u);
    list_insert(a, u);
}

/* ---- value memory: unit space = arena [0, n0) + segment i [n0 2^i, n0 2^(i+1)) ---- */

uint32_t mpistore__seg_base(const mpistore__mem_t *m, unsigned i)
{
    uint64_t b = (uint64_t)m->alloc.nunits << i;
    return b >= MS_UNIT_SPACE ? MS_UNIT_SPACE : (uint32_t)b;
}

/* segment holding unit u (u >= n0), or MS_MAX_SEGS */
static unsigned seg_of(const mpistore__mem_t *m, uint32_t u)
{
    unsigned i = 0;
    while (i < MS_MAX_SEGS && mpistore__seg_base(m, i + 1) <= u &&
           mpistore__seg_base(m, i + 1) < MS_UNIT_SPACE)
        i++;
    return i < MS_MAX_SEGS && u >= mpistore__seg_base(m, i) ? i : MS_MAX_SEGS;
}

/* Units of segment i, clipped to the unit space and to max_units (the
 * same on every rank: the options are agreed on at open), so that a reader
 * never reads past the end of another rank's segment. */
static uint32_t seg_units(const mpistore__mem_t *m, unsigned i)
{
    uint32_t b = mpistore__seg_base(m, i);
    uint64_t e = (uint64_t)b * 2;
    if (e > MS_UNIT_SPACE)
        e = MS_UNIT_SPACE;
    if (e > m->max_units)
        e = m->max_units;
    return e > b ? (uint32_t)(e - b) : 0;
}

mpistore__alloc_t *mpistore__alloc_of(mpistore__mem_t *m, uint32_t u)
{
    if (u < m->alloc.nunits)
        return &m->alloc;
    unsigned i = seg_of(m, u);
    return i < MS_MAX_SEGS && m->segmem[i] ? &m->seg[i] : NULL;
}

mpistore__blk_t *mpistore__blk_at(mpistore__mem_t *m, uint32_t u)
{
    mpistore__alloc_t *a = mpistore__alloc_of(m, u);
    return at(a, u - a->base);
}

void mpistore__alloc_usage(const mpistore__mem_t *m, size_t *used, size_t *have)
{
    size_t unit = (size_t)1 << m->alloc.shift;
    *used = (size_t)m->alloc.used_units * unit;
    *have = (size_t)m->alloc.nunits * unit;
    for (unsigned i = 0; i < MS_MAX_SEGS; i++)
        if (m->segmem[i]) {
            *used += (size_t)m->seg[i].used_units * unit;
            *have += (size_t)m->seg[i].nunits * unit;
        }
}

int mpistore__seg_create(mpistore__mem_t *m, mpistore__rma_t *r, unsigned i)
{
    uint32_t base = mpistore__seg_base(m, i), n = seg_units(m, i);
    uint64_t a64 = 0;
    if (i >= MS_MAX_SEGS || base >= MS_UNIT_SPACE || n == 0)
        return -MPISTORE_ENOSPC;
    size_t bytes = (size_t)n << m->alloc.shift;
    unsigned char *mem = NULL;
    int rc = mpistore__win_mem(&r->w, bytes, 0, &mem, &a64);
    if (rc == -MPISTORE_ENOMEM)
        return mpistore__err(r->w.err, MPISTORE_ENOMEM,
                             "out of memory growing the value memory of rank %d by %zu bytes",
                             r->w.rank, bytes);
    if (rc)
        return rc;
    m->segmem[i] = mem;
    mpistore__alloc_init(&m->seg[i], mem, MS_DYN | (size_t)a64, bytes, m->alloc.shift);
    m->seg[i].base = base;
    /* the address is in place before any descriptor can name the segment */
    m->segaddr[(size_t)r->w.rank * MS_MAX_SEGS + i] = a64;
    rc = mpistore__replace_u64(r, r->w.rank, MS_OFF_SADDR + 8u * i, &a64);
    if (rc == 0)
        rc = mpistore__flush_self(r);
    return rc;
}

int mpistore__unit_addr(mpistore__mem_t *m, mpistore__rma_t *r, int rank, uint32_t u, size_t *off,
                        size_t *room)
{
    unsigned shift = m->alloc.shift;
    *off = 0;
    *room = 0;
    if (u < m->alloc.nunits) {
        *off = m->alloc.arena_off + ((size_t)u << shift);
        *room = (size_t)(m->alloc.nunits - u) << shift;
        return 0;
    }
    unsigned i = seg_of(m, u);
    if (i >= MS_MAX_SEGS)
        return 0;
    uint64_t *a = &m->segaddr[(size_t)rank * MS_MAX_SEGS + i];
    if (*a == 0 && rank != r->w.rank) { /* published before any descriptor named it */
        int rc = mpistore__read_u64(r, rank, MS_OFF_SADDR + 8u * i, a);
        if (rc == 0)
            rc = mpistore__flush(r, rank);
        if (rc)
            return rc;
    }
    if (*a == 0)
        return 0;
    uint32_t b = mpistore__seg_base(m, i);
    *off = MS_DYN | (size_t)(*a + ((uint64_t)(u - b) << shift));
    *room = (size_t)(b + seg_units(m, i) - u) << shift;
    return 0;
}

void mpistore__free_block(mpistore__mem_t *m, uint32_t u)
{
    mpistore__alloc_t *a = mpistore__alloc_of(m, u);
    free_local(a, u - a->base);
}

/* Free every used chunk of arena a whose dead word another rank has set. */
static int reclaim(mpistore__rma_t *r, mpistore__alloc_t *a, int *freed)
{
    size_t n = 0, i = 0;
    int rc = 0;
    *freed = 0;
    for (uint32_t u = 0; u < a->nunits; u += at(a, u)->units)
        n += at(a, u)->flags == CHUNK_USED;
    if (n == 0)
        return 0;
    uint64_t *dead = calloc(n, sizeof *dead);
    uint32_t *where = calloc(n, sizeof *where);
    if (!dead || !where) {
        rc =
            mpistore__err(r->w.err, MPISTORE_ENOMEM, "out of memory while reclaiming value memory");
        goto out;
    }
    for (uint32_t u = 0; u < a->nunits && rc == 0; u += at(a, u)->units) {
        if (at(a, u)->flags != CHUNK_USED)
            continue;
        where[i] = u;
        rc = mpistore__read_u64(r, r->w.rank, a->arena_off + ((size_t)u << a->shift), &dead[i]);
        i++;
    }
    if (rc == 0)
        rc = mpistore__flush(r, r->w.rank);
    for (size_t j = 0; rc == 0 && j < i; j++) {
        if (dead[j]) {
            free_local(a, where[j]);
            (*freed)++;
        }
    }
out:
    free(dead);
    free(where);
    return rc;
}

/* The arena, then every segment that exists; after a reclamation pass
 * over all of them, again; then a new segment (design.md, "Growth"). */
int mpistore__alloc_block(mpistore__mem_t *m, mpistore__rma_t *r, size_t bytes, uint32_t *uoff)
{
    mpistore__alloc_t *arenas[1 + MS_MAX_SEGS];
    unsigned na = 0;
    size_t unit = (size_t)1 << m->alloc.shift;
    size_t n = (bytes + unit - 1) / unit;
    if (n == 0 || n >= MS_UNIT_SPACE)
        return -MPISTORE_ENOSPC;
    arenas[na++] = &m->alloc;
    for (unsigned i = 0; i < MS_MAX_SEGS; i++)
        if (m->segmem[i])
            arenas[na++] = &m->seg[i];
    for (int pass = 0; pass < 2; pass++) {
        int freed = 0;
        for (unsigned i = 0; i < na; i++) {
            if (n > arenas[i]->nunits)
                continue;
            uint32_t u = try_alloc(arenas[i], (uint32_t)n);
            if (u != NONE) {
                *uoff = arenas[i]->base + u;
                return 0;
            }
        }
        for (unsigned i = 0; pass == 0 && i < na; i++) {
            int f = 0, rc = reclaim(r, arenas[i], &f);
            if (rc)
                return rc;
            freed += f;
        }
        if (!freed)
            break;
    }
    /* grow: the first segment not made yet that can hold the block and lies
     * within the limit */
    for (unsigned i = 0; i < MS_MAX_SEGS; i++) {
        uint32_t base = mpistore__seg_base(m, i);
        if (base >= m->max_units || base >= MS_UNIT_SPACE)
            break;
        if (m->segmem[i] || seg_units(m, i) < n)
            continue;
        int rc = mpistore__seg_create(m, r, i); /* sized within the limit */
        if (rc)
            return rc;
        uint32_t u = try_alloc(&m->seg[i], (uint32_t)n);
        if (u == NONE)
            return -MPISTORE_ENOSPC;
        *uoff = base + u;
        return 0;
    }
    return -MPISTORE_ENOSPC;
}

int mpistore__mem_init(mpistore__mem_t *m, int nranks)
{
    m->segaddr = calloc((size_t)nranks * MS_MAX_SEGS, sizeof *m->segaddr);
    return m->segaddr ? 0 : -1;
}

void mpistore__mem_free(mpistore__mem_t *m, const mpistore__wins_t *w)
{
    for (unsigned i = 0; i < MS_MAX_SEGS; i++)
        if (m->segmem[i])
            mpistore__win_unmap(w, m->segmem[i], (size_t)m->seg[i].nunits << m->seg[i].shift);
    free(m->segaddr);
    m->segaddr = NULL;
}
