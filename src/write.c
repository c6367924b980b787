/* The write engine (docs/design.md, "Writer locking", "Inserts",
 * "Counters"): set, add, compare_set, append, delete_key, multi_set and the
 * queues' push and pop (queue.c) are one request type (write_plan.h) on one
 * path.  A write reads plan, lock, decide, publish; top down:
 *
 *   public calls           the arguments checked, one request made
 *   write_until            look (the window snapshot), try, back off, again
 *     try_slots            each slot that may hold the key:
 *       mpistore__counter_meet      an announced add: no lock on a counter (counters.c)
 *       mpistore__update_slot       else lock, decide, publish (write_update.c)
 *     mpistore__insert            no slot holds the key (write_insert.c)
 *
 * The counter decision is made in one place, mpistore__counter_rule
 * (write_plan.c); the engine only acts on the answer, and counters.c does
 * the RMA of the counter protocol.  Statuses: status.h. */
#include "errors.h"
#include "wait.h"
#include "fail.h"
#include "write_plan.h"
#include "write_update.h"
#include "write_insert.h"
#include "write_publish.h"

#include <stdio.h>
#include <stdlib.h>

/* One pass over a snapshot: write the key in its slot.  MS_DONE, MS_RETRY,
 * MS_ABSENT (no slot holds the key) or <0.  *registered: this add announced
 * itself before the snapshot (counters.c); cleared when it takes the locked
 * path. */
static int try_slots(const mpistore__write_t *x, const mpistore__snap_t *sn, int *registered)
{
    for (size_t i = 0; i < sn->n; i++) {
        if (!mpistore__snap_candidate(sn, i, x->k->fp))
            continue;
        if (!mpistore__snap_stable(sn, i))
            return MS_RETRY;
        int rc = MS_LOCKED_PATH;
        if (*registered) { /* one question to counters.c: add, or withdraw */
            rc = mpistore__counter_meet(x->c, x->k, sn, i, x->w->delta, &x->w->sum);
            if (rc == MS_DONE)
                mpistore__watch_make(x->k, sn, i, sn->desc[i], &x->w->watch);
            *registered = rc != MS_LOCKED_PATH;
        }
        if (rc == MS_LOCKED_PATH)
            rc = mpistore__update_slot(x, sn, i);
        if (rc != MS_OTHER_KEY)
            return rc;
    }
    return MS_ABSENT;
}

/* No candidate slot of the key is locked or between versions. */
static int candidates_stable(const mpistore__snap_t *sn, uint32_t fp)
{
    for (size_t i = 0; i < sn->n; i++)
        if (mpistore__snap_candidate(sn, i, fp) && !mpistore__snap_stable(sn, i))
            return 0;
    return 1;
}

/* Does w write the key when it is absent?  Then its first look may claim the
 * home slot (mpistore__snapshot_claim): a key that has never been there is
 * inserted in two round trips.  Not where a read may have to give up at a
 * deadline (request-based reads): a claim that may have landed cannot be
 * abandoned. */
static int claims(const mpistore__core_t *c, const mpistore__wreq_t *w)
{
    /* (level 0, where the home slot is, is the allocated window: on one
     * node the swap completes at its call and cannot be abandoned) */
    if (c->rma.rq.use && !mpistore__rma_immediate(&c->rma, 0))
        return 0;
    switch (w->kind) {
    case W_SET:
    case W_ADD:
    case W_APPEND:
    case W_QPUSH:
        return 1;
    case W_CAS:
        return w->explen == 0; /* a missing key matches "" only */
    default:
        return 0;
    }
}

