/* MPI_Win_allocate of 16 TiB must fail with an error code (MPI_ERRORS_RETURN). */
#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Info info;
    MPI_Info_create(&info);
    if (argc > 1)
        MPI_Info_set(info, "same_size", "true");
    void *base;
    MPI_Win win;
    int rc = MPI_Win_allocate((MPI_Aint)1 << 44, 1, info, MPI_COMM_WORLD, &base, &win);
    printf("MPI_Win_allocate(16 TiB) returned %d\n", rc);
    MPI_Info_free(&info);
    MPI_Finalize();
    return 0;
}
