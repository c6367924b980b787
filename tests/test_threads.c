/* With MPI_THREAD_MULTIPLE one handle may be shared by threads: calls are
 * serialised, and a blocking call lets the other threads run while it waits. */
#include "mpitest.h"

#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static mpistore_t *S;

static int setup(void **state)
{
    (void)state;
    if (mt_thread_level != MPI_THREAD_MULTIPLE)
        fail_msg("MPI provided thread level %d, these tests need MPI_THREAD_MULTIPLE",
                 mt_thread_level);
    S = mt_open(NULL);
    return S ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    mt_close(S);
    return 0;
}

typedef struct getter {
    const char *key;
    int rc;
    char value[32];
} getter_t;

static void *get_thread(void *arg)
{
    getter_t *g = arg;
    void *v = NULL;
    size_t len = 0;
    g->rc = mpistore_get(S, g->key, &v, &len);
    if (g->rc == 0) {
        memcpy(g->value, v, len < sizeof g->value - 1 ? len : sizeof g->value - 1);
        mpistore_free(v);
    }
    return NULL;
}

static void threads_blocked_get_lets_set_through(void **state)
{
    (void)state;
    char key[96];
    snprintf(key, sizeof key, "%s/%d", mt_unique("thr-get"), mt_rank);
    getter_t g = {.key = key, .rc = -1};
    pthread_t t;
    MT_OK(S, mpistore_set_timeout(S, 10.0));
    assert_int_equal(pthread_create(&t, NULL, get_thread, &g), 0);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL); /* the other thread is now blocked in get() */
    double t0 = MPI_Wtime();
    MT_OK(S, mpistore_set(S, key, "through", 7)); /* same handle, other thread */
    pthread_join(t, NULL);
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.value, "through");
    assert_true(MPI_Wtime() - t0 < 5.0);
    MT_OK(S, mpistore_set_timeout(S, 300.0));
    mt_barrier();
}

#define THREADS 4
#define ADDS 300

static const char *add_key;
static void *add_thread(void *arg)
{
    int *bad = arg;
    for (int i = 0; i < ADDS; i++)
        if (mpistore_add(S, add_key, 1, NULL) != 0)
            (*bad)++;
    return NULL;
}

static void threads_shared_handle_adds_are_exact(void **state)
{
    (void)state;
    add_key = mt_unique("thr-add");
    pthread_t t[THREADS];
    int bad[THREADS] = {0};
    mt_barrier();
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, add_thread, &bad[i]), 0);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(bad[i], 0);
    }
    mt_barrier();
    int64_t total = 0;
    MT_OK(S, mpistore_add(S, add_key, 0, &total));
    assert_int_equal(total, (int64_t)mt_size * THREADS * ADDS);
    mt_barrier();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(threads_blocked_get_lets_set_through, setup, teardown),
    cmocka_unit_test_setup_teardown(threads_shared_handle_adds_are_exact, setup, teardown),
};

MT_MAIN_THREADS("threads", tests)
