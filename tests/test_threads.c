/* With MPI_THREAD_MULTIPLE one handle may be shared by threads: calls are
 * serialised, and a blocking call lets the other threads run while it waits. */
#include "mpitest.h"
#include "mpistore_elastic.h"

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
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

/* The elastic helpers run under a timeout of their own (PyTorch's
 * store_timeout), but must not change the handle's: while one thread waits in
 * a barrier with a 120 s timeout, another thread's get on the same handle
 * keeps the handle's 0.3 s.  (The helpers used to set the handle's timeout
 * for their duration: the get then waited 120 s.) */
typedef struct barrier_arg {
    const char *prefix;
    int world_size, rc;
    atomic_int done;
} barrier_arg_t;

static void *barrier_thread(void *arg)
{
    barrier_arg_t *b = arg;
    b->rc = mpistore_barrier(S, mt_rank, b->world_size, b->prefix, 120.0);
    atomic_store(&b->done, 1);
    return NULL;
}

static void threads_helper_timeout_is_not_the_handles(void **state)
{
    (void)state;
    /* one member more than the ranks: the barrier waits until rank 0's main
     * thread arrives for it, below */
    barrier_arg_t b = {.prefix = mt_unique("thr-bar"), .world_size = mt_size + 1, .rc = -1};
    char key[96];
    snprintf(key, sizeof key, "%s/%d", mt_unique("thr-absent"), mt_rank);
    MT_OK(S, mpistore_set_timeout(S, 0.3));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, barrier_thread, &b), 0);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL); /* the barrier is waiting for the missing member */
    if (mpistore_timeout(S) != 0.3)
        fail_msg("rank %d: during a barrier the handle's timeout is %g s, not its own 0.3 s",
                 mt_rank, mpistore_timeout(S));
    void *v = NULL;
    size_t len = 0;
    int rc = mpistore_get(S, key, &v, &len); /* absent: times out */
    char msg[600];
    snprintf(msg, sizeof msg, "%s", mpistore_errmsg(S));
    double waited = 0;
    if (rc != -MPISTORE_ETIMEDOUT || sscanf(msg, "timeout after %lf s", &waited) != 1)
        fail_msg("rank %d: get -> %s '%s', expected a timeout", mt_rank, mpistore_errname(rc), msg);
    if (atomic_load(&b.done))
        fail_msg("rank %d: the barrier ended before the get timed out (rc %s)", mt_rank,
                 mpistore_errname(b.rc));
    if (waited >= 60.0) /* a hang guard: 0.3 s expected, the barrier's 120 s before the fix */
        fail_msg("rank %d: get waited %.1f s, the barrier's timeout, not the handle's", mt_rank,
                 waited);
    mt_barrier();
    if (mt_rank == 0) { /* the missing member arrives: every rank's barrier ends */
        char *last = NULL;
        MT_OK(S, mpistore_barrier_nonblocking(S, b.world_size, b.prefix, &last));
        mpistore_free(last);
    }
    pthread_join(t, NULL);
    if (b.rc != MPISTORE_OK)
        fail_msg("rank %d: barrier -> %s: %s", mt_rank, mpistore_errname(b.rc), mpistore_errmsg(S));
    MT_OK(S, mpistore_set_timeout(S, 300.0));
    mt_barrier();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(threads_blocked_get_lets_set_through, setup, teardown),
    cmocka_unit_test_setup_teardown(threads_shared_handle_adds_are_exact, setup, teardown),
    cmocka_unit_test_setup_teardown(threads_helper_timeout_is_not_the_handles, setup, teardown),
};

MT_MAIN_THREADS("threads", tests)
