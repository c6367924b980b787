/* Every row of the store semantics table (docs/store-semantics.md). */
#include "mpitest.h"
#include "mpistore_version.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S mt_store

/* rank 0 writes, everyone reads after a barrier */
static void semantics_set_get_overwrite(void **state)
{
    (void)state;
    const char *k = mt_unique("sg");
    if (mt_rank == 0)
        MT_OK(S, mpistore_set(S, k, "one", 3));
    mt_barrier();
    mt_expect_str(S, k, "one");
    mt_barrier();
    if (mt_rank == mt_size - 1)
        MT_OK(S, mpistore_set(S, k, "second value", 12));
    mt_barrier();
    mt_expect_str(S, k, "second value");
    mt_barrier();
}

static void semantics_every_rank_sets_own_key(void **state)
{
    (void)state;
    const char *base = mt_unique("own");
    char k[128], v[64];
    snprintf(k, sizeof k, "%s/%d", base, mt_rank);
    snprintf(v, sizeof v, "value of rank %d", mt_rank);
    MT_OK(S, mpistore_set(S, k, v, strlen(v)));
    for (int r = 0; r < mt_size; r++) {
        snprintf(k, sizeof k, "%s/%d", base, r);
        snprintf(v, sizeof v, "value of rank %d", r);
        mt_expect_str(S, k, v); /* blocks until rank r has set it */
    }
    mt_barrier();
}

static void semantics_empty_and_binary_values(void **state)
{
    (void)state;
    const char *ke = mt_unique("empty");
    const char *kb = mt_unique("binary");
    unsigned char bin[300];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)(i * 7); /* contains NUL bytes */
    if (mt_rank == 0) {
        MT_OK(S, mpistore_set(S, ke, NULL, 0));
        MT_OK(S, mpistore_set(S, kb, bin, sizeof bin));
    }
    mt_barrier();
    void *v = NULL;
    size_t len = 99;
    MT_OK(S, mpistore_get(S, ke, &v, &len));
    assert_int_equal(len, 0);
    assert_non_null(v);
    assert_int_equal(((char *)v)[0], 0);
    mpistore_free(v);
    MT_OK(S, mpistore_get(S, kb, &v, &len));
    assert_int_equal(len, sizeof bin);
    assert_memory_equal(v, bin, sizeof bin);
    assert_int_equal(((unsigned char *)v)[len], 0);
    mpistore_free(v);
    bool all = false;
    const char *keys[] = {ke, kb};
    MT_OK(S, mpistore_check(S, keys, 2, &all));
    assert_true(all);
    mt_barrier();
}

