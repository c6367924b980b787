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
#include "core.h"
#include "wait.h"
#include "rma.h"
#include "block.h"
#include "index.h"
#include "ops.h"

#include <stdlib.h>

/* |value| and |delta| bounds of the lock-free path.  At most 2^17 ranks can
 * have an add in flight, so a counter read within +-2^62 stays within int64
 * whatever lands after the read (2^62 + 2^17 * 2^40 < 2^63).  Outside these
 * bounds the locked path computes the sum exactly and reports an overflow. */
#define CNT_MAX_ABS (INT64_C(1) << 62)
#define DELTA_MAX_ABS (INT64_C(1) << 40)

int ms_counters_enabled(const ms_core_t *c)
{
    return c->max_value_len >= 20; /* "-9223372036854775808" */
}

/* The registration word naming key k's bucket: rank + 1 (18 bits, so never
 * 0 for up to 2^17 ranks) | home bucket (low 30 bits) | 16 bits of fp.
 * Buckets that agree in those bits share registrations: a writer may then
 * wait for an unrelated add, never miss one. */
static uint64_t reg_word(const ms_key_t *k)
{
    return ((uint64_t)(k->rank + 1) << 46) | ((uint64_t)(k->home & 0x3FFFFFFFu) << 16) |
           (uint64_t)(k->fp & 0xFFFFu);
}

static int reg_put(mpistore_t *s, uint64_t w)
{
    int rc = ms_put_u64(s, s->core->rank, MS_OFF_REG, &w);
    return rc ? rc : ms_flush_self(s);
}

int ms_reg_set(mpistore_t *s, const ms_key_t *k)
{
    return reg_put(s, reg_word(k));
}

int ms_reg_clear(mpistore_t *s)
{
    return reg_put(s, 0);
}

static int64_t abs64(int64_t v)
{
    return v < 0 ? (v == INT64_MIN ? INT64_MAX : -v) : v;
}

int ms_counter_add(mpistore_t *s, const ms_key_t *k, const ms_snap_t *sn, size_t i, int64_t delta,
                   int64_t *sum, ms_watch_t *watch)
{
    uint64_t d = sn->desc[i];
    int t = ms_snap_target(sn, i);
    size_t cnt = ms_snap_cnt_off(sn, i);
    int64_t cur = 0, old = 0;
    int torn = 0;
    ms_block_t blk = {0};
    if (abs64(delta) > DELTA_MAX_ABS)
        return MS_LOCKED_PATH;
    /* the key (is it ours, is it a counter?) and a sample of the value */
    int rc = ms_block_issue(s, d, MS_BLK_HDR + k->len, &blk);
    if (rc == 0)
        rc = ms_getacc_i64(s, t, cnt, &cur);
    if (rc == 0)
        rc = ms_flush2(s, ms_desc_rank(d), t);
    if (rc == 0)
        rc = ms_block_complete(s, d, &blk, 0, &torn);
    if (rc == 0 && torn)
        rc = MS_LOCKED_PATH; /* impossible for a published block: the locked path reports it */
    if (rc == 0 && !ms_block_is_key(&blk, k))
        rc = MS_OTHER_KEY;
    if (rc == 0 && (!blk.counter || abs64(cur) > CNT_MAX_ABS))
        rc = MS_LOCKED_PATH;
    ms_block_release(&blk);
    if (rc)
        return rc;
    rc = ms_fao_i64(s, t, cnt, &delta, &old);
    if (rc == 0)
        rc = ms_flush(s, t);
    if (rc == 0) {
        *sum = old + delta; /* in range: see CNT_MAX_ABS */
        ms_watch_make(k, sn, i, d, watch);
    }
    return rc;
}

void ms_watch_make(const ms_key_t *k, const ms_snap_t *sn, size_t i, uint64_t desc,
                   ms_watch_t *w)
{
    w->valid = 1;
    w->rank = ms_snap_target(sn, i);
    w->lock = ms_snap_ctl_off(sn, i, MS_CTL_LOCK);
    w->dsc = ms_snap_desc_off(sn, i);
    w->cnt = ms_snap_cnt_off(sn, i);
    w->desc = desc;
    w->reg = reg_word(k);
}

/* Registered, the slot's lock, descriptor and counter are read in one flush.
 * If lock and descriptor show the watched publication, stable, the counter
 * read is that key's: a writer that locked before the registration shows in
 * the lock word (or a new version), one that locks after it waits for the
 * registration to end before it changes anything (the Dekker argument above).
 * A peek reads lock and descriptor only, unregistered: after a look that
 * found the slot locked, so that a writer draining registrations is not kept
 * waiting by the watcher (as adders do, ops_write.c). */
int ms_counter_watch(mpistore_t *s, const ms_watch_t *w, int peek, int64_t *value)
{
    uint32_t lock = 0;
    uint64_t desc = 0;
    int64_t v = 0;
    int rc = peek ? 0 : reg_put(s, w->reg);
    if (rc)
        return rc;
    rc = ms_getacc_u32(s, w->rank, w->lock, &lock, 1);
    if (rc == 0)
        rc = ms_getacc_u64(s, w->rank, w->dsc, &desc, 1);
    if (rc == 0 && !peek)
        rc = ms_getacc_i64(s, w->rank, w->cnt, &v);
    if (rc == 0)
        rc = ms_flush(s, w->rank);
    int urc = peek ? 0 : ms_reg_clear(s);
    if (rc || urc)
        return rc ? rc : urc;
    if (desc != w->desc)
        return MS_GONE; /* another publication (or the home slot's version moved) */
    if (ms_lock_held(lock) || (ms_lock_ver(lock) & MS_DESC_VER_MASK) != ms_desc_ver(desc))
        return MS_BUSY; /* a writer holds it, or a publication is landing */
    if (peek)
        return MS_STABLE;
    *value = v;
    return MS_DONE;
}

int ms_counter_drain(mpistore_t *s, const ms_key_t *k, const ms_snap_t *sn, size_t i,
                     double deadline, ms_block_t *b)
{
    ms_core_t *c = s->core;
    uint64_t want = reg_word(k);
    uint64_t *regs = malloc((size_t)c->nranks * sizeof *regs);
    ms_backoff_t bo = {0};
    double t0 = ms_now();
    int rc = regs ? 0 : ms_err(s, MPISTORE_ENOMEM, "out of memory for %d registrations", c->nranks);
    int64_t v = 0;
    for (;;) {
        for (int r = 0; rc == 0 && r < c->nranks; r++)
            rc = ms_getacc_u64(s, r, MS_OFF_REG, &regs[r], 1);
        if (rc == 0)
            rc = ms_flush_all(s);
        if (rc)
            break;
        int busy = -1;
        for (int r = 0; r < c->nranks && busy < 0; r++)
            if (regs[r] == want)
                busy = r;
        if (busy < 0)
            break;
        if (ms_expired(deadline)) {
            rc = ms_err(s, MPISTORE_ETIMEDOUT,
                        "timeout after %.3f s waiting for rank %d to finish an add on the "
                        "bucket of counter '%.64s' (home rank %d)",
                        ms_now() - t0, busy, k->full, k->rank);
            break;
        }
        ms_backoff(s, &bo);
    }
    /* every add that could land has landed: read the value (after the scan) */
    if (rc == 0)
        rc = ms_getacc_i64(s, ms_snap_target(sn, i), ms_snap_cnt_off(sn, i), &v);
    if (rc == 0)
        rc = ms_flush(s, ms_snap_target(sn, i));
    if (rc == 0)
        ms_block_set_counter(b, v);
    free(regs);
    return rc;
}
