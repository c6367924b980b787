/* Queues (queue_push, queue_pop, queue_len).  A queue is ONE internal key,
 * the user key followed by NUL 'q', whose value is the queue's elements in
 * order, each as a 4-byte length and its bytes.  A push appends a record and
 * a pop removes the first one, each as one request of the write engine
 * (W_QPUSH, W_QPOP in write_plan.h) under the slot lock, so every operation is
 * atomic, FIFO and exactly-once by construction; the last pop deletes the key,
 * so an empty queue takes no memory and "the queue key exists" means "the
 * queue is non-empty".  Limits: all elements of one queue, with 4 bytes each,
 * fit in max_value_len; each push or pop copies the queue's bytes.  Why this
 * shape and not a counter pair with one entry per element: docs/design.md,
 * "Queues". */
#include "errors.h"
#include "wait.h"
#include "fail.h"
#include "ops.h"

#include <stdlib.h>
#include <string.h>

#define Q_SUFFIX 2u /* NUL 'q' */

typedef struct q {
    mpistore__key_t user; /* the prepared user key (view prefix applied) */
    mpistore__key_t ikey; /* the queue's internal key */
    char *mem;            /* ikey's bytes */
} q_t;

static void q_close(q_t *q)
{
    free(q->mem);
    mpistore__key_release(&q->user);
    memset(q, 0, sizeof *q);
}

/* Prepare the queue under key.  With soft, a key too long to be a queue
 * gives MS_NO_QUEUE (no such queue can exist) instead of EKEYTOOLONG. */
static int q_open(mpistore_t *s, const char *key, const char *op, int soft, q_t *q)
{
    memset(q, 0, sizeof *q);
    int rc = mpistore__key_of(s, key, &q->user);
    if (rc)
        return rc;
    size_t max = s->core->lay.max_key_len;
    if (q->user.len + Q_SUFFIX > max) {
        rc = soft ? MS_NO_QUEUE
                  : mpistore__err(mpistore__sink(s), MPISTORE_EKEYTOOLONG,
                                  "%s: queue key '%.64s' is %zu bytes, queue keys may have at most "
                                  "max_key_len - %u = %zu bytes",
                                  op, q->user.full, q->user.len, Q_SUFFIX,
                                  max > Q_SUFFIX ? max - Q_SUFFIX : 0);
        mpistore__key_release(&q->user);
        return rc;
    }
    size_t n = q->user.len + Q_SUFFIX;
    q->mem = malloc(n + 1);
    if (!q->mem) {
        mpistore__key_release(&q->user);
        return mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM,
                             "%s: out of memory for a queue key", op);
    }
    memcpy(q->mem, q->user.full, q->user.len);
    q->mem[q->user.len] = 0;
    q->mem[q->user.len + 1] = 'q';
    q->mem[n] = 0;
    mpistore__key_internal(s->core, q->mem, n, &q->ikey);
    return 0;
}

/* Validated read of the queue key: *found and, if found, the number of
 * elements in *count. */
static int q_read(mpistore_t *s, const q_t *q, double deadline, int *found, int64_t *count)
{
    mpistore__backoff_t bo = {0};
    for (;;) {
        mpistore__snap_t sn;
        mpistore__block_t b = {0};
        int f = 0, rc = mpistore__snapshot(s->core, &q->ikey, &sn);
        if (rc == 0)
            rc = mpistore__lookup(s->core, &q->ikey, &sn, &f, &b);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            size_t n = 0;
            const unsigned char *p = f ? mpistore__block_value(&b, &n) : NULL;
            int64_t elems = f ? mpistore__queue_count(p, n) : 0;
            mpistore__block_release(&b);
            if (elems < 0)
                return mpistore__err(mpistore__sink(s), MPISTORE_EMPI,
                                     "queue '%.64s': corrupt queue value", q->user.full);
            *found = f;
            *count = elems;
            return 0;
        }
        if (mpistore__expired(deadline))
            return mpistore__err(mpistore__sink(s), MPISTORE_ETIMEDOUT,
                                 "timeout reading queue '%.64s': it kept changing", q->user.full);
        mpistore__backoff(s->core->rma.w.comm, &s->core->lock, &bo);
    }
}

int64_t mpistore__queue_count(const unsigned char *p, size_t n)
{
    int64_t elems = 0;
    size_t at = 0;
    while (at < n) {
        uint32_t len;
        if (n - at < sizeof len)
            return -1;
        memcpy(&len, p + at, sizeof len);
        if (n - at - sizeof len < len)
            return -1;
        at += sizeof len + len;
        elems++;
    }
    return elems;
}

int mpistore__queue_nonempty(mpistore_t *s, const char *key, double deadline, int *nonempty)
{
    q_t q;
    int64_t count = 0;
    int found = 0, rc = q_open(s, key, "check", 1, &q);
    if (rc == MS_NO_QUEUE) {
        *nonempty = 0;
        return 0;
    }
    if (rc == 0)
        rc = q_read(s, &q, deadline, &found, &count);
    if (rc == 0)
        *nonempty = found && count > 0;
    q_close(&q);
    return rc;
}

