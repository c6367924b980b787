/* The write engine.  set, add, compare_set, append, delete_key, multi_set
 * and the queues' push and pop (queue.c) are requests (wreq_t) on one path
 * (docs/design.md, "Writer locking", "Inserts", "Counters").  A write reads
 * plan, lock, decide, publish; in call order (the file defines callees
 * first, so read it from the bottom up):
 *
 *   write_until              look (the window snapshot), try, back off, again
 *     try_slots              each slot that may hold the key:
 *       ms_counter_add         an announced add on a counter: no lock (counters.c)
 *       update_slot            else:
 *         lock_slot              lock the slot, fetch its block (one round trip)
 *         decide_update          our key?  counter_rule; plan the new value
 *         publish_counter        publish: the counter word, or
 *         publish                a new block (then retire the old one),
 *                                or unlock unchanged if there is nothing to write
 *     insert                 no slot holds the key:
 *       plan, counter_rule     the value, and whether the key is a counter
 *       lock_home              lock the home slot, re-read every level
 *       present_under_home     still absent?
 *       choose_slot            the home slot, a free one, or a new level
 *       reserve_slot           hints and the key count
 *       check_max_keys
 *       publish_insert         publish, release the home lock (or rollback_insert)
 *
 * The counter decision is made in ONE place, counter_rule: does the write
 * announce itself to adders (an add in a store that keeps counters), must it
 * wait out the adders of the slot it locked (the slot holds a counter), is
 * the new state a counter.  The engine only acts on the answer; counters.c
 * does the RMA of the counter protocol.  Statuses: ops_status.h. */
#include "errors.h"
#include "core.h"
#include "wait.h"
#include "rma.h"
#include "alloc.h"
#include "levels.h"
#include "fail.h"
#include "block.h"
#include "index.h"
#include "ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* W_QPUSH (append one length-prefixed record) and W_QPOP (remove the first
 * record, returning it; delete the key with the last one) serve the queues
 * (queue.c, design.md "Queues"). */
typedef enum { W_SET, W_ADD, W_CAS, W_APPEND, W_DELETE, W_QPUSH, W_QPOP } wkind_t;

typedef struct wreq {
    wkind_t kind;
    const void *val; /* SET/APPEND value, CAS desired, QPUSH record */
    size_t vlen;
    const void *exp; /* CAS expected */
    size_t explen;
    int64_t delta; /* ADD */
    /* results, valid after success */
    int64_t sum;
    void *cur;
    size_t curlen;
    ms_watch_t watch; /* ADD: where the counter is, if it is one */
    bool deleted;     /* DELETE */
    bool popped;      /* QPOP: an element was taken (in cur) */
} wreq_t;

enum { ACT_NONE, ACT_WRITE, ACT_DELETE };

/* What one request does to one observed state of the key. */
typedef struct wplan {
    int action;
    const void *a, *b; /* new value = a || b */
    size_t alen, blen;
    const void *ret; /* CAS: the value returned */
    size_t retlen;
    int64_t sum;
    char num[24];
} wplan_t;

/* strict decimal int64: [+-]?[0-9]+ within range (leading zeros allowed, as
 * c10d's std::stoll allows them) */
static int parse_i64(const unsigned char *p, size_t n, int64_t *out)
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
static int plan_add(mpistore_t *s, const ms_key_t *k, const wreq_t *w, int present,
                    const unsigned char *old, size_t oldlen, wplan_t *p)
{
    int64_t base = 0;
    if (present && parse_i64(old, oldlen, &base) != 0)
        return ms_err(s, MPISTORE_ENOTINT,
                      "add on key '%.64s': value (%zu bytes) is not a decimal int64", k->full,
                      oldlen);
    if ((w->delta > 0 && base > INT64_MAX - w->delta) ||
        (w->delta < 0 && base < INT64_MIN - w->delta))
        return ms_err(s, MPISTORE_ENOTINT,
                      "add on key '%.64s': %" PRId64 " + %" PRId64 " overflows int64", k->full,
                      base, w->delta);
    p->sum = base + w->delta;
    p->action = ACT_WRITE;
    p->alen = (size_t)snprintf(p->num, sizeof p->num, "%" PRId64, p->sum);
    p->a = p->num;
    if (p->alen > s->core->max_value_len) /* readers would reject the block as corrupt */
        return ms_err(s, MPISTORE_ETOOBIG,
                      "add on key '%.64s': result %" PRId64
                      " needs %zu bytes, max_value_len is %zu",
                      k->full, p->sum, p->alen, s->core->max_value_len);
    return 0;
}

/* compare_set: write the desired value if the old one is the expected one
 * (absent matches an empty expected value); return the value it leaves. */
