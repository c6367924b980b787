/* Keys (validation, hashing, placement), probe-window snapshots, and the
 * validated reading and local building of value blocks. */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_key(const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

/* home rank, home bucket and fingerprint from the key bytes */
static void place(const ms_core_t *c, ms_key_t *k)
{
    uint64_t h = hash_key(k->full, k->len);
    k->rank = (int)(((h >> 32) * (uint64_t)c->nranks) >> 32);
    k->home = (size_t)(h & (c->nslots - 1));
    k->fp = (uint32_t)mix64(h ^ 0x9e3779b97f4a7c15ULL);
}

int ms_key_prepare(mpistore_t *s, const char *key, ms_key_t *k)
{
    ms_core_t *c = s->core;
    memset(k, 0, sizeof *k);
    if (!key)
        return ms_err(s, MPISTORE_EINVAL, "key is NULL");
    size_t len = strlen(key);
    if (len == 0)
        return ms_err(s, MPISTORE_EINVAL, "key is empty");
    if (len > c->max_key_len || s->prefix_len + len > c->max_key_len)
        return ms_err(s, MPISTORE_EKEYTOOLONG, "key '%.64s%s' is %zu bytes, max_key_len is %zu",
                      key, len > 64 ? "..." : "", s->prefix_len + len, c->max_key_len);
    if (s->prefix_len) {
        k->owned = malloc(s->prefix_len + len + 1);
        if (!k->owned)
            return ms_err(s, MPISTORE_ENOMEM, "out of memory for key '%.64s'", key);
        memcpy(k->owned, s->prefix, s->prefix_len);
        memcpy(k->owned + s->prefix_len, key, len + 1);
        k->full = k->owned;
        k->len = s->prefix_len + len;
    } else {
        k->full = key;
        k->len = len;
    }
    place(c, k);
    return 0;
}

void ms_key_internal(mpistore_t *s, const char *bytes, size_t len, ms_key_t *k)
{
    memset(k, 0, sizeof *k);
    k->full = bytes;
    k->len = len;
    k->internal = 1;
    place(s->core, k);
}

void ms_key_release(ms_key_t *k)
{
    free(k->owned);
    k->owned = NULL;
}

int ms_snapshot_issue(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn)
{
    ms_core_t *c = s->core;
    int rc;
    sn->rank = k->rank;
    sn->first = k->home;
    sn->n = c->probe;
    if ((rc = ms_getacc_u32(s, k->rank, ms_ctl_off(c, k->home, 0), sn->ctl, sn->n * MS_CTL_WORDS)))
        return rc;
    return ms_getacc_u64(s, k->rank, ms_desc_off(c, k->home), sn->desc, sn->n);
}

int ms_snapshot(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn)
{
    int rc = ms_snapshot_issue(s, k, sn);
    return rc ? rc : ms_flush(s, k->rank);
}

/* Readers fetch a block from its klen field on: the dead word and the
 * allocator's boundary tags before it are never read remotely. */
#define MS_BLK_SKIP 16u
#define MS_BLK_RHDR (MS_BLK_HDR - MS_BLK_SKIP) /* klen, flags, vlen */

static size_t block_disp(const ms_core_t *c, uint32_t uoff)
{
    return c->off_arena + ((size_t)uoff << c->alloc.shift) + MS_BLK_SKIP;
}

static size_t block_room(const ms_core_t *c, uint32_t uoff)
{
    size_t start = ((size_t)uoff << c->alloc.shift) + MS_BLK_SKIP;
    size_t arena = (size_t)c->alloc.nunits << c->alloc.shift;
    return start < arena ? arena - start : 0;
}

int ms_block_alloc(mpistore_t *s, uint64_t desc, size_t hint, ms_block_t *b)
{
    size_t room = block_room(s->core, ms_desc_uoff(desc));
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
    if (b->got == 0)
        return 0;
    return ms_rget(s, ms_desc_rank(desc), block_disp(s->core, ms_desc_uoff(desc)), b->buf, b->got);
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
    uint32_t uoff = ms_desc_uoff(desc);
    size_t room = block_room(c, uoff);
    *torn = 1;
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
        rc = ms_rget(s, ms_desc_rank(desc), block_disp(c, uoff) + b->got, b->buf + b->got,
                     need - b->got);
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

int ms_lookup(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn, int *found, ms_block_t *b)
{
    ms_core_t *c = s->core;
    *found = 0;
    for (size_t i = 0; i < sn->n; i++) {
        if (!ms_snap_candidate(sn, i, k->fp))
            continue;
        uint64_t d1 = sn->desc[i], d3 = 0;
        int64_t cnt = 0;
        int torn = 0, rc;
        ms_block_t blk = {0};
        /* the counter word too: it is the value if the block is a counter's,
         * and it must be read between the two reads of the descriptor */
        rc = ms_block_issue(s, d1, ms_snap_blen(sn, i), &blk);
        if (rc == 0)
            rc = ms_getacc_i64(s, sn->rank, ms_cnt_off(c, sn->first + i), &cnt);
        if (rc == 0)
            rc = ms_flush2(s, ms_desc_rank(d1), sn->rank);
        if (rc == 0)
            rc = ms_block_complete(s, d1, &blk, 1, &torn);
        if (rc == 0)
            rc = ms_read_u64(s, sn->rank, ms_desc_off(c, sn->first + i), &d3);
        if (rc == 0)
            rc = ms_flush(s, sn->rank);
        if (rc) {
            ms_block_release(&blk);
            return rc;
        }
        if (d3 != d1) { /* a publication happened meanwhile: read again */
            ms_block_release(&blk);
            return 1;
        }
        if (torn) {
            ms_block_release(&blk);
            return ms_err_corrupt(s, d1, k);
        }
        if (ms_block_is_key(&blk, k)) {
            if (blk.counter)
                ms_block_set_counter(&blk, cnt);
            *found = 1;
            *b = blk;
            return 0;
        }
        ms_block_release(&blk);
    }
    return 0;
}

static int build(mpistore_t *s, const ms_key_t *k, const void *a, size_t alen, const void *b2,
                 size_t blen, int counter, uint32_t *uoff, uint32_t *total)
{
    ms_core_t *c = s->core;
    size_t need = MS_BLK_HDR + k->len + alen + blen;
    uint32_t u = 0;
    int rc = ms_alloc_block(s, need, &u);
    if (rc == -MPISTORE_ENOSPC) {
        size_t unit = (size_t)1 << c->alloc.shift;
        return ms_err(s, MPISTORE_ENOSPC,
                      "value memory of rank %d is full: key '%.64s' needs %zu bytes, %zu of "
                      "%zu bytes in use (bytes_per_rank=%zu)",
                      c->rank, k->full, need, (size_t)c->alloc.used_units * unit,
                      (size_t)c->alloc.nunits * unit, c->bytes_per_rank);
    }
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
    rc = MPI_Win_sync(c->win); /* local stores before the publication */
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
