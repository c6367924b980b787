/* The clock and deadlines.  Depends on MPI only. */
#include "clock.h"

#include <math.h>
#include <mpi.h>

double mpistore__now(void)
{
    return MPI_Wtime();
}

double mpistore__deadline_at(double t0, double timeout_s)
{
    return timeout_s > 0 ? t0 + timeout_s : INFINITY;
}

double mpistore__deadline(double timeout_s)
{
    return timeout_s > 0 ? mpistore__now() + timeout_s : INFINITY;
}

int mpistore__expired(double deadline)
{
    return mpistore__now() >= deadline;
}