/* The write loop on a prepared key (user or internal). */
static int write_until(mpistore__core_t *c, const mpistore__key_t *kp, mpistore__wreq_t *w,
                       double deadline)
{
    const mpistore__key_t k = *kp;
    const mpistore__write_t x = {.c = c, .k = &k, .w = w, .deadline = deadline};
    mpistore__snap_t sn;
    mpistore__backoff_t bo = {0};
    double t0 = mpistore__now();
    int rc;
    /* An add registers before it reads the window: it may then add to a
     * counter without its lock (counters.c).  After a try that found the
     * slot locked it watches without registering until the slot is free:
     * the lock holder may be waiting for registrations to end, and an adder
     * that registered for every look could keep it waiting for ever. */
    int reg = mpistore__counter_rule(c, w, NULL).announce, watch = 0, claim = claims(c, w);
    if ((rc = mpistore__ft_known(&c->ft, &c->err, k.rank, "key", k.full)))
        return rc; /* its home rank is known dead: nothing to write to */
    for (;;) {
        int registered = 0;
        rc = reg && !watch ? mpistore__reg_set(c, &k) : 0;
        registered = rc == 0 && reg && !watch;
        int claimed = 0;
        if (rc == 0 && claim) /* the first look: claim a home slot never used */
            rc = mpistore__snapshot_claim(c, &k, &sn, &claimed);
        else if (rc == 0) /* nothing locked yet: a rank that does not answer costs the deadline */
            rc = mpistore__snapshot_until(c, &k, &sn, deadline);
        claim = 0;
        if (rc == 0 && claimed) {
            rc = MS_ABSENT; /* nobody ever inserted a key of this home: insert, holding it */
        } else if (rc == 0 && watch) {
            watch = 0;
            if (candidates_stable(&sn, k.fp))
                continue; /* register and look again at once */
            rc = MS_RETRY;
        } else if (rc == 0) {
            rc = try_slots(&x, &sn, &registered);
        }
        if (registered) {
            int urc = mpistore__reg_clear(c);
            if (rc >= 0 && urc)
                rc = urc;
        }
        if (claimed && rc < 0) { /* the home slot claimed, then a failure: give it back */
            const uint32_t never = 0;
            (void)mpistore__unlock_unchanged(
                c, k.rank, mpistore__ctl_off(&c->lay, k.home, MS_CTL_LOCK), &never);
        }
        if (rc == MS_ABSENT)
            rc = mpistore__insert(&x, &sn, claimed);
        if (rc != MS_DONE) { /* results of an attempt that did not complete */
            free(w->cur);
            w->cur = NULL;
        }
        if (rc == MS_DONE && w->deleted) /* room again: waits need not fail fast */
            rc = mpistore__fail_clear(&c->rma);
        if (rc < 0 || rc == MS_DONE)
            break;
        if (rc == MS_RETRY_NOW)
            continue; /* grown: the next look finds room (at most once per level) */
        watch = reg;
        double now = mpistore__now();
        if ((rc = mpistore__ft_check(&c->ft, c->rma.w.comm, &c->err, k.rank, "key", k.full,
                                     now - t0)))
            break; /* the key's home rank died */
        if ((rc = mpistore__ft_stuck(&c->ft, &c->err, "a write of key", k.full, k.rank, now - t0)))
            break; /* a rank died, and the slot's lock is not given back */
        if (now >= deadline) {
            rc = mpistore__err(
                &c->err, MPISTORE_ETIMEDOUT,
                "timeout after %.3f s waiting for the lock of key '%.64s' (home rank %d)", now - t0,
                k.full, k.rank);
            break;
        }
        mpistore__backoff(c->rma.w.comm, &c->lock, &bo);
    }
    return rc;
}

static int write_key(mpistore_t *s, const char *key, mpistore__wreq_t *w, double deadline)
{
    mpistore__key_t k;
    int rc = mpistore__key_of(s, key, &k);
    if (rc == 0)
        rc = write_until(s->core, &k, w, deadline);
    mpistore__key_release(&k);
    return rc;
}

int mpistore__check_value(mpistore_t *s, const void *v, size_t len, const char *what)
{
    if (!v && len > 0)
        return mpistore__err(mpistore__sink(s), MPISTORE_EINVAL, "%s is NULL with length %zu", what,
                             len);
    if (len > s->core->lay.max_value_len)
        return mpistore__err(mpistore__sink(s), MPISTORE_ETOOBIG,
                             "%s is %zu bytes, max_value_len is %zu", what, len,
                             s->core->lay.max_value_len);
    return 0;
}

int mpistore__set_until(mpistore_t *s, const char *key, const void *value, size_t len,
                        double deadline)
{
    int rc = mpistore__check_value(s, value, len, "value");
    if (rc)
        return rc;
    mpistore__wreq_t w = {.kind = W_SET, .val = value, .vlen = len};
    return write_key(s, key, &w, deadline);
}

int mpistore_set(mpistore_t *s, const char *key, const void *value, size_t len)
{
    MS_ENTER(s);
    return mpistore__api_leave(
        s, mpistore__set_until(s, key, value, len, mpistore__deadline(s->timeout)));
}

/* multi_set: every key and value is checked before the first set; each
 * set has the handle's timeout. */
