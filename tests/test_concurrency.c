/* Concurrency: contended add, compare_set races, torn-value detection,
 * concurrent inserts of one key. */
#include "mpitest.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S mt_store

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

#define ADDS 1000

static void concurrency_add_totals_and_unique_results(void **state)
{
    (void)state;
    const char *k = mt_unique("counter");
    int64_t *mine = malloc(ADDS * sizeof *mine);
    int64_t *all = mt_rank == 0 ? malloc((size_t)mt_size * ADDS * sizeof *all) : NULL;
    assert_non_null(mine);
    mt_barrier();
    for (int i = 0; i < ADDS; i++)
        MT_OK(S, mpistore_add(S, k, 1, &mine[i]));
    for (int i = 1; i < ADDS; i++)
        assert_true(mine[i] > mine[i - 1]); /* a rank's own adds are ordered */
    MPI_Gather(mine, ADDS, MPI_INT64_T, all, ADDS, MPI_INT64_T, 0, MPI_COMM_WORLD);
    if (mt_rank == 0) {
        int64_t n = (int64_t)mt_size * ADDS;
        qsort(all, (size_t)n, sizeof *all, cmp_i64);
        for (int64_t i = 0; i < n; i++)
            if (all[i] != i + 1)
                fail_msg("add results: position %lld holds %lld (duplicate or gap)", (long long)i,
                         (long long)all[i]);
    }
    mt_barrier();
    char want[32];
    snprintf(want, sizeof want, "%d", mt_size * ADDS);
    mt_expect_str(S, k, want);
    free(mine);
    free(all);
    mt_barrier();
}

static void concurrency_compare_set_single_winner(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        const char *k = mt_unique("elect");
        char me[32];
        snprintf(me, sizeof me, "rank-%d", mt_rank);
        void *cur = NULL;
        size_t len = 0;
        mt_barrier();
        MT_OK(S, mpistore_compare_set(S, k, "", 0, me, strlen(me), &cur, &len));
        int won = len == strlen(me) && memcmp(cur, me, len) == 0;
        int winners = 0;
        MPI_Allreduce(&won, &winners, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        assert_int_equal(winners, 1);
        /* every rank saw the winner's id: the same bytes everywhere */
        char seen[32] = {0};
        assert_true(len < sizeof seen);
        memcpy(seen, cur, len);
        char first[32];
        memcpy(first, seen, sizeof seen);
        MPI_Bcast(first, sizeof first, MPI_CHAR, 0, MPI_COMM_WORLD);
        assert_string_equal(seen, first);
        mt_expect_str(S, k, first);
        mpistore_free(cur);
    }
    mt_barrier();
}

static void concurrency_same_new_key_inserted_once(void **state)
{
    (void)state;
    int64_t before = 0, after = 0;
    MT_OK(S, mpistore_num_keys(S, &before));
    mt_barrier();
    enum { ROUNDS = 50 };
    for (int round = 0; round < ROUNDS; round++) {
        const char *k = mt_unique("same");
        char v[16];
        snprintf(v, sizeof v, "%d", mt_rank);
        MT_OK(S, mpistore_set(S, k, v, strlen(v)));
    }
    mt_barrier();
    MT_OK(S, mpistore_num_keys(S, &after));
    assert_int_equal(after - before, ROUNDS); /* no duplicate slots */
    mt_barrier();
}

/* Every rank creates the same fresh key at once, round after round, by
 * add, append and queue push: the writes that claim a never-used home slot
 * on their first look (docs/design.md, "Inserts in two round trips").  One
 * rank's claim wins, the others find the key and update it: add results are
 * 1..size once each, an append holds every rank's piece once, a queue every
 * rank's element. */
