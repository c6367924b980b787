/* Counters: keys created by `add` keep their value in the slot's int64
 * counter word, and an `add` on them is one MPI_Fetch_and_op, without the
 * slot lock (docs/design.md, "Counters").
 *
 * The hazard is reuse: an adder that has checked "slot i holds counter K" can
 * be delayed, and its Fetch_and_op must not land after K was overwritten,
 * deleted or its slot reused.  Adders therefore announce themselves first: a
 * rank writes "home rank + home bucket + fingerprint of the key I am adding
 * to" into its own registration word (MS_OFF_REG), flushes it, and only then
 * reads the probe window.  A writer that wants to change a counter slot
 * locks it first and then reads every rank's registration word, waiting
 * until none names the key's bucket.  This is Dekker's pattern, each side
 * completing its write (flush) before it reads the other's word, so one of
 * the two always sees the other:
 *   - the adder sees the lock (the slot is unstable): it withdraws and
 *     retries, or takes the locked path;
 *   - or the writer sees the registration: it waits until the adder's
 *     Fetch_and_op has completed and the registration is withdrawn.
 * While an adder is registered and saw the slot stable at version v holding
 * K as a counter, no publication can happen on the slot, so its
 * Fetch_and_op lands on K's counter. */
#include "errors.h"
#include "wait.h"
#include "ops.h"

#include <stdlib.h>

/* |value| and |delta| bounds of the lock-free path.  At most 2^17 ranks can
 * have an add in flight, so a counter read within +-2^62 stays within int64
 * whatever lands after the read (2^62 + 2^17 * 2^40 < 2^63).  Outside these
 * bounds the locked path computes the sum exactly and reports an overflow. */
#define CNT_MAX_ABS (INT64_C(1) << 62)
#define DELTA_MAX_ABS (INT64_C(1) << 40)

static int reg_put(mpistore__core_t *c, uint64_t w)
{
    int rc = mpistore__replace_u64(&c->rma, c->rma.w.rank, MS_OFF_REG, &w);
    return rc ? rc : mpistore__flush_self(&c->rma);
}

int mpistore__reg_set(mpistore__core_t *c, const mpistore__key_t *k)
{
    return reg_put(c, mpistore__reg_word(k));
}

int mpistore__reg_clear(mpistore__core_t *c)
{
    return reg_put(c, 0);
}

static int64_t abs64(int64_t v)
{
    return v < 0 ? (v == INT64_MIN ? INT64_MAX : -v) : v;
}

static int counter_add(mpistore__core_t *c, const mpistore__key_t *k, const mpistore__snap_t *sn,
                       size_t i, int64_t delta, int64_t *sum)
{
    uint64_t d = sn->desc[i];
    int t = mpistore__snap_target(sn, i);
    size_t cnt = mpistore__snap_cnt_off(sn, i);
    int64_t cur = 0, old = 0;
    int torn = 0;
    mpistore__block_t blk = {0};
    if (abs64(delta) > DELTA_MAX_ABS)
        return MS_LOCKED_PATH;
    /* the key (is it ours, is it a counter?) and a sample of the value */
    int rc = mpistore__block_issue(c, d, MS_BLK_HDR + k->len, &blk);
    if (rc == 0)
        rc = mpistore__read_i64(&c->rma, t, cnt, &cur);
    if (rc == 0)
        rc = mpistore__flush2(&c->rma, mpistore__desc_rank(d), t);
    if (rc == 0)
        rc = mpistore__block_complete(c, d, &blk, 0, &torn);
    if (rc == 0 && torn)
        rc = MS_LOCKED_PATH; /* impossible for a published block: the locked path reports it */
    if (rc == 0 && !mpistore__block_is_key(&blk, k))
        rc = MS_OTHER_KEY;
    if (rc == 0 && (!blk.counter || abs64(cur) > CNT_MAX_ABS))
        rc = MS_LOCKED_PATH;
    mpistore__block_release(&blk);
    if (rc)
        return rc;
    rc = mpistore__fao_i64(&c->rma, t, cnt, &delta, &old);
    if (rc == 0)
        rc = mpistore__flush(&c->rma, t);
    if (rc == 0)
        *sum = old + delta; /* in range: see CNT_MAX_ABS */
    return rc;
}

int mpistore__counter_meet(mpistore__core_t *c, const mpistore__key_t *k,
                           const mpistore__snap_t *sn, size_t i, int64_t delta, int64_t *sum)
{
    int rc = MS_LOCKED_PATH;
    if (mpistore__snap_kind(sn, i) == MS_KIND_CNT)
        rc = counter_add(c, k, sn, i, delta, sum);
    if (rc == MS_LOCKED_PATH) {
        int urc = mpistore__reg_clear(c);
        if (urc)
            return urc;
    }
    return rc;
}

