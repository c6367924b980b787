/* Every error code, provoked for real, and "a failed call changes nothing". */
#include "mpitest.h"
#include "ops.h" /* white-box: which window a store has */

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- malloc failure injection (this binary links with --wrap=malloc) ---- */
void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
static int fail_mallocs_after = -1; /* -1: never fail */
void *__wrap_malloc(size_t n)
{
    if (fail_mallocs_after == 0)
        return NULL;
    if (fail_mallocs_after > 0)
        fail_mallocs_after--;
    return __real_malloc(n);
}

/* ---- MPI_Win_allocate failing on one rank only (--wrap=MPI_Win_allocate):
 * the rank takes part in the collective call, then reports an error, as an
 * implementation does when only its own part of the window failed. ---- */
int __real_MPI_Win_allocate(MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm,
                            void *baseptr, MPI_Win *win);
int __wrap_MPI_Win_allocate(MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm,
                            void *baseptr, MPI_Win *win);
static int fail_win_allocate_on = -1;      /* the rank whose next allocation fails, -1: none */
static MPI_Win wrapped_win = MPI_WIN_NULL; /* the window of that call, on every rank */
int __wrap_MPI_Win_allocate(MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm,
                            void *baseptr, MPI_Win *win)
{
    int rc = __real_MPI_Win_allocate(size, disp_unit, info, comm, baseptr, win);
    if (rc != MPI_SUCCESS || fail_win_allocate_on < 0)
        return rc;
    /* The library cannot free a window that one rank does not have (the
     * free is collective), so it leaves it; the test frees it afterwards,
     * on every rank (MPICH's UCX asserts at MPI_Finalize otherwise). */
    wrapped_win = *win;
    return fail_win_allocate_on == mt_rank ? MPI_ERR_NO_MEM : MPI_SUCCESS;
}

/* The same for the one-node path's shared window (--wrap=MPI_Win_allocate_shared):
 * fail_shared_on fails it on one rank (-2: on every rank). */
int __real_MPI_Win_allocate_shared(MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm,
                                   void *baseptr, MPI_Win *win);
int __wrap_MPI_Win_allocate_shared(MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm,
                                   void *baseptr, MPI_Win *win);
static int fail_shared_on = -1;
static int fail_query_on = -1;                /* the rank whose MPI_Win_shared_query calls fail */
static int shared_calls = 0;                  /* shared windows asked for */
static MPI_Win wrapped_shared = MPI_WIN_NULL; /* the window of a failed call, on every rank */
int __wrap_MPI_Win_allocate_shared(MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm,
                                   void *baseptr, MPI_Win *win)
{
    shared_calls++;
    int rc = __real_MPI_Win_allocate_shared(size, disp_unit, info, comm, baseptr, win);
    if (rc != MPI_SUCCESS || fail_shared_on == -1)
        return rc;
    wrapped_shared = *win;
    return fail_shared_on == mt_rank || fail_shared_on == -2 ? MPI_ERR_NO_MEM : MPI_SUCCESS;
}

/* --wrap=MPI_Win_shared_query: the shared window exists everywhere, but one
 * rank cannot map the others' parts. */
int __real_MPI_Win_shared_query(MPI_Win win, int r, MPI_Aint *size, int *disp_unit, void *baseptr);
int __wrap_MPI_Win_shared_query(MPI_Win win, int r, MPI_Aint *size, int *disp_unit, void *baseptr);
int __wrap_MPI_Win_shared_query(MPI_Win win, int r, MPI_Aint *size, int *disp_unit, void *baseptr)
{
    if (fail_query_on == mt_rank)
        return MPI_ERR_WIN;
    return __real_MPI_Win_shared_query(win, r, size, disp_unit, baseptr);
}

#define S mt_store

static void expect_absent(mpistore_t *s, const char *key)
{
    bool all = true;
    const char *keys[] = {key};
    MT_OK(s, mpistore_check(s, keys, 1, &all));
    if (all)
        fail_msg("rank %d: key '%s' exists after a failed call", mt_rank, key);
}

