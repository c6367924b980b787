/* Counters (keys created by add, added to without the slot lock): c10d
 * semantics of every operation on them, and exactness of concurrent adds
 * while another rank reads, converts or deletes the key (design.md,
 * "Counters"). */
#include "mpitest.h"

#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t get_int(mpistore_t *s, const char *key)
{
    void *v = NULL;
    size_t len = 0;
    MT_OK(s, mpistore_get(s, key, &v, &len));
    char *end = NULL;
    long long x = strtoll(v, &end, 10);
    if (len == 0 || end != (char *)v + len)
        fail_msg("rank %d: key '%s' holds '%.*s', not a decimal", mt_rank, key, (int)len,
                 (char *)v);
    mpistore_free(v);
    return (int64_t)x;
}

static int exists(mpistore_t *s, const char *key)
{
    const char *keys[] = {key};
    bool all = false;
    MT_OK(s, mpistore_check(s, keys, 1, &all));
    return all;
}

/* One rank, every operation on a counter: the values c10d would give. */
static void counter_semantics(void **state)
{
    (void)state;
    mpistore_t *s = mt_store;
    const char *p = mt_unique("csem");
    char k[64], k2[64], k3[64];
    int64_t r = 0;
    snprintf(k, sizeof k, "%sc", p);
    snprintf(k2, sizeof k2, "%sbig", p);
    snprintf(k3, sizeof k3, "%sedge", p);
    if (mt_rank == 0) {
        mpistore_stats_t st;
        MT_OK(s, mpistore_stats(s, &st, true));
        MT_OK(s, mpistore_add(s, k, 5, &r)); /* an insert: 2 RT on a home slot never used, */
        MT_OK(s, mpistore_stats(s, &st, false)); /* 3, 4 if the home slot is taken */
        assert_int_equal(r, 5);
        if (st.round_trips < 2 || st.round_trips > 5)
            fail_msg("creating a counter took %llu round trips",
                     (unsigned long long)st.round_trips);
        mt_expect_str(s, k, "5");
        MT_OK(s, mpistore_add(s, k, -7, &r));
        assert_int_equal(r, -2);
        mt_expect_str(s, k, "-2");
        assert_true(exists(s, k));

        /* the cost of an add on an existing counter: snapshot, key, add */
        MT_OK(s, mpistore_stats(s, &st, true));
        MT_OK(s, mpistore_add(s, k, 3, &r));
        MT_OK(s, mpistore_stats(s, &st, false));
        assert_int_equal(r, 1);
        assert_int_equal(st.round_trips, 3);

        /* compare_set sees the decimal value */
        void *cur = NULL;
        size_t cl = 0;
        MT_OK(s, mpistore_compare_set(s, k, "2", 1, "9", 1, &cur, &cl));
        assert_int_equal(cl, 1);
        assert_memory_equal(cur, "1", 1); /* mismatch: the current value */
        mpistore_free(cur);
        MT_OK(s, mpistore_compare_set(s, k, "1", 1, "9", 1, &cur, &cl));
        assert_memory_equal(cur, "9", 1);
        mpistore_free(cur);
        MT_OK(s, mpistore_add(s, k, 1, &r)); /* a string now: the locked path */
        assert_int_equal(r, 10);
        mt_expect_str(s, k, "10");

        /* append makes it a string that is no longer a number */
        bool del = false;
        MT_OK(s, mpistore_delete_key(s, k, &del));
        assert_true(del);
        assert_false(exists(s, k));
        MT_OK(s, mpistore_add(s, k, 4, &r)); /* a fresh counter */
        assert_int_equal(r, 4);
        MT_OK(s, mpistore_append(s, k, "x", 1));
        mt_expect_str(s, k, "4x");
        MT_ERR(s, MPISTORE_ENOTINT, mpistore_add(s, k, 1, &r));
        MT_OK(s, mpistore_set(s, k, "007", 3)); /* set, then add: stoll semantics */
        MT_OK(s, mpistore_add(s, k, 1, &r));
        assert_int_equal(r, 8);

        /* int64 edges: exact sums, overflow refused with the value kept */
        MT_OK(s, mpistore_add(s, k3, INT64_MAX - 1, &r));
        MT_OK(s, mpistore_add(s, k3, 1, &r));
        assert_true(r == INT64_MAX);
        MT_ERR(s, MPISTORE_ENOTINT, mpistore_add(s, k3, 1, &r));
        mt_expect_str(s, k3, "9223372036854775807");
        MT_OK(s, mpistore_add(s, k3, INT64_MIN, &r));
        assert_true(r == -1);
        MT_OK(s, mpistore_add(s, k3, INT64_MIN + 1, &r));
        assert_true(r == INT64_MIN);
        mt_expect_str(s, k3, "-9223372036854775808");
        MT_ERR(s, MPISTORE_ENOTINT, mpistore_add(s, k3, -1, &r));
        /* deltas beyond the lock-free bound take the locked path, exactly */
        MT_OK(s, mpistore_add(s, k2, INT64_C(1) << 50, &r));
        MT_OK(s, mpistore_add(s, k2, INT64_C(1) << 50, &r));
        assert_true(r == INT64_C(1) << 51);
        MT_OK(s, mpistore_add(s, k2, 0, &r));
        assert_true(r == INT64_C(1) << 51);
        assert_true(get_int(s, k2) == INT64_C(1) << 51);
        /* ... and leave it a counter: the next small add is lock-free again */
        MT_OK(s, mpistore_stats(s, &st, true));
        MT_OK(s, mpistore_add(s, k2, 1, &r));
        MT_OK(s, mpistore_stats(s, &st, false));
        assert_true(r == (INT64_C(1) << 51) + 1);
        assert_int_equal(st.round_trips, 3);
    }
    mt_barrier();
    /* every rank reads the same values */
    mt_expect_str(s, k, "8");
    MT_OK(s, mpistore_add(s, k, 0, &r));
    assert_int_equal(r, 8);
}

