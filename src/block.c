/* Value blocks: fetching a block named by a descriptor into local memory
 * (from any rank's arena or segment), reading its key and value, and
 * building a block in this rank's value memory before it is published. */
#include "errors.h"
#include "core.h"
#include "rma.h"
#include "window.h"
#include "alloc.h"
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

/* where the block named by desc is read from (after its dead word and
 * boundary tags), and how many bytes its arena or segment has from there */
static int block_where(mpistore_t *s, uint64_t desc, size_t *disp, size_t *room)
{
    size_t off = 0, left = 0;
    int rc = ms_unit_addr(s, ms_desc_rank(desc), ms_desc_uoff(desc), &off, &left);
    *disp = off + MS_BLK_SKIP;
    *room = left > MS_BLK_SKIP ? left - MS_BLK_SKIP : 0;
    return rc;
}

int ms_block_alloc(mpistore_t *s, uint64_t desc, size_t hint, ms_block_t *b)
{
    size_t room = 0, disp = 0;
    int rc = block_where(s, desc, &disp, &room);
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
        return ms_err(s, MPISTORE_ENOMEM, "out of memory reading a %zu-byte value", want);
    return 0;
}

int ms_block_fetch(mpistore_t *s, uint64_t desc, ms_block_t *b)
{
    size_t room = 0, disp = 0;
    int rc = b->got == 0 ? 0 : block_where(s, desc, &disp, &room);
    if (rc || b->got == 0)
        return rc;
    return ms_rget(s, ms_desc_rank(desc), disp, b->buf, b->got);
}

int ms_block_issue(mpistore_t *s, uint64_t desc, size_t hint, ms_block_t *b)
{
    int rc = ms_block_alloc(s, desc, hint, b);
    return rc ? rc : ms_block_fetch(s, desc, b);
}

typedef struct rhdr {
    uint32_t klen, flags;
    uint64_t vlen;
} rhdr_t;

static rhdr_t read_hdr(const ms_block_t *b)
{
    rhdr_t h;
    memcpy(&h, b->buf, sizeof h);
    return h;
}

int ms_block_complete(mpistore_t *s, uint64_t desc, ms_block_t *b, int need_value, int *torn)
{
    ms_core_t *c = s->core;
    size_t room = 0, disp = 0;
    int wrc = block_where(s, desc, &disp, &room);
    *torn = 1;
    if (wrc)
        return wrc;
    if (b->got < MS_BLK_RHDR)
        return 0;
    rhdr_t h = read_hdr(b);
    b->counter = h.vlen == MS_VLEN_COUNTER;
    if (b->counter)
        h.vlen = 0; /* the value is the slot's counter word */
    if (h.klen > c->max_key_len || h.vlen > c->max_value_len)
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
            return ms_err(s, MPISTORE_ENOMEM, "out of memory reading a %zu-byte value", need);
        b->buf = nb;
        rc = ms_rget(s, ms_desc_rank(desc), disp + b->got, b->buf + b->got, need - b->got);
        if (rc == 0)
            rc = ms_flush(s, ms_desc_rank(desc));
        if (rc)
            return rc;
        b->got = need;
    }
    return 0;
}

int ms_err_corrupt(mpistore_t *s, uint64_t desc, const ms_key_t *k)
{
    return ms_err(s, MPISTORE_EMPI,
                  "corrupt value block on rank %d for key '%.64s' (internal error)",
                  ms_desc_rank(desc), k->full);
}

int ms_block_is_key(const ms_block_t *b, const ms_key_t *k)
{
    rhdr_t h = read_hdr(b);
    return h.klen == k->len && memcmp(b->buf + MS_BLK_RHDR, k->full, k->len) == 0;
}

const char *ms_block_key(const ms_block_t *b, size_t *klen)
{
    rhdr_t h = read_hdr(b);
    *klen = h.klen;
    return (const char *)b->buf + MS_BLK_RHDR;
}

const unsigned char *ms_block_value(const ms_block_t *b, size_t *vlen)
{
    rhdr_t h = read_hdr(b);
    if (b->counter) {
        *vlen = strlen(b->num);
        return (const unsigned char *)b->num;
    }
    *vlen = (size_t)h.vlen;
    return b->buf + MS_BLK_RHDR + h.klen;
}

void ms_block_set_counter(ms_block_t *b, int64_t v)
{
    b->cnt = v;
    snprintf(b->num, sizeof b->num, "%" PRId64, v);
}

void ms_block_release(ms_block_t *b)
{
    free(b->buf);
    b->buf = NULL;
    b->got = 0;
}

static int build(mpistore_t *s, const ms_key_t *k, const void *a, size_t alen, const void *b2,
                 size_t blen, int counter, uint32_t *uoff, uint32_t *total)
{
    ms_core_t *c = s->core;
    size_t need = MS_BLK_HDR + k->len + alen + blen;
    uint32_t u = 0;
    int rc = ms_alloc_block(s, need, &u);
    if (rc == -MPISTORE_ENOSPC) {
        size_t unit = (size_t)1 << c->alloc.shift, used = 0, have = 0;
        ms_alloc_usage(c, &used, &have);
        ms_err(s, MPISTORE_ENOSPC,
               "value memory of rank %d is full: key '%.64s' needs %zu bytes, %zu of %zu bytes "
               "in use (bytes_per_rank=%zu, limit %zu bytes); %s",
               c->rank, k->full, need, used, have, c->bytes_per_rank,
               (size_t)c->max_units * unit, ms_fail_advice(MS_FAIL_BYTES));
        return ms_fail_publish(s, -MPISTORE_ENOSPC, MS_FAIL_BYTES);
    }
    if (rc == -MPISTORE_ENOMEM)
        return ms_fail_publish(s, rc, MS_FAIL_MEMORY);
    if (rc)
        return rc;
    ms_blk_t *h = ms_blk_at(c, u);
    unsigned char *p = (unsigned char *)h + MS_BLK_HDR;
    h->klen = (uint32_t)k->len;
    h->vlen = counter ? MS_VLEN_COUNTER : (uint64_t)(alen + blen);
    memcpy(p, k->full, k->len);
    if (alen)
        memcpy(p + k->len, a, alen);
    if (blen)
        memcpy(p + k->len + alen, b2, blen);
    /* local stores before the publication */
    rc = MPI_Win_sync(ms_win(c, ms_alloc_of(c, u)->arena_off, c->rank));
    if (rc != MPI_SUCCESS) {
        ms_free_block(c, u);
        return ms_mpierr(s, rc, "MPI_Win_sync", c->rank);
    }
    *uoff = u;
    *total = need > UINT32_MAX ? UINT32_MAX : (uint32_t)need;
    return 0;
}

int ms_block_build(mpistore_t *s, const ms_key_t *k, const void *a, size_t alen, const void *b2,
                   size_t blen, uint32_t *uoff, uint32_t *total)
{
    return build(s, k, a, alen, b2, blen, 0, uoff, total);
}

int ms_block_build_counter(mpistore_t *s, const ms_key_t *k, uint32_t *uoff, uint32_t *total)
{
    return build(s, k, NULL, 0, NULL, 0, 1, uoff, total);
}

void *ms_dup_value(const void *v, size_t len)
{
    unsigned char *p = malloc(len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, v, len);
    p[len] = 0;
    return p;
}
