/* What the ULFM test programs (test_rankfail.c, test_shrink.c,
 * test_shrink_busy.c) share: a check that counts failures and names the
 * rank, and the start: MPI up with errors returned, a store over
 * MPI_COMM_WORLD with a 60 s timeout (a call that returns EPROCFAILED
 * returned before its deadline).  Each program defines ULFMTEST_TAG, the
 * start of its failure lines, before including this header. */
#ifndef MPISTORE_ULFMTEST_H
#define MPISTORE_ULFMTEST_H

#include <mpistore.h>

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int rank, size, failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, ULFMTEST_TAG ": rank %d FAILED at line %d: ", rank, __LINE__);         \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* MPI_Init, rank and size, errors returned on MPI_COMM_WORLD.  0, or 2 (the
 * exit code) after MPI_Finalize when there are fewer than min_ranks ranks or
 * victim is not one of them. */
static inline int ulfm_start(int *argc, char ***argv, int min_ranks, int victim)
{
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (size >= min_ranks && victim >= 0 && victim < size)
        return 0;
    if (rank == 0)
        fprintf(stderr, ULFMTEST_TAG ": needs %d+ ranks and a victim rank below the size\n",
                min_ranks);
    MPI_Finalize();
    return 2;
}

/* A store over MPI_COMM_WORLD, 60 s timeout (keys_per_rank 0: the default),
 * with the given replicas option, or the job ends. */
static inline mpistore_t *ulfm_open(size_t keys_per_rank, int replicas)
{
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.timeout_s = 60;
    o.replicas = replicas;
    if (keys_per_rank)
        o.keys_per_rank = keys_per_rank;
    mpistore_t *s = NULL;
    if (mpistore_open(&s, MPI_COMM_WORLD, &o) != 0) {
        fprintf(stderr, ULFMTEST_TAG ": rank %d FAILED: open: %s\n", rank, mpistore_errmsg(NULL));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return s;
}

/* The survivors' verdict without a store: each sends its failed checks to
 * the lowest survivor (point-to-point among live ranks), which prints
 * "<tag>: victim V, N survivors, F failed checks: all passed|FAILED" and then
 * lets the others go (an exit before every survivor is done would count as
 * a death).  Then every survivor _exits: after a death Open MPI 5.0.11's
 * MPI_Finalize hangs now and then (docs/testing.md, "Rank failures"). */
static inline void ulfm_verdict_exit(int victim)
{
    int lowest = victim == 0 ? 1 : 0, total = failures, n = 1;
    if (rank != lowest) {
        int go = 0;
        if (MPI_Send(&failures, 1, MPI_INT, lowest, 7, MPI_COMM_WORLD) != MPI_SUCCESS)
            fprintf(stderr, ULFMTEST_TAG ": rank %d FAILED: the verdict's message\n", rank);
        /* the go (an error only if the lowest has exited already: fine) */
        (void)MPI_Recv(&go, 1, MPI_INT, lowest, 8, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
        for (int r = 0; r < size; r++) {
            int f = 0;
            if (r != rank && r != victim &&
                MPI_Recv(&f, 1, MPI_INT, r, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE) == MPI_SUCCESS)
                total += f, n++;
        }
        printf(ULFMTEST_TAG ": victim %d, %d survivors, %d failed checks: %s\n", victim, n, total,
               total == 0 && n == size - 1 ? "all passed" : "FAILED");
        fflush(stdout);
        for (int r = 0; r < size; r++)
            if (r != rank && r != victim)
                MPI_Send(&total, 1, MPI_INT, r, 8, MPI_COMM_WORLD);
    }
    fflush(NULL);
    _exit(failures ? 1 : 0);
}

#endif /* MPISTORE_ULFMTEST_H */
