/* Elastic helpers: barrier, synchronize, get_all, swap_timeout and the
 * missing-rank diagnosis, with PyTorch's key names. */
#include "mpitest.h"

#include <math.h>
#include <mpi.h>
#include <mpistore_elastic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S mt_store

static void key_of(char *buf, size_t n, const char *prefix, const char *suffix)
{
    snprintf(buf, n, "%s%s", prefix, suffix);
}

static void elastic_barrier_keys_and_arrival(void **state)
{
    (void)state;
    const char *p = mt_unique("barrier");
    char k[160], arrived[160];
    snprintf(arrived, sizeof arrived, "%s-arrived/%d", p, mt_rank);
    MT_OK(S, mpistore_set(S, arrived, "1", 1)); /* before entering */
    MT_OK(S, mpistore_barrier(S, mt_rank, mt_size, p, 30.0));
    /* nobody leaves before everyone entered */
    for (int r = 0; r < mt_size; r++) {
        bool all = false;
        snprintf(arrived, sizeof arrived, "%s-arrived/%d", p, r);
        const char *keys[] = {arrived};
        MT_OK(S, mpistore_check(S, keys, 1, &all));
        if (!all)
            fail_msg("rank %d left the barrier before rank %d entered", mt_rank, r);
    }
    char want[16];
    snprintf(want, sizeof want, "%d", mt_size);
    key_of(k, sizeof k, p, "/num_members");
    mt_expect_str(S, k, want);
    key_of(k, sizeof k, p, "/last_member");
    mt_expect_str(S, k, "<val_ignored>");
    mt_barrier();
}

static void elastic_barrier_nonblocking_returns_key(void **state)
{
    (void)state;
    const char *p = mt_unique("nb");
    char *last = NULL, want[160];
    MT_OK(S, mpistore_barrier_nonblocking(S, mt_size, p, &last));
    key_of(want, sizeof want, p, "/last_member");
    assert_string_equal(last, want);
    mt_expect_str(S, last, "<val_ignored>"); /* blocks until the last member */
    mpistore_free(last);
    mt_barrier();
}

static void elastic_hundred_barriers(void **state)
{
    (void)state;
    const char *base = mt_unique("loop");
    char p[128];
    for (int i = 0; i < 100; i++) {
        snprintf(p, sizeof p, "%s/%d", base, i);
        MT_OK(S, mpistore_barrier(S, mt_rank, mt_size, p, 60.0));
    }
    mt_barrier();
}

static void check_sync(const char *p, const void *mine, size_t len,
                       size_t (*make)(int, unsigned char *))
{
    void **vals = calloc((size_t)mt_size, sizeof *vals);
    size_t *lens = calloc((size_t)mt_size, sizeof *lens);
    static unsigned char want[65536 + 64];
    MT_OK(S, mpistore_synchronize(S, mine, len, mt_rank, mt_size, p, 60.0, vals, lens));
    for (int r = 0; r < mt_size; r++) { /* every rank's data, in rank order */
        size_t wl = make(r, want);
        assert_int_equal(lens[r], wl);
        if (wl)
            assert_memory_equal(vals[r], want, wl);
        assert_int_equal(((unsigned char *)vals[r])[wl], 0);
        mpistore_free(vals[r]);
    }
    free(vals);
    free(lens);
}

static size_t make_small(int r, unsigned char *buf)
{
    return (size_t)sprintf((char *)buf, "rank %d says hello", r);
}
static size_t make_empty(int r, unsigned char *buf)
{
    (void)r;
    (void)buf;
    return 0;
}
static size_t make_binary(int r, unsigned char *buf)
{
    for (int i = 0; i < 40; i++)
        buf[i] = (unsigned char)((i * 31 + r) % 256 * (i % 3 != 0)); /* NULs inside */
    return 40;
}
static size_t make_big(int r, unsigned char *buf)
{
    for (size_t i = 0; i < 65536; i++)
        buf[i] = (unsigned char)(i * 7 + (size_t)r * 13);
    return 65536;
}

