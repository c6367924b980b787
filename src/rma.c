/* The RMA layer: counted RMA primitives on the store's windows, their
 * flushes, request-based reads and deadline scopes.  Every origin buffer passed here must stay valid until the next flush.
 *
 * Inside a deadline scope (ms_rq_begin) the reads are request-based
 * (MPI_Rget, MPI_Rget_accumulate) into staging memory owned by the core, and
 * a flush waits for them with MPI_Testall until the deadline: a rank that
 * stopped answering (unreachable host, or outside MPI with no progress)
 * costs the caller its deadline, not for ever.  design.md, "Deadlines when a
 * rank stops answering". */
#include "errors.h"
#include "core.h"
#include "clock.h"
#include "rma.h"
#include "mpienv.h"
#include "window.h"

#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RQ_STAGE_MIN ((size_t)64 * 1024)        /* a staging chunk */
#define RQ_STAGE_KEEP ((size_t)4 * 1024 * 1024) /* largest chunk kept between batches */
#define RQ_GRACE_S 0.5 /* a flush may wait this long even past the deadline */
#define RQ_SPINS 64u   /* MPI_Testall calls before the first yield */

#define CHECK(call, target)                                                                        \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MPI_SUCCESS)                                                                    \
            return ms_mpierr(s, rc_, #call, (target));                                             \
    } while (0)

/* An RMA call that fails to start: first complete whatever this rank issued
 * before it, so that no operation outlives the caller's buffers. */
#define CHECK_ISSUE(call, target)                                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MPI_SUCCESS) {                                                                  \
            ms_complete_all(s->core);                                                              \
            return ms_mpierr(s, rc_, #call, (target));                                             \
        }                                                                                          \
    } while (0)

static void count(mpistore_t *s, uint64_t bytes)
{
    s->core->stats.rma_calls++;
    s->core->stats.bytes += bytes;
}

/* ---- request-based reads ---- */

static int rq_on(const mpistore_t *s)
{
    return s->rq_deadline != 0;
}

/* MPI_Testall without statuses.  MPICH defines MPI_STATUSES_IGNORE as
 * (MPI_Status *)1, which GCC 12 reports as an out-of-bounds access. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
static int testall(size_t n, MPI_Request *reqs, int *flag)
{
    return MPI_Testall((int)n, reqs, flag, MPI_STATUSES_IGNORE);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/* A blocking (not request-based) operation was issued to target. */
static void mark(ms_core_t *c, int target)
{
    if (c->dirty)
        c->dirty[target] = 1;
}

static void stages_free(ms_stage_t *p)
{
    while (p) {
        ms_stage_t *n = p->next;
        free(p->data);
        free(p);
        p = n;
    }
}

static void *stage_alloc(ms_core_t *c, size_t len)
{
    size_t need = (len + 15u) & ~(size_t)15u;
    ms_stage_t *h = c->stage;
    if (!h || h->cap - h->used < need) {
        size_t cap = need > RQ_STAGE_MIN ? need : RQ_STAGE_MIN;
        ms_stage_t *n = malloc(sizeof *n);
        unsigned char *d = n ? malloc(cap) : NULL;
        if (!d) {
            free(n);
            return NULL;
        }
        *n = (ms_stage_t){.next = h, .cap = cap, .used = 0, .data = d};
        c->stage = h = n;
    }
    void *p = h->data + h->used;
    h->used += need;
    return p;
}

/* Every request completed: keep the largest chunk (up to RQ_STAGE_KEEP). */
static void stage_reset(ms_core_t *c)
{
    ms_stage_t *keep = NULL, *rest = NULL;
    for (ms_stage_t *p = c->stage, *n; p; p = n) {
        n = p->next;
        if (p->cap <= RQ_STAGE_KEEP && (!keep || p->cap > keep->cap)) {
            if (keep) {
                keep->next = rest;
                rest = keep;
            }
            keep = p;
        } else {
            p->next = rest;
            rest = p;
        }
    }
    stages_free(rest);
    if (keep) {
        keep->next = NULL;
        keep->used = 0;
    }
    c->stage = keep;
}

/* Give the requests in flight and the memory they write into to the
 * orphan list: nothing of the caller's is touched by them any more. */
static void rq_abandon(ms_core_t *c)
{
    if (c->nrq == 0)
        return;
    ms_orphan_t *o = malloc(sizeof *o);
    if (o) {
        *o = (ms_orphan_t){.next = c->orphans, .reqs = c->rqv, .nreq = c->nrq, .stages = c->stage};
        c->orphans = o;
    } /* else leaked on purpose: an incomplete request may still write into them */
    c->rqv = NULL;
    free(c->rqi);
    c->rqi = NULL;
    c->caprq = 0;
    c->nrq = 0;
    c->stage = NULL;
}

