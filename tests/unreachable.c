/* The MPI side of tests/test_unreachable.sh: rank 0 on host A, rank 1 on
 * host B (two network namespaces).  Rank 0 sets a key it hosts and stays in
 * MPI (a barrier rank 1 never joins).  Rank 1 reads the key with a 5 s
 * timeout in a loop (1 ms apart), creates READY after 100 reads, and keeps
 * reading; the driver then cuts host B's link.  The first read that fails is
 * reported to RESULT as
 *   rc=<code name> elapsed=<s> reads=<n>
 *   msg=<the handle's message>
 * and rank 1 calls MPI_Abort: the job cannot end cleanly without rank 0, and
 * the driver kills what is left of it.
 *
 * Usage (by the driver): unreachable READY RESULT */
#include <mpistore.h>

#include <mpi.h>
#include <stdio.h>
#include <time.h>

#define TIMEOUT_S 5.0
#define GIVE_UP_S 120.0 /* no failure by then: report it and stop */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int rank = 0, size = 0;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 3 || size != 2) {
        fprintf(stderr, "usage: mpirun -n 2 unreachable READY RESULT\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.timeout_s = TIMEOUT_S;
    mpistore_t *s = NULL;
    if (mpistore_open(&s, MPI_COMM_WORLD, &o) != MPISTORE_OK) {
        fprintf(stderr, "rank %d: open: %s\n", rank, mpistore_errmsg(NULL));
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    char key[64];
    int home = -1;
    for (unsigned i = 0; home != 0; i++) {
        snprintf(key, sizeof key, "unreachable/%u", i);
        mpistore_key_rank(s, key, &home);
    }
    if (rank == 0 && mpistore_set(s, key, "value", 5) != MPISTORE_OK) {
        fprintf(stderr, "rank 0: set: %s\n", mpistore_errmsg(s));
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) { /* in MPI, answering rank 1, until the job is killed */
        MPI_Barrier(MPI_COMM_WORLD);
        return 0;
    }
    long reads = 0;
    double t_start = now_s();
    for (;;) {
        void *v = NULL;
        size_t n = 0;
        double t0 = now_s();
        int rc = mpistore_get(s, key, &v, &n);
        double took = now_s() - t0;
        mpistore_free(v);
        if (rc == MPISTORE_OK && now_s() - t_start < GIVE_UP_S) {
            if (++reads == 100) {
                FILE *f = fopen(argv[1], "w");
                if (f)
                    fclose(f);
                printf("rank 1: %ld reads done, waiting for the link to go\n", reads);
                fflush(stdout);
            }
            struct timespec ms = {0, 1000 * 1000};
            nanosleep(&ms, NULL);
            continue;
        }
        FILE *f = fopen(argv[2], "w");
        if (f) {
            fprintf(f, "rc=%s elapsed=%.3f reads=%ld\nmsg=%s\n", mpistore_errname(rc), took, reads,
                    rc ? mpistore_errmsg(s) : "no read failed");
            fclose(f);
        }
        printf("rank 1: read %ld -> %s after %.3f s: %s\n", reads + 1, mpistore_errname(rc), took,
               rc ? mpistore_errmsg(s) : "no read failed");
        fflush(stdout);
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
}