static void elastic_synchronize_rank_order(void **state)
{
    (void)state;
    static unsigned char mine[65536 + 64];
    size_t (*makers[])(int, unsigned char *) = {make_small, make_empty, make_binary, make_big};
    for (int m = 0; m < 4; m++) {
        size_t len = makers[m](mt_rank, mine);
        check_sync(mt_unique("sync"), mine, len, makers[m]);
    }
    mt_barrier();
}

static void elastic_get_all_rank0_waits_for_finished(void **state)
{
    (void)state;
    const char *p = mt_unique("getall");
    char k[160], v[32];
    snprintf(k, sizeof k, "%s%d", p, mt_rank);
    snprintf(v, sizeof v, "v%d", mt_rank);
    MT_OK(S, mpistore_set(S, k, v, strlen(v)));
    if (mt_rank != 0) { /* make rank 0 wait for us (sleeping, not spinning) */
        struct timespec ts = {0, 200 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
    void **vals = calloc((size_t)mt_size, sizeof *vals);
    size_t *lens = calloc((size_t)mt_size, sizeof *lens);
    MT_OK(S, mpistore_get_all(S, mt_rank, p, mt_size, vals, lens));
    if (mt_rank == 0) { /* every member has done its "finished" barrier */
        int64_t n = 0;
        char fin[160];
        snprintf(fin, sizeof fin, "%s/finished/num_members", p);
        MT_OK(S, mpistore_add(S, fin, 0, &n));
        assert_int_equal(n, mt_size);
    }
    for (int r = 0; r < mt_size; r++) {
        snprintf(v, sizeof v, "v%d", r);
        assert_int_equal(lens[r], strlen(v));
        assert_memory_equal(vals[r], v, lens[r]);
        mpistore_free(vals[r]);
    }
    free(vals);
    free(lens);
    mt_barrier();
}

static void elastic_group_differs_from_communicator(void **state)
{
    (void)state;
    if (mt_size < 2)
        skip();
    int ws = mt_size - 1; /* e.g. 4 MPI ranks: an elastic group of 3, ranks 0..2 */
    const char *p = mt_unique("subgroup");
    if (mt_rank < ws) {
        MT_OK(S, mpistore_barrier(S, mt_rank, ws, p, 30.0));
        char k[160], want[16];
        snprintf(want, sizeof want, "%d", ws);
        key_of(k, sizeof k, p, "/num_members");
        mt_expect_str(S, k, want);
        void **vals = calloc((size_t)ws, sizeof *vals);
        size_t *lens = calloc((size_t)ws, sizeof *lens);
        char mine[16];
        snprintf(mine, sizeof mine, "m%d", mt_rank);
        MT_OK(S, mpistore_synchronize(S, mine, strlen(mine), mt_rank, ws, mt_unique("subsync"),
                                      30.0, vals, lens));
        for (int r = 0; r < ws; r++) {
            snprintf(mine, sizeof mine, "m%d", r);
            assert_memory_equal(vals[r], mine, strlen(mine));
            mpistore_free(vals[r]);
        }
        free(vals);
        free(lens);
    } else {
        (void)mt_unique("subsync"); /* keep the name counter in step */
    }
    mt_barrier();
}

static void elastic_missing_rank_diagnosis(void **state)
{
    (void)state;
    /* world_size = size (>= 2): the last rank never arrives.  At one rank the
     * elastic group has 2 members and member 1 never exists. */
    int ws = mt_size > 1 ? mt_size : 2, missing = ws - 1;
    const char *p = mt_unique("job/step7");
    MT_OK(S, mpistore_set_timeout(S, 42.0));
    if (mt_rank != missing) {
        double t0 = MPI_Wtime();
        MT_ERR(S, MPISTORE_ETIMEDOUT, mpistore_barrier(S, mt_rank, ws, p, 1.0));
        double took = MPI_Wtime() - t0;
        if (took < 1.0 || took > 10 * 1.0) /* late: 10x the timeout */
            fail_msg("rank %d: barrier with a 1 s timeout returned after %.2f s", mt_rank, took);
        const char *msg = mpistore_errmsg(S);
        char want[200];
        snprintf(want, sizeof want, "barrier timeout on rank %d for key prefix '%s' after 1.",
                 mt_rank, p);
        if (!strstr(msg, want))
            fail_msg("rank %d: message '%s' lacks '%s'", mt_rank, msg, want);
        snprintf(want, sizeof want, "(world_size=%d, missing_ranks=[%d])", ws, missing);
        if (mt_rank == 0 && !strstr(msg, want)) /* exactly the missing rank */
            fail_msg("rank 0: message '%s' lacks '%s'", msg, want);
        assert_true(mpistore_timeout(S) == 42.0); /* restored on failure */
        char trace[160];
        snprintf(trace, sizeof trace, "%s%d/TRACE", p, mt_rank);
        mt_expect_str(S, trace, "<val_ignored>");
    }
    MT_OK(S, mpistore_set_timeout(S, 300.0));
    mt_barrier();
}

/* Every absent member is listed, not only the first. */
static void elastic_diagnosis_lists_every_missing_member(void **state)
{
    (void)state;
    int ws = mt_size + 2; /* members mt_size and mt_size+1 never exist */
    const char *p = mt_unique("twomissing");
    MT_ERR(S, MPISTORE_ETIMEDOUT, mpistore_barrier(S, mt_rank, ws, p, 0.5));
    char want[64];
    snprintf(want, sizeof want, "missing_ranks=[%d, %d])", mt_size, mt_size + 1);
    if (!strstr(mpistore_errmsg(S), want)) /* rank 0 found them, the others read its gate */
        fail_msg("rank %d: message '%s' lacks '%s'", mt_rank, mpistore_errmsg(S), want);
    mt_barrier();
}

static void elastic_timeout_restored(void **state)
{
    (void)state;
    MT_OK(S, mpistore_set_timeout(S, 42.0));
    MT_OK(S, mpistore_barrier(S, mt_rank, mt_size, mt_unique("tb"), 5.0));
    assert_true(mpistore_timeout(S) == 42.0);
    void **vals = calloc((size_t)mt_size, sizeof *vals);
    size_t *lens = calloc((size_t)mt_size, sizeof *lens);
    MT_OK(S, mpistore_synchronize(S, "x", 1, mt_rank, mt_size, mt_unique("ts"), 5.0, vals, lens));
    assert_true(mpistore_timeout(S) == 42.0);
    for (int r = 0; r < mt_size; r++)
        mpistore_free(vals[r]);
    /* failure: a synchronize whose other members never come */
    MT_ERR(S, MPISTORE_ETIMEDOUT,
           mpistore_synchronize(S, "x", 1, 0, mt_size + 1, mt_unique("tf") /* differs per call */,
                                0.2, vals, lens));
    assert_true(mpistore_timeout(S) == 42.0);
    MT_ERR(S, MPISTORE_ETIMEDOUT, mpistore_barrier(S, -1, mt_size + 1, mt_unique("tbf"), 0.2));
    assert_true(mpistore_timeout(S) == 42.0);
    double prev = 0;
    MT_OK(S, mpistore_swap_timeout(S, 7.0, &prev));
    assert_true(prev == 42.0 && mpistore_timeout(S) == 7.0);
    MT_OK(S, mpistore_swap_timeout(S, 300.0, NULL));
    free(vals);
    free(lens);
    mt_barrier();
}

/* Waiting members watch the num_members counter; when the last member
 * turns it into an ordinary value before arriving (append ""), the watch
 * ends and they wait for last_member instead.  And a num_members that is a
 * string from the start (set "0"): nobody can watch, everybody waits for
 * last_member. */
static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void elastic_barrier_when_the_counter_changes(void **state)
{
    (void)state;
    if (mt_size < 2)
        skip();
    const char *p = mt_unique("rewrite");
    char num[160], want[16];
    key_of(num, sizeof num, p, "/num_members");
    snprintf(want, sizeof want, "%d", mt_size);
    if (mt_rank == 1) { /* arrive last, after converting the counter */
        for (;;) {
            void *v = NULL;
            size_t len = 0;
            MT_OK(S, mpistore_get(S, num, &v, &len)); /* blocks until the first add */
            long n = strtol(v, NULL, 10);
            mpistore_free(v);
            if (n == mt_size - 1)
                break;
            sleep_ms(1);
        }
        sleep_ms(20); /* let the others watch */
        MT_OK(S, mpistore_append(S, num, "", 0));
    }
    MT_OK(S, mpistore_barrier(S, mt_rank, mt_size, p, 30.0));
    mt_expect_str(S, num, want);

    const char *q = mt_unique("string");
    key_of(num, sizeof num, q, "/num_members");
    if (mt_rank == 0)
        MT_OK(S, mpistore_set(S, num, "0", 1));
    mt_barrier();
    MT_OK(S, mpistore_barrier(S, mt_rank, mt_size, q, 30.0));
    mt_expect_str(S, num, want);
    mt_barrier();
    /* the same prefix again: every add returns more than world_size, nobody
     * sets last_member, everybody finds the one already there (as PyTorch) */
    MT_OK(S, mpistore_barrier(S, mt_rank, mt_size, p, 30.0));
    mt_barrier();
    snprintf(want, sizeof want, "%d", 2 * mt_size);
    key_of(num, sizeof num, p, "/num_members");
    mt_expect_str(S, num, want);
    mt_barrier();
}

/* c10d's Store.barrier as TCPStore: one counter key; nobody returns before
 * the last caller arrived (the last leaves a mark first); the key reused by
 * raising world_size; a timeout keeps the add; a key that stops being that
 * counter while members wait (rank 1 sets the final count as a string) is
 * read as a decimal value instead. */
static void elastic_store_barrier(void **state)
{
    (void)state;
    const char *p = mt_unique("sb");
    char k[160], mark[160], want[32];
    for (int g = 1; g <= 3; g++) { /* one key, the g-th barrier of mt_size callers */
        snprintf(mark, sizeof mark, "%s-mark/%d", p, g);
        if (mt_rank == mt_size - 1)
            MT_OK(S, mpistore_set(S, mark, "1", 1));
        MT_OK(S, mpistore_store_barrier(S, p, (int64_t)g * mt_size, 30.0));
        bool all = false;
        const char *keys[] = {mark};
        MT_OK(S, mpistore_check(S, keys, 1, &all));
        if (!all)
            fail_msg("rank %d left barrier %d before the last member arrived", mt_rank, g);
    }
    mt_barrier();
    snprintf(want, sizeof want, "%d", 3 * mt_size);
    mt_expect_str(S, p, want);
    bool any = true;
    key_of(k, sizeof k, p, "/num_members");
    const char *nm[] = {k};
    MT_OK(S, mpistore_check(S, nm, 1, &any));
    assert_false(any); /* nothing but the one key */

    /* alone: a timeout, the add stays */
    snprintf(k, sizeof k, "%s-alone/%d", p, mt_rank);
    MT_ERR(S, MPISTORE_ETIMEDOUT, mpistore_store_barrier(S, k, 2, 0.1));
    if (!strstr(mpistore_errmsg(S), "1 arrived"))
        fail_msg("timeout message: %s", mpistore_errmsg(S));
    mt_expect_str(S, k, "1");
    /* a string is no count: add's ENOTINT, nothing changed */
    snprintf(k, sizeof k, "%s-text/%d", p, mt_rank);
    MT_OK(S, mpistore_set(S, k, "abc", 3));
    MT_ERR(S, MPISTORE_ENOTINT, mpistore_store_barrier(S, k, 1, 1.0));
    mt_expect_str(S, k, "abc");

    if (mt_size >= 2) { /* the counter replaced by a string while members wait */
        const char *q = mt_unique("sbset");
        if (mt_rank == 1) {
            for (;;) { /* until every other member has added */
                void *v = NULL;
                size_t len = 0;
                MT_OK(S, mpistore_get(S, q, &v, &len));
                long n = strtol(v, NULL, 10);
                mpistore_free(v);
                if (n == mt_size - 1)
                    break;
                sleep_ms(1);
            }
            sleep_ms(20); /* let them watch */
            snprintf(want, sizeof want, "%d", mt_size + 1);
            MT_OK(S, mpistore_set(S, q, want, strlen(want)));
        } else {
            MT_OK(S, mpistore_store_barrier(S, q, mt_size + 1, 30.0));
        }
    }
    mt_barrier();
}

static void elastic_invalid_arguments(void **state)
{
    (void)state;
    int64_t before = 0, after = 0;
    void *vals[2];
    size_t lens[2];
    char *last = (char *)0x1;
    double prev = -7;
    mt_barrier();
    MT_OK(S, mpistore_num_keys(S, &before));
    mt_barrier();
    MT_OK(S, mpistore_set_timeout(S, 42.0));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_barrier(S, 0, 0, "p", 1.0)); /* world_size < 1 */
    MT_ERR(S, MPISTORE_EINVAL, mpistore_barrier(S, 2, 2, "p", 1.0)); /* rank >= world */
    MT_ERR(S, MPISTORE_EINVAL, mpistore_barrier(S, 0, 2, "", 1.0));  /* empty prefix */
    MT_ERR(S, MPISTORE_EINVAL, mpistore_barrier(S, 0, 2, NULL, 1.0));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_barrier(S, 0, 2, "p", -1.0));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_barrier_nonblocking(S, 0, "p", &last));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_barrier_nonblocking(S, 2, "", &last));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_barrier_nonblocking(S, 2, "p", NULL));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_get_all(S, 0, "p", 0, vals, lens));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_get_all(S, 2, "p", 2, vals, lens));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_get_all(S, -1, "p", 2, vals, lens));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_get_all(S, 0, "", 2, vals, lens));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_get_all(S, 0, "p", 2, NULL, lens));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_synchronize(S, "d", 1, 0, 0, "p", 1.0, vals, lens));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_synchronize(S, "d", 1, 3, 2, "p", 1.0, vals, lens));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_synchronize(S, "d", 1, 0, 2, "", 1.0, vals, lens));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_synchronize(S, NULL, 1, 0, 2, "p", 1.0, vals, lens));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_synchronize(S, "d", 1, 0, 2, "p", 1.0, vals, NULL));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_synchronize(S, "d", 1, 0, 2, "p", -3.0, vals, lens));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_swap_timeout(S, -1.0, &prev));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_store_barrier(S, "p", 0, 1.0)); /* world_size < 1 */
    MT_ERR(S, MPISTORE_EINVAL, mpistore_store_barrier(S, "p", 1, -3.0));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_store_barrier(S, "p", 1, NAN));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_store_barrier(S, "", 1, 1.0));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_store_barrier(S, NULL, 1, 1.0));
    assert_int_equal(mpistore_store_barrier(NULL, "p", 1, 1.0), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_barrier(NULL, 0, 1, "p", 1.0), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_swap_timeout(NULL, 1.0, &prev), -MPISTORE_EINVAL);
    assert_true(prev == -7);
    assert_ptr_equal(last, (char *)0x1);
    assert_true(mpistore_timeout(S) == 42.0); /* nothing changed */
    mt_barrier();
    MT_OK(S, mpistore_num_keys(S, &after));
    assert_int_equal(after, before);
    MT_OK(S, mpistore_set_timeout(S, 300.0));
    mt_barrier();
}

static const struct CMUnitTest tests[] = {
    MT_TEST(elastic_barrier_keys_and_arrival),
    MT_TEST(elastic_barrier_nonblocking_returns_key),
    MT_TEST(elastic_hundred_barriers),
    MT_TEST(elastic_synchronize_rank_order),
    MT_TEST(elastic_get_all_rank0_waits_for_finished),
    MT_TEST(elastic_group_differs_from_communicator),
    MT_TEST(elastic_missing_rank_diagnosis),
    MT_TEST(elastic_diagnosis_lists_every_missing_member),
    MT_TEST(elastic_timeout_restored),
    MT_TEST(elastic_invalid_arguments),
    MT_TEST(elastic_barrier_when_the_counter_changes),
    MT_TEST(elastic_store_barrier),
};

MT_MAIN("elastic", tests)
