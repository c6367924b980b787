/* Inserting a key that no slot holds (docs/design.md, "Inserts",
 * "Inserts in two round trips", "Growth"), top down:
 *
 *   mpistore__insert              plan the value and the kind (the counter decision)
 *     lock_home              lock the home slot, re-read every level
 *                            (or the first look claimed it: claimed_home)
 *     present_under_home     is the key still absent?
 *     choose_slot            the home slot, a free one, or a new level
 *     reserve_slot           hints, the counter's word, the key count
 *     check_max_keys         (with max_keys_per_rank only: else the
 *                            reservation goes out with the publication)
 *     publish_insert         publish, release the home lock
 *     rollback_insert        (or give everything back) */
#include "errors.h"
#include "alloc.h"
#include "fail.h"
#include "write_publish.h"
#include "write_insert.h"

#include <inttypes.h>
#include <stdlib.h>

/* Is slot j of a snapshot taken under the home lock stable for us?  Slot 0
 * (the home slot) is locked by ourselves. */
static int stable_under_home(const mpistore__snap_t *sn, size_t j)
{
    uint32_t l = mpistore__snap_lock(sn, j);
    if (j == 0)
        return (mpistore__lock_ver(l) & MS_DESC_VER_MASK) == mpistore__desc_ver(sn->desc[j]);
    return mpistore__snap_stable(sn, j);
}

/* Under the home lock: is the key present in the re-read window?
 * MS_ABSENT, MS_RETRY (present or unsure), <0. */
