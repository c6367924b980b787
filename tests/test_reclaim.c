/* Memory is bounded and reused: one million sets of a 1 KiB value on one
 * key, and 100,000 set+delete cycles of distinct keys, on a default-sized
 * store.  The work is split over the ranks; the totals are issue #2's.
 *
 * In slow runs (MPISTORE_TEST_SLOW=1: the network cells, and Open MPI's
 * default cell at 4 and more ranks, where every round trip may wait for the
 * target's next time slice on a busy machine) the same loops run on a store
 * too small to hold a fraction of the work, with just enough operations to
 * reuse each rank's arena and key slots several times over: the property
 * is the same, the round trips are a few hundred per rank. */
#include "mpitest.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOTAL_SETS 1000000L
#define TOTAL_CYCLES 100000L
#define SMALL_BYTES (64 * 1024) /* the slow runs' arena per rank */
#define SMALL_KEYS 64           /* the slow runs' key slots per rank */
#define BLOCK_1KIB 1088         /* a block holding a 1 KiB value: 34 units */
#define REUSE 4                 /* times each rank's arena / key slots are reused */

static long my_share(long total)
{
    long base = total / mt_size, extra = total % mt_size;
    return base + (mt_rank < extra ? 1 : 0);
}

/* Default options, or in slow runs a store that cannot grow past
 * SMALL_BYTES and SMALL_KEYS per rank. */
static mpistore_t *open_reclaim_store(void)
{
    if (!mt_slow())
        return mt_open(NULL); /* default options: <= 8 MiB per rank */
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.keys_per_rank = o.max_keys_per_rank = SMALL_KEYS;
    o.bytes_per_rank = o.max_bytes_per_rank = SMALL_BYTES;
    o.max_value_len = 4096;
    return mt_open(&o);
}

static void reclaim_million_sets_one_key(void **state)
{
    (void)state;
    mpistore_t *s = open_reclaim_store();
    static unsigned char val[1024];
    long total_sets = mt_slow() ? (long)mt_size * REUSE * SMALL_BYTES / BLOCK_1KIB : TOTAL_SETS;
    long n = my_share(total_sets), done = 0;
    mt_barrier();
    for (long i = 0; i < n; i++) {
        memset(val, (int)(i % 251), sizeof val);
        val[0] = (unsigned char)mt_rank;
        MT_OK(s, mpistore_set(s, "hot-1KiB", val, sizeof val));
        done++;
    }
    long total = 0;
    MPI_Allreduce(&done, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    assert_int_equal(total, total_sets);
    void *v = NULL;
    size_t len = 0;
    MT_OK(s, mpistore_get(s, "hot-1KiB", &v, &len));
    assert_int_equal(len, sizeof val);
    unsigned char fill = ((unsigned char *)v)[1];
    for (size_t i = 1; i < len; i++) /* one whole write, not a mix */
        assert_int_equal(((unsigned char *)v)[i], fill);
    mpistore_free(v);
    int64_t keys = 0;
    MT_OK(s, mpistore_num_keys(s, &keys));
    assert_int_equal(keys, 1);
    mt_barrier();
    mt_close(s);
}

static void reclaim_hundred_thousand_set_delete_cycles(void **state)
{
    (void)state;
    mpistore_t *s = open_reclaim_store();
    /* slow runs: every rank's key slots are filled REUSE times over */
    long n = mt_slow() ? REUSE * SMALL_KEYS : my_share(TOTAL_CYCLES);
    char key[64], val[64];
    for (long i = 0; i < n; i++) {
        bool deleted = false;
        snprintf(key, sizeof key, "cycle/%d/%ld", mt_rank, i);
        int len = snprintf(val, sizeof val, "value %ld of rank %d", i, mt_rank);
        MT_OK(s, mpistore_set(s, key, val, (size_t)len));
        if (i % 1000 == 0)
            mt_expect_str(s, key, val);
        MT_OK(s, mpistore_delete_key(s, key, &deleted));
        assert_true(deleted);
    }
    mt_barrier();
    int64_t keys = -1;
    MT_OK(s, mpistore_num_keys(s, &keys));
    assert_int_equal(keys, 0);
    mt_barrier(); /* nobody adds a key before every rank has counted */
    /* the store is still fully usable */
    snprintf(key, sizeof key, "after/%d", mt_rank);
    MT_OK(s, mpistore_set(s, key, "ok", 2));
    mt_expect_str(s, key, "ok");
    mt_barrier();
    mt_close(s);
}

/* A rank whose blocks other ranks overwrite gets its memory back (through
 * the dead marks) on a store far too small to keep them all. */
static void reclaim_owner_reuses_blocks_others_overwrote(void **state)
{
    (void)state;
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.bytes_per_rank = 64 * 1024;
    o.max_bytes_per_rank = 64 * 1024; /* no growth: reclamation must do it */
    o.max_value_len = 1024;
    mpistore_t *s = mt_open(&o);
    static unsigned char val[1000];
    int other = mt_size - 1;
    for (int round = 0; round < 300; round++) { /* 300 x 1 KiB >> 64 KiB */
        memset(val, round % 251, sizeof val);
        if (mt_rank == 0)
            MT_OK(s, mpistore_set(s, "shared", val, sizeof val)); /* a block of rank 0 */
        mt_barrier();
        if (mt_rank == other)
            MT_OK(s, mpistore_set(s, "shared", val, 10)); /* unpublishes it */
        mt_barrier();
    }
    mt_close(s);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(reclaim_owner_reuses_blocks_others_overwrote),
    cmocka_unit_test(reclaim_million_sets_one_key),
    cmocka_unit_test(reclaim_hundred_thousand_set_delete_cycles),
};

MT_MAIN("reclaim", tests)
