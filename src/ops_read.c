/* Reading operations: get, check, wait, multi_get, num_keys.
 * Lookups are lock-free validated reads (docs/design.md, "Reader validation"). */
#include "errors.h"
#include "wait.h"
#include "fail.h"
#include "ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One validated lookup, retried while concurrent publications disturb it.
 * On found, *b holds the key's block. */
static int find(mpistore_t *s, const mpistore__key_t *k, double deadline, int *found,
                mpistore__block_t *b)
{
    mpistore__snap_t sn;
    mpistore__backoff_t bo = {0};
    int rc = mpistore__ft_known(&s->core->ft, mpistore__sink(s), k->rank, "key", k->full);
    if (rc)
        return rc; /* its home rank is known dead */
    for (;;) {
        rc = mpistore__snapshot(s->core, k, &sn);
        if (rc == 0)
            rc = mpistore__lookup(s->core, k, &sn, found, b);
        if (rc != MS_RETRY)
            return rc;
        if (mpistore__expired(deadline))
            return mpistore__err(mpistore__sink(s), MPISTORE_ETIMEDOUT,
                                 "timeout reading key '%.64s' (home rank %d): it kept changing",
                                 k->full, k->rank);
        mpistore__backoff(s->core->rma.w.comm, &s->core->lock, &bo);
    }
}

/* A wait for one key that ran out of time (get, wait, multi_get): seconds
 * waited, key, home rank. */
#define KEY_WAIT_TIMEOUT "timeout after %.3f s waiting for key '%.64s' (home rank %d)"

/* Wait until key k exists; on success *b (if non-NULL) holds its block.
 * Without b (wait), a non-empty queue under the user key `qkey` counts too. */
static int await(mpistore_t *s, const mpistore__key_t *k, const char *qkey, double t0,
                 double deadline, mpistore__block_t *b)
{
    mpistore__backoff_t bo = {0};
    for (;;) {
        mpistore__block_t blk = {0};
        int found = 0, rc = find(s, k, deadline, &found, &blk);
        if (rc == 0 && !found && !b)
            rc = mpistore__queue_nonempty(s, qkey, deadline, &found);
        if (rc)
            return mpistore__late_prefix(s->core, rc, KEY_WAIT_TIMEOUT, mpistore__now() - t0,
                                         k->full, k->rank);
        if (found) {
            if (b)
                *b = blk;
            else
                mpistore__block_release(&blk);
            return 0;
        }
        if ((rc = mpistore__fail_check(&s->core->rma,
                                       "a wait for an absent key"))) /* a full store: no waiting */
            return rc;
        double now = mpistore__now();
        if ((rc = mpistore__ft_check(&s->core->ft, s->core->rma.w.comm, mpistore__sink(s), k->rank,
                                     "key", k->full, now - t0)))
            return rc; /* its home rank (or, in a helper, any rank) died */
        if (now >= deadline)
            return mpistore__err(mpistore__sink(s), MPISTORE_ETIMEDOUT, KEY_WAIT_TIMEOUT, now - t0,
                                 k->full, k->rank);
        mpistore__backoff(s->core->rma.w.comm, &s->core->lock, &bo);
    }
}

static int block_to_value(mpistore_t *s, mpistore__block_t *b, void **value, size_t *len)
{
    size_t vlen = 0;
    const unsigned char *v = mpistore__block_value(b, &vlen);
    void *copy = mpistore__dup_value(v, vlen);
    mpistore__block_release(b);
    if (!copy)
        return mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM,
                             "out of memory for a %zu-byte value", vlen);
    *value = copy;
    *len = vlen;
    return 0;
}

static int get_one(mpistore_t *s, const char *key, double t0, double deadline, void **value,
                   size_t *len)
{
    mpistore__key_t k;
    mpistore__block_t b = {0};
    int rc = mpistore__key_of(s, key, &k);
    if (rc == 0)
        rc = await(s, &k, key, t0, deadline, &b);
    if (rc == 0)
        rc = block_to_value(s, &b, value, len);
    mpistore__key_release(&k);
    return rc;
}

