/* Elastic helpers (barrier, synchronize, get_all, store_timeout); a port of
 * torch/distributed/elastic/utils/store.py with its key names.  Each public
 * helper enters the core once and runs the operations layer's calls with
 * deadlines of its own: PyTorch's helpers set the store's timeout for their
 * duration (store_timeout), these give each step that timeout without
 * touching the handle's, which another thread may be using.  One shortcut:
 * a member that must wait watches the num_members counter its own add left
 * (one round trip per look, counters.c) instead of polling for last_member
 * (design.md, "Elastic helpers"). */
#include "errors.h"
#include "wait.h"
#include "fail.h"
#include "ops.h"
#include "write_plan.h"
#include "mpistore_elastic.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_MEMBERS "/num_members"
#define LAST_MEMBER "/last_member"
#define VAL_IGNORED "<val_ignored>"
#define TRACE "/TRACE"
#define TRACING_GATE "/TRACING_GATE"
#define FINISHED "/finished"
#define MAX_TRACE_MISSING 16 /* as PyTorch: list at most this many */
#define TRACE_GRACE_S 1.0    /* rank 0: time for the others' TRACE keys */
#define GATE_WAIT_S 2.0      /* others: time for rank 0's TRACING_GATE */

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 1);
    if (p) {
        memcpy(p, a, la);
        memcpy(p + la, b, lb + 1);
    }
    return p;
}

static char *join_int(const char *a, int i, const char *b)
{
    char num[16];
    snprintf(num, sizeof num, "%d", i);
    size_t la = strlen(a), ln = strlen(num), lb = strlen(b);
    char *p = malloc(la + ln + lb + 1);
    if (p) {
        memcpy(p, a, la);
        memcpy(p + la, num, ln);
        memcpy(p + la + ln, b, lb + 1);
    }
    return p;
}

static int valid_timeout(double t)
{
    return t >= 0 && isfinite(t);
}

/* Would key (prefix + the longest suffix used) be accepted?  Checked before
 * any side effect so that invalid arguments change nothing. */
static int check_prefix(mpistore_t *s, const char *prefix, const char *op, size_t suffix_len)
{
    if (!prefix)
        return mpistore__err(mpistore__sink(s), MPISTORE_EINVAL, "%s: key prefix is NULL", op);
    if (!prefix[0])
        return mpistore__err(mpistore__sink(s), MPISTORE_EINVAL, "%s: key prefix is empty", op);
    size_t total = s->prefix_len + strlen(prefix) + suffix_len;
    if (total > s->core->lay.max_key_len)
        return mpistore__err(
            mpistore__sink(s), MPISTORE_EKEYTOOLONG,
            "%s: key prefix '%.64s' makes keys of up to %zu bytes, max_key_len is %zu", op, prefix,
            total, s->core->lay.max_key_len);
    return 0;
}

static int check_group(mpistore_t *s, int rank, int world_size, int rank_may_be_negative,
                       const char *op)
{
    if (world_size < 1)
        return mpistore__err(mpistore__sink(s), MPISTORE_EINVAL, "%s: world_size %d < 1", op,
                             world_size);
    if (rank >= world_size || (!rank_may_be_negative && rank < 0))
        return mpistore__err(mpistore__sink(s), MPISTORE_EINVAL,
                             "%s: rank %d outside [0, world_size=%d)", op, rank, world_size);
    return 0;
}

int mpistore_swap_timeout(mpistore_t *s, double seconds, double *previous)
{
    if (!s)
        return mpistore__null_handle(__func__);
    double old = mpistore_timeout(s);
    int rc = mpistore_set_timeout(s, seconds);
    if (rc == 0 && previous)
        *previous = old;
    return rc;
}

/* What a member's arrival at a barrier told it. */
typedef struct arrival {
    int was_last;            /* it set last_member: it need not wait for a key it set */
    mpistore__watch_t watch; /* where the num_members counter is */
    int64_t arrived;         /* the count its add saw */
} arrival_t;

/* The arrival: add 1 to num_members; the last member sets last_member.
 * Each step has its own deadline, timeout seconds from its start.  *out
 * receives the last_member key (the caller frees it). */
