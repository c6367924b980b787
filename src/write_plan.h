/* A write request and what it does to a value (write_plan.c): the seven
 * kinds of write (set, add, compare_set, append, delete_key, and the
 * queues' push and pop) as one request type, the plan of one request on one
 * observed state of its key, and the counter decision.  No RMA: the rest of
 * the write engine (write_update.c, write_insert.c, write.c) acts on the
 * answers. */
#ifndef MPISTORE_WRITE_PLAN_H
#define MPISTORE_WRITE_PLAN_H

#include "ops.h"

/* W_QPUSH (append one length-prefixed record) and W_QPOP (remove the first
 * record, returning it; delete the key with the last one) serve the queues
 * (queue.c, design.md "Queues"). */
typedef enum { W_SET, W_ADD, W_CAS, W_APPEND, W_DELETE, W_QPUSH, W_QPOP } mpistore__wkind_t;

typedef struct mpistore__wreq {
    mpistore__wkind_t kind;
    const void *val; /* SET/APPEND value, CAS desired, QPUSH record */
    size_t vlen;
    const void *exp; /* CAS expected */
    size_t explen;
    int64_t delta; /* ADD */
    /* results, valid after success */
    int64_t sum;
    void *cur;
    size_t curlen;
    mpistore__watch_t watch; /* ADD: where the counter is, if it is one */
    bool deleted;            /* DELETE */
    bool popped;             /* QPOP: an element was taken (in cur) */
} mpistore__wreq_t;

enum { ACT_NONE, ACT_WRITE, ACT_DELETE };

/* What one request does to one observed state of the key. */
typedef struct mpistore__wplan {
    int action;
    const void *a, *b; /* new value = a || b */
    size_t alen, blen;
    const void *ret; /* CAS: the value returned */
    size_t retlen;
    int64_t sum;
    char num[24];
} mpistore__wplan_t;

/* A write under way: the request w on key k, whose waits end at deadline. */
typedef struct mpistore__write {
    mpistore__core_t *c;
    const mpistore__key_t *k;
    mpistore__wreq_t *w;
    double deadline;
} mpistore__write_t;

/* The key's current state: present or not, with its value. */
typedef struct mpistore__wstate {
    int present;
    const unsigned char *old;
    size_t oldlen;
} mpistore__wstate_t;

/* What request w does to the key's state st: the action and the new value
 * in *p, and the request's results recorded in w (copies what must outlive
 * the old block).  0 or <0 (the message in the sink). */
int mpistore__plan(mpistore__core_t *c, const mpistore__key_t *k, mpistore__wreq_t *w,
                   mpistore__wstate_t st, mpistore__wplan_t *p);

/* ---- The counter decision (design.md, "Counters") ----
 * The one place where a write asks "is this a counter, and what must I do
 * about adders?".  The engine asks it at three moments, and only acts on
 * the answer: before it looks at the window (write.c), holding the lock of
 * the key's slot (write_update.c), and inserting the key (write_insert.c). */
typedef struct mpistore__crule {
    int announce; /* an add in a store that keeps counters: register before each
                     look, and add without the lock where the kind hint says
                     counter (write.c, mpistore__counter_meet) */
    int drain;    /* the locked slot holds a counter: wait until no adder is
                     registered on its bucket, then take the counter word as
                     the value (mpistore__counter_drain), before planning */
    int counter;  /* the new state is a counter: its value goes in the slot's
                     counter word, kind hint MS_KIND_CNT, and the add says
                     where it is (w->watch) */
} mpistore__crule_t;
/* cur: the block of the slot the write holds locked; NULL when the write
 * holds no slot of the key (before its look, or inserting the key). */
mpistore__crule_t mpistore__counter_rule(const mpistore__core_t *c, const mpistore__wreq_t *w,
                                         const mpistore__block_t *cur);

/* SET and DELETE replace the value without reading it (the locked fetch
 * then reads the key only); the others extend, compare or split it. */
static inline int mpistore__needs_value(const mpistore__wreq_t *w)
{
    return w->kind != W_SET && w->kind != W_DELETE;
}

/* A value as c10d's add reads it: strict decimal int64, [+-]?[0-9]+ within
 * range, leading zeros allowed.  0 and *out, or -1. */
int mpistore__parse_i64(const unsigned char *p, size_t n, int64_t *out);

/* Any write request on a prepared key (a user or internal key), for a
 * shrink's copy of the keys into the new store (shrink.c). */
int mpistore__kwrite(mpistore__core_t *c, const mpistore__key_t *k, mpistore__wreq_t *w,
                     double deadline);

#endif /* MPISTORE_WRITE_PLAN_H */
