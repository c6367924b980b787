/* Elastic helpers (barrier, synchronize, get_all, store_timeout) on the public
 * store API; a port of torch/distributed/elastic/utils/store.py with its key
 * names.  These functions call public mpistore functions, except for one
 * shortcut: a member that must wait watches the num_members counter its own
 * add left (one round trip per look, counters.c) instead of polling for
 * last_member (design.md, "Elastic helpers"). */
#include "errors.h"
#include "core.h"
#include "wait.h"
#include "rma.h"
#include "fail.h"
#include "ops.h"
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
        return ms_err(s, MPISTORE_EINVAL, "%s: key prefix is NULL", op);
    if (!prefix[0])
        return ms_err(s, MPISTORE_EINVAL, "%s: key prefix is empty", op);
    size_t total = s->prefix_len + strlen(prefix) + suffix_len;
    if (total > s->core->max_key_len)
        return ms_err(s, MPISTORE_EKEYTOOLONG,
                      "%s: key prefix '%.64s' makes keys of up to %zu bytes, max_key_len is %zu",
                      op, prefix, total, s->core->max_key_len);
    return 0;
}

static int check_group(mpistore_t *s, int rank, int world_size, int rank_may_be_negative,
                       const char *op)
{
    if (world_size < 1)
        return ms_err(s, MPISTORE_EINVAL, "%s: world_size %d < 1", op, world_size);
    if (rank >= world_size || (!rank_may_be_negative && rank < 0))
        return ms_err(s, MPISTORE_EINVAL, "%s: rank %d outside [0, world_size=%d)", op, rank,
                      world_size);
    return 0;
}

int mpistore_swap_timeout(mpistore_t *s, double seconds, double *previous)
{
    if (!s)
        return ms_null_handle(__func__);
    double old = mpistore_timeout(s);
    int rc = mpistore_set_timeout(s, seconds);
    if (rc == 0 && previous)
        *previous = old;
    return rc;
}

/* *was_last (may be NULL) tells whether this caller was the last member, i.e.
 * the one that set last_member: it need not wait for a key it has just set.
 * *watch (may be NULL) says where the num_members counter is. */
static int barrier_nonblocking(mpistore_t *s, int world_size, const char *prefix, char **out,
                               int *was_last, ms_watch_t *watch, int64_t *arrived)
{
    char *num = join(prefix, NUM_MEMBERS), *last = join(prefix, LAST_MEMBER);
    int64_t n = 0;
    int rc = 0;
    if (!num || !last)
        rc = ms_err(s, MPISTORE_ENOMEM, "barrier: out of memory");
    if (rc == 0) {
        ms_enter(s->core);
        rc = ms_add_locked(s, num, 1, &n, watch);
        ms_leave(s->core);
    }
    if (rc == 0 && n == world_size)
        rc = mpistore_set(s, last, VAL_IGNORED, strlen(VAL_IGNORED));
    free(num);
    if (rc == 0 && was_last)
        *was_last = n == world_size;
    if (rc == 0 && arrived)
        *arrived = n;
    if (rc == 0)
        *out = last;
    else
        free(last);
    return rc;
}

int mpistore_barrier_nonblocking(mpistore_t *s, int world_size, const char *key_prefix,
                                 char **last_member_key)
{
    if (!s)
        return ms_null_handle(__func__);
    int rc = check_group(s, 0, world_size, 1, "barrier_nonblocking");
    if (rc == 0)
        rc = check_prefix(s, key_prefix, "barrier_nonblocking", strlen(NUM_MEMBERS));
    if (rc == 0 && !last_member_key)
        rc = ms_err(s, MPISTORE_EINVAL, "barrier_nonblocking: last_member_key is NULL");
    return rc ? rc
              : barrier_nonblocking(s, world_size, key_prefix, last_member_key, NULL, NULL, NULL);
}

/* A member that did not arrive last: wait until every member has arrived.
 * While the num_members counter is the one this member's add saw, watch it
 * (one round trip per look) until it reaches world_size; if it stops being
 * that counter (overwritten, deleted), wait for last_member as PyTorch does.
 * The last member sets last_member before its own barrier returns, so the
 * keys end up exactly as PyTorch leaves them. */
