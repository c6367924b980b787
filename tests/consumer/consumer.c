/* A user program built against the installed library: every rank adds 1 to a
 * counter, rank 0 checks the total.  Exit code 0 on success. */
#include <mpistore.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    int rank, size, bad = 0;
    int64_t total = 0;
    mpistore_t *s = NULL;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (mpistore_open(&s, MPI_COMM_WORLD, NULL) != MPISTORE_OK) {
        fprintf(stderr, "open: %s\n", mpistore_errmsg(NULL));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    bad |= mpistore_add(s, "consumer/count", 1, NULL) != MPISTORE_OK;
    MPI_Barrier(MPI_COMM_WORLD);
    bad |= mpistore_add(s, "consumer/count", 0, &total) != MPISTORE_OK;
    bad |= total != size;
    if (rank == 0)
        printf("consumer: mpistore %s, %d ranks counted %lld\n", mpistore_version(), size,
               (long long)total);
    mpistore_close(s);
    MPI_Finalize();
    return bad;
}
