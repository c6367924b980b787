/* src/rma.c: the counted RMA primitives.  Every primitive is one RMA call
 * in mpistore_stats (and its payload in bytes) and no round trip; every
 * flush of other ranks (mpistore__flush, mpistore__flush2, mpistore__flush_all,
 * mpistore__flush_ranks) is one round trip and no RMA call, while mpistore__flush_self (this rank's
 * own window) is neither.  The values the primitives move are checked too, on this rank's window
 * and on the next rank's, outside and inside a deadline scope (mpistore__rq_begin /
 * mpistore__rq_end), with blocking reads and with request-based ones (MPISTORE_RMA_REQUESTS=1); a
 * scope that completes normally leaves mpistore__rq_late() = -1 and restores the deadline. */
#include "mpitest.h"
#include "ops.h" /* white-box: the core; rma.h: mpistore__rget, mpistore__flush, mpistore__rq_begin, ... */
#include "clock.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each rank owns 64 bytes of scratch in every rank's (empty) arena. */
#define SCRATCH 64u

static size_t scratch(const mpistore_t *s, int writer)
{
    return s->core->lay.off_arena + (size_t)writer * SCRATCH;
}

static mpistore_t *open_with_requests(const char *requests)
{
    setenv("MPISTORE_RMA_REQUESTS", requests, 1);
    mpistore_t *s = mt_open(NULL);
    unsetenv("MPISTORE_RMA_REQUESTS");
    assert_int_equal(s->core->rma.rq.use, requests[0] == '1');
    return s;
}

static mpistore_stats_t st_reset(mpistore_t *s)
{
    mpistore_stats_t st;
    MT_OK(s, mpistore_stats(s, &st, true));
    return st;
}

/* The counters since the last reset must be exactly (calls, trips, bytes). */
#define EXPECT_COUNTS(s, calls, trips, nbytes)                                                     \
    do {                                                                                           \
        mpistore_stats_t st_ = st_reset(s);                                                        \
        if (st_.rma_calls != (calls) || st_.round_trips != (trips) || st_.bytes != (nbytes))       \
            fail_msg("rank %d, line %d: %llu RMA calls, %llu round trips, %llu bytes; expected "   \
                     "%d, %d, %d",                                                                 \
                     mt_rank, __LINE__, (unsigned long long)st_.rma_calls,                         \
                     (unsigned long long)st_.round_trips, (unsigned long long)st_.bytes,           \
                     (int)(calls), (int)(trips), (int)(nbytes));                                   \
    } while (0)

/* Every primitive on target t, each followed by a flush, with the values
 * read back.  The scratch words: [0] u32, [1] u32, [8] u64, [16] i64. */