/* Free the orphans whose requests have all completed (never blocks). */
static void rq_reap(ms_core_t *c)
{
    for (ms_orphan_t **pp = &c->orphans; *pp;) {
        ms_orphan_t *o = *pp;
        int flag = 0;
        if (testall(o->nreq, o->reqs, &flag) == MPI_SUCCESS && flag) {
            *pp = o->next;
            stages_free(o->stages);
            free(o->reqs);
            free(o);
        } else {
            pp = &o->next;
        }
    }
}

/* Room for one more request: its staging buffer and its slot. */
static int rq_reserve(mpistore_t *s, int target, void *dst, size_t len, void **stage,
                      MPI_Request **req)
{
    ms_core_t *c = s->core;
    if (c->nrq == c->caprq) {
        size_t cap = c->caprq ? 2 * c->caprq : 16;
        MPI_Request *v = realloc(c->rqv, cap * sizeof *v);
        if (v)
            c->rqv = v;
        ms_rqinfo_t *i = v ? realloc(c->rqi, cap * sizeof *i) : NULL;
        if (i)
            c->rqi = i;
        if (!v || !i) {
            ms_complete_all(c);
            return ms_err(s, MPISTORE_ENOMEM, "out of memory for %zu RMA requests", cap);
        }
        c->caprq = cap;
    }
    void *st = stage_alloc(c, len ? len : 1);
    if (!st) {
        ms_complete_all(c);
        return ms_err(s, MPISTORE_ENOMEM, "out of memory staging a %zu-byte RMA read", len);
    }
    c->rqi[c->nrq] = (ms_rqinfo_t){.dst = dst, .stage = st, .len = len, .target = target};
    *stage = st;
    *req = &c->rqv[c->nrq];
    return 0;
}

/* The request reserved last has been issued (or failed to: then dropped). */
static int rq_issued(mpistore_t *s, int mpirc, const char *call, int target)
{
    if (mpirc == MPI_SUCCESS) {
        s->core->nrq++;
        return 0;
    }
    ms_complete_all(s->core);
    return ms_mpierr(s, mpirc, call, target);
}

/* The first request still in flight (for the message), -1 if none. */
static int rq_first_late(ms_core_t *c)
{
    for (size_t i = 0; i < c->nrq; i++) {
        int flag = 0;
        if (c->rqv[i] != MPI_REQUEST_NULL &&
            MPI_Request_get_status(c->rqv[i], &flag, MPI_STATUS_IGNORE) == MPI_SUCCESS && !flag)
            return c->rqi[i].target;
    }
    return -1;
}

/* Wait for every request in flight until the scope's deadline (at least
 * RQ_GRACE_S from now), then copy the results to the callers' buffers. */
static int rq_wait(mpistore_t *s)
{
    ms_core_t *c = s->core;
    double dl = s->rq_deadline > 0 ? s->rq_deadline : INFINITY, start = 0, end = 0;
    unsigned k = 0, sleeps = 0;
    for (;;) {
        int flag = 0, rc = testall(c->nrq, c->rqv, &flag);
        if (rc != MPI_SUCCESS) {
            int late = rq_first_late(c);
            rq_abandon(c);
            return ms_mpierr(s, rc, "MPI_Testall on RMA reads", late);
        }
        if (flag)
            break;
        if (++k < RQ_SPINS)
            continue;
        double now = ms_now();
        if (k == RQ_SPINS) {
            start = now;
            end = dl > now + RQ_GRACE_S ? dl : now + RQ_GRACE_S;
        }
        int late = now >= end ? rq_first_late(c) : -1;
        if (late >= 0) { /* (-1 past the deadline: all completed meanwhile, test again) */
            rq_abandon(c);
            s->rq_late = late + 1;
            return ms_err(s, MPISTORE_ETIMEDOUT,
                          "rank %d did not answer an RMA read (waited %.3f s in one round trip): "
                          "unreachable, or outside MPI with no progress thread",
                          late, now - start);
        }
        if (now - start < 500e-6) {
            sched_yield();
        } else {
            unsigned e = sleeps++;
            long ns = 10000L << (e > 7 ? 7 : e); /* 10 us .. 1 ms */
            struct timespec ts = {0, ns > 1000000L ? 1000000L : ns};
            nanosleep(&ts, NULL);
        }
    }
    for (size_t i = 0; i < c->nrq; i++)
        if (c->rqi[i].len)
            memcpy(c->rqi[i].dst, c->rqi[i].stage, c->rqi[i].len);
    c->nrq = 0;
    stage_reset(c);
    return 0;
}