/* A store whose values cannot hold every int64 in decimal keeps counters as
 * strings (and refuses a sum that does not fit, as before). */
static void counter_small_values(void **state)
{
    (void)state;
    mpistore_t *s = mt_open_self(64, 1 << 16, 8);
    int64_t r = 0;
    MT_OK(s, mpistore_add(s, "n", 5, &r));
    MT_OK(s, mpistore_add(s, "n", 1, &r));
    assert_int_equal(r, 6);
    mt_expect_str(s, "n", "6");
    MT_ERR(s, MPISTORE_ETOOBIG, mpistore_add(s, "n", 123456789, &r));
    mt_expect_str(s, "n", "6");
    mt_close(s);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Every rank adds 1 m times to one key; what rank 0 does meanwhile (mode):
 * 0 compare_set mismatches and gets, 1 an append of "" halfway (the counter
 * becomes a string of the same value), 2 a delete halfway.  The add results
 * of all ranks are gathered on rank 0 and checked: no add lost, none
 * counted twice. */
static void adds_under(int mode)
{
    mpistore_t *s = mt_store;
    const char *p = mt_unique("cconc");
    char k[64];
    snprintf(k, sizeof k, "%sk", p);
    long m = mt_scale(600);
    int64_t *res = calloc((size_t)m, sizeof *res), r = 0, prev = 0;
    assert_non_null(res);
    int64_t deleted_at = -1;
    mt_barrier();
    for (long i = 0; i < m; i++) {
        MT_OK(s, mpistore_add(s, k, 1, &r));
        res[i] = r;
        if (mode != 2 && r <= prev)
            fail_msg("rank %d: add %ld returned %" PRId64 " after %" PRId64, mt_rank, i, r, prev);
        prev = r;
        if (mt_rank != 0)
            continue;
        if (mode == 0 && i % 7 == 3) {
            void *cur = NULL;
            size_t cl = 0;
            MT_OK(s, mpistore_compare_set(s, k, "x", 1, "y", 1, &cur, &cl));
            assert_true(cl > 0 && ((char *)cur)[0] != 'y');
            mpistore_free(cur);
            int64_t g = get_int(s, k);
            if (g < r)
                fail_msg("get returned %" PRId64 " after add returned %" PRId64, g, r);
        }
        if (mode == 1 && i == m / 2)
            MT_OK(s, mpistore_append(s, k, "", 0));
        if (mode == 2 && i == m / 2) {
            bool del = false;
            MT_OK(s, mpistore_delete_key(s, k, &del));
            assert_true(del);
            deleted_at = 1;
        }
    }
    mt_barrier();
    int64_t final = get_int(s, k), total = (int64_t)m * mt_size;
    int64_t *all = mt_rank == 0 ? calloc((size_t)total, sizeof *all) : NULL;
    MPI_Gather(res, (int)m, MPI_INT64_T, all, (int)m, MPI_INT64_T, 0, MPI_COMM_WORLD);
    if (mt_rank == 0) {
        qsort(all, (size_t)total, sizeof *all, cmp_i64);
        if (mode != 2) { /* exactly 1..total */
            assert_true(final == total);
            for (int64_t j = 0; j < total; j++)
                if (all[j] != j + 1)
                    fail_msg("mode %d: sorted add result %" PRId64 " is %" PRId64 ", want %" PRId64,
                             mode, j, all[j], j + 1);
        } else { /* 1..B before the delete, 1..final after it */
            int64_t before = total - final;
            assert_true(deleted_at == 1 && final >= 1 && before >= 1);
            for (int64_t x = 1, j = 0; x <= (before > final ? before : final); x++) {
                int want = (x <= before) + (x <= final);
                for (int w = 0; w < want; w++, j++)
                    if (j >= total || all[j] != x)
                        fail_msg("after delete: result %" PRId64 " missing or repeated "
                                 "(before=%" PRId64 " after=%" PRId64 ")",
                                 x, before, final);
            }
        }
        free(all);
    }
    free(res);
    mt_barrier();
}

static void concurrent_adds_with_cas(void **state)
{
    (void)state;
    adds_under(0);
}

static void concurrent_adds_with_append(void **state)
{
    (void)state;
    adds_under(1);
}

static void concurrent_adds_with_delete(void **state)
{
    (void)state;
    adds_under(2);
}

static const struct CMUnitTest tests[] = {
    MT_TEST(counter_semantics),
    MT_TEST(counter_small_values),
    MT_TEST(concurrent_adds_with_cas),
    MT_TEST(concurrent_adds_with_append),
    MT_TEST(concurrent_adds_with_delete),
};

MT_MAIN("counters", tests)
