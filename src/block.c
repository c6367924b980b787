/* Value blocks: fetching a block named by a descriptor into local memory
 * (from any rank's arena or segment), reading its key and value, and
 * building a block in this rank's value memory before it is published. */
#include "errors.h"
#include "core.h"
#include "fail.h"
#include "block.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Readers fetch a block from its klen field on: the dead word and the
 * allocator's boundary tags before it are never read remotely. */
#define MS_BLK_SKIP 16u
#define MS_BLK_RHDR (MS_BLK_HDR - MS_BLK_SKIP) /* klen, flags, vlen */

/* The rank a block is read from: its writer, or the writer's mirror. */
static int block_rank(const mpistore__core_t *c, uint64_t desc, const mpistore__block_t *b)
{
    int w = mpistore__desc_rank(desc);
    return b->mirror ? mpistore__mirror_of(&c->rma, w) : w;
}

/* where the block named by desc is read from (after its dead word and
 * boundary tags), and how many bytes its arena or segment has from there */
static int block_where(mpistore__core_t *c, uint64_t desc, const mpistore__block_t *b, size_t *disp,
                       size_t *room)
{
    size_t off = 0, left = 0;
    int rc = mpistore__unit_addr(&c->mem, &c->rma, mpistore__desc_rank(desc),
                                 mpistore__desc_uoff(desc), &off, &left);
    if (b->mirror) /* its copy on the writer's mirror (replicas; no segments there) */
        off += c->lay.mirror;
    *disp = off + MS_BLK_SKIP;
    *room = left > MS_BLK_SKIP ? left - MS_BLK_SKIP : 0;
    return rc;
}

int mpistore__block_alloc(mpistore__core_t *c, uint64_t desc, size_t hint, mpistore__block_t *b)
{
    size_t room = 0, disp = 0;
    int rc = block_where(c, desc, b, &disp, &room);
    if (rc)
        return rc;
    size_t want = hint > MS_BLK_SKIP ? hint - MS_BLK_SKIP : 0;
    if (want < MS_BLK_RHDR + 64)
        want = MS_BLK_RHDR + 64;
    if (want > room)
        want = room;
    b->got = want;
    b->buf = malloc(want + 1);
    if (!b->buf)
        return mpistore__err(&c->err, MPISTORE_ENOMEM, "out of memory reading a %zu-byte value",
                             want);
    return 0;
}

int mpistore__block_fetch(mpistore__core_t *c, uint64_t desc, mpistore__block_t *b)
{
    size_t room = 0, disp = 0;
    int rc = b->got == 0 ? 0 : block_where(c, desc, b, &disp, &room);
    if (rc || b->got == 0)
        return rc;
    return mpistore__rget(&c->rma, block_rank(c, desc, b), disp, b->buf, b->got);
}

int mpistore__block_issue(mpistore__core_t *c, uint64_t desc, size_t hint, mpistore__block_t *b)
{
    int rc = mpistore__block_alloc(c, desc, hint, b);
    return rc ? rc : mpistore__block_fetch(c, desc, b);
}

typedef struct rhdr {
    uint32_t klen, flags;
    uint64_t vlen;
} rhdr_t;

static rhdr_t read_hdr(const mpistore__block_t *b)
{
    rhdr_t h;
    memcpy(&h, b->buf, sizeof h);
    return h;
}

int mpistore__block_complete(mpistore__core_t *c, uint64_t desc, mpistore__block_t *b,
                             int need_value, int *torn)
{
    size_t room = 0, disp = 0;
    int wrc = block_where(c, desc, b, &disp, &room);
    *torn = 1;
    if (wrc)
        return wrc;
    if (b->got < MS_BLK_RHDR)
        return 0;
    rhdr_t h = read_hdr(b);
    b->counter = h.vlen == MS_VLEN_COUNTER;
    if (b->counter)
        h.vlen = 0; /* the value is the slot's counter word */
    if (h.klen > c->lay.max_key_len || h.vlen > c->lay.max_value_len)
        return 0;
    size_t need = MS_BLK_RHDR + h.klen + (size_t)h.vlen;
    if (need > room)
        return 0;
    *torn = 0;
    if (!need_value)
        need = MS_BLK_RHDR + h.klen;
    if (need > b->got) {
        unsigned char *nb = realloc(b->buf, need + 1);
        int rc;
        if (!nb)
            return mpistore__err(&c->err, MPISTORE_ENOMEM, "out of memory reading a %zu-byte value",
                                 need);
        b->buf = nb;
        rc = mpistore__rget(&c->rma, block_rank(c, desc, b), disp + b->got, b->buf + b->got,
                            need - b->got);
        if (rc == 0)
            rc = mpistore__flush(&c->rma, block_rank(c, desc, b));
        if (rc)
            return rc;
        b->got = need;
    }
    return 0;
}

