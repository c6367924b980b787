/* The RMA layer: counted RMA primitives on the store's windows and their
 * flushes.  Every origin buffer passed here must stay valid until the next
 * flush.  Inside a deadline scope (rq.c) the reads are request-based and a
 * flush waits for them until the scope's deadline: a rank that stopped
 * answering (unreachable host, or outside MPI with no progress) costs the
 * caller its deadline, not for ever.  design.md, "Deadlines when a rank
 * stops answering". */
#include "errors.h"
#include "rma.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call, target)                                                                        \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MPI_SUCCESS)                                                                    \
            return mpistore__mpierr(r->w.err, rc_, #call, (target));                               \
    } while (0)

/* Issue call (an RMA operation at encoded displacement off) into rc_, again
 * while it fails only because Open MPI's osc/rdma looked the target's
 * dynamic-window regions up while the target was attaching another one:
 * for a target on its node it reads the region table from shared memory
 * without the table's lock, and an attach moves the entries (seen once in
 * 15 runs of the Open MPI 5 cells: MPI_ERR_RMA_RANGE on a segment attached
 * and published long before).  Every displacement of ours in the dynamic
 * window names memory attached before its address was published, so the
 * retry (bounded: RANGE_TRIES, yielding) is sound; a real range error still
 * fails after it. */
#define RANGE_TRIES 1000u
#define ISSUE(rc_, call, off)                                                                      \
    do {                                                                                           \
        unsigned tries_ = 0;                                                                       \
        mpistore__dyn_enter(&r->w, (off));                                                         \
        while (((rc_) = (call)) != MPI_SUCCESS && range_again((rc_), (off), &tries_))              \
            ;                                                                                      \
        mpistore__dyn_leave(&r->w, (off));                                                         \
    } while (0)

static int range_again(int mpirc, size_t off, unsigned *tries)
{
    int cls = 0;
    if (!(off & MS_DYN) || ++*tries > RANGE_TRIES || MPI_Error_class(mpirc, &cls) != MPI_SUCCESS ||
        cls != MPI_ERR_RMA_RANGE)
        return 0;
    sched_yield();
    return 1;
}

/* A dynamic-window operation aimed at a rank that MPI reports dead would
 * wait inside Open MPI for ever: refused (EPROCFAILED), under ULFM only. */
static int dyn_dead(mpistore__rma_t *r, size_t off, int target)
{
    if (!(off & MS_DYN) || !r->w.ft || !mpistore__wins_dead(&r->w, target))
        return 0;
    return mpistore__err(r->w.err, MPISTORE_EPROCFAILED,
                         "rank %d died (MPI reports it failed): the grown memory it hosted (an "
                         "index level or value memory) is gone",
                         target);
}

static int mirror_complete(mpistore__rma_t *r);

/* ---- one node: the allocated window in shared memory (docs/design.md,
 * "One node: the window in shared memory") ---- */

/* Atomics between processes must be lock-free: a C library's fallback lock
 * for wider or odd types lives in one process only. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_LONG_LOCK_FREE == 2 &&
                   ATOMIC_LLONG_LOCK_FREE == 2,
               "the one-node path needs lock-free 32- and 64-bit atomics");

void (*mpistore__flush_hook)(void) = NULL;

/* Rank t's byte at encoded displacement off, mapped in this process; NULL
 * when the operation goes through MPI (no shared window, or grown memory,
 * which lives in the dynamic window). */
static inline unsigned char *direct(const mpistore__rma_t *r, int t, size_t off)
{
    return mpistore__rma_immediate(r, off) ? r->w.peer[t] + off : NULL;
}

/* MPI_Get_accumulate(MPI_NO_OP) of n elements of 4 or 8 bytes: each element
 * read atomically, in no particular order, complete at the next flush's
 * fence, which is what MPI promises for it (relaxed loads: a snapshot reads
 * hundreds of words). */