static void errors_einval_arguments(void **state)
{
    (void)state;
    const char *k = mt_unique("inval");
    void *v = (void *)0x1;
    size_t len = 7;
    bool b = false;
    int64_t n = 0;
    const char *keys[] = {k};
    mpistore_stats_t st;
    /* NULL handle */
    assert_int_equal(mpistore_set(NULL, k, "x", 1), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_get(NULL, k, &v, &len), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_add(NULL, k, 1, NULL), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_compare_set(NULL, k, "", 0, "x", 1, &v, &len), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_delete_key(NULL, k, &b), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_check(NULL, keys, 1, &b), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_wait(NULL, keys, 1, 1.0), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_num_keys(NULL, &n), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_multi_get(NULL, keys, 1, &v, &len), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_append(NULL, k, "x", 1), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_set_timeout(NULL, 1.0), -MPISTORE_EINVAL);
    assert_true(mpistore_timeout(NULL) < 0);
    assert_int_equal(mpistore_prefix(&S, NULL, "p"), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_stats(NULL, &st, false), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_close(NULL), MPISTORE_OK);
    /* NULL and empty keys */
    MT_ERR(S, MPISTORE_EINVAL, mpistore_set(S, NULL, "x", 1));
    assert_non_null(strstr(mpistore_errmsg(S), "NULL"));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_set(S, "", "x", 1));
    assert_non_null(strstr(mpistore_errmsg(S), "empty"));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_get(S, "", &v, &len));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_add(S, NULL, 1, &n));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_delete_key(S, "", &b));
    /* NULL values and outputs */
    MT_ERR(S, MPISTORE_EINVAL, mpistore_set(S, k, NULL, 3));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_append(S, k, NULL, 3));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_get(S, k, NULL, &len));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_get(S, k, &v, NULL));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_compare_set(S, k, "", 0, "x", 1, NULL, &len));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_compare_set(S, k, NULL, 2, "x", 1, &v, &len));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_compare_set(S, k, "", 0, NULL, 1, &v, &len));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_check(S, keys, 1, NULL));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_check(S, NULL, 2, &b));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_num_keys(S, NULL));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_multi_get(S, keys, 1, NULL, &len));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_multi_set(S, keys, NULL, &len, 1));
    const char *badkeys[] = {k, ""};
    const void *vals[] = {"a", "b"};
    size_t lens[] = {1, 1};
    MT_ERR(S, MPISTORE_EINVAL, mpistore_multi_set(S, badkeys, vals, lens, 2));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_stats(S, NULL, false));
    /* bad timeouts */
    MT_ERR(S, MPISTORE_EINVAL, mpistore_set_timeout(S, -1.0));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_set_timeout(S, NAN));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_set_timeout(S, INFINITY));
    assert_true(mpistore_timeout(S) == 300.0);
    MT_ERR(S, MPISTORE_EINVAL, mpistore_wait(S, keys, 1, -2.0));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_wait(S, keys, 1, NAN));
    /* prefix views */
    mpistore_t *view = (mpistore_t *)0x1;
    MT_ERR(S, MPISTORE_EINVAL, mpistore_prefix(&view, S, ""));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_prefix(&view, S, NULL));
    MT_ERR(S, MPISTORE_EINVAL, mpistore_prefix(NULL, S, "p"));
    assert_ptr_equal(view, (mpistore_t *)0x1);
    /* outputs untouched, nothing created */
    assert_ptr_equal(v, (void *)0x1);
    assert_int_equal(len, 7);
    expect_absent(S, k);
    mt_barrier();
}

static void errors_einval_open_options(void **state)
{
    (void)state;
    mpistore_options_t o;
    mpistore_t *s = (mpistore_t *)0x1;
    mpistore_options_init(&o);
    o.version = 99;
    assert_int_equal(mpistore_open(&s, MPI_COMM_WORLD, &o), -MPISTORE_EINVAL);
    assert_non_null(strstr(mpistore_errmsg(NULL), "version"));
    mpistore_options_init(&o);
    o.keys_per_rank = 0;
    assert_int_equal(mpistore_open(&s, MPI_COMM_WORLD, &o), -MPISTORE_EINVAL);
    mpistore_options_init(&o);
    o.timeout_s = -5;
    assert_int_equal(mpistore_open(&s, MPI_COMM_WORLD, &o), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_open(&s, MPI_COMM_NULL, NULL), -MPISTORE_EINVAL);
    /* one rank passes NULL out: every rank fails, nobody hangs */
    mpistore_options_init(&o);
    assert_int_equal(mpistore_open(mt_rank == 0 ? NULL : &s, MPI_COMM_WORLD, &o), -MPISTORE_EINVAL);
    if (mt_size > 1) { /* differing options */
        o.keys_per_rank = 4096 + (size_t)mt_rank;
        assert_int_equal(mpistore_open(&s, MPI_COMM_WORLD, &o), -MPISTORE_EINVAL);
        assert_non_null(strstr(mpistore_errmsg(NULL), "different"));
    }
    assert_ptr_equal(s, (mpistore_t *)0x1);
    mt_barrier();
}

