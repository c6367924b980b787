/* Value memory: the owner-only allocator of a rank's arena and of its arena
 * segments, the segments themselves (memory mapped and attached through
 * window.c, their addresses published in the header), and where any rank's
 * unit lives (docs/design.md, "Memory management", "Value memory").
 *
 * Boundary tags live in the chunks' own 32-byte headers; free chunks sit in
 * 32 size-class lists (class = floor(log2(units))).  Only the owning rank
 * reads or writes this metadata.  A used chunk whose `dead` word another rank
 * has set (it unpublished the block) is reclaimed by ms_reclaim() when an
 * allocation does not fit. */
#include "errors.h"
#include "core.h"
#include "rma.h"
#include "window.h"
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
static ms_blk_t *at(const ms_alloc_t *a, uint32_t u)
{
    return (ms_blk_t *)(void *)(a->arena + ((size_t)u << a->shift));
}

static uint32_t link_next(const ms_blk_t *h)
{
    return (uint32_t)h->vlen;
}
static uint32_t link_prev(const ms_blk_t *h)
{
    return (uint32_t)(h->vlen >> 32);
}
static void set_links(ms_blk_t *h, uint32_t next, uint32_t prev)
{
    h->vlen = ((uint64_t)prev << 32) | next;
}

static void list_insert(ms_alloc_t *a, uint32_t u)
{
    ms_blk_t *h = at(a, u);
    unsigned b = bin_of(h->units);
    uint32_t head = a->bins[b];
    h->flags = CHUNK_FREE;
    set_links(h, head, NONE);
    if (head != NONE)
        set_links(at(a, head), link_next(at(a, head)), u);
    a->bins[b] = u;
}

static void list_remove(ms_alloc_t *a, uint32_t u)
{
    ms_blk_t *h = at(a, u);
    uint32_t next = link_next(h), prev = link_prev(h);
    if (prev != NONE)
        set_links(at(a, prev), next, link_prev(at(a, prev)));
    else
        a->bins[bin_of(h->units)] = next;
    if (next != NONE)
        set_links(at(a, next), link_next(at(a, next)), prev);
}

/* fix the prev_units tag of the chunk that follows u */
static void tag_follower(ms_alloc_t *a, uint32_t u)
{
    uint32_t nxt = u + at(a, u)->units;
    if (nxt < a->nunits)
        at(a, nxt)->prev_units = at(a, u)->units;
}

void ms_alloc_init(ms_alloc_t *a, unsigned char *arena, size_t arena_off, size_t bytes,
                   unsigned shift)
{
    memset(a, 0, sizeof *a);
    a->arena = arena;
    a->arena_off = arena_off;
    a->shift = shift;
    a->nunits = (uint32_t)(bytes >> shift);
    for (unsigned b = 0; b < MS_NBINS; b++)
        a->bins[b] = NONE;
    if (a->nunits > 0) {
        ms_blk_t *h = at(a, 0);
        memset(h, 0, sizeof *h);
        h->units = a->nunits;
        list_insert(a, 0);
    }
}

static uint32_t take(ms_alloc_t *a, uint32_t u, uint32_t n)
{
    ms_blk_t *h = at(a, u);
    list_remove(a, u);
    if (h->units > n) {
        uint32_t rest = u + n;
        ms_blk_t *r = at(a, rest);
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

static uint32_t try_alloc(ms_alloc_t *a, uint32_t n)
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

static void free_local(ms_alloc_t *a, uint32_t u)
{
    ms_blk_t *h = at(a, u);
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
    return at(a, u - a->base);
}

void ms_alloc_usage(const ms_core_t *c, size_t *used, size_t *have)
{
    size_t unit = (size_t)1 << c->alloc.shift;
    *used = (size_t)c->alloc.used_units * unit;
    *have = (size_t)c->alloc.nunits * unit;
    for (unsigned i = 0; i < MS_MAX_SEGS; i++)
        if (c->segmem[i]) {
            *used += (size_t)c->seg[i].used_units * unit;
            *have += (size_t)c->seg[i].nunits * unit;
        }
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
    int rc = ms_win_mem(s, bytes, 0, &mem, &a64);
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

void ms_free_block(ms_core_t *c, uint32_t u)
{
    ms_alloc_t *a = ms_alloc_of(c, u);
    free_local(a, u - a->base);
}

/* Free every used chunk of arena a whose dead word another rank has set. */
static int ms_reclaim(mpistore_t *s, ms_alloc_t *a, int *freed)
{
    ms_core_t *c = s->core;
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
        rc = ms_err(s, MPISTORE_ENOMEM, "out of memory while reclaiming value memory");
        goto out;
    }
    for (uint32_t u = 0; u < a->nunits && rc == 0; u += at(a, u)->units) {
        if (at(a, u)->flags != CHUNK_USED)
            continue;
        where[i] = u;
        rc = ms_read_u64(s, c->rank, a->arena_off + ((size_t)u << a->shift), &dead[i]);
        i++;
    }
    if (rc == 0)
        rc = ms_flush(s, c->rank);
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
int ms_alloc_block(mpistore_t *s, size_t bytes, uint32_t *uoff)
{
    ms_core_t *c = s->core;
    ms_alloc_t *arenas[1 + MS_MAX_SEGS];
    unsigned na = 0;
    size_t unit = (size_t)1 << c->alloc.shift;
    size_t n = (bytes + unit - 1) / unit;
    if (n == 0 || n >= MS_UNIT_SPACE)
        return -MPISTORE_ENOSPC;
    arenas[na++] = &c->alloc;
    for (unsigned i = 0; i < MS_MAX_SEGS; i++)
        if (c->segmem[i])
            arenas[na++] = &c->seg[i];
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
            int f = 0, rc = ms_reclaim(s, arenas[i], &f);
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
        uint32_t base = ms_seg_base(c, i);
        if (base >= c->max_units || base >= MS_UNIT_SPACE)
            break;
        if (c->segmem[i] || seg_units(c, i) < n)
            continue;
        int rc = ms_seg_create(s, i); /* sized within the limit */
        if (rc)
            return rc;
        uint32_t u = try_alloc(&c->seg[i], (uint32_t)n);
        if (u == NONE)
            return -MPISTORE_ENOSPC;
        *uoff = base + u;
        return 0;
    }
    return -MPISTORE_ENOSPC;
}