int ms_rq_wanted(const ms_core_t *c, int nodes)
{
    const char *env = getenv("MPISTORE_RMA_REQUESTS");
    if (env && (env[0] == '0' || env[0] == '1') && env[1] == 0)
        return env[0] == '1';
    /* Open MPI names a window after its one-sided component, but for
     * osc/sm (Open MPI 5's one-node default), which leaves it unnamed.
     * osc/rdma and osc/sm on one node read and do atomics in shared memory
     * from the origin: measured, a flush returns while the target sleeps
     * outside MPI.  A request costs osc/rdma a malloc and a free (+0.17 us
     * on a 0.46 us get).  MPICH leaves its windows unnamed too: ask which
     * MPI this is. */
    char name[MPI_MAX_OBJECT_NAME] = "", lib[64];
    int len = 0;
    if (nodes != 1 || MPI_Win_get_name(c->win, name, &len) != MPI_SUCCESS)
        return 1;
    if (strncmp(name, "rdma window ", 12) == 0)
        return 0;
    return !(name[0] == 0 && strncmp(ms_mpi_library(lib, sizeof lib), "Open MPI", 8) == 0);
}

/* The dynamic window is a window of its own: its first operation towards a
 * peer would wait for that peer too.  Every rank attaches one word and reads
 * every peer's (collective: every rank of a store decides rq_use alike). */
static void warmup_dynamic(ms_core_t *c)
{
    if (c->dwin == MPI_WIN_NULL)
        return;
    MPI_Aint mine = ms_win_warm_word(c), *all = calloc((size_t)c->nranks, sizeof *all);
    int ok = all != NULL && mine != 0, all_ok = 0;
    if (MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, c->comm) != MPI_SUCCESS || !all_ok ||
        MPI_Allgather(&mine, 1, MPI_AINT, all, 1, MPI_AINT, c->comm) != MPI_SUCCESS) {
        free(all);
        return;
    }
    int64_t sink = 0;
    for (int r = 0; r < c->nranks; r++)
        if (r != c->rank && all[r] != 0 &&
            MPI_Get_accumulate(NULL, 0, MPI_INT64_T, &sink, 1, MPI_INT64_T, r, all[r], 1,
                               MPI_INT64_T, MPI_NO_OP, c->dwin) == MPI_SUCCESS)
            (void)MPI_Win_flush(r, c->dwin);
    free(all);
}

void ms_rq_warmup(ms_core_t *c)
{
    int64_t sink = 0; /* the count word: int64 atomics only */
    for (int r = 0; r < c->nranks; r++) {
        if (r == c->rank)
            continue;
        if (MPI_Get_accumulate(NULL, 0, MPI_INT64_T, &sink, 1, MPI_INT64_T, r, MS_OFF_COUNT, 1,
                               MPI_INT64_T, MPI_NO_OP, c->win) == MPI_SUCCESS)
            (void)MPI_Win_flush(r, c->win);
    }
    warmup_dynamic(c);
    (void)MPI_Barrier(c->comm);
    /* from now on every blocking operation marks its target (NULL on ENOMEM:
     * flushes in a scope then flush every listed rank, blocking as before) */
    c->dirty = calloc((size_t)c->nranks, 1);
}

double ms_rq_begin(mpistore_t *s, double deadline)
{
    ms_core_t *c = s->core;
    double saved = s->rq_deadline;
    if (!c->rq_use)
        return saved; /* blocking reads cannot hang here (ms_rq_wanted) */
    if (c->orphans)
        rq_reap(c);
    s->rq_late = 0;
    s->rq_deadline = deadline > 0 ? deadline : INFINITY;
    return saved;
}

void ms_rq_end(mpistore_t *s, double saved)
{
    /* an error path left reads unwaited: their buffers may go away */
    if (s->core->nrq)
        rq_abandon(s->core);
    s->rq_deadline = saved;
}