/* replicas (options version 4): an old options version ignores the field;
 * ranks that differ, or a bad MPISTORE_REPLICAS, fail every rank; a store
 * with replicas does not grow, and says so. */
static void errors_replicas(void **state)
{
    (void)state;
    mpistore_options_t o;
    mpistore_t *s = NULL;
    mpistore_options_init(&o);
    o.version = 3;
    o.replicas = 7; /* not a field of version 3 */
    MT_OK(NULL, mpistore_open(&s, MPI_COMM_WORLD, &o));
    MT_OK(s, mpistore_close(s));
    s = (mpistore_t *)0x1;
    if (mt_size > 1) {
        mpistore_options_init(&o);
        o.replicas = mt_rank == 1;
        assert_int_equal(mpistore_open(&s, MPI_COMM_WORLD, &o), -MPISTORE_EINVAL);
        assert_non_null(strstr(mpistore_errmsg(NULL), "different"));
    }
    setenv("MPISTORE_REPLICAS", "2", 1);
    assert_int_equal(mpistore_open(&s, MPI_COMM_WORLD, NULL), -MPISTORE_EINVAL);
    assert_non_null(strstr(mpistore_errmsg(NULL), "MPISTORE_REPLICAS='2'"));
    unsetenv("MPISTORE_REPLICAS");
    assert_ptr_equal(s, (mpistore_t *)0x1);
    /* no growth: rank 0 fills its own index (2 keys per rank, 4 slots) */
    mpistore_options_init(&o);
    o.replicas = 1;
    o.keys_per_rank = 2;
    o.timeout_s = 30;
    MT_OK(NULL, mpistore_open(&s, MPI_COMM_WORLD, &o));
    if (mt_rank == 0) {
        int rc = 0, n = 0;
        char key[64], tag[32];
        for (; rc == 0 && n < 64; n++) {
            snprintf(tag, sizeof tag, "full%d", n);
            mt_key_on(s, tag, "", 0, key, sizeof key);
            rc = mpistore_set(s, key, "v", 1);
        }
        assert_int_equal(rc, -MPISTORE_ENOSPC);
        assert_non_null(strstr(mpistore_errmsg(s), "replicas = 1: the index does not grow"));
        assert_true(n > 2);
    }
    mt_barrier();
    MT_OK(s, mpistore_close(s));
    mt_barrier();
}

static void errors_etimedout_get(void **state)
{
    (void)state;
    const char *k = mt_unique("never-set");
    void *v = (void *)0x1;
    size_t len = 7;
    MT_OK(S, mpistore_set_timeout(S, 0.2));
    double t0 = MPI_Wtime();
    MT_ERR(S, MPISTORE_ETIMEDOUT, mpistore_get(S, k, &v, &len));
    double took = MPI_Wtime() - t0;
    /* never early; "late" only if 10x the timeout (a busy machine is no failure) */
    if (took < 0.2 || took > 10 * 0.2)
        fail_msg("rank %d: get with a 0.2 s timeout returned after %.3f s", mt_rank, took);
    const char *msg = mpistore_errmsg(S);
    assert_non_null(strstr(msg, "timeout"));
    assert_non_null(strstr(msg, k));
    assert_non_null(strstr(msg, "home rank"));
    assert_non_null(strstr(msg, " s "));
    assert_ptr_equal(v, (void *)0x1);
    const char *keys[] = {k};
    void *vals[1] = {(void *)0x1};
    MT_ERR(S, MPISTORE_ETIMEDOUT, mpistore_multi_get(S, keys, 1, vals, &len));
    assert_ptr_equal(vals[0], (void *)0x1);
    mt_barrier();
}

/* wait() has one deadline for all its keys, not a fresh timeout per key.  The
 * last rank sets NCHAIN keys one every CHAIN_S seconds while rank 0 waits for
 * all of them plus one that never comes, with a timeout of CHAIN_WAIT_S: a
 * wait that restarted its timeout at each key would follow the chain and
 * return after NCHAIN * CHAIN_S (4 s); one deadline returns after 0.25 s.
 * The bound between them is 10x the expected time, so a busy machine does
 * not fail the test. */
