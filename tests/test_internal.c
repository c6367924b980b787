/* White-box tests: situations the public API cannot arrange on purpose
 * (fingerprint collisions, stale hints, a taken home bucket), built with the
 * library's internal headers. */
#include "mpitest.h"
#include "ops.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Two keys with the same fingerprint and home bucket in store s (a and b,
 * 32 bytes each). */
static void find_collision(mpistore_t *s, char *a, char *b)
{
    enum { N = 1 << 19 };
    uint64_t *tab = calloc(N, sizeof *tab); /* (fp<<32 | home) -> i+1 */
    uint32_t *idx = calloc(N, sizeof *idx);
    a[0] = b[0] = 0;
    for (uint32_t i = 0; i < N && !a[0]; i++) {
        char key[32];
        mpistore__key_t k;
        snprintf(key, sizeof key, "fp%u", i);
        assert_int_equal(mpistore__key_of(s, key, &k), 0);
        uint64_t tag = ((uint64_t)k.fp << 8) | k.home;
        size_t h = (size_t)((tag * 0x9e3779b97f4a7c15ULL) >> 45) & (N - 1);
        while (tab[h] && tab[h] != tag)
            h = (h + 1) & (N - 1);
        if (tab[h]) {
            snprintf(a, 32, "fp%u", idx[h]);
            snprintf(b, 32, "%s", key);
        } else {
            tab[h] = tag;
            idx[h] = i;
        }
        mpistore__key_release(&k);
    }
    free(tab);
    free(idx);
    assert_true(a[0]);
}

/* Two keys with the same fingerprint and home bucket stay distinct */
static void internal_fingerprint_collision(void **state)
{
    (void)state;
    mpistore_t *s = mt_open_self(2, 65536, 1024);
    char a[32], b[32];
    find_collision(s, a, b);
    MT_OK(s, mpistore_set(s, a, "A", 1));
    MT_OK(s, mpistore_set(s, b, "B", 1));
    MT_OK(s, mpistore_set_timeout(s, 1.0));
    mt_expect_str(s, a, "A");
    mt_expect_str(s, b, "B");
    int64_t n = 0;
    MT_OK(s, mpistore_num_keys(s, &n));
    assert_int_equal(n, 2);
    MT_OK(s, mpistore_close(s));
}

/* multi_get of a counter whose probe window holds a second candidate (same
 * fingerprint and home bucket): its value is the counter's, as get says.
 * multi_get used to return the counter word of a read it had not made (0). */
static void internal_multi_get_collision_counter(void **state)
{
    (void)state;
    mpistore_t *s = mt_open_self(2, 65536, 1024);
    char a[32], b[32];
    find_collision(s, a, b);
    int64_t sum = 0;
    MT_OK(s, mpistore_set(s, a, "A", 1));
    MT_OK(s, mpistore_add(s, b, 10, &sum));
    MT_OK(s, mpistore_add(s, b, 32, &sum));
    assert_int_equal(sum, 42);
    MT_OK(s, mpistore_set_timeout(s, 5.0));
    const char *keys[] = {b, a};
    void *vals[2] = {NULL, NULL};
    size_t lens[2] = {0, 0};
    MT_OK(s, mpistore_multi_get(s, keys, 2, vals, lens));
    if (lens[0] != 2 || memcmp(vals[0], "42", 2) != 0)
        fail_msg("multi_get of counter %s (colliding with %s) returned '%.*s', expected '42'", b, a,
                 (int)lens[0], (const char *)vals[0]);
    assert_int_equal(lens[1], 1);
    assert_memory_equal(vals[1], "A", 1);
    mpistore_free(vals[0]);
    mpistore_free(vals[1]);
    mt_expect_str(s, b, "42");
    MT_OK(s, mpistore_close(s));
}

/* A stale (too small) length hint must not truncate a value */
static void internal_stale_length_hint(void **state)
{
    (void)state;
    mpistore_t *s = mt_open_self(16, 1 << 20, 1 << 16);
    static unsigned char big[5000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 13 + 1);
    MT_OK(s, mpistore_set(s, "big", big, sizeof big));
    mpistore__core_t *c = s->core;
    for (size_t slot = 0; slot < c->lay.nphys; slot++) { /* zero every hint */
        uint32_t zero = 0;
        MPI_Accumulate(&zero, 1, MPI_UINT32_T, 0,
                       (MPI_Aint)mpistore__ctl_off(&c->lay, slot, MS_CTL_BLEN), 1, MPI_UINT32_T,
                       MPI_REPLACE, c->rma.w.win);
    }
    MPI_Win_flush(0, c->rma.w.win);
    void *v = NULL;
    size_t len = 0;
    MT_OK(s, mpistore_get(s, "big", &v, &len));
    assert_int_equal(len, sizeof big);
    assert_memory_equal(v, big, sizeof big);
    mpistore_free(v);
    MT_OK(s, mpistore_append(s, "big", "!", 1));
    MT_OK(s, mpistore_get(s, "big", &v, &len));
    assert_int_equal(len, sizeof big + 1);
    assert_memory_equal(v, big, sizeof big);
    mpistore_free(v);
    MT_OK(s, mpistore_close(s));
}