static void primitives_on(mpistore_t *s, int t)
{
    size_t base = scratch(s, mt_rank);
    st_reset(s);
    uint32_t u32 = 0x12345678u, got32[2] = {0, 0};
    MT_OK(s, mpistore__replace_u32(&s->core->rma, t, base, &u32));
    EXPECT_COUNTS(s, 1, 0, 4);
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    EXPECT_COUNTS(s, 0, 1, 0);
    MT_OK(s, mpistore__read_u32s(&s->core->rma, t, base, got32, 1));
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    EXPECT_COUNTS(s, 1, 1, 4);
    assert_int_equal(got32[0], 0x12345678u);

    const uint32_t bits_or = 0x0000FF00u, bits_and = 0xFFFF0FFFu;
    MT_OK(s, mpistore__or_u32(&s->core->rma, t, base, &bits_or));
    MT_OK(s, mpistore__flush(&s->core->rma,
                             t)); /* accumulates of one origin to one target are ordered; */
    MT_OK(s, mpistore__and_u32(&s->core->rma, t, base, &bits_and)); /* flushed apart all the same */
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    EXPECT_COUNTS(s, 2, 2, 8);
    const uint32_t second = 7;
    MT_OK(s, mpistore__replace_u32(&s->core->rma, t, base + 4, &second));
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    MT_OK(s,
          mpistore__read_u32s(&s->core->rma, t, base, got32, 2)); /* two elements: still one call */
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    EXPECT_COUNTS(s, 2, 2, 4 + 8);
    assert_int_equal(got32[0], (0x12345678u | 0xFF00u) & 0xFFFF0FFFu);
    assert_int_equal(got32[1], 7);

    const uint32_t want = got32[0], desired = 99, wrong = 1;
    uint32_t result = 0;
    MT_OK(s, mpistore__cas_u32(&s->core->rma, t, base, &desired, &wrong,
                               &result)); /* mismatch: unchanged */
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    assert_int_equal(result, want);
    MT_OK(s,
          mpistore__cas_u32(&s->core->rma, t, base, &desired, &want, &result)); /* match: swapped */
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    assert_int_equal(result, want);
    EXPECT_COUNTS(s, 2, 2, 8);

    const uint64_t u64 = 0x0123456789ABCDEFull;
    uint64_t got64[1] = {0};
    MT_OK(s, mpistore__replace_u64(&s->core->rma, t, base + 8, &u64));
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    MT_OK(s, mpistore__read_u64(&s->core->rma, t, base + 8, &got64[0]));
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    assert_true(got64[0] == u64);
    got64[0] = 0;
    MT_OK(s, mpistore__read_u64s(&s->core->rma, t, base + 8, got64, 1));
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    assert_true(got64[0] == u64);
    EXPECT_COUNTS(s, 3, 3, 24);

    const int64_t i64 = -5, delta = 12;
    int64_t prev = 0, now = 0;
    MT_OK(s, mpistore__replace_i64(&s->core->rma, t, base + 16, &i64));
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    MT_OK(s, mpistore__add_i64(&s->core->rma, t, base + 16, &delta));
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    MT_OK(s, mpistore__fao_i64(&s->core->rma, t, base + 16, &delta,
                               &prev)); /* returns the value before */
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    MT_OK(s, mpistore__read_i64(&s->core->rma, t, base + 16, &now));
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    EXPECT_COUNTS(s, 4, 4, 32);
    assert_int_equal(prev, 7);
    assert_int_equal(now, 19);

    unsigned char bytes[SCRATCH];
    memset(bytes, 0xAB, sizeof bytes);
    MT_OK(s, mpistore__rget(&s->core->rma, t, base, bytes, 24)); /* the three words above, raw */
    MT_OK(s, mpistore__flush(&s->core->rma, t));
    EXPECT_COUNTS(s, 1, 1, 24);
    uint32_t w0;
    uint64_t w8;
    int64_t w16;
    memcpy(&w0, bytes, 4);
    memcpy(&w8, bytes + 8, 8);
    memcpy(&w16, bytes + 16, 8);
    assert_int_equal(w0, 99);
    assert_true(w8 == u64);
    assert_int_equal(w16, 19);
    assert_int_equal(bytes[24], 0xAB); /* nothing beyond len */
}

/* Which flush counts how many round trips. */
static void flushes(mpistore_t *s)
{
    int next = (mt_rank + 1) % mt_size;
    st_reset(s);
    MT_OK(s, mpistore__flush(&s->core->rma, next));
    EXPECT_COUNTS(s, 0, 1, 0);
    MT_OK(s,
          mpistore__flush(&s->core->rma, mt_rank)); /* through the counted path: one round trip */
    EXPECT_COUNTS(s, 0, 1, 0);
    MT_OK(s, mpistore__flush_self(&s->core->rma)); /* this rank's own window: not a round trip */
    EXPECT_COUNTS(s, 0, 0, 0);
    MT_OK(s, mpistore__flush2(&s->core->rma, mt_rank, next));
    EXPECT_COUNTS(s, 0, 1, 0);
    MT_OK(s, mpistore__flush2(&s->core->rma, next, next));
    EXPECT_COUNTS(s, 0, 1, 0);
    MT_OK(s, mpistore__flush_all(&s->core->rma)); /* every rank, one by one: one wait */
    EXPECT_COUNTS(s, 0, 1, 0);
    const int ranks[2] = {next, mt_rank};
    MT_OK(s, mpistore__flush_ranks(&s->core->rma, ranks, 2));
    EXPECT_COUNTS(s, 0, 1, 0);
    MT_OK(s, mpistore__flush_ranks(&s->core->rma, NULL, (size_t)mt_size));
    EXPECT_COUNTS(s, 0, 1, 0);
    /* a primitive on this rank's own window completed by mpistore__flush_self */
    const uint32_t v = 0xC0FFEEu;
    uint32_t got = 0;
    MT_OK(s, mpistore__replace_u32(&s->core->rma, mt_rank, scratch(s, mt_rank) + 32, &v));
    MT_OK(s, mpistore__flush_self(&s->core->rma));
    MT_OK(s, mpistore__read_u32s(&s->core->rma, mt_rank, scratch(s, mt_rank) + 32, &got, 1));
    MT_OK(s, mpistore__flush_self(&s->core->rma));
    EXPECT_COUNTS(s, 2, 0, 8);
    assert_int_equal(got, v);
}

/* A deadline scope that completes normally: the same counts, the values
 * land in the caller's buffers at the flush, mpistore__rq_late() stays -1, the
 * deadline is restored (scopes nest). */
