/* Growth beyond the initial sizes (docs/design.md, "Growth"): index levels
 * and arena segments on stores far too small for their keys, every
 * operation across them, the round trips of get and add on grown levels,
 * and a store that is truly full telling every rank at once. */
#include "mpitest.h"

#include <mpistore_elastic.h>

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mpistore_t *open_small(size_t keys, size_t bytes, size_t max_keys, size_t max_bytes)
{
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.keys_per_rank = keys;
    o.bytes_per_rank = bytes;
    o.max_value_len = 4096;
    o.max_keys_per_rank = max_keys;
    o.max_bytes_per_rank = max_bytes;
    o.timeout_s = 120;
    return mt_open(&o);
}

/* Every rank inserts n keys into a store sized for 4 keys and 1 KiB per
 * rank; everything is readable by everyone, counted, listed, updatable and
 * deletable. */
static void growth_many_keys_tiny_store(void **state)
{
    (void)state;
    mpistore_t *s = open_small(4, 1024, 0, 0);
    long n = mt_scale(3000);
    if (n < 200)
        n = 200;
    char key[64], val[64];
    for (long i = 0; i < n; i++) {
        snprintf(key, sizeof key, "g/%d/%ld", mt_rank, i);
        int len = snprintf(val, sizeof val, "v%ld-%d", i, mt_rank);
        MT_OK(s, mpistore_set(s, key, val, (size_t)len));
    }
    mt_barrier();
    int64_t total = -1;
    MT_OK(s, mpistore_num_keys(s, &total));
    assert_int_equal(total, n * mt_size);
    for (int r = 0; r < mt_size; r++) /* every key of every rank */
        for (long i = 0; i < n; i += (r == mt_rank ? 1 : 7)) {
            snprintf(key, sizeof key, "g/%d/%ld", r, i);
            snprintf(val, sizeof val, "v%ld-%d", i, r);
            mt_expect_str(s, key, val);
        }
    char **keys = NULL;
    size_t nk = 0;
    MT_OK(s, mpistore_list_keys(s, &keys, &nk));
    assert_int_equal((long)nk, n * mt_size);
    for (size_t i = 0; i < nk; i++)
        mpistore_free(keys[i]);
    mpistore_free(keys);
    mt_barrier();
    /* update and delete own keys; add on counters living in grown levels */
    for (long i = 0; i < n; i += 2) {
        snprintf(key, sizeof key, "g/%d/%ld", mt_rank, i);
        MT_OK(s, mpistore_set(s, key, "updated", 7));
        snprintf(key, sizeof key, "g/%d/%ld", mt_rank, i + 1);
        bool deleted = false;
        if (i + 1 < n) {
            MT_OK(s, mpistore_delete_key(s, key, &deleted));
            assert_true(deleted);
        }
    }
    for (int k = 0; k < 50; k++) {
        int64_t sum = 0;
        snprintf(key, sizeof key, "cnt/%d", k);
        MT_OK(s, mpistore_add(s, key, 1, &sum));
        assert_true(sum >= 1 && sum <= mt_size);
    }
    mt_barrier();
    for (int k = 0; k < 50; k++) {
        snprintf(key, sizeof key, "cnt/%d", k);
        snprintf(val, sizeof val, "%d", mt_size);
        mt_expect_str(s, key, val);
    }
    snprintf(key, sizeof key, "g/%d/0", (mt_rank + 1) % mt_size);
    mt_expect_str(s, key, "updated");
    MT_OK(s, mpistore_num_keys(s, &total));
    assert_int_equal(total, (n + 1) / 2 * mt_size + 50);
    mt_barrier();
    mt_close(s);
}

/* Values far beyond the initial arena: segments, large blocks included. */
static void growth_values_beyond_arena(void **state)
{
    (void)state;
    mpistore_t *s = open_small(64, 512, 0, 0);
    static char big[4000];
    char key[64];
    const int n = mt_slow() ? 100 : 300; /* values up to 1.4 KiB / 4 KiB, arena 512 B */
    for (int i = 0; i < n; i++) {
        memset(big, 'a' + (i + mt_rank) % 26, sizeof big);
        snprintf(key, sizeof key, "big/%d/%d", mt_rank, i);
        MT_OK(s, mpistore_set(s, key, big, (size_t)(100 + i * 13)));
        MT_OK(s, mpistore_append(s, key, "!", 1));
    }
    mt_barrier();
    int r = (mt_rank + 1) % mt_size;
    for (int i = 0; i < n; i++) {
        void *v = NULL;
        size_t len = 0;
        snprintf(key, sizeof key, "big/%d/%d", r, i);
        MT_OK(s, mpistore_get(s, key, &v, &len));
        assert_int_equal(len, (size_t)(100 + i * 13) + 1);
        assert_int_equal(((char *)v)[0], 'a' + (i + r) % 26);
        assert_int_equal(((char *)v)[len - 1], '!');
        mpistore_free(v);
    }
    mt_barrier();
    mt_close(s);
}

/* A value-memory limit that is not a whole number of segments: the last
 * segment is clipped, and other ranks read blocks up to its very end. */
static void growth_clipped_segment(void **state)
{
    (void)state;
    mpistore_t *s = open_small(256, 1024, 0, 5000);
    char key[64], val[128];
    int stored = 0, rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++) {
        snprintf(key, sizeof key, "clip/%d/%d", mt_rank, i);
        int len = snprintf(val, sizeof val, "%d:%d:%.*s", mt_rank, i, 40 + i % 50,
                           "...................................................................");
        rc = mpistore_set(s, key, val, (size_t)len);
        stored += rc == 0;
    }
    assert_int_equal(rc, -MPISTORE_ENOSPC);
    assert_non_null(strstr(mpistore_errmsg(s), "MPISTORE_MAX_BYTES_PER_RANK"));
    assert_true(stored > 30); /* 5000 bytes hold more than 30 of these */
    int all = 0;
    MPI_Allreduce(&stored, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    int r = (mt_rank + 1) % mt_size;
    for (int i = 0; i < all; i++) { /* the other rank's blocks, to the end */
        snprintf(key, sizeof key, "clip/%d/%d", r, i);
        snprintf(val, sizeof val, "%d:%d:%.*s", r, i, 40 + i % 50,
                 "...................................................................");
        mt_expect_str(s, key, val);
    }
    mt_barrier();
    mt_close(s);
}

