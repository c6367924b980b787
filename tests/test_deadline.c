/* Deadlines when the rank that hosts a key does not answer.  Rank 0 sleeps
 * outside MPI (no progress thread) while rank 1 calls every blocking read and
 * wait on keys that rank 0 hosts, each with a 1 s timeout.  On transports that
 * need the target's progress (osc/pt2pt, osc/ucx over TCP, MPICH: the cells
 * set MPISTORE_TEST_EXPECT_STALL=1) every call must return ETIMEDOUT naming
 * rank 0 while rank 0 still sleeps; elsewhere (osc/rdma on one node) the reads
 * simply work, and the missing keys time out as usual.
 *
 * No wall-clock upper bound: rank 0 sleeps until rank 1 has finished every
 * call (it watches for a file that rank 1 creates), or for SLEEP_MAX_S.  If a
 * call were stuck until rank 0 entered MPI again, rank 1 would finish only
 * after rank 0 woke up: the test asserts the order of the two instants
 * (CLOCK_REALTIME of one machine).  Afterwards the store must still work:
 * the abandoned requests complete into memory the library kept for them. */
#include "mpitest.h"

#include "index.h" /* the home rank of a queue's internal key */
#include "mpistore_elastic.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T_S 1.0           /* timeout of every call */
#define SLEEP_MAX_S 120.0 /* rank 0 wakes up by then whatever happens */

static double now_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A key that rank `home` hosts: tag/0, tag/1, ... */
static void key_on(mpistore_t *s, const char *tag, int home, char *out, size_t n)
{
    int h = -1;
    for (unsigned i = 0; h != home; i++) {
        snprintf(out, n, "%.60s/%u", tag, i);
        MT_OK(s, mpistore_key_rank(s, out, &h));
    }
}

/* A queue name whose internal key rank `home` hosts. */
static void queue_on(mpistore_t *s, const char *tag, int home, char *out, size_t n)
{
    for (unsigned i = 0;; i++) {
        snprintf(out, n, "%.60s/%u", tag, i);
        size_t len = strlen(out);
        char ikey[200];
        memcpy(ikey, out, len);
        ikey[len] = 0;
        ikey[len + 1] = 'q';
        ms_key_t k;
        ms_key_internal(s, ikey, len + 2, &k);
        if (k.rank == home)
            return;
    }
}

static int stall_expected(void)
{
    const char *e = getenv("MPISTORE_TEST_EXPECT_STALL");
    return e && strcmp(e, "1") == 0;
}

/* One call's outcome: rc, elapsed, and the checks every cell shares. */
static void expect_timeout(mpistore_t *s, const char *what, int rc, double t0, int stall)
{
    double took = now_real() - t0;
    fprintf(stderr, "rank 1: %-22s -> %s after %.3f s: %s\n", what, mpistore_errname(rc), took,
            rc ? mpistore_errmsg(s) : "");
    if (rc != -MPISTORE_ETIMEDOUT)
        fail_msg("%s: %s, expected ETIMEDOUT (%s)", what, mpistore_errname(rc), mpistore_errmsg(s));
    if (took < 0.9 * T_S)
        fail_msg("%s: timed out after %.3f s, before its %.1f s timeout", what, took, T_S);
    if (stall && !strstr(mpistore_errmsg(s), "rank 0 did not answer"))
        fail_msg("%s: the message does not name rank 0: %s", what, mpistore_errmsg(s));
}

/* A read of a key that exists: ETIMEDOUT where the target must progress,
 * else success. */
static void expect_timeout_or_ok(mpistore_t *s, const char *what, int rc, double t0, int stall)
{
    if (stall) {
        expect_timeout(s, what, rc, t0, stall);
        return;
    }
    fprintf(stderr, "rank 1: %-22s -> %s after %.3f s\n", what, mpistore_errname(rc),
            now_real() - t0);
    if (rc != MPISTORE_OK)
        fail_msg("%s: %s (%s)", what, mpistore_errname(rc), mpistore_errmsg(s));
}

