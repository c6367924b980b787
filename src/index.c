/* The index: keys (validation, hashing, placement), probe-window snapshots
 * of every index level, and the validated lookup of a key in a snapshot
 * (docs/design.md, "Snapshots and consistency").  Blocks are block.c's. */
#include "errors.h"
#include "core.h"
#include "wait.h"
#include "rma.h"
#include "levels.h"
#include "block.h"
#include "index.h"

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

int ms_keys_check(mpistore_t *s, const char *const *keys, size_t nkeys, const char *op)
{
    if (nkeys > 0 && !keys)
        return ms_err(s, MPISTORE_EINVAL, "%s: keys is NULL with nkeys=%zu", op, nkeys);
    for (size_t i = 0; i < nkeys; i++) {
        ms_key_t k;
        int rc = ms_key_prepare(s, keys[i], &k);
        ms_key_release(&k);
        if (rc)
            return rc;
    }
    return 0;
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

int ms_validate(mpistore_t *s, const ms_key_t *k, uint64_t d1, uint64_t d3, int torn, int64_t cnt,
                ms_block_t *b)
{
    if (d3 != d1) /* a publication happened meanwhile: read again */
        return MS_SLOT_MOVED;
    if (torn)
        return ms_err_corrupt(s, d1, k);
    if (!ms_block_is_key(b, k))
        return MS_SLOT_OTHER;
    if (b->counter)
        ms_block_set_counter(b, cnt);
    return MS_SLOT_KEY;
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
        if (rc == 0)
            rc = ms_validate(s, k, d1, d3, torn, cnt, &blk);
        if (rc == MS_SLOT_KEY) {
            *found = 1;
            *b = blk;
            return 0;
        }
        ms_block_release(&blk);
        if (rc != MS_SLOT_OTHER)
            return rc == MS_SLOT_MOVED ? 1 : rc;
    }
    return 0;
}
