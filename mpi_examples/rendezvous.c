/*
 * rendezvous: leader election and an address exchange, the way an elastic
 * rendezvous does it.
 *
 *   mpiexec -n 4 build/mpi_examples/rendezvous
 *
 * 1. Every rank proposes itself as leader with
 *    compare_set("rdzv/leader", "", "<host>:<pid>"): exactly one proposal
 *    wins, and every rank learns the winner from the returned value.
 * 2. The leader opens the round by setting "rdzv/state" to "joining"; the
 *    others wait for it (a blocking get).
 * 3. Every rank publishes its "address" (host name and pid here; a real job
 *    would publish a host:port it listens on) with mpistore_synchronize, so
 *    every rank ends with the full address table, in rank order.
 * 4. The leader prints the table and closes the round with a barrier.
 */
#include <mpistore.h>
#include <mpistore_elastic.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check(mpistore_t *s, int rc, const char *what)
{
    if (rc != MPISTORE_OK) {
        fprintf(stderr, "rendezvous: %s failed: %s\n", what,
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
    mpistore_t *s = NULL;
    check(NULL, mpistore_open(&s, MPI_COMM_WORLD, NULL), "mpistore_open");

    char host[64] = "";
    gethostname(host, sizeof host - 1);
    char me[96];
    snprintf(me, sizeof me, "%s:%d", host, (int)getpid());

    /* 1. leader election */
    void *leader = NULL;
    size_t leader_len = 0;
    check(s, mpistore_compare_set(s, "rdzv/leader", "", 0, me, strlen(me), &leader, &leader_len),
          "compare_set rdzv/leader");
    int i_lead = leader_len == strlen(me) && memcmp(leader, me, leader_len) == 0;

    /* 2. the leader opens the round */
    if (i_lead)
        check(s, mpistore_set(s, "rdzv/state", "joining", 7), "set rdzv/state");
    void *state = NULL;
    size_t state_len = 0;
    check(s, mpistore_get(s, "rdzv/state", &state, &state_len), "get rdzv/state");

    /* 3. address exchange */
    void **addrs = calloc((size_t)size, sizeof *addrs);
    size_t *lens = calloc((size_t)size, sizeof *lens);
    check(s, mpistore_synchronize(s, me, strlen(me), rank, size, "rdzv/addr/", 60.0, addrs, lens),
          "synchronize addresses");

    /* 4. report and close the round */
    if (i_lead) {
        printf("rendezvous: leader is rank %d (%s), round state '%.*s', %d members\n", rank,
               (char *)leader, (int)state_len, (char *)state, size);
        for (int r = 0; r < size; r++)
            printf("  member %d at %s\n", r, (char *)addrs[r]);
    }
    check(s, mpistore_barrier(s, rank, size, "rdzv/closed", 60.0), "barrier rdzv/closed");

    for (int r = 0; r < size; r++)
        mpistore_free(addrs[r]);
    free(addrs);
    free(lens);
    mpistore_free(leader);
    mpistore_free(state);
    check(s, mpistore_close(s), "mpistore_close");
    MPI_Finalize();
    return 0;
}