int mpistore__get_until(mpistore_t *s, const char *key, double deadline, void **value, size_t *len)
{
    double saved = mpistore__rq_begin(&s->core->rma.rq, deadline);
    int rc = get_one(s, key, mpistore__now(), deadline, value, len);
    mpistore__rq_end(&s->core->rma.rq, saved);
    return rc;
}

int mpistore_get(mpistore_t *s, const char *key, void **value, size_t *len)
{
    MS_ENTER(s);
    int rc;
    if (!value || !len)
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL, "get: value or len is NULL");
    else
        rc = mpistore__get_until(s, key, mpistore__deadline(s->timeout), value, len);
    return mpistore__api_leave(s, rc);
}

static int present(mpistore_t *s, const char *key, double deadline, int *found)
{
    mpistore__key_t k;
    mpistore__block_t b = {0};
    int rc = mpistore__key_of(s, key, &k);
    if (rc == 0)
        rc = find(s, &k, deadline, found, &b);
    if (rc == 0 && !*found) /* check/wait: a non-empty queue is present */
        rc = mpistore__queue_nonempty(s, key, deadline, found);
    if (rc)
        rc = mpistore__late_prefix(s->core, rc, "timeout looking for key '%.64s' (home rank %d)",
                                   k.full, k.rank);
    mpistore__block_release(&b);
    mpistore__key_release(&k);
    return rc;
}

int mpistore__check_keys(mpistore_t *s, const char *const *keys, size_t nkeys, double deadline,
                         bool *all)
{
    int rc = 0, found = 1;
    double saved = mpistore__rq_begin(&s->core->rma.rq, deadline);
    for (size_t i = 0; rc == 0 && found && i < nkeys; i++)
        rc = present(s, keys[i], deadline, &found);
    mpistore__rq_end(&s->core->rma.rq, saved);
    if (rc == 0)
        *all = found != 0;
    return rc;
}

int mpistore_check(mpistore_t *s, const char *const *keys, size_t nkeys, bool *all_present)
{
    MS_ENTER(s);
    int rc = all_present
                 ? mpistore__keys_of(s, keys, nkeys, "check")
                 : mpistore__err(mpistore__sink(s), MPISTORE_EINVAL, "check: all_present is NULL");
    if (rc == 0)
        rc = mpistore__check_keys(s, keys, nkeys, mpistore__deadline(s->timeout), all_present);
    return mpistore__api_leave(s, rc);
}

/* "timeout after X s in wait: 2 of 5 keys missing: 'a' (rank 1), 'b' (rank 0)",
 * and, when the wait ended because a rank did not answer an RMA read, which
 * (keys homed on that rank are then listed without being read again). */
static int wait_timeout(mpistore_t *s, const char *const *keys, size_t nkeys, size_t from,
                        double t0)
{
    char list[320] = "", cause[200] = "";
    size_t used = 0, missing = 0;
    int late = mpistore__rq_late(&s->core->rma.rq);
    if (late >= 0)
        snprintf(cause, sizeof cause,
                 "; rank %d did not answer an RMA read (unreachable, or "
                 "outside MPI with no progress thread)",
                 late);
    double deadline = mpistore__now() + 1.0; /* one second to tell which keys are missing */
    for (size_t i = from; i < nkeys; i++) {
        int found = 0, home = -1;
        mpistore__key_t hk;
        if (mpistore__key_of(s, keys[i], &hk) == 0)
            home = hk.rank;
        mpistore__key_release(&hk);
        if (home != late && !mpistore__expired(deadline) &&
            present(s, keys[i], deadline, &found) == 0 && found)
            continue;
        missing++;
        mpistore__key_t k;
        if (mpistore__key_of(s, keys[i], &k) == 0 && used < sizeof list - 1) {
            int n = snprintf(list + used, sizeof list - used, "%s'%.48s' (home rank %d)",
                             missing > 1 ? ", " : "", k.full, k.rank);
            used += n > 0 ? (size_t)n : 0;
            if (used >= sizeof list)
                used = sizeof list - 1;
        }
        mpistore__key_release(&k);
    }
    return mpistore__err(mpistore__sink(s), MPISTORE_ETIMEDOUT,
                         "timeout after %.3f s in wait: %zu of %zu keys missing: %s%s",
                         mpistore__now() - t0, missing ? missing : 1, nkeys, list, cause);
}

