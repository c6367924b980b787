/* list_keys (all ranks' slots, views, queues excluded) and clone (own timeout
 * and message, close order, use from another thread). */
#include "mpitest.h"

#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* list the handle's keys, sorted, joined with ',' */
static char *listed(mpistore_t *s)
{
    char **keys = NULL;
    size_t n = 0, total = 1;
    MT_OK(s, mpistore_list_keys(s, &keys, &n));
    assert_non_null(keys);
    qsort(keys, n, sizeof *keys, cmp_str);
    for (size_t i = 0; i < n; i++)
        total += strlen(keys[i]) + 1;
    char *out = calloc(total, 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, ",");
        strcat(out, keys[i]);
        mpistore_free(keys[i]);
    }
    mpistore_free(keys);
    return out;
}

static void listkeys_every_rank_sees_every_key(void **state)
{
    (void)state;
    mpistore_t *s = mt_store;
    char key[64];
    const int per = 50;
    char *empty = listed(s);
    assert_string_equal(empty, "");
    free(empty);
    mt_barrier();
    for (int i = 0; i < per; i++) {
        snprintf(key, sizeof key, "lk/%d/%03d", mt_rank, i);
        MT_OK(s, mpistore_set(s, key, "v", 1));
    }
    MT_OK(s, mpistore_queue_push(s, "lk/queue", "q", 1)); /* not a key */
    mt_barrier();
    char **keys = NULL;
    size_t n = 0;
    MT_OK(s, mpistore_list_keys(s, &keys, &n));
    assert_int_equal(n, (size_t)per * (size_t)mt_size);
    qsort(keys, n, sizeof *keys, cmp_str);
    for (int r = 0, k = 0; r < mt_size; r++)
        for (int i = 0; i < per; i++, k++) {
            snprintf(key, sizeof key, "lk/%d/%03d", r, i);
            assert_string_equal(keys[k], key);
        }
    for (size_t i = 0; i < n; i++)
        mpistore_free(keys[i]);
    mpistore_free(keys);
    int64_t count = 0;
    MT_OK(s, mpistore_num_keys(s, &count));
    assert_int_equal(count, per * mt_size);
    mt_barrier();
}

static void listkeys_views_strip_their_prefix(void **state)
{
    (void)state;
    mpistore_t *s = mt_store, *a = NULL, *ac = NULL;
    MT_OK(s, mpistore_prefix(&a, s, "a"));
    MT_OK(a, mpistore_prefix(&ac, a, "c"));
    if (mt_rank == 0) {
        MT_OK(a, mpistore_set(a, "x", "1", 1));
        MT_OK(a, mpistore_set(a, "y", "1", 1));
        MT_OK(ac, mpistore_set(ac, "w", "1", 1));
        MT_OK(s, mpistore_set(s, "b/z", "1", 1));
        MT_OK(s, mpistore_set(s, "ab", "1", 1)); /* shares "a" but not "a/" */
        MT_OK(a, mpistore_queue_push(a, "qq", "1", 1));
    }
    mt_barrier();
    char *l = listed(a);
    assert_string_equal(l, "c/w,x,y");
    free(l);
    l = listed(ac);
    assert_string_equal(l, "w");
    free(l);
    l = listed(s);
    assert_string_equal(l, "a/c/w,a/x,a/y,ab,b/z");
    free(l);
    MT_ERR(s, MPISTORE_EINVAL, mpistore_list_keys(s, NULL, NULL));
    MT_OK(a, mpistore_close(ac));
    MT_OK(s, mpistore_close(a));
    mt_barrier();
}

/* list_keys while other ranks set and delete: every key that stays is
 * listed, and nothing else than the keys ever written. */
static void listkeys_under_concurrent_writes(void **state)
{
    (void)state;
    mpistore_t *s = mt_store;
    char key[64];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "stay/%d/%d", mt_rank, i);
        MT_OK(s, mpistore_set(s, key, "v", 1));
    }
    mt_barrier();
    for (int round = 0; round < 20; round++) {
        snprintf(key, sizeof key, "churn/%d/%d", mt_rank, round);
        MT_OK(s, mpistore_set(s, key, "v", 1));
        char **keys = NULL;
        size_t n = 0, stay = 0;
        MT_OK(s, mpistore_list_keys(s, &keys, &n));
        for (size_t i = 0; i < n; i++) {
            if (strncmp(keys[i], "stay/", 5) == 0)
                stay++;
            else if (strncmp(keys[i], "churn/", 6) != 0)
                fail_msg("rank %d: list_keys returned '%s'", mt_rank, keys[i]);
            mpistore_free(keys[i]);
        }
        mpistore_free(keys);
        assert_int_equal(stay, 20 * (size_t)mt_size);
        MT_OK(s, mpistore_delete_key(s, key, NULL));
    }
    mt_barrier();
}