static int await_members(mpistore_t *s, const ms_watch_t *w, int64_t arrived, int world_size,
                         const char *last)
{
    double t0 = ms_now(), timeout = mpistore_timeout(s), deadline = ms_deadline(timeout);
    int64_t v = 0;
    int rc = MS_GONE, peek = 0; /* no counter to watch: wait for last_member */
    /* only a member that saw the count below world_size watches it: one
     * that saw more (a stale num_members) waits for last_member as PyTorch */
    if (w->valid && arrived >= 1 && arrived < world_size) {
        ms_backoff_t bo = {0};
        ms_enter(s->core);
        double saved = ms_rq_begin(s, deadline); /* a rank that stops answering: ETIMEDOUT */
        for (;;) {
            rc = ms_counter_watch(s, w, peek, &v);
            if ((rc == MS_DONE && v >= world_size) || rc == MS_GONE || rc < 0)
                break;
            peek = rc == MS_BUSY;
            if (rc == MS_STABLE)
                continue; /* free again: look registered at once */
            if ((rc = ms_fail_check(s, "the barrier"))) /* a full store: no waiting */
                break;
            if (ms_expired(deadline)) {
                rc = ms_err(s, MPISTORE_ETIMEDOUT,
                            "timeout after %.3f s waiting for all %d members (%" PRId64 " arrived)",
                            ms_now() - t0, world_size, v);
                break;
            }
            ms_backoff(s, &bo);
        }
        ms_rq_end(s, saved);
        rc = ms_rq_context(s, rc,
                           "timeout after %.3f s waiting for all %d members (%" PRId64 " arrived)",
                           ms_now() - t0, world_size, v);
        ms_leave(s->core);
    }
    if (rc != MS_GONE)
        return rc;
    if (timeout > 0) { /* what is left of the timeout */
        double left = deadline - ms_now();
        mpistore_set_timeout(s, left > 1e-6 ? left : 1e-6);
    }
    void *val = NULL;
    size_t len = 0;
    rc = mpistore_get(s, last, &val, &len);
    mpistore_free(val);
    if (timeout > 0)
        mpistore_set_timeout(s, timeout);
    return rc;
}

/* Does key exist within `seconds` (0: check once)? */
static int appears(mpistore_t *s, const char *key, double seconds)
{
    const char *keys[] = {key};
    if (seconds <= 0) {
        bool all = false;
        return mpistore_check(s, keys, 1, &all) == 0 && all;
    }
    return mpistore_wait(s, keys, 1, seconds) == 0;
}

/* Rank 0: which members never set their TRACE key?  Writes "[a, b]" to list.
 * As PyTorch: a grace period while nobody is missing yet, then quick checks;
 * at most MAX_TRACE_MISSING names. */
static void find_missing(mpistore_t *s, const char *prefix, int world_size, char *list, size_t n)
{
    double grace_end = ms_now() + TRACE_GRACE_S;
    int missing = 0;
    size_t used = (size_t)snprintf(list, n, "[");
    for (int i = 1; i < world_size && missing < MAX_TRACE_MISSING; i++) {
        char *key = join_int(prefix, i, TRACE);
        double left = grace_end - ms_now();
        int here = key && appears(s, key, missing == 0 && left > 0.001 ? left : 0);
        free(key);
        if (!here && used < n) {
            used += (size_t)snprintf(list + used, n - used, "%s%d", missing ? ", " : "", i);
            missing++;
        }
    }
    if (used < n)
        snprintf(list + used, n - used, "]");
}

/* After a barrier timeout: the TRACE / TRACING_GATE exchange.  Always
 * returns -MPISTORE_ETIMEDOUT with the message. */
static int diagnose(mpistore_t *s, int rank, int world_size, const char *prefix, double waited)
{
    char list[200] = "unknown";
    char *trace = join_int(prefix, rank, TRACE), *gate = join(prefix, TRACING_GATE);
    double prev = 0;
    mpistore_swap_timeout(s, GATE_WAIT_S, &prev); /* bounds every step below */
    ms_enter(s->core);
    int full = ms_fail_check(s, "the barrier") != 0;
    ms_leave(s->core);
    if (full) /* members that arrived may have failed to write TRACE: name none */
        snprintf(list, sizeof list, "unknown: the store is full");
    if (trace && gate && !full) {
        int trc = mpistore_set(s, trace, VAL_IGNORED, strlen(VAL_IGNORED));
        if (trc == -MPISTORE_ETIMEDOUT && ms_rq_late(s) >= 0) { /* no gate through a lost rank */
            snprintf(list, sizeof list, "unknown: rank %d did not answer", ms_rq_late(s));
        } else if (rank == 0) {
            find_missing(s, prefix, world_size, list, sizeof list);
            mpistore_set(s, gate, list, strlen(list));
        } else if (appears(s, gate, GATE_WAIT_S)) {
            void *v = NULL;
            size_t len = 0;
            if (mpistore_get(s, gate, &v, &len) == 0 && len > 0 && len < sizeof list &&
                ((char *)v)[0] == '[') {
                memcpy(list, v, len);
                list[len] = 0;
            }
            mpistore_free(v);
        } else {
            snprintf(list, sizeof list, "unknown: rank 0 published no %s", TRACING_GATE);
        }
    }
    mpistore_set_timeout(s, prev);
    free(trace);
    free(gate);
    return ms_err(s, MPISTORE_ETIMEDOUT,
                  "barrier timeout on rank %d for key prefix '%s' after %.1f s (world_size=%d, "
                  "missing_ranks=%s)",
                  rank, prefix, waited, world_size, list);
}