static void scope_completes(mpistore_t *s)
{
    int next = (mt_rank + 1) % mt_size;
    size_t base = scratch(s, mt_rank);
    const uint64_t v = 0xFEEDFACECAFEBEEFull;
    MT_OK(s, mpistore__replace_u64(&s->core->rma, next, base + 40, &v));
    MT_OK(s, mpistore__flush(&s->core->rma, next));
    st_reset(s);
    assert_true(s->core->rma.rq.deadline == 0);
    assert_int_equal(mpistore__rq_late(&s->core->rma.rq), -1);

    double outer = mpistore__rq_begin(&s->core->rma.rq, mpistore__deadline(60));
    assert_true(outer == 0);
    if (s->core->rma.rq.use)
        assert_true(s->core->rma.rq.deadline > 0 && isfinite(s->core->rma.rq.deadline));
    double scoped = s->core->rma.rq.deadline;
    uint64_t got = 0, raw = 0;
    MT_OK(s, mpistore__read_u64(&s->core->rma, next, base + 40, &got));
    MT_OK(s, mpistore__rget(&s->core->rma, next, base + 40, &raw, 8));
    double inner =
        mpistore__rq_begin(&s->core->rma.rq, mpistore__deadline(0)); /* no deadline: INFINITY */
    assert_true(inner == scoped);
    if (s->core->rma.rq.use)
        assert_true(isinf(s->core->rma.rq.deadline));
    int64_t cnt = -1;
    MT_OK(s, mpistore__read_i64(&s->core->rma, next, MS_OFF_COUNT, &cnt));
    MT_OK(s, mpistore__flush(&s->core->rma, next));
    mpistore__rq_end(&s->core->rma.rq, inner);
    assert_true(s->core->rma.rq.deadline == scoped);
    EXPECT_COUNTS(s, 3, 1, 24);
    assert_true(got == v);
    assert_true(raw == v);
    assert_int_equal(cnt, 0); /* nobody has inserted a key */
    MT_OK(s, mpistore__read_u64(&s->core->rma, next, base + 40,
                                &got)); /* a second batch in the scope */
    MT_OK(s, mpistore__flush2(&s->core->rma, next, mt_rank));
    EXPECT_COUNTS(s, 1, 1, 8);
    assert_true(got == v);
    mpistore__rq_end(&s->core->rma.rq, outer);
    assert_true(s->core->rma.rq.deadline == 0);
    assert_int_equal(mpistore__rq_late(&s->core->rma.rq), -1);
    assert_int_equal(s->core->rma.rq.nrq, 0); /* nothing left in flight */
    assert_null(s->core->rma.rq.orphans);
}

/* The path a store takes (docs/design.md, "One node"): every rank's part of
 * the window mapped here exactly on one node without MPISTORE_SHM=0, unless
 * the cell forces a one-sided component without shared windows (it sets
 * MPISTORE_TEST_WINDOW=mpi: the fallback); and then truly shared: a word the
 * next rank wrote through the RMA layer is in its part as this process sees
 * it. */
static void rma_path(void **state)
{
    (void)state;
    mpistore_t *s = mt_open(NULL);
    const mpistore__wins_t *w = &s->core->rma.w;
    const char *cell = getenv("MPISTORE_TEST_WINDOW");
    int forced_mpi = cell && strcmp(cell, "mpi") == 0;
    int want = mt_one_node_path() && !forced_mpi;
    if ((w->peer != NULL) != want)
        fail_msg("rank %d: the window is %s, expected %s", mt_rank,
                 w->peer ? "shared memory" : "MPI's", want ? "shared memory" : "MPI's");
    int next = (mt_rank + 1) % mt_size, prev = (mt_rank + mt_size - 1) % mt_size;
    const uint64_t v = 0xABCD0000u + (uint64_t)mt_rank;
    MT_OK(s, mpistore__replace_u64(&s->core->rma, next, scratch(s, mt_rank) + 48, &v));
    MT_OK(s, mpistore__flush(&s->core->rma, next));
    mt_barrier();
    if (w->peer) {
        assert_ptr_equal(w->peer[mt_rank], w->base);
        uint64_t seen =
            0; /* what prev wrote into this rank's part, and into next's by next's map */
        memcpy(&seen, w->base + scratch(s, prev) + 48, 8);
        assert_true(seen == 0xABCD0000u + (uint64_t)prev);
        memcpy(&seen, w->peer[next] + scratch(s, mt_rank) + 48, 8);
        assert_true(seen == v);
    }
    mt_barrier();
    mt_close(s);
}

