/* Request-based reads and deadline scopes (docs/design.md, "Deadlines when
 * a rank stops answering"): the RMA layer's requests, the staging memory
 * they land in, their wait against a deadline, the requests abandoned at a
 * deadline (orphans), and whether a store uses requests at all. */
#include "errors.h"
#include "clock.h"
#include "mpienv.h"
#include "rq.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RQ_STAGE_MIN ((size_t)64 * 1024)        /* a staging chunk */
#define RQ_STAGE_KEEP ((size_t)4 * 1024 * 1024) /* largest chunk kept between batches */
#define RQ_GRACE_S 0.5 /* a flush may wait this long even past the deadline */
#define RQ_SPINS 64u   /* MPI_Testall calls before the first yield */

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

static void stages_free(mpistore__stage_t *p)
{
    while (p) {
        mpistore__stage_t *n = p->next;
        free(p->data);
        free(p);
        p = n;
    }
}

static void *stage_alloc(mpistore__rq_t *q, size_t len)
{
    size_t need = (len + 15u) & ~(size_t)15u;
    mpistore__stage_t *h = q->stage;
    if (!h || h->cap - h->used < need) {
        size_t cap = need > RQ_STAGE_MIN ? need : RQ_STAGE_MIN;
        mpistore__stage_t *n = malloc(sizeof *n);
        unsigned char *d = n ? malloc(cap) : NULL;
        if (!d) {
            free(n);
            return NULL;
        }
        *n = (mpistore__stage_t){.next = h, .cap = cap, .used = 0, .data = d};
        q->stage = h = n;
    }
    void *p = h->data + h->used;
    h->used += need;
    return p;
}

