/* Reading operations: get, check, wait, multi_get, num_keys.
 * Lookups are lock-free validated reads (docs/design.md, "Reader validation"). */
#include "errors.h"
#include "core.h"
#include "wait.h"
#include "rma.h"
#include "fail.h"
#include "block.h"
#include "index.h"
#include "ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One validated lookup, retried while concurrent publications disturb it.
 * On found, *b holds the key's block. */
static int find(mpistore_t *s, const ms_key_t *k, double deadline, int *found, ms_block_t *b)
{
    ms_snap_t sn;
    ms_backoff_t bo = {0};
    for (;;) {
        int rc = ms_snapshot(s, k, &sn);
        if (rc == 0)
            rc = ms_lookup(s, k, &sn, found, b);
        if (rc <= 0)
            return rc;
        if (ms_expired(deadline))
            return ms_err(s, MPISTORE_ETIMEDOUT,
                          "timeout reading key '%.64s' (home rank %d): it kept changing", k->full,
                          k->rank);
        ms_backoff(s, &bo);
    }
}

/* A wait for one key that ran out of time (get, wait, multi_get): seconds
 * waited, key, home rank. */
#define KEY_WAIT_TIMEOUT "timeout after %.3f s waiting for key '%.64s' (home rank %d)"

/* Wait until key k exists; on success *b (if non-NULL) holds its block.
 * Without b (wait), a non-empty queue under the user key `qkey` counts too. */
static int await(mpistore_t *s, const ms_key_t *k, const char *qkey, double t0, double deadline,
                 ms_block_t *b)
{
    ms_backoff_t bo = {0};
    for (;;) {
        ms_block_t blk = {0};
        int found = 0, rc = find(s, k, deadline, &found, &blk);
        if (rc == 0 && !found && !b)
            rc = ms_queue_nonempty(s, qkey, deadline, &found);
        if (rc)
            return ms_rq_context(s, rc, KEY_WAIT_TIMEOUT, ms_now() - t0, k->full, k->rank);
        if (found) {
            if (b)
                *b = blk;
            else
                ms_block_release(&blk);
            return 0;
        }
        if ((rc = ms_fail_check(s, "a wait for an absent key"))) /* a full store: no waiting */
            return rc;
        if (ms_expired(deadline))
            return ms_err(s, MPISTORE_ETIMEDOUT, KEY_WAIT_TIMEOUT, ms_now() - t0, k->full,
                          k->rank);
        ms_backoff(s, &bo);
    }
}

static int block_to_value(mpistore_t *s, ms_block_t *b, void **value, size_t *len)
{
    size_t vlen = 0;
    const unsigned char *v = ms_block_value(b, &vlen);
    void *copy = ms_dup_value(v, vlen);
    ms_block_release(b);
    if (!copy)
        return ms_err(s, MPISTORE_ENOMEM, "out of memory for a %zu-byte value", vlen);
    *value = copy;
    *len = vlen;
    return 0;
}

static int get_one(mpistore_t *s, const char *key, double t0, double deadline, void **value,
                   size_t *len)
{
    ms_key_t k;
    ms_block_t b = {0};
    int rc = ms_key_prepare(s, key, &k);
    if (rc == 0)
        rc = await(s, &k, key, t0, deadline, &b);
    if (rc == 0)
        rc = block_to_value(s, &b, value, len);
    ms_key_release(&k);
    return rc;
}

int mpistore_get(mpistore_t *s, const char *key, void **value, size_t *len)
{
    MS_ENTER(s);
    int rc;
    if (!value || !len) {
        rc = ms_err(s, MPISTORE_EINVAL, "get: value or len is NULL");
    } else {
        double deadline = ms_deadline(s->timeout), saved = ms_rq_begin(s, deadline);
        rc = get_one(s, key, ms_now(), deadline, value, len);
        ms_rq_end(s, saved);
    }
    ms_leave(s->core);
    return rc;
}

static int present(mpistore_t *s, const char *key, double deadline, int *found)
{
    ms_key_t k;
    ms_block_t b = {0};
    int rc = ms_key_prepare(s, key, &k);
    if (rc == 0)
        rc = find(s, &k, deadline, found, &b);
    if (rc == 0 && !*found) /* check/wait: a non-empty queue is present */
        rc = ms_queue_nonempty(s, key, deadline, found);
    if (rc)
        rc = ms_rq_context(s, rc, "timeout looking for key '%.64s' (home rank %d)", k.full, k.rank);
    ms_block_release(&b);
    ms_key_release(&k);
    return rc;
}