/* get and add on keys that live in grown index levels and segments cost
 * what they cost at level 0: 3 round trips each. */
static void growth_round_trips_unchanged(void **state)
{
    (void)state;
    mpistore_t *s = open_small(4, 1024, 0, 0);
    char key[64];
    const int n = mt_slow() ? 100 : 400; /* level 0 holds 4 keys per rank */
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "rt/%d/%d", mt_rank, i);
        MT_OK(s, mpistore_add(s, key, 1, NULL));
    }
    mt_barrier();
    mpistore_stats_t st;
    int other = (mt_rank + 1) % mt_size;
    for (int i = n - 10; i < n; i++) { /* the last keys: in the newest levels */
        snprintf(key, sizeof key, "rt/%d/%d", other, i);
        void *v = NULL;
        size_t len = 0;
        mt_expect_str(s, key, "1"); /* warm the level and segment caches */
        MT_OK(s, mpistore_stats(s, &st, true));
        MT_OK(s, mpistore_get(s, key, &v, &len));
        mpistore_free(v);
        MT_OK(s, mpistore_stats(s, &st, true));
        assert_int_equal(st.round_trips, 3);
        MT_OK(s, mpistore_add(s, key, 1, NULL));
        MT_OK(s, mpistore_stats(s, &st, true));
        assert_int_equal(st.round_trips, 3);
    }
    mt_barrier();
    mt_close(s);
}

/* A store that is truly full: rank 0 waits (timeout 120 s) for a key that
 * the last rank cannot write; it learns of the failure at once instead of
 * waiting out its timeout (the test's TIMEOUT is shorter than that). */
static void growth_full_store_tells_every_rank(void **state)
{
    (void)state;
    mpistore_t *s = open_small(4, 4096, 8, 0);
    int last = mt_size - 1;
    char key[64];
    mt_barrier();
    if (mt_rank == last) {
        int rc = 0;
        for (int i = 0; i < 100000 && rc == 0; i++) {
            snprintf(key, sizeof key, "fill/%d", i);
            rc = mpistore_set(s, key, "x", 1);
        }
        assert_int_equal(rc, -MPISTORE_ENOSPC);
        assert_non_null(strstr(mpistore_errmsg(s), "MPISTORE_MAX_KEYS_PER_RANK"));
    }
    if (mt_rank == 0) {
        void *v = NULL;
        size_t len = 0;
        int rc = mpistore_get(s, "never-written", &v, &len);
        if (mt_size > 1 || rc != -MPISTORE_ENOSPC)
            assert_int_equal(rc, -MPISTORE_ENOSPC);
        assert_non_null(strstr(mpistore_errmsg(s), "store is full"));
        assert_non_null(strstr(mpistore_errmsg(s), "MPISTORE_MAX_KEYS_PER_RANK"));
        const char *keys[] = {"never-written"};
        MT_ERR(s, MPISTORE_ENOSPC, mpistore_wait(s, keys, 1, MPISTORE_TIMEOUT_DEFAULT));
    }
    mt_barrier();
    /* the elastic barrier: nobody waits out the timeout either */
    int rc = mpistore_barrier(s, mt_rank, mt_size + 1, "full-barrier", 120);
    assert_int_equal(rc, -MPISTORE_ENOSPC);
    assert_null(strstr(mpistore_errmsg(s), "missing_ranks"));
    mt_barrier();
    mt_close(s);
}

/* The sizes and limits come from the environment too. */
static void growth_environment_limits(void **state)
{
    (void)state;
    setenv("MPISTORE_KEYS_PER_RANK", "4", 1);
    setenv("MPISTORE_MAX_KEYS_PER_RANK", "6", 1);
    mpistore_t *s = NULL;
    int rc = mpistore_open(&s, MPI_COMM_SELF, NULL);
    unsetenv("MPISTORE_KEYS_PER_RANK");
    unsetenv("MPISTORE_MAX_KEYS_PER_RANK");
    assert_int_equal(rc, MPISTORE_OK);
    char key[32];
    for (int i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "e%d", i);
        MT_OK(s, mpistore_set(s, key, "x", 1));
    }
    MT_ERR(s, MPISTORE_ENOSPC, mpistore_set(s, "e6", "x", 1));
    assert_non_null(strstr(mpistore_errmsg(s), "MPISTORE_MAX_KEYS_PER_RANK"));
    MT_OK(s, mpistore_close(s));
    setenv("MPISTORE_BYTES_PER_RANK", "12q", 1);
    rc = mpistore_open(&s, MPI_COMM_SELF, NULL);
    unsetenv("MPISTORE_BYTES_PER_RANK");
    assert_int_equal(rc, -MPISTORE_EINVAL);
    assert_non_null(strstr(mpistore_errmsg(NULL), "MPISTORE_BYTES_PER_RANK"));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(growth_many_keys_tiny_store),
    cmocka_unit_test(growth_values_beyond_arena),
    cmocka_unit_test(growth_clipped_segment),
    cmocka_unit_test(growth_round_trips_unchanged),
    cmocka_unit_test(growth_environment_limits),
    cmocka_unit_test(growth_full_store_tells_every_rank),
};

MT_MAIN("growth", tests)