#define NCHAIN 20
#define CHAIN_S 0.2
#define CHAIN_WAIT_S 0.25

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void wait_has_one_deadline(const char *base)
{
    char chain[NCHAIN][96], never[96];
    const char *keys[NCHAIN + 1];
    for (int i = 0; i < NCHAIN; i++) {
        snprintf(chain[i], sizeof chain[i], "%s/chain%d", base, i);
        keys[i] = chain[i];
    }
    snprintf(never, sizeof never, "%s/never", base);
    keys[NCHAIN] = never;
    int last = mt_size - 1;
    mt_barrier();
    if (mt_rank == last) {
        for (int i = 0; i < NCHAIN; i++) {
            sleep_s(CHAIN_S);
            MT_OK(S, mpistore_set(S, chain[i], "x", 1));
        }
    } else if (mt_rank == 0) {
        double t0 = MPI_Wtime();
        MT_ERR(S, MPISTORE_ETIMEDOUT, mpistore_wait(S, keys, NCHAIN + 1, CHAIN_WAIT_S));
        double took = MPI_Wtime() - t0;
        if (took > 10 * CHAIN_WAIT_S)
            fail_msg("wait with a %.2f s timeout took %.3f s: a timeout per key?", CHAIN_WAIT_S,
                     took);
    }
    mt_barrier();
    if (mt_rank == 0) { /* the message names the key that is missing, not the one there */
        const char *two[] = {chain[0], never};
        MT_ERR(S, MPISTORE_ETIMEDOUT, mpistore_wait(S, two, 2, 0.1));
        assert_non_null(strstr(mpistore_errmsg(S), never));
        assert_null(strstr(mpistore_errmsg(S), chain[0]));
        assert_non_null(strstr(mpistore_errmsg(S), "1 of 2 keys missing"));
    }
}

/* Timeout messages name the key's home rank; wait has one deadline for all
 * its keys. */
static void errors_timeout_messages_and_total_deadline(void **state)
{
    (void)state;
    const char *base = mt_unique("home");
    char a[96], want[32];
    int home = -1, last = mt_size - 1;
    for (int j = 0; home != last; j++) { /* a key homed on the last rank */
        snprintf(a, sizeof a, "%s/%d", base, j);
        MT_OK(S, mpistore_key_rank(S, a, &home));
    }
    snprintf(want, sizeof want, "(home rank %d)", last);
    mt_barrier();
    if (mt_rank == 0) {
        const char *keys[] = {a};
        void *v = NULL;
        size_t len = 0;
        MT_ERR(S, MPISTORE_ETIMEDOUT, mpistore_wait(S, keys, 1, 0.1));
        assert_non_null(strstr(mpistore_errmsg(S), want));
        MT_OK(S, mpistore_set_timeout(S, 0.1));
        MT_ERR(S, MPISTORE_ETIMEDOUT, mpistore_get(S, a, &v, &len));
        assert_non_null(strstr(mpistore_errmsg(S), want));
        MT_OK(S, mpistore_set_timeout(S, 300));
    }
    mt_barrier();
    if (mt_size > 1)
        wait_has_one_deadline(base);
    mt_barrier();
}

static void errors_ekeytoolong(void **state)
{
    (void)state;
    char key[1100];
    memset(key, 'k', sizeof key);
    key[1025] = 0; /* 1025 bytes: one over the default max_key_len */
    key[0] = (char)('A' + mt_rank % 26);
    MT_ERR(S, MPISTORE_EKEYTOOLONG, mpistore_set(S, key, "x", 1));
    assert_non_null(strstr(mpistore_errmsg(S), "max_key_len"));
    key[1024] = 0; /* exactly the limit works */
    MT_OK(S, mpistore_set(S, key, "x", 1));
    mt_expect_str(S, key, "x");
    MT_OK(S, mpistore_delete_key(S, key, NULL));
    mpistore_t *v = NULL;
    MT_OK(S, mpistore_prefix(&v, S, "pre"));
    key[1020] = 0; /* "pre/" + 1020 bytes = 1024 */
    MT_OK(v, mpistore_set(v, key, "y", 1));
    MT_OK(v, mpistore_delete_key(v, key, NULL));
    key[1020] = 'k';
    key[1021] = 0;
    MT_ERR(v, MPISTORE_EKEYTOOLONG, mpistore_set(v, key, "y", 1));
    MT_OK(v, mpistore_close(v));
    mt_barrier();
}

