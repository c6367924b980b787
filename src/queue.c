/* Queues (queue_push, queue_pop, queue_len) on internal keys: a tail and a
 * head counter and one entry per element, all going through the ordinary
 * write engine and validated reads.  The algorithm and why it is
 * linearizable, exactly-once and FIFO: docs/design.md, "Queues". */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define Q_SUFFIX_MAX 11u /* NUL, 'q', tag, 8-byte index */

/* The prepared user key and its tail and head counters. */
typedef struct q {
    ms_key_t user;
    ms_key_t tail, head;
    char *tbuf, *hbuf;
} q_t;

/* user key bytes, NUL, 'q', tag [, 8-byte big-endian index] */
static char *ikey_bytes(const ms_key_t *u, char tag, int with_index, uint64_t idx, size_t *len)
{
    size_t n = u->len + 3 + (with_index ? 8 : 0);
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, u->full, u->len);
    p[u->len] = 0;
    p[u->len + 1] = 'q';
    p[u->len + 2] = tag;
    for (unsigned i = 0; with_index && i < 8; i++)
        p[u->len + 3 + i] = (char)(unsigned char)(idx >> (56 - 8 * i));
    p[n] = 0;
    *len = n;
    return p;
}

static int ikey(mpistore_t *s, const ms_key_t *u, char tag, int with_index, uint64_t idx,
                ms_key_t *k, char **mem)
{
    size_t n = 0;
    *mem = ikey_bytes(u, tag, with_index, idx, &n);
    if (!*mem)
        return ms_err(s, MPISTORE_ENOMEM, "out of memory for a queue key");
    ms_key_internal(s, *mem, n, k);
    return 0;
}

static void q_close(q_t *q)
{
    free(q->tbuf);
    free(q->hbuf);
    ms_key_release(&q->user);
    memset(q, 0, sizeof *q);
}

/* Prepare the queue under key.  With soft, a key too long to be a queue
 * gives 1 (no such queue can exist) instead of EKEYTOOLONG. */
static int q_open(mpistore_t *s, const char *key, const char *op, int soft, q_t *q)
{
    memset(q, 0, sizeof *q);
    int rc = ms_key_prepare(s, key, &q->user);
    if (rc)
        return rc;
    size_t max = s->core->max_key_len;
    if (q->user.len + Q_SUFFIX_MAX > max) {
        rc = soft ? 1
                  : ms_err(s, MPISTORE_EKEYTOOLONG,
                           "%s: queue key '%.64s' is %zu bytes, queue keys may have at most "
                           "max_key_len - %u = %zu bytes",
                           op, q->user.full, q->user.len, Q_SUFFIX_MAX,
                           max > Q_SUFFIX_MAX ? max - Q_SUFFIX_MAX : 0);
        ms_key_release(&q->user);
        return rc;
    }
    rc = ikey(s, &q->user, 't', 0, 0, &q->tail, &q->tbuf);
    if (rc == 0)
        rc = ikey(s, &q->user, 'h', 0, 0, &q->head, &q->hbuf);
    if (rc)
        q_close(q);
    return rc;
}

static int parse_count(const unsigned char *p, size_t n, int64_t *out)
{
    char buf[32];
    char *end = NULL;
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, p, n);
    buf[n] = 0;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || end != buf + n || v < 0)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* Validated, non-blocking read of a counter (missing = 0). */
static int read_counter(mpistore_t *s, const ms_key_t *k, const q_t *q, double deadline, int64_t *v)
{
    ms_backoff_t bo = {0};
    for (;;) {
        ms_snap_t sn;
        ms_block_t b = {0};
        int found = 0, rc = ms_snapshot(s, k, &sn);
        if (rc == 0)
            rc = ms_lookup(s, k, &sn, &found, &b);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            int64_t x = 0;
            size_t n = 0;
            const unsigned char *p = found ? ms_block_value(&b, &n) : NULL;
            rc = found && parse_count(p, n, &x) != 0
                     ? ms_err(s, MPISTORE_ENOTINT, "queue '%.64s': corrupt counter", q->user.full)
                     : 0;
            ms_block_release(&b);
            if (rc == 0)
                *v = x;
            return rc;
        }
        if (ms_expired(deadline))
            return ms_err(s, MPISTORE_ETIMEDOUT,
                          "timeout reading the counters of queue '%.64s': they kept changing",
                          q->user.full);
        ms_backoff(s, &bo);
    }
}

/* Length at one instant: tail, head, tail again until both tails agree. */
static int q_len(mpistore_t *s, const q_t *q, double deadline, int64_t *len)
{
    int64_t t1 = 0, t2 = 0, h = 0;
    int rc = read_counter(s, &q->tail, q, deadline, &t1);
    if (rc || t1 == 0) { /* tail 0: nothing was ever pushed */
        if (rc == 0)
            *len = 0;
        return rc;
    }
    ms_backoff_t bo = {0};
    for (;;) {
        rc = read_counter(s, &q->head, q, deadline, &h);
        if (rc == 0)
            rc = read_counter(s, &q->tail, q, deadline, &t2);
        if (rc)
            return rc;
        if (t1 == t2) { /* tail was t1 when head was read */
            *len = t1 > h ? t1 - h : 0;
            return 0;
        }
        if (ms_expired(deadline))
            return ms_err(s, MPISTORE_ETIMEDOUT,
                          "timeout measuring queue '%.64s': it kept changing", q->user.full);
        t1 = t2;
        ms_backoff(s, &bo);
    }
}