int mpistore__wait_until(mpistore_t *s, const char *const *keys, size_t nkeys, double deadline)
{
    int rc = 0;
    double t0 = mpistore__now(), saved = mpistore__rq_begin(&s->core->rma.rq, deadline);
    for (size_t i = 0; rc == 0 && i < nkeys; i++) {
        mpistore__key_t k;
        rc = mpistore__key_of(s, keys[i], &k);
        if (rc == 0)
            rc = await(s, &k, keys[i], t0, deadline, NULL);
        mpistore__key_release(&k);
        if (rc == -MPISTORE_ETIMEDOUT)
            rc = wait_timeout(s, keys, nkeys, i, t0);
    }
    mpistore__rq_end(&s->core->rma.rq, saved);
    return rc;
}

int mpistore_wait(mpistore_t *s, const char *const *keys, size_t nkeys, double timeout_s)
{
    MS_ENTER(s);
    int rc = mpistore__keys_of(s, keys, nkeys, "wait");
    if (rc == 0 &&
        !(timeout_s == MPISTORE_TIMEOUT_DEFAULT || (timeout_s >= 0 && isfinite(timeout_s))))
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL,
                           "wait: timeout %g is neither >= 0 nor MPISTORE_TIMEOUT_DEFAULT",
                           timeout_s);
    double t = timeout_s == MPISTORE_TIMEOUT_DEFAULT ? s->timeout : timeout_s;
    if (rc == 0)
        rc = mpistore__wait_until(s, keys, nkeys, mpistore__deadline(t));
    return mpistore__api_leave(s, rc);
}

/* ---- multi_get: the validated read of many keys, batched ----
 * One round reads every pending key's probe window (one flush of the ranks
 * involved), then the block and counter word of each key's single
 * candidate (one flush), then their descriptors again (one flush): 3 round trips
 * for any number of keys instead of 3 per key.  Each key's candidate is
 * validated by mpistore__validate, as in mpistore__lookup.  A key whose window shows
 * several candidates (a fingerprint collision) is read alone with find(). */
#define MG_CHUNK 64 /* keys per round: bounds the snapshot memory */

typedef struct mg {
    mpistore__key_t k;
    mpistore__snap_t sn;
    size_t cand; /* the candidate slot in sn; SIZE_MAX: none or several */
    int ncand;
    mpistore__block_t blk;
    int64_t cnt;
    uint64_t d3;
    int torn; /* the block header was impossible: only a moved descriptor explains it */
    int found;
} mg_t;