static void semantics_get_blocks_until_later_set(void **state)
{
    (void)state;
    const char *k = mt_unique("later");
    if (mt_size == 1) { /* nobody else can set it: it must time out */
        double t0 = MPI_Wtime();
        MT_OK(S, mpistore_set_timeout(S, 0.2));
        void *v = NULL;
        size_t len = 0;
        MT_ERR(S, MPISTORE_ETIMEDOUT, mpistore_get(S, k, &v, &len));
        assert_true(MPI_Wtime() - t0 >= 0.19);
        MT_OK(S, mpistore_set_timeout(S, 300));
        return;
    }
    /* rank 0 sets the key only after every other rank is blocked in get() */
    char waiting[128];
    snprintf(waiting, sizeof waiting, "%s/waiting/%d", k, mt_rank);
    if (mt_rank == 0) {
        for (int r = 1; r < mt_size; r++) {
            snprintf(waiting, sizeof waiting, "%s/waiting/%d", k, r);
            const char *keys[] = {waiting};
            MT_OK(S, mpistore_wait(S, keys, 1, MPISTORE_TIMEOUT_DEFAULT));
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        MT_OK(S, mpistore_set(S, k, "late", 4));
    } else {
        double t0 = MPI_Wtime();
        MT_OK(S, mpistore_set(S, waiting, "1", 1));
        mt_expect_str(S, k, "late"); /* blocks until rank 0's set */
        double took = MPI_Wtime() - t0;
        if (took < 0.2)
            fail_msg("rank %d: get returned after %.3f s, before the set", mt_rank, took);
    }
    mt_barrier();
}

static void semantics_add(void **state)
{
    (void)state;
    const char *k = mt_unique("add");
    const char *kd = mt_unique("add-dec");
    const char *kn = mt_unique("add-nonint");
    int64_t r = 0;
    if (mt_rank == 0) {
        MT_OK(S, mpistore_add(S, k, 6, &r)); /* missing: starts at 0 */
        assert_int_equal(r, 6);
        mt_expect_str(S, k, "6");
        MT_OK(S, mpistore_add(S, k, -10, &r));
        assert_int_equal(r, -4);
        mt_expect_str(S, k, "-4");
        MT_OK(S, mpistore_add(S, k, 0, &r)); /* atomic read */
        assert_int_equal(r, -4);
        MT_OK(S, mpistore_add(S, k, 4, NULL));
        mt_expect_str(S, k, "0");

        MT_OK(S, mpistore_set(S, kd, "41", 2)); /* a set decimal continues */
        MT_OK(S, mpistore_add(S, kd, 1, &r));
        assert_int_equal(r, 42);
        mt_expect_str(S, kd, "42");

        MT_OK(S, mpistore_set(S, kn, "4x2", 3));
        r = 77;
        MT_ERR(S, MPISTORE_ENOTINT, mpistore_add(S, kn, 1, &r));
        assert_int_equal(r, 77); /* output untouched */
        assert_non_null(strstr(mpistore_errmsg(S), kn));
        mt_expect_str(S, kn, "4x2"); /* value unchanged */
        MT_OK(S, mpistore_set(S, kn, "", 0));
        MT_ERR(S, MPISTORE_ENOTINT, mpistore_add(S, kn, 1, &r));
        mt_expect_str(S, kn, "");

        MT_OK(S, mpistore_set(S, kn, "9223372036854775807", 19));
        MT_ERR(S, MPISTORE_ENOTINT, mpistore_add(S, kn, 1, &r));
        mt_expect_str(S, kn, "9223372036854775807");
        MT_OK(S, mpistore_add(S, kn, -7, &r));
        assert_int_equal(r, INT64_MAX - 7);
        MT_OK(S, mpistore_set(S, kn, "-9223372036854775808", 20));
        MT_ERR(S, MPISTORE_ENOTINT, mpistore_add(S, kn, -1, &r));
        MT_OK(S, mpistore_set(S, kn, "99999999999999999999", 20)); /* out of int64 */
        MT_ERR(S, MPISTORE_ENOTINT, mpistore_add(S, kn, 1, &r));
    }
    mt_barrier();
    mt_expect_str(S, k, "0");
    mt_barrier();
}

static void expect_cas(const char *k, const char *exp, const char *des, const char *ret)
{
    void *cur = NULL;
    size_t len = 0;
    MT_OK(S, mpistore_compare_set(S, k, exp, strlen(exp), des, strlen(des), &cur, &len));
    if (len != strlen(ret) || memcmp(cur, ret, len) != 0)
        fail_msg("compare_set(%s, '%s', '%s') returned '%.*s', expected '%s'", k, exp, des,
                 (int)len, (char *)cur, ret);
    mpistore_free(cur);
}

static void semantics_compare_set_truth_table(void **state)
{
    (void)state;
    const char *k1 = mt_unique("cas-missing-empty");
    const char *k2 = mt_unique("cas-missing-nonempty");
    const char *k3 = mt_unique("cas-present");
    if (mt_rank == 0) {
        expect_cas(k1, "", "new", "new"); /* missing, expected empty: stored */
        mt_expect_str(S, k1, "new");
        expect_cas(k2, "x", "new", "x"); /* missing, expected non-empty: nothing */
        bool all = true;
        const char *keys[] = {k2};
        MT_OK(S, mpistore_check(S, keys, 1, &all));
        assert_false(all);
        MT_OK(S, mpistore_set(S, k3, "cur", 3));
        expect_cas(k3, "cur", "next", "next"); /* equal: stored */
        mt_expect_str(S, k3, "next");
        expect_cas(k3, "cur", "other", "next"); /* different: current returned */
        mt_expect_str(S, k3, "next");
        expect_cas(k3, "", "z", "next"); /* present, expected empty: differs */
        MT_OK(S, mpistore_set(S, k3, "", 0));
        expect_cas(k3, "", "filled", "filled"); /* present empty == expected empty */
        mt_expect_str(S, k3, "filled");
    }
    mt_barrier();
}

static void semantics_delete_check_num_keys(void **state)
{
    (void)state;
    const char *base = mt_unique("del");
    char k[128];
    int64_t before = 0, after = 0, end = 0;
    MT_OK(S, mpistore_num_keys(S, &before));
    mt_barrier();
    snprintf(k, sizeof k, "%s/%d", base, mt_rank);
    MT_OK(S, mpistore_set(S, k, "x", 1));
    mt_barrier();
    MT_OK(S, mpistore_num_keys(S, &after));
    assert_int_equal(after, before + mt_size);
    const char *keys[] = {k};
    bool all = false, deleted = false;
    MT_OK(S, mpistore_check(S, keys, 1, &all));
    assert_true(all);
    mt_barrier();
    MT_OK(S, mpistore_delete_key(S, k, &deleted));
    assert_true(deleted);
    MT_OK(S, mpistore_delete_key(S, k, &deleted));
    assert_false(deleted);
    MT_OK(S, mpistore_delete_key(S, k, NULL));
    MT_OK(S, mpistore_check(S, keys, 1, &all));
    assert_false(all);
    mt_barrier();
    MT_OK(S, mpistore_num_keys(S, &end));
    assert_int_equal(end, before);
    MT_OK(S, mpistore_check(S, NULL, 0, &all)); /* no keys: vacuously true */
    assert_true(all);
    char present_key[128];
    snprintf(present_key, sizeof present_key, "%s/present", base);
    mt_barrier(); /* everyone has counted before a key is added */
    if (mt_rank == 0)
        MT_OK(S, mpistore_set(S, present_key, "p", 1));
    mt_barrier();
    const char *mixed[] = {k, present_key}; /* a missing key first, then a present one */
    MT_OK(S, mpistore_check(S, mixed, 2, &all));
    assert_false(all);
    const char *mixed2[] = {present_key, k};
    MT_OK(S, mpistore_check(S, mixed2, 2, &all));
    assert_false(all);
    mt_barrier();
}

static void semantics_wait(void **state)
{
    (void)state;
    const char *a = mt_unique("wa"), *b = mt_unique("wb");
    const char *keys[] = {a, b};
    double t0 = MPI_Wtime();
    MT_ERR(S, MPISTORE_ETIMEDOUT, mpistore_wait(S, keys, 2, 0.2));
    double took = MPI_Wtime() - t0;
    assert_true(took >= 0.19 && took < 10 * 0.2); /* late: 10x the timeout */
    const char *msg = mpistore_errmsg(S);
    assert_non_null(strstr(msg, "timeout"));
    assert_non_null(strstr(msg, a));
    assert_non_null(strstr(msg, b));
    mt_barrier();
    if (mt_rank == mt_size - 1) {
        MT_OK(S, mpistore_set(S, b, "B", 1));
        MT_OK(S, mpistore_set(S, a, "A", 1));
    }
    MT_OK(S, mpistore_wait(S, keys, 2, MPISTORE_TIMEOUT_DEFAULT));
    MT_OK(S, mpistore_wait(S, keys, 2, 0)); /* 0 = forever; they exist */
    mt_barrier();
}

static void semantics_multi_get_set(void **state)
{
    (void)state;
    const char *base = mt_unique("multi");
    char names[4][96];
    const char *keys[4];
    const void *vals[4] = {"alpha", "", "gamma\0x", "delta"};
    size_t lens[4] = {5, 0, 7, 5};
    for (int i = 0; i < 4; i++) {
        snprintf(names[i], sizeof names[i], "%s/%d", base, i);
        keys[i] = names[i];
    }
    if (mt_rank == 0)
        MT_OK(S, mpistore_multi_set(S, keys, vals, lens, 4));
    void *out[4] = {0};
    size_t outl[4] = {0};
    MT_OK(S, mpistore_multi_get(S, keys, 4, out, outl));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(outl[i], lens[i]);
        assert_memory_equal(out[i], vals[i], lens[i]);
        mpistore_free(out[i]);
    }
    MT_OK(S, mpistore_multi_get(S, keys, 0, NULL, NULL));
    mt_barrier();
}