static void concurrency_fresh_keys_created_by_all(void **state)
{
    (void)state;
    enum { ROUNDS = 40 };
    int64_t *got = mt_rank == 0 ? malloc((size_t)mt_size * sizeof *got) : NULL;
    for (int round = 0; round < ROUNDS; round++) {
        const char *k = mt_unique("fresh");
        char ka[64], kq[64], piece[16];
        snprintf(ka, sizeof ka, "%s-app", k);
        snprintf(kq, sizeof kq, "%s-q", k);
        snprintf(piece, sizeof piece, "<%03d>", mt_rank % 1000);
        int64_t r = 0;
        mt_barrier();
        MT_OK(S, mpistore_add(S, k, 1, &r));
        MT_OK(S, mpistore_append(S, ka, piece, 5));
        MT_OK(S, mpistore_queue_push(S, kq, piece, 5));
        MPI_Gather(&r, 1, MPI_INT64_T, got, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
        mt_barrier(); /* every write done */
        if (mt_rank == 0) {
            qsort(got, (size_t)mt_size, sizeof *got, cmp_i64);
            for (int i = 0; i < mt_size; i++)
                if (got[i] != i + 1)
                    fail_msg("round %d: add results not 1..%d (position %d holds %lld)", round,
                             mt_size, i, (long long)got[i]);
            void *v = NULL;
            size_t n = 0;
            MT_OK(S, mpistore_get(S, ka, &v, &n));
            assert_int_equal(n, (size_t)mt_size * 5);
            for (int p = 0; p < mt_size; p++) {
                char want[16];
                snprintf(want, sizeof want, "<%03d>", p % 1000);
                int seen = 0;
                for (size_t o = 0; o < n; o += 5)
                    seen += memcmp((char *)v + o, want, 5) == 0;
                if (seen != 1)
                    fail_msg("round %d: rank %d's piece appears %d times in the append", round, p,
                             seen);
            }
            mpistore_free(v);
            int64_t qlen = 0;
            MT_OK(S, mpistore_queue_len(S, kq, &qlen));
            assert_int_equal(qlen, mt_size);
        }
        char want[24];
        snprintf(want, sizeof want, "%d", mt_size);
        mt_expect_str(S, k, want);
    }
    free(got);
    mt_barrier();
}

static void concurrency_delete_exactly_once(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        const char *k = mt_unique("delonce");
        if (mt_rank == 0)
            MT_OK(S, mpistore_set(S, k, "x", 1));
        mt_barrier();
        bool deleted = false;
        MT_OK(S, mpistore_delete_key(S, k, &deleted));
        int d = deleted, total = 0;
        MPI_Allreduce(&d, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        assert_int_equal(total, 1);
    }
}

/* Self-checking values: [writer u32][seq u32][len u32][sum u32] + pattern. */
static size_t make_value(unsigned char *buf, unsigned writer, unsigned seq, size_t len)
{
    uint32_t h[4] = {writer, seq, (uint32_t)len, 0};
    uint32_t x = writer * 2654435761u ^ seq;
    for (size_t i = 16; i < len; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
        h[3] += buf[i];
    }
    memcpy(buf, h, 16);
    return len;
}

static void verify_value(const unsigned char *v, size_t len, unsigned *writer, unsigned *seq)
{
    static unsigned char want[70000];
    uint32_t h[4];
    if (len < 16)
        fail_msg("rank %d: torn or foreign value of %zu bytes", mt_rank, len);
    memcpy(h, v, 16);
    if (h[2] != len || len > sizeof want)
        fail_msg("rank %d: value length %zu but header says %u", mt_rank, len, h[2]);
    make_value(want, h[0], h[1], len);
    if (memcmp(want, v, len) != 0)
        fail_msg("rank %d: torn value (writer %u seq %u len %zu)", mt_rank, h[0], h[1], len);
    *writer = h[0];
    *seq = h[1];
}

static void concurrency_no_torn_values(void **state)
{
    (void)state;
    enum { NKEYS = 3, WRITES = 150, READS = 300 };
    const char *base = mt_unique("torn");
    char keys[NKEYS][96];
    for (int i = 0; i < NKEYS; i++)
        snprintf(keys[i], sizeof keys[i], "%s/%d", base, i);
    static unsigned char buf[65536 + 16];
    int writer = mt_size == 1 || mt_rank % 2 == 0;
    int reader = mt_size == 1 || mt_rank % 2 == 1;
    /* start: every key holds a valid value */
    if (mt_rank == 0)
        for (int i = 0; i < NKEYS; i++)
            MT_OK(S, mpistore_set(S, keys[i], buf, make_value(buf, 0, 0, 16)));
    mt_barrier();
    unsigned last[NKEYS][64] = {{0}}; /* highest seq seen per key and writer */
    srand(1234u + (unsigned)mt_rank);
    int w = 0, r = 0;
    while ((writer && w < WRITES) || (reader && r < READS)) {
        if (writer && w < WRITES) {
            size_t len = 16 + (size_t)rand() % 65520;
            int k = rand() % NKEYS;
            make_value(buf, (unsigned)mt_rank, (unsigned)w + 1, len);
            MT_OK(S, mpistore_set(S, keys[k], buf, len));
            w++;
        }
        if (reader && r < READS) {
            int k = rand() % NKEYS;
            void *v = NULL;
            size_t len = 0;
            unsigned wr = 0, seq = 0;
            MT_OK(S, mpistore_get(S, keys[k], &v, &len));
            verify_value(v, len, &wr, &seq);
            if (wr < 64) { /* per key, one writer's values never go back in time */
                if (seq < last[k][wr])
                    fail_msg("rank %d: key %d went back from writer %u seq %u to %u", mt_rank, k,
                             wr, last[k][wr], seq);
                last[k][wr] = seq;
            }
            mpistore_free(v);
            r++;
        }
    }
    mt_barrier();
}

static const struct CMUnitTest tests[] = {
    MT_TEST(concurrency_add_totals_and_unique_results),
    MT_TEST(concurrency_compare_set_single_winner),
    MT_TEST(concurrency_same_new_key_inserted_once),
    MT_TEST(concurrency_fresh_keys_created_by_all),
    MT_TEST(concurrency_delete_exactly_once),
    MT_TEST(concurrency_no_torn_values),
};

MT_MAIN("concurrency", tests)
