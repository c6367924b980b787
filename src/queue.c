/* Queues (queue_push, queue_pop, queue_len).  A queue is ONE internal key,
 * the user key followed by NUL 'q', whose value is the queue's elements in
 * order, each as a 4-byte length and its bytes.  A push appends a record and
 * a pop removes the first one, each as one request of the write engine
 * (W_QPUSH, W_QPOP in ops_write.c) under the slot lock, so every operation is
 * atomic, FIFO and exactly-once by construction; the last pop deletes the key,
 * so an empty queue takes no memory and "the queue key exists" means "the
 * queue is non-empty".  Limits: all elements of one queue, with 4 bytes each,
 * fit in max_value_len; each push or pop copies the queue's bytes.  Why this
 * shape and not a counter pair with one entry per element: docs/design.md,
 * "Queues". */
#include "errors.h"
#include "core.h"
#include "wait.h"
#include "rma.h"
#include "fail.h"
#include "block.h"
#include "index.h"
#include "ops.h"

#include <stdlib.h>
#include <string.h>

#define Q_SUFFIX 2u /* NUL 'q' */

typedef struct q {
    ms_key_t user; /* the prepared user key (view prefix applied) */
    ms_key_t ikey; /* the queue's internal key */
    char *mem;     /* ikey's bytes */
} q_t;

static void q_close(q_t *q)
{
    free(q->mem);
    ms_key_release(&q->user);
    memset(q, 0, sizeof *q);
}

/* Prepare the queue under key.  With soft, a key too long to be a queue
 * gives MS_NO_QUEUE (no such queue can exist) instead of EKEYTOOLONG. */
static int q_open(mpistore_t *s, const char *key, const char *op, int soft, q_t *q)
{
    memset(q, 0, sizeof *q);
    int rc = ms_key_prepare(s, key, &q->user);
    if (rc)
        return rc;
    size_t max = s->core->max_key_len;
    if (q->user.len + Q_SUFFIX > max) {
        rc = soft ? MS_NO_QUEUE
                  : ms_err(s, MPISTORE_EKEYTOOLONG,
                           "%s: queue key '%.64s' is %zu bytes, queue keys may have at most "
                           "max_key_len - %u = %zu bytes",
                           op, q->user.full, q->user.len, Q_SUFFIX,
                           max > Q_SUFFIX ? max - Q_SUFFIX : 0);
        ms_key_release(&q->user);
        return rc;
    }
    size_t n = q->user.len + Q_SUFFIX;
    q->mem = malloc(n + 1);
    if (!q->mem) {
        ms_key_release(&q->user);
        return ms_err(s, MPISTORE_ENOMEM, "%s: out of memory for a queue key", op);
    }
    memcpy(q->mem, q->user.full, q->user.len);
    q->mem[q->user.len] = 0;
    q->mem[q->user.len + 1] = 'q';
    q->mem[n] = 0;
    ms_key_internal(s, q->mem, n, &q->ikey);
    return 0;
}

/* Validated read of the queue key: *found and, if found, the number of
 * elements in *count. */
static int q_read(mpistore_t *s, const q_t *q, double deadline, int *found, int64_t *count)
{
    ms_backoff_t bo = {0};
    for (;;) {
        ms_snap_t sn;
        ms_block_t b = {0};
        int f = 0, rc = ms_snapshot(s, &q->ikey, &sn);
        if (rc == 0)
            rc = ms_lookup(s, &q->ikey, &sn, &f, &b);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            size_t n = 0;
            const unsigned char *p = f ? ms_block_value(&b, &n) : NULL;
            int64_t elems = f ? ms_queue_count(p, n) : 0;
            ms_block_release(&b);
            if (elems < 0)
                return ms_err(s, MPISTORE_EMPI, "queue '%.64s': corrupt queue value", q->user.full);
            *found = f;
            *count = elems;
            return 0;
        }
        if (ms_expired(deadline))
            return ms_err(s, MPISTORE_ETIMEDOUT, "timeout reading queue '%.64s': it kept changing",
                          q->user.full);
        ms_backoff(s, &bo);
    }
}