/* Racing inserts of one key when the home bucket is taken by another key */
static void internal_same_key_home_taken(void **state)
{
    (void)state;
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.keys_per_rank = 2; /* 4 buckets per rank */
    mpistore_t *s = mt_open(&o);
    int rounds = mt_slow() ? 100 : 500; /* 3 barriers and a num_keys each */
    for (int round = 0; round < rounds; round++) {
        char race[64], fill[64];
        snprintf(race, sizeof race, "race%d", round);
        /* a filler with the race key's rank and home bucket */
        mpistore__key_t kr, kf;
        mpistore__key_of(s, race, &kr);
        for (int j = 0;; j++) {
            snprintf(fill, sizeof fill, "fill%d.%d", round, j);
            mpistore__key_of(s, fill, &kf);
            int ok = kf.rank == kr.rank && kf.home == kr.home;
            mpistore__key_release(&kf);
            if (ok)
                break;
        }
        mpistore__key_release(&kr);
        if (mt_rank == 0)
            MT_OK(s, mpistore_set(s, fill, "f", 1));
        mt_barrier();
        MT_OK(s, mpistore_set(s, race, "r", 1));
        mt_barrier();
        int64_t n = 0;
        MT_OK(s, mpistore_num_keys(s, &n));
        if (n != 2)
            fail_msg("round %d: %lld keys, expected 2", round, (long long)n);
        mt_barrier();
        if (mt_rank == 0) {
            MT_OK(s, mpistore_delete_key(s, race, NULL));
            MT_OK(s, mpistore_delete_key(s, fill, NULL));
            bool all = true;
            const char *keys[] = {race};
            MT_OK(s, mpistore_check(s, keys, 1, &all));
            assert_false(all);
        }
        mt_barrier();
    }
    mt_close(s);
}

/* A look stops at a slot never published (one node, design.md "A look stops
 * at a slot never published"): a key must never be placed past such a slot
 * while another rank's insert holds it, or looks would miss the key.  Rank
 * 0 takes the slot after key a's home slot as a claiming insert does (lock
 * word 0 -> locked), then sets b, of the same home: where looks stop there,
 * the set waits for the slot (and times out, the slot never being given
 * back); elsewhere it goes past it.  Whatever it did, a set that returned OK
 * is seen by every rank's look, and after the slot is given back b lands. */
static void internal_insert_waits_for_unpublished_slot(void **state)
{
    (void)state;
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.keys_per_rank = 64;
    mpistore_t *s = mt_open(&o);
    mpistore__core_t *c = s->core;
    char a[64], b[64];
    mpistore__key_t ka, kb;
    snprintf(a, sizeof a, "unpub.a");
    mpistore__key_of(s, a, &ka);
    for (int j = 0;; j++) { /* b: a's home rank and bucket */
        snprintf(b, sizeof b, "unpub.b%d", j);
        mpistore__key_of(s, b, &kb);
        int ok = kb.rank == ka.rank && kb.home == ka.home;
        mpistore__key_release(&kb);
        if (ok)
            break;
    }
    int t = ka.rank;
    size_t lockoff = mpistore__ctl_off(&c->lay, ka.home + 1, MS_CTL_LOCK);
    int stops = mpistore__rma_immediate(&c->rma, lockoff);
    mpistore__key_release(&ka);
    const char *keys[] = {b};
    bool all = false;
    if (mt_rank == 0) {
        const uint32_t never = 0, locked = 1;
        uint32_t got = 7;
        MT_OK(s, mpistore_set(s, a, "a", 1)); /* a takes the home slot */
        assert_int_equal(mpistore__cas_u32(&c->rma, t, lockoff, &locked, &never, &got), 0);
        assert_int_equal(mpistore__flush(&c->rma, t), 0);
        assert_int_equal(got, never); /* the slot after it was never used */
        MT_OK(s, mpistore_set_timeout(s, 0.2));
        int rc = mpistore_set(s, b, "b", 1);
        MT_OK(s, mpistore_check(s, keys, 1, &all));
        if (rc == MPISTORE_OK && !all) /* what placing b past the slot did */
            fail_msg("set of '%s' returned OK, then a look misses it", b);
        if (stops && rc != -MPISTORE_ETIMEDOUT)
            fail_msg("set of '%s' past a slot never published -> %s, expected ETIMEDOUT (%s)", b,
                     mpistore_errname(rc), mpistore_errmsg(s));
        if (!stops && rc != MPISTORE_OK)
            fail_msg("set of '%s' (MPI's path) -> %s: %s", b, mpistore_errname(rc),
                     mpistore_errmsg(s));
        assert_int_equal(all, rc == MPISTORE_OK);
        MT_OK(s, mpistore_set_timeout(s, 60.0));
    }
    mt_barrier();
    MT_OK(s, mpistore_check(s, keys, 1, &all)); /* every rank sees what rank 0 saw */
    assert_int_equal(all, !stops);
    mt_barrier();
    if (mt_rank == 0) {
        const uint32_t never = 0;
        assert_int_equal(mpistore__replace_u32(&c->rma, t, lockoff, &never), 0);
        assert_int_equal(mpistore__flush(&c->rma, t), 0);
        MT_OK(s, mpistore_set(s, b, "b2", 2)); /* given back: b lands (in that slot) */
    }
    mt_barrier();
    mt_expect_str(s, b, "b2");
    mt_expect_str(s, a, "a");
    mt_close(s);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(internal_insert_waits_for_unpublished_slot),
    cmocka_unit_test(internal_fingerprint_collision),
    cmocka_unit_test(internal_multi_get_collision_counter),
    cmocka_unit_test(internal_stale_length_hint),
    cmocka_unit_test(internal_same_key_home_taken),
};

MT_MAIN("internal", tests)