static void clone_shares_store_own_timeout_and_close_order(void **state)
{
    (void)state;
    mpistore_t *s = mt_store, *c = NULL, *v = NULL, *vc = NULL;
    MT_OK(s, mpistore_set_timeout(s, 7.0));
    MT_OK(s, mpistore_clone(&c, s));
    assert_true(mpistore_timeout(c) == 7.0);
    char key[32];
    snprintf(key, sizeof key, "cl/%d", mt_rank);
    MT_OK(c, mpistore_set(c, key, "via clone", 9));
    mt_expect_str(s, key, "via clone");
    MT_OK(c, mpistore_set_timeout(c, 0.1));
    assert_true(mpistore_timeout(s) == 7.0); /* its own timeout */
    MT_ERR(c, MPISTORE_ETIMEDOUT, mpistore_get(c, "cl/missing", &(void *){0}, &(size_t){0}));
    assert_string_equal(mpistore_errmsg(s), ""); /* its own message */
    /* clone of a view keeps the prefix */
    MT_OK(s, mpistore_prefix(&v, s, "pv"));
    MT_OK(v, mpistore_clone(&vc, v));
    MT_OK(vc, mpistore_set(vc, key, "p", 1));
    char full[64];
    snprintf(full, sizeof full, "pv/%s", key);
    mt_expect_str(s, full, "p");
    /* the base cannot close while a clone is open; nothing collective ran */
    MT_ERR(s, MPISTORE_ESTATE, mpistore_close(s));
    assert_non_null(strstr(mpistore_errmsg(s), "clone"));
    MT_ERR(v, MPISTORE_ESTATE, mpistore_close(v));
    MT_OK(vc, mpistore_close(vc));
    MT_OK(v, mpistore_close(v));
    MT_OK(c, mpistore_close(c));
    assert_int_equal(mpistore_clone(NULL, s), -MPISTORE_EINVAL);
    assert_int_equal(mpistore_clone(&c, NULL), -MPISTORE_EINVAL);
    mt_barrier(); /* teardown closes s */
}

typedef struct getter {
    mpistore_t *h;
    int rc;
    char value[32];
} getter_t;

static void *clone_get_thread(void *arg)
{
    getter_t *g = arg;
    void *v = NULL;
    size_t len = 0;
    g->rc = mpistore_get(g->h, "thr/ready", &v, &len);
    if (g->rc == 0) {
        memcpy(g->value, v, len < sizeof g->value - 1 ? len : sizeof g->value - 1);
        mpistore_free(v);
    }
    mpistore_close(g->h);
    return NULL;
}

static void clone_used_from_another_thread(void **state)
{
    (void)state;
    if (mt_thread_level != MPI_THREAD_MULTIPLE) {
        mt_barrier();
        skip(); /* documented: sharing a store between threads needs it */
    }
    mpistore_t *s = mt_store;
    getter_t g = {.rc = -1};
    MT_OK(s, mpistore_clone(&g.h, s));
    MT_OK(g.h, mpistore_set_timeout(g.h, 60.0));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, clone_get_thread, &g), 0);
    mt_barrier();
    if (mt_rank == 0)
        MT_OK(s, mpistore_set(s, "thr/ready", "go", 2));
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.value, "go");
    mt_barrier();
}

static const struct CMUnitTest tests[] = {
    MT_TEST(listkeys_every_rank_sees_every_key),
    MT_TEST(listkeys_views_strip_their_prefix),
    MT_TEST(listkeys_under_concurrent_writes),
    MT_TEST(clone_shares_store_own_timeout_and_close_order),
    MT_TEST(clone_used_from_another_thread),
};

MT_MAIN_THREADS("listclone", tests)
