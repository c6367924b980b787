/* The clock and deadlines.  Depends on MPI only. */
#include "clock.h"

#include <math.h>
#include <mpi.h>

double ms_now(void)
{
    return MPI_Wtime();
}

double ms_deadline(double timeout_s)
{
    return timeout_s > 0 ? ms_now() + timeout_s : INFINITY;
}

int ms_expired(double deadline)
{
    return ms_now() >= deadline;
}