static int barrier_arrive(mpistore_t *s, int world_size, const char *prefix, double timeout,
                          char **out, arrival_t *a)
{
    char *num = join(prefix, NUM_MEMBERS), *last = join(prefix, LAST_MEMBER);
    int64_t n = 0;
    int rc = 0;
    if (!num || !last)
        rc = mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM, "barrier: out of memory");
    if (rc == 0)
        rc = mpistore__add_until(s, num, 1, mpistore__deadline(timeout), &n, &a->watch);
    if (rc == 0 && n == world_size)
        rc = mpistore__set_until(s, last, VAL_IGNORED, strlen(VAL_IGNORED),
                                 mpistore__deadline(timeout));
    free(num);
    if (rc == 0) {
        a->was_last = n == world_size;
        a->arrived = n;
        *out = last;
    } else {
        free(last);
    }
    return rc;
}

int mpistore_barrier_nonblocking(mpistore_t *s, int world_size, const char *key_prefix,
                                 char **last_member_key)
{
    MS_ENTER(s);
    arrival_t a = {0};
    int rc = check_group(s, 0, world_size, 1, "barrier_nonblocking");
    if (rc == 0)
        rc = check_prefix(s, key_prefix, "barrier_nonblocking", strlen(NUM_MEMBERS));
    if (rc == 0 && !last_member_key)
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL,
                           "barrier_nonblocking: last_member_key is NULL");
    if (rc == 0)
        rc = barrier_arrive(s, world_size, key_prefix, s->timeout, last_member_key, &a);
    return mpistore__api_leave(s, rc);
}

#define MEMBERS_WAIT_TIMEOUT                                                                       \
    "timeout after %.3f s waiting for all %" PRId64 " members (%" PRId64 " arrived)"

/* Watch the counter that a member's add left (w, one round trip per look)
 * until it reaches world_size: MS_DONE, MS_GONE (the slot no longer holds
 * that counter: overwritten, deleted; the caller waits its own way), or <0
 * (ETIMEDOUT at the deadline, EPROCFAILED, a full store).  *seen: the last
 * count read. */
static int watch_count(mpistore_t *s, const mpistore__watch_t *w, int64_t world_size, double t0,
                       double deadline, const char *key, int64_t *seen)
{
    mpistore__core_t *c = s->core;
    mpistore__backoff_t bo = {0};
    int64_t v = *seen;
    int rc, peek = 0;
    double saved = mpistore__rq_begin(&c->rma.rq, deadline); /* a rank that stops answering */
    for (;;) {
        /* a glance (two reads, no registration) while the count is below
         * world_size; the registered watch decides when it looks reached or
         * the slot changed (and peeks while the slot is locked) */
        int64_t glimpse = v;
        rc = peek ? MS_BUSY : mpistore__counter_glance(c, w, &glimpse);
        if (rc == MS_DONE && glimpse < world_size)
            v = glimpse; /* not yet */
        else if (rc >= 0)
            rc = mpistore__counter_watch(c, w, peek, &v);
        if ((rc == MS_DONE && v >= world_size) || rc == MS_GONE || rc < 0)
            break;
        peek = rc == MS_BUSY;
        if (rc == MS_STABLE)
            continue; /* free again: look registered at once */
        if ((rc = mpistore__fail_check(&c->rma, "the barrier"))) /* a full store: no waiting */
            break;
        double now = mpistore__now();
        if ((rc = mpistore__ft_check(&c->ft, c->rma.w.comm, &c->err, -1, "barrier key", key,
                                     now - t0)))
            break; /* a member died (the helpers wait in an every-rank scope) */
        if (now >= deadline) {
            rc = mpistore__err(&c->err, MPISTORE_ETIMEDOUT, MEMBERS_WAIT_TIMEOUT, now - t0,
                               world_size, v);
            break;
        }
        mpistore__backoff(c->rma.w.comm, &c->lock, &bo);
    }
    mpistore__rq_end(&c->rma.rq, saved);
    *seen = v;
    if (rc != -MPISTORE_ETIMEDOUT)
        return rc;
    return mpistore__late_prefix(c, rc, MEMBERS_WAIT_TIMEOUT, mpistore__now() - t0, world_size, v);
}

/* A member that did not arrive last: wait until every member has arrived.
 * While the num_members counter is the one this member's add saw, watch it
 * (one round trip per look) until it reaches world_size; if it stops being
 * that counter (overwritten, deleted), wait for last_member as PyTorch does.
 * The last member sets last_member before its own barrier returns, so the
 * keys end up exactly as PyTorch leaves them.  One deadline, timeout from
 * now, for the whole wait. */