int mpistore__err_corrupt(mpistore__core_t *c, uint64_t desc, const mpistore__key_t *k)
{
    return mpistore__err(&c->err, MPISTORE_EMPI,
                         "corrupt value block on rank %d for key '%.64s' (internal error)",
                         mpistore__desc_rank(desc), k->full);
}

int mpistore__block_is_key(const mpistore__block_t *b, const mpistore__key_t *k)
{
    rhdr_t h = read_hdr(b);
    return h.klen == k->len && memcmp(b->buf + MS_BLK_RHDR, k->full, k->len) == 0;
}

const char *mpistore__block_key(const mpistore__block_t *b, size_t *klen)
{
    rhdr_t h = read_hdr(b);
    *klen = h.klen;
    return (const char *)b->buf + MS_BLK_RHDR;
}

const unsigned char *mpistore__block_value(const mpistore__block_t *b, size_t *vlen)
{
    rhdr_t h = read_hdr(b);
    if (b->counter) {
        *vlen = strlen(b->num);
        return (const unsigned char *)b->num;
    }
    *vlen = (size_t)h.vlen;
    return b->buf + MS_BLK_RHDR + h.klen;
}

void mpistore__block_set_counter(mpistore__block_t *b, int64_t v)
{
    b->cnt = v;
    snprintf(b->num, sizeof b->num, "%" PRId64, v);
}

void mpistore__block_release(mpistore__block_t *b)
{
    free(b->buf);
    b->buf = NULL;
    b->got = 0;
}

static int build(mpistore__core_t *c, const mpistore__key_t *k, const void *a, size_t alen,
                 const void *b2, size_t blen, int counter, uint32_t *uoff, uint32_t *total)
{
    size_t need = MS_BLK_HDR + k->len + alen + blen;
    uint32_t u = 0;
    int rc = mpistore__alloc_block(&c->mem, &c->rma, need, &u);
    if (rc == -MPISTORE_ENOSPC) {
        size_t unit = (size_t)1 << c->mem.alloc.shift, used = 0, have = 0;
        mpistore__alloc_usage(&c->mem, &used, &have);
        mpistore__err(
            &c->err, MPISTORE_ENOSPC,
            "value memory of rank %d is full: key '%.64s' needs %zu bytes, %zu of %zu bytes "
            "in use (bytes_per_rank=%zu, limit %zu bytes); %s",
            c->rma.w.rank, k->full, need, used, have, c->lay.bytes_per_rank,
            (size_t)c->mem.max_units * unit, mpistore__fail_advice(MS_FAIL_BYTES));
        return mpistore__fail_publish(&c->rma, -MPISTORE_ENOSPC, MS_FAIL_BYTES);
    }
    if (rc == -MPISTORE_ENOMEM)
        return mpistore__fail_publish(&c->rma, rc, MS_FAIL_MEMORY);
    if (rc)
        return rc;
    mpistore__blk_t *h = mpistore__blk_at(&c->mem, u);
    unsigned char *p = (unsigned char *)h + MS_BLK_HDR;
    h->klen = (uint32_t)k->len;
    h->vlen = counter ? MS_VLEN_COUNTER : (uint64_t)(alen + blen);
    memcpy(p, k->full, k->len);
    if (alen)
        memcpy(p + k->len, a, alen);
    if (blen)
        memcpy(p + k->len + alen, b2, blen);
    /* local stores before the publication */
    rc = mpistore__win_sync(&c->rma.w, mpistore__alloc_of(&c->mem, u)->arena_off);
    if (rc == 0 && c->lay.mirror) { /* replicas: its copy, complete before any publication */
        size_t off = 0, room = 0;
        rc = mpistore__unit_addr(&c->mem, &c->rma, c->rma.w.rank, u, &off, &room);
        if (rc == 0)
            rc = mpistore__mirror_put(&c->rma, off, need);
    }
    if (rc) {
        mpistore__free_block(&c->mem, u);
        return rc;
    }
    *uoff = u;
    *total = need > UINT32_MAX ? UINT32_MAX : (uint32_t)need;
    return 0;
}

int mpistore__block_build(mpistore__core_t *c, const mpistore__key_t *k, const void *a, size_t alen,
                          const void *b2, size_t blen, uint32_t *uoff, uint32_t *total)
{
    return build(c, k, a, alen, b2, blen, 0, uoff, total);
}

int mpistore__block_build_counter(mpistore__core_t *c, const mpistore__key_t *k, uint32_t *uoff,
                                  uint32_t *total)
{
    return build(c, k, NULL, 0, NULL, 0, 1, uoff, total);
}

void *mpistore__dup_value(const void *v, size_t len)
{
    unsigned char *p = malloc(len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, v, len);
    p[len] = 0;
    return p;
}