static void direct_loads(const unsigned char *p, void *buf, size_t n, size_t size)
{
    if (size == 4) {
        const _Atomic uint32_t *a = (const _Atomic uint32_t *)(const void *)p;
        uint32_t *out = buf;
        for (size_t i = 0; i < n; i++)
            out[i] = atomic_load_explicit(&a[i], memory_order_relaxed);
    } else {
        const _Atomic uint64_t *a = (const _Atomic uint64_t *)(const void *)p;
        uint64_t *out = buf;
        for (size_t i = 0; i < n; i++)
            out[i] = atomic_load_explicit(&a[i], memory_order_relaxed);
    }
}

/* One accumulate-family operation on a word of type T, as a C11 atomic: its
 * old value.  One function per width (a 32-bit word is never touched as
 * part of a 64-bit one). */
#define DIRECT_RMW(name, T)                                                                        \
    static T name(_Atomic T *a, T v, MPI_Op op)                                                    \
    {                                                                                              \
        if (op == MPI_NO_OP)                                                                       \
            return atomic_load(a);                                                                 \
        if (op == MPI_REPLACE)                                                                     \
            return atomic_exchange(a, v);                                                          \
        if (op == MPI_BOR)                                                                         \
            return atomic_fetch_or(a, v);                                                          \
        if (op == MPI_BAND)                                                                        \
            return atomic_fetch_and(a, v);                                                         \
        return atomic_fetch_add(a, v); /* MPI_SUM */                                               \
    }
DIRECT_RMW(rmw32, uint32_t)
DIRECT_RMW(rmw64, uint64_t)

/* What MPI_Fetch_and_op or MPI_Accumulate does to one word of 4 or 8 bytes
 * (MPI_NO_OP, MPI_REPLACE, MPI_BOR, MPI_BAND, MPI_SUM: the ones the store
 * uses), as one sequentially consistent C11 atomic; the old value to
 * result unless NULL.  A signed sum is the same bits as an unsigned one. */
static void direct_op(unsigned char *p, const void *val, void *result, int bytes, MPI_Op op)
{
    uint32_t v32 = 0, o32 = 0;
    uint64_t v64 = 0, o64 = 0;
    void *old = bytes == 4 ? (void *)&o32 : (void *)&o64;
    if (val)
        memcpy(bytes == 4 ? (void *)&v32 : (void *)&v64, val, (size_t)bytes);
    if (bytes == 4)
        o32 = rmw32((_Atomic uint32_t *)(void *)p, v32, op);
    else
        o64 = rmw64((_Atomic uint64_t *)(void *)p, v64, op);
    if (result)
        memcpy(result, old, (size_t)bytes);
}

/* A flush on the one-node path: every operation completed at its call; the
 * fence orders them (and a block's plain loads) before what follows. */
static void direct_fence(mpistore__rma_t *r)
{
    (void)r;
    atomic_thread_fence(memory_order_seq_cst);
    if (mpistore__flush_hook)
        mpistore__flush_hook();
}

/* A call that failed: complete whatever this rank issued before it, the
 * requests and the own-word writes held back for their copies (after the
 * copies' flush, whatever it returns), so that no operation outlives the
 * caller's buffers (a held-back fetch-and-op writes its result there) and
 * none is left for an unrelated later flush. */
static void abandon(mpistore__rma_t *r)
{
    mpistore__complete_all(&r->rq, &r->w);
    (void)mirror_complete(r);
}

/* An RMA call that fails to start: first complete whatever this rank issued
 * before it (abandon). */