int mpistore_queue_push(mpistore_t *s, const char *key, const void *value, size_t len)
{
    MS_ENTER(s);
    q_t q = {0};
    unsigned char *rec = NULL;
    uint32_t len32 = (uint32_t)len;
    int rc = 0;
    if (!value && len > 0)
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL,
                           "queue_push: value is NULL with length %zu", len);
    else if (s->core->lay.max_value_len < sizeof len32 ||
             len > s->core->lay.max_value_len - sizeof len32 || len > UINT32_MAX)
        rc =
            mpistore__err(mpistore__sink(s), MPISTORE_ETOOBIG,
                          "queue_push: value is %zu bytes, a queue element may have at most "
                          "max_value_len - 4 = %zu bytes (and at most 4 GiB - 1)",
                          len, s->core->lay.max_value_len < 4 ? 0 : s->core->lay.max_value_len - 4);
    if (rc == 0)
        rc = q_open(s, key, "queue_push", 0, &q);
    if (rc == 0 && !(rec = malloc(sizeof len32 + len)))
        rc = mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM,
                           "queue_push: out of memory for a %zu-byte element", len);
    if (rc == 0) {
        memcpy(rec, &len32, sizeof len32);
        if (len)
            memcpy(rec + sizeof len32, value, len);
        rc = mpistore__kqpush(s, &q.ikey, rec, sizeof len32 + len, mpistore__deadline(s->timeout));
    }
    free(rec);
    q_close(&q);
    return mpistore__api_leave(s, rc);
}

static int pop(mpistore_t *s, const q_t *q, bool block, void **value, size_t *len)
{
    double t0 = mpistore__now(), deadline = mpistore__deadline(s->timeout);
    mpistore__backoff_t bo = {0};
    for (;;) {
        int popped = 0;
        int rc = mpistore__kqpop(s, &q->ikey, deadline, &popped, value, len);
        if (rc)
            return mpistore__late_prefix(s->core, rc,
                                         "timeout after %.3f s in queue_pop of queue '%.64s'",
                                         mpistore__now() - t0, q->user.full);
        if (popped)
            return 0;
        if (!block)
            return mpistore__err(mpistore__sink(s), MPISTORE_EEMPTY,
                                 "queue_pop: queue '%.64s' is empty", q->user.full);
        if ((rc = mpistore__fail_check(&s->core->rma,
                                       "a blocking queue_pop"))) /* a full store: no waiting */
            return rc;
        if ((rc = mpistore__ft_check(&s->core->ft, s->core->rma.w.comm, mpistore__sink(s),
                                     q->ikey.rank, "queue", q->user.full, mpistore__now() - t0)))
            return rc; /* the rank hosting the queue died */
        if (mpistore__expired(deadline))
            return mpistore__err(mpistore__sink(s), MPISTORE_ETIMEDOUT,
                                 "timeout after %.3f s in queue_pop: queue '%.64s' stayed empty "
                                 "(hosted by rank %d)",
                                 mpistore__now() - t0, q->user.full, q->ikey.rank);
        mpistore__backoff(s->core->rma.w.comm, &s->core->lock, &bo);
    }
}

int mpistore_queue_pop(mpistore_t *s, const char *key, bool block, void **value, size_t *len)
{
    MS_ENTER(s);
    q_t q;
    int rc = !value || !len ? mpistore__err(mpistore__sink(s), MPISTORE_EINVAL,
                                            "queue_pop: value or len is NULL")
                            : q_open(s, key, "queue_pop", 0, &q);
    if (rc == 0) {
        void *v = NULL;
        size_t n = 0;
        rc = pop(s, &q, block, &v, &n);
        if (rc == 0) {
            *value = v;
            *len = n;
        }
        q_close(&q);
    }
    return mpistore__api_leave(s, rc);
}

int mpistore_queue_len(mpistore_t *s, const char *key, int64_t *len)
{
    MS_ENTER(s);
    q_t q;
    int rc = !len ? mpistore__err(mpistore__sink(s), MPISTORE_EINVAL, "queue_len: len is NULL")
                  : q_open(s, key, "queue_len", 0, &q);
    if (rc == 0) {
        int64_t n = 0;
        int found = 0;
        double deadline = mpistore__deadline(s->timeout),
               saved = mpistore__rq_begin(&s->core->rma.rq, deadline);
        rc = q_read(s, &q, deadline, &found, &n);
        mpistore__rq_end(&s->core->rma.rq, saved);
        rc = mpistore__late_prefix(s->core, rc,
                                   "timeout in queue_len of queue '%.64s' (hosted by rank %d)",
                                   q.user.full, q.ikey.rank);
        if (rc == 0)
            *len = n;
        q_close(&q);
    }
    return mpistore__api_leave(s, rc);
}