/* Every request completed: keep the largest chunk (up to RQ_STAGE_KEEP). */
static void stage_reset(mpistore__rq_t *q)
{
    mpistore__stage_t *keep = NULL, *rest = NULL;
    for (mpistore__stage_t *p = q->stage, *n; p; p = n) {
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
    q->stage = keep;
}

/* Give the requests in flight and the memory they write into to the
 * orphan list: nothing of the caller's is touched by them any more. */
static void rq_abandon(mpistore__rq_t *q)
{
    if (q->nrq == 0)
        return;
    mpistore__orphan_t *o = malloc(sizeof *o);
    if (o) {
        *o = (mpistore__orphan_t){
            .next = q->orphans, .reqs = q->rqv, .nreq = q->nrq, .stages = q->stage};
        q->orphans = o;
    } /* else leaked on purpose: an incomplete request may still write into them */
    q->rqv = NULL;
    free(q->rqi);
    q->rqi = NULL;
    q->caprq = 0;
    q->nrq = 0;
    q->stage = NULL;
}

/* Free the orphans whose requests have all completed (never blocks). */
static void rq_reap(mpistore__rq_t *q)
{
    for (mpistore__orphan_t **pp = &q->orphans; *pp;) {
        mpistore__orphan_t *o = *pp;
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
int mpistore__rq_reserve(mpistore__rq_t *q, mpistore__wins_t *w, int target, void *dst, size_t len,
                         void **stage, MPI_Request **req)
{
    if (q->nrq == q->caprq) {
        size_t cap = q->caprq ? 2 * q->caprq : 16;
        MPI_Request *v = realloc(q->rqv, cap * sizeof *v);
        if (v)
            q->rqv = v;
        mpistore__rqinfo_t *i = v ? realloc(q->rqi, cap * sizeof *i) : NULL;
        if (i)
            q->rqi = i;
        if (!v || !i) {
            mpistore__complete_all(q, w);
            return mpistore__err(w->err, MPISTORE_ENOMEM, "out of memory for %zu RMA requests",
                                 cap);
        }
        q->caprq = cap;
    }
    void *st = stage_alloc(q, len ? len : 1);
    if (!st) {
        mpistore__complete_all(q, w);
        return mpistore__err(w->err, MPISTORE_ENOMEM, "out of memory staging a %zu-byte RMA read",
                             len);
    }
    q->rqi[q->nrq] = (mpistore__rqinfo_t){.dst = dst, .stage = st, .len = len, .target = target};
    *stage = st;
    *req = &q->rqv[q->nrq];
    return 0;
}

/* The request reserved last has been issued (or failed to: then dropped). */
int mpistore__rq_issued(mpistore__rq_t *q, mpistore__wins_t *w, int mpirc, const char *call,
                        int target)
{
    if (mpirc == MPI_SUCCESS) {
        q->nrq++;
        return 0;
    }
    mpistore__complete_all(q, w);
    return mpistore__mpierr(w->err, mpirc, call, target);
}

/* The first request still in flight (for the message), -1 if none. */
static int rq_first_late(mpistore__rq_t *q)
{
    for (size_t i = 0; i < q->nrq; i++) {
        int flag = 0;
        if (q->rqv[i] != MPI_REQUEST_NULL &&
            MPI_Request_get_status(q->rqv[i], &flag, MPI_STATUS_IGNORE) == MPI_SUCCESS && !flag)
            return q->rqi[i].target;
    }
    return -1;
}

/* Wait for every request in flight until the scope's deadline (at least
 * RQ_GRACE_S from now), then copy the results to the callers' buffers. */
int mpistore__rq_wait(mpistore__rq_t *q, mpistore__wins_t *w)
{
    double dl = q->deadline > 0 ? q->deadline : INFINITY, start = 0, end = 0;
    unsigned k = 0, sleeps = 0;
    for (;;) {
        int flag = 0, rc = testall(q->nrq, q->rqv, &flag);
        if (rc != MPI_SUCCESS) {
            int late = rq_first_late(q);
            rq_abandon(q);
            return mpistore__mpierr(w->err, rc, "MPI_Testall on RMA reads", late);
        }
        if (flag)
            break;
        if (++k < RQ_SPINS)
            continue;
        double now = mpistore__now();
        if (k == RQ_SPINS) {
            start = now;
            end = dl > now + RQ_GRACE_S ? dl : now + RQ_GRACE_S;
        }
        int late = now >= end ? rq_first_late(q) : -1;
        if (late >= 0) { /* (-1 past the deadline: all completed meanwhile, test again) */
            rq_abandon(q);
            q->late = late + 1;
            return mpistore__err(
                w->err, MPISTORE_ETIMEDOUT,
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
    for (size_t i = 0; i < q->nrq; i++)
        if (q->rqi[i].len)
            memcpy(q->rqi[i].dst, q->rqi[i].stage, q->rqi[i].len);
    q->nrq = 0;
    stage_reset(q);
    return 0;
}

int mpistore__rq_wanted(const mpistore__wins_t *w, int nodes)
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
    if (nodes != 1)
        return 1;
    mpistore__wins_name(w, name, sizeof name);
    if (strncmp(name, "rdma window ", 12) == 0)
        return 0;
    return !(name[0] == 0 && strncmp(mpistore__mpi_library(lib, sizeof lib), "Open MPI", 8) == 0);
}

/* The dynamic window is a window of its own: its first operation towards a
 * peer would wait for that peer too.  Every rank attaches one word and reads
 * every peer's (collective: every rank of a store decides rq_use alike). */
static void warmup_dynamic(mpistore__wins_t *w)
{
    if (w->dwin == MPI_WIN_NULL)
        return;
    MPI_Aint mine = mpistore__win_warm_word(w), *all = calloc((size_t)w->nranks, sizeof *all);
    int ok = all != NULL && mine != 0, all_ok = 0;
    if (MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, w->comm) != MPI_SUCCESS || !all_ok ||
        MPI_Allgather(&mine, 1, MPI_AINT, all, 1, MPI_AINT, w->comm) != MPI_SUCCESS) {
        free(all);
        return;
    }
    int64_t sink = 0;
    for (int r = 0; r < w->nranks; r++)
        if (r != w->rank && all[r] != 0 &&
            MPI_Get_accumulate(NULL, 0, MPI_INT64_T, &sink, 1, MPI_INT64_T, r, all[r], 1,
                               MPI_INT64_T, MPI_NO_OP, w->dwin) == MPI_SUCCESS)
            (void)MPI_Win_flush(r, w->dwin);
    free(all);
}

void mpistore__rq_warmup(mpistore__rq_t *q, mpistore__wins_t *w)
{
    int64_t sink = 0; /* the count word: int64 atomics only */
    /* (a shared-memory window, w->peer, is never touched through MPI) */
    for (int r = 0; r < w->nranks && !w->peer; r++) {
        if (r == w->rank)
            continue;
        if (MPI_Get_accumulate(NULL, 0, MPI_INT64_T, &sink, 1, MPI_INT64_T, r, MS_OFF_COUNT, 1,
                               MPI_INT64_T, MPI_NO_OP, w->win) == MPI_SUCCESS)
            (void)MPI_Win_flush(r, w->win);
    }
    warmup_dynamic(w);
    (void)MPI_Barrier(w->comm);
    /* from now on every blocking operation marks its target (NULL on ENOMEM:
     * flushes in a scope then flush every listed rank, blocking as before) */
    q->dirty = calloc((size_t)w->nranks, 1);
}

double mpistore__rq_begin(mpistore__rq_t *q, double deadline)
{
    double saved = q->deadline;
    if (!q->use)
        return saved; /* blocking reads cannot hang here (mpistore__rq_wanted) */
    if (q->orphans)
        rq_reap(q);
    q->late = 0;
    q->deadline = deadline > 0 ? deadline : INFINITY;
    return saved;
}

void mpistore__rq_end(mpistore__rq_t *q, double saved)
{
    /* an error path left reads unwaited: their buffers may go away */
    if (q->nrq)
        rq_abandon(q);
    q->deadline = saved;
}

void mpistore__rq_fini(mpistore__rq_t *q)
{
    rq_abandon(q); /* nothing should be in flight; if it is, it is an orphan now */
    rq_reap(q);    /* after MPI_Win_unlock_all every request has completed */
    stages_free(q->stage);
    q->stage = NULL;
    free(q->rqv);
    free(q->rqi);
    q->rqv = NULL;
    q->rqi = NULL;
    q->caprq = 0;
    free(q->dirty);
    q->dirty = NULL;
    /* orphans still incomplete (unlock failed) are leaked: never freed
     * under a request that could still write into them */
}

/* Requests write only into staging memory: abandon them.  Blocking
 * operations write into the caller's buffers: complete them (only on the
 * ranks that have some, when that is known). */
void mpistore__complete_all(mpistore__rq_t *q, mpistore__wins_t *w)
{
    rq_abandon(q);
    for (int r = 0; r < w->nranks; r++)
        if (!q->dirty || q->dirty[r]) {
            (void)MPI_Win_flush(r, w->win);
            if (q->dirty)
                q->dirty[r] = 0;
        }
    mpistore__dyn_complete(w);
}
