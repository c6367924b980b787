/* The operations layer's shared declarations: a handle (struct mpistore),
 * the start and end of a public call (the API mutex, the error sink copied
 * into the handle's message), a handle's keys, and what the operation files
 * (write*.c, ops_read.c, counters.c, queue.c, listkeys.c) give each other
 * and the public API layer (store.c, elastic.c).  Every function here is
 * called with the core entered (MS_ENTER), and takes its deadline from the
 * caller (mpistore__deadline): none reads or changes the handle's timeout. */
#ifndef MPISTORE_OPS_H
#define MPISTORE_OPS_H

#include "block.h"
#include "core.h"
#include "index.h"
#include "status.h"

#include <stdbool.h>

struct mpistore {
    mpistore__core_t *core;
    mpistore_t *parent; /* NULL for a store */
    char *prefix;       /* "p/" for a view (trailing slash), NULL for a store */
    size_t prefix_len;
    double timeout;      /* seconds, the deadline of the handle's blocking calls; 0: none */
    int nviews;          /* open views created from this handle */
    mpistore__err_t err; /* the message of its last failure (mpistore_errmsg) */
};

/* ---- the start and end of a public call ---- */
/* Enter the core: the API mutex, a clean sink. */
static inline void mpistore__api_enter(mpistore_t *s)
{
    mpistore__apilock_take(&s->core->lock);
    s->core->err.msg[0] = 0;
}
/* Leave it: a failure's message (written to the core's sink by whatever
 * layer failed) becomes the handle's.  Returns rc. */
static inline int mpistore__api_leave(mpistore_t *s, int rc)
{
    if (rc < 0)
        s->err = s->core->err;
    mpistore__apilock_give(&s->core->lock);
    return rc;
}
/* Start of a public call: a NULL handle is EINVAL, a shrunk-away store
 * ESTATE, else enter the core. */
#define MS_ENTER(s)                                                                                \
    do {                                                                                           \
        if (!(s))                                                                                  \
            return mpistore__null_handle(__func__);                                                \
        mpistore__api_enter(s);                                                                    \
        if ((s)->core->shrunk)                                                                     \
            return mpistore__api_leave((s), mpistore__shrunk_err(mpistore__sink(s), __func__));    \
    } while (0)
/* The sink of the handle's core (where an operation writes its failure). */
static inline mpistore__err_t *mpistore__sink(const mpistore_t *s)
{
    return &s->core->err;
}

/* ---- a handle's keys ---- */
static inline mpistore__prefix_t mpistore__prefix_of(const mpistore_t *s)
{
    return (mpistore__prefix_t){.str = s->prefix, .len = s->prefix_len};
}
static inline int mpistore__key_of(mpistore_t *s, const char *key, mpistore__key_t *k)
{
    return mpistore__key_prepare(s->core, mpistore__prefix_of(s), key, k);
}
static inline int mpistore__keys_of(mpistore_t *s, const char *const *keys, size_t nkeys,
                                    const char *op)
{
    return mpistore__keys_check(s->core, mpistore__prefix_of(s), keys, nkeys, op);
}
/* value arguments: NULL only with length 0, at most max_value_len */
int mpistore__check_value(mpistore_t *s, const void *v, size_t len, const char *what);

/* ---- the write engine (write.c) ---- */
int mpistore__set_until(mpistore_t *s, const char *key, const void *value, size_t len,
                        double deadline);
/* Counters' watch (below) of where an add left the key, for the barrier. */
typedef struct mpistore__watch mpistore__watch_t;
/* add; *watch (may be NULL) says where the counter is, valid only for one */
int mpistore__add_until(mpistore_t *s, const char *key, int64_t delta, double deadline,
                        int64_t *result, mpistore__watch_t *watch);
/* Queue records on a queue's internal key, for queue.c: append one
 * (4-byte length + bytes; creates the key), and take the first (*popped =
 * 0: the queue is empty; the last record deletes the key). */
int mpistore__kqpush(mpistore_t *s, const mpistore__key_t *k, const void *record, size_t len,
                     double deadline);
int mpistore__kqpop(mpistore_t *s, const mpistore__key_t *k, double deadline, int *popped,
                    void **value, size_t *len);

/* ---- reads (ops_read.c) ---- */
int mpistore__get_until(mpistore_t *s, const char *key, double deadline, void **value, size_t *len);
/* Are all keys present (each looked at once, reads bounded by deadline)? */
int mpistore__check_keys(mpistore_t *s, const char *const *keys, size_t nkeys, double deadline,
                         bool *all);
