/* Declarations shared by the operation files (ops_write.c, ops_read.c,
 * counters.c, queue.c, listkeys.c, elastic.c); called with the core
 * entered. */
#ifndef MPISTORE_OPS_H
#define MPISTORE_OPS_H

#include "block.h"
#include "index.h"
#include "ops_status.h"

/* Write-engine operations on a queue's internal key, for queue.c: append
 * one record (4-byte length + bytes; creates the key), and take the first
 * record (*popped = 0: the queue is empty; the last record deletes the key),
 * lock waits bounded by deadline (ms_deadline). */
int ms_kqpush(mpistore_t *s, const ms_key_t *k, const void *record, size_t len);
int ms_kqpop(mpistore_t *s, const ms_key_t *k, double deadline, int *popped, void **value,
             size_t *len);

/* ---- counters.c: lock-free add on counter keys (design.md, "Counters") ---- */
/* Where an add left a counter: enough to read it again in one round trip
 * (ms_counter_watch) while it stays the same publication. */
typedef struct ms_watch {
    int valid;                /* the add was on (or created) a counter */
    int rank;                 /* rank holding the slot */
    size_t lock, dsc, cnt;    /* displacements of its lock, descriptor, counter */
    uint64_t desc;            /* the counter's descriptor */
    uint64_t reg;             /* registration word of the key */
} ms_watch_t;
void ms_watch_make(const ms_key_t *k, const ms_snap_t *sn, size_t i, uint64_t desc,
                   ms_watch_t *w);
/* Registered read of a watched counter (1 round trip): MS_DONE and *value;
 * MS_GONE the slot no longer holds that publication; MS_BUSY it is locked or
 * a publication is landing (peek next time).  peek: an unregistered look at
 * lock and descriptor only, MS_STABLE when the slot is stable again. */
int ms_counter_watch(mpistore_t *s, const ms_watch_t *w, int peek, int64_t *value);
/* add (the public call's semantics, core entered) that also says where the
 * counter is (*watch valid only for counters). */
int ms_add_locked(mpistore_t *s, const char *key, int64_t delta, int64_t *result,
                  ms_watch_t *watch);

/* Can this store keep counters (a decimal int64 fits max_value_len)? */
int ms_counters_enabled(const ms_core_t *c);
/* Announce / withdraw an add on key k's home bucket (this rank's MS_OFF_REG). */
int ms_reg_set(mpistore_t *s, const ms_key_t *k);
int ms_reg_clear(mpistore_t *s);
/* The registered add on the counter in slot i of sn (taken after ms_reg_set).
 * MS_DONE (*sum), MS_OTHER_KEY, MS_LOCKED_PATH (not possible here), <0. */
int ms_counter_add(mpistore_t *s, const ms_key_t *k, const ms_snap_t *sn, size_t i, int64_t delta,
                   int64_t *sum, ms_watch_t *watch);
/* Holding the lock of counter slot i of sn (key k): wait until no rank is
 * registered on k's bucket, then read the counter into b (ms_block_set_counter). */
int ms_counter_drain(mpistore_t *s, const ms_key_t *k, const ms_snap_t *sn, size_t i,
                     double deadline, ms_block_t *b);

/* queue.c: is the queue under user key `key` (of handle s) non-empty? */
int ms_queue_nonempty(mpistore_t *s, const char *key, double deadline, int *nonempty);
/* number of records in a queue value, -1 if malformed */
int64_t ms_queue_count(const unsigned char *p, size_t n);

#endif /* MPISTORE_OPS_H */