int ms_rq_context(mpistore_t *s, int rc, const char *fmt, ...)
{
    if (rc != -MPISTORE_ETIMEDOUT || ms_rq_late(s) < 0)
        return rc;
    char what[MS_ERRMSG_LEN], cause[MS_ERRMSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(cause, sizeof cause, "%s", s->errmsg);
    return ms_err(s, MPISTORE_ETIMEDOUT, "%s: %s", what, cause);
}

void ms_rq_fini(ms_core_t *c)
{
    rq_abandon(c); /* nothing should be in flight; if it is, it is an orphan now */
    rq_reap(c);    /* after MPI_Win_unlock_all every request has completed */
    stages_free(c->stage);
    c->stage = NULL;
    free(c->rqv);
    free(c->rqi);
    c->rqv = NULL;
    c->rqi = NULL;
    c->caprq = 0;
    free(c->dirty);
    c->dirty = NULL;
    /* orphans still incomplete (unlock failed) are leaked: never freed
     * under a request that could still write into them */
}

int ms_flush(mpistore_t *s, int target)
{
    return ms_flush_ranks(s, &target, 1);
}

int ms_flush_self(mpistore_t *s)
{
    ms_core_t *c = s->core;
    if (c->dirty)
        c->dirty[c->rank] = 0;
    CHECK(MPI_Win_flush(c->rank, c->win), c->rank);
    return ms_dyn_flush(s);
}

int ms_flush2(mpistore_t *s, int a, int b)
{
    const int r[2] = {a, b};
    return ms_flush_ranks(s, r, a == b ? 1 : 2);
}

/* Every rank, one MPI_Win_flush each: MPICH 4.0.2's MPI_Win_flush_all was
 * seen to return before an MPI_Get to another rank had completed (a
 * multi_get read a block that arrived later; test_semantics, mpich cell). */
int ms_flush_all(mpistore_t *s)
{
    return ms_flush_ranks(s, NULL, (size_t)s->core->nranks);
}

/* Requests write only into staging memory: abandon them.  Blocking
 * operations write into the caller's buffers: complete them (only on the
 * ranks that have some, when that is known). */
void ms_complete_all(ms_core_t *c)
{
    rq_abandon(c);
    for (int r = 0; r < c->nranks; r++)
        if (!c->dirty || c->dirty[r]) {
            (void)MPI_Win_flush(r, c->win);
            if (c->dirty)
                c->dirty[r] = 0;
        }
    ms_dyn_complete(c);
}

/* Requests first (against the scope's deadline), then MPI_Win_flush: every
 * listed rank outside a scope, only those with blocking operations
 * outstanding inside one.  Blocking operations are completed even after a
 * timeout: their buffers are the caller's. */
int ms_flush_ranks(mpistore_t *s, const int *ranks, size_t n)
{
    ms_core_t *c = s->core;
    c->stats.round_trips++; /* all issued together: one wait */
    int rc = c->nrq ? rq_wait(s) : 0, scope = rq_on(s);
    for (size_t i = 0; i < n; i++) {
        int r = ranks ? ranks[i] : (int)i;
        if (scope && c->dirty && !c->dirty[r])
            continue;
        if (c->dirty)
            c->dirty[r] = 0;
        int m = MPI_Win_flush(r, c->win);
        if (m != MPI_SUCCESS && rc == 0)
            rc = ms_mpierr(s, m, "MPI_Win_flush(r, s->core->win)", r);
    }
    /* the dynamic window's targets, issued with these (blocking operations
     * only: requests never mark it), completed even after a timeout */
    int d = ms_dyn_flush(s);
    return rc ? rc : d;
}

int ms_rget(mpistore_t *s, int target, size_t off, void *buf, size_t len)
{
    count(s, len);
    while (len > 0) { /* MPI counts are int */
        int n = len > (1u << 30) ? (1 << 30) : (int)len;
        if (rq_on(s)) {
            void *st = NULL;
            MPI_Request *r = NULL;
            int rc = rq_reserve(s, target, buf, (size_t)n, &st, &r);
            if (rc == 0)
                rc = rq_issued(s,
                               MPI_Rget(st, n, MPI_BYTE, target, ms_disp(off), n, MPI_BYTE,
                                        ms_win_of(s->core, off), r),
                               "MPI_Rget", target);
            if (rc)
                return rc;
        } else {
            mark(s->core, target);
            CHECK_ISSUE(MPI_Get(buf, n, MPI_BYTE, target, ms_disp(off), n, MPI_BYTE,
                                ms_win(s->core, off, target)),
                        target);
        }
        buf = (unsigned char *)buf + n;
        off += (size_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* Atomic element-wise read of count elements (MPI_NO_OP). */
static int getacc(mpistore_t *s, int target, size_t off, void *buf, size_t n, MPI_Datatype type,
                  size_t size)
{
    count(s, n * size);
    if (rq_on(s)) {
        void *st = NULL;
        MPI_Request *r = NULL;
        int rc = rq_reserve(s, target, buf, n * size, &st, &r);
        return rc ? rc
                  : rq_issued(s,
                              MPI_Rget_accumulate(NULL, 0, type, st, (int)n, type, target,
                                                  ms_disp(off), (int)n, type, MPI_NO_OP,
                                                  ms_win_of(s->core, off), r),
                              "MPI_Rget_accumulate", target);
    }
    mark(s->core, target);
    CHECK_ISSUE(MPI_Get_accumulate(NULL, 0, type, buf, (int)n, type, target, ms_disp(off), (int)n,
                                   type, MPI_NO_OP, ms_win(s->core, off, target)),
                target);
    return 0;
}

int ms_getacc_u32(mpistore_t *s, int target, size_t off, uint32_t *buf, size_t n)
{
    return getacc(s, target, off, buf, n, MPI_UINT32_T, 4);
}

int ms_getacc_u64(mpistore_t *s, int target, size_t off, uint64_t *buf, size_t n)
{
    return getacc(s, target, off, buf, n, MPI_UINT64_T, 8);
}

int ms_cas_u32(mpistore_t *s, int target, size_t off, const uint32_t *desired,
               const uint32_t *expected, uint32_t *result)
{
    count(s, 4);
    mark(s->core, target);
    CHECK_ISSUE(MPI_Compare_and_swap(desired, expected, result, MPI_UINT32_T, target, ms_disp(off),
                                     ms_win(s->core, off, target)),
                target);
    return 0;
}

/* One-element accumulate (no result): the writes of the protocol. */
static int acc1(mpistore_t *s, int target, size_t off, const void *val, MPI_Datatype type,
                int bytes, MPI_Op op)
{
    count(s, (uint64_t)bytes);
    mark(s->core, target);
    CHECK_ISSUE(MPI_Accumulate(val, 1, type, target, ms_disp(off), 1, type, op,
                               ms_win(s->core, off, target)),
                target);
    return 0;
}

int ms_put_u32(mpistore_t *s, int target, size_t off, const uint32_t *val)
{
    return acc1(s, target, off, val, MPI_UINT32_T, 4, MPI_REPLACE);
}

int ms_or_u32(mpistore_t *s, int target, size_t off, const uint32_t *bits)
{
    return acc1(s, target, off, bits, MPI_UINT32_T, 4, MPI_BOR);
}

int ms_and_u32(mpistore_t *s, int target, size_t off, const uint32_t *bits)
{
    return acc1(s, target, off, bits, MPI_UINT32_T, 4, MPI_BAND);
}

int ms_put_u64(mpistore_t *s, int target, size_t off, const uint64_t *val)
{
    return acc1(s, target, off, val, MPI_UINT64_T, 8, MPI_REPLACE);
}

int ms_put_i64(mpistore_t *s, int target, size_t off, const int64_t *val)
{
    return acc1(s, target, off, val, MPI_INT64_T, 8, MPI_REPLACE);
}

int ms_add_i64(mpistore_t *s, int target, size_t off, const int64_t *delta)
{
    return acc1(s, target, off, delta, MPI_INT64_T, 8, MPI_SUM);
}

int ms_fao_i64(mpistore_t *s, int target, size_t off, const int64_t *delta, int64_t *result)
{
    count(s, 8);
    mark(s->core, target);
    CHECK_ISSUE(
        MPI_Fetch_and_op(delta, result, MPI_INT64_T, target, ms_disp(off), MPI_SUM,
                         ms_win(s->core, off, target)),
        target);
    return 0;
}

int ms_read_u64(mpistore_t *s, int target, size_t off, uint64_t *result)
{
    if (rq_on(s)) /* the same atomic read, as a request: MPI_Rget_accumulate(NO_OP) */
        return ms_getacc_u64(s, target, off, result, 1);
    count(s, 8);
    mark(s->core, target);
    static const uint64_t unused = 0;
    CHECK_ISSUE(MPI_Fetch_and_op(&unused, result, MPI_UINT64_T, target, ms_disp(off), MPI_NO_OP,
                                 ms_win(s->core, off, target)),
                target);
    return 0;
}

int ms_getacc_i64(mpistore_t *s, int target, size_t off, int64_t *buf)
{
    return getacc(s, target, off, buf, 1, MPI_INT64_T, 8);
}
