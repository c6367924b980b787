/* Making a write's new state visible (docs/design.md, "Writer locking",
 * "Inserts"): the publication of a slot (descriptor, hints, key count, the
 * unlock with the next version, one flush), a counter's new value, giving a
 * lock back, and the release of the block a publication replaced. */
#include "errors.h"
#include "alloc.h"
#include "write_publish.h"

int mpistore__unlock_unchanged(mpistore__core_t *c, int target, size_t lockoff,
                               const uint32_t *lockword)
{
    int rc = mpistore__replace_u32(&c->rma, target, lockoff, lockword);
    return rc ? rc : mpistore__flush(&c->rma, target);
}

int mpistore__release_home(mpistore__core_t *c, int home, size_t h, uint32_t lockword,
                           uint64_t desc)
{
    uint32_t ver = mpistore__lock_next_ver(lockword), nl = ver << 1;
    uint64_t nd =
        mpistore__desc_make(ver, mpistore__desc_valid(desc), (uint32_t)mpistore__desc_rank(desc),
                            mpistore__desc_uoff(desc));
    int rc = mpistore__replace_u64(&c->rma, home, mpistore__desc_off(&c->lay, h), &nd);
    if (rc == 0) /* replicas: the mirror's words land before the unlock */
        rc = mpistore__mirror_flush(&c->rma);
    if (rc == 0)
        rc = mpistore__replace_u32(&c->rma, home, mpistore__ctl_off(&c->lay, h, MS_CTL_LOCK), &nl);
    int frc = mpistore__flush(&c->rma, home); /* even after a failure: nd, nl are ours */
    return rc ? rc : frc;
}

int mpistore__retire(mpistore__core_t *c, uint64_t old)
{
    static const uint64_t one = 1;
    int owner = mpistore__desc_rank(old);
    size_t off = 0, room = 0;
    if (owner == c->rma.w.rank) {
        mpistore__free_block(&c->mem, mpistore__desc_uoff(old));
        return 0;
    }
    int rc = mpistore__unit_addr(&c->mem, &c->rma, owner, mpistore__desc_uoff(old), &off, &room);
    if (rc == 0 && room == 0)
        return 0; /* cannot happen for a published block: leak it */
    if (rc == 0)
        rc = mpistore__replace_u64(&c->rma, owner, off, &one);
    return rc ? rc : mpistore__flush(&c->rma, owner);
}

int mpistore__set_kind(mpistore__core_t *c, int target, size_t off, uint32_t kind)
{
    static const uint32_t cnt_bit = MS_KIND_CNT, str_mask = ~(uint32_t)MS_KIND_CNT;
    return kind == MS_KIND_CNT ? mpistore__or_u32(&c->rma, target, off, &cnt_bit)
                               : mpistore__and_u32(&c->rma, target, off, &str_mask);
}

int mpistore__publish(mpistore__core_t *c, const mpistore__pub_t *p)
{
    const mpistore__snap_t *sn = p->sn;
    mpistore__rma_t *r = &c->rma;
    int t = mpistore__snap_target(sn, p->i), home = sn->rank;
    uint32_t ver = mpistore__lock_next_ver(p->lockword), nl = ver << 1, nb = p->total;
    uint64_t nd = mpistore__desc_make(ver, p->valid, (uint32_t)r->w.rank, p->uoff);
    int64_t delta = p->count_delta;
    /* replicas: the new block's copy is complete before any descriptor
     * names it (an insert, hinted, completed it before its reservation) */
    int rc = p->valid && !p->hinted ? mpistore__mirror_flush(r) : 0;
    if (rc)
        return rc; /* nothing issued here yet */
    rc = mpistore__replace_u64(r, t, mpistore__snap_desc_off(sn, p->i), &nd);
    if (rc == 0 && p->valid && !p->hinted)
        rc = mpistore__replace_u32(r, t, mpistore__snap_ctl_off(sn, p->i, MS_CTL_BLEN), &nb);
    if (rc == 0 && p->valid && !p->hinted)
        rc = mpistore__set_kind(c, t, mpistore__snap_ctl_off(sn, p->i, MS_CTL_KIND), p->kind);
    if (rc == 0 && delta)
        rc = mpistore__add_i64(r, home, MS_OFF_COUNT, &delta);
    if (rc == 0 && delta && p->internal) /* queue entries: kept out of num_keys */
        rc = mpistore__add_i64(r, home, MS_OFF_QCOUNT, &delta);
    if (rc == 0) /* replicas: the mirror's words land before the unlock (design.md) */
        rc = mpistore__mirror_flush(r);
    if (rc == 0)
        rc = mpistore__replace_u32(r, t, mpistore__snap_ctl_off(sn, p->i, MS_CTL_LOCK), &nl);
    /* even after a failure: what was issued reads nd, nb, delta, nl from here */
    int frc = mpistore__flush2(r, t, home);
    return rc ? rc : frc;
}

int mpistore__publish_counter(const mpistore__write_t *x, const mpistore__snap_t *sn, size_t i,
                              int64_t value)
{
    mpistore__core_t *c = x->c;
    int t = mpistore__snap_target(sn, i);
    uint32_t exp = mpistore__snap_lock(sn, i);
    int rc = mpistore__replace_i64(&c->rma, t, mpistore__snap_cnt_off(sn, i), &value);
    if (rc == 0)
        rc = mpistore__flush(&c->rma, t);
    if (rc == 0)
        mpistore__watch_make(x->k, sn, i, sn->desc[i], &x->w->watch);
    int urc = mpistore__unlock_unchanged(c, t, mpistore__snap_ctl_off(sn, i, MS_CTL_LOCK), &exp);
    return rc ? rc : urc;
}