static void plan_cas(const wreq_t *w, int present, const unsigned char *old, size_t oldlen,
                     wplan_t *p)
{
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
static int plan_append(mpistore_t *s, const ms_key_t *k, const wreq_t *w, int present,
                       const unsigned char *old, size_t oldlen, wplan_t *p)
{
    if (present && oldlen + w->vlen > s->core->max_value_len)
        return ms_err(s, MPISTORE_ETOOBIG,
                      w->kind == W_QPUSH
                          ? "queue_push on '%.64s': the queue holds %zu bytes, one more "
                            "%zu-byte record exceeds max_value_len %zu"
                          : "append on key '%.64s': %zu + %zu bytes exceeds max_value_len %zu",
                      k->full, oldlen, w->vlen, s->core->max_value_len);
    p->action = ACT_WRITE;
    p->a = present ? old : w->val;
    p->alen = present ? oldlen : w->vlen;
    p->b = present ? w->val : NULL;
    p->blen = present ? w->vlen : 0;
    return 0;
}

/* queue_pop: return the first record, keep the rest (none left: delete the
 * key); absent, the queue is empty. */
static int plan_qpop(mpistore_t *s, const ms_key_t *k, int present, const unsigned char *old,
                     size_t oldlen, wplan_t *p)
{
    uint32_t n = 0;
    p->action = ACT_NONE; /* absent: the queue is empty */
    if (!present)
        return 0;
    if (oldlen < sizeof n || (memcpy(&n, old, sizeof n), oldlen - sizeof n < n))
        return ms_err(s, MPISTORE_EMPI, "queue '%.64s': corrupt queue value (internal error)",
                      k->full);
    p->ret = old + sizeof n;
    p->retlen = n;
    p->a = old + sizeof n + n;
    p->alen = oldlen - sizeof n - n;
    p->action = p->alen ? ACT_WRITE : ACT_DELETE;
    return 0;
}

/* What request w does to the key's current state (present, with the value
 * old): the action and the new value, in *p. */
static int plan(mpistore_t *s, const ms_key_t *k, const wreq_t *w, int present,
                const unsigned char *old, size_t oldlen, wplan_t *p)
{
    memset(p, 0, sizeof *p);
    switch (w->kind) {
    case W_SET:
        p->action = ACT_WRITE;
        p->a = w->val;
        p->alen = w->vlen;
        return 0;
    case W_ADD:
        return plan_add(s, k, w, present, old, oldlen, p);
    case W_CAS:
        plan_cas(w, present, old, oldlen, p);
        return 0;
    case W_APPEND:
    case W_QPUSH:
        return plan_append(s, k, w, present, old, oldlen, p);
    case W_DELETE:
        p->action = present ? ACT_DELETE : ACT_NONE;
        return 0;
    case W_QPOP:
        return plan_qpop(s, k, present, old, oldlen, p);
    }
    return ms_err(s, MPISTORE_EINVAL, "internal: unknown write kind");
}

/* Record the results of a completed request (copies what must outlive it). */
static int finish(mpistore_t *s, wreq_t *w, const wplan_t *p)
{
    w->sum = p->sum;
    w->deleted = p->action == ACT_DELETE;
    w->popped = w->kind == W_QPOP && p->action != ACT_NONE;
    if (w->kind == W_CAS || w->popped) {
        w->cur = ms_dup_value(p->ret, p->retlen);
        if (!w->cur)
            return ms_err(s, MPISTORE_ENOMEM, "out of memory for a %zu-byte value", p->retlen);
        w->curlen = p->retlen;
    }
    return 0;
}

/* Give back a slot lock (target rank, displacement of the lock word). */
static int unlock_unchanged(mpistore_t *s, int target, size_t lockoff, const uint32_t *lockword)
{
    int rc = ms_put_u32(s, target, lockoff, lockword);
    return rc ? rc : ms_flush(s, target);
}

/* Unlock home slot h after an insert into another slot: the same
 * descriptor, but the next version in it and in the lock word. */
static int release_home(mpistore_t *s, int home, size_t h, uint32_t lockword, uint64_t desc)
{
    ms_core_t *c = s->core;
    uint32_t ver = ms_lock_ver(lockword) + 1u, nl = ver << 1;
    uint64_t nd =
        ms_desc_make(ver, ms_desc_valid(desc), (uint32_t)ms_desc_rank(desc), ms_desc_uoff(desc));
    int rc = ms_put_u64(s, home, ms_desc_off(c, h), &nd);
    if (rc == 0)
        rc = ms_put_u32(s, home, ms_ctl_off(c, h, MS_CTL_LOCK), &nl);
    return rc ? rc : ms_flush(s, home);
}

/* Release a block that was just unpublished. */
static int retire(mpistore_t *s, uint64_t old)
{
    ms_core_t *c = s->core;
    static const uint64_t one = 1;
    int owner = ms_desc_rank(old);
    size_t off = 0, room = 0;
    if (owner == c->rank) {
        ms_free_block(c, ms_desc_uoff(old));
        return 0;
    }
    int rc = ms_unit_addr(s, owner, ms_desc_uoff(old), &off, &room);
    if (rc == 0 && room == 0)
        return 0; /* cannot happen for a published block: leak it */
    if (rc == 0)
        rc = ms_put_u64(s, owner, off, &one);
    return rc ? rc : ms_flush(s, owner);
}

/* The kind hint of a slot: one bit, set or cleared with an atomic OR / AND
 * so that the level mask beside it in level-0 slots stays (core.h). */
static int set_kind(mpistore_t *s, int target, size_t off, uint32_t kind)
{
    static const uint32_t cnt_bit = MS_KIND_CNT, str_mask = ~(uint32_t)MS_KIND_CNT;
    return kind == MS_KIND_CNT ? ms_or_u32(s, target, off, &cnt_bit)
                               : ms_and_u32(s, target, off, &str_mask);
}

/* Publish a new state of slot i of sn, which we hold locked: descriptor,
 * length hint and unlock with the next version, in one flush (design.md).
 * The key count is the home rank's. */
static int publish(mpistore_t *s, const ms_snap_t *sn, size_t i, uint32_t lockword, int valid,
                   uint32_t uoff, uint32_t total, int64_t count_delta, int internal, uint32_t kind)
{
    ms_core_t *c = s->core;
    int t = ms_snap_target(sn, i), home = sn->rank;
    uint32_t ver = ms_lock_ver(lockword) + 1u, nl = ver << 1, nb = total;
    uint64_t nd = ms_desc_make(ver, valid, (uint32_t)c->rank, uoff);
    int rc = ms_put_u64(s, t, ms_snap_desc_off(sn, i), &nd);
    if (rc == 0 && valid)
        rc = ms_put_u32(s, t, ms_snap_ctl_off(sn, i, MS_CTL_BLEN), &nb);
    if (rc == 0 && valid)
        rc = set_kind(s, t, ms_snap_ctl_off(sn, i, MS_CTL_KIND), kind);
    if (rc == 0 && count_delta)
        rc = ms_add_i64(s, home, MS_OFF_COUNT, &count_delta);
    if (rc == 0 && count_delta && internal) /* queue entries: kept out of num_keys */
        rc = ms_add_i64(s, home, MS_OFF_QCOUNT, &count_delta);
    if (rc == 0)
        rc = ms_put_u32(s, t, ms_snap_ctl_off(sn, i, MS_CTL_LOCK), &nl);
    return rc ? rc : ms_flush2(s, t, home);
}

/* ---- The counter decision (design.md, "Counters") ----
 * The one place where a write asks "is this a counter, and what must I do
 * about adders?".  The engine asks it at three moments, and only acts on
 * the answer: before it looks at the window (write_until), holding the lock
 * of the key's slot (decide_update), and inserting the key (insert). */
typedef struct crule {
    int announce; /* an add in a store that keeps counters: register before each
                     look, and add without the lock where the kind hint says
                     counter (try_slots, ms_counter_add) */
    int drain;    /* the locked slot holds a counter: wait until no adder is
                     registered on its bucket, then take the counter word as
                     the value (ms_counter_drain), before planning */
    int counter;  /* the new state is a counter: its value goes in the slot's
                     counter word, kind hint MS_KIND_CNT, and the add says
                     where it is (w->watch) */
} crule_t;

/* cur: the block of the slot the write holds locked; NULL when the write
 * holds no slot of the key (before its look, or inserting the key). */
static crule_t counter_rule(const mpistore_t *s, const wreq_t *w, const ms_block_t *cur)
{
    crule_t r = {0};
    r.announce = w->kind == W_ADD && ms_counters_enabled(s->core);
    r.drain = cur && cur->counter;
    /* a key created by add is a counter; a locked add on a counter (a stale
     * kind hint, or beyond the lock-free bounds) keeps it one; every other
     * write to a counter makes it a string */
    r.counter = cur ? w->kind == W_ADD && cur->counter : r.announce;
    return r;
}

/* ---- Updating a key in its slot: lock, decide, publish ---- */

/* SET and DELETE replace the value without reading it (the locked fetch
 * then reads the key only); the others extend, compare or split it. */
static int needs_value(const wreq_t *w)
{
    return w->kind != W_SET && w->kind != W_DELETE;
}

/* Lock slot i of sn and fetch its block, in one round trip.  MS_DONE (the
 * lock is ours, *blk is current and stays so), MS_RETRY (the slot changed
 * since the snapshot) or <0. */
static int lock_slot(mpistore_t *s, const ms_key_t *k, const wreq_t *w, const ms_snap_t *sn,
                     size_t i, ms_block_t *blk)
{
    int t = ms_snap_target(sn, i);
    size_t lockoff = ms_snap_ctl_off(sn, i, MS_CTL_LOCK);
    uint64_t d = sn->desc[i];
    uint32_t exp = ms_snap_lock(sn, i), want = exp | 1u, got = ~exp;
    /* the buffer first: nothing may fail between the CAS and its flush */
    int rc = ms_block_alloc(s, d, needs_value(w) ? ms_snap_blen(sn, i) : MS_BLK_HDR + k->len, blk);
    if (rc)
        return rc;
    rc = ms_cas_u32(s, t, lockoff, &want, &exp, &got);
    if (rc == 0)
        rc = ms_block_fetch(s, d, blk);
    if (rc == 0)
        rc = ms_flush2(s, t, ms_desc_rank(d));
    if (rc || got != exp) {
        if (rc && got == exp) /* locked, then failed: give the lock back */
            unlock_unchanged(s, t, lockoff, &exp);
        ms_block_release(blk);
        return rc ? rc : MS_RETRY;
    }
    return MS_DONE;
}

/* Holding slot i locked with its block fetched: is it our key; the counter
 * decision (and the wait for adders it may ask for); what the request makes
 * of the value (plan, results recorded).  MS_DONE (*cr, *p), MS_OTHER_KEY or
 * <0; the caller unlocks but for MS_DONE. */
static int decide_update(mpistore_t *s, const ms_key_t *k, wreq_t *w, const ms_snap_t *sn,
                         size_t i, double deadline, ms_block_t *blk, crule_t *cr, wplan_t *p)
{
    uint64_t d = sn->desc[i];
    int torn = 0, need_value = needs_value(w);
    int rc = ms_block_complete(s, d, blk, need_value, &torn);
    if (rc == 0 && torn)
        rc = ms_err_corrupt(s, d, k);
    if (rc == 0 && !ms_block_is_key(blk, k))
        rc = MS_OTHER_KEY;
    if (rc)
        return rc;
    *cr = counter_rule(s, w, blk);
    if (cr->drain) /* adders may be in flight: let them land */
        rc = ms_counter_drain(s, k, sn, i, deadline, blk);
    size_t oldlen = 0;
    const unsigned char *old = rc == 0 && need_value ? ms_block_value(blk, &oldlen) : NULL;
    if (rc == 0)
        rc = plan(s, k, w, 1, old, oldlen, p);
    if (rc == 0)
        rc = finish(s, w, p);
    return rc;
}

/* Publish a counter's new value, holding its slot: the adders are drained
 * and the lock is held, so the word is replaced, not summed; then unlock,
 * the descriptor unchanged. */
static int publish_counter(mpistore_t *s, const ms_key_t *k, wreq_t *w, const ms_snap_t *sn,
                           size_t i, int64_t value)
{
    int t = ms_snap_target(sn, i);
    uint32_t exp = ms_snap_lock(sn, i);
    int rc = ms_put_i64(s, t, ms_snap_cnt_off(sn, i), &value);
    if (rc == 0)
        rc = ms_flush(s, t);
    if (rc == 0)
        ms_watch_make(k, sn, i, sn->desc[i], &w->watch);
    int urc = unlock_unchanged(s, t, ms_snap_ctl_off(sn, i, MS_CTL_LOCK), &exp);
    return rc ? rc : urc;
}

/* Update the key in slot i of the snapshot: lock, decide, publish (a
 * counter's word, a new block, or nothing).  MS_DONE, MS_RETRY, MS_OTHER_KEY
 * or <0. */
static int update_slot(mpistore_t *s, const ms_key_t *k, wreq_t *w, const ms_snap_t *sn, size_t i,
                       double deadline)
{
    ms_block_t blk = {0};
    crule_t cr = {0};
    wplan_t p;
    int rc = lock_slot(s, k, w, sn, i, &blk);
    if (rc != MS_DONE)
        return rc;
    rc = decide_update(s, k, w, sn, i, deadline, &blk, &cr, &p);
    if (rc == MS_DONE && cr.counter) {
        ms_block_release(&blk);
        return publish_counter(s, k, w, sn, i, p.sum);
    }
    uint32_t uoff = 0, total = 0, exp = ms_snap_lock(sn, i);
    if (rc == MS_DONE && p.action == ACT_WRITE)
        rc = ms_block_build(s, k, p.a, p.alen, p.b, p.blen, &uoff, &total);
    ms_block_release(&blk); /* only now: p.ret and p.a may point into the old block */
    if (rc != MS_DONE || p.action == ACT_NONE) {
        int urc = unlock_unchanged(s, ms_snap_target(sn, i), ms_snap_ctl_off(sn, i, MS_CTL_LOCK),
                                   &exp);
        return urc ? urc : rc;
    }
    rc = publish(s, sn, i, exp, p.action == ACT_WRITE, uoff, total,
                 p.action == ACT_DELETE ? -1 : 0, k->internal, MS_KIND_STR); /* !cr.counter */
    if (rc == 0)
        (void)retire(s, sn->desc[i]); /* the write is done even if the old block leaks */
    return rc;
}

/* Is slot j of a snapshot taken under the home lock stable for us?  Slot 0
 * (the home slot) is locked by ourselves. */
static int stable_under_home(const ms_snap_t *sn, size_t j)
{
    uint32_t l = ms_snap_lock(sn, j);
    if (j == 0)
        return (ms_lock_ver(l) & MS_DESC_VER_MASK) == ms_desc_ver(sn->desc[j]);
    return ms_snap_stable(sn, j);
}

/* Under the home lock: is the key present in the re-read window?
 * MS_ABSENT, MS_RETRY (present or unsure), <0. */
static int present_under_home(mpistore_t *s, const ms_key_t *k, const ms_snap_t *sn)
{
    for (size_t j = 0; j < sn->n; j++) {
        if (!ms_snap_candidate(sn, j, k->fp))
            continue;
        if (!stable_under_home(sn, j))
            return MS_RETRY;
        /* fingerprint match: check the stored key (validated read) */
        ms_snap_t *one = malloc(sizeof *one);
        if (!one)
            return ms_err(s, MPISTORE_ENOMEM, "out of memory inserting key '%.64s'", k->full);
        *one = *sn;
        for (size_t x = 0; x < one->n; x++)
            if (x != j)
                one->desc[x] = 0; /* only slot j is a candidate */
        ms_block_t blk = {0};
        int found = 0, rc = ms_lookup(s, k, one, &found, &blk);
        ms_block_release(&blk);
        free(one);
        if (rc < 0)
            return rc;
        if (rc == MS_RETRY || found)
            return MS_RETRY;
    }
    return MS_ABSENT;
}

/* An insert under way (design.md, "Inserts"): what it holds, so that
 * rollback_insert can give it back. */
typedef struct ins {
    int home;             /* the home rank */
    size_t h, hlock;      /* the home bucket, the displacement of its lock word */
    uint32_t exph;        /* the home lock word we lock from */
    ms_snap_t *sn2;       /* every level, re-read under the home lock */
    size_t js;            /* the new key's slot, as an index of sn2 (0: the home slot) */
    uint32_t slot_exp;    /* that slot's lock word before we locked it */
    uint32_t uoff, total; /* the new block */
    uint32_t kind;        /* MS_KIND_CNT: the new key is a counter */
    int64_t count;        /* the home rank's key count before our reservation */
    int reserved;         /* our +1 to the key count has landed */
    int rma_failed;       /* one of our RMA calls failed: give back only the block */
} ins_t;

/* Lock the home slot and re-read every level in one round trip: see
 * design.md "Inserts" and "Growth" for why a re-read that may run before
 * the CAS lands still sees every completed insert.  MS_DONE (in->sn2 is
 * set), else MS_RETRY or <0, the block freed. */
static int lock_home(mpistore_t *s, const ms_key_t *k, ins_t *in)
{
    ms_core_t *c = s->core;
    uint32_t wanth = in->exph | 1u, got = ~in->exph;
    ms_snap_t *sn2 = malloc(sizeof *sn2);
    if (!sn2) {
        ms_free_block(c, in->uoff);
        return ms_err(s, MPISTORE_ENOMEM, "out of memory inserting key '%.64s'", k->full);
    }
    int rc = ms_cas_u32(s, in->home, in->hlock, &wanth, &in->exph, &got);
    if (rc == 0)
        rc = ms_snapshot_issue(s, k, sn2);
    if (rc == 0)
        rc = ms_flush(s, in->home);
    if (rc == 0 && got == in->exph) /* levels published since: read them too */
        rc = ms_snapshot_fix(s, k, sn2);
    if (rc || got != in->exph) {
        if (rc && got == in->exph) /* locked, then failed: give the lock back */
            unlock_unchanged(s, in->home, in->hlock, &in->exph);
        ms_free_block(c, in->uoff);
        free(sn2);
        return rc ? rc : MS_RETRY;
    }
    in->sn2 = sn2;
    return MS_DONE;
}

/* Claim the first free slot of the re-read window that is stable, level 0
 * first: MS_DONE (in->js, in->slot_exp), MS_RETRY (lost every race for a
 * free slot), MS_NO_ROOM (no slot is free) or <0. */
static int claim_free_slot(mpistore_t *s, ins_t *in)
{
    const ms_snap_t *sn2 = in->sn2;
    int empties = 0;
    for (size_t j = 1; j < sn2->n; j++) {
        if (ms_desc_valid(sn2->desc[j]))
            continue;
        empties++;
        if (!ms_snap_stable(sn2, j))
            continue;
        uint32_t e = ms_snap_lock(sn2, j), wnt = e | 1u, g = 0;
        int t = ms_snap_target(sn2, j);
        int rc = ms_cas_u32(s, t, ms_snap_ctl_off(sn2, j, MS_CTL_LOCK), &wnt, &e, &g);
        if (rc == 0)
            rc = ms_flush(s, t);
        if (rc) {
            in->rma_failed = 1;
            return rc;
        }
        if (g == e) {
            in->js = j;
            in->slot_exp = e;
            return MS_DONE;
        }
    }
    return empties > 0 ? MS_RETRY : MS_NO_ROOM;
}

/* Every level is full around the key: host the next level (or learn that
 * another rank does).  MS_RETRY_NOW (ours, published), MS_RETRY (another
 * rank's: wait for its publication) or <0. */
static int grow_index(mpistore_t *s, const ins_t *in)
{
    int rc = ms_level_create(s, in->home, in->sn2->nlev);
    if (rc == -MPISTORE_ENOMEM)
        return ms_fail_publish(s, rc, MS_FAIL_MEMORY);
    if (rc < 0)
        return rc;
    return rc == 1 ? MS_RETRY_NOW : MS_RETRY;
}

/* No free slot at any level, and no level left to add. */
static int index_full(mpistore_t *s, const ms_key_t *k, const ins_t *in)
{
    ms_err(s, MPISTORE_ENOSPC,
           "index of rank %d is full: no free slot around bucket %zu in any of its %u "
           "levels (key '%.64s'); %s",
           in->home, in->h, in->sn2->nlev, k->full, ms_fail_advice(MS_FAIL_LEVELS));
    return ms_fail_publish(s, -MPISTORE_ENOSPC, MS_FAIL_LEVELS);
}

/* The new key's slot: the home slot itself if the first look found it
 * empty, else the first free one, else one in a new level.  MS_DONE,
 * MS_RETRY, MS_RETRY_NOW or <0. */
static int choose_slot(mpistore_t *s, const ms_key_t *k, const ms_snap_t *sn, ins_t *in)
{
    in->js = 0;
    in->slot_exp = in->exph;
    if (!ms_desc_valid(sn->desc[0]))
        return MS_DONE;
    int st = claim_free_slot(s, in);
    if (st == MS_NO_ROOM && in->sn2->nlev < MS_MAX_LEVELS)
        st = grow_index(s, in);
    return st == MS_NO_ROOM ? index_full(s, k, in) : st;
}

/* The hints of the new slot (fingerprint, length, kind; a counter's value in
 * its word), then the key reservation, before the descriptor can be seen:
 * one round trip.  MS_DONE (in->count) or <0. */
static int reserve_slot(mpistore_t *s, const ms_key_t *k, int64_t counter_value, ins_t *in)
{
    const int64_t plus1 = 1;
    const ms_snap_t *sn2 = in->sn2;
    uint32_t fp = k->fp, nb = in->total;
    int t = ms_snap_target(sn2, in->js);
    int rc = ms_put_u32(s, t, ms_snap_ctl_off(sn2, in->js, MS_CTL_FP), &fp);
    if (rc == 0)
        rc = ms_put_u32(s, t, ms_snap_ctl_off(sn2, in->js, MS_CTL_BLEN), &nb);
    if (rc == 0)
        rc = set_kind(s, t, ms_snap_ctl_off(sn2, in->js, MS_CTL_KIND), in->kind);
    if (rc == 0 && in->kind == MS_KIND_CNT) /* no adder can reach the word before the publication */
        rc = ms_put_i64(s, t, ms_snap_cnt_off(sn2, in->js), &counter_value);
    if (rc == 0)
        rc = ms_fao_i64(s, in->home, MS_OFF_COUNT, &plus1, &in->count);
    if (rc == 0 && k->internal)
        rc = ms_add_i64(s, in->home, MS_OFF_QCOUNT, &plus1);
    if (rc == 0)
        rc = ms_flush2(s, in->home, t);
    in->reserved = rc == 0;
    in->rma_failed = rc != 0;
    return rc;
}

/* Did the reservation take the home rank beyond max_keys_per_rank? */
static int check_max_keys(mpistore_t *s, const ms_key_t *k, const ins_t *in)
{
    ms_core_t *c = s->core;
    if (!c->max_keys || in->count < (int64_t)c->max_keys)
        return MS_DONE;
    ms_err(s, MPISTORE_ENOSPC,
           "key slots of rank %d are full: %" PRId64 " keys, max_keys_per_rank=%zu "
           "(key '%.64s'); %s",
           in->home, in->count, c->max_keys, k->full, ms_fail_advice(MS_FAIL_KEYS));
    return ms_fail_publish(s, -MPISTORE_ENOSPC, MS_FAIL_KEYS);
}

/* An insert that will not publish (outcome: a status to retry, or an error)
 * gives back the block, the key reservation, the claimed slot and the home
 * lock; after a failed RMA call of its own, only the block. */
static int rollback_insert(mpistore_t *s, const ms_key_t *k, ins_t *in, int outcome)
{
    const int64_t minus1 = -1;
    int rc = 0;
    ms_free_block(s->core, in->uoff);
    if (!in->rma_failed) {
        if (in->reserved)
            rc = ms_add_i64(s, in->home, MS_OFF_COUNT, &minus1);
        if (rc == 0 && in->reserved && k->internal)
            rc = ms_add_i64(s, in->home, MS_OFF_QCOUNT, &minus1);
        if (rc == 0 && in->js != 0)
            rc = ms_put_u32(s, ms_snap_target(in->sn2, in->js),
                            ms_snap_ctl_off(in->sn2, in->js, MS_CTL_LOCK), &in->slot_exp);
        if (rc == 0)
            rc = unlock_unchanged(s, in->home, in->hlock, &in->exph);
    }
    free(in->sn2);
    return rc ? rc : outcome;
}

/* Publish the new slot; then release the home lock, only now that the new
 * slot is visible (design.md), and with a new version: a later inserter's
 * CAS from the version it saw before this insert must fail.  After a failed
 * publication nothing is given back: the block may be visible. */
static int publish_insert(mpistore_t *s, const ms_key_t *k, wreq_t *w, ins_t *in)
{
    ms_core_t *c = s->core;
    int rc = publish(s, in->sn2, in->js, in->slot_exp, 1, in->uoff, in->total, 0, 0, in->kind);
    if (rc == 0 && in->kind == MS_KIND_CNT) /* the descriptor publish() wrote */
        ms_watch_make(k, in->sn2, in->js,
                      ms_desc_make(ms_lock_ver(in->slot_exp) + 1u, 1, (uint32_t)c->rank, in->uoff),
                      &w->watch);
    if (rc == 0 && in->js != 0)
        rc = release_home(s, in->home, in->h, in->exph, in->sn2->desc[0]);
    free(in->sn2);
    return rc;
}

/* The key is absent in sn: insert it.  MS_DONE, MS_RETRY, MS_RETRY_NOW
 * (this rank just grew the index) or <0. */
static int insert(mpistore_t *s, const ms_key_t *k, wreq_t *w, const ms_snap_t *sn)
{
    wplan_t p;
    int rc = plan(s, k, w, 0, NULL, 0, &p);
    if (rc == 0)
        rc = finish(s, w, &p); /* results do not depend on the slot */
    if (rc || p.action == ACT_NONE)
        return rc;
    if (!ms_snap_stable(sn, 0))
        return MS_RETRY;

    ins_t in = {.home = sn->rank, .h = sn->first, .exph = ms_snap_lock(sn, 0)};
    in.hlock = ms_ctl_off(s->core, in.h, MS_CTL_LOCK);
    in.kind = counter_rule(s, w, NULL).counter ? MS_KIND_CNT : MS_KIND_STR;
    if (in.kind == MS_KIND_CNT)
        rc = ms_block_build_counter(s, k, &in.uoff, &in.total);
    else
        rc = ms_block_build(s, k, p.a, p.alen, p.b, p.blen, &in.uoff, &in.total);
    if (rc == 0)
        rc = lock_home(s, k, &in);
    if (rc)
        return rc;
    /* holding the home lock: every completed insert of a key with this home
     * is visible in sn2; is ours among them? */
    int st = present_under_home(s, k, in.sn2);
    if (st == MS_ABSENT)
        st = choose_slot(s, k, sn, &in);
    if (st == MS_DONE)
        st = reserve_slot(s, k, p.sum, &in);
    if (st == MS_DONE)
        st = check_max_keys(s, k, &in);
    if (st != MS_DONE)
        return rollback_insert(s, k, &in, st);
    return publish_insert(s, k, w, &in);
}

/* One pass over a snapshot: write the key in its slot.  MS_DONE, MS_RETRY,
 * MS_ABSENT (no slot holds the key) or <0.  *registered: this add announced
 * itself before the snapshot (counters.c); cleared when it takes the locked
 * path. */
static int try_slots(mpistore_t *s, const ms_key_t *k, wreq_t *w, const ms_snap_t *sn,
                     int *registered, double deadline)
{
    for (size_t i = 0; i < sn->n; i++) {
        if (!ms_snap_candidate(sn, i, k->fp))
            continue;
        if (!ms_snap_stable(sn, i))
            return MS_RETRY;
        int rc = MS_LOCKED_PATH;
        if (*registered && ms_snap_kind(sn, i) == MS_KIND_CNT)
            rc = ms_counter_add(s, k, sn, i, w->delta, &w->sum, &w->watch);
        if (rc == MS_LOCKED_PATH) {
            if (*registered) { /* the locked path would wait for ourselves */
                *registered = 0;
                int urc = ms_reg_clear(s);
                if (urc)
                    return urc;
            }
            rc = update_slot(s, k, w, sn, i, deadline);
        }
        if (rc != MS_OTHER_KEY)
            return rc;
    }
    return MS_ABSENT;
}

/* No candidate slot of the key is locked or between versions. */
static int candidates_stable(const ms_snap_t *sn, uint32_t fp)
{
    for (size_t i = 0; i < sn->n; i++)
        if (ms_snap_candidate(sn, i, fp) && !ms_snap_stable(sn, i))
            return 0;
    return 1;
}

/* The write loop on a prepared key (user or internal). */
static int write_until(mpistore_t *s, const ms_key_t *kp, wreq_t *w, double deadline)
{
    const ms_key_t k = *kp;
    ms_snap_t sn;
    ms_backoff_t bo = {0};
    double t0 = ms_now();
    int rc;
    /* An add registers before it reads the window: it may then add to a
     * counter without its lock (counters.c).  After a try that found the
     * slot locked it watches without registering until the slot is free:
     * the lock holder may be waiting for registrations to end, and an adder
     * that registered for every look could keep it waiting for ever. */
    int reg = counter_rule(s, w, NULL).announce, watch = 0;
    for (;;) {
        int registered = 0;
        rc = reg && !watch ? ms_reg_set(s, &k) : 0;
        registered = rc == 0 && reg && !watch;
        if (rc == 0) /* nothing locked yet: a rank that does not answer costs the deadline */
            rc = ms_snapshot_until(s, &k, &sn, deadline);
        if (rc == 0 && watch) {
            watch = 0;
            if (candidates_stable(&sn, k.fp))
                continue; /* register and look again at once */
            rc = MS_RETRY;
        } else if (rc == 0) {
            rc = try_slots(s, &k, w, &sn, &registered, deadline);
        }
        if (registered) {
            int urc = ms_reg_clear(s);
            if (rc >= 0 && urc)
                rc = urc;
        }
        if (rc == MS_ABSENT)
            rc = insert(s, &k, w, &sn);
        if (rc != MS_DONE) { /* results of an attempt that did not complete */
            free(w->cur);
            w->cur = NULL;
        }
        if (rc == MS_DONE && w->deleted) /* room again: waits need not fail fast */
            rc = ms_fail_clear(s);
        if (rc < 0 || rc == MS_DONE)
            break;
        if (rc == MS_RETRY_NOW)
            continue; /* grown: the next look finds room (at most once per level) */
        watch = reg;
        if (ms_expired(deadline)) {
            rc = ms_err(s, MPISTORE_ETIMEDOUT,
                        "timeout after %.3f s waiting for the lock of key '%.64s' (home rank %d)",
                        ms_now() - t0, k.full, k.rank);
            break;
        }
        ms_backoff(s, &bo);
    }
    return rc;
}

static int write_prepared(mpistore_t *s, const ms_key_t *k, wreq_t *w)
{
    return write_until(s, k, w, ms_deadline(s->timeout));
}

static int write_key(mpistore_t *s, const char *key, wreq_t *w)
{
    ms_key_t k;
    int rc = ms_key_prepare(s, key, &k);
    if (rc == 0)
        rc = write_prepared(s, &k, w);
    ms_key_release(&k);
    return rc;
}

static int check_value(mpistore_t *s, const void *v, size_t len, const char *what)
{
    if (!v && len > 0)
        return ms_err(s, MPISTORE_EINVAL, "%s is NULL with length %zu", what, len);
    if (len > s->core->max_value_len)
        return ms_err(s, MPISTORE_ETOOBIG, "%s is %zu bytes, max_value_len is %zu", what, len,
                      s->core->max_value_len);
    return 0;
}

static int set_locked(mpistore_t *s, const char *key, const void *value, size_t len)
{
    int rc = check_value(s, value, len, "value");
    if (rc)
        return rc;
    wreq_t w = {.kind = W_SET, .val = value, .vlen = len};
    return write_key(s, key, &w);
}

int mpistore_set(mpistore_t *s, const char *key, const void *value, size_t len)
{
    MS_ENTER(s);
    int rc = set_locked(s, key, value, len);
    ms_leave(s->core);
    return rc;
}

/* multi_set: every key and value is checked before the first set. */
int mpistore_multi_set(mpistore_t *s, const char *const *keys, const void *const *values,
                       const size_t *lens, size_t nkeys)
{
    MS_ENTER(s);
    int rc = ms_keys_check(s, keys, nkeys, "multi_set");
    if (rc == 0 && nkeys > 0 && (!values || !lens))
        rc = ms_err(s, MPISTORE_EINVAL, "multi_set: values or lens is NULL");
    for (size_t i = 0; rc == 0 && i < nkeys; i++) {
        char what[48];
        snprintf(what, sizeof what, "multi_set: value %zu", i);
        rc = check_value(s, values[i], lens[i], what);
    }
    for (size_t i = 0; rc == 0 && i < nkeys; i++)
        rc = set_locked(s, keys[i], values[i], lens[i]);
    ms_leave(s->core);
    return rc;
}

int ms_add_locked(mpistore_t *s, const char *key, int64_t delta, int64_t *result, ms_watch_t *watch)
{
    wreq_t w = {.kind = W_ADD, .delta = delta};
    int rc = write_key(s, key, &w);
    if (rc == 0 && result)
        *result = w.sum;
    if (rc == 0 && watch)
        *watch = w.watch;
    return rc;
}

int mpistore_add(mpistore_t *s, const char *key, int64_t delta, int64_t *result)
{
    MS_ENTER(s);
    int rc = ms_add_locked(s, key, delta, result, NULL);
    ms_leave(s->core);
    return rc;
}

int mpistore_compare_set(mpistore_t *s, const char *key, const void *expected, size_t expected_len,
                         const void *desired, size_t desired_len, void **current,
                         size_t *current_len)
{
    MS_ENTER(s);
    int rc = 0;
    if (!current || !current_len)
        rc = ms_err(s, MPISTORE_EINVAL, "compare_set: current or current_len is NULL");
    if (rc == 0 && !expected && expected_len > 0)
        rc = ms_err(s, MPISTORE_EINVAL, "compare_set: expected is NULL with length %zu",
                    expected_len);
    if (rc == 0)
        rc = check_value(s, desired, desired_len, "desired value");
    if (rc == 0) {
        wreq_t w = {.kind = W_CAS,
                    .val = desired,
                    .vlen = desired_len,
                    .exp = expected,
                    .explen = expected_len};
        rc = write_key(s, key, &w);
        if (rc == 0) {
            *current = w.cur;
            *current_len = w.curlen;
        }
    }
    ms_leave(s->core);
    return rc;
}

int mpistore_append(mpistore_t *s, const char *key, const void *value, size_t len)
{
    MS_ENTER(s);
    int rc = check_value(s, value, len, "value");
    if (rc == 0) {
        wreq_t w = {.kind = W_APPEND, .val = value, .vlen = len};
        rc = write_key(s, key, &w);
    }
    ms_leave(s->core);
    return rc;
}

int mpistore_delete_key(mpistore_t *s, const char *key, bool *deleted)
{
    MS_ENTER(s);
    wreq_t w = {.kind = W_DELETE};
    int rc = write_key(s, key, &w);
    if (rc == 0 && deleted)
        *deleted = w.deleted;
    ms_leave(s->core);
    return rc;
}

/* ---- on prepared keys, for the queues (called with the core entered) ---- */

int ms_kqpush(mpistore_t *s, const ms_key_t *k, const void *record, size_t len)
{
    wreq_t w = {.kind = W_QPUSH, .val = record, .vlen = len};
    return write_prepared(s, k, &w);
}

int ms_kqpop(mpistore_t *s, const ms_key_t *k, double deadline, int *popped, void **value,
             size_t *len)
{
    wreq_t w = {.kind = W_QPOP};
    int rc = write_until(s, k, &w, deadline);
    if (rc == 0) {
        *popped = w.popped;
        if (w.popped) {
            *value = w.cur;
            *len = w.curlen;
        }
    }
    return rc;
}