#define CHECK_ISSUE(call, off, target)                                                             \
    do {                                                                                           \
        int rc_ = dyn_dead(r, (off), (target));                                                    \
        if (rc_) {                                                                                 \
            abandon(r);                                                                            \
            return rc_;                                                                            \
        }                                                                                          \
        ISSUE(rc_, call, off);                                                                     \
        if (rc_ != MPI_SUCCESS) {                                                                  \
            abandon(r);                                                                            \
            return mpistore__mpierr(r->w.err, rc_, #call, (target));                               \
        }                                                                                          \
    } while (0)

static void count(mpistore__rma_t *r, uint64_t bytes)
{
    r->stats.rma_calls++;
    r->stats.bytes += bytes;
}

/* ---- replicas: the mirror (rma.h; docs/design.md, "Replicas") ---- */

int mpistore__mirror_init(mpistore__rma_t *r, size_t delta, size_t ctl, size_t desc, size_t end)
{
    mpistore__mirror_t *m = &r->mir;
    m->pend = malloc((size_t)r->w.nranks * sizeof *m->pend);
    m->mark = calloc((size_t)r->w.nranks, 1);
    if (!m->pend || !m->mark) {
        mpistore__mirror_free(r);
        return -MPISTORE_ENOMEM;
    }
    m->delta = delta, m->ctl = ctl, m->desc = desc, m->end = end, m->npend = 0;
    return 0;
}

void mpistore__mirror_free(mpistore__rma_t *r)
{
    free(r->mir.pend);
    free(r->mir.mark);
    memset(&r->mir, 0, sizeof r->mir);
}

/* Is the word at off mirrored: the key counts, and every index word but a
 * slot's lock (the mirror is written only by lock holders and adders, so
 * it needs no lock of its own)? */
static int mirrored(const mpistore__mirror_t *m, size_t off)
{
    if (!m->delta || (off & MS_DYN))
        return 0;
    if (off < MS_OFF_REG) /* MS_OFF_COUNT, MS_OFF_QCOUNT: the header's key counts */
        return 1;
    if (off >= m->ctl && off < m->desc)
        return (off - m->ctl) % (MS_CTL_WORDS * sizeof(uint32_t)) != 0; /* not MS_CTL_LOCK */
    return off >= m->desc && off < m->end;
}

static int mirror_target(mpistore__rma_t *r, int target)
{
    mpistore__mirror_t *m = &r->mir;
    int t = mpistore__mirror_of(r, target);
    if (!m->mark[t]) {
        m->mark[t] = 1;
        m->pend[m->npend++] = t;
    }
    mpistore__rq_mark(&r->rq, t);
    return t;
}

/* MPI_Win_flush of rank t on the allocated window, its request mark
 * cleared; the first failure goes to *rc (what: the call, as reported). */
static void flush_one(mpistore__rma_t *r, int t, const char *what, int *rc)
{
    if (r->rq.dirty)
        r->rq.dirty[t] = 0;
    if (r->w.peer) /* one node: the flush's one direct_fence completes it */
        return;
    int e = MPI_Win_flush(t, r->w.win);
    if (e != MPI_SUCCESS && *rc == 0)
        *rc = mpistore__mpierr(r->w.err, e, what, t);
}

/* The own-word writes held back (mirror_own), in their order, now that
 * their copies have landed (or their mirror rank died: this rank then holds
 * the only copy), completed by a flush of this rank: not a round trip. */
static int own_apply(mpistore__rma_t *r)
{
    mpistore__mirror_t *m = &r->mir;
    int rc = 0, me = r->w.rank;
    for (size_t i = 0; i < m->nown; i++) {
        mpistore__own_op_t *o = &m->own[i];
        unsigned char *p = direct(r, me, o->off);
        if (p) {
            direct_op(p, o->val, o->result, o->bytes, o->op);
            continue;
        }
        int e = o->result ? MPI_Fetch_and_op(o->val, o->result, o->type, me, mpistore__disp(o->off),
                                             o->op, r->w.win)
                          : MPI_Accumulate(o->val, 1, o->type, me, mpistore__disp(o->off), 1,
                                           o->type, o->op, r->w.win);
        if (e != MPI_SUCCESS && rc == 0)
            rc = mpistore__mpierr(
                r->w.err, e,
                o->result ? "MPI_Fetch_and_op (own word)" : "MPI_Accumulate (own word)", me);
    }
    m->nown = 0;
    flush_one(r, me, "MPI_Win_flush (own words)", &rc);
    return rc;
}

/* After the listed ranks' flush: the mirror's pending ranks, in the same
 * round trip (as flush_ranks flushes several ranks one by one), then the
 * own-word writes that waited for them.  Nothing to do without either. */
static int mirror_complete(mpistore__rma_t *r)
{
    mpistore__mirror_t *m = &r->mir;
    int rc = 0;
    for (size_t i = 0; i < m->npend; i++) {
        m->mark[m->pend[i]] = 0;
        flush_one(r, m->pend[i], "MPI_Win_flush (replica)", &rc);
    }
    m->npend = 0;
    int a = m->nown ? own_apply(r) : 0;
    return rc ? rc : a;
}

int mpistore__mirror_flush(mpistore__rma_t *r)
{
    if (r->mir.npend == 0 && r->mir.nown == 0)
        return 0;
    r->stats.round_trips++;
    if (r->w.peer)
        direct_fence(r);
    return mirror_complete(r);
}

int mpistore__mirror_put(mpistore__rma_t *r, size_t off, size_t len)
{
    if (!r->mir.delta)
        return 0;
    int t = mirror_target(r, r->w.rank);
    count(r, len);
    const unsigned char *src = r->w.base + off;
    unsigned char *p = direct(r, t, off + r->mir.delta);
    if (p) { /* made visible by the publication that follows (a seq_cst atomic) */
        memcpy(p, src, len);
        return 0;
    }
    for (size_t done = 0; done < len;) { /* MPI counts are int */
        int n = len - done > (1u << 30) ? (1 << 30) : (int)(len - done);
        int e = MPI_Put(src + done, n, MPI_BYTE, t, mpistore__disp(off + r->mir.delta + done), n,
                        MPI_BYTE, r->w.win);
        if (e != MPI_SUCCESS) {
            abandon(r);
            return mpistore__mpierr(r->w.err, e, "MPI_Put (replica)", t);
        }
        done += (size_t)n;
    }
    return 0;
}

int mpistore__flush(mpistore__rma_t *r, int target)
{
    return mpistore__flush_ranks(r, &target, 1);
}

int mpistore__flush_self(mpistore__rma_t *r)
{
    if (r->rq.dirty)
        r->rq.dirty[r->w.rank] = 0;
    int e = MPI_SUCCESS;
    if (r->w.peer)
        direct_fence(r);
    else
        e = MPI_Win_flush(r->w.rank, r->w.win);
    int m = mirror_complete(r); /* even after a failure */
    int d = mpistore__dyn_flush(&r->w);
    if (e != MPI_SUCCESS)
        return mpistore__mpierr(r->w.err, e, "MPI_Win_flush(r->w.rank, r->w.win)", r->w.rank);
    return m ? m : d;
}

int mpistore__flush2(mpistore__rma_t *r, int a, int b)
{
    const int two[2] = {a, b};
    return mpistore__flush_ranks(r, two, a == b ? 1 : 2);
}

/* Every rank, one MPI_Win_flush each: MPICH 4.0.2's MPI_Win_flush_all was
 * seen to return before an MPI_Get to another rank had completed (a
 * multi_get read a block that arrived later; test_semantics, mpich cell). */
int mpistore__flush_all(mpistore__rma_t *r)
{
    return mpistore__flush_ranks(r, NULL, (size_t)r->w.nranks);
}

/* Requests first (against the scope's deadline), then MPI_Win_flush: every
 * listed rank outside a scope, only those with blocking operations
 * outstanding inside one.  Blocking operations are completed even after a
 * timeout: their buffers are the caller's. */
int mpistore__flush_ranks(mpistore__rma_t *r, const int *ranks, size_t n)
{
    mpistore__rq_t *q = &r->rq;
    r->stats.round_trips++; /* all issued together: one wait */
    int rc = q->nrq ? mpistore__rq_wait(q, &r->w) : 0, scope = mpistore__rq_on(q);
    if (r->w.peer) /* one node: the flush is this fence (flush_one then does nothing) */
        direct_fence(r);
    for (size_t i = 0; i < n; i++) {
        int t = ranks ? ranks[i] : (int)i;
        if (scope && q->dirty && !q->dirty[t])
            continue;
        flush_one(r, t, "MPI_Win_flush", &rc);
    }
    /* replicas: the mirror's operations issued with these */
    int m = mirror_complete(r);
    /* the dynamic window's targets, issued with these (blocking operations
     * only: requests never mark it), completed even after a timeout */
    int d = mpistore__dyn_flush(&r->w);
    return rc ? rc : m ? m : d;
}

int mpistore__rget(mpistore__rma_t *r, int target, size_t off, void *buf, size_t len)
{
    count(r, len);
    const unsigned char *p = direct(r, target, off);
    if (p) { /* as MPI_Get: not atomic, validated by the caller after the flush's fence */
        memcpy(buf, p, len);
        return 0;
    }
    while (len > 0) { /* MPI counts are int */
        int n = len > (1u << 30) ? (1 << 30) : (int)len;
        if (mpistore__rq_on(&r->rq)) {
            void *st = NULL;
            MPI_Request *req = NULL;
            int rc = dyn_dead(r, off, target);
            if (rc == 0)
                rc = mpistore__rq_reserve(&r->rq, &r->w, target, buf, (size_t)n, &st, &req);
            if (rc == 0) {
                int m;
                ISSUE(m,
                      MPI_Rget(st, n, MPI_BYTE, target, mpistore__disp(off), n, MPI_BYTE,
                               mpistore__win_of(&r->w, off), req),
                      off);
                rc = mpistore__rq_issued(&r->rq, &r->w, m, "MPI_Rget", target);
            }
            if (rc) {
                abandon(r);
                return rc;
            }
        } else {
            mpistore__rq_mark(&r->rq, target);
            CHECK_ISSUE(MPI_Get(buf, n, MPI_BYTE, target, mpistore__disp(off), n, MPI_BYTE,
                                mpistore__win(&r->w, off, target)),
                        off, target);
        }
        buf = (unsigned char *)buf + n;
        off += (size_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* Atomic element-wise read of count elements (MPI_NO_OP). */
static int getacc(mpistore__rma_t *r, int target, size_t off, void *buf, size_t n,
                  MPI_Datatype type, size_t size)
{
    count(r, n * size);
    unsigned char *p = direct(r, target, off);
    if (p) {
        direct_loads(p, buf, n, size);
        return 0;
    }
    if (mpistore__rq_on(&r->rq)) {
        void *st = NULL;
        MPI_Request *req = NULL;
        int rc = dyn_dead(r, off, target), m;
        if (rc == 0)
            rc = mpistore__rq_reserve(&r->rq, &r->w, target, buf, n * size, &st, &req);
        if (rc == 0) {
            ISSUE(m,
                  MPI_Rget_accumulate(NULL, 0, type, st, (int)n, type, target, mpistore__disp(off),
                                      (int)n, type, MPI_NO_OP, mpistore__win_of(&r->w, off), req),
                  off);
            rc = mpistore__rq_issued(&r->rq, &r->w, m, "MPI_Rget_accumulate", target);
        }
        if (rc)
            abandon(r);
        return rc;
    }
    mpistore__rq_mark(&r->rq, target);
    CHECK_ISSUE(MPI_Get_accumulate(NULL, 0, type, buf, (int)n, type, target, mpistore__disp(off),
                                   (int)n, type, MPI_NO_OP, mpistore__win(&r->w, off, target)),
                off, target);
    return 0;
}

int mpistore__read_u32s(mpistore__rma_t *r, int target, size_t off, uint32_t *buf, size_t n)
{
    return getacc(r, target, off, buf, n, MPI_UINT32_T, 4);
}

int mpistore__read_u64s(mpistore__rma_t *r, int target, size_t off, uint64_t *buf, size_t n)
{
    return getacc(r, target, off, buf, n, MPI_UINT64_T, 8);
}

int mpistore__read_slots(mpistore__rma_t *r, int target, size_t ctl_off, size_t desc_off,
                         uint32_t *ctl, uint64_t *desc, size_t n)
{
    const unsigned char *pc = direct(r, target, ctl_off), *pd = direct(r, target, desc_off);
    if (!pc || !pd) {
        int rc = getacc(r, target, ctl_off, ctl, n * MS_CTL_WORDS, MPI_UINT32_T, 4);
        return rc ? rc : getacc(r, target, desc_off, desc, n, MPI_UINT64_T, 8);
    }
    const _Atomic uint64_t *d = (const _Atomic uint64_t *)(const void *)pd;
    size_t i = 0;
    while (i < n) { /* the descriptor first, acquire: then the lock word (design.md) */
        desc[i] = atomic_load_explicit(&d[i], memory_order_acquire);
        direct_loads(pc + i * MS_CTL_WORDS * 4, ctl + i * MS_CTL_WORDS, MS_CTL_WORDS, 4);
        i++;
        if (desc[i - 1] == 0 && mpistore__lock_ver(ctl[(i - 1) * MS_CTL_WORDS + MS_CTL_LOCK]) == 0)
            break; /* never published: no key lies beyond it (design.md) */
    }
    memset(ctl + i * MS_CTL_WORDS, 0, (n - i) * MS_CTL_WORDS * sizeof *ctl);
    memset(desc + i, 0, (n - i) * sizeof *desc);
    count(r, i * MS_CTL_WORDS * 4);
    count(r, i * 8);
    return 0;
}

int mpistore__cas_u32(mpistore__rma_t *r, int target, size_t off, const uint32_t *desired,
                      const uint32_t *expected, uint32_t *result)
{
    count(r, 4);
    unsigned char *p = direct(r, target, off);
    if (p) {
        uint32_t old = *expected;
        (void)atomic_compare_exchange_strong((_Atomic uint32_t *)(void *)p, &old, *desired);
        *result = old; /* the word's value before, as MPI_Compare_and_swap gives it */
        return 0;
    }
    mpistore__rq_mark(&r->rq, target);
    CHECK_ISSUE(MPI_Compare_and_swap(desired, expected, result, MPI_UINT32_T, target,
                                     mpistore__disp(off), mpistore__win(&r->w, off, target)),
                off, target);
    return 0;
}

/* The same accumulate on target's mirror. */
static int mirror_acc(mpistore__rma_t *r, int target, size_t off, const void *val,
                      MPI_Datatype type, int bytes, MPI_Op op)
{
    int t = mirror_target(r, target);
    size_t moff = off + r->mir.delta;
    count(r, (uint64_t)bytes);
    unsigned char *p = direct(r, t, moff);
    if (p) {
        direct_op(p, val, NULL, bytes, op);
        return 0;
    }
    CHECK_ISSUE(MPI_Accumulate(val, 1, type, t, mpistore__disp(moff), 1, type, op, r->w.win), moff,
                t);
    return 0;
}

/* A mirrored write to this rank's own window: the copy now, the write
 * itself held back until the copy has landed (mirror_complete; rma.h). */
static int mirror_own(mpistore__rma_t *r, size_t off, const void *val, void *result,
                      MPI_Datatype type, int bytes, MPI_Op op)
{
    mpistore__mirror_t *m = &r->mir;
    int rc = m->nown == MS_MIRROR_OWN ? mpistore__mirror_flush(r) : 0; /* room first */
    if (rc == 0)
        rc = mirror_acc(r, r->w.rank, off, val, type, bytes, op); /* (fails: abandon) */
    if (rc)
        return rc;
    mpistore__own_op_t *o = &m->own[m->nown++];
    o->off = off;
    memcpy(o->val, val, (size_t)bytes);
    o->result = result;
    o->type = type;
    o->bytes = bytes;
    o->op = op;
    return 0;
}

/* One-element accumulate (no result): the writes of the protocol. */
static int acc1(mpistore__rma_t *r, int target, size_t off, const void *val, MPI_Datatype type,
                int bytes, MPI_Op op)
{
    count(r, (uint64_t)bytes);
    if (target == r->w.rank && mirrored(&r->mir, off))
        return mirror_own(r, off, val, NULL, type, bytes, op);
    unsigned char *p = direct(r, target, off);
    if (p) {
        direct_op(p, val, NULL, bytes, op);
    } else {
        mpistore__rq_mark(&r->rq, target);
        CHECK_ISSUE(MPI_Accumulate(val, 1, type, target, mpistore__disp(off), 1, type, op,
                                   mpistore__win(&r->w, off, target)),
                    off, target);
    }
    return mirrored(&r->mir, off) ? mirror_acc(r, target, off, val, type, bytes, op) : 0;
}

int mpistore__replace_u32(mpistore__rma_t *r, int target, size_t off, const uint32_t *val)
{
    return acc1(r, target, off, val, MPI_UINT32_T, 4, MPI_REPLACE);
}

int mpistore__or_u32(mpistore__rma_t *r, int target, size_t off, const uint32_t *bits)
{
    return acc1(r, target, off, bits, MPI_UINT32_T, 4, MPI_BOR);
}

int mpistore__and_u32(mpistore__rma_t *r, int target, size_t off, const uint32_t *bits)
{
    return acc1(r, target, off, bits, MPI_UINT32_T, 4, MPI_BAND);
}

int mpistore__replace_u64(mpistore__rma_t *r, int target, size_t off, const uint64_t *val)
{
    return acc1(r, target, off, val, MPI_UINT64_T, 8, MPI_REPLACE);
}

int mpistore__replace_i64(mpistore__rma_t *r, int target, size_t off, const int64_t *val)
{
    return acc1(r, target, off, val, MPI_INT64_T, 8, MPI_REPLACE);
}

int mpistore__add_i64(mpistore__rma_t *r, int target, size_t off, const int64_t *delta)
{
    return acc1(r, target, off, delta, MPI_INT64_T, 8, MPI_SUM);
}

int mpistore__fao_i64(mpistore__rma_t *r, int target, size_t off, const int64_t *delta,
                      int64_t *result)
{
    count(r, 8);
    if (target == r->w.rank && mirrored(&r->mir, off))
        return mirror_own(r, off, delta, result, MPI_INT64_T, 8, MPI_SUM);
    unsigned char *p = direct(r, target, off);
    if (p) {
        direct_op(p, delta, result, 8, MPI_SUM);
    } else {
        mpistore__rq_mark(&r->rq, target);
        CHECK_ISSUE(MPI_Fetch_and_op(delta, result, MPI_INT64_T, target, mpistore__disp(off),
                                     MPI_SUM, mpistore__win(&r->w, off, target)),
                    off, target);
    }
    /* the mirror's copy: the same add, once (exactly once per copy) */
    return mirrored(&r->mir, off) ? mirror_acc(r, target, off, delta, MPI_INT64_T, 8, MPI_SUM) : 0;
}

int mpistore__read_u64(mpistore__rma_t *r, int target, size_t off, uint64_t *result)
{
    if (mpistore__rq_on(
            &r->rq)) /* the same atomic read, as a request: MPI_Rget_accumulate(NO_OP) */
        return mpistore__read_u64s(r, target, off, result, 1);
    count(r, 8);
    unsigned char *p = direct(r, target, off);
    if (p) {
        direct_op(p, NULL, result, 8, MPI_NO_OP);
        return 0;
    }
    mpistore__rq_mark(&r->rq, target);
    static const uint64_t unused = 0;
    CHECK_ISSUE(MPI_Fetch_and_op(&unused, result, MPI_UINT64_T, target, mpistore__disp(off),
                                 MPI_NO_OP, mpistore__win(&r->w, off, target)),
                off, target);
    return 0;
}

int mpistore__read_i64(mpistore__rma_t *r, int target, size_t off, int64_t *buf)
{
    return getacc(r, target, off, buf, 1, MPI_INT64_T, 8);
}

int mpistore__read_local_u64(mpistore__rma_t *r, size_t off, uint64_t *result)
{
    static const uint64_t unused = 0;
    int me = r->w.rank;
    unsigned char *p = direct(r, me, off);
    if (p) {
        direct_op(p, NULL, result, 8, MPI_NO_OP);
        return 0;
    }
    int rc = MPI_Fetch_and_op(&unused, result, MPI_UINT64_T, me, mpistore__disp(off), MPI_NO_OP,
                              mpistore__win_of(&r->w, off));
    if (rc == MPI_SUCCESS)
        rc = MPI_Win_flush(me, mpistore__win_of(&r->w, off));
    return rc == MPI_SUCCESS ? 0
                             : mpistore__mpierr(r->w.err, rc, "MPI_Fetch_and_op (own word)", me);
}
