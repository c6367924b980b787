/*
 * counter: many ranks add to shared counters; rank 0 prints the totals.
 *
 *   mpiexec -n 4 build/mpi_examples/counter [adds_per_rank]
 *
 * Every rank adds 1 to "counter/total" adds_per_rank times (default 1000) and
 * its rank number to "counter/rank_sum" once, then all ranks wait on a store
 * key instead of an MPI barrier: the last rank to finish (the one whose add
 * on "counter/done" returns the number of ranks) sets "counter/all_done".
 * Rank 0 then prints the totals, which must be exact, and how long the adds
 * took.  Exit status 0 when the totals match.
 */
#include <mpistore.h>

#include <stdio.h>
#include <stdlib.h>

static void check(mpistore_t *s, int rc, const char *what)
{
    if (rc != MPISTORE_OK) {
        fprintf(stderr, "counter: %s failed: %s (%s)\n", what, mpistore_strerror(rc),
                mpistore_errmsg(s));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

int main(int argc, char **argv)
{
    int rank, size;
    long adds = argc > 1 ? atol(argv[1]) : 1000;
    mpistore_t *s = NULL;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    check(NULL, mpistore_open(&s, MPI_COMM_WORLD, NULL), "mpistore_open");

    double t0 = MPI_Wtime();
    for (long i = 0; i < adds; i++)
        check(s, mpistore_add(s, "counter/total", 1, NULL), "add counter/total");
    check(s, mpistore_add(s, "counter/rank_sum", rank, NULL), "add counter/rank_sum");
    double took = MPI_Wtime() - t0;

    int64_t done = 0;
    check(s, mpistore_add(s, "counter/done", 1, &done), "add counter/done");
    if (done == size)
        check(s, mpistore_set(s, "counter/all_done", "yes", 3), "set counter/all_done");
    const char *keys[] = {"counter/all_done"};
    check(s, mpistore_wait(s, keys, 1, MPISTORE_TIMEOUT_DEFAULT), "wait counter/all_done");

    int bad = 0;
    if (rank == 0) {
        int64_t total = 0, rank_sum = 0;
        check(s, mpistore_add(s, "counter/total", 0, &total), "read counter/total");
        check(s, mpistore_add(s, "counter/rank_sum", 0, &rank_sum), "read counter/rank_sum");
        int64_t want_total = (int64_t)adds * size, want_sum = (int64_t)size * (size - 1) / 2;
        bad = total != want_total || rank_sum != want_sum;
        printf("counter: %d ranks x %ld adds\n", size, adds);
        printf("  counter/total    = %lld (expected %lld)\n", (long long)total,
               (long long)want_total);
        printf("  counter/rank_sum = %lld (expected %lld)\n", (long long)rank_sum,
               (long long)want_sum);
        printf("  rank 0: %.2f us per add under contention\n", took / (double)(adds + 1) * 1e6);
        printf("%s\n", bad ? "MISMATCH" : "totals exact");
    }
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    check(s, mpistore_close(s), "mpistore_close");
    MPI_Finalize();
    return bad;
}