static int await_members(mpistore_t *s, const arrival_t *a, int world_size, const char *last,
                         double timeout)
{
    double t0 = mpistore__now(), deadline = mpistore__deadline_at(t0, timeout);
    int64_t v = 0;
    int rc = MS_GONE; /* no counter to watch: wait for last_member */
    /* only a member that saw the count below world_size watches it: one
     * that saw more (a stale num_members) waits for last_member as PyTorch */
    if (a->watch.valid && a->arrived >= 1 && a->arrived < world_size)
        rc = watch_count(s, &a->watch, world_size, t0, deadline, last, &v);
    if (rc == MS_DONE)
        return 0;
    if (rc != MS_GONE)
        return rc;
    /* what is left of the deadline (a moment at least) for last_member */
    double now = mpistore__now();
    void *val = NULL;
    size_t len = 0;
    rc = mpistore__get_until(s, last, timeout > 0 && deadline < now + 1e-6 ? now + 1e-6 : deadline,
                             &val, &len);
    free(val);
    return rc;
}

/* c10d's Store.barrier after a member's add returned n < world_size: watch
 * the counter; if it is no counter (or stops being the one the add saw),
 * read the key until its decimal value reaches world_size. */
static int await_count(mpistore_t *s, const char *key, const mpistore__watch_t *w, int64_t n,
                       int64_t world_size, double t0, double deadline)
{
    int64_t v = n;
    int rc = w->valid ? watch_count(s, w, world_size, t0, deadline, key, &v) : MS_GONE;
    mpistore__backoff_t bo = {0};
    while (rc == MS_GONE) {
        void *val = NULL;
        size_t len = 0;
        int64_t x = 0;
        rc = mpistore__get_until(s, key, deadline, &val, &len);
        int reached = rc == 0 && mpistore__parse_i64(val, len, &x) == 0 && x >= world_size;
        free(val);
        if (rc || reached)
            break;
        if (mpistore__expired(deadline))
            return mpistore__err(mpistore__sink(s), MPISTORE_ETIMEDOUT,
                                 "timeout after %.3f s waiting for all %" PRId64
                                 " members (key '%.64s' is not a count of them any more)",
                                 mpistore__now() - t0, world_size, key);
        mpistore__backoff(s->core->rma.w.comm, &s->core->lock, &bo);
        rc = MS_GONE;
    }
    return rc;
}

int mpistore_store_barrier(mpistore_t *s, const char *key, int64_t world_size, double timeout_s)
{
    MS_ENTER(s);
    int rc = 0;
    if (world_size < 1)
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL,
                           "store_barrier: world_size %" PRId64 " < 1", world_size);
    if (rc == 0 && timeout_s != MPISTORE_TIMEOUT_DEFAULT && !valid_timeout(timeout_s))
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL,
                           "store_barrier: timeout %g s must be finite and >= 0", timeout_s);
    if (rc)
        return mpistore__api_leave(s, rc);
    double t0 = mpistore__now();
    double deadline =
        mpistore__deadline(timeout_s == MPISTORE_TIMEOUT_DEFAULT ? s->timeout : timeout_s);
    mpistore__watch_t w = {0};
    int64_t n = 0;
    mpistore__ft_every_begin(&s->core->ft); /* a member's death fails the wait at once */
    rc = mpistore__add_until(s, key, 1, deadline, &n, &w); /* checks the key, too */
    if (rc == 0 && n < world_size)
        rc = await_count(s, key, &w, n, world_size, t0, deadline);
    mpistore__ft_every_end(&s->core->ft);
    return mpistore__api_leave(s, rc);
}

/* Does key exist within `seconds` (0: check once, reads bounded by
 * GATE_WAIT_S)? */
static int appears(mpistore_t *s, const char *key, double seconds)
{
    const char *keys[] = {key};
    if (seconds <= 0) {
        bool all = false;
        return mpistore__check_keys(s, keys, 1, mpistore__deadline(GATE_WAIT_S), &all) == 0 && all;
    }
    return mpistore__wait_until(s, keys, 1, mpistore__deadline(seconds)) == 0;
}

/* Is key homed on a rank known dead (it can be neither written nor read)? */
static int homed_dead(mpistore_t *s, const char *key)
{
    mpistore__key_t k;
    if (!key || mpistore__key_of(s, key, &k) != 0)
        return 0;
    int dead = mpistore__ft_dead(&s->core->ft, k.rank);
    mpistore__key_release(&k);
    return dead;
}