/* multi_get of more keys than one batch (64), set by every rank at
 * different times, values of several sizes and counters among them: every
 * rank waits for all and reads each exactly; then a missing key times out
 * with its name in the message. */
static void semantics_multi_get_many(void **state)
{
    (void)state;
    enum { N = 150 };
    const char *base = mt_unique("mgmany");
    static char names[N][96];
    const char *keys[N];
    void *out[N] = {0};
    size_t outl[N] = {0};
    char want[4200];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "%s/%d", base, i);
        keys[i] = names[i];
    }
    mt_barrier();
    for (int i = N - 1; i >= 0; i--) { /* rank r writes keys i = r mod size, last first */
        if (i % mt_size != mt_rank)
            continue;
        if (i % 5 == 0) {
            MT_OK(S, mpistore_add(S, keys[i], i, NULL)); /* a counter */
        } else {
            size_t len = (size_t)(i * 27) % 4100;
            memset(want, 'a' + i % 26, len);
            MT_OK(S, mpistore_set(S, keys[i], want, len));
        }
    }
    MT_OK(S, mpistore_multi_get(S, keys, N, out, outl));
    for (int i = 0; i < N; i++) {
        if (i % 5 == 0) {
            snprintf(want, sizeof want, "%d", i);
            assert_int_equal(outl[i], strlen(want));
            assert_memory_equal(out[i], want, outl[i]);
        } else {
            size_t len = (size_t)(i * 27) % 4100;
            memset(want, 'a' + i % 26, len);
            assert_int_equal(outl[i], len);
            if (len)
                assert_memory_equal(out[i], want, len);
        }
        mpistore_free(out[i]);
    }
    mt_barrier();
    double prev = mpistore_timeout(S);
    MT_OK(S, mpistore_set_timeout(S, 0.2));
    keys[N - 1] = mt_unique("mgmissing");
    MT_ERR(S, MPISTORE_ETIMEDOUT, mpistore_multi_get(S, keys, N, out, outl));
    if (!strstr(mpistore_errmsg(S), "mgmissing"))
        fail_msg("timeout message does not name the missing key: %s", mpistore_errmsg(S));
    MT_OK(S, mpistore_set_timeout(S, prev));
    mt_barrier();
}