/* An unregistered glance (ops.h): a hint, confirmed by the watch below. */
int mpistore__counter_glance(mpistore__core_t *c, const mpistore__watch_t *w, int64_t *value)
{
    uint64_t desc = 0;
    int64_t v = 0;
    int rc = mpistore__read_u64s(&c->rma, w->rank, w->dsc, &desc, 1);
    if (rc == 0)
        rc = mpistore__read_i64(&c->rma, w->rank, w->cnt, &v);
    if (rc == 0)
        rc = mpistore__flush(&c->rma, w->rank);
    if (rc)
        return rc;
    if (desc != w->desc)
        return MS_GONE;
    *value = v;
    return MS_DONE;
}

/* Registered, the slot's lock, descriptor and counter are read in one flush.
 * If lock and descriptor show the watched publication, stable, the counter
 * read is that key's: a writer that locked before the registration shows in
 * the lock word (or a new version), one that locks after it waits for the
 * registration to end before it changes anything (the Dekker argument above).
 * A peek reads lock and descriptor only, unregistered: after a look that
 * found the slot locked, so that a writer draining registrations is not kept
 * waiting by the watcher (as adders do, write.c). */
int mpistore__counter_watch(mpistore__core_t *c, const mpistore__watch_t *w, int peek,
                            int64_t *value)
{
    uint32_t lock = 0;
    uint64_t desc = 0;
    int64_t v = 0;
    int rc = peek ? 0 : reg_put(c, w->reg);
    if (rc)
        return rc;
    rc = mpistore__read_u32s(&c->rma, w->rank, w->lock, &lock, 1);
    if (rc == 0)
        rc = mpistore__read_u64s(&c->rma, w->rank, w->dsc, &desc, 1);
    if (rc == 0 && !peek)
        rc = mpistore__read_i64(&c->rma, w->rank, w->cnt, &v);
    if (rc == 0)
        rc = mpistore__flush(&c->rma, w->rank);
    int urc = peek ? 0 : mpistore__reg_clear(c);
    if (rc || urc)
        return rc ? rc : urc;
    if (desc != w->desc)
        return MS_GONE; /* another publication (or the home slot's version moved) */
    if (mpistore__lock_held(lock) ||
        (mpistore__lock_ver(lock) & MS_DESC_VER_MASK) != mpistore__desc_ver(desc))
        return MS_BUSY; /* a writer holds it, or a publication is landing */
    if (peek)
        return MS_STABLE;
    *value = v;
    return MS_DONE;
}

int mpistore__counter_drain(mpistore__core_t *c, const mpistore__key_t *k,
                            const mpistore__snap_t *sn, size_t i, double deadline,
                            mpistore__block_t *b)
{
    uint64_t want = mpistore__reg_word(k);
    uint64_t *regs = malloc((size_t)c->rma.w.nranks * sizeof *regs);
    mpistore__backoff_t bo = {0};
    double t0 = mpistore__now();
    int rc = regs ? 0
                  : mpistore__err(&c->err, MPISTORE_ENOMEM, "out of memory for %d registrations",
                                  c->rma.w.nranks);
    int64_t v = 0;
    for (;;) {
        for (int r = 0; rc == 0 && r < c->rma.w.nranks; r++)
            rc = mpistore__read_u64s(&c->rma, r, MS_OFF_REG, &regs[r], 1);
        if (rc == 0)
            rc = mpistore__flush_all(&c->rma);
        if (rc)
            break;
        int busy = -1;
        for (int r = 0; r < c->rma.w.nranks && busy < 0; r++)
            if (regs[r] == want && !mpistore__ft_dead(&c->ft, r))
                busy = r; /* a dead adder's add landed or never will: not waited for */
        if (busy < 0)
            break;
        if ((rc = mpistore__ft_check(&c->ft, c->rma.w.comm, &c->err, k->rank, "counter", k->full,
                                     mpistore__now() - t0)))
            break; /* the counter's home died (and who died is known: looked again) */
        if (mpistore__expired(deadline)) {
            rc = mpistore__err(&c->err, MPISTORE_ETIMEDOUT,
                               "timeout after %.3f s waiting for rank %d to finish an add on the "
                               "bucket of counter '%.64s' (home rank %d)",
                               mpistore__now() - t0, busy, k->full, k->rank);
            break;
        }
        mpistore__backoff(c->rma.w.comm, &c->lock, &bo);
    }
    /* every add that could land has landed: read the value (after the scan) */
    if (rc == 0)
        rc = mpistore__read_i64(&c->rma, mpistore__snap_target(sn, i),
                                mpistore__snap_cnt_off(sn, i), &v);
    if (rc == 0)
        rc = mpistore__flush(&c->rma, mpistore__snap_target(sn, i));
    if (rc == 0)
        mpistore__block_set_counter(b, v);
    free(regs);
    return rc;
}