/* The collector (rank 0 after a timeout): which members never set their
 * TRACE key?  Writes "[a, b]" to list.  As PyTorch: a grace period while
 * nobody is missing yet, then quick checks; at most MAX_TRACE_MISSING
 * names.  unknown (after a death, else NULL): members known dead are not
 * listed (they died), and those whose TRACE key is homed on a dead rank go
 * to unknown ("[c]"): nobody can tell whether they arrived. */
static void find_missing(mpistore_t *s, const char *prefix, int world_size, int collector,
                         double grace, char *list, size_t n, char *unknown, size_t un)
{
    double grace_end = mpistore__now() + grace;
    int missing = 0, nunknown = 0;
    size_t used = (size_t)snprintf(list, n, "["),
           uused = unknown ? (size_t)snprintf(unknown, un, "[") : 0;
    for (int i = 0; i < world_size && missing < MAX_TRACE_MISSING; i++) {
        if (i == collector || (unknown && mpistore__ft_dead(&s->core->ft, i)))
            continue;
        char *key = join_int(prefix, i, TRACE);
        if (unknown && homed_dead(s, key)) {
            if (uused < un)
                uused += (size_t)snprintf(unknown + uused, un - uused, "%s%d",
                                          nunknown++ ? ", " : "", i);
            free(key);
            continue;
        }
        double left = grace_end - mpistore__now();
        int here = key && appears(s, key, missing == 0 && left > 0.001 ? left : 0);
        free(key);
        if (!here && used < n) {
            used += (size_t)snprintf(list + used, n - used, "%s%d", missing ? ", " : "", i);
            missing++;
        }
    }
    if (used < n)
        snprintf(list + used, n - used, "]");
    if (unknown && uused < un)
        snprintf(unknown + uused, un - uused, "]");
}

/* The collector's list from the gate key (within `seconds`) into list:
 * 1 if it was there and is a list ("[...]"), else 0 (list unchanged). */
static int read_gate(mpistore_t *s, const char *gate, double seconds, char *list, size_t n)
{
    void *v = NULL;
    size_t len = 0;
    int ok = appears(s, gate, seconds) &&
             mpistore__get_until(s, gate, mpistore__deadline(seconds), &v, &len) == 0 && len > 0 &&
             len < n && ((char *)v)[0] == '[';
    if (ok) {
        memcpy(list, v, len);
        list[len] = 0;
    }
    free(v);
    return ok;
}

/* After a barrier timeout: the TRACE / TRACING_GATE exchange, every step
 * bounded by GATE_WAIT_S.  Always returns -MPISTORE_ETIMEDOUT with the
 * message. */
static int diagnose(mpistore_t *s, int rank, int world_size, const char *prefix, double waited)
{
    mpistore__core_t *c = s->core;
    char list[200] = "unknown";
    char *trace = join_int(prefix, rank, TRACE), *gate = join(prefix, TRACING_GATE);
    int full = mpistore__fail_check(&c->rma, "the barrier") != 0;
    if (full) /* members that arrived may have failed to write TRACE: name none */
        snprintf(list, sizeof list, "unknown: the store is full");
    if (trace && gate && !full) {
        int trc = mpistore__set_until(s, trace, VAL_IGNORED, strlen(VAL_IGNORED),
                                      mpistore__deadline(GATE_WAIT_S));
        if (trc == -MPISTORE_ETIMEDOUT &&
            mpistore__rq_late(&c->rma.rq) >= 0) { /* a lost rank: no gate */
            snprintf(list, sizeof list, "unknown: rank %d did not answer",
                     mpistore__rq_late(&c->rma.rq));
        } else if (rank == 0) {
            find_missing(s, prefix, world_size, 0, TRACE_GRACE_S, list, sizeof list, NULL, 0);
            mpistore__set_until(s, gate, list, strlen(list), mpistore__deadline(GATE_WAIT_S));
        } else if (!read_gate(s, gate, GATE_WAIT_S, list, sizeof list)) {
            snprintf(list, sizeof list, "unknown: rank 0 published no %s", TRACING_GATE);
        }
    }
    free(trace);
    free(gate);
    return mpistore__err(
        &c->err, MPISTORE_ETIMEDOUT,
        "barrier timeout on rank %d for key prefix '%s' after %.1f s (world_size=%d, "
        "missing_ranks=%s)",
        rank, prefix, waited, world_size, list);
}