int mpistore_check(mpistore_t *s, const char *const *keys, size_t nkeys, bool *all_present)
{
    MS_ENTER(s);
    int rc = all_present ? ms_keys_check(s, keys, nkeys, "check")
                         : ms_err(s, MPISTORE_EINVAL, "check: all_present is NULL");
    int found = 1;
    double deadline = ms_deadline(s->timeout), saved = ms_rq_begin(s, deadline);
    for (size_t i = 0; rc == 0 && found && i < nkeys; i++)
        rc = present(s, keys[i], deadline, &found);
    ms_rq_end(s, saved);
    if (rc == 0)
        *all_present = found != 0;
    ms_leave(s->core);
    return rc;
}

/* "timeout after X s in wait: 2 of 5 keys missing: 'a' (rank 1), 'b' (rank 0)",
 * and, when the wait ended because a rank did not answer an RMA read, which
 * (keys homed on that rank are then listed without being read again). */
static int wait_timeout(mpistore_t *s, const char *const *keys, size_t nkeys, size_t from,
                        double t0)
{
    char list[320] = "", cause[200] = "";
    size_t used = 0, missing = 0;
    int late = ms_rq_late(s);
    if (late >= 0)
        snprintf(cause, sizeof cause,
                 "; rank %d did not answer an RMA read (unreachable, or "
                 "outside MPI with no progress thread)",
                 late);
    double deadline = ms_now() + 1.0; /* one second to tell which keys are missing */
    for (size_t i = from; i < nkeys; i++) {
        int found = 0, home = -1;
        ms_key_t hk;
        if (ms_key_prepare(s, keys[i], &hk) == 0)
            home = hk.rank;
        ms_key_release(&hk);
        if (home != late && !ms_expired(deadline) && present(s, keys[i], deadline, &found) == 0 &&
            found)
            continue;
        missing++;
        ms_key_t k;
        if (ms_key_prepare(s, keys[i], &k) == 0 && used < sizeof list - 1) {
            int n = snprintf(list + used, sizeof list - used, "%s'%.48s' (home rank %d)",
                             missing > 1 ? ", " : "", k.full, k.rank);
            used += n > 0 ? (size_t)n : 0;
            if (used >= sizeof list)
                used = sizeof list - 1;
        }
        ms_key_release(&k);
    }
    return ms_err(s, MPISTORE_ETIMEDOUT,
                  "timeout after %.3f s in wait: %zu of %zu keys missing: %s%s", ms_now() - t0,
                  missing ? missing : 1, nkeys, list, cause);
}

int mpistore_wait(mpistore_t *s, const char *const *keys, size_t nkeys, double timeout_s)
{
    MS_ENTER(s);
    int rc = ms_keys_check(s, keys, nkeys, "wait");
    if (rc == 0 &&
        !(timeout_s == MPISTORE_TIMEOUT_DEFAULT || (timeout_s >= 0 && isfinite(timeout_s))))
        rc = ms_err(s, MPISTORE_EINVAL,
                    "wait: timeout %g is neither >= 0 nor MPISTORE_TIMEOUT_DEFAULT", timeout_s);
    double t0 = ms_now();
    double deadline = ms_deadline(timeout_s == MPISTORE_TIMEOUT_DEFAULT ? s->timeout : timeout_s);
    double saved = ms_rq_begin(s, deadline);
    for (size_t i = 0; rc == 0 && i < nkeys; i++) {
        ms_key_t k;
        rc = ms_key_prepare(s, keys[i], &k);
        if (rc == 0)
            rc = await(s, &k, keys[i], t0, deadline, NULL);
        ms_key_release(&k);
        if (rc == -MPISTORE_ETIMEDOUT)
            rc = wait_timeout(s, keys, nkeys, i, t0);
    }
    ms_rq_end(s, saved);
    ms_leave(s->core);
    return rc;
}

/* ---- multi_get: the validated read of many keys, batched ----
 * One round reads every pending key's probe window (one flush of the ranks
 * involved), then the block and counter word of each key's single
 * candidate (one flush), then their descriptors again (one flush): 3 round trips
 * for any number of keys instead of 3 per key.  Each key's candidate is
 * validated by ms_validate, as in ms_lookup.  A key whose window shows
 * several candidates (a fingerprint collision) is read alone with find(). */
#define MG_CHUNK 64 /* keys per round: bounds the snapshot memory */

typedef struct mg {
    ms_key_t k;
    ms_snap_t sn;
    size_t cand; /* the candidate slot in sn; SIZE_MAX: none or several */
    int ncand;
    ms_block_t blk;
    int64_t cnt;
    uint64_t d3;
    int torn; /* the block header was impossible: only a moved descriptor explains it */
    int found;
} mg_t;

static void mg_release(mg_t *m)
{
    ms_block_release(&m->blk);
}