int mpistore_multi_set(mpistore_t *s, const char *const *keys, const void *const *values,
                       const size_t *lens, size_t nkeys)
{
    MS_ENTER(s);
    int rc = mpistore__keys_of(s, keys, nkeys, "multi_set");
    if (rc == 0 && nkeys > 0 && (!values || !lens))
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL, "multi_set: values or lens is NULL");
    for (size_t i = 0; rc == 0 && i < nkeys; i++) {
        char what[48];
        snprintf(what, sizeof what, "multi_set: value %zu", i);
        rc = mpistore__check_value(s, values[i], lens[i], what);
    }
    for (size_t i = 0; rc == 0 && i < nkeys; i++)
        rc = mpistore__set_until(s, keys[i], values[i], lens[i], mpistore__deadline(s->timeout));
    return mpistore__api_leave(s, rc);
}

int mpistore__add_until(mpistore_t *s, const char *key, int64_t delta, double deadline,
                        int64_t *result, mpistore__watch_t *watch)
{
    mpistore__wreq_t w = {.kind = W_ADD, .delta = delta};
    int rc = write_key(s, key, &w, deadline);
    if (rc == 0 && result)
        *result = w.sum;
    if (rc == 0 && watch)
        *watch = w.watch;
    return rc;
}

int mpistore_add(mpistore_t *s, const char *key, int64_t delta, int64_t *result)
{
    MS_ENTER(s);
    return mpistore__api_leave(
        s, mpistore__add_until(s, key, delta, mpistore__deadline(s->timeout), result, NULL));
}

int mpistore_compare_set(mpistore_t *s, const char *key, const void *expected, size_t expected_len,
                         const void *desired, size_t desired_len, void **current,
                         size_t *current_len)
{
    MS_ENTER(s);
    int rc = 0;
    if (!current || !current_len)
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL,
                           "compare_set: current or current_len is NULL");
    if (rc == 0 && !expected && expected_len > 0)
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL,
                           "compare_set: expected is NULL with length %zu", expected_len);
    if (rc == 0)
        rc = mpistore__check_value(s, desired, desired_len, "desired value");
    if (rc == 0) {
        mpistore__wreq_t w = {.kind = W_CAS,
                              .val = desired,
                              .vlen = desired_len,
                              .exp = expected,
                              .explen = expected_len};
        rc = write_key(s, key, &w, mpistore__deadline(s->timeout));
        if (rc == 0) {
            *current = w.cur;
            *current_len = w.curlen;
        }
    }
    return mpistore__api_leave(s, rc);
}

int mpistore_append(mpistore_t *s, const char *key, const void *value, size_t len)
{
    MS_ENTER(s);
    int rc = mpistore__check_value(s, value, len, "value");
    if (rc == 0) {
        mpistore__wreq_t w = {.kind = W_APPEND, .val = value, .vlen = len};
        rc = write_key(s, key, &w, mpistore__deadline(s->timeout));
    }
    return mpistore__api_leave(s, rc);
}

int mpistore_delete_key(mpistore_t *s, const char *key, bool *deleted)
{
    MS_ENTER(s);
    mpistore__wreq_t w = {.kind = W_DELETE};
    int rc = write_key(s, key, &w, mpistore__deadline(s->timeout));
    if (rc == 0 && deleted)
        *deleted = w.deleted;
    return mpistore__api_leave(s, rc);
}

/* ---- on prepared keys, for the queues (called with the core entered) ---- */

int mpistore__kwrite(mpistore__core_t *c, const mpistore__key_t *k, mpistore__wreq_t *w,
                     double deadline)
{
    return write_until(c, k, w, deadline);
}

int mpistore__kqpush(mpistore_t *s, const mpistore__key_t *k, const void *record, size_t len,
                     double deadline)
{
    mpistore__wreq_t w = {.kind = W_QPUSH, .val = record, .vlen = len};
    return write_until(s->core, k, &w, deadline);
}

int mpistore__kqpop(mpistore_t *s, const mpistore__key_t *k, double deadline, int *popped,
                    void **value, size_t *len)
{
    mpistore__wreq_t w = {.kind = W_QPOP};
    int rc = write_until(s->core, k, &w, deadline);
    if (rc == 0) {
        *popped = w.popped;
        if (w.popped) {
            *value = w.cur;
            *len = w.curlen;
        }
    }
    return rc;
}
