/* What a write request does to a value (design.md, "Operations, step by
 * step"): the plan of each kind of write on an observed state of its key,
 * the results it records, and the counter decision.  No RMA. */
#include "errors.h"
#include "write_plan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* strict decimal int64: [+-]?[0-9]+ within range (leading zeros allowed, as
 * c10d's std::stoll allows them) */
int mpistore__parse_i64(const unsigned char *p, size_t n, int64_t *out)
{
    char buf[32];
    char *end = NULL;
    size_t i = 0;
    if (n == 0)
        return -1;
    if (p[0] == '-' || p[0] == '+')
        buf[i++] = (char)p[0];
    if (i == n)
        return -1;
    for (size_t j = i; j < n; j++)
        if (p[j] < '0' || p[j] > '9')
            return -1;
    size_t z = i; /* drop leading zeros, keep the last digit */
    while (z + 1 < n && p[z] == '0')
        z++;
    if (n - z + i >= sizeof buf) /* more than 30 significant digits */
        return -1;
    memcpy(buf + i, p + z, n - z);
    n = n - z + i;
    buf[n] = 0;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno == ERANGE || end != buf + n)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* add: the old value (absent: 0) plus delta, as decimal text. */
static int plan_add(mpistore__core_t *c, const mpistore__key_t *k, const mpistore__wreq_t *w,
                    mpistore__wstate_t st, mpistore__wplan_t *p)
{
    int present = st.present;
    const unsigned char *old = st.old;
    size_t oldlen = st.oldlen;
    int64_t base = 0;
    if (present && mpistore__parse_i64(old, oldlen, &base) != 0)
        return mpistore__err(&c->err, MPISTORE_ENOTINT,
                             "add on key '%.64s': value (%zu bytes) is not a decimal int64",
                             k->full, oldlen);
    if ((w->delta > 0 && base > INT64_MAX - w->delta) ||
        (w->delta < 0 && base < INT64_MIN - w->delta))
        return mpistore__err(&c->err, MPISTORE_ENOTINT,
                             "add on key '%.64s': %" PRId64 " + %" PRId64 " overflows int64",
                             k->full, base, w->delta);
    p->sum = base + w->delta;
    p->action = ACT_WRITE;
    p->alen = (size_t)snprintf(p->num, sizeof p->num, "%" PRId64, p->sum);
    p->a = p->num;
    if (p->alen > c->lay.max_value_len) /* readers would reject the block as corrupt */
        return mpistore__err(&c->err, MPISTORE_ETOOBIG,
                             "add on key '%.64s': result %" PRId64
                             " needs %zu bytes, max_value_len is %zu",
                             k->full, p->sum, p->alen, c->lay.max_value_len);
    return 0;
}

/* compare_set: write the desired value if the old one is the expected one
 * (absent matches an empty expected value); return the value it leaves. */
static void plan_cas(const mpistore__wreq_t *w, mpistore__wstate_t st, mpistore__wplan_t *p)
{
    int present = st.present;
    const unsigned char *old = st.old;
    size_t oldlen = st.oldlen;
    if (!present && w->explen > 0) {
        p->action = ACT_NONE;
        p->ret = w->exp;
        p->retlen = w->explen;
    } else if (!present ||
               (oldlen == w->explen && (oldlen == 0 || memcmp(old, w->exp, oldlen) == 0))) {
        p->action = ACT_WRITE;
        p->a = w->val;
        p->alen = w->vlen;
        p->ret = w->val;
        p->retlen = w->vlen;
    } else {
        p->action = ACT_NONE;
        p->ret = old;
        p->retlen = oldlen;
    }
}

