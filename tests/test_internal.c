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

/* Keys a and b of one home rank and home bucket (b found by trying names). */
static void same_bucket(mpistore_t *s, const char *tag, char *a, char *b, size_t n,
                        mpistore__key_t *ka)
{
    mpistore__key_t kb;
    snprintf(a, n, "%s.a", tag);
    mpistore__key_of(s, a, ka);
    for (int j = 0;; j++) {
        snprintf(b, n, "%s.b%d", tag, j);
        mpistore__key_of(s, b, &kb);
        int ok = kb.rank == ka->rank && kb.home == ka->home;
        mpistore__key_release(&kb);
        if (ok)
            break;
    }
}

/* A store of 64 keys per rank, and keys a and b of it with one home rank
 * and home bucket (*ka: a's, to release). */
static mpistore_t *open_with_pair(const char *tag, char *a, char *b, size_t n, mpistore__key_t *ka)
{
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.keys_per_rank = 64;
    mpistore_t *s = mt_open(&o);
    same_bucket(s, tag, a, b, n, ka);
    return s;
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
    char a[64], b[64];
    mpistore__key_t ka;
    mpistore_t *s = open_with_pair("unpub", a, b, sizeof a, &ka);
    mpistore__core_t *c = s->core;
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
        MT_OK(s, mpistore_set_timeout(s, stops ? 0.2 : 60.0)); /* MPI's path: slow cells */
        int rc = mpistore_set(s, b, "b", 1);
        MT_OK(s, mpistore_set_timeout(s, 60.0));
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

/* The flush hook of the one-node path (rma.h) as a rival insert: at the
 * first flush after the home slot was locked (lock_home's), it claims the
 * never used slot after it, between the look under the home lock and the
 * insert's own claim of that slot. */
static struct {
    mpistore__core_t *c;
    int t;
    size_t home, next;
    int fired;
} rival;

static void rival_claims_next(void)
{
    uint32_t home = 0, got = 7;
    const uint32_t never = 0, locked = 1;
    if (rival.fired || mpistore__read_u32s(&rival.c->rma, rival.t, rival.home, &home, 1) != 0 ||
        !mpistore__lock_held(home))
        return;
    rival.fired =
        mpistore__cas_u32(&rival.c->rma, rival.t, rival.next, &locked, &never, &got) == 0 &&
        got == never;
}

/* The other way of not getting the slot never published: the insert's claim
 * of it loses the race.  It must not go on to the slots after it, which its
 * look did not read (given as 0): it waits for the rival (here, for ever:
 * ETIMEDOUT) and never reports a key that looks cannot find.  One node only
 * (the hook is called by its flushes). */
static void internal_insert_lost_race_for_unpublished_slot(void **state)
{
    (void)state;
    char a[64], b[64];
    mpistore__key_t ka;
    mpistore_t *s = open_with_pair("race", a, b, sizeof a, &ka);
    mpistore__core_t *c = s->core;
    size_t home = mpistore__ctl_off(&c->lay, ka.home, MS_CTL_LOCK),
           next = mpistore__ctl_off(&c->lay, ka.home + 1, MS_CTL_LOCK);
    int t = ka.rank;
    mpistore__key_release(&ka);
    if (!mpistore__rma_immediate(&c->rma, next)) {
        mt_close(s);
        skip(); /* MPI's path: looks read whole windows, no hook is called */
    }
    const char *keys[] = {b};
    bool all = false;
    if (mt_rank == 0) {
        MT_OK(s, mpistore_set(s, a, "a", 1)); /* a takes the home slot */
        rival.c = c, rival.t = t, rival.home = home, rival.next = next, rival.fired = 0;
        MT_OK(s, mpistore_set_timeout(s, 0.2));
        mpistore__flush_hook = rival_claims_next;
        int rc = mpistore_set(s, b, "b", 1);
        mpistore__flush_hook = NULL;
        MT_OK(s, mpistore_set_timeout(s, 60.0));
        assert_true(rival.fired); /* the race happened */
        MT_OK(s, mpistore_check(s, keys, 1, &all));
        if (rc == MPISTORE_OK && !all)
            fail_msg("set of '%s' returned OK past the slot it lost, then a look misses it", b);
        if (rc != -MPISTORE_ETIMEDOUT)
            fail_msg("set of '%s' with the next slot taken by a rival -> %s, expected ETIMEDOUT "
                     "(%s)",
                     b, mpistore_errname(rc), mpistore_errmsg(s));
        const uint32_t never = 0; /* the rival gives it back */
        assert_int_equal(mpistore__replace_u32(&c->rma, t, next, &never), 0);
        assert_int_equal(mpistore__flush(&c->rma, t), 0);
        MT_OK(s, mpistore_set(s, b, "b2", 2));
    }
    mt_barrier();
    mt_expect_str(s, b, "b2");
    mt_close(s);
}

/* A slot's lock version after 2^31 - 1 publications goes on at 2^22, not at
 * 0 (which means "never published"): else a delete by rank 0 there would
 * leave lock word 0 and descriptor 0, and looks of its home bucket would
 * stop at it and miss a key placed after it. */
static void internal_lock_version_wrap(void **state)
{
    (void)state;
    assert_int_equal(mpistore__lock_next_ver(0), 1);
    assert_int_equal(mpistore__lock_next_ver((5u << 1) | 1u), 6);
    assert_int_equal(mpistore__lock_next_ver(0x7FFFFFFEu << 1), 0x7FFFFFFFu);
    assert_int_equal(mpistore__lock_next_ver(0x7FFFFFFFu << 1), 1u << 22);
    char a[64], b[64];
    mpistore__key_t ka;
    mpistore_t *s = open_with_pair("wrap", a, b, sizeof a, &ka);
    mpistore__core_t *c = s->core;
    int t = ka.rank;
    size_t lockoff = mpistore__ctl_off(&c->lay, ka.home, MS_CTL_LOCK),
           descoff = mpistore__desc_off(&c->lay, ka.home);
    mpistore__key_release(&ka);
    const char *keys[] = {b};
    bool all = false;
    if (mt_rank == 0) {
        MT_OK(s, mpistore_set(s, a, "a", 1)); /* home slot */
        MT_OK(s, mpistore_set(s, b, "b", 1)); /* the slot after it */
        /* a's slot as after 2^31 - 1 publications (nobody else writes it) */
        uint64_t d = 0;
        assert_int_equal(mpistore__read_u64(&c->rma, t, descoff, &d), 0);
        assert_int_equal(mpistore__flush(&c->rma, t), 0);
        uint64_t nd = mpistore__desc_make(0x7FFFFFFFu, 1, (uint32_t)mpistore__desc_rank(d),
                                          mpistore__desc_uoff(d));
        const uint32_t nl = 0x7FFFFFFFu << 1;
        assert_int_equal(mpistore__replace_u64(&c->rma, t, descoff, &nd), 0);
        assert_int_equal(mpistore__replace_u32(&c->rma, t, lockoff, &nl), 0);
        assert_int_equal(mpistore__flush(&c->rma, t), 0);
        mt_expect_str(s, a, "a");
        MT_OK(s, mpistore_delete_key(s, a, &all)); /* by rank 0: descriptor 0 */
        assert_true(all);
        MT_OK(s, mpistore_check(s, keys, 1, &all));
        if (!all)
            fail_msg("key '%s' after a slot deleted at lock version 2^31 - 1 is not found", b);
        uint32_t l = 0;
        assert_int_equal(mpistore__read_u32s(&c->rma, t, lockoff, &l, 1), 0);
        assert_int_equal(mpistore__flush(&c->rma, t), 0);
        assert_int_equal(l, (1u << 22) << 1);
    }
    mt_barrier();
    MT_OK(s, mpistore_check(s, keys, 1, &all)); /* b, after a's slot, is still found */
    assert_true(all);
    mt_expect_str(s, b, "b");
    mt_close(s);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(internal_insert_lost_race_for_unpublished_slot),
    cmocka_unit_test(internal_lock_version_wrap),
    cmocka_unit_test(internal_insert_waits_for_unpublished_slot),
    cmocka_unit_test(internal_fingerprint_collision),
    cmocka_unit_test(internal_multi_get_collision_counter),
    cmocka_unit_test(internal_stale_length_hint),
    cmocka_unit_test(internal_same_key_home_taken),
};

MT_MAIN("internal", tests)