static void rma_blocking_reads(void **state)
{
    (void)state;
    mpistore_t *s = open_with_requests("0");
    primitives_on(s, mt_rank);
    primitives_on(s, (mt_rank + 1) % mt_size);
    flushes(s);
    scope_completes(s);
    mt_barrier();
    mt_close(s);
}

static void rma_request_reads(void **state)
{
    (void)state;
    mpistore_t *s = open_with_requests("1");
    primitives_on(s, mt_rank);
    primitives_on(s, (mt_rank + 1) % mt_size);
    flushes(s);
    scope_completes(s);
    /* the primitives inside a scope: reads are requests now, same counts */
    double saved = mpistore__rq_begin(&s->core->rma.rq, mpistore__deadline(60));
    primitives_on(s, (mt_rank + 1) % mt_size);
    mpistore__rq_end(&s->core->rma.rq, saved);
    assert_int_equal(mpistore__rq_late(&s->core->rma.rq), -1);
    mt_barrier();
    mt_close(s);
}

/* replicas = 1: a mirrored write or fetch-and-op to this rank's own window
 * leaves the own word unchanged until the flush that lands its copy on the
 * mirror rank, then changes it in the same flush; the counts are those of
 * the two operations (primary, copy) and one round trip (rma.h; design.md,
 * "Own words after their copies"). */
static void rma_replica_own_words(void **state)
{
    (void)state;
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.replicas = 1;
    mpistore_t *s = mt_open(&o);
    mpistore__rma_t *r = &s->core->rma;
    const mpistore__layout_t *y = &s->core->lay;
    int me = mt_rank, m = mpistore__mirror_of(r, me);
    size_t slot = y->nphys - 1 - (size_t)me; /* no key lands there in this test */
    size_t doff = mpistore__desc_off(y, slot), coff = mpistore__cnt_off(y, slot);
    volatile uint64_t *dword = (volatile uint64_t *)(r->w.base + doff);
    volatile int64_t *cword = (volatile int64_t *)(r->w.base + coff);
    assert_true(*dword == 0 && *cword == 0);
    mt_barrier();
    st_reset(s);
    const uint64_t d = 0x5EED0000CAFEull + (uint64_t)me;
    const int64_t five = 5;
    int64_t before = -1;
    MT_OK(s, mpistore__replace_u64(r, me, doff, &d));
    MT_OK(s, mpistore__fao_i64(r, me, coff, &five, &before));
    EXPECT_COUNTS(s, 4, 0, 32); /* two words and their two copies */
    assert_int_equal(r->mir.nown, 2);
    assert_true(*dword == 0 && *cword == 0); /* held back: the copies first */
    MT_OK(s, mpistore__mirror_flush(r));
    EXPECT_COUNTS(s, 0, 1, 0);
    assert_int_equal(r->mir.nown, 0);
    assert_true(*dword == d && *cword == 5);
    assert_int_equal(before, 0); /* the fetch-and-op's result, set by that flush */
    /* the copies on the mirror rank (m = me at one rank) */
    uint64_t md = 0;
    int64_t mc = 0;
    MT_OK(s, mpistore__read_u64s(r, m, doff + y->mirror, &md, 1));
    MT_OK(s, mpistore__read_i64(r, m, coff + y->mirror, &mc));
    MT_OK(s, mpistore__flush(r, m));
    assert_true(md == d);
    assert_int_equal(mc, 5);
    /* flush_self lands held-back words too (after their copies) */
    mt_barrier();
    MT_OK(s, mpistore__replace_u64(r, me, doff, &(uint64_t){0}));
    MT_OK(s, mpistore__fao_i64(r, me, coff, &(int64_t){-5}, &before));
    MT_OK(s, mpistore__flush_self(r));
    assert_true(*dword == 0 && *cword == 0 && before == 5);
    mt_barrier();
    mt_close(s);
}

/* The clock helpers: no deadline is +inf, a past deadline has expired. */
static void rma_deadlines(void **state)
{
    (void)state;
    assert_true(isinf(mpistore__deadline(0)));
    double t0 = mpistore__now(), d = mpistore__deadline(3600);
    assert_true(d >= t0 + 3600);
    assert_false(mpistore__expired(d));
    assert_true(mpistore__expired(t0));
    assert_true(mpistore__now() >= t0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(rma_path),
    cmocka_unit_test(rma_blocking_reads),
    cmocka_unit_test(rma_request_reads),
    cmocka_unit_test(rma_deadlines),
    cmocka_unit_test(rma_replica_own_words),
};

MT_MAIN("rma", tests)