static void mg_release(mg_t *m)
{
    mpistore__block_release(&m->blk);
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
            rc = mpistore__snapshot_issue(s->core, &m[i].k, &m[i].sn);
            mg_target(&homes, m[i].k.rank);
            mg_target(&all, m[i].k.rank);
        }
    if (rc == 0)
        rc = mpistore__flush_ranks(&s->core->rma, homes.r, homes.n);
    for (size_t i = 0; rc == 0 && i < n; i++) /* index levels grown since (rare) */
        if (!m[i].found)
            rc = mpistore__snapshot_fix(s->core, &m[i].k, &m[i].sn);
    /* the buffers first, then the gets: nothing may fail between issue and flush */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        mg_t *x = &m[i];
        x->cand = SIZE_MAX;
        x->ncand = 0;
        if (x->found)
            continue;
        for (size_t j = 0; j < x->sn.n; j++)
            if (mpistore__snap_candidate(&x->sn, j, x->k.fp)) {
                x->ncand++;
                x->cand = j;
            }
        if (x->ncand != 1) {
            x->cand = SIZE_MAX;
            continue;
        }
        rc = mpistore__block_alloc(s->core, x->sn.desc[x->cand],
                                   mpistore__snap_blen(&x->sn, x->cand), &x->blk);
        any = 1;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        mg_t *x = &m[i];
        if (x->found || x->cand == SIZE_MAX)
            continue;
        rc = mpistore__block_fetch(s->core, x->sn.desc[x->cand], &x->blk);
        if (rc == 0)
            rc = mpistore__read_i64(&s->core->rma, mpistore__snap_target(&x->sn, x->cand),
                                    mpistore__snap_cnt_off(&x->sn, x->cand), &x->cnt);
        mg_target(&all, mpistore__desc_rank(x->sn.desc[x->cand]));
    }
    if (rc == 0 && any)
        rc = mpistore__flush_ranks(&s->core->rma, all.r, all.n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        mg_t *x = &m[i];
        if (x->found || x->cand == SIZE_MAX)
            continue;
        rc = mpistore__block_complete(s->core, x->sn.desc[x->cand], &x->blk, 1, &x->torn);
        if (rc == 0)
            rc = mpistore__read_u64(&s->core->rma, mpistore__snap_target(&x->sn, x->cand),
                                    mpistore__snap_desc_off(&x->sn, x->cand), &x->d3);
    }
    if (rc == 0 && any)
        rc = mpistore__flush_ranks(&s->core->rma, homes.r, homes.n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        mg_t *x = &m[i];
        if (x->found)
            continue;
        if (x->ncand > 1) { /* several candidates: the one-key path */
            rc = find(s, &x->k, deadline, &x->found, &x->blk);
        } else if (x->cand != SIZE_MAX) { /* moved: not found, the next round reads again */
            rc = mpistore__validate(s->core, &x->k, x->sn.desc[x->cand], x->d3, x->torn, x->cnt,
                                    &x->blk);
            x->found = rc == MS_DONE;
            rc = rc < 0 ? rc : 0;
        }
        if (rc == 0 && x->found) {
            rc = block_to_value(s, &x->blk, &vals[i], &ls[i]);
            (*progress)++;
        }
        mpistore__block_release(&x->blk);
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
        mpistore__block_t b = {0};
        int found = 0, rc = find(s, &m[i].k, deadline, &found, &b);
        if (rc)
            return rc;
        if (found)
            mpistore__block_release(&b);
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
    int rc = m ? 0
               : mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM,
                               "multi_get: out of memory for %zu keys", n);
    size_t prepared = 0, left = n;
    for (; rc == 0 && prepared < n; prepared++)
        rc = mpistore__key_of(s, keys[prepared], &m[prepared].k);
    mpistore__backoff_t bo = {0};
    while (rc == 0 && left > 0) {
        size_t got = 0;
        rc = mg_round(s, m, n, deadline, vals, ls, &got);
        left -= got;
        if (rc || left == 0 || got > 0)
            continue;
        if ((rc = mpistore__fail_check(&s->core->rma,
                                       "a multi_get of absent keys"))) { /* a full store */
            int absent = 0;
            rc = mg_any_absent(s, m, n, deadline, &absent);
            if (rc == 0 && !absent)
                continue; /* every key was there, only disturbed: another round */
            if (rc == 0)
                rc = mpistore__fail_check(&s->core->rma, "a multi_get of absent keys");
            break;
        }
        double now = mpistore__now();
        for (size_t i = 0; rc == 0 && i < n; i++) /* a pending key's home rank died */
            if (!m[i].found)
                rc = mpistore__ft_check(&s->core->ft, s->core->rma.w.comm, mpistore__sink(s),
                                        m[i].k.rank, "key", m[i].k.full, now - t0);
        if (rc)
            break;
        if (now >= deadline) {
            size_t i = 0;
            while (m[i].found)
                i++;
            rc = mpistore__err(mpistore__sink(s), MPISTORE_ETIMEDOUT, KEY_WAIT_TIMEOUT, now - t0,
                               m[i].k.full, m[i].k.rank);
            break;
        }
        mpistore__backoff(s->core->rma.w.comm, &s->core->lock, &bo);
    }
    for (size_t i = 0; m && i < prepared; i++) {
        mg_release(&m[i]);
        mpistore__key_release(&m[i].k);
    }
    free(m);
    return rc;
}