static void semantics_append(void **state)
{
    (void)state;
    const char *k = mt_unique("app");
    char piece[32];
    snprintf(piece, sizeof piece, "[%d]", mt_rank);
    MT_OK(S, mpistore_append(S, k, piece, strlen(piece))); /* first creates */
    mt_barrier();
    void *v = NULL;
    size_t len = 0;
    MT_OK(S, mpistore_get(S, k, &v, &len));
    size_t want = 0;
    for (int r = 0; r < mt_size; r++) {
        snprintf(piece, sizeof piece, "[%d]", r);
        want += strlen(piece);
        assert_non_null(strstr(v, piece)); /* every append landed exactly... */
    }
    assert_int_equal(len, want); /* ...once */
    mpistore_free(v);
    mt_barrier();
}

static void semantics_timeout_accessors(void **state)
{
    (void)state;
    assert_true(mpistore_timeout(S) == 300.0);
    MT_OK(S, mpistore_set_timeout(S, 2.5));
    assert_true(mpistore_timeout(S) == 2.5);
    MT_OK(S, mpistore_set_timeout(S, 0));
    assert_true(mpistore_timeout(S) == 0.0);
    MT_OK(S, mpistore_set_timeout(S, 300));
}

static void semantics_prefix_views(void **state)
{
    (void)state;
    const char *p = mt_unique("pfx");
    mpistore_t *v = NULL, *vv = NULL;
    MT_OK(S, mpistore_prefix(&v, S, p));
    MT_OK(S, mpistore_prefix(&vv, v, "inner"));
    assert_true(mpistore_timeout(v) == mpistore_timeout(S));
    char full[160], inner[160];
    snprintf(full, sizeof full, "%s/k", p);
    snprintf(inner, sizeof inner, "%s/inner/k", p);
    if (mt_rank == 0) {
        MT_OK(v, mpistore_set(v, "k", "via view", 8));
        MT_OK(vv, mpistore_set(vv, "k", "via inner", 9));
        int64_t r = 0;
        MT_OK(v, mpistore_add(v, "n", 3, &r));
        assert_int_equal(r, 3);
    }
    mt_barrier();
    mt_expect_str(S, full, "via view");
    mt_expect_str(S, inner, "via inner");
    mt_expect_str(v, "inner/k", "via inner");
    mt_expect_str(v, "n", "3");
    bool all = true;
    const char *keys[] = {"k"};
    MT_OK(S, mpistore_check(S, keys, 1, &all)); /* plain "k" is not the view's key */
    assert_false(all);
    MT_ERR(S, MPISTORE_ESTATE, mpistore_close(S)); /* views still open */
    assert_non_null(strstr(mpistore_errmsg(S), "view"));
    MT_ERR(v, MPISTORE_ESTATE, mpistore_close(v));
    MT_OK(vv, mpistore_close(vv));
    MT_OK(v, mpistore_close(v));
    mt_barrier();
}

