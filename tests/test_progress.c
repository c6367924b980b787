/* The progress thread option: rank 0 computes outside MPI while the other
 * ranks set and get 100 keys each that rank 0 hosts.  With the thread the
 * others finish while rank 0 is provably still outside MPI; without it, on a
 * transport that needs target progress, none can finish before rank 0 comes
 * back; nothing is lost either way.  The test asserts that order of events
 * (marker files, below), never a duration.
 *
 * Environment set by the transport cells (tests/CMakeLists.txt):
 *   MPISTORE_TEST_EXPECT_STALL=1  this transport needs target progress, so
 *       without the thread the others must wait for rank 0 (proves the test
 *       measures something there);
 *   MPISTORE_TEST_THREAD_LEVEL=serialized  MPI runs below MPI_THREAD_MULTIPLE
 *       (Open MPI osc/pt2pt), so the option must be refused with a clear error. */
#include "mpitest.h"

#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

/* keys per writer: 100, or 20 on the slow cells (MPISTORE_TEST_SLOW), where
 * beside busy processes each operation may wait for a time slice; any
 * number shows the order of events */
#define NKEYS (mt_slow() ? 20 : 100)
#define SLEEP_S 2.0

static int open_with(int option, mpistore_t **s)
{
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.progress_thread = option;
    o.timeout_s = 60;
    return mpistore_open(s, MPI_COMM_WORLD, &o);
}

static void progress_env_malformed(void **state)
{
    (void)state;
    mpistore_t *s = NULL;
    setenv("MPISTORE_PROGRESS_THREAD", "yes", 1);
    int rc = open_with(0, &s);
    unsetenv("MPISTORE_PROGRESS_THREAD");
    assert_int_equal(rc, -MPISTORE_EINVAL);
    assert_null(s);
    assert_non_null(strstr(mpistore_errmsg(NULL), "MPISTORE_PROGRESS_THREAD='yes'"));
}

static void progress_thread_level(void **state)
{
    (void)state;
    mpistore_t *s = NULL;
    if (mt_thread_level != MPI_THREAD_MULTIPLE) {
        /* the option and the environment variable are both refused */
        assert_int_equal(open_with(1, &s), -MPISTORE_EINVAL);
        assert_non_null(strstr(mpistore_errmsg(NULL), "needs MPI_THREAD_MULTIPLE"));
        setenv("MPISTORE_PROGRESS_THREAD", "1", 1);
        int rc = open_with(0, &s);
        unsetenv("MPISTORE_PROGRESS_THREAD");
        assert_int_equal(rc, -MPISTORE_EINVAL);
        assert_null(s);
        /* MPISTORE_PROGRESS_THREAD=0 overrides the option: the open works */
        setenv("MPISTORE_PROGRESS_THREAD", "0", 1);
        rc = open_with(1, &s);
        unsetenv("MPISTORE_PROGRESS_THREAD");
        if (rc != MPISTORE_OK)
            fail_msg("env 0 did not override the option: %s", mpistore_errmsg(NULL));
        MT_OK(s, mpistore_close(s));
        return;
    }
    /* Start and stop the thread many times: no hang, no leak (ASan). */
    for (int i = 0; i < 20; i++) {
        s = NULL;
        int rc = open_with(1, &s);
        if (rc != MPISTORE_OK)
            fail_msg("open with progress thread: %s", mpistore_errmsg(NULL));
        int64_t v = 0;
        MT_OK(s, mpistore_add(s, "n", 1, &v));
        MT_OK(s, mpistore_close(s));
    }
}

/* NKEYS keys per writer, all hosted by rank 0, identical on every rank. */
static char (*hosted_keys(mpistore_t *s, const char *tag))[48]
{
    char(*keys)[48] = calloc((size_t)mt_size * NKEYS, sizeof *keys);
    assert_non_null(keys);
    unsigned cand = 0;
    for (int w = 0; w < mt_size; w++)
        for (int i = 0; i < NKEYS; i++) {
            int home = -1;
            do {
                snprintf(keys[w * NKEYS + i], sizeof keys[0], "%s/%u", tag, cand++);
                MT_OK(s, mpistore_key_rank(s, keys[w * NKEYS + i], &home));
            } while (home != 0);
        }
    return keys;
}

/* Marker files in a directory rank 0 made: a writer creates "<dir>/<rank>" when
 * its operations are done.  Rank 0 watches for them with stat() and nanosleep()
 * only, so it never enters MPI while it watches.  Every cell runs its ranks on
 * this one host, so the files are seen by all. */
static char marker_dir[64];

static void marker_dir_make(void)
{
    if (mt_rank == 0) {
        snprintf(marker_dir, sizeof marker_dir, "/tmp/mpistore-progress-XXXXXX");
        if (!mkdtemp(marker_dir))
            fail_msg("mkdtemp: %s", strerror(errno));
    }
    MPI_Bcast(marker_dir, sizeof marker_dir, MPI_CHAR, 0, MPI_COMM_WORLD);
}