/* A member died (EPROCFAILED, its message in the sink): which live members
 * did not arrive?  The same TRACE / TRACING_GATE exchange as after a
 * timeout, with the lowest live rank collecting, a shorter grace (the
 * death is known: the survivors that arrived fail within MS_FT_POLL_S of
 * each other) and the dead left out; if the gate key is homed on a dead
 * rank, every survivor collects for itself.  Only where the elastic group
 * is the store's communicator (world_size ranks, the caller's rank its
 * own): otherwise group ranks cannot be told from the dead ones.  Returns
 * rc with "died: [..], did not arrive: [..]" (and "unknown: [..]", members
 * whose TRACE key was homed on a dead rank) in front of the message. */
#define FT_GRACE_S 0.5
#define FT_GATE_S 1.0
static int diagnose_death(mpistore_t *s, int rank, int world_size, const char *prefix, int rc)
{
    mpistore__core_t *c = s->core;
    char dead[96] = "", list[200] = "unknown", unknown[100] = "[]";
    mpistore__ft_names(&c->ft, dead, sizeof dead);
    int collector = 0;
    while (collector < world_size && mpistore__ft_dead(&c->ft, collector))
        collector++;
    char *trace = join_int(prefix, rank, TRACE), *gate = join(prefix, TRACING_GATE);
    mpistore__err_t saved = c->err; /* the death's message, kept through the exchange */
    if (trace && gate) {
        (void)mpistore__set_until(s, trace, VAL_IGNORED, strlen(VAL_IGNORED),
                                  mpistore__deadline(FT_GATE_S));
        int no_gate = homed_dead(s, gate);
        if (rank == collector || no_gate) {
            find_missing(s, prefix, world_size, rank, FT_GRACE_S, list, sizeof list, unknown,
                         sizeof unknown);
            if (!no_gate)
                (void)mpistore__set_until(s, gate, list, strlen(list),
                                          mpistore__deadline(FT_GATE_S));
        } else {
            (void)read_gate(s, gate, FT_GATE_S, list, sizeof list);
        }
    }
    free(trace);
    free(gate);
    c->err = saved;
    return mpistore__err_prefix(&c->err, rc,
                                "barrier on rank %d for key prefix '%s' (world_size=%d; died: "
                                "[%s], did not arrive: %s%s%s)",
                                rank, prefix, world_size, dead, list,
                                strcmp(unknown, "[]") ? ", unknown: " : "",
                                strcmp(unknown, "[]") ? unknown : "");
}

static int barrier(mpistore_t *s, int rank, int world_size, const char *prefix, double timeout)
{
    char *last = NULL;
    double t0 = mpistore__now();
    arrival_t a = {0};
    mpistore__ft_every_begin(&s->core->ft); /* a member's death fails the wait at once */
    int rc = barrier_arrive(s, world_size, prefix, timeout, &last, &a);
    if (rc == 0 && !a.was_last) /* the last member has just set the key itself */
        rc = await_members(s, &a, world_size, last, timeout);
    mpistore__ft_every_end(&s->core->ft);
    free(last);
    if (rc == -MPISTORE_EPROCFAILED && rank == s->core->rma.w.rank &&
        world_size == s->core->rma.w.nranks && s->core->ft.ndead > 0)
        return diagnose_death(s, rank, world_size, prefix, rc);
    if (rc == -MPISTORE_EPROCFAILED)
        return mpistore__err_prefix(&s->core->err, rc,
                                    "barrier on rank %d for key prefix '%s' (world_size=%d)", rank,
                                    prefix, world_size);
    if (rc == -MPISTORE_ETIMEDOUT &&
        mpistore__rq_late(&s->core->rma.rq) >= 0) /* a rank that is gone: */
        return mpistore__late_prefix(s->core, rc, /* no diagnosis */
                                     "barrier timeout on rank %d for key prefix '%s' after %.1f s "
                                     "(world_size=%d)",
                                     rank, prefix, mpistore__now() - t0, world_size);
    if (rc == -MPISTORE_ETIMEDOUT && rank >= 0)
        return diagnose(s, rank, world_size, prefix, mpistore__now() - t0);
    return rc;
}

int mpistore_barrier(mpistore_t *s, int rank, int world_size, const char *key_prefix,
                     double timeout_s)
{
    MS_ENTER(s);
    /* the diagnosis keys are the longest: prefix "<rank>/TRACE" */
    int rc = check_group(s, rank, world_size, 1, "barrier");
    if (rc == 0)
        rc = check_prefix(s, key_prefix, "barrier", 11 + strlen(TRACING_GATE));
    if (rc == 0 && !valid_timeout(timeout_s))
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL,
                           "barrier: timeout %g s must be finite and >= 0", timeout_s);
    if (rc == 0)
        rc = barrier(s, rank, world_size, key_prefix, timeout_s);
    return mpistore__api_leave(s, rc);
}