/* A blocked get sleeps between polls instead of spinning (8 ranks share
 * 2 cores in the tests; a spinning waiter starves the rank it waits for). */
static void semantics_blocked_get_sleeps(void **state)
{
    (void)state;
    mpistore_t *s = NULL;
    MT_OK(NULL, mpistore_open(&s, MPI_COMM_SELF, NULL));
    MT_OK(s, mpistore_set_timeout(s, 1.0));
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    void *v = NULL;
    size_t len = 0;
    MT_ERR(s, MPISTORE_ETIMEDOUT, mpistore_get(s, "absent", &v, &len));
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);
    if (cpu > 0.25)
        fail_msg("rank %d: a get blocked for 1 s used %.2f s of CPU", mt_rank, cpu);
    MT_OK(s, mpistore_close(s));
}

static void semantics_version_and_strings(void **state)
{
    (void)state;
    assert_string_equal(mpistore_version(), MPISTORE_VERSION_STRING);
    assert_string_equal(mpistore_errname(-MPISTORE_ETIMEDOUT), "MPISTORE_ETIMEDOUT");
    assert_string_equal(mpistore_errname(MPISTORE_ENOSPC), "MPISTORE_ENOSPC");
    assert_non_null(strstr(mpistore_strerror(-MPISTORE_ETIMEDOUT), "timeout"));
    assert_string_equal(mpistore_strerror(MPISTORE_OK), "success");
    assert_string_equal(mpistore_strerror(-1000), "unknown error");
    assert_string_equal(mpistore_errmsg(NULL), "");
}

/* No rank died: an empty list (a job where one does ends in test_rankfail) */
static void semantics_failed_ranks_none(void **state)
{
    (void)state;
    int *ranks = (int *)&ranks;
    size_t n = 99;
    MT_OK(mt_store, mpistore_failed_ranks(mt_store, &ranks, &n));
    assert_int_equal(n, 0);
    assert_null(ranks);
    assert_string_equal(mpistore_errname(MPISTORE_EPROCFAILED), "MPISTORE_EPROCFAILED");
    assert_non_null(strstr(mpistore_strerror(-MPISTORE_EPROCFAILED), "died"));
}

static const struct CMUnitTest tests[] = {
    MT_TEST(semantics_set_get_overwrite),
    MT_TEST(semantics_failed_ranks_none),
    MT_TEST(semantics_every_rank_sets_own_key),
    MT_TEST(semantics_empty_and_binary_values),
    MT_TEST(semantics_get_blocks_until_later_set),
    MT_TEST(semantics_add),
    MT_TEST(semantics_compare_set_truth_table),
    MT_TEST(semantics_delete_check_num_keys),
    MT_TEST(semantics_wait),
    MT_TEST(semantics_multi_get_set),
    MT_TEST(semantics_multi_get_many),
    MT_TEST(semantics_append),
    MT_TEST(semantics_timeout_accessors),
    MT_TEST(semantics_prefix_views),
    cmocka_unit_test(semantics_blocked_get_sleeps),
    cmocka_unit_test(semantics_version_and_strings),
};

MT_MAIN("semantics", tests)