int64_t ms_queue_count(const unsigned char *p, size_t n)
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

int ms_queue_nonempty(mpistore_t *s, const char *key, double deadline, int *nonempty)
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
        rc = ms_err(s, MPISTORE_EINVAL, "queue_push: value is NULL with length %zu", len);
    else if (s->core->max_value_len < sizeof len32 || len > s->core->max_value_len - sizeof len32 ||
             len > UINT32_MAX)
        rc = ms_err(s, MPISTORE_ETOOBIG,
                    "queue_push: value is %zu bytes, a queue element may have at most "
                    "max_value_len - 4 = %zu bytes (and at most 4 GiB - 1)",
                    len, s->core->max_value_len < 4 ? 0 : s->core->max_value_len - 4);
    if (rc == 0)
        rc = q_open(s, key, "queue_push", 0, &q);
    if (rc == 0 && !(rec = malloc(sizeof len32 + len)))
        rc = ms_err(s, MPISTORE_ENOMEM, "queue_push: out of memory for a %zu-byte element", len);
    if (rc == 0) {
        memcpy(rec, &len32, sizeof len32);
        if (len)
            memcpy(rec + sizeof len32, value, len);
        rc = ms_kqpush(s, &q.ikey, rec, sizeof len32 + len);
    }
    free(rec);
    q_close(&q);
    ms_leave(s->core);
    return rc;
}

static int pop(mpistore_t *s, const q_t *q, bool block, void **value, size_t *len)
{
    double t0 = ms_now(), deadline = ms_deadline(s->timeout);
    ms_backoff_t bo = {0};
    for (;;) {
        int popped = 0;
        int rc = ms_kqpop(s, &q->ikey, deadline, &popped, value, len);
        if (rc)
            return ms_rq_context(s, rc, "timeout after %.3f s in queue_pop of queue '%.64s'",
                                 ms_now() - t0, q->user.full);
        if (popped)
            return 0;
        if (!block)
            return ms_err(s, MPISTORE_EEMPTY, "queue_pop: queue '%.64s' is empty", q->user.full);
        if ((rc = ms_fail_check(s, "a blocking queue_pop"))) /* a full store: no waiting */
            return rc;
        if (ms_expired(deadline))
            return ms_err(s, MPISTORE_ETIMEDOUT,
                          "timeout after %.3f s in queue_pop: queue '%.64s' stayed empty "
                          "(hosted by rank %d)",
                          ms_now() - t0, q->user.full, q->ikey.rank);
        ms_backoff(s, &bo);
    }
}

int mpistore_queue_pop(mpistore_t *s, const char *key, bool block, void **value, size_t *len)
{
    MS_ENTER(s);
    q_t q;
    int rc = !value || !len ? ms_err(s, MPISTORE_EINVAL, "queue_pop: value or len is NULL")
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
    ms_leave(s->core);
    return rc;
}

int mpistore_queue_len(mpistore_t *s, const char *key, int64_t *len)
{
    MS_ENTER(s);
    q_t q;
    int rc = !len ? ms_err(s, MPISTORE_EINVAL, "queue_len: len is NULL")
                  : q_open(s, key, "queue_len", 0, &q);
    if (rc == 0) {
        int64_t n = 0;
        int found = 0;
        double deadline = ms_deadline(s->timeout), saved = ms_rq_begin(s, deadline);
        rc = q_read(s, &q, deadline, &found, &n);
        ms_rq_end(s, saved);
        rc = ms_rq_context(s, rc, "timeout in queue_len of queue '%.64s' (hosted by rank %d)",
                           q.user.full, q.ikey.rank);
        if (rc == 0)
            *len = n;
        q_close(&q);
    }
    ms_leave(s->core);
    return rc;
}
