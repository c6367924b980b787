/* The index: keys (validation, hashing, placement), probe-window snapshots
 * of every index level, and the validated lookup of a key in a snapshot
 * (docs/design.md, "Snapshots and consistency").  Blocks are block.c's. */
#include "errors.h"
#include "core.h"
#include "wait.h"
#include "block.h"
#include "index.h"

#include <stdarg.h>
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
static void place(const mpistore__core_t *c, mpistore__key_t *k)
{
    uint64_t h = hash_key(k->full, k->len);
    k->rank = (int)(((h >> 32) * (uint64_t)c->rma.w.nranks) >> 32);
    k->home = (size_t)(h & (c->lay.nslots - 1));
    k->fp = (uint32_t)mix64(h ^ 0x9e3779b97f4a7c15ULL);
    k->hash = h;
}

int mpistore__key_prepare(mpistore__core_t *c, mpistore__prefix_t pre, const char *key,
                          mpistore__key_t *k)
{
    memset(k, 0, sizeof *k);
    if (!key)
        return mpistore__err(&c->err, MPISTORE_EINVAL, "key is NULL");
    size_t len = strlen(key);
    if (len == 0)
        return mpistore__err(&c->err, MPISTORE_EINVAL, "key is empty");
    if (len > c->lay.max_key_len || pre.len + len > c->lay.max_key_len)
        return mpistore__err(&c->err, MPISTORE_EKEYTOOLONG,
                             "key '%.64s%s' is %zu bytes, max_key_len is %zu", key,
                             len > 64 ? "..." : "", pre.len + len, c->lay.max_key_len);
    if (pre.len) {
        k->owned = malloc(pre.len + len + 1);
        if (!k->owned)
            return mpistore__err(&c->err, MPISTORE_ENOMEM, "out of memory for key '%.64s'", key);
        memcpy(k->owned, pre.str, pre.len);
        memcpy(k->owned + pre.len, key, len + 1);
        k->full = k->owned;
        k->len = pre.len + len;
    } else {
        k->full = key;
        k->len = len;
    }
    place(c, k);
    return 0;
}

void mpistore__key_internal(mpistore__core_t *c, const char *bytes, size_t len, mpistore__key_t *k)
{
    memset(k, 0, sizeof *k);
    k->full = bytes;
    k->len = len;
    k->internal = 1;
    place(c, k);
}

void mpistore__key_release(mpistore__key_t *k)
{
    free(k->owned);
    k->owned = NULL;
}

int mpistore__keys_check(mpistore__core_t *c, mpistore__prefix_t pre, const char *const *keys,
                         size_t nkeys, const char *op)
{
    if (nkeys > 0 && !keys)
        return mpistore__err(&c->err, MPISTORE_EINVAL, "%s: keys is NULL with nkeys=%zu", op,
                             nkeys);
    for (size_t i = 0; i < nkeys; i++) {
        mpistore__key_t k;
        int rc = mpistore__key_prepare(c, pre, keys[i], &k);
        mpistore__key_release(&k);
        if (rc)
            return rc;
    }
    return 0;
}

/* Level 0 (whose home slot's kind word carries the home rank's level mask)
 * from the allocated window, every grown level this rank knows of from its
 * host's dynamic window: all in flight together (design.md, "Growth"). */
static int snapshot_issue(mpistore__core_t *c, const mpistore__key_t *k, mpistore__snap_t *sn,
                          int home_only)
{
    const mpistore__levc_t *lc = &c->lev.cache[k->rank];
    int rc;
    sn->rank = k->rank;
    sn->first = k->home;
    sn->nlev = home_only ? 1 : 1 + lc->n;
    sn->nlev_word = 0;
    sn->lstart[0] = 0;
    sn->ltarget[0] = k->rank;
    sn->lctl[0] = mpistore__ctl_off(&c->lay, k->home, 0);
    sn->ldesc[0] = mpistore__desc_off(&c->lay, k->home);
    sn->lcnt[0] = mpistore__cnt_off(&c->lay, k->home);
    sn->lstart[1] = home_only ? 1 : c->lay.probe;
    for (unsigned l = 1; l < sn->nlev; l++) {
        size_t ctl, desc, cnt, total,
            b = (size_t)(k->hash & (mpistore__level_nslots(&c->lay, l) - 1));
        mpistore__level_offsets(&c->lay, l, &ctl, &desc, &cnt, &total);
        size_t base = MS_DYN | (size_t)lc->addr[l];
        sn->ltarget[l] = lc->host[l];
        sn->lctl[l] = base + ctl + b * MS_CTL_WORDS * sizeof(uint32_t);
        sn->ldesc[l] = base + desc + b * sizeof(uint64_t);
        sn->lcnt[l] = base + cnt + b * sizeof(int64_t);
        sn->lstart[l + 1] = sn->lstart[l] + mpistore__level_probe(&c->lay, l);
    }
    sn->n = sn->lstart[sn->nlev];
    rc = 0;
    for (unsigned l = 0; rc == 0 && l < sn->nlev; l++) {
        size_t m = sn->lstart[l + 1] - sn->lstart[l];
        rc = mpistore__read_slots(&c->rma, sn->ltarget[l], sn->lctl[l], sn->ldesc[l],
                                  sn->ctl + sn->lstart[l] * MS_CTL_WORDS, sn->desc + sn->lstart[l],
                                  m);
    }
    return rc;
}

int mpistore__snapshot_issue(mpistore__core_t *c, const mpistore__key_t *k, mpistore__snap_t *sn)
{
    return snapshot_issue(c, k, sn, 0);
}

