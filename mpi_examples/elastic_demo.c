/*
 * elastic_demo: the README's first command runs this under mpiexec -n 4.
 *
 *   mpiexec -n 4 build/mpi_examples/elastic_demo
 *
 * Every rank joins one store (no daemon, no port), meets the others in an
 * elastic barrier, then synchronizes a small record (rank, host name, pid,
 * wall-clock time) with mpistore_synchronize, the C port of PyTorch's
 * torch.distributed.elastic.utils.store.synchronize.  Rank 0 prints the
 * gathered records as a table, plus how long the barrier and the synchronize
 * took, beside an MPI_Barrier for scale.  Exit status 0 on success.
 */
#include <mpistore.h>
#include <mpistore_elastic.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct record {
    int rank;
    int pid;
    double unix_time;
    char host[64];
} record_t;

static void check(mpistore_t *s, int rc, const char *what)
{
    if (rc != MPISTORE_OK) {
        fprintf(stderr, "elastic_demo: %s failed: %s\n", what,
                s ? mpistore_errmsg(s) : mpistore_errmsg(NULL));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

int main(int argc, char **argv)
{
    int rank, size;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    double t_open = MPI_Wtime();
    mpistore_t *s = NULL;
    check(NULL, mpistore_open(&s, MPI_COMM_WORLD, NULL), "mpistore_open");
    t_open = MPI_Wtime() - t_open;

    double t_mpi = MPI_Wtime();
    MPI_Barrier(MPI_COMM_WORLD);
    t_mpi = MPI_Wtime() - t_mpi;

    double t_bar = MPI_Wtime();
    check(s, mpistore_barrier(s, rank, size, "demo/start", 30.0), "barrier");
    t_bar = MPI_Wtime() - t_bar;

    record_t me = {.rank = rank, .pid = (int)getpid()};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    me.unix_time = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    gethostname(me.host, sizeof me.host - 1);

    void **vals = calloc((size_t)size, sizeof *vals);
    size_t *lens = calloc((size_t)size, sizeof *lens);
    double t_sync = MPI_Wtime();
    check(s, mpistore_synchronize(s, &me, sizeof me, rank, size, "demo/records", 30.0, vals, lens),
          "synchronize");
    t_sync = MPI_Wtime() - t_sync;

    if (rank == 0) {
        double t0 = ((record_t *)vals[0])->unix_time;
        printf("mpistore %s elastic demo: %d ranks, one store over MPI windows, no daemon, no "
               "port\n\n",
               mpistore_version(), size);
        printf("  %-5s %-20s %-8s %s\n", "rank", "host", "pid", "clock vs rank 0");
        for (int r = 0; r < size; r++) {
            record_t rec;
            if (lens[r] != sizeof rec) {
                fprintf(stderr, "elastic_demo: record of rank %d has %zu bytes\n", r, lens[r]);
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            memcpy(&rec, vals[r], sizeof rec);
            printf("  %-5d %-20.20s %-8d %+.6f s\n", rec.rank, rec.host, rec.pid,
                   rec.unix_time - t0);
        }
        printf("\n  open store         %9.1f us\n", t_open * 1e6);
        printf("  MPI_Barrier        %9.1f us\n", t_mpi * 1e6);
        printf("  elastic barrier    %9.1f us\n", t_bar * 1e6);
        printf("  synchronize        %9.1f us  (%zu-byte record per rank)\n", t_sync * 1e6,
               sizeof me);
    }
    for (int r = 0; r < size; r++)
        mpistore_free(vals[r]);
    free(vals);
    free(lens);
    check(s, mpistore_close(s), "mpistore_close");
    MPI_Finalize();
    return 0;
}
