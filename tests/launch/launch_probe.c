/* The C side of tests/launch/test_launchers.sh: a program linked against
 * mpistore, started by some MPI's launcher.  It opens a store on
 * MPI_COMM_WORLD; on success every rank meets the others in the elastic
 * barrier and prints "rank R of N: one job"; if open fails it prints
 * "open failed: <message>" and exits 3.  The driver decides whether what it
 * saw is what that pair of MPIs must give. */
#include <mpistore.h>
#include <mpistore_elastic.h>

#include <mpi.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    int rank = 0, size = 0;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    mpistore_t *s = NULL;
    if (mpistore_open(&s, MPI_COMM_WORLD, NULL) != MPISTORE_OK) {
        printf("open failed: %s\n", mpistore_errmsg(NULL));
        fflush(stdout);
        MPI_Finalize();
        return 3;
    }
    mpistore_set_timeout(s, 60.0);
    int rc = mpistore_barrier(s, rank, size, "launch", 60.0);
    if (rc == MPISTORE_OK)
        printf("rank %d of %d: one job\n", rank, size);
    else
        printf("rank %d of %d: barrier failed: %s\n", rank, size, mpistore_errmsg(s));
    fflush(stdout);
    mpistore_close(s);
    MPI_Finalize();
    return rc == MPISTORE_OK ? 0 : 4;
}