static void home_rank_asleep(void **state)
{
    (void)state;
    if (mt_size != 2)
        skip();
    int stall = stall_expected();
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.timeout_s = T_S;
    mpistore_t *s = NULL;
    if (mpistore_open(&s, MPI_COMM_WORLD, &o) != MPISTORE_OK)
        fail_msg("open: %s", mpistore_errmsg(NULL));
    const char *tag = mt_unique("asleep");
    char present[128], absent[128], queue[128], prefix[80], num[128], later[128];
    key_on(s, tag, 0, present, sizeof present);
    snprintf(num, sizeof num, "%.60s/absent", tag);
    key_on(s, num, 0, absent, sizeof absent);
    snprintf(num, sizeof num, "%.60s/later", tag);
    key_on(s, num, 0, later, sizeof later);
    snprintf(num, sizeof num, "%.60s/q", tag);
    queue_on(s, num, 0, queue, sizeof queue);
    char prefix1[80];
    for (unsigned i = 0;; i++) { /* a barrier whose counter rank 1 hosts */
        int h = -1;
        snprintf(prefix1, sizeof prefix1, "%.60s/c%u", tag, i);
        snprintf(num, sizeof num, "%.79s/num_members", prefix1);
        MT_OK(s, mpistore_key_rank(s, num, &h));
        if (h == 1)
            break;
    }
    for (unsigned i = 0;; i++) { /* a barrier whose counter rank 0 hosts */
        int h = -1;
        snprintf(prefix, sizeof prefix, "%.60s/b%u", tag, i);
        snprintf(num, sizeof num, "%.79s/num_members", prefix);
        MT_OK(s, mpistore_key_rank(s, num, &h));
        if (h == 0)
            break;
    }
    if (mt_rank == 0)
        MT_OK(s, mpistore_set(s, present, "here", 4));

    /* the file rank 1 creates when it is done */
    char done[96] = "";
    if (mt_rank == 0) {
        char dir[] = "/tmp/mpistore-deadline-XXXXXX";
        assert_non_null(mkdtemp(dir));
        snprintf(done, sizeof done, "%s/done", dir);
    }
    MPI_Bcast(done, sizeof done, MPI_CHAR, 0, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);

    double t_wake = 0, t_done = 0;
    if (mt_rank == 0) { /* outside MPI until rank 1 is done (or SLEEP_MAX_S) */
        double t0 = now_real();
        while (access(done, F_OK) != 0 && now_real() - t0 < SLEEP_MAX_S) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        t_wake = now_real();
        unlink(done);
        char *slash = strrchr(done, '/');
        *slash = 0;
        rmdir(done);
    } else {
        struct timespec nap = {0, 100 * 1000 * 1000}; /* let rank 0 leave MPI */
        nanosleep(&nap, NULL);
        void *v = NULL, *vals[2] = {NULL, NULL};
        size_t n = 0, lens[2] = {0, 0};
        bool all = false;
        int64_t qn = -1;
        const char *one[] = {absent}, *pres[] = {present}, *two[] = {present, absent};
        double t0 = now_real();
        int rc = mpistore_get(s, present, &v, &n);
        expect_timeout_or_ok(s, "get (key exists)", rc, t0, stall);
        if (rc == 0) {
            assert_int_equal(n, 4);
            assert_memory_equal(v, "here", 4);
            mpistore_free(v);
        }
        t0 = now_real();
        expect_timeout(s, "get (key missing)", mpistore_get(s, absent, &v, &n), t0, stall);
        t0 = now_real();
        expect_timeout(s, "wait", mpistore_wait(s, one, 1, T_S), t0, stall);
        t0 = now_real();
        expect_timeout_or_ok(s, "check", mpistore_check(s, pres, 1, &all), t0, stall);
        t0 = now_real();
        rc = mpistore_multi_get(s, two, 2, vals, lens);
        expect_timeout(s, "multi_get", rc, t0, stall);
        t0 = now_real();
        expect_timeout_or_ok(s, "queue_len", mpistore_queue_len(s, queue, &qn), t0, stall);
        t0 = now_real();
        expect_timeout(s, "queue_pop (blocking)", mpistore_queue_pop(s, queue, true, &v, &n), t0,
                       stall);
        t0 = now_real();
        expect_timeout(s, "barrier", mpistore_barrier(s, 1, 2, prefix, T_S), t0, stall);
        /* the counter is here: the wait times out as usual, and the
         * missing-rank diagnosis (its TRACE key may be rank 0's) ends too,
         * saying that rank 0 did not answer */
        t0 = now_real();
        expect_timeout(s, "barrier (own counter)", mpistore_barrier(s, 1, 2, prefix1, T_S), t0,
                       stall);
        if (stall) { /* a write whose home does not answer before it locks anything */
            t0 = now_real();
            expect_timeout(s, "set", mpistore_set(s, later, "x", 1), t0, stall);
        }
        t_done = now_real();
        FILE *f = fopen(done, "w");
        assert_non_null(f);
        fclose(f);
    }
    MPI_Bcast(&t_wake, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    MPI_Bcast(&t_done, 1, MPI_DOUBLE, 1, MPI_COMM_WORLD);
    if (mt_rank == 1)
        fprintf(stderr, "rank 1 returned from every call %.3f s before rank 0 woke up\n",
                t_wake - t_done);
    if (!(t_done < t_wake))
        fail_msg("rank 1 finished at %.3f, after rank 0 woke up at %.3f: a call waited for rank 0",
                 t_done, t_wake);

    /* rank 0 is back in MPI: the store works, the late answers landed in
     * memory the library kept (ASan: no use after free) */
    MPI_Barrier(MPI_COMM_WORLD);
    mt_expect_str(s, present, "here");
    MT_OK(s, mpistore_set(s, later, "y", 1));
    mt_expect_str(s, later, "y");
    MPI_Barrier(MPI_COMM_WORLD);
    MT_OK(s, mpistore_close(s));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(home_rank_asleep),
    };
    return mt_main(argc, argv, "deadline", tests, sizeof(tests) / sizeof(tests[0]),
                   MPI_THREAD_SERIALIZED);
}
