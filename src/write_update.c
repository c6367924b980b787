/* Updating a key in its slot (docs/design.md, "Writer locking"), top down:
 *
 *   mpistore__update_slot     lock, decide, publish
 *     lock_slot          lock the slot, fetch its block (one round trip)
 *     decide             our key?  the counter decision; the plan
 *     publish            a counter's word (mpistore__publish_counter), a new block
 *                        then the old one retired (mpistore__publish, mpistore__retire),
 *                        or the lock given back unchanged */
#include "errors.h"
#include "write_publish.h"
#include "write_update.h"

/* Lock slot i of sn and fetch its block, in one round trip.  MS_DONE (the
 * lock is ours, *blk is current and stays so), MS_RETRY (the slot changed
 * since the snapshot) or <0. */
static int lock_slot(const mpistore__write_t *x, const mpistore__snap_t *sn, size_t i,
                     mpistore__block_t *blk)
{
    mpistore__core_t *c = x->c;
    int t = mpistore__snap_target(sn, i);
    size_t lockoff = mpistore__snap_ctl_off(sn, i, MS_CTL_LOCK);
    uint64_t d = sn->desc[i];
    uint32_t exp = mpistore__snap_lock(sn, i), want = exp | 1u, got = ~exp;
    /* the buffer first: nothing may fail between the CAS and its flush */
    size_t hint = mpistore__needs_value(x->w) ? mpistore__snap_blen(sn, i) : MS_BLK_HDR + x->k->len;
    int rc = mpistore__block_alloc(c, d, hint, blk);
    if (rc)
        return rc;
    rc = mpistore__cas_u32(&c->rma, t, lockoff, &want, &exp, &got);
    if (rc == 0)
        rc = mpistore__block_fetch(c, d, blk);
    if (rc == 0)
        rc = mpistore__flush2(&c->rma, t, mpistore__desc_rank(d));
    if (rc || got != exp) {
        if (rc && got == exp) /* locked, then failed: give the lock back */
            mpistore__unlock_unchanged(c, t, lockoff, &exp);
        mpistore__block_release(blk);
        return rc ? rc : MS_RETRY;
    }
    return MS_DONE;
}

/* Holding slot i locked with its block fetched: is it our key; the counter
 * decision (and the wait for adders it may ask for); what the request makes
 * of the value (the plan, results recorded).  MS_DONE (*cr, *p),
 * MS_OTHER_KEY or <0; the caller unlocks but for MS_DONE. */
static int decide(const mpistore__write_t *x, const mpistore__snap_t *sn, size_t i,
                  mpistore__block_t *blk, mpistore__crule_t *cr, mpistore__wplan_t *p)
{
    mpistore__core_t *c = x->c;
    uint64_t d = sn->desc[i];
    int torn = 0, need_value = mpistore__needs_value(x->w);
    int rc = mpistore__block_complete(c, d, blk, need_value, &torn);
    if (rc == 0 && torn)
        rc = mpistore__err_corrupt(c, d, x->k);
    if (rc == 0 && !mpistore__block_is_key(blk, x->k))
        rc = MS_OTHER_KEY;
    if (rc)
        return rc;
    *cr = mpistore__counter_rule(c, x->w, blk);
    if (cr->drain) /* adders may be in flight: let them land */
        rc = mpistore__counter_drain(c, x->k, sn, i, x->deadline, blk);
    mpistore__wstate_t st = {.present = 1};
    if (rc == 0 && need_value)
        st.old = mpistore__block_value(blk, &st.oldlen);
    return rc ? rc : mpistore__plan(c, x->k, x->w, st, p);
}

int mpistore__update_slot(const mpistore__write_t *x, const mpistore__snap_t *sn, size_t i)
{
    mpistore__core_t *c = x->c;
    mpistore__block_t blk = {0};
    mpistore__crule_t cr = {0};
    mpistore__wplan_t p;
    int rc = lock_slot(x, sn, i, &blk);
    if (rc != MS_DONE)
        return rc;
    rc = decide(x, sn, i, &blk, &cr, &p);
    if (rc == MS_DONE && cr.counter) {
        mpistore__block_release(&blk);
        return mpistore__publish_counter(x, sn, i, p.sum);
    }
    mpistore__pub_t pub = {
        .sn = sn, .i = i, .lockword = mpistore__snap_lock(sn, i), .kind = MS_KIND_STR};
    if (rc == MS_DONE && p.action == ACT_WRITE)
        rc = mpistore__block_build(c, x->k, p.a, p.alen, p.b, p.blen, &pub.uoff, &pub.total);
    mpistore__block_release(&blk); /* only now: p.ret and p.a may point into the old block */
    if (rc != MS_DONE || p.action == ACT_NONE) {
        int urc =
            mpistore__unlock_unchanged(c, mpistore__snap_target(sn, i),
                                       mpistore__snap_ctl_off(sn, i, MS_CTL_LOCK), &pub.lockword);
        return urc ? urc : rc;
    }
    pub.valid = p.action == ACT_WRITE;
    pub.count_delta = p.action == ACT_DELETE ? -1 : 0;
    pub.internal = x->k->internal;
    rc = mpistore__publish(c, &pub);
    if (rc == 0)
        (void)mpistore__retire(c, sn->desc[i]); /* the write is done even if the old block leaks */
    return rc;
}
