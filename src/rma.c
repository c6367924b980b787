/* Counted RMA primitives on the store's window, progress and backoff.
 * Every origin buffer passed here must stay valid until the next flush. */
#include "internal.h"

#include <math.h>
#include <sched.h>
#include <time.h>

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

int ms_flush(mpistore_t *s, int target)
{
    return ms_flush_ranks(s, &target, 1);
}

int ms_flush_self(mpistore_t *s)
{
    CHECK(MPI_Win_flush(s->core->rank, s->core->win), s->core->rank);
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

void ms_complete_all(ms_core_t *c)
{
    for (int r = 0; r < c->nranks; r++)
        (void)MPI_Win_flush(r, c->win);
    ms_dyn_complete(c);
}

int ms_flush_ranks(mpistore_t *s, const int *ranks, size_t n)
{
    s->core->stats.round_trips++; /* all issued together: one wait */
    for (size_t i = 0; i < n; i++) {
        int r = ranks ? ranks[i] : (int)i;
        CHECK(MPI_Win_flush(r, s->core->win), r);
    }
    return ms_dyn_flush(s); /* the dynamic window's targets, issued with these */
}

int ms_rget(mpistore_t *s, int target, size_t off, void *buf, size_t len)
{
    count(s, len);
    while (len > 0) { /* MPI counts are int */
        int n = len > (1u << 30) ? (1 << 30) : (int)len;
        CHECK_ISSUE(MPI_Get(buf, n, MPI_BYTE, target, ms_disp(off), n, MPI_BYTE,
                            ms_win(s->core, off, target)),
                    target);
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
    CHECK_ISSUE(
        MPI_Fetch_and_op(delta, result, MPI_INT64_T, target, ms_disp(off), MPI_SUM,
                         ms_win(s->core, off, target)),
        target);
    return 0;
}

int ms_read_u64(mpistore_t *s, int target, size_t off, uint64_t *result)
{
    count(s, 8);
    static const uint64_t unused = 0;
    CHECK_ISSUE(MPI_Fetch_and_op(&unused, result, MPI_UINT64_T, target, ms_disp(off), MPI_NO_OP,
                                 ms_win(s->core, off, target)),
                target);
    return 0;
}

double ms_now(void)
{
    return MPI_Wtime();
}

double ms_deadline(double timeout_s)
{
    return timeout_s > 0 ? ms_now() + timeout_s : INFINITY;
}

int ms_expired(double deadline)
{
    return ms_now() >= deadline;
}

/* Waits first poll with sched_yield for up to MS_YIELD_S, then sleep from
 * 10 us doubling to 1 ms.  The yield phase matters: on Linux a nanosleep of
 * 10 us sleeps about 60 us (timer slack), which used to make a 2 us barrier
 * cost 60-300 us; and yielding, unlike spinning, hands the core to the ranks
 * we are waiting for when ranks outnumber cores.  Long waits still end up
 * sleeping (<= 1 ms a round), so an idle waiter costs little CPU. */
#define MS_YIELD_S 500e-6

void ms_backoff(mpistore_t *s, ms_backoff_t *b)
{
    int flag = 0;
    /* Drive progress for requests aimed at this rank (osc/pt2pt, MPICH). */
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, s->core->comm, &flag, MPI_STATUS_IGNORE);
    ms_leave(s->core); /* let other threads of a shared handle run */
    double now = ms_now();
    if (b->round == 0)
        b->start = now;
    if (now - b->start < MS_YIELD_S) {
        sched_yield();
        b->sleeps = 0;
    } else {
        unsigned k = b->sleeps++;
        long ns = 10000L << (k > 7 ? 7 : k); /* 10 us .. 1.28 ms */
        if (ns > 1000000L)
            ns = 1000000L;
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
    }
    ms_enter(s->core);
    b->round++;
}

int ms_getacc_i64(mpistore_t *s, int target, size_t off, int64_t *buf)
{
    return getacc(s, target, off, buf, 1, MPI_INT64_T, 8);
}
