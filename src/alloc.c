/* The owner-only allocator of a rank's value arena.
 *
 * Boundary tags live in the chunks' own 32-byte headers; free chunks sit in
 * 32 size-class lists (class = floor(log2(units))).  Only the owning rank
 * reads or writes this metadata.  A used chunk whose `dead` word another rank
 * has set (it unpublished the block) is reclaimed by ms_reclaim() when an
 * allocation does not fit. */
#include "internal.h"

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

static ms_blk_t *at(ms_alloc_t *a, uint32_t u)
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
        uint64_t end = (uint64_t)base * 2 > MS_UNIT_SPACE ? MS_UNIT_SPACE : (uint64_t)base * 2;
        if (end > c->max_units)
            end = c->max_units;
        if (c->segmem[i] || end - base < n)
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