int mpistore_barrier(mpistore_t *s, int rank, int world_size, const char *key_prefix,
                     double timeout_s)
{
    if (!s)
        return ms_null_handle(__func__);
    char *last = NULL;
    double prev = 0, t0 = ms_now();
    /* the diagnosis keys are the longest: prefix "<rank>/TRACE" */
    int rc = check_group(s, rank, world_size, 1, "barrier");
    if (rc == 0)
        rc = check_prefix(s, key_prefix, "barrier", 11 + strlen(TRACING_GATE));
    if (rc == 0 && !valid_timeout(timeout_s))
        rc = ms_err(s, MPISTORE_EINVAL, "barrier: timeout %g s must be finite and >= 0", timeout_s);
    if (rc)
        return rc;
    mpistore_swap_timeout(s, timeout_s, &prev);
    int setter = 0;
    ms_watch_t watch = {0};
    int64_t arrived = 0;
    rc = barrier_nonblocking(s, world_size, key_prefix, &last, &setter, &watch, &arrived);
    if (rc == 0 && !setter) /* the last member has just set the key itself */
        rc = await_members(s, &watch, arrived, world_size, last);
    free(last);
    mpistore_set_timeout(s, prev);
    if (rc == -MPISTORE_ETIMEDOUT &&
        ms_rq_late(s) >= 0) /* no diagnosis through a rank that is gone */
        rc = ms_rq_context(s, rc,
                           "barrier timeout on rank %d for key prefix '%s' after %.1f s "
                           "(world_size=%d)",
                           rank, key_prefix, ms_now() - t0, world_size);
    else if (rc == -MPISTORE_ETIMEDOUT && rank >= 0)
        rc = diagnose(s, rank, world_size, key_prefix, ms_now() - t0);
    return rc;
}

static int get_all(mpistore_t *s, int rank, const char *prefix, int world_size, void **values,
                   size_t *lens)
{
    size_t n = (size_t)world_size;
    char **keys = calloc(n, sizeof *keys);
    void **vals = calloc(n, sizeof *vals);
    size_t *ls = calloc(n, sizeof *ls);
    char *fin = join(prefix, FINISHED), *last = NULL;
    int rc = 0;
    if (!keys || !vals || !ls || !fin)
        rc = ms_err(s, MPISTORE_ENOMEM, "get_all: out of memory for %d members", world_size);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!(keys[i] = join_int(prefix, (int)i, "")))
            rc = ms_err(s, MPISTORE_ENOMEM, "get_all: out of memory");
    int have = 0;
    if (rc == 0)
        rc = mpistore_multi_get(s, (const char *const *)keys, n, vals, ls);
    have = rc == 0;
    int setter = 0;
    ms_watch_t watch = {0};
    int64_t arrived = 0;
    if (rc == 0)
        rc = barrier_nonblocking(s, world_size, fin, &last, &setter, &watch, &arrived);
    if (rc == 0 && rank == 0 && !setter) /* as PyTorch: rank 0 returns after everyone read */
        rc = await_members(s, &watch, arrived, world_size, last);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            values[i] = vals[i];
            lens[i] = ls[i];
        } else if (have) {
            mpistore_free(vals[i]);
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
        return ms_err(s, MPISTORE_EINVAL, "%s: values or lens is NULL", op);
    return 0;
}

int mpistore_get_all(mpistore_t *s, int rank, const char *prefix, int world_size, void **values,
                     size_t *lens)
{
    if (!s)
        return ms_null_handle(__func__);
    int rc = check_group(s, rank, world_size, 0, "get_all");
    if (rc == 0)
        rc = check_prefix(s, prefix, "get_all", strlen(FINISHED) + strlen(NUM_MEMBERS));
    if (rc == 0)
        rc = check_outputs(s, values, lens, "get_all");
    return rc ? rc : get_all(s, rank, prefix, world_size, values, lens);
}

int mpistore_synchronize(mpistore_t *s, const void *data, size_t len, int rank, int world_size,
                         const char *key_prefix, double timeout_s, void **values, size_t *lens)
{
    if (!s)
        return ms_null_handle(__func__);
    int rc = check_group(s, rank, world_size, 0, "synchronize");
    if (rc == 0)
        rc = check_prefix(s, key_prefix, "synchronize", strlen(FINISHED) + strlen(NUM_MEMBERS));
    if (rc == 0)
        rc = check_outputs(s, values, lens, "synchronize");
    if (rc == 0 && !data && len > 0)
        rc = ms_err(s, MPISTORE_EINVAL, "synchronize: data is NULL with length %zu", len);
    if (rc == 0 && len > s->core->max_value_len)
        rc = ms_err(s, MPISTORE_ETOOBIG, "synchronize: data is %zu bytes, max_value_len is %zu",
                    len, s->core->max_value_len);
    if (rc == 0 && !valid_timeout(timeout_s))
        rc = ms_err(s, MPISTORE_EINVAL, "synchronize: timeout %g s must be finite and >= 0",
                    timeout_s);
    if (rc)
        return rc;
    double prev = 0;
    char *mine = join_int(key_prefix, rank, "");
    mpistore_swap_timeout(s, timeout_s, &prev);
    rc = mine ? mpistore_set(s, mine, data, len)
              : ms_err(s, MPISTORE_ENOMEM, "synchronize: out of memory");
    if (rc == 0)
        rc = get_all(s, rank, key_prefix, world_size, values, lens);
    mpistore_set_timeout(s, prev);
    free(mine);
    return rc;
}