int ms_queue_nonempty(mpistore_t *s, const char *key, double deadline, int *nonempty)
{
    q_t q;
    int64_t len = 0;
    int rc = q_open(s, key, "check", 1, &q);
    if (rc == 1) { /* too long to be a queue key */
        *nonempty = 0;
        return 0;
    }
    if (rc == 0)
        rc = q_len(s, &q, deadline, &len);
    if (rc == 0)
        *nonempty = len > 0;
    q_close(&q);
    return rc;
}

int mpistore_queue_push(mpistore_t *s, const char *key, const void *value, size_t len)
{
    MS_ENTER(s);
    q_t q = {0};
    ms_key_t ek;
    char *emem = NULL;
    int64_t idx = 0;
    int rc = 0;
    if (!value && len > 0)
        rc = ms_err(s, MPISTORE_EINVAL, "queue_push: value is NULL with length %zu", len);
    else if (len > s->core->max_value_len)
        rc = ms_err(s, MPISTORE_ETOOBIG, "queue_push: value is %zu bytes, max_value_len is %zu",
                    len, s->core->max_value_len);
    if (rc == 0)
        rc = q_open(s, key, "queue_push", 0, &q);
    if (rc)
        goto out;
    rc = ms_kadd(s, &q.tail, 1, &idx); /* the push's linearization point */
    if (rc == 0)
        rc = ikey(s, &q.user, 'e', 1, (uint64_t)idx, &ek, &emem);
    if (rc == 0)
        rc = ms_kset(s, &ek, value, len);
    if (rc && idx > 0) { /* index taken, element not written: leave a tombstone */
        char msg[MS_ERRMSG_LEN];
        char *xmem = NULL;
        ms_key_t xk;
        memcpy(msg, s->errmsg, sizeof msg);
        if (ikey(s, &q.user, 'x', 1, (uint64_t)idx, &xk, &xmem) == 0)
            (void)ms_kset(s, &xk, NULL, 0);
        free(xmem);
        memcpy(s->errmsg, msg, sizeof msg);
    }
out:
    free(emem);
    q_close(&q);
    ms_leave(s->core);
    return rc;
}

/* Take element j (claimed by us): its value, or *skip for a tombstone. */
static int take_elem(mpistore_t *s, const q_t *q, int64_t j, double t0, double deadline,
                     void **value, size_t *len, int *skip)
{
    ms_key_t ek, xk;
    char *emem = NULL, *xmem = NULL;
    ms_backoff_t bo = {0};
    int rc = ikey(s, &q->user, 'e', 1, (uint64_t)j, &ek, &emem);
    if (rc == 0)
        rc = ikey(s, &q->user, 'x', 1, (uint64_t)j, &xk, &xmem);
    *skip = 0;
    while (rc == 0) {
        int found = 0;
        void *v = NULL;
        size_t n = 0;
        rc = ms_ktake(s, &ek, &found, &v, &n);
        if (rc == 0 && found) {
            *value = v;
            *len = n;
            break;
        }
        if (rc == 0)
            rc = ms_ktake(s, &xk, &found, &v, &n);
        if (rc == 0 && found) {
            free(v);
            *skip = 1;
            break;
        }
        if (rc == 0 && ms_expired(deadline))
            rc = ms_err(s, MPISTORE_ETIMEDOUT,
                        "timeout after %.3f s in queue_pop on '%.64s': element %" PRId64
                        " was claimed but its push has not completed",
                        ms_now() - t0, q->user.full, j);
        if (rc == 0)
            ms_backoff(s, &bo);
    }
    free(emem);
    free(xmem);
    return rc;
}

static int pop(mpistore_t *s, const q_t *q, bool block, void **value, size_t *len)
{
    double t0 = ms_now(), deadline = ms_deadline(s->timeout);
    int64_t t = 0, h = 0;
    int rc = read_counter(s, &q->tail, q, deadline, &t);
    while (rc == 0) {
        int claimed = 0;
        if (t > 0)
            rc = ms_kclaim(s, &q->head, t, &claimed, &h); /* linearization point */
        else
            h = 0; /* tail 0 when read: empty */
        if (rc)
            break;
        if (claimed) {
            int skip = 0;
            rc = take_elem(s, q, h, t0, deadline, value, len, &skip);
            if (rc || !skip)
                break;
            rc = read_counter(s, &q->tail, q, deadline, &t);
            continue;
        }
        /* head h >= t: empty if the tail is still h */
        int64_t t2 = 0;
        if (t > 0)
            rc = read_counter(s, &q->tail, q, deadline, &t2);
        if (rc)
            break;
        if (t2 > h) {
            t = t2;
            continue;
        }
        if (!block) {
            rc = ms_err(s, MPISTORE_EEMPTY, "queue_pop: queue '%.64s' is empty", q->user.full);
            break;
        }
        ms_backoff_t bo = {0};
        while (rc == 0 && t2 <= h) {
            if (ms_expired(deadline))
                rc = ms_err(s, MPISTORE_ETIMEDOUT,
                            "timeout after %.3f s in queue_pop: queue '%.64s' stayed empty "
                            "(tail counter on rank %d)",
                            ms_now() - t0, q->user.full, q->tail.rank);
            if (rc == 0) {
                ms_backoff(s, &bo);
                rc = read_counter(s, &q->tail, q, deadline, &t2);
            }
        }
        t = t2;
    }
    return rc;
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
        rc = q_len(s, &q, ms_deadline(s->timeout), &n);
        if (rc == 0)
            *len = n;
        q_close(&q);
    }
    ms_leave(s->core);
    return rc;
}