static void errors_etoobig(void **state)
{
    (void)state;
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.max_value_len = 16;
    mpistore_t *s = mt_open(&o);
    const char *k = mt_unique("big");
    char kk[96];
    snprintf(kk, sizeof kk, "%s/%d", k, mt_rank);
    MT_OK(s, mpistore_set(s, kk, "0123456789abcde", 15));
    MT_OK(s, mpistore_append(s, kk, "f", 1)); /* exactly max_value_len is fine */
    mt_expect_str(s, kk, "0123456789abcdef");
    MT_OK(s, mpistore_delete_key(s, kk, NULL));
    MT_ERR(s, MPISTORE_ETOOBIG, mpistore_set(s, kk, "0123456789abcdefX", 17));
    assert_non_null(strstr(mpistore_errmsg(s), "max_value_len"));
    expect_absent(s, kk);
    MT_OK(s, mpistore_set(s, kk, "0123456789abcdef", 16));
    MT_ERR(s, MPISTORE_ETOOBIG, mpistore_append(s, kk, "Z", 1));
    mt_expect_str(s, kk, "0123456789abcdef");
    void *cur = NULL;
    size_t len = 0;
    MT_ERR(s, MPISTORE_ETOOBIG,
           mpistore_compare_set(s, kk, "", 0, "0123456789abcdefX", 17, &cur, &len));
    const char *keys[] = {"multi-ok", kk};
    const void *vals[] = {"small", "0123456789abcdefX"};
    size_t lens[] = {5, 17};
    MT_ERR(s, MPISTORE_ETOOBIG, mpistore_multi_set(s, keys, vals, lens, 2));
    expect_absent(s, "multi-ok"); /* validated before anything was written */
    mt_expect_str(s, kk, "0123456789abcdef");
    mt_close(s);
}

static void errors_enospc_key_slots(void **state)
{
    (void)state;
    mpistore_t *s = mt_open_self_limited(4, 65536, 1024, 4, 0);
    char key[32];
    int i;
    for (i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "slot%d", i);
        MT_OK(s, mpistore_set(s, key, key, strlen(key)));
    }
    MT_ERR(s, MPISTORE_ENOSPC, mpistore_set(s, "one-too-many", "x", 1));
    assert_non_null(strstr(mpistore_errmsg(s), "max_keys_per_rank"));
    assert_non_null(strstr(mpistore_errmsg(s), "MPISTORE_MAX_KEYS_PER_RANK"));
    MT_ERR(s, MPISTORE_ENOSPC, mpistore_add(s, "counter-too-many", 1, NULL));
    expect_absent(s, "one-too-many");
    int64_t n = 0;
    MT_OK(s, mpistore_num_keys(s, &n));
    assert_int_equal(n, 4);
    for (i = 0; i < 4; i++) { /* everything intact, and still writable */
        snprintf(key, sizeof key, "slot%d", i);
        mt_expect_str(s, key, key);
        MT_OK(s, mpistore_set(s, key, "new", 3));
    }
    MT_OK(s, mpistore_delete_key(s, "slot0", NULL));
    MT_OK(s, mpistore_set(s, "one-too-many", "x", 1)); /* the freed slot is reused */
    MT_OK(s, mpistore_close(s));
}

static void errors_enospc_value_memory(void **state)
{
    (void)state;
    mpistore_t *s = mt_open_self_limited(64, 8192, 1024, 0, 8192);
    static char val[1000];
    char key[32];
    int stored = 0, rc = 0;
    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof key, "v%d", i);
        memset(val, 'a' + i % 26, sizeof val);
        rc = mpistore_set(s, key, val, sizeof val);
        if (rc)
            break;
        stored++;
    }
    assert_int_equal(rc, -MPISTORE_ENOSPC);
    assert_non_null(strstr(mpistore_errmsg(s), "bytes_per_rank"));
    assert_non_null(strstr(mpistore_errmsg(s), "MPISTORE_MAX_BYTES_PER_RANK"));
    assert_true(stored >= 5 && stored < 9);
    snprintf(key, sizeof key, "v%d", stored);
    expect_absent(s, key);
    for (int i = 0; i < stored; i++) { /* existing keys intact */
        void *v = NULL;
        size_t len = 0;
        snprintf(key, sizeof key, "v%d", i);
        MT_OK(s, mpistore_get(s, key, &v, &len));
        assert_int_equal(len, sizeof val);
        assert_int_equal(((char *)v)[0], 'a' + i % 26);
        assert_int_equal(((char *)v)[999], 'a' + i % 26);
        mpistore_free(v);
    }
    MT_ERR(s, MPISTORE_ENOSPC, mpistore_append(s, "v0", "more", 4));
    MT_OK(s, mpistore_delete_key(s, "v0", NULL)); /* deleting frees the memory */
    snprintf(key, sizeof key, "v%d", stored);
    MT_OK(s, mpistore_set(s, key, val, sizeof val));
    MT_OK(s, mpistore_close(s));
}