/* append, and queue_push (which appends one length-prefixed record). */
static int plan_append(mpistore__core_t *c, const mpistore__key_t *k, const mpistore__wreq_t *w,
                       mpistore__wstate_t st, mpistore__wplan_t *p)
{
    int present = st.present;
    const unsigned char *old = st.old;
    size_t oldlen = st.oldlen;
    if (present && oldlen + w->vlen > c->lay.max_value_len)
        return mpistore__err(
            &c->err, MPISTORE_ETOOBIG,
            w->kind == W_QPUSH ? "queue_push on '%.64s': the queue holds %zu bytes, one more "
                                 "%zu-byte record exceeds max_value_len %zu"
                               : "append on key '%.64s': %zu + %zu bytes exceeds max_value_len %zu",
            k->full, oldlen, w->vlen, c->lay.max_value_len);
    p->action = ACT_WRITE;
    p->a = present ? old : w->val;
    p->alen = present ? oldlen : w->vlen;
    p->b = present ? w->val : NULL;
    p->blen = present ? w->vlen : 0;
    return 0;
}

/* queue_pop: return the first record, keep the rest (none left: delete the
 * key); absent, the queue is empty. */
static int plan_qpop(mpistore__core_t *c, const mpistore__key_t *k, mpistore__wstate_t st,
                     mpistore__wplan_t *p)
{
    int present = st.present;
    const unsigned char *old = st.old;
    size_t oldlen = st.oldlen;
    uint32_t n = 0;
    p->action = ACT_NONE; /* absent: the queue is empty */
    if (!present)
        return 0;
    if (oldlen < sizeof n || (memcpy(&n, old, sizeof n), oldlen - sizeof n < n))
        return mpistore__err(&c->err, MPISTORE_EMPI,
                             "queue '%.64s': corrupt queue value (internal error)", k->full);
    p->ret = old + sizeof n;
    p->retlen = n;
    p->a = old + sizeof n + n;
    p->alen = oldlen - sizeof n - n;
    p->action = p->alen ? ACT_WRITE : ACT_DELETE;
    return 0;
}

/* The action and the new value of request w on state st. */
static int plan_value(mpistore__core_t *c, const mpistore__key_t *k, const mpistore__wreq_t *w,
                      mpistore__wstate_t st, mpistore__wplan_t *p)
{
    memset(p, 0, sizeof *p);
    switch (w->kind) {
    case W_SET:
        p->action = ACT_WRITE;
        p->a = w->val;
        p->alen = w->vlen;
        return 0;
    case W_ADD:
        return plan_add(c, k, w, st, p);
    case W_CAS:
        plan_cas(w, st, p);
        return 0;
    case W_APPEND:
    case W_QPUSH:
        return plan_append(c, k, w, st, p);
    case W_DELETE:
        p->action = st.present ? ACT_DELETE : ACT_NONE;
        return 0;
    case W_QPOP:
        return plan_qpop(c, k, st, p);
    }
    return mpistore__err(&c->err, MPISTORE_EINVAL, "internal: unknown write kind");
}

/* Record the results of a completed request (copies what must outlive it). */
static int record(mpistore__core_t *c, mpistore__wreq_t *w, const mpistore__wplan_t *p)
{
    w->sum = p->sum;
    w->deleted = p->action == ACT_DELETE;
    w->popped = w->kind == W_QPOP && p->action != ACT_NONE;
    if (w->kind == W_CAS || w->popped) {
        w->cur = mpistore__dup_value(p->ret, p->retlen);
        if (!w->cur)
            return mpistore__err(&c->err, MPISTORE_ENOMEM, "out of memory for a %zu-byte value",
                                 p->retlen);
        w->curlen = p->retlen;
    }
    return 0;
}

int mpistore__plan(mpistore__core_t *c, const mpistore__key_t *k, mpistore__wreq_t *w,
                   mpistore__wstate_t st, mpistore__wplan_t *p)
{
    int rc = plan_value(c, k, w, st, p);
    return rc ? rc : record(c, w, p);
}

mpistore__crule_t mpistore__counter_rule(const mpistore__core_t *c, const mpistore__wreq_t *w,
                                         const mpistore__block_t *cur)
{
    mpistore__crule_t r = {0};
    r.announce = w->kind == W_ADD && mpistore__counters_enabled(c);
    r.drain = cur && cur->counter;
    /* a key created by add is a counter; a locked add on a counter (a stale
     * kind hint, or beyond the lock-free bounds) keeps it one; every other
     * write to a counter makes it a string */
    r.counter = cur ? w->kind == W_ADD && cur->counter : r.announce;
    return r;
}