/* The distinct ranks a round talks to (at most 2 per key). */
typedef struct mg_targets {
    int r[2 * MG_CHUNK];
    size_t n;
} mg_targets_t;

static void mg_target(mg_targets_t *t, int rank)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->r[i] == rank)
            return;
    t->r[t->n++] = rank;
}

/* One round over the not-yet-found keys of m[0..n): sets found and moves
 * the block to vals/ls.  *progress: how many were found. */
static int mg_round(mpistore_t *s, mg_t *m, size_t n, double deadline, void **vals, size_t *ls,
                    size_t *progress)
{
    int rc = 0, any = 0;
    mg_targets_t homes = {.n = 0}, all = {.n = 0};
    *progress = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!m[i].found) {
            rc = ms_snapshot_issue(s, &m[i].k, &m[i].sn);
            mg_target(&homes, m[i].k.rank);
            mg_target(&all, m[i].k.rank);
        }
    if (rc == 0)
        rc = ms_flush_ranks(s, homes.r, homes.n);
    for (size_t i = 0; rc == 0 && i < n; i++) /* index levels grown since (rare) */
        if (!m[i].found)
            rc = ms_snapshot_fix(s, &m[i].k, &m[i].sn);
    /* the buffers first, then the gets: nothing may fail between issue and flush */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        mg_t *x = &m[i];
        x->cand = SIZE_MAX;
        x->ncand = 0;
        if (x->found)
            continue;
        for (size_t j = 0; j < x->sn.n; j++)
            if (ms_snap_candidate(&x->sn, j, x->k.fp)) {
                x->ncand++;
                x->cand = j;
            }
        if (x->ncand != 1) {
            x->cand = SIZE_MAX;
            continue;
        }
        rc = ms_block_alloc(s, x->sn.desc[x->cand], ms_snap_blen(&x->sn, x->cand), &x->blk);
        any = 1;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        mg_t *x = &m[i];
        if (x->found || x->cand == SIZE_MAX)
            continue;
        rc = ms_block_fetch(s, x->sn.desc[x->cand], &x->blk);
        if (rc == 0)
            rc = ms_getacc_i64(s, ms_snap_target(&x->sn, x->cand),
                               ms_snap_cnt_off(&x->sn, x->cand), &x->cnt);
        mg_target(&all, ms_desc_rank(x->sn.desc[x->cand]));
    }
    if (rc == 0 && any)
        rc = ms_flush_ranks(s, all.r, all.n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        mg_t *x = &m[i];
        if (x->found || x->cand == SIZE_MAX)
            continue;
        rc = ms_block_complete(s, x->sn.desc[x->cand], &x->blk, 1, &x->torn);
        if (rc == 0)
            rc = ms_read_u64(s, ms_snap_target(&x->sn, x->cand), ms_snap_desc_off(&x->sn, x->cand),
                             &x->d3);
    }
    if (rc == 0 && any)
        rc = ms_flush_ranks(s, homes.r, homes.n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        mg_t *x = &m[i];
        if (x->found)
            continue;
        if (x->ncand > 1) { /* several candidates: the one-key path */
            rc = find(s, &x->k, deadline, &x->found, &x->blk);
        } else if (x->cand != SIZE_MAX) { /* moved: not found, the next round reads again */
            rc = ms_validate(s, &x->k, x->sn.desc[x->cand], x->d3, x->torn, x->cnt, &x->blk);
            x->found = rc == MS_SLOT_KEY;
            rc = rc < 0 ? rc : 0;
        }
        if (rc == 0 && x->found) {
            rc = block_to_value(s, &x->blk, &vals[i], &ls[i]);
            (*progress)++;
        }
        ms_block_release(&x->blk);
    }
    return rc;
}

/* A round can miss a key that exists: a writer was republishing it (slot
 * locked or descriptor moved).  A full store may end a wait at once only for
 * a key that is absent, so confirm with the validated one-key lookup, which
 * retries through such disturbances: *absent = 1 if some pending key is. */
static int mg_any_absent(mpistore_t *s, mg_t *m, size_t n, double deadline, int *absent)
{
    *absent = 0;
    for (size_t i = 0; i < n && !*absent; i++) {
        if (m[i].found)
            continue;
        ms_block_t b = {0};
        int found = 0, rc = find(s, &m[i].k, deadline, &found, &b);
        if (rc)
            return rc;
        if (found)
            ms_block_release(&b);
        else
            *absent = 1;
    }
    return 0;
}