/* Every member's value, in rank order, then the "finished" barrier (rank 0
 * waits for it, as PyTorch), each step timeout seconds from its start. */
static int get_all(mpistore_t *s, int rank, const char *prefix, int world_size, double timeout,
                   void **values, size_t *lens)
{
    size_t n = (size_t)world_size;
    char **keys = calloc(n, sizeof *keys);
    void **vals = calloc(n, sizeof *vals);
    size_t *ls = calloc(n, sizeof *ls);
    char *fin = join(prefix, FINISHED), *last = NULL;
    int rc = 0;
    if (!keys || !vals || !ls || !fin)
        rc = mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM,
                           "get_all: out of memory for %d members", world_size);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!(keys[i] = join_int(prefix, (int)i, "")))
            rc = mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM, "get_all: out of memory");
    int have = 0;
    mpistore__ft_every_begin(&s->core->ft); /* a member's death fails the waits at once */
    if (rc == 0)
        rc = mpistore__multi_get_until(s, (const char *const *)keys, n, mpistore__deadline(timeout),
                                       vals, ls);
    have = rc == 0;
    arrival_t a = {0};
    if (rc == 0)
        rc = barrier_arrive(s, world_size, fin, timeout, &last, &a);
    if (rc == 0 && rank == 0 && !a.was_last) /* as PyTorch: rank 0 returns after everyone read */
        rc = await_members(s, &a, world_size, last, timeout);
    mpistore__ft_every_end(&s->core->ft);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            values[i] = vals[i];
            lens[i] = ls[i];
        } else if (have) {
            free(vals[i]);
        }
        if (keys)
            free(keys[i]);
    }
    free(keys);
    free(vals);
    free(ls);
    free(fin);
    free(last);
    return rc;
}

static int check_outputs(mpistore_t *s, void **values, size_t *lens, const char *op)
{
    if (!values || !lens)
        return mpistore__err(mpistore__sink(s), MPISTORE_EINVAL, "%s: values or lens is NULL", op);
    return 0;
}

int mpistore_get_all(mpistore_t *s, int rank, const char *prefix, int world_size, void **values,
                     size_t *lens)
{
    MS_ENTER(s);
    int rc = check_group(s, rank, world_size, 0, "get_all");
    if (rc == 0)
        rc = check_prefix(s, prefix, "get_all", strlen(FINISHED) + strlen(NUM_MEMBERS));
    if (rc == 0)
        rc = check_outputs(s, values, lens, "get_all");
    if (rc == 0)
        rc = get_all(s, rank, prefix, world_size, s->timeout, values, lens);
    return mpistore__api_leave(s, rc);
}

int mpistore_synchronize(mpistore_t *s, const void *data, size_t len, int rank, int world_size,
                         const char *key_prefix, double timeout_s, void **values, size_t *lens)
{
    MS_ENTER(s);
    int rc = check_group(s, rank, world_size, 0, "synchronize");
    if (rc == 0)
        rc = check_prefix(s, key_prefix, "synchronize", strlen(FINISHED) + strlen(NUM_MEMBERS));
    if (rc == 0)
        rc = check_outputs(s, values, lens, "synchronize");
    if (rc == 0 && !data && len > 0)
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL,
                           "synchronize: data is NULL with length %zu", len);
    if (rc == 0 && len > s->core->lay.max_value_len)
        rc = mpistore__err(mpistore__sink(s), MPISTORE_ETOOBIG,
                           "synchronize: data is %zu bytes, max_value_len is %zu", len,
                           s->core->lay.max_value_len);
    if (rc == 0 && !valid_timeout(timeout_s))
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL,
                           "synchronize: timeout %g s must be finite and >= 0", timeout_s);
    char *mine = rc == 0 ? join_int(key_prefix, rank, "") : NULL;
    if (rc == 0)
        rc = mine ? mpistore__set_until(s, mine, data, len, mpistore__deadline(timeout_s))
                  : mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM, "synchronize: out of memory");
    if (rc == 0)
        rc = get_all(s, rank, key_prefix, world_size, timeout_s, values, lens);
    free(mine);
    return mpistore__api_leave(s, rc);
}