int mpistore__multi_get_until(mpistore_t *s, const char *const *keys, size_t nkeys, double deadline,
                              void **values, size_t *lens)
{
    int rc = 0;
    void **vals = NULL;
    size_t *ls = NULL;
    if (nkeys > 0) {
        vals = calloc(nkeys, sizeof *vals);
        ls = calloc(nkeys, sizeof *ls);
        if (!vals || !ls)
            rc = mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM,
                               "multi_get: out of memory for %zu keys", nkeys);
    }
    double t0 = mpistore__now(), saved = mpistore__rq_begin(&s->core->rma.rq, deadline);
    for (size_t done = 0; rc == 0 && done < nkeys; done += MG_CHUNK) {
        size_t n = nkeys - done < MG_CHUNK ? nkeys - done : MG_CHUNK;
        rc = mg_chunk(s, keys + done, n, t0, deadline, vals + done, ls + done);
    }
    mpistore__rq_end(&s->core->rma.rq, saved);
    if (rc)
        rc = mpistore__late_prefix(s->core, rc, "timeout after %.3f s in multi_get of %zu keys",
                                   mpistore__now() - t0, nkeys);
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
    return rc;
}

int mpistore_multi_get(mpistore_t *s, const char *const *keys, size_t nkeys, void **values,
                       size_t *lens)
{
    MS_ENTER(s);
    int rc = mpistore__keys_of(s, keys, nkeys, "multi_get");
    if (rc == 0 && nkeys > 0 && (!values || !lens))
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL, "multi_get: values or lens is NULL");
    if (rc == 0)
        rc =
            mpistore__multi_get_until(s, keys, nkeys, mpistore__deadline(s->timeout), values, lens);
    return mpistore__api_leave(s, rc);
}

int mpistore_num_keys(mpistore_t *s, int64_t *count)
{
    MS_ENTER(s);
    mpistore__core_t *c = s->core;
    int rc = 0;
    int64_t *per = NULL; /* per rank: keys, internal (queue) keys */
    if (!count)
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL, "num_keys: count is NULL");
    if (rc == 0 && !(per = calloc(2 * (size_t)c->rma.w.nranks, sizeof *per)))
        rc = mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM, "num_keys: out of memory");
    for (int r = 0; rc == 0 && r < c->rma.w.nranks; r++) {
        rc = mpistore__read_i64(&s->core->rma, r, MS_OFF_COUNT, &per[2 * r]);
        if (rc == 0)
            rc = mpistore__read_i64(&s->core->rma, r, MS_OFF_QCOUNT, &per[2 * r + 1]);
    }
    if (rc == 0)
        rc = mpistore__flush_all(&s->core->rma);
    if (rc == 0) {
        int64_t sum = 0;
        for (int r = 0; r < c->rma.w.nranks; r++) /* the two words are read apart: */
            sum += per[2 * r] > per[2 * r + 1] ? per[2 * r] - per[2 * r + 1] : 0; /* never < 0 */
        *count = sum;
    }
    free(per);
    return mpistore__api_leave(s, rc);
}