/* multi_get of keys[0..n) into vals/ls, waiting until every key exists. */
static int mg_chunk(mpistore_t *s, const char *const *keys, size_t n, double t0, double deadline,
                    void **vals, size_t *ls)
{
    mg_t *m = calloc(n, sizeof *m);
    int rc = m ? 0 : ms_err(s, MPISTORE_ENOMEM, "multi_get: out of memory for %zu keys", n);
    size_t prepared = 0, left = n;
    for (; rc == 0 && prepared < n; prepared++)
        rc = ms_key_prepare(s, keys[prepared], &m[prepared].k);
    ms_backoff_t bo = {0};
    while (rc == 0 && left > 0) {
        size_t got = 0;
        rc = mg_round(s, m, n, deadline, vals, ls, &got);
        left -= got;
        if (rc || left == 0 || got > 0)
            continue;
        if ((rc = ms_fail_check(s, "a multi_get of absent keys"))) { /* a full store */
            int absent = 0;
            rc = mg_any_absent(s, m, n, deadline, &absent);
            if (rc == 0 && !absent)
                continue; /* every key was there, only disturbed: another round */
            if (rc == 0)
                rc = ms_fail_check(s, "a multi_get of absent keys");
            break;
        }
        if (ms_expired(deadline)) {
            size_t i = 0;
            while (m[i].found)
                i++;
            rc = ms_err(s, MPISTORE_ETIMEDOUT, KEY_WAIT_TIMEOUT, ms_now() - t0, m[i].k.full,
                        m[i].k.rank);
            break;
        }
        ms_backoff(s, &bo);
    }
    for (size_t i = 0; m && i < prepared; i++) {
        mg_release(&m[i]);
        ms_key_release(&m[i].k);
    }
    free(m);
    return rc;
}

int mpistore_multi_get(mpistore_t *s, const char *const *keys, size_t nkeys, void **values,
                       size_t *lens)
{
    MS_ENTER(s);
    int rc = ms_keys_check(s, keys, nkeys, "multi_get");
    if (rc == 0 && nkeys > 0 && (!values || !lens))
        rc = ms_err(s, MPISTORE_EINVAL, "multi_get: values or lens is NULL");
    void **vals = NULL;
    size_t *ls = NULL;
    if (rc == 0 && nkeys > 0) {
        vals = calloc(nkeys, sizeof *vals);
        ls = calloc(nkeys, sizeof *ls);
        if (!vals || !ls)
            rc = ms_err(s, MPISTORE_ENOMEM, "multi_get: out of memory for %zu keys", nkeys);
    }
    double t0 = ms_now(), deadline = ms_deadline(s->timeout), saved = ms_rq_begin(s, deadline);
    for (size_t done = 0; rc == 0 && done < nkeys; done += MG_CHUNK) {
        size_t n = nkeys - done < MG_CHUNK ? nkeys - done : MG_CHUNK;
        rc = mg_chunk(s, keys + done, n, t0, deadline, vals + done, ls + done);
    }
    ms_rq_end(s, saved);
    if (rc)
        rc = ms_rq_context(s, rc, "timeout after %.3f s in multi_get of %zu keys", ms_now() - t0,
                           nkeys);
    if (rc == 0) {
        for (size_t i = 0; i < nkeys; i++) {
            values[i] = vals[i];
            lens[i] = ls[i];
        }
    } else if (vals) {
        for (size_t i = 0; i < nkeys; i++)
            free(vals[i]);
    }
    free(vals);
    free(ls);
    ms_leave(s->core);
    return rc;
}

int mpistore_num_keys(mpistore_t *s, int64_t *count)
{
    MS_ENTER(s);
    ms_core_t *c = s->core;
    int rc = 0;
    int64_t *per = NULL; /* per rank: keys, internal (queue) keys */
    if (!count)
        rc = ms_err(s, MPISTORE_EINVAL, "num_keys: count is NULL");
    if (rc == 0 && !(per = calloc(2 * (size_t)c->nranks, sizeof *per)))
        rc = ms_err(s, MPISTORE_ENOMEM, "num_keys: out of memory");
    for (int r = 0; rc == 0 && r < c->nranks; r++) {
        rc = ms_getacc_i64(s, r, MS_OFF_COUNT, &per[2 * r]);
        if (rc == 0)
            rc = ms_getacc_i64(s, r, MS_OFF_QCOUNT, &per[2 * r + 1]);
    }
    if (rc == 0)
        rc = ms_flush_all(s);
    if (rc == 0) {
        int64_t sum = 0;
        for (int r = 0; r < c->nranks; r++) /* the two words are read apart: */
            sum += per[2 * r] > per[2 * r + 1] ? per[2 * r] - per[2 * r + 1] : 0; /* never < 0 */
        *count = sum;
    }
    free(per);
    ms_leave(c);
    return rc;
}
