/* Waiting: the backoff of the operations' wait loops, which drives MPI
 * progress and gives up the API mutex while it yields or sleeps.  Above the
 * RMA layer (which never touches the mutex), below the index and the
 * operations. */
#include "clock.h"
#include "wait.h"

#include <sched.h>
#include <time.h>

/* Waits first poll with sched_yield for up to MS_YIELD_S, then sleep from
 * 10 us doubling to 1 ms.  The yield phase matters: on Linux a nanosleep of
 * 10 us sleeps about 60 us (timer slack), which used to make a 2 us barrier
 * cost 60-300 us; and yielding, unlike spinning, hands the core to the ranks
 * we are waiting for when ranks outnumber cores.  Long waits still end up
 * sleeping (<= 1 ms a round), so an idle waiter costs little CPU. */
#define MS_YIELD_S 500e-6

void mpistore__backoff(MPI_Comm comm, mpistore__apilock_t *lock, mpistore__backoff_t *b)
{
    int flag = 0;
    /* Drive progress for requests aimed at this rank (osc/pt2pt, MPICH). */
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, MPI_STATUS_IGNORE);
    mpistore__apilock_give(lock); /* let other threads of a shared handle run */
    double now = mpistore__now();
    if (b->round == 0)
        b->start = now;
    if (now - b->start < MS_YIELD_S) {
        sched_yield();
        b->sleeps = 0;
    } else {
        unsigned k = b->sleeps++;
        long ns = 10000L << (k > 7 ? 7 : k); /* 10 us .. 1.28 ms */
        if (ns > 1000000L)
            ns = 1000000L;
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
    }
    mpistore__apilock_take(lock);
    b->round++;
}