/* Wait until every key is present, or the deadline (ETIMEDOUT). */
int mpistore__wait_until(mpistore_t *s, const char *const *keys, size_t nkeys, double deadline);
int mpistore__multi_get_until(mpistore_t *s, const char *const *keys, size_t nkeys, double deadline,
                              void **values, size_t *lens);

/* ---- counters.c: lock-free add on counter keys (design.md, "Counters") ---- */
/* Where an add left a counter: enough to read it again in one round trip
 * (mpistore__counter_watch) while it stays the same publication. */
struct mpistore__watch {
    int valid;             /* the add was on (or created) a counter */
    int rank;              /* rank holding the slot */
    size_t lock, dsc, cnt; /* displacements of its lock, descriptor, counter */
    uint64_t desc;         /* the counter's descriptor */
    uint64_t reg;          /* registration word of the key */
};
/* The registration word naming key k's bucket: rank + 1 (18 bits, so never
 * 0 for up to 2^17 ranks) | home bucket (low 30 bits) | 16 bits of fp.
 * Buckets that agree in those bits share registrations: a writer may then
 * wait for an unrelated add, never miss one. */
static inline uint64_t mpistore__reg_word(const mpistore__key_t *k)
{
    return ((uint64_t)(k->rank + 1) << 46) | ((uint64_t)(k->home & 0x3FFFFFFFu) << 16) |
           (uint64_t)(k->fp & 0xFFFFu);
}
/* The watch of the counter of key k in slot i of sn, published as desc. */
static inline void mpistore__watch_make(const mpistore__key_t *k, const mpistore__snap_t *sn,
                                        size_t i, uint64_t desc, mpistore__watch_t *w)
{
    w->valid = 1;
    w->rank = mpistore__snap_target(sn, i);
    w->lock = mpistore__snap_ctl_off(sn, i, MS_CTL_LOCK);
    w->dsc = mpistore__snap_desc_off(sn, i);
    w->cnt = mpistore__snap_cnt_off(sn, i);
    w->desc = desc;
    w->reg = mpistore__reg_word(k);
}
/* Registered read of a watched counter (1 round trip): MS_DONE and *value;
 * MS_GONE the slot no longer holds that publication; MS_BUSY it is locked or
 * a publication is landing (peek next time).  peek: an unregistered look at
 * lock and descriptor only, MS_STABLE when the slot is stable again. */
int mpistore__counter_watch(mpistore__core_t *c, const mpistore__watch_t *w, int peek,
                            int64_t *value);
/* An unregistered look at a watched counter (1 round trip, two reads): the
 * descriptor and the counter word, no registration.  MS_GONE if the
 * descriptor moved, else MS_DONE and *value, which is only a hint: the slot
 * may be locked or changing, so a decision on it is confirmed with
 * mpistore__counter_watch. */
int mpistore__counter_glance(mpistore__core_t *c, const mpistore__watch_t *w, int64_t *value);
/* Can this store keep counters (a decimal int64 fits max_value_len)? */
static inline int mpistore__counters_enabled(const mpistore__core_t *c)
{
    return c->lay.max_value_len >= 20; /* "-9223372036854775808" */
}
/* Announce / withdraw an add on key k's home bucket (this rank's MS_OFF_REG). */
int mpistore__reg_set(mpistore__core_t *c, const mpistore__key_t *k);
int mpistore__reg_clear(mpistore__core_t *c);
/* An add announced before its look (mpistore__reg_set) meets candidate
 * slot i of sn: the lock-free add if the slot holds a counter (MS_DONE and
 * *sum; MS_OTHER_KEY: another key's); else MS_LOCKED_PATH, the announcement
 * withdrawn first (the locked path would wait for it); or <0. */
int mpistore__counter_meet(mpistore__core_t *c, const mpistore__key_t *k,
                           const mpistore__snap_t *sn, size_t i, int64_t delta, int64_t *sum);
/* Holding the lock of counter slot i of sn (key k): wait until no rank is
 * registered on k's bucket, then read the counter into b (mpistore__block_set_counter). */
int mpistore__counter_drain(mpistore__core_t *c, const mpistore__key_t *k,
                            const mpistore__snap_t *sn, size_t i, double deadline,
                            mpistore__block_t *b);

/* ---- queue.c ---- */
/* Is the queue under user key `key` (of handle s) non-empty? */
int mpistore__queue_nonempty(mpistore_t *s, const char *key, double deadline, int *nonempty);
/* number of records in a queue value, -1 if malformed */
int64_t mpistore__queue_count(const unsigned char *p, size_t n);

#endif /* MPISTORE_OPS_H */