static void errors_enotint(void **state)
{
    (void)state;
    const char *k = mt_unique("notint");
    char kk[96];
    int64_t r = 5;
    snprintf(kk, sizeof kk, "%s/%d", k, mt_rank);
    MT_OK(S, mpistore_set(S, kk, "12 ", 3));
    MT_ERR(S, MPISTORE_ENOTINT, mpistore_add(S, kk, 1, &r));
    assert_int_equal(r, 5);
    mt_expect_str(S, kk, "12 ");
    mt_barrier();
}

static void errors_enomem(void **state)
{
    (void)state;
    const char *k = mt_unique("nomem");
    char kk[96];
    snprintf(kk, sizeof kk, "%s/%d", k, mt_rank);
    MT_OK(S, mpistore_set(S, kk, "payload", 7));
    void *v = (void *)0x1;
    size_t len = 9;
    fail_mallocs_after = 0;
    int rc = mpistore_get(S, kk, &v, &len);
    fail_mallocs_after = -1;
    MT_ERR(S, MPISTORE_ENOMEM, rc);
    assert_non_null(strstr(mpistore_errmsg(S), "memory"));
    assert_ptr_equal(v, (void *)0x1);
    assert_int_equal(len, 9);
    mt_expect_str(S, kk, "payload");
    mt_barrier();
}

/* A window the host cannot hold fails on every rank with ENOMEM and a
 * message naming the options, before MPI_Win_allocate: Open MPI 5's osc/sm
 * failed it on one rank and left the others waiting for ever, MPICH 4.0.2
 * crashed or hung, MPICH 5 "succeeded" (tests/transport/repro). */
static void errors_window_too_big(void **state)
{
    (void)state;
    mpistore_options_t o;
    mpistore_t *s = (mpistore_t *)0x1;
    mpistore_options_init(&o);
    o.bytes_per_rank = (size_t)1 << 44; /* 16 TiB per rank: the window cannot exist */
    assert_int_equal(mpistore_open(&s, MPI_COMM_WORLD, &o), -MPISTORE_ENOMEM);
    const char *m = mpistore_errmsg(NULL);
    if (!strstr(m, "does not fit") || !strstr(m, "bytes_per_rank"))
        fail_msg("rank %d: open's message \"%s\" does not say what does not fit", mt_rank, m);
    assert_ptr_equal(s, (mpistore_t *)0x1);
    MT_OK(NULL, mpistore_open(&s, MPI_COMM_WORLD, NULL)); /* and the next open works */
    MT_OK(NULL, mpistore_close(s));
    mt_barrier();
}

/* The window fails on one rank only: every rank's open returns the same
 * error (the failing rank its own message, the others "failed on another
 * rank"), none hangs in a collective the failing rank skipped, and the next
 * open works. */
static void errors_empi_one_rank(void **state)
{
    (void)state;
    if (mt_size < 2)
        skip();
    mpistore_t *s = (mpistore_t *)0x1;
    fail_win_allocate_on = fail_shared_on = mt_size - 1; /* whichever window open makes */
    int rc = mpistore_open(&s, MPI_COMM_WORLD, NULL);
    fail_win_allocate_on = fail_shared_on = -1;
    assert_int_equal(MPI_Win_free(&wrapped_win), MPI_SUCCESS);
    if (wrapped_shared != MPI_WIN_NULL) /* left by open: one rank did not have it */
        assert_int_equal(MPI_Win_free(&wrapped_shared), MPI_SUCCESS);
    assert_int_equal(rc, -MPISTORE_EMPI);
    assert_ptr_equal(s, (mpistore_t *)0x1);
    const char *want = mt_rank == mt_size - 1 ? "MPI_Win_allocate" : "on another rank";
    if (!strstr(mpistore_errmsg(NULL), want))
        fail_msg("rank %d: open's message \"%s\" does not say \"%s\"", mt_rank,
                 mpistore_errmsg(NULL), want);
    MT_OK(NULL, mpistore_open(&s, MPI_COMM_WORLD, NULL));
    MT_OK(s, mpistore_set(s, mt_unique("one_rank"), "x", 1));
    MT_OK(NULL, mpistore_close(s));
    mt_barrier();
}