int mpistore__snapshot_fix(mpistore__core_t *c, const mpistore__key_t *k, mpistore__snap_t *sn)
{
    mpistore__backoff_t bo = {0};
    int rc = 0;
    sn->nlev_word = mpistore__snap_levels(sn);
    while (rc == 0 && sn->nlev_word + 1u > sn->nlev) { /* levels published since */
        rc = mpistore__levels_refresh(&c->lev, &c->rma, k->rank);
        if (rc == 0 && c->lev.cache[k->rank].n + 1u <= sn->nlev)
            mpistore__backoff(c->rma.w.comm, &c->lock,
                              &bo); /* the directory entries had not landed yet */
        if (rc == 0)
            rc = mpistore__snapshot_issue(c, k, sn);
        if (rc == 0)
            rc = mpistore__flush(&c->rma, k->rank);
        if (rc == 0)
            sn->nlev_word = mpistore__snap_levels(sn);
    }
    return rc;
}

int mpistore__snapshot(mpistore__core_t *c, const mpistore__key_t *k, mpistore__snap_t *sn)
{
    int rc = mpistore__snapshot_issue(c, k, sn);
    if (rc == 0)
        rc = mpistore__flush(&c->rma, k->rank);
    return rc ? rc : mpistore__snapshot_fix(c, k, sn);
}

int mpistore__snapshot_claim(mpistore__core_t *c, const mpistore__key_t *k, mpistore__snap_t *sn,
                             int *claimed)
{
    const uint32_t never = 0, locked = 1;
    uint32_t got = 1;
    size_t lockoff = mpistore__ctl_off(&c->lay, k->home, MS_CTL_LOCK);
    int rc = mpistore__cas_u32(&c->rma, k->rank, lockoff, &locked, &never, &got);
    /* One node (design.md, "One node"): the swap's answer is there at once.
     * A claimed home slot needs only its own words of the look (a claimed
     * insert reads no other slot: the key is absent and the slot is its
     * own); the same two reads, of 5 words instead of the whole window.
     * Not when the home rank has grown levels: the look covers them. */
    int home_only = rc == 0 && mpistore__rma_immediate(&c->rma, lockoff) && got == never &&
                    c->lev.cache[k->rank].n == 0;
    if (rc == 0)
        rc = snapshot_issue(c, k, sn, home_only);
    if (rc == 0)
        rc = mpistore__flush(&c->rma, k->rank);
    if (rc == 0)
        rc = mpistore__snapshot_fix(c, k, sn);
    *claimed = rc == 0 && got == never;
    if (rc && got == never && mpistore__replace_u32(&c->rma, k->rank, lockoff, &never) == 0)
        (void)mpistore__flush(&c->rma, k->rank); /* locked, then failed: give it back */
    return rc;
}

int mpistore__snapshot_until(mpistore__core_t *c, const mpistore__key_t *k, mpistore__snap_t *sn,
                             double deadline)
{
    double saved = mpistore__rq_begin(&c->rma.rq, deadline);
    int rc = mpistore__snapshot(c, k, sn);
    mpistore__rq_end(&c->rma.rq, saved);
    return mpistore__late_prefix(c, rc, "timeout reading the slots of key '%.64s' (home rank %d)",
                                 k->full, k->rank);
}

int mpistore__validate(mpistore__core_t *c, const mpistore__key_t *k, uint64_t d1, uint64_t d3,
                       int torn, int64_t cnt, mpistore__block_t *b)
{
    if (d3 != d1) /* a publication happened meanwhile: read again */
        return MS_RETRY;
    if (torn)
        return mpistore__err_corrupt(c, d1, k);
    if (!mpistore__block_is_key(b, k))
        return MS_OTHER_KEY;
    if (b->counter)
        mpistore__block_set_counter(b, cnt);
    return MS_DONE;
}

int mpistore__lookup(mpistore__core_t *c, const mpistore__key_t *k, mpistore__snap_t *sn,
                     int *found, mpistore__block_t *b)
{
    *found = 0;
    for (size_t i = 0; i < sn->n; i++) {
        if (!mpistore__snap_candidate(sn, i, k->fp))
            continue;
        uint64_t d1 = sn->desc[i], d3 = 0;
        int64_t cnt = 0;
        int torn = 0, rc;
        mpistore__block_t blk = {0};
        /* the counter word too: it is the value if the block is a counter's,
         * and it must be read between the two reads of the descriptor */
        rc = mpistore__block_issue(c, d1, mpistore__snap_blen(sn, i), &blk);
        int t = mpistore__snap_target(sn, i);
        if (rc == 0)
            rc = mpistore__read_i64(&c->rma, t, mpistore__snap_cnt_off(sn, i), &cnt);
        if (rc == 0)
            rc = mpistore__flush2(&c->rma, mpistore__desc_rank(d1), t);
        if (rc == 0)
            rc = mpistore__block_complete(c, d1, &blk, 1, &torn);
        if (rc == 0)
            rc = mpistore__read_u64(&c->rma, t, mpistore__snap_desc_off(sn, i), &d3);
        if (rc == 0)
            rc = mpistore__flush(&c->rma, t);
        if (rc == 0)
            rc = mpistore__validate(c, k, d1, d3, torn, cnt, &blk);
        if (rc == MS_DONE) {
            *found = 1;
            *b = blk;
            return MS_DONE;
        }
        mpistore__block_release(&blk);
        if (rc != MS_OTHER_KEY)
            return rc; /* MS_RETRY or <0 */
    }
    return MS_DONE;
}

int mpistore__late_prefix(mpistore__core_t *c, int rc, const char *fmt, ...)
{
    if (rc != -MPISTORE_ETIMEDOUT || mpistore__rq_late(&c->rma.rq) < 0)
        return rc;
    char what[MS_ERRMSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mpistore__err_prefix(&c->err, rc, "%s", what);
}