static int present_under_home(mpistore__core_t *c, const mpistore__key_t *k,
                              const mpistore__snap_t *sn)
{
    for (size_t j = 0; j < sn->n; j++) {
        if (!mpistore__snap_candidate(sn, j, k->fp))
            continue;
        if (!stable_under_home(sn, j))
            return MS_RETRY;
        /* fingerprint match: check the stored key (validated read) */
        mpistore__snap_t *one = malloc(sizeof *one);
        if (!one)
            return mpistore__err(&c->err, MPISTORE_ENOMEM, "out of memory inserting key '%.64s'",
                                 k->full);
        *one = *sn;
        for (size_t x = 0; x < one->n; x++)
            if (x != j)
                one->desc[x] = 0; /* only slot j is a candidate */
        mpistore__block_t blk = {0};
        int found = 0, rc = mpistore__lookup(c, k, one, &found, &blk);
        mpistore__block_release(&blk);
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
typedef struct mpistore__ins {
    int home;                    /* the home rank */
    size_t h, hlock;             /* the home bucket, the displacement of its lock word */
    uint32_t exph;               /* the home lock word we lock from */
    const mpistore__snap_t *sn2; /* every level, re-read under the home lock ... */
    mpistore__snap_t *own;       /* ... in this memory (freed), or the claim's look (NULL) */
    size_t js;                   /* the new key's slot, as an index of sn2 (0: the home slot) */
    uint32_t slot_exp;           /* that slot's lock word before we locked it */
    uint32_t uoff, total;        /* the new block */
    uint32_t kind;               /* MS_KIND_CNT: the new key is a counter */
    int64_t count;               /* the home rank's key count before our reservation */
    uint32_t fp, nb;             /* reserve_slot's hints and ... */
    int64_t cval;                /* ... counter value: origin buffers, valid until the
                                    publication's flush completes them */
    int reserved;                /* our +1 to the key count has landed */
    int rma_failed;              /* one of our RMA calls failed: give back only the block */
} mpistore__ins_t;

/* Lock the home slot and re-read every level in one round trip: see
 * design.md "Inserts" and "Growth" for why a re-read that may run before
 * the CAS lands still sees every completed insert.  MS_DONE (in->sn2 is
 * set), else MS_RETRY or <0, the block freed. */
static int lock_home(mpistore__core_t *c, const mpistore__key_t *k, mpistore__ins_t *in)
{
    uint32_t wanth = in->exph | 1u, got = ~in->exph;
    mpistore__snap_t *sn2 = malloc(sizeof *sn2);
    if (!sn2) {
        mpistore__free_block(&c->mem, in->uoff);
        return mpistore__err(&c->err, MPISTORE_ENOMEM, "out of memory inserting key '%.64s'",
                             k->full);
    }
    int rc = mpistore__cas_u32(&c->rma, in->home, in->hlock, &wanth, &in->exph, &got);
    if (rc == 0)
        rc = mpistore__snapshot_issue(c, k, sn2);
    if (rc == 0)
        rc = mpistore__flush(&c->rma, in->home);
    if (rc == 0 && got == in->exph) /* levels published since: read them too */
        rc = mpistore__snapshot_fix(c, k, sn2);
    if (rc || got != in->exph) {
        if (rc && got == in->exph) /* locked, then failed: give the lock back */
            mpistore__unlock_unchanged(c, in->home, in->hlock, &in->exph);
        mpistore__free_block(&c->mem, in->uoff);
        free(sn2);
        return rc ? rc : MS_RETRY;
    }
    in->sn2 = in->own = sn2;
    return MS_DONE;
}

/* The first look claimed the home slot (mpistore__snapshot_claim): its lock
 * word was 0, so no key with this home was ever inserted and none is being
 * inserted; the look is the window under the home lock.  MS_DONE: in->sn2
 * is sn itself (12 KiB: not copied). */
static int claimed_home(const mpistore__snap_t *sn, mpistore__ins_t *in)
{
    in->sn2 = sn;
    in->own = NULL;
    return MS_DONE;
}

/* Claim the first free slot of the re-read window that is stable, level 0
 * first: MS_DONE (in->js, in->slot_exp), MS_RETRY (lost every race for a
 * free slot), MS_NO_ROOM (no slot is free) or <0.  Where looks stop at a
 * slot never published (one node), never past one: its claim is a try, and
 * if it is taken the insert waits for it (design.md, "A look stops at a
 * slot never published"). */
static int claim_free_slot(mpistore__core_t *c, mpistore__ins_t *in)
{
    const mpistore__snap_t *sn2 = in->sn2;
    int empties = 0;
    for (size_t j = 1; j < sn2->n; j++) {
        if (mpistore__desc_valid(sn2->desc[j]))
            continue;
        empties++;
        size_t lockoff = mpistore__snap_ctl_off(sn2, j, MS_CTL_LOCK);
        int last = sn2->desc[j] == 0 && mpistore__rma_immediate(&c->rma, lockoff);
        if (!mpistore__snap_stable(sn2, j)) {
            if (last)
                return MS_RETRY;
            continue;
        }
        uint32_t e = mpistore__snap_lock(sn2, j), wnt = e | 1u, g = 0;
        int t = mpistore__snap_target(sn2, j);
        int rc = mpistore__cas_u32(&c->rma, t, lockoff, &wnt, &e, &g);
        if (rc == 0)
            rc = mpistore__flush(&c->rma, t);
        if (rc) {
            in->rma_failed = 1;
            return rc;
        }
        if (g == e) {
            in->js = j;
            in->slot_exp = e;
            return MS_DONE;
        }
        if (last)
            return MS_RETRY;
    }
    return empties > 0 ? MS_RETRY : MS_NO_ROOM;
}

/* Every level is full around the key: host the next level (or learn that
 * another rank does).  MS_RETRY_NOW (ours, published), MS_RETRY (another
 * rank's: wait for its publication) or <0. */
static int grow_index(mpistore__core_t *c, const mpistore__ins_t *in)
{
    int rc = mpistore__level_create(&c->lev, &c->rma, &c->lay, in->home, in->sn2->nlev);
    if (rc == -MPISTORE_ENOMEM)
        return mpistore__fail_publish(&c->rma, rc, MS_FAIL_MEMORY);
    if (rc < 0)
        return rc;
    return rc == 1 ? MS_RETRY_NOW : MS_RETRY;
}

/* No free slot at any level, and no level left to add. */
static int index_full(mpistore__core_t *c, const mpistore__key_t *k, const mpistore__ins_t *in)
{
    mpistore__err(&c->err, MPISTORE_ENOSPC,
                  "index of rank %d is full: no free slot around bucket %zu in any of its %u "
                  "levels%s (key '%.64s'); %s",
                  in->home, in->h, in->sn2->nlev,
                  c->lay.mirror ? " (replicas = 1: the index does not grow)" : "", k->full,
                  mpistore__fail_advice(MS_FAIL_LEVELS));
    return mpistore__fail_publish(&c->rma, -MPISTORE_ENOSPC, MS_FAIL_LEVELS);
}

/* The new key's slot: the home slot itself if the first look found it
 * empty, else the first free one, else one in a new level.  MS_DONE,
 * MS_RETRY, MS_RETRY_NOW or <0. */
static int choose_slot(mpistore__core_t *c, const mpistore__key_t *k, const mpistore__snap_t *sn,
                       mpistore__ins_t *in)
{
    in->js = 0;
    in->slot_exp = in->exph;
    if (!mpistore__desc_valid(sn->desc[0]))
        return MS_DONE;
    int st = claim_free_slot(c, in);
    if (st == MS_NO_ROOM && in->sn2->nlev < MS_MAX_LEVELS && !c->lay.mirror)
        st = grow_index(c, in); /* with replicas the index does not grow */
    return st == MS_NO_ROOM ? index_full(c, k, in) : st;
}

/* The hints of the new slot (fingerprint, length, kind; a counter's value in
 * its word), then the key reservation, before the descriptor can be seen.
 * With max_keys_per_rank, one round trip: MS_DONE and in->count, for
 * check_max_keys.  Without, no flush: the writes go out with the
 * publication's, which lands after them (accumulate ordering waw, design.md
 * "Inserts in two round trips"); in->count is then unknown (-1). */
static int reserve_slot(mpistore__core_t *c, const mpistore__key_t *k, int64_t counter_value,
                        mpistore__ins_t *in)
{
    static const int64_t plus1 = 1;
    const mpistore__snap_t *sn2 = in->sn2;
    int t = mpistore__snap_target(sn2, in->js);
    in->fp = k->fp, in->nb = in->total, in->cval = counter_value;
    /* replicas: the new block's copy is complete before the reservation,
     * which goes out with the descriptor (mpistore__publish, hinted) */
    int rc = mpistore__mirror_flush(&c->rma);
    if (rc == 0)
        rc = mpistore__replace_u32(&c->rma, t, mpistore__snap_ctl_off(sn2, in->js, MS_CTL_FP),
                                   &in->fp);
    if (rc == 0)
        rc = mpistore__replace_u32(&c->rma, t, mpistore__snap_ctl_off(sn2, in->js, MS_CTL_BLEN),
                                   &in->nb);
    if (rc == 0)
        rc = mpistore__set_kind(c, t, mpistore__snap_ctl_off(sn2, in->js, MS_CTL_KIND), in->kind);
    if (rc == 0 && in->kind == MS_KIND_CNT) /* no adder can reach the word before the publication */
        rc = mpistore__replace_i64(&c->rma, t, mpistore__snap_cnt_off(sn2, in->js), &in->cval);
    if (rc == 0)
        rc = mpistore__fao_i64(&c->rma, in->home, MS_OFF_COUNT, &plus1, &in->count);
    if (rc == 0 && k->internal)
        rc = mpistore__add_i64(&c->rma, in->home, MS_OFF_QCOUNT, &plus1);
    if (rc == 0 && c->lay.max_keys)
        rc = mpistore__flush2(&c->rma, in->home, t);
    else
        in->count = -1; /* (the result lands with the publication's flush) */
    in->reserved = rc == 0;
    in->rma_failed = rc != 0;
    return rc;
}

/* Did the reservation take the home rank beyond max_keys_per_rank? */
static int check_max_keys(mpistore__core_t *c, const mpistore__key_t *k, const mpistore__ins_t *in)
{
    if (!c->lay.max_keys || in->count < (int64_t)c->lay.max_keys)
        return MS_DONE;
    mpistore__err(&c->err, MPISTORE_ENOSPC,
                  "key slots of rank %d are full: %" PRId64 " keys, max_keys_per_rank=%zu "
                  "(key '%.64s'); %s",
                  in->home, in->count, c->lay.max_keys, k->full,
                  mpistore__fail_advice(MS_FAIL_KEYS));
    return mpistore__fail_publish(&c->rma, -MPISTORE_ENOSPC, MS_FAIL_KEYS);
}

/* An insert that will not publish (outcome: a status to retry, or an error)
 * gives back the block, the key reservation, the claimed slot and the home
 * lock; after a failed RMA call of its own, only the block. */
static int rollback_insert(mpistore__core_t *c, const mpistore__key_t *k, mpistore__ins_t *in,
                           int outcome)
{
    const int64_t minus1 = -1;
    int rc = 0;
    mpistore__free_block(&c->mem, in->uoff);
    if (!in->rma_failed) {
        if (in->reserved)
            rc = mpistore__add_i64(&c->rma, in->home, MS_OFF_COUNT, &minus1);
        if (rc == 0 && in->reserved && k->internal)
            rc = mpistore__add_i64(&c->rma, in->home, MS_OFF_QCOUNT, &minus1);
        if (rc == 0 && in->reserved) /* replicas: the -1s (held back if ours) before the unlocks */
            rc = mpistore__mirror_flush(&c->rma);
        if (rc == 0 && in->js != 0)
            rc = mpistore__replace_u32(&c->rma, mpistore__snap_target(in->sn2, in->js),
                                       mpistore__snap_ctl_off(in->sn2, in->js, MS_CTL_LOCK),
                                       &in->slot_exp);
        if (rc == 0)
            rc = mpistore__unlock_unchanged(c, in->home, in->hlock, &in->exph);
    }
    free(in->own);
    return rc ? rc : outcome;
}

/* Publish the new slot; then release the home lock, only now that the new
 * slot is visible (design.md), and with a new version: a later inserter's
 * CAS from the version it saw before this insert must fail.  After a failed
 * publication nothing is given back: the block may be visible. */
static int publish_insert(const mpistore__write_t *x, mpistore__ins_t *in)
{
    mpistore__core_t *c = x->c;
    mpistore__pub_t pub = {.sn = in->sn2,
                           .i = in->js,
                           .lockword = in->slot_exp,
                           .valid = 1,
                           .uoff = in->uoff,
                           .total = in->total,
                           .kind = in->kind,
                           .hinted = 1}; /* reserve_slot wrote them, ahead */
    int rc = mpistore__publish(c, &pub);
    if (rc == 0 && in->kind == MS_KIND_CNT) /* the descriptor mpistore__publish wrote */
        mpistore__watch_make(x->k, in->sn2, in->js,
                             mpistore__desc_make(mpistore__lock_next_ver(in->slot_exp), 1,
                                                 (uint32_t)c->rma.w.rank, in->uoff),
                             &x->w->watch);
    if (rc == 0 && in->js != 0)
        rc = mpistore__release_home(c, in->home, in->h, in->exph, in->sn2->desc[0]);
    free(in->own);
    return rc;
}

int mpistore__insert(const mpistore__write_t *x, const mpistore__snap_t *sn, int claimed)
{
    mpistore__core_t *c = x->c;
    const mpistore__key_t *k = x->k;
    mpistore__wplan_t p;
    int rc =
        mpistore__plan(c, k, x->w, (mpistore__wstate_t){.present = 0}, &p); /* not slot-dependent */
    mpistore__ins_t in = {.home = sn->rank, .h = sn->first, .exph = mpistore__snap_lock(sn, 0)};
    in.hlock = mpistore__ctl_off(&c->lay, in.h, MS_CTL_LOCK);
    if (claimed) /* the claim swapped the home lock from 0 (the look may predate it) */
        in.exph = 0;
    else if (rc == 0 && p.action != ACT_NONE && !mpistore__snap_stable(sn, 0))
        return MS_RETRY;
    if (rc == 0 && p.action != ACT_NONE) {
        in.kind = mpistore__counter_rule(c, x->w, NULL).counter ? MS_KIND_CNT : MS_KIND_STR;
        if (in.kind == MS_KIND_CNT)
            rc = mpistore__block_build_counter(c, k, &in.uoff, &in.total);
        else
            rc = mpistore__block_build(c, k, p.a, p.alen, p.b, p.blen, &in.uoff, &in.total);
    }
    if (rc || p.action == ACT_NONE) { /* nothing to insert: a claimed home slot goes back */
        int urc = claimed ? mpistore__unlock_unchanged(c, in.home, in.hlock, &in.exph) : 0;
        return rc ? rc : urc;
    }
    rc = claimed ? claimed_home(sn, &in) : lock_home(c, k, &in);
    if (rc)
        return rc;
    /* holding the home lock: every completed insert of a key with this home
     * is visible in sn2; is ours among them?  (Claimed: none ever was.) */
    int st = claimed ? MS_ABSENT : present_under_home(c, k, in.sn2);
    if (st == MS_ABSENT)
        st = choose_slot(c, k, sn, &in);
    if (st == MS_DONE)
        st = reserve_slot(c, k, p.sum, &in);
    if (st == MS_DONE)
        st = check_max_keys(c, k, &in);
    if (st != MS_DONE)
        return rollback_insert(c, k, &in, st);
    return publish_insert(x, &in);
}