/* Open with the shared window failing as asked (shared_fail: the rank whose
 * MPI_Win_allocate_shared fails, -2 every rank; query_fail: the rank whose
 * MPI_Win_shared_query fails): open falls back to the ordinary window on
 * every rank and the store works.  On one node (without MPISTORE_SHM=0)
 * open must have asked for the shared window once. */
static void shared_falls_back(int shared_fail, int query_fail)
{
    int one_node = mt_one_node_path();
    mpistore_t *s = NULL;
    shared_calls = 0;
    fail_shared_on = shared_fail;
    fail_query_on = query_fail;
    int rc = mpistore_open(&s, MPI_COMM_WORLD, NULL);
    fail_shared_on = fail_query_on = -1;
    if (wrapped_shared != MPI_WIN_NULL) /* left by open: a rank did not have it */
        assert_int_equal(MPI_Win_free(&wrapped_shared), MPI_SUCCESS);
    MT_OK(NULL, rc);
    if (one_node != (shared_calls == 1))
        fail_msg("rank %d: %d shared windows asked for on %s", mt_rank, shared_calls,
                 one_node ? "one node" : "the MPI path");
    if (s->core->rma.w.peer) /* every rank on the same path: MPI's */
        fail_msg("rank %d: the store kept a shared window after a rank could not use it", mt_rank);
    const char *k = mt_unique("fallback");
    char kk[96];
    snprintf(kk, sizeof kk, "%s/%d", k, mt_rank);
    MT_OK(s, mpistore_set(s, kk, "v", 1));
    snprintf(kk, sizeof kk, "%s/%d", k, (mt_rank + 1) % mt_size);
    mt_expect_str(s, kk, "v"); /* another rank's key, once it is there */
    MT_OK(NULL, mpistore_close(s));
    mt_barrier();
}

/* As when a one-sided component without shared windows is forced
 * (--mca osc pt2pt): the shared window fails on every rank. */
static void errors_shared_fallback(void **state)
{
    (void)state;
    shared_falls_back(-2, -1);
}

/* It fails on one rank only: the others' windows are left to the end of
 * the job (a collective free could not complete), all fall back. */
static void errors_shared_fails_on_one(void **state)
{
    (void)state;
    if (mt_size < 2)
        skip();
    shared_falls_back(mt_size - 1, -1);
}

/* Every rank has it, one cannot map the others' parts: freed together,
 * all fall back. */
static void errors_shared_query_fails(void **state)
{
    (void)state;
    shared_falls_back(-1, mt_size - 1);
}

static void errors_estate(void **state)
{
    (void)state;
    mpistore_t *v = NULL;
    MT_OK(S, mpistore_prefix(&v, S, "views"));
    MT_ERR(S, MPISTORE_ESTATE, mpistore_close(S));
    MT_OK(v, mpistore_close(v));
}

static const struct CMUnitTest tests[] = {
    MT_TEST(errors_einval_arguments),
    cmocka_unit_test(errors_einval_open_options),
    cmocka_unit_test(errors_replicas),
    MT_TEST(errors_etimedout_get),
    MT_TEST(errors_timeout_messages_and_total_deadline),
    MT_TEST(errors_ekeytoolong),
    cmocka_unit_test(errors_etoobig),
    cmocka_unit_test(errors_enospc_key_slots),
    cmocka_unit_test(errors_enospc_value_memory),
    MT_TEST(errors_enotint),
    MT_TEST(errors_enomem),
    cmocka_unit_test(errors_window_too_big),
    cmocka_unit_test(errors_empi_one_rank),
    cmocka_unit_test(errors_shared_fallback),
    cmocka_unit_test(errors_shared_fails_on_one),
    cmocka_unit_test(errors_shared_query_fails),
    MT_TEST(errors_estate),
};

MT_MAIN("errors", tests)
