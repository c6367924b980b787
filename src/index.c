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
    k->hash = h;
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

/* Level 0 (whose home slot's kind word carries the home rank's level mask)
 * from the allocated window, every grown level this rank knows of from its
 * host's dynamic window: all in flight together (design.md, "Growth"). */
int ms_snapshot_issue(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn)
{
    ms_core_t *c = s->core;
    const ms_levc_t *lc = &c->levc[k->rank];
    int rc;
    sn->rank = k->rank;
    sn->first = k->home;
    sn->nlev = 1 + lc->n;
    sn->nlev_word = 0;
    sn->lstart[0] = 0;
    sn->ltarget[0] = k->rank;
    sn->lctl[0] = ms_ctl_off(c, k->home, 0);
    sn->ldesc[0] = ms_desc_off(c, k->home);
    sn->lcnt[0] = ms_cnt_off(c, k->home);
    sn->lstart[1] = c->probe;
    for (unsigned l = 1; l < sn->nlev; l++) {
        size_t ctl, desc, cnt, total, b = (size_t)(k->hash & (ms_level_nslots(c, l) - 1));
        ms_level_offsets(c, l, &ctl, &desc, &cnt, &total);
        size_t base = MS_DYN | (size_t)lc->addr[l];
        sn->ltarget[l] = lc->host[l];
        sn->lctl[l] = base + ctl + b * MS_CTL_WORDS * sizeof(uint32_t);
        sn->ldesc[l] = base + desc + b * sizeof(uint64_t);
        sn->lcnt[l] = base + cnt + b * sizeof(int64_t);
        sn->lstart[l + 1] = sn->lstart[l] + ms_level_probe(c, l);
    }
    sn->n = sn->lstart[sn->nlev];
    rc = 0;
    for (unsigned l = 0; rc == 0 && l < sn->nlev; l++) {
        size_t m = sn->lstart[l + 1] - sn->lstart[l];
        rc = ms_getacc_u32(s, sn->ltarget[l], sn->lctl[l], sn->ctl + sn->lstart[l] * MS_CTL_WORDS,
                           m * MS_CTL_WORDS);
        if (rc == 0)
            rc = ms_getacc_u64(s, sn->ltarget[l], sn->ldesc[l], sn->desc + sn->lstart[l], m);
    }
    return rc;
}

int ms_snapshot_fix(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn)
{
    ms_backoff_t bo = {0};
    int rc = 0;
    sn->nlev_word = ms_snap_levels(sn);
    while (rc == 0 && sn->nlev_word + 1u > sn->nlev) { /* levels published since */
        rc = ms_levels_refresh(s, k->rank);
        if (rc == 0 && s->core->levc[k->rank].n + 1u <= sn->nlev)
            ms_backoff(s, &bo); /* the directory entries had not landed yet */
        if (rc == 0)
            rc = ms_snapshot_issue(s, k, sn);
        if (rc == 0)
            rc = ms_flush(s, k->rank);
        if (rc == 0)
            sn->nlev_word = ms_snap_levels(sn);
    }
    return rc;
}

int ms_snapshot(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn)
{
    int rc = ms_snapshot_issue(s, k, sn);
    if (rc == 0)
        rc = ms_flush(s, k->rank);
    return rc ? rc : ms_snapshot_fix(s, k, sn);
}

int ms_snapshot_until(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn, double deadline)
{
    double saved = ms_rq_begin(s, deadline);
    int rc = ms_snapshot(s, k, sn);
    ms_rq_end(s, saved);
    return ms_rq_context(s, rc, "timeout reading the slots of key '%.64s' (home rank %d)", k->full,
                         k->rank);
}

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

int ms_lookup(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn, int *found, ms_block_t *b)
{
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
        int t = ms_snap_target(sn, i);
        if (rc == 0)
            rc = ms_getacc_i64(s, t, ms_snap_cnt_off(sn, i), &cnt);
        if (rc == 0)
            rc = ms_flush2(s, ms_desc_rank(d1), t);
        if (rc == 0)
            rc = ms_block_complete(s, d1, &blk, 1, &torn);
        if (rc == 0)
            rc = ms_read_u64(s, t, ms_snap_desc_off(sn, i), &d3);
        if (rc == 0)
            rc = ms_flush(s, t);
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