static void marker_set(void)
{
    char path[96];
    snprintf(path, sizeof path, "%s/%d", marker_dir, mt_rank);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    if (fd < 0)
        fail_msg("rank %d: create %s: %s", mt_rank, path, strerror(errno));
    close(fd);
}

/* How many writers have created their marker. */
static int markers_seen(void)
{
    int n = 0;
    for (int r = 1; r < mt_size; r++) {
        char path[96];
        struct stat st;
        snprintf(path, sizeof path, "%s/%d", marker_dir, r);
        n += stat(path, &st) == 0;
    }
    return n;
}

static void marker_dir_remove(void)
{
    if (mt_rank != 0)
        return;
    for (int r = 1; r < mt_size; r++) {
        char path[96];
        snprintf(path, sizeof path, "%s/%d", marker_dir, r);
        unlink(path);
    }
    rmdir(marker_dir);
}

/* Rank 0 stays outside MPI until every writer's marker is there or max_s
 * have passed; returns how many markers it saw before it left. */
static int sleep_outside_mpi(double max_s)
{
    struct timespec t0, now, tick = {0, 10 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int seen = markers_seen();
        clock_gettime(CLOCK_MONOTONIC, &now);
        double slept = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) * 1e-9;
        if (seen == mt_size - 1 || slept >= max_s)
            return seen;
        nanosleep(&tick, NULL);
    }
}

/* Rank 0 computes outside MPI while the others set and get NKEYS keys each
 * that rank 0 hosts.  The assertions are about the order of events, never
 * about how long anything took (the machine may be busy):
 *  - with the progress thread, every writer finishes while rank 0 is still
 *    outside MPI (rank 0 waits for their markers up to CAP_S, a bound far
 *    above the expected fraction of a second that only catches a hang);
 *  - without it, on a transport that needs target progress, no writer can
 *    finish before rank 0 enters MPI again (after SLEEP_S);
 *  - either way nothing is lost. */
#define CAP_S 60.0

static void busy_target(int option)
{
    mpistore_t *s = NULL;
    int rc = open_with(option, &s);
    if (rc != MPISTORE_OK)
        fail_msg("rank %d: open(progress_thread=%d): %s", mt_rank, option, mpistore_errmsg(NULL));
    char(*keys)[48] = hosted_keys(s, mt_unique("busy"));
    char val[64];
    int expect_stall = !option && mt_expect_stall();
    int seen = 0;
    marker_dir_make();

    MPI_Barrier(MPI_COMM_WORLD);
    if (mt_rank == 0) {
        seen = sleep_outside_mpi(option ? CAP_S : SLEEP_S);
    } else {
        for (int i = 0; i < NKEYS; i++) {
            const char *k = keys[mt_rank * NKEYS + i];
            int n = snprintf(val, sizeof val, "rank %d value %d", mt_rank, i);
            MT_OK(s, mpistore_set(s, k, val, (size_t)n));
            void *got = NULL;
            size_t len = 0;
            MT_OK(s, mpistore_get(s, k, &got, &len));
            assert_int_equal(len, (size_t)n);
            assert_memory_equal(got, val, len);
            mpistore_free(got);
        }
        marker_set();
    }
    MPI_Bcast(&seen, 1, MPI_INT, 0, MPI_COMM_WORLD);

    /* nothing lost: every rank reads every writer's keys */
    for (int w = 1; w < mt_size; w++)
        for (int i = 0; i < NKEYS; i++) {
            snprintf(val, sizeof val, "rank %d value %d", w, i);
            mt_expect_str(s, keys[w * NKEYS + i], val);
        }
    int64_t count = 0;
    MT_OK(s, mpistore_num_keys(s, &count));
    assert_int_equal(count, (int64_t)(mt_size - 1) * NKEYS);
    if (mt_rank == 0)
        printf("progress_thread=%d: %d of %d writers finished %d set+get each on keys of "
               "rank 0 while rank 0 was outside MPI%s\n",
               option, seen, mt_size - 1, NKEYS, expect_stall ? " (target progress needed)" : "");
    if (option && seen != mt_size - 1)
        fail_msg("with the progress thread only %d of %d writers finished while rank 0 stayed "
                 "outside MPI for up to %.0f s",
                 seen, mt_size - 1, CAP_S);
    if (expect_stall && seen != 0)
        fail_msg("transport marked as needing target progress, yet %d writers finished while "
                 "rank 0 was outside MPI without the thread",
                 seen);
    mt_barrier();
    marker_dir_remove();
    free(keys);
    MT_OK(s, mpistore_close(s));
}

static void progress_busy_target_with_thread(void **state)
{
    (void)state;
    if (mt_thread_level != MPI_THREAD_MULTIPLE)
        skip(); /* refused; progress_thread_level checks the error */
    busy_target(1);
}

static void progress_busy_target_without_thread(void **state)
{
    (void)state;
    busy_target(0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(progress_env_malformed),
    cmocka_unit_test(progress_thread_level),
    cmocka_unit_test(progress_busy_target_with_thread),
    cmocka_unit_test(progress_busy_target_without_thread),
};

MT_MAIN_THREADS("progress", tests)
